//! Training: labels from case outcomes, features as of each referral date, a time-ordered split
//! into fitting and calibration rows, and the fit itself.
//!
//! The order of one fit ([`fit`]):
//!
//! 1. Labelled referrals, oldest first, are cut at a date: the latest `holdout_share` calibrate
//!    and measure the model; the earlier ones fit it, together with the inferred negatives
//!    ([`super::reject`]) of nights before the cut.
//! 2. Gradient-boosted trees stop early: the most recent `validation_share` of the fitting
//!    labels measure the log loss tree by tree, and the size kept is the best one.
//! 3. The model fitted on the fitting rows scores the held-out rows: Platt calibration is fitted
//!    on them, and the metrics are cross-fitted on them (no row reports a metric its own
//!    probability was calibrated on).
//! 4. The saved model is refitted on every row (held-out labels included, the most recent and
//!    so the most telling) at the chosen size and penalty, and keeps step 3's calibration. The
//!    back-test fits the same way, so what it measures is this procedure.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::calibrate::{reliability, Platt};
use super::gbm::{best_size, FitOptions, Gbm};
use super::reject::Inferred;
use super::{HoldoutMetrics, Kind, Model, ModelError, Params, RuleParams, TrainingInfo};
use crate::features::{FeatureBatch, FeatureEngine, FeatureSpec, Label};
use crate::stats::{brier, pr_auc, roc_auc};

pub use crate::config::TrainSettings;

/// Labelled referrals and their features as of the referral date, row for row, and the
/// inferred negatives that may join them in fitting.
#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    pub labels: Vec<Label>,
    pub features: FeatureBatch,
    pub inferred: Inferred,
}

