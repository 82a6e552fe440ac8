//! Ingest throughput, end to end to durable Parquet: NDJSON files, and a pre-filled topic on
//! librdkafka's mock cluster (real protocol over loopback TCP). The baseline in the same run is
//! validation alone (decode + contract checks, no lake), so the ratio shows what the lake
//! writer, deduplication and fsyncs cost on top.
//!
//! Run: `cargo bench --bench ingest`. Figures go to docs/BENCHMARKS.md.

use std::path::PathBuf;

use chrono::NaiveDate;
use lantern::config::Settings;
use lantern::contract::{SignalKind, Validator, Vocab};
use lantern::ingest::deadletter::MemoryDeadLetters;
use lantern::ingest::kafka::{consume, KafkaIngestOptions};
use lantern::ingest::{file::ingest_files, Ingestor};
use lantern::lake::{Lake, LakeWriter};
use lantern::registry::Registry;
use lantern::sim::{self, SimParams};
use rdkafka::producer::BaseProducer;

fn main() {
    divan::main();
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
}

/// About 200,000 signals from 30,000 simulated households over 24 months.
struct Input {
    _dir: tempfile::TempDir,
    files: Vec<PathBuf>,
    lines: usize,
}

fn input() -> Input {
    let dir = tempfile::tempdir().unwrap();
    let p = SimParams::new(30_000, 24, 7);
    sim::simulate(
        &p,
        &Registry::embedded(),
        dir.path(),
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
    let files: Vec<PathBuf> = SignalKind::ALL
        .iter()
        .map(|k| sim::signal_file(dir.path(), *k))
        .collect();
    let lines = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    Input {
        _dir: dir,
        files,
        lines,
    }
}

#[divan::bench(sample_count = 5)]
fn baseline_validate_only(bencher: divan::Bencher) {
    let input = input();
    let text: Vec<String> = input
        .files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let registry = Registry::embedded();
    let v = Validator::new(&registry, day());
    bencher
        .counter(divan::counter::ItemsCount::new(input.lines))
        .bench_local(|| {
            for t in &text {
                for l in t.lines() {
                    let _ = divan::black_box(v.signal(l.as_bytes()));
                }
            }
        });
}

#[divan::bench(sample_count = 5)]
fn file_ingest_to_parquet(bencher: divan::Bencher) {
    let input = input();
    let registry = Registry::embedded();
    let bytes: u64 = input
        .files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    bencher
        .counter(divan::counter::ItemsCount::new(input.lines))
        .counter(divan::counter::BytesCount::new(bytes))
        .with_inputs(|| tempfile::tempdir().unwrap())
        .bench_local_values(|data| {
            let mut dead = MemoryDeadLetters::default();
            let mut ing = Ingestor::new(
                Validator::new(&registry, day()),
                None,
                LakeWriter::new(Lake::in_data_dir(data.path())),
                Box::new(&mut dead),
            );
            ingest_files(
                &mut ing,
                &input.files,
                100_000,
                &indicatif::ProgressBar::hidden(),
            )
            .unwrap();
            data
        });
}

#[divan::bench(sample_count = 3)]
fn kafka_topic_to_parquet(bencher: divan::Bencher) {
    let input = input();
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    let mut settings = Settings::defaults();
    settings.kafka.brokers = cluster.bootstrap_servers();
    settings
        .kafka
        .properties
        .insert("session.timeout.ms".into(), "6000".into());
    for kind in SignalKind::ALL {
        cluster
            .create_topic(settings.topics.for_kind(*kind), 3, 1)
            .unwrap();
    }
    cluster
        .create_topic(&settings.topics.case_outcomes, 3, 1)
        .unwrap();
    let producer: BaseProducer = lantern::kafka::producer_config(&settings.kafka)
        .create()
        .unwrap();
    for (kind, file) in SignalKind::ALL.iter().zip(&input.files) {
        lantern::kafka::produce_file(&producer, settings.topics.for_kind(*kind), file).unwrap();
    }
    let registry = Registry::embedded();
    let mut run = 0;
    bencher
        .counter(divan::counter::ItemsCount::new(input.lines))
        .with_inputs(|| {
            run += 1;
            let mut s = settings.clone();
            s.kafka.group_id = format!("bench-{run}");
            (s, tempfile::tempdir().unwrap())
        })
        .bench_local_values(|(s, data)| {
            let mut dead = MemoryDeadLetters::default();
            let mut ing = Ingestor::new(
                Validator::new(&registry, day()),
                None,
                LakeWriter::new(Lake::in_data_dir(data.path())),
                Box::new(&mut dead),
            );
            let mut opts = KafkaIngestOptions::new(100_000);
            opts.until_idle = true;
            consume(&s, &mut ing, &opts).unwrap();
            data
        });
}
