//! `lantern simulate`: a synthetic population (households, signals, past referrals, outcomes, and the ground truth apart).

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;
use lantern::sim::{self, SimParams};
use std::path::PathBuf;

use super::common::parse_date;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Number of households.
    #[arg(long, default_value_t = 20_000)]
    households: u64,
    /// Months of history, ending with the month of --end.
    #[arg(long, default_value_t = 18)]
    months: u32,
    /// Random seed; the same seed gives byte-identical output.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The simulation's last day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-10-31", value_parser = parse_date)]
    end: NaiveDate,
    /// Share of signal records replaced by one that breaks a contract rule, to exercise the
    /// dead-letter path.
    #[arg(long, default_value_t = 0.002)]
    invalid_rate: f64,
    /// Share of valid signal records sent twice, to exercise deduplication.
    #[arg(long, default_value_t = 0.01)]
    duplicate_rate: f64,
}

pub fn run(settings: &Settings, args: SimulateArgs) -> Result<()> {
    let registry = settings.registry()?;
    let mut params = SimParams::new(args.households, args.months, args.seed);
    params.end = args.end;
    params.invalid_rate = args.invalid_rate;
    params.duplicate_rate = args.duplicate_rate;
    let bar = lantern::progress::bar(args.households, "households");
    let started = std::time::Instant::now();
    let manifest = sim::simulate(&params, &registry, &args.out, &bar)?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let signals =
        manifest.total_valid_signals() + manifest.total_invalid() + manifest.duplicate_lines;
    tracing::info!(
        households = manifest.households,
        signals,
        seconds = format!("{secs:.2}"),
        "simulation written"
    );
    println!(
        "Simulated {} households over {} months ({} to {}) into {}",
        manifest.households,
        args.months,
        manifest.params.start,
        manifest.params.end,
        args.out.display()
    );
    println!(
        "  signals: {} valid, {} planted invalid, {} planted duplicates",
        manifest.total_valid_signals(),
        manifest.total_invalid(),
        manifest.duplicate_lines
    );
    println!(
        "  past rounds: {}, referrals: {}, open: {}, rule precision {:.1}%, crisis prevalence {:.2}%",
        manifest.referral_rounds.len(),
        manifest.referrals,
        manifest.open_referrals,
        manifest.rule_precision * 100.0,
        manifest.crisis_prevalence * 100.0
    );
    println!(
        "  {:.0} households/s, {:.0} signals/s; ground truth in {}",
        manifest.households as f64 / secs.max(1e-9),
        signals as f64 / secs.max(1e-9),
        args.out.join("truth").display()
    );
    Ok(())
}
