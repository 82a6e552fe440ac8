//! `lantern backtest`: the temporal back-test and its reports.

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;
use lantern::features::{FeatureEngine, FeatureSpec};

use super::common::{parse_date, runtime};

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Use outcomes decided up to this date (YYYY-MM-DD) [default: today].
    #[arg(long, value_parser = parse_date)]
    until: Option<NaiveDate>,
    /// Evaluation nights: the most recent referral nights with outcomes.
    #[arg(long, default_value_t = 3)]
    folds: usize,
    /// Days after each evaluation night whose referrals are evaluated.
    #[arg(long, default_value_t = 60)]
    horizon_days: u32,
    #[command(flatten)]
    engine: super::common::EngineArg,
}

pub fn run(settings: &Settings, args: BacktestArgs) -> Result<()> {
    let settings = &args.engine.apply(settings);
    let spec = FeatureSpec::load(&settings.features.dir)?;
    let registry = settings.registry()?;
    let until = args
        .until
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let bt = lantern::eval::backtest::BacktestSettings {
        folds: args.folds.max(1),
        horizon_days: args.horizon_days,
        capacity_scale: settings.screen.capacity_scale,
        fairness: settings.fairness.clone(),
    };
    let bar = lantern::progress::bar(0, "fits");
    let report = runtime()?.block_on(async {
        let engine =
            FeatureEngine::open_configured(&settings.data.dir, spec, &settings.features).await?;
        lantern::eval::backtest::backtest(
            &engine,
            &settings.model,
            &registry,
            &settings.capacity,
            &bt,
            until,
            &bar,
        )
        .await
    })?;
    bar.finish_and_clear();
    let dir = lantern::eval::report::write(&settings.data.dir, &report)?;
    println!("{}", lantern::eval::report::summary(&report));
    println!(
        "Report: {} (backtest.json, summary.md, report.html)",
        dir.display()
    );
    Ok(())
}
