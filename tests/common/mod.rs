//! Helpers shared by the integration tests that read the lake back.

#![allow(dead_code)]

use std::collections::HashSet;

use datafusion::arrow::array::AsArray;
use lantern::contract::{SignalKind, Vocab};
use lantern::lake::{Lake, Table};
use lantern::sim::Manifest;

/// Every value of a string column across a table's files.
pub fn column(lake: &Lake, table: Table, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for f in lake.table_files(table).unwrap() {
        for b in lake.read_file(&f).unwrap() {
            let c = b.column_by_name(name).unwrap().as_string::<i32>();
            out.extend(c.iter().map(|v| v.unwrap_or_default().to_string()));
        }
    }
    out
}

/// Rows in a table.
pub fn rows(lake: &Lake, table: Table) -> usize {
    lake.table_files(table)
        .unwrap()
        .iter()
        .flat_map(|f| lake.read_file(f).unwrap())
        .map(|b| b.num_rows())
        .sum()
}

/// The lake holds each valid simulated event exactly once, and every decided outcome.
pub fn assert_lake_matches(lake: &Lake, m: &Manifest) {
    for kind in SignalKind::ALL {
        let ids = column(lake, Table::for_kind(*kind), "event_id");
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            ids.len(),
            unique.len(),
            "{kind:?} has duplicates in the lake"
        );
        assert_eq!(ids.len() as u64, m.valid_signals[kind.as_str()], "{kind:?}");
    }
    assert_eq!(
        rows(lake, Table::Outcomes) as u64,
        m.referrals - m.open_referrals,
        "outcomes"
    );
}

/// Simulates `households` over 8 months into `dir` with the given share of planted invalid and
/// duplicate records.
pub fn simulate(
    dir: &std::path::Path,
    households: u64,
    seed: u64,
    invalid: f64,
    dup: f64,
) -> Manifest {
    let mut p = lantern::sim::SimParams::new(households, 8, seed);
    p.invalid_rate = invalid;
    p.duplicate_rate = dup;
    lantern::sim::simulate(
        &p,
        &lantern::registry::Registry::embedded(),
        dir,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap()
}

/// Simulates and produces the population to the configured topics.
pub fn simulate_to_kafka(
    settings: &lantern::config::Settings,
    dir: &std::path::Path,
    households: u64,
    seed: u64,
    invalid: f64,
    dup: f64,
) -> Manifest {
    let m = simulate(dir, households, seed, invalid, dup);
    let producer: rdkafka::producer::BaseProducer =
        lantern::kafka::producer_config(&settings.kafka)
            .create()
            .unwrap();
    lantern::sim::produce_simulation(&producer, &settings.topics, dir).unwrap();
    m
}

/// `lantern ingest --kafka` as a child process against `brokers`, the way the crash tests run
/// it: JSON logs at debug on stderr (they watch for `lake flush durable`), no progress bars,
/// the ingest day fixed. The caller adds `--until-idle` and the stdio it wants.
pub fn ingest_command(
    data: &std::path::Path,
    config: &std::path::Path,
    brokers: &str,
    group: &str,
    batch: u32,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lantern"));
    cmd.args(["--config", config.to_str().unwrap(), "--log-format", "json"])
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["ingest", "--kafka", "--ingest-day", "2026-11-01"])
        .env("LANTERN__KAFKA__BROKERS", brokers)
        .env("LANTERN__KAFKA__GROUP_ID", group)
        .env("LANTERN__INGEST__BATCH_RECORDS", batch.to_string())
        .env("RUST_LOG", "lantern=debug")
        .env("LANTERN_NO_PROGRESS", "1")
        .stdout(std::process::Stdio::null());
    cmd
}
