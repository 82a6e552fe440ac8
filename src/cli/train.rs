//! `lantern train`: fit and save the risk models.

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;
use lantern::features::{FeatureEngine, FeatureSpec};
use lantern::model::Kind;

use super::common::{parse_date, runtime};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Use outcomes decided before this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    as_of: NaiveDate,
    /// Which models to fit: trees, logistic, rule (repeatable) [default: all three].
    #[arg(long = "kind", value_name = "KIND", value_parser = parse_kind)]
    kinds: Vec<Kind>,
}

pub fn run(settings: &Settings, args: TrainArgs) -> Result<()> {
    let spec = FeatureSpec::load(&settings.features.dir)?;
    let kinds = if args.kinds.is_empty() {
        Kind::ALL.to_vec()
    } else {
        args.kinds.clone()
    };
    let rt = runtime()?;
    let trained = rt.block_on(async {
        let engine = FeatureEngine::open_with_limit(
            &settings.data.dir,
            spec,
            settings.features.memory_limit_mb,
        )
        .await?;
        lantern::model::train::train_all(&engine, &settings.model, args.as_of, &kinds).await
    })?;
    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>8}  {}",
        "model", "ROC-AUC", "PR-AUC", "Brier", "labels", "saved in"
    );
    for (m, dir) in &trained.models {
        println!(
            "{:<14} {:>8.3} {:>8.3} {:>8.3} {:>8}  {}",
            m.id(),
            m.metrics.roc_auc,
            m.metrics.pr_auc,
            m.metrics.brier,
            m.training.rows_fit + m.training.rows_calibration,
            dir.display()
        );
    }
    println!(
        "Current model (used by `lantern screen`): {}",
        trained.current
    );
    Ok(())
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| format!("`{s}` is not a model kind; use trees, logistic or rule"))
}