impl TrainingSet {
    /// The labelled rows `keep` accepts, and the inferred negatives of nights `keep_night`
    /// accepts.
    pub fn filter(
        &self,
        keep: impl Fn(&Label) -> bool,
        keep_night: impl Fn(NaiveDate) -> bool,
    ) -> TrainingSet {
        let mut out = TrainingSet {
            labels: Vec::new(),
            features: FeatureBatch {
                width: self.features.width,
                ..Default::default()
            },
            inferred: self.inferred.filter(keep_night),
        };
        for (i, l) in self.labels.iter().enumerate() {
            if keep(l) {
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
/// referral dates in one query, and samples the inferred negatives `settings` ask for.
pub async fn training_set(
    engine: &FeatureEngine,
    before: NaiveDate,
    settings: &TrainSettings,
) -> Result<TrainingSet, ModelError> {
    let labels = engine.labels(before).await?;
    let candidates = super::reject::candidates(
        engine,
        &labels,
        &settings.reject_inference,
        settings.trees.seed,
    )
    .await?;
    // The labels' pairs and the inferred negatives' candidates in one pass over the state: a
    // pass has a fixed cost per bucket, whatever its pairs.
    let mut cohort: Vec<(String, NaiveDate)> = labels
        .iter()
        .map(|l| (l.household_id.clone(), l.as_of))
        .chain(candidates.pairs.iter().cloned())
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
    let missing = |h: &str, d: NaiveDate| {
        ModelError::Features(crate::features::FeatureError::Mismatch {
            detail: format!(
                "features.sql returned no row for household {h} as of {d}; it must return one \
                 row per cohort pair (LEFT JOIN from cohort)"
            ),
        })
    };
    let pick =
        |pairs: &mut dyn Iterator<Item = (&str, NaiveDate)>| -> Result<FeatureBatch, ModelError> {
            let mut out = FeatureBatch {
                width: computed.width,
                ..Default::default()
            };
            for (h, d) in pairs {
                let &i = row.get(&(h, d)).ok_or_else(|| missing(h, d))?;
                out.keys.push(computed.keys[i].clone());
                out.values.extend_from_slice(computed.row(i));
            }
            Ok(out)
        };
    let features = pick(&mut labels.iter().map(|l| (l.household_id.as_str(), l.as_of)))?;
    let candidate_rows = pick(&mut candidates.pairs.iter().map(|(h, d)| (h.as_str(), *d)))?;
    let inferred = candidates.choose(&candidate_rows, engine.spec())?;
    Ok(TrainingSet {
        labels,
        features,
        inferred,
    })
}

/// Rows to fit on: features, labels and a weight each.
#[derive(Debug, Default)]
struct Rows {
    x: Vec<f32>,
    y: Vec<u8>,
    w: Vec<f64>,
}

impl Rows {
    /// Labelled rows `range` of `set` (weight 1, or the inverse of the selection probability
    /// of an explored referral, capped), then its inferred negatives of nights before
    /// `nights_before` (label 0, their weight).
    fn take(
        set: &TrainingSet,
        range: std::ops::Range<usize>,
        nights_before: NaiveDate,
        max_weight: f64,
    ) -> Rows {
        let width = set.features.width;
        let mut rows = Rows {
            x: set.features.values[range.start * width..range.end * width].to_vec(),
            y: set.labels[range.clone()].iter().map(|l| l.label).collect(),
            w: set.labels[range.clone()]
                .iter()
                .map(|l| label_weight(l, max_weight))
                .collect(),
        };
        for (i, k) in set.inferred.features.keys.iter().enumerate() {
            if k.as_of < nights_before {
                rows.x.extend_from_slice(set.inferred.features.row(i));
                rows.y.push(0);
                rows.w.push(set.inferred.weight);
            }
        }
        rows
    }

    fn len(&self) -> usize {
        self.y.len()
    }
}

/// A label's weight in fitting: an explored referral stands for every household of the band it
/// was drawn from, so its outcome counts `1 / selection_probability` times (inverse-propensity
/// weighting), capped at `max_weight` so one draw cannot dominate; any other label counts once.
pub fn label_weight(l: &Label, max_weight: f64) -> f64 {
    match l.selection_probability {
        Some(p) if p > 0.0 => (1.0 / p).min(max_weight.max(1.0)),
        _ => 1.0,
    }
}

/// Where to cut `labels` (sorted by referral date) so that about `share_before` of them come
/// first, moved back to a date boundary so no referral night is on both sides.
fn date_cut(labels: &[Label], share_before: f64) -> usize {
    let n = labels.len();
    let mut cut = ((n as f64) * share_before).round() as usize;
    cut = cut.clamp(1, n.saturating_sub(1).max(1));
    let from = labels[cut.min(n - 1)].as_of;
    while cut > 0 && labels[cut - 1].as_of == from {
        cut -= 1;
    }
    cut
}

/// How a learned kind is fitted: what the held-out rows saw, and the refit on everything.
struct Learned {
    params: Params,
    refit: Params,
    trees: Option<usize>,
}

/// Fits one model of `kind` on `set` (sorted by referral date): see the module docs.
pub fn fit(
    kind: Kind,
    set: &TrainingSet,
    spec: &FeatureSpec,
    settings: &TrainSettings,
    as_of: NaiveDate,
    version: u32,
) -> Result<Model, ModelError> {
    let Prepared {
        set,
        protected,
        cut,
        calibration_from,
        y,
        fitting,
        everything,
    } = prepare(kind, set, spec, settings, as_of)?;
    let set = set.as_ref();
    let n = set.labels.len();
    let width = set.features.width;
    let (y_fit, y_cal) = (&y[..cut], &y[cut..]);
    let x_cal = &set.features.values[cut * width..];
    let learned = match kind {
        Kind::Logistic => {
            let alpha = settings.logistic_alpha;
            let params = fit_logistic(&fitting, width, alpha, None)?;
            // The refit starts where the fit on most of the same rows ended.
            let refit = fit_logistic(&everything, width, alpha, Some(&params))?;
            Learned {
                params,
                refit,
                trees: None,
            }
        }
        Kind::Trees => fit_trees(set, &fitting, &everything, cut, spec, settings),
        Kind::Rule => {
            let p = Params::Rule(rule_params(spec)?);
            Learned {
                params: p.clone(),
                refit: p,
                trees: None,
            }
        }
    };
    let raw_cal: Vec<f64> = x_cal
        .chunks(width)
        .map(|r| super::raw_score(&learned.params, r))
        .collect();
    // The model is calibrated on every hold-out row; its metrics come from out-of-fold
    // probabilities, so no row that reports a metric calibrated itself.
    let calibration = Platt::fit(&raw_cal, y_cal);
    let metrics = holdout_metrics(&raw_cal, y_cal);
    let inferred_fit = fitting.len() - cut;
    Ok(Model {
        name: kind.name().to_string(),
        version,
        features: spec.names(),
        feature_fingerprint: spec.fingerprint(),
        params: learned.refit,
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
            inferred_negatives: if kind == Kind::Rule {
                0
            } else {
                everything.len() - n
            },
            inferred_negatives_fit: if kind == Kind::Rule { 0 } else { inferred_fit },
            inferred_weight: set.inferred.weight,
            trees_chosen: learned.trees,
            refitted_on_all: kind != Kind::Rule,
        },
        metrics,
        created_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        protected,
    })
}

/// A training set made ready to fit: protected features masked for `kind`, split at a referral
/// date into fitting and held-out (calibration) rows, with the weighted rows a learner sees.
struct Prepared<'a> {
    set: std::borrow::Cow<'a, TrainingSet>,
    protected: super::Protected,
    /// Labels before this index are fitted on; the rest are held out.
    cut: usize,
    calibration_from: NaiveDate,
    y: Vec<u8>,
    fitting: Rows,
    everything: Rows,
}

fn prepare<'a>(
    kind: Kind,
    set: &'a TrainingSet,
    spec: &FeatureSpec,
    settings: &TrainSettings,
    as_of: NaiveDate,
) -> Result<Prepared<'a>, ModelError> {
    // Protected features out of the model: held at their imputed value in every row it sees,
    // so no split or coefficient can use them; the model masks scoring rows the same way.
    let protected = super::Protected::resolve(spec, &settings.protected, kind);
    let set: std::borrow::Cow<'a, TrainingSet> = if protected.withheld.is_empty() {
        std::borrow::Cow::Borrowed(set)
    } else {
        let mut m = set.clone();
        protected.mask_all(&mut m.features.values, m.features.width);
        protected.mask_all(&mut m.inferred.features.values, m.inferred.features.width);
        std::borrow::Cow::Owned(m)
    };
    let n = set.labels.len();
    let too_few = |detail: String| ModelError::TooFewLabels { detail };
    let min = settings.min_labels.max(20);
    if n < min {
        return Err(too_few(format!(
            "{n} labelled referrals decided before {as_of}, need at least {min} (model.min_labels)"
        )));
    }
    // Split at a date, so no referral night is on both sides.
    let cut = date_cut(&set.labels, 1.0 - settings.holdout_share);
    let calibration_from = set.labels[cut].as_of;
    if cut == 0 {
        return Err(too_few(format!(
            "every label is from one referral night ({calibration_from}); need earlier nights to fit on"
        )));
    }
    let y = set.y();
    let (y_fit, y_cal) = (&y[..cut], &y[cut..]);
    for (part, ys) in [("fitting", y_fit), ("calibration", y_cal)] {
        let pos = ys.iter().filter(|&&v| v == 1).count();
        if pos == 0 || pos == ys.len() {
            return Err(too_few(format!(
                "the {part} rows ({}) hold only one class",
                ys.len()
            )));
        }
    }
    let cap = settings.max_inverse_propensity;
    let fitting = Rows::take(&set, 0..cut, calibration_from, cap);
    let everything = Rows::take(&set, 0..n, NaiveDate::MAX, cap);
    Ok(Prepared {
        set,
        protected,
        cut,
        calibration_from,
        y,
        fitting,
        everything,
    })
}

