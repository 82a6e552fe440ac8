//! `lantern ingest`: NDJSON files or the Kafka topics into the lake.

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;
use lantern::contract::Validator;
use lantern::ingest::{self, FileDeadLetters, Ingestor};
use lantern::lake::{Lake, LakeWriter};
use lantern::pseudonym::Pseudonymizer;
use std::path::PathBuf;

use super::common::parse_date;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// NDJSON files (signals or outcomes), plain or .ndjson.gz.
    #[arg(long = "file", value_name = "PATH", num_args = 1.., conflicts_with = "kafka")]
    files: Vec<PathBuf>,
    /// Consume the signal and outcome topics from the configured brokers.
    #[arg(long, required_unless_present = "files")]
    kafka: bool,
    /// With --kafka: stop once the topics are drained.
    #[arg(long, requires = "kafka")]
    until_idle: bool,
    /// With --kafka: serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR", requires = "kafka")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// With --kafka: this process's static group membership id (kafka.group_instance_id),
    /// unique in the group; a restart with the same id reclaims its partitions at once.
    #[arg(long, value_name = "ID", requires = "kafka")]
    instance_id: Option<String>,
    /// Treat dates as if ingested on this day (YYYY-MM-DD) [default: today]. For replaying
    /// history in tests and back-fills.
    #[arg(long, value_parser = parse_date, hide = true)]
    ingest_day: Option<NaiveDate>,
}

pub fn run(settings: &Settings, args: IngestArgs) -> Result<()> {
    fixed_mmap_threshold();
    let registry = settings.registry()?;
    // The ingest day is the day each record arrives, in the agencies' time zone, unless a
    // replay fixes it.
    let day = match args.ingest_day {
        Some(d) => lantern::clock::IngestDay::Fixed(d),
        None => settings.ingest.ingest_day()?,
    };
    let validator = Validator::new(&registry, day.today());
    let lake = Lake::in_data_dir(&settings.data.dir);
    let writer = LakeWriter::new(lake.clone()).with_cache_budget(settings.ingest.dedup_cache_keys);
    let pseudo = pseudonymizer(settings)?;
    let started = std::time::Instant::now();
    if args.kafka {
        let mut settings = settings.clone();
        if let Some(id) = &args.instance_id {
            settings.kafka.group_instance_id = id.clone();
        }
        let settings = &settings;
        let dead = ingest::kafka::KafkaDeadLetters::new(settings)?;
        let mut ingestor = Ingestor::new(validator, pseudo, writer, Box::new(dead))
            .with_ingest_day(day)
            .with_notes_kept(settings.ingest.keep_notes);
        let mut opts = ingest::kafka::KafkaIngestOptions::new(settings.ingest.batch_records);
        opts.until_idle = args.until_idle;
        opts.stop = ingest::kafka::stop_on_signals();
        if let Some(secs) = settings.ingest.assignment_deadline_secs.filter(|&s| s > 0) {
            opts.assignment_timeout = Some(std::time::Duration::from_secs(secs));
        }
        opts.data_dir = Some(settings.data.dir.clone());
        if let Some(addr) = args.metrics_addr {
            lantern::metrics::serve(addr)?;
            lantern::metrics::record_last_night(&settings.data.dir);
            tracing::info!(%addr, "serving metrics at /metrics");
        }
        let report = ingest::kafka::consume(settings, &mut ingestor, &opts)?;
        ingestor.log_summary("kafka");
        print_summary(ingestor.stats(), started, &lake);
        println!(
            "  {} messages, {} offset commits; {:.1}s from the first message, {:.0} messages/s",
            report.messages,
            report.commits,
            report.consuming.as_secs_f64(),
            report.rate()
        );
        return Ok(());
    }
    let mut dead = FileDeadLetters::for_run(&settings.data.dir);
    let mut ingestor = Ingestor::new(validator, pseudo, writer, Box::new(&mut dead))
        .with_ingest_day(day)
        .with_notes_kept(settings.ingest.keep_notes);
    let bar = lantern::progress::bytes_bar(0, "ingesting");
    ingest::file::ingest_files(
        &mut ingestor,
        &args.files,
        settings.ingest.batch_records,
        &bar,
    )?;
    bar.finish_and_clear();
    ingestor.log_summary("files");
    let stats = ingestor.stats().clone();
    drop(ingestor);
    print_summary(&stats, started, &lake);
    if stats.total_rejected() > 0 {
        println!("  dead letters: {}", dead.path().display());
    }
    Ok(())
}

fn print_summary(s: &ingest::IngestStats, started: std::time::Instant, lake: &Lake) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "Ingested {} new records into {} ({} duplicates skipped, {} rejected) in {secs:.1}s, {:.0} records/s",
        s.accepted,
        lake.location(),
        s.duplicates,
        s.total_rejected(),
        s.seen() as f64 / secs
    );
    for (reason, n) in &s.rejected {
        println!("  {n:>8}  {reason}");
    }
}

/// The pseudonymizer the settings ask for, if any fields are configured.
fn pseudonymizer(settings: &Settings) -> Result<Option<Pseudonymizer>> {
    let p = &settings.pseudonymization;
    if p.fields.is_empty() {
        return Ok(None);
    }
    Ok(Some(Pseudonymizer::new(p.load_key()?, p.fields.clone())))
}

/// Fixes glibc's mmap threshold at 256 KiB. By default it rises each time a large block is
/// freed, after which the multi-megabyte key arrays and record batches of ingest come from the
/// heap and fragment it: measured on 10 million signals, 320 MB peak memory instead of 265 MB.
/// Only `lantern ingest` sets it, the long-running process whose memory must stay flat; query
/// commands keep glibc's default.
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter (glibc takes its own lock).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
