//! A minimal Prometheus endpoint for the long-running ingest daemon: `GET /metrics` returns the
//! counters as of the last flush. Plain `std::net`, one thread, no framework: it serves a
//! scraper every few seconds, nothing more.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use crate::ingest::IngestStats;

/// Starts serving in a background thread. Fails at once if the address cannot be bound.
pub fn serve(addr: SocketAddr, stats: Arc<Mutex<IngestStats>>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            if BufReader::new(&stream)
                .read_line(&mut request_line)
                .is_err()
            {
                continue;
            }
            let (status, body) = if request_line.starts_with("GET /metrics") {
                let body = stats.lock().map(|s| s.prometheus()).unwrap_or_default();
                ("200 OK", body)
            } else {
                ("404 Not Found", "try /metrics\n".to_string())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn serves_the_counters_in_prometheus_format() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let stats = Arc::new(Mutex::new(IngestStats::default()));
        {
            let mut s = stats.lock().unwrap();
            s.accepted = 42;
            s.rejected.insert("future_date".into(), 3);
        }
        serve(addr, stats).unwrap();
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        conn.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(body.contains("lantern_ingest_records_total{result=\"accepted\"} 42"));
        assert!(body.contains("reason=\"future_date\"} 3"));
    }
}