/// The rows [`fit`] fits `kind` on and measures it with, for comparing a learner outside
/// Lantern on exactly the same footing (`examples/learners.rs`).
#[derive(Debug, Clone)]
pub struct Holdout {
    pub width: usize,
    /// Fitting rows (labels before the held-out nights, then inferred negatives of earlier
    /// nights), row-major, with labels and weights.
    pub fit_x: Vec<f32>,
    pub fit_y: Vec<u8>,
    pub fit_w: Vec<f64>,
    /// The held-out rows whose out-of-fold calibrated scores give [`HoldoutMetrics`].
    pub holdout_x: Vec<f32>,
    pub holdout_y: Vec<u8>,
    /// Every row, as the model a night uses is refitted on (all labels, all inferred negatives).
    pub all_x: Vec<f32>,
    pub all_y: Vec<u8>,
    pub all_w: Vec<f64>,
}

/// See [`Holdout`].
pub fn holdout(
    kind: Kind,
    set: &TrainingSet,
    spec: &FeatureSpec,
    settings: &TrainSettings,
    as_of: NaiveDate,
) -> Result<Holdout, ModelError> {
    let p = prepare(kind, set, spec, settings, as_of)?;
    let width = p.set.features.width;
    Ok(Holdout {
        width,
        holdout_x: p.set.features.values[p.cut * width..].to_vec(),
        holdout_y: p.y[p.cut..].to_vec(),
        fit_x: p.fitting.x,
        fit_y: p.fitting.y,
        fit_w: p.fitting.w,
        all_x: p.everything.x,
        all_y: p.everything.y,
        all_w: p.everything.w,
    })
}

