//! Ingest throughput, end to end to durable Parquet: NDJSON files, and a pre-filled topic on
//! librdkafka's mock cluster (real protocol over loopback TCP). Two baselines in the same run:
//! validation alone (decode + contract checks, no lake) for the file path, and draining the
//! topics without doing anything for the Kafka path, so the ratios show what ingest adds.
//!
//! Run: `cargo bench --bench ingest`. Figures go to docs/BENCHMARKS.md.

use std::path::PathBuf;

use chrono::NaiveDate;
use lantern::config::Settings;
use lantern::contract::{SignalKind, Validator, Vocab};
use lantern::ingest::deadletter::MemoryDeadLetters;
use lantern::ingest::kafka::{consume_from, KafkaIngestOptions};
use lantern::ingest::{file::ingest_files, Ingestor};
use lantern::lake::{Lake, LakeWriter};
use lantern::registry::Registry;
use lantern::sim::{self, SimParams};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::BaseProducer;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

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

/// A pre-filled mock cluster holding the input, one topic per signal kind, with enough
/// partitions that the mock keeps every message.
struct Topics {
    settings: Settings,
    bytes: u64,
    /// Kept alive for the benchmark's length.
    cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
}

fn topics(input: &Input) -> Topics {
    let mut settings = Settings::defaults();
    let partitions = lantern::kafka::mock_partitions_for(30_000, 24);
    let cluster = lantern::kafka::start_mock_cluster(&mut settings, "bench", partitions).unwrap();
    let producer: BaseProducer = lantern::kafka::producer_config(&settings.kafka)
        .create()
        .unwrap();
    let mut bytes = 0;
    for (kind, file) in SignalKind::ALL.iter().zip(&input.files) {
        lantern::kafka::produce_file(&producer, settings.topics.for_kind(*kind), file).unwrap();
        bytes += std::fs::metadata(file).unwrap().len();
    }
    Topics {
        settings,
        bytes,
        cluster,
    }
}

/// A consumer assigned every partition of the signal topics from the start: no group join, so
/// the timing is the consuming alone.
fn assigned_consumer(t: &Topics, group: String) -> lantern::ingest::kafka::IngestConsumer {
    let mut s = t.settings.clone();
    s.kafka.group_id = group;
    let consumer = lantern::ingest::kafka::consumer(&s).unwrap();
    let mut tpl = TopicPartitionList::new();
    for kind in SignalKind::ALL {
        let topic = s.topics.for_kind(*kind);
        let meta = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        for p in meta.topics()[0].partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// Baseline for the Kafka path: the same messages drained from the same broker by the same
/// consumer configuration, doing nothing with them. What ingest adds is the ratio to this.
#[divan::bench(sample_count = 3)]
fn kafka_baseline_drain_only(bencher: divan::Bencher) {
    let input = input();
    let t = topics(&input);
    let _ = &t.cluster;
    let mut run = 0;
    bencher
        .counter(divan::counter::ItemsCount::new(input.lines))
        .counter(divan::counter::BytesCount::new(t.bytes))
        .with_inputs(|| {
            run += 1;
            assigned_consumer(&t, format!("drain-{run}"))
        })
        .bench_local_values(|consumer| {
            let mut n = 0;
            while n < input.lines {
                if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                    divan::black_box(m.unwrap().payload().map(|p| p.len()));
                    n += 1;
                }
            }
            consumer
        });
}

/// The pre-filled topics through `lantern ingest --kafka`'s path to durable Parquet: checking
/// on both cores, lake writes with syncfs, offsets committed after each flush.
#[divan::bench(sample_count = 3)]
fn kafka_topic_to_parquet(bencher: divan::Bencher) {
    let input = input();
    let t = topics(&input);
    let registry = Registry::embedded();
    let mut run = 0;
    bencher
        .counter(divan::counter::ItemsCount::new(input.lines))
        .counter(divan::counter::BytesCount::new(t.bytes))
        .with_inputs(|| {
            run += 1;
            (
                assigned_consumer(&t, format!("ingest-{run}")),
                tempfile::tempdir().unwrap(),
            )
        })
        .bench_local_values(|(consumer, data)| {
            let mut dead = MemoryDeadLetters::default();
            let mut ing = Ingestor::new(
                Validator::new(&registry, day()),
                None,
                LakeWriter::new(Lake::in_data_dir(data.path())),
                Box::new(&mut dead),
            );
            let mut opts = KafkaIngestOptions::new(100_000);
            opts.until_idle = true;
            consume_from(&consumer, &t.settings, &mut ing, &opts).unwrap();
            (consumer, data)
        });
}
