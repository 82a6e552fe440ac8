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
    /// Back-test nights the promotion gate judges on (the most recent with outcomes).
    #[arg(long, default_value_t = 3)]
    folds: usize,
    /// Days after each back-test night whose referrals are evaluated.
    #[arg(long, default_value_t = 60)]
    horizon_days: u32,
    #[command(flatten)]
    engine: super::common::EngineArg,
}

/// `lantern promote`: an operator's override of the promotion gate.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The model to make current: `name@version`, or `name` for its newest version.
    model: String,
    /// Why, for the audit log (required: an override without a reason is not accountable).
    #[arg(long)]
    reason: String,
}

pub fn promote(settings: &Settings, args: PromoteArgs) -> Result<()> {
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say why the gate is overridden; it goes to the audit log");
    }
    let m = lantern::eval::promotion::promote_by_operator(
        &settings.data.dir,
        &args.model,
        args.reason.trim(),
    )?;
    println!(
        "Current model (used by `lantern screen`): {} (operator override, audited)",
        m.id()
    );
    Ok(())
}

pub fn run(settings: &Settings, args: TrainArgs) -> Result<()> {
    let settings = &args.engine.apply(settings);
    let spec = FeatureSpec::load(&settings.features.dir)?;
    let kinds = if args.kinds.is_empty() {
        Kind::ALL.to_vec()
    } else {
        args.kinds.clone()
    };
    let registry = settings.registry()?;
    let bt = lantern::eval::backtest::BacktestSettings {
        folds: args.folds.max(1),
        horizon_days: args.horizon_days,
        capacity_scale: settings.screen.capacity_scale,
        fairness: settings.fairness.clone(),
    };
    let rt = runtime()?;
    let bar = lantern::progress::bar(0, "back-test fits");
    let gated = rt.block_on(async {
        let engine =
            FeatureEngine::open_configured(&settings.data.dir, spec, &settings.features).await?;
        lantern::eval::promotion::train_and_promote(
            &engine,
            &settings.model,
            &registry,
            &settings.capacity,
            &bt,
            args.as_of,
            &kinds,
            &bar,
        )
        .await
    })?;
    bar.finish_and_clear();
    let trained = &gated.trained;
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
    if let Some(report) = &gated.report {
        let dir = lantern::eval::report::write(&settings.data.dir, report)?;
        println!("Back-test the gate judged on: {}", dir.display());
    }
    print!("{}", gated.decision.summary());
    match (&gated.current, gated.decision.promote) {
        (Some(c), true) => println!("Current model (used by `lantern screen`): {c}"),
        (Some(c), false) if gated.fell_back => println!(
            "No model was current, so today's practice screens: {c}. To use a refused model \
             anyway: lantern promote MODEL --reason \"...\" (audited)"
        ),
        (Some(c), false) => println!(
            "Current model unchanged: {c}. To use a refused model anyway: \
             lantern promote MODEL --reason \"...\" (audited)"
        ),
        (None, _) => println!(
            "No current model: `lantern screen` needs one. Review the checks above, then \
             lantern promote MODEL --reason \"...\" (audited), or train the rule alone with \
             lantern train --as-of DATE --kind rule"
        ),
    }
    Ok(())
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| format!("`{s}` is not a model kind; use trees, logistic or rule"))
}