/// Held-out metrics of raw scores on held-out rows, as [`fit`] reports them: calibrated out of
/// fold, so no row that reports a metric calibrated itself.
pub fn holdout_metrics(raw: &[f64], y: &[u8]) -> HoldoutMetrics {
    let p: Vec<f64> = Platt::cross_fitted(raw, y);
    HoldoutMetrics {
        roc_auc: roc_auc(&p, y),
        pr_auc: pr_auc(&p, y),
        brier: brier(&p, y),
        base_rate: y.iter().filter(|&&v| v == 1).count() as f64 / y.len() as f64,
        reliability: reliability(&p, y),
    }
}

/// Trees: early stopping on the most recent fitting labels, then a fit on all fitting rows and
/// a refit on everything at the chosen size.
fn fit_trees(
    set: &TrainingSet,
    fitting: &Rows,
    everything: &Rows,
    cut: usize,
    spec: &FeatureSpec,
    settings: &TrainSettings,
) -> Learned {
    let width = set.features.width;
    let params = &settings.trees;
    let monotone = spec.monotone();
    let fit_labels = &set.labels[..cut];
    let valid_from = date_cut(fit_labels, 1.0 - params.validation_share);
    let size = if valid_from == 0 || params.early_stopping_rounds == 0 {
        params.trees
    } else {
        let early = Rows::take(
            set,
            0..valid_from,
            fit_labels[valid_from].as_of,
            settings.max_inverse_propensity,
        );
        let (vx, vy) = (
            &set.features.values[valid_from * width..cut * width],
            &fitting.y[valid_from..cut],
        );
        let opts = FitOptions {
            weights: &early.w,
            monotone: &monotone,
            validation: Some((vx, vy)),
            patience: params.early_stopping_rounds,
            ..Default::default()
        };
        let (_, curve) = Gbm::fit_with(&early.x, width, &early.y, &opts, params);
        best_size(&curve, params.early_stopping_rounds)
    };
    let sized = super::GbmParams {
        trees: size,
        ..params.clone()
    };
    let fit_on = |rows: &Rows| {
        let opts = FitOptions {
            weights: &rows.w,
            monotone: &monotone,
            ..Default::default()
        };
        Params::Trees(Gbm::fit_with(&rows.x, width, &rows.y, &opts, &sized).0)
    };
    Learned {
        params: fit_on(fitting),
        refit: fit_on(everything),
        trees: Some(size),
    }
}

