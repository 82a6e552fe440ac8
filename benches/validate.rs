//! Validator throughput on realistic records: the ceiling for ingest, which must reach
//! 300,000 signals per second from files on two cores.
//!
//! Run: `cargo bench --bench validate`. The baseline in the same run is plain
//! `serde_json::from_slice::<Value>`, the parse every path pays anyway; the ratio shows what
//! the contract's checks add on top.

use chrono::NaiveDate;
use lantern::contract::Validator;
use lantern::registry::Registry;
use lantern::sim::{self, SimParams};

fn main() {
    divan::main();
}

fn lines() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let mut p = SimParams::new(5_000, 12, 7);
    p.invalid_rate = 0.0;
    p.duplicate_rate = 0.0;
    sim::simulate(
        &p,
        &Registry::embedded(),
        dir.path(),
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
    let mut out = Vec::new();
    for f in ["utility-arrears", "council-reports", "service-gaps"] {
        let text = std::fs::read_to_string(dir.path().join(format!("signals/{f}.ndjson"))).unwrap();
        out.extend(text.lines().map(|l| l.as_bytes().to_vec()));
    }
    out
}

#[divan::bench(sample_count = 10)]
fn baseline_json_parse_only(bencher: divan::Bencher) {
    let lines = lines();
    bencher
        .counter(divan::counter::ItemsCount::new(lines.len()))
        .bench_local(|| {
            for l in &lines {
                divan::black_box(serde_json::from_slice::<serde_json::Value>(l).unwrap());
            }
        });
}

#[divan::bench(sample_count = 10)]
fn validate_signals(bencher: divan::Bencher) {
    let lines = lines();
    let registry = Registry::embedded();
    let v = Validator::new(&registry, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    bencher
        .counter(divan::counter::ItemsCount::new(lines.len()))
        .bench_local(|| {
            for l in &lines {
                divan::black_box(v.signal(l).unwrap());
            }
        });
}
