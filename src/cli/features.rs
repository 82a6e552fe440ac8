//! `lantern features`: household features as of dates, to Parquet.

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;
use lantern::features::{FeatureEngine, FeatureSpec};
use std::path::PathBuf;

use super::common::{parse_date, runtime};

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// A date to compute features as of (YYYY-MM-DD); repeat for several.
    #[arg(long = "as-of", required = true, value_parser = parse_date)]
    dates: Vec<NaiveDate>,
    /// Output Parquet file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Run one query per date instead of one for all (to compare; the values are the same).
    #[arg(long)]
    separate: bool,
    #[command(flatten)]
    engine: super::common::EngineArg,
}

pub fn run(settings: &Settings, args: FeaturesArgs) -> Result<()> {
    let settings = &args.engine.apply(settings);
    let spec = FeatureSpec::load(&settings.features.dir)?;
    let started = std::time::Instant::now();
    let rows = runtime()?.block_on(async {
        let engine =
            FeatureEngine::open_configured(&settings.data.dir, spec, &settings.features).await?;
        // Each date's cohort: the households screened that night.
        let mut cohort = Vec::new();
        let cohorts = engine.scoring_cohorts(&args.dates).await?;
        for (&d, households) in args.dates.iter().zip(cohorts) {
            cohort.extend(households.into_iter().map(|h| (h, d)));
        }
        let groups: Vec<Vec<(String, NaiveDate)>> = if args.separate {
            args.dates
                .iter()
                .map(|&d| cohort.iter().filter(|c| c.1 == d).cloned().collect())
                .collect()
        } else {
            vec![cohort]
        };
        let bar = lantern::progress::bar(groups.iter().map(|g| g.len() as u64).sum(), "rows");
        let mut writer = lantern::features::ParquetSink::create(&args.out, engine.spec())?;
        let mut rows = 0u64;
        for group in groups {
            let mut stream = engine.stream(&group).await?;
            while let Some(batch) = stream.next().await? {
                rows += batch.len() as u64;
                bar.inc(batch.len() as u64);
                writer.write(&batch)?;
            }
        }
        writer.finish()?;
        bar.finish_and_clear();
        anyhow::Ok(rows)
    })?;
    // A feature export leaves Lantern with every screened household's data: audited.
    let mut record = lantern::audit::AuditRecord::new("export");
    record.detail = serde_json::json!({
        "what": "features",
        "file": args.out.display().to_string(),
        "rows": rows,
        "dates": args.dates.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
    });
    lantern::audit::append(&settings.data.dir, record)?;
    println!(
        "{rows} rows ({} dates, {}) in {:.1}s -> {}",
        args.dates.len(),
        if args.separate {
            "one query per date"
        } else {
            "all dates in one plan"
        },
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