/// Fits the logistic model on standardized features; `warm`, a logistic fit on other rows,
/// is re-expressed in this fit's standardization and used as Newton's starting point.
fn fit_logistic(
    rows: &Rows,
    width: usize,
    alpha: f64,
    warm: Option<&Params>,
) -> Result<Params, ModelError> {
    let n = rows.len();
    let total: f64 = rows.w.iter().sum::<f64>().max(1e-12);
    let mut mean = vec![0.0; width];
    let mut scale = vec![0.0; width];
    for (row, w) in rows.x.chunks(width).zip(&rows.w) {
        for (j, &v) in row.iter().enumerate() {
            mean[j] += w * v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= total);
    for (row, w) in rows.x.chunks(width).zip(&rows.w) {
        for (j, &v) in row.iter().enumerate() {
            scale[j] += w * (v as f64 - mean[j]).powi(2);
        }
    }
    // A constant feature gets scale 1, so it contributes nothing instead of dividing by zero.
    scale.iter_mut().for_each(|s| {
        *s = (*s / total).sqrt();
        if *s < 1e-9 {
            *s = 1.0
        }
    });
    let mut z = Vec::with_capacity(n * width);
    for row in rows.x.chunks(width) {
        z.extend(
            row.iter()
                .enumerate()
                .map(|(j, &v)| super::standardize(v, mean[j], scale[j])),
        );
    }
    // raw = b + Σ c·(x − m)/s = b' + Σ c'·(x − m')/s' with c' = c·s'/s, b' = b + Σ c·(m' − m)/s.
    let start = match warm {
        Some(Params::Logistic {
            mean: m0,
            scale: s0,
            coef,
            intercept,
            ..
        }) if coef.len() == width => {
            let mut beta: Vec<f64> = (0..width).map(|j| coef[j] * scale[j] / s0[j]).collect();
            beta.push(
                intercept
                    + (0..width)
                        .map(|j| coef[j] * (mean[j] - m0[j]) / s0[j])
                        .sum::<f64>(),
            );
            Some(beta)
        }
        _ => None,
    };
    let fitted = super::logistic::fit_from(&z, width, &rows.y, &rows.w, alpha, start.as_deref())
        .map_err(|e| ModelError::Fit(e.to_string()))?;
    tracing::debug!(
        iterations = fitted.iterations,
        warm = start.is_some(),
        "logistic fit"
    );
    Ok(Params::Logistic {
        mean,
        scale,
        coef: fitted.coef,
        intercept: fitted.intercept,
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

/// What [`train_all`] fitted and saved.
pub struct Trained {
    pub models: Vec<(Model, std::path::PathBuf)>,
}

/// Builds the training set once, fits and saves every kind, and audits it. Which model becomes
/// current is not decided here: that is the promotion gate's (`eval::promotion`), on the
/// back-test.
pub async fn train_all(
    engine: &FeatureEngine,
    settings: &TrainSettings,
    as_of: NaiveDate,
    kinds: &[Kind],
) -> Result<Trained, ModelError> {
    let set = training_set(engine, as_of, settings).await?;
    train_all_on(engine, &set, settings, as_of, kinds)
}

/// [`train_all`] on a training set already built (the promotion gate builds it once for the
/// fit and its back-test).
pub fn train_all_on(
    engine: &FeatureEngine,
    set: &TrainingSet,
    settings: &TrainSettings,
    as_of: NaiveDate,
    kinds: &[Kind],
) -> Result<Trained, ModelError> {
    tracing::debug!(
        labels = set.labels.len(),
        inferred = set.inferred.len(),
        "training set built"
    );
    let data_dir = engine.data_dir();
    let jobs: Vec<(Kind, &TrainSettings, u32)> = kinds
        .iter()
        .map(|&k| {
            (
                k,
                settings,
                super::artefact::next_version(data_dir, k.name()),
            )
        })
        .collect();
    let mut models = Vec::new();
    for fitted in fit_side_by_side(&jobs, set, engine.spec(), as_of, || {}) {
        let model = fitted?;
        let dir = super::artefact::save(data_dir, &model)?;
        tracing::info!(model = %model.id(), roc_auc = model.metrics.roc_auc, pr_auc = model.metrics.pr_auc, trees = ?model.training.trees_chosen, "saved");
        models.push((model, dir));
    }
    let mut record = crate::audit::AuditRecord::new("train");
    record.as_of = Some(as_of.to_string());
    record.detail = serde_json::json!({
        "models": models.iter().map(|(m, dir)| serde_json::json!({
            "id": m.id(), "dir": dir.display().to_string(),
            "roc_auc": m.metrics.roc_auc, "pr_auc": m.metrics.pr_auc, "brier": m.metrics.brier,
            "labels": m.training.rows_fit + m.training.rows_calibration,
            "label_sources": m.training.label_sources,
            "inferred_negatives": m.training.inferred_negatives,
            "trees": m.training.trees_chosen,
        })).collect::<Vec<_>>(),
    });
    audit(data_dir, record)?;
    Ok(Trained { models })
}

/// Fits several models on one training set side by side, a thread each, and returns them in
/// the order asked (`(kind, settings, version)` per job); `done` is called as each finishes.
/// Every fit is deterministic whatever the threads, so this changes only the wall time: a fit
/// has stretches on one core (small tree nodes, the Newton solve, calibration) that the others
/// fill.
pub fn fit_side_by_side(
    jobs: &[(Kind, &TrainSettings, u32)],
    set: &TrainingSet,
    spec: &FeatureSpec,
    as_of: NaiveDate,
    done: impl Fn() + Sync,
) -> Vec<Result<Model, ModelError>> {
    let done = &done;
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|&(kind, settings, version)| {
                s.spawn(move || {
                    let fitted = fit(kind, set, spec, settings, as_of, version);
                    done();
                    fitted
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a model fit panicked"))
            .collect()
    })
}

/// Appends to the audit log, as a model error.
pub fn audit(data_dir: &std::path::Path, r: crate::audit::AuditRecord) -> Result<(), ModelError> {
    crate::audit::append(data_dir, r)
        .map(|_| ())
        .map_err(|e| ModelError::File {
            path: crate::audit::path(data_dir).display().to_string(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inverse-propensity weights: an explored referral drawn with probability p counts 1/p
    /// times, capped; every other label once.
    #[test]
    fn an_explored_outcome_weighs_its_inverse_selection_probability_capped() {
        let mut l = Label {
            household_id: "hh_a".into(),
            as_of: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            referral_id: "ref_a".into(),
            district_code: "11110".into(),
            decided_on: NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
            label: 1,
            source: "referral".into(),
            selection_probability: None,
        };
        assert_eq!(label_weight(&l, 20.0), 1.0);
        l.selection_probability = Some(0.25);
        assert_eq!(label_weight(&l, 20.0), 4.0);
        l.selection_probability = Some(0.01);
        assert_eq!(label_weight(&l, 20.0), 20.0);
    }
}
