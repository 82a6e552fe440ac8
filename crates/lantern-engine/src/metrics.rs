//! Prometheus metrics for the long-running ingest daemon, through the `metrics` facade and the
//! maintained `metrics-exporter-prometheus` exporter: its HTTP listener serves every scraper
//! on its own task, so a slow or idle client cannot stop `/metrics` for the others.
//!
//! What an on-call operator alerts on (docs/OPERATIONS.md has the suggested rules):
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `lantern_ingest_records_total{result, reason}` | counter | records accepted, duplicate or rejected (by reason code) |
//! | `lantern_ingest_lake_files_total` | counter | lake files written |
//! | `lantern_ingest_consumer_lag{topic, partition}` | gauge | messages on the broker not yet durable in the lake |
//! | `lantern_ingest_last_flush_timestamp_seconds` | gauge | when the lake last made a batch durable |
//! | `lantern_ingest_assigned_partitions` | gauge | partitions this process owns (0: waiting for the group) |
//! | `lantern_screen_last_success_timestamp_seconds` | gauge | when the last screening night finished |
//! | `lantern_screen_last_success_as_of_days` | gauge | that night's date, in days since 1970-01-01 |
//!
//! Without [`serve`] every call here is a no-op (the `metrics` facade has no recorder), so the
//! stages report unconditionally and only the daemon pays for an endpoint.

use std::net::SocketAddr;
use std::path::Path;

use metrics::{counter, gauge};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot serve metrics on {addr}: {message}; pick a free address for --metrics-addr")]
    Serve { addr: SocketAddr, message: String },
}

/// Starts the `/metrics` endpoint on `addr` and makes it this process's metrics recorder.
/// Fails at once if the address cannot be bound or a recorder is already installed.
pub fn serve(addr: SocketAddr) -> Result<(), MetricsError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| MetricsError::Serve {
            addr,
            message: e.to_string(),
        })?;
    describe();
    Ok(())
}

fn describe() {
    metrics::describe_counter!(
        "lantern_ingest_records_total",
        "Records ingested, by result (accepted, duplicate, rejected) and reject reason."
    );
    metrics::describe_counter!("lantern_ingest_lake_files_total", "Lake files written.");
    metrics::describe_gauge!(
        "lantern_ingest_consumer_lag",
        "Messages on the broker not yet durable in the lake, per topic and partition."
    );
    metrics::describe_gauge!(
        "lantern_ingest_last_flush_timestamp_seconds",
        "Unix time of the last durable lake flush."
    );
    metrics::describe_gauge!(
        "lantern_ingest_assigned_partitions",
        "Partitions assigned to this ingest process (0 while waiting for the group)."
    );
    metrics::describe_gauge!(
        "lantern_screen_last_success_timestamp_seconds",
        "Unix time at which the last successful screening night finished."
    );
    metrics::describe_gauge!(
        "lantern_screen_last_success_as_of_days",
        "The date of the last successful screening night, in days since 1970-01-01."
    );
}

/// A run's ingest totals, as the metrics take them.
#[derive(Debug, Clone, Default)]
pub struct IngestTotals<'a> {
    pub accepted: u64,
    pub duplicates: u64,
    /// Rejected records by reason code.
    pub rejected: Vec<(&'a str, u64)>,
    pub lake_files: u64,
}

/// Publishes a run's counters (absolute values: the totals are the run's).
pub fn record_ingest(totals: &IngestTotals<'_>) {
    counter!("lantern_ingest_records_total", "result" => "accepted").absolute(totals.accepted);
    counter!("lantern_ingest_records_total", "result" => "duplicate").absolute(totals.duplicates);
    for (reason, n) in &totals.rejected {
        counter!("lantern_ingest_records_total", "result" => "rejected", "reason" => reason.to_string())
            .absolute(*n);
    }
    counter!("lantern_ingest_lake_files_total").absolute(totals.lake_files);
}

/// Marks a durable flush, now.
pub fn record_flush() {
    gauge!("lantern_ingest_last_flush_timestamp_seconds")
        .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
}

/// The consumer lag of one partition: its high watermark less the next offset to make durable.
pub fn record_lag(topic: &str, partition: i32, lag: i64) {
    gauge!("lantern_ingest_consumer_lag", "topic" => topic.to_string(), "partition" => partition.to_string())
        .set(lag.max(0) as f64);
}

/// How many partitions this process owns.
pub fn record_assigned(partitions: usize) {
    gauge!("lantern_ingest_assigned_partitions").set(partitions as f64);
}

/// The last successful screening night of the data directory, as `lantern screen` left it.
pub fn record_last_night(data_dir: &Path) {
    if let Some(n) = crate::status::last_night(data_dir) {
        gauge!("lantern_screen_last_success_timestamp_seconds").set(n.finished_at as f64);
        gauge!("lantern_screen_last_success_as_of_days")
            .set(crate::lake::days_since_epoch(n.as_of) as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// Issue 9.6: a client that connects and sends nothing does not stop `/metrics` for the
    /// next scraper (the old hand-written server read the first connection's request line with
    /// no timeout, forever), and the endpoint shows what an operator alerts on. The only test
    /// in this binary that installs the process-wide recorder.
    #[test]
    fn an_idle_client_does_not_block_the_scrape_and_the_alerting_metrics_are_there() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        serve(addr).unwrap();
        record_ingest(&IngestTotals {
            accepted: 42,
            rejected: vec![("future_date", 3)],
            ..Default::default()
        });
        record_flush();
        record_lag("signals.utility-arrears", 2, 17);
        record_assigned(4);
        let data = tempfile::tempdir().unwrap();
        let status = crate::status::LastNight {
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            finished_at: 1_780_000_000,
            referred: 3302,
            issued: true,
        };
        crate::lake::write_bytes_atomic(
            &crate::status::last_night_path(data.path()),
            &serde_json::to_vec(&status).unwrap(),
        )
        .unwrap();
        record_last_night(data.path());

        // A slow client: connected, silent.
        let _idle = TcpStream::connect(addr).unwrap();
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        conn.read_to_string(&mut body)
            .expect("the scrape is answered while another client sits idle");
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        for needle in [
            r#"lantern_ingest_records_total{result="accepted"} 42"#,
            r#"lantern_ingest_records_total{result="rejected",reason="future_date"} 3"#,
            r#"lantern_ingest_consumer_lag{topic="signals.utility-arrears",partition="2"} 17"#,
            "lantern_ingest_last_flush_timestamp_seconds ",
            "lantern_ingest_assigned_partitions 4",
            "lantern_screen_last_success_timestamp_seconds 1780000000",
            "lantern_screen_last_success_as_of_days 20787",
        ] {
            assert!(body.contains(needle), "missing `{needle}` in:\n{body}");
        }
    }
}
