//! Lantern's own gradient-boosted trees against `perpetual` (a maintained pure-Rust gradient
//! boosting crate) on exactly the rows `lantern train` fits and measures (issue #15.3): the
//! same labelled referrals, inferred negatives and weights, the same monotone constraints, the
//! same held-out nights and out-of-fold calibration. Prints held-out ROC-AUC, PR-AUC, Brier and
//! the time to a deployable model (fit on the fitting rows and refit on everything; for the own
//! trees also the early-stopping fit that picks their size).
//!
//! ```sh
//! cargo run --release --example learners -- DATA_DIR AS_OF [BUDGET ...]
//! ```
//!
//! DATA_DIR is a data directory with labels (`lantern ingest`, `lantern import`), AS_OF the
//! training date; each BUDGET (default 0.5 1.0) is a perpetual run. A benchmark, not a test:
//! the figures go to docs/BENCHMARKS.md with the command that made them.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use perpetual::constraints::{Constraint, ConstraintMap};
use perpetual::objective::Objective;
use perpetual::{Matrix, PerpetualBooster};

use lantern::config::Settings;
use lantern::features::{FeatureEngine, FeatureSpec};
use lantern::model::train::{self, holdout, holdout_metrics};
use lantern::model::{HoldoutMetrics, Kind};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        bail!("usage: learners DATA_DIR AS_OF [BUDGET ...]");
    }
    let data_dir = std::path::PathBuf::from(&args[0]);
    let as_of: chrono::NaiveDate = args[1].parse().context("AS_OF must be YYYY-MM-DD")?;
    let budgets: Vec<f32> = if args.len() > 2 {
        args[2..]
            .iter()
            .map(|b| b.parse().context("a BUDGET is a number"))
            .collect::<Result<_>>()?
    } else {
        vec![0.5, 1.0]
    };
    let mut settings = Settings::defaults();
    settings.data.dir = data_dir.clone();
    let spec = FeatureSpec::load(&settings.features.dir)?;
    let rt = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let set = rt.block_on(async {
        let engine =
            FeatureEngine::open_configured(&data_dir, spec.clone(), &settings.features).await?;
        anyhow::Ok(train::training_set(&engine, as_of, &settings.model).await?)
    })?;
    println!(
        "training set: {} labels, {} inferred negatives, {} features ({:.1} s)",
        set.labels.len(),
        set.inferred.features.len(),
        set.features.width,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let own = train::fit(Kind::Trees, &set, &spec, &settings.model, as_of, 1)?;
    let own_secs = started.elapsed().as_secs_f64();
    let rows = holdout(Kind::Trees, &set, &spec, &settings.model, as_of)?;
    println!(
        "fitting rows {}, held-out rows {} ({} positive)",
        rows.fit_y.len(),
        rows.holdout_y.len(),
        rows.holdout_y.iter().filter(|&&y| y == 1).count()
    );
    println!(
        "{:<24} {:>8} {:>8} {:>8} {:>10}",
        "learner", "ROC-AUC", "PR-AUC", "Brier", "seconds"
    );
    let line = |name: &str, m: &HoldoutMetrics, secs: f64| {
        println!(
            "{name:<24} {:>8.4} {:>8.4} {:>8.4} {secs:>10.1}",
            m.roc_auc, m.pr_auc, m.brier
        );
    };
    line(
        &format!(
            "own trees ({} trees)",
            own.training.trees_chosen.unwrap_or(0)
        ),
        &own.metrics,
        own_secs,
    );

    // perpetual reads a column-major f64 matrix; constraints by column index.
    let columns = |x: &[f32], width: usize| -> Vec<f64> {
        let n = x.len() / width;
        let mut out = vec![0.0; x.len()];
        for (i, row) in x.chunks(width).enumerate() {
            for (j, v) in row.iter().enumerate() {
                out[j * n + i] = if v.is_nan() { f64::NAN } else { *v as f64 };
            }
        }
        out
    };
    let constraints: ConstraintMap = spec
        .monotone()
        .iter()
        .enumerate()
        .filter_map(|(j, &m)| match m {
            1 => Some((j, Constraint::Positive)),
            -1 => Some((j, Constraint::Negative)),
            _ => None,
        })
        .collect();
    let width = rows.width;
    let fit_cols = columns(&rows.fit_x, width);
    let hold_cols = columns(&rows.holdout_x, width);
    let all_cols = columns(&rows.all_x, width);
    for budget in budgets {
        let started = Instant::now();
        let booster = |x: &[f64], n: usize, y: &[u8], w: &[f64]| -> Result<PerpetualBooster> {
            let mut b = PerpetualBooster::default()
                .set_objective(Objective::LogLoss)
                .set_budget(budget)
                .set_monotone_constraints(Some(constraints.clone()));
            let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            b.fit(&Matrix::new(x, n, width), &y, Some(w), None)
                .map_err(|e| anyhow::anyhow!("perpetual: {e}"))?;
            Ok(b)
        };
        let n_fit = rows.fit_y.len();
        let fitted = booster(&fit_cols, n_fit, &rows.fit_y, &rows.fit_w)?;
        let raw = fitted.predict(&Matrix::new(&hold_cols, rows.holdout_y.len(), width), true);
        // The refit on every row, as `fit` makes the model a night uses: timed, scores unused.
        booster(&all_cols, rows.all_y.len(), &rows.all_y, &rows.all_w)?;
        let secs = started.elapsed().as_secs_f64();
        line(
            &format!("perpetual budget {budget}"),
            &holdout_metrics(&raw, &rows.holdout_y),
            secs,
        );
    }
    Ok(())
}
