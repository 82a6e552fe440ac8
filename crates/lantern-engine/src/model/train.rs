//! Training: labels from case outcomes, features as of each referral date, a time-ordered split
//! into fitting and calibration rows, and the fit itself.

use std::collections::HashMap;

use chrono::NaiveDate;
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

use super::calibrate::{reliability, Platt};
use super::{gbm::Gbm, HoldoutMetrics, Kind, Model, ModelError, Params, RuleParams, TrainingInfo};
use crate::features::{FeatureBatch, FeatureEngine, FeatureSpec, Label};
use crate::stats::{brier, pr_auc, roc_auc};

pub use crate::config::TrainSettings;

/// Labelled referrals and their features as of the referral date, row for row.
#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    pub labels: Vec<Label>,
    pub features: FeatureBatch,
}

impl TrainingSet {
    /// The rows whose referral date satisfies `keep`.
    pub fn filter(&self, keep: impl Fn(NaiveDate) -> bool) -> TrainingSet {
        let mut out = TrainingSet {
            labels: Vec::new(),
            features: FeatureBatch {
                width: self.features.width,
                ..Default::default()
            },
        };
        for (i, l) in self.labels.iter().enumerate() {
            if keep(l.as_of) {
                out.labels.push(l.clone());
                out.features.keys.push(self.features.keys[i].clone());
                out.features.values.extend_from_slice(self.features.row(i));
            }
        }
        out
    }

    pub fn y(&self) -> Vec<u8> {
        self.labels.iter().map(|l| l.label).collect()
    }
}

/// Builds the training set of outcomes decided before `before`, computing the features of all
/// referral dates in one query.
pub async fn training_set(
    engine: &FeatureEngine,
    before: NaiveDate,
) -> Result<TrainingSet, ModelError> {
    let labels = engine.labels(before).await?;
    let mut cohort: Vec<(String, NaiveDate)> = labels
        .iter()
        .map(|l| (l.household_id.clone(), l.as_of))
        .collect();
    cohort.sort();
    cohort.dedup();
    let computed = engine.compute(&cohort).await?;
    let row: HashMap<(&str, NaiveDate), usize> = computed
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| ((k.household_id.as_str(), k.as_of), i))
        .collect();
    let mut features = FeatureBatch {
        width: computed.width,
        ..Default::default()
    };
    for l in &labels {
        let Some(&i) = row.get(&(l.household_id.as_str(), l.as_of)) else {
            return Err(ModelError::Features(
                crate::features::FeatureError::Mismatch {
                    detail: format!(
                        "features.sql returned no row for household {} as of {}; it must return \
                     one row per cohort pair (LEFT JOIN from cohort)",
                        l.household_id, l.as_of
                    ),
                },
            ));
        };
        features.keys.push(computed.keys[i].clone());
        features.values.extend_from_slice(computed.row(i));
    }
    Ok(TrainingSet { labels, features })
}

