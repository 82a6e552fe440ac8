//! The case-intake queue: referrals out to districts (`case-intake`, JSON, key = district code,
//! SPEC §4), and reading them back as a district's intake system would.
//!
//! **No duplicates on a re-run.** A night's referral ids are deterministic, and every id whose
//! delivery the broker acknowledged is recorded in `published.ndjson` beside the night's
//! referral files. Publishing the same night again sends only the ids not recorded there. The
//! producer is idempotent, so librdkafka's own retries do not duplicate either. (A crash after
//! the broker acknowledged but before the ledger was written can still repeat a message on
//! the next run; consumers should treat `referral_id` as the key, as the contract makes it.)

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::contract::Referral;
use crate::lake::reference::referrals_dir;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("kafka: {0}; check kafka.brokers and that topic `{1}` exists")]
    Kafka(rdkafka::error::KafkaError, String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{failed} referrals were not acknowledged by the broker (first error: {first}); run the same `lantern screen --publish` again to send the rest")]
    Undelivered { failed: usize, first: String },
}

/// What a publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub sent: usize,
    /// Already published by an earlier run of the same night.
    pub skipped: usize,
}

/// `<referrals dir>/published.ndjson`.
pub fn ledger_path(data_dir: &Path, as_of: chrono::NaiveDate) -> PathBuf {
    referrals_dir(data_dir, as_of).join("published.ndjson")
}

fn read_ledger(path: &Path) -> HashSet<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(|l| l.trim().trim_matches('"').to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends each referral not yet published for its night, keyed by district, and records the
/// acknowledged ids.
pub async fn publish(
    producer: &FutureProducer,
    topic: &str,
    data_dir: &Path,
    referrals: &[Referral],
) -> Result<PublishReport, IntakeError> {
    let mut report = PublishReport::default();
    let Some(first) = referrals.first() else {
        return Ok(report);
    };
    let ledger = ledger_path(data_dir, first.as_of);
    let done = read_ledger(&ledger);
    let mut pending = Vec::new();
    for r in referrals {
        if done.contains(&r.referral_id) {
            report.skipped += 1;
            continue;
        }
        let payload = serde_json::to_string(r).expect("referrals serialize");
        let record = FutureRecord::to(topic)
            .key(&r.district_code)
            .payload(&payload);
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| IntakeError::Kafka(e, topic.to_string()))?;
        pending.push((r.referral_id.clone(), delivery));
    }
    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    for (id, delivery) in pending {
        match delivery.await {
            Ok(Ok(_)) => acknowledged.push(id),
            Ok(Err((e, _))) => failed.push(e.to_string()),
            Err(_) => failed.push("delivery cancelled".into()),
        }
    }
    let io = |source| IntakeError::Io {
        path: ledger.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&ledger)
        .map_err(io)?;
    for id in &acknowledged {
        writeln!(file, "{id}").map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    report.sent = acknowledged.len();
    if let Some(first) = failed.first() {
        return Err(IntakeError::Undelivered {
            failed: failed.len(),
            first: first.clone(),
        });
    }
    Ok(report)
}

/// Reads every referral on the intake topic from the beginning to the current end, as a
/// district's system would; `district` keeps only that district's. Messages that are not
/// referrals are counted, not returned.
pub fn read_all(
    consumer: &BaseConsumer,
    topic: &str,
    district: Option<&str>,
) -> Result<(Vec<Referral>, usize), IntakeError> {
    let kafka = |e| IntakeError::Kafka(e, topic.to_string());
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(kafka)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    let mut remaining = HashSet::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(kafka)?;
        if high > low {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .map_err(kafka)?;
            remaining.insert((p, high));
        }
    }
    let mut out = Vec::new();
    let mut other = 0usize;
    if remaining.is_empty() {
        return Ok((out, other));
    }
    consumer.assign(&assignment).map_err(kafka)?;
    let mut idle = 0;
    while !remaining.is_empty() && idle < 100 {
        match consumer.poll(Duration::from_millis(100)) {
            None => idle += 1,
            Some(Err(e)) => return Err(kafka(e)),
            Some(Ok(m)) => {
                idle = 0;
                let (p, offset) = (m.partition(), m.offset());
                remaining.retain(|&(rp, high)| !(rp == p && offset + 1 >= high));
                let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
                if district.is_some_and(|d| key.as_deref() != Some(d)) {
                    continue;
                }
                match m.payload().map(serde_json::from_slice::<Referral>) {
                    Some(Ok(r)) => out.push(r),
                    _ => other += 1,
                }
            }
        }
    }
    Ok((out, other))
}
