//! `lantern check`: NDJSON files against the contract, without loading them.

use anyhow::{bail, Result};
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;
use lantern::contract::{Record, RejectReason, Validator};
use lantern::ingest::{self};
use std::path::PathBuf;

use super::common::parse_date;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// NDJSON files, plain or .ndjson.gz.
    #[arg(required = true, value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Treat dates as if ingested on this day (YYYY-MM-DD) [default: today].
    #[arg(long, value_parser = parse_date)]
    ingest_day: Option<NaiveDate>,
    /// Print at most this many rejected lines.
    #[arg(long, default_value_t = 20)]
    show: usize,
}

pub fn run(settings: &Settings, args: CheckArgs) -> Result<()> {
    let registry = settings.registry()?;
    let day = match args.ingest_day {
        Some(d) => d,
        None => settings.ingest.ingest_day()?.today(),
    };
    let validator = Validator::new(&registry, day);
    let mut accepted = 0u64;
    let mut rejected: std::collections::BTreeMap<RejectReason, u64> = Default::default();
    let mut shown = 0usize;
    let bar = indicatif::ProgressBar::hidden();
    for path in &args.files {
        let mut reader = ingest::file::open(path, &bar)?;
        ingest::file::for_each_line(path, reader.as_mut(), |bytes, number| {
            match validator.record(bytes) {
                Ok(Record::Signal(_) | Record::Outcome(_)) => accepted += 1,
                Err(r) => {
                    *rejected.entry(r.reason).or_default() += 1;
                    if shown < args.show {
                        shown += 1;
                        println!("{}:{number}: {r}", path.display());
                    }
                }
            }
            Ok(())
        })?;
    }
    let total_rejected: u64 = rejected.values().sum();
    println!("{accepted} accepted, {total_rejected} rejected");
    for (reason, n) in &rejected {
        println!("  {n:>8}  {reason}");
    }
    if total_rejected > 0 {
        bail!("{total_rejected} lines break the contract (reasons above); fix them at the sender or let `lantern ingest` route them to the dead-letter sink")
    }
    Ok(())
}