/// Fits one model of `kind` on `set` (sorted by referral date): the earlier rows fit it, the
/// later `holdout_share` calibrate and measure it.
pub fn fit(
    kind: Kind,
    set: &TrainingSet,
    spec: &FeatureSpec,
    settings: &TrainSettings,
    as_of: NaiveDate,
    version: u32,
) -> Result<Model, ModelError> {
    let n = set.labels.len();
    let too_few = |detail: String| ModelError::TooFewLabels { detail };
    if n < 20 {
        return Err(too_few(format!(
            "{n} labelled referrals decided before {as_of}, need at least 20"
        )));
    }
    // Split at a date, so no referral night is on both sides.
    let mut cut = ((n as f64) * (1.0 - settings.holdout_share)).round() as usize;
    cut = cut.clamp(1, n - 1);
    let calibration_from = set.labels[cut].as_of;
    while cut > 0 && set.labels[cut - 1].as_of == calibration_from {
        cut -= 1;
    }
    if cut == 0 {
        return Err(too_few(format!(
            "every label is from one referral night ({calibration_from}); need earlier nights to fit on"
        )));
    }
    let y = set.y();
    let width = set.features.width;
    let (x_fit, y_fit) = (&set.features.values[..cut * width], &y[..cut]);
    let (x_cal, y_cal) = (&set.features.values[cut * width..], &y[cut..]);
    for (part, ys) in [("fitting", y_fit), ("calibration", y_cal)] {
        let pos = ys.iter().filter(|&&v| v == 1).count();
        if pos == 0 || pos == ys.len() {
            return Err(too_few(format!(
                "the {part} rows ({}) hold only one class",
                ys.len()
            )));
        }
    }
    let params = match kind {
        Kind::Logistic => fit_logistic(x_fit, width, y_fit, settings.logistic_alpha)?,
        Kind::Trees => Params::Trees(Gbm::fit(x_fit, width, y_fit, &settings.trees)),
        Kind::Rule => Params::Rule(rule_params(spec)?),
    };
    let raw_cal: Vec<f64> = x_cal
        .chunks(width)
        .map(|r| super::raw_score(&params, r))
        .collect();
    // The model is calibrated on every hold-out row; its metrics come from out-of-fold
    // probabilities, so no row that reports a metric calibrated itself.
    let calibration = Platt::fit(&raw_cal, y_cal);
    let p_cal: Vec<f64> = Platt::cross_fitted(&raw_cal, y_cal);
    let metrics = HoldoutMetrics {
        roc_auc: roc_auc(&p_cal, y_cal),
        pr_auc: pr_auc(&p_cal, y_cal),
        brier: brier(&p_cal, y_cal),
        base_rate: y_cal.iter().filter(|&&v| v == 1).count() as f64 / y_cal.len() as f64,
        reliability: reliability(&p_cal, y_cal),
    };
    Ok(Model {
        name: kind.name().to_string(),
        version,
        features: spec.names(),
        feature_fingerprint: spec.fingerprint(),
        params,
        calibration,
        training: TrainingInfo {
            as_of,
            first_referral: set.labels[0].as_of,
            last_referral: set.labels[n - 1].as_of,
            calibration_from,
            rows_fit: cut,
            positives_fit: y_fit.iter().filter(|&&v| v == 1).count(),
            rows_calibration: n - cut,
            positives_calibration: y_cal.iter().filter(|&&v| v == 1).count(),
            label_sources: set.labels.iter().fold(Default::default(), |mut m, l| {
                *m.entry(l.source.clone()).or_insert(0) += 1;
                m
            }),
        },
        metrics,
        created_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

fn fit_logistic(x: &[f32], width: usize, y: &[u8], alpha: f64) -> Result<Params, ModelError> {
    let n = y.len();
    let mut mean = vec![0.0; width];
    let mut scale = vec![0.0; width];
    for row in x.chunks(width) {
        for (j, &v) in row.iter().enumerate() {
            mean[j] += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    for row in x.chunks(width) {
        for (j, &v) in row.iter().enumerate() {
            scale[j] += (v as f64 - mean[j]).powi(2);
        }
    }
    // A constant feature gets scale 1, so it contributes nothing instead of dividing by zero.
    scale.iter_mut().for_each(|s| {
        *s = (*s / n as f64).sqrt();
        if *s < 1e-9 {
            *s = 1.0
        }
    });
    let z = Array2::from_shape_fn((n, width), |(i, j)| {
        super::standardize(x[i * width + j], mean[j], scale[j])
    });
    let targets: Array1<usize> = y.iter().map(|&v| v as usize).collect();
    let dataset = Dataset::new(z, targets);
    let fitted = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(300)
        .gradient_tolerance(1e-5)
        .fit(&dataset)
        .map_err(|e| ModelError::Fit(e.to_string()))?;
    // linfa labels the larger class +1 whatever its value; turn it round if that was 0.
    let sign = if fitted.labels().pos.class == 1 {
        1.0
    } else {
        -1.0
    };
    Ok(Params::Logistic {
        mean,
        scale,
        coef: fitted.params().iter().map(|c| sign * c).collect(),
        intercept: sign * fitted.intercept(),
        alpha,
    })
}

/// Finds the rule's inputs among the features by name.
pub fn rule_params(spec: &FeatureSpec) -> Result<RuleParams, ModelError> {
    let names = spec.names();
    let find = |n: &str| {
        names
            .iter()
            .position(|f| f == n)
            .ok_or_else(|| ModelError::FeatureMismatch {
                model: "rule".into(),
                detail: format!("the rule needs feature `{n}`"),
            })
    };
    let overdue: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.starts_with("ua_") && n.ends_with("_overdue_max_90d"))
        .map(|(i, _)| i)
        .collect();
    if overdue.is_empty() {
        return Err(ModelError::FeatureMismatch {
            model: "rule".into(),
            detail: "the rule needs the `ua_<utility>_overdue_max_90d` features".into(),
        });
    }
    Ok(RuleParams {
        cut: find("ua_cut_n_90d")?,
        overdue,
        unpaid: find("ua_utilities_90d")?,
    })
}

/// What `lantern train` did.
pub struct Trained {
    pub models: Vec<(Model, std::path::PathBuf)>,
    /// The model now marked current: the learned model with the best held-out PR-AUC.
    pub current: String,
}

/// Builds the training set once, fits and saves every kind, and marks the best learned model
/// (by held-out PR-AUC, the ranking that matters when lists are short) as current.
pub async fn train_all(
    engine: &FeatureEngine,
    settings: &TrainSettings,
    as_of: NaiveDate,
    kinds: &[Kind],
) -> Result<Trained, ModelError> {
    let set = training_set(engine, as_of).await?;
    tracing::debug!(labels = set.labels.len(), "training set built");
    let data_dir = engine.data_dir();
    let mut models = Vec::new();
    for &kind in kinds {
        let version = super::artefact::next_version(data_dir, kind.name());
        let model = fit(kind, &set, engine.spec(), settings, as_of, version)?;
        let dir = super::artefact::save(data_dir, &model)?;
        tracing::info!(model = %model.id(), roc_auc = model.metrics.roc_auc, pr_auc = model.metrics.pr_auc, "saved");
        models.push((model, dir));
    }
    let best = models
        .iter()
        .filter(|(m, _)| m.kind() != Kind::Rule)
        .max_by(|a, b| a.0.metrics.pr_auc.total_cmp(&b.0.metrics.pr_auc))
        .or_else(|| models.first())
        .map(|(m, _)| m.id());
    let current = best.unwrap_or_default();
    let audit = |r: crate::audit::AuditRecord| {
        crate::audit::append(data_dir, r).map_err(|e| ModelError::File {
            path: crate::audit::path(data_dir).display().to_string(),
            message: e.to_string(),
        })
    };
    let mut record = crate::audit::AuditRecord::new("train");
    record.as_of = Some(as_of.to_string());
    record.detail = serde_json::json!({
        "models": models.iter().map(|(m, dir)| serde_json::json!({
            "id": m.id(), "dir": dir.display().to_string(),
            "roc_auc": m.metrics.roc_auc, "pr_auc": m.metrics.pr_auc, "brier": m.metrics.brier,
            "labels": m.training.rows_fit + m.training.rows_calibration,
            "label_sources": m.training.label_sources,
        })).collect::<Vec<_>>(),
    });
    audit(record)?;
    if !current.is_empty() {
        super::artefact::set_current(data_dir, &current)?;
        let mut promote = crate::audit::AuditRecord::new("promote");
        promote.as_of = Some(as_of.to_string());
        promote.model = Some(current.clone());
        promote.detail =
            serde_json::json!({ "rule": "highest held-out PR-AUC among learned models" });
        audit(promote)?;
    }
    Ok(Trained { models, current })
}
