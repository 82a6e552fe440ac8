//! `lantern backtest`: rolling temporal splits. For each of the last `folds` referral nights T,
//! every model is trained on what was known before T (referrals before T whose outcomes were
//! decided before T) and evaluated on the referrals of `[T, T + horizon)`.
//!
//! Features are point-in-time, so the features of every labelled referral are computed once,
//! in one query, and shared by all folds: a referral's features as of its own date do not
//! change with the fold.
//!
//! **What the numbers can claim.** Labels exist only for households that were referred (by
//! the rule in use then) and visited. The metrics say how well a model orders *referred*
//! households by their chance of a confirmed crisis. They cannot say how many households in
//! crisis no one referred (recall over the whole population is unknowable from outcomes alone),
//! and a model that would pick quite different households is measured only where its picks
//! overlap the old rule's. The report says so in its text.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::features::FeatureEngine;
use crate::model::calibrate::{reliability, ReliabilityBin};
use crate::model::train::{fit_side_by_side, training_set, TrainSettings, TrainingSet};
use crate::model::{Kind, ModelError};
use crate::registry::{Capacities, Registry};
use crate::stats::{brier, pr_auc, roc_auc};

#[derive(Debug, Clone)]
pub struct BacktestSettings {
    /// How many evaluation nights (the most recent referral nights with outcomes).
    pub folds: usize,
    /// Days after T whose referrals are evaluated.
    pub horizon_days: u32,
    /// Capacity per district and night, scaled as for screening.
    pub capacity_scale: f64,
    /// The fairness audit's band and smallest group.
    pub fairness: crate::config::FairnessSettings,
}

/// Metrics of one model on one set of evaluated referrals.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub referrals: usize,
    pub confirmed: usize,
    /// Top `capacity` of each district and night, ranked by the model: the share confirmed.
    pub precision_at_capacity: f64,
    /// The share of all confirmed crises that the top-`capacity` picks found.
    pub recall_at_capacity: f64,
    /// The share confirmed among the top fifth of all evaluated referrals (every district
    /// together), which still separates models where district pools are smaller than capacity.
    pub precision_at_top_fifth: f64,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub brier: f64,
    /// precision_at_capacity / the rule's.
    pub lift_over_rule: f64,
}

pub use crate::fairness::GroupRow;

#[derive(Debug, Clone, Serialize)]
pub struct Fold {
    pub train_before: NaiveDate,
    pub evaluate_until: NaiveDate,
    pub train_labels: usize,
    pub models: BTreeMap<String, Metrics>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BacktestReport {
    pub generated_at: String,
    pub data_until: NaiveDate,
    pub horizon_days: u32,
    pub folds: Vec<Fold>,
    /// All folds' evaluated referrals together.
    pub pooled: BTreeMap<String, Metrics>,
    pub reliability: BTreeMap<String, Vec<ReliabilityBin>>,
    pub fairness: BTreeMap<String, Vec<GroupRow>>,
    /// The current model against the candidates, on the evaluated referrals made on or after
    /// the date it learned up to (none when there is no current model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versus_current: Option<VersusCurrent>,
    /// The evaluated referrals drawn by exploration, alone (none when no night explored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exploration: Option<BTreeMap<String, Metrics>>,
    /// Folds that could not be fitted, with why; the report counts only the others.
    pub skipped: Vec<SkippedFold>,
    pub caveats: Vec<String>,
}

/// A back-test fold left out, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedFold {
    pub train_before: NaiveDate,
    pub reason: String,
}

/// Every model of the back-test and the current one, on the rows out of the current one's
/// training window.
#[derive(Debug, Clone, Serialize)]
pub struct VersusCurrent {
    pub model: String,
    pub trained_until: NaiveDate,
    /// By name; `current` is the current model.
    pub metrics: BTreeMap<String, Metrics>,
    pub fairness: BTreeMap<String, Vec<GroupRow>>,
}

/// One evaluated referral: who, where, when, its label, and each model's score.
#[derive(Clone)]
struct Scored {
    district: String,
    night: NaiveDate,
    label: u8,
    /// The fairness audit's groups ([`crate::fairness::ATTRIBUTES`]).
    groups: crate::fairness::Groups,
    /// Each model's calibrated probability, by model name (`trees`, `logistic`, `rule`, and
    /// `current` for the current model where it is compared).
    scores: BTreeMap<String, f64>,
    /// The current model's probability, where this referral is out of its training window.
    current: Option<f64>,
    /// Drawn by exploration (not picked by any model's ranking).
    explored: bool,
}

/// The trees fitted the other way round on protected attributes (with them when the settings
/// keep them out of the model, without them otherwise), so the report shows precision and
/// fairness both ways: `trees_without_protected` or `trees_with_protected`.
pub fn other_way_name(train: &TrainSettings) -> &'static str {
    if train.protected.out_of_model {
        "trees_with_protected"
    } else {
        "trees_without_protected"
    }
}

pub async fn backtest(
    engine: &FeatureEngine,
    train: &TrainSettings,
    registry: &Registry,
    capacities: &Capacities,
    settings: &BacktestSettings,
    until: NaiveDate,
    progress: &indicatif::ProgressBar,
) -> Result<BacktestReport, ModelError> {
    let all = training_set(
        engine,
        until.checked_add_days(Days::new(1)).unwrap_or(until),
        train,
    )
    .await?;
    backtest_on(
        engine, &all, train, registry, capacities, settings, until, None, progress,
    )
}

/// [`backtest`] on a training set already built (every labelled referral decided by `until`,
/// with its features and the inferred negatives), with the current model, if given, scored as
/// well on every evaluated referral made on or after the date it learned up to
/// ([`BacktestReport::versus_current`]): what the promotion gate compares a new model with.
#[allow(clippy::too_many_arguments)]
pub fn backtest_on(
    engine: &FeatureEngine,
    all: &TrainingSet,
    train: &TrainSettings,
    registry: &Registry,
    capacities: &Capacities,
    settings: &BacktestSettings,
    until: NaiveDate,
    incumbent: Option<&crate::model::Model>,
    progress: &indicatif::ProgressBar,
) -> Result<BacktestReport, ModelError> {
    let mut nights: Vec<NaiveDate> = all.labels.iter().map(|l| l.as_of).collect();
    nights.dedup();
    // Keep at least two nights to learn from.
    let first_eval = nights.len().saturating_sub(settings.folds).max(2);
    let eval_nights: Vec<NaiveDate> = nights.get(first_eval..).unwrap_or(&[]).to_vec();
    if eval_nights.is_empty() {
        return Err(ModelError::TooFewLabels {
            detail: format!(
                "{} referral nights with outcomes; a back-test needs at least 3",
                nights.len()
            ),
        });
    }
    let other_way = other_way_name(train);
    let kind_names = ["rule", "logistic", "trees", other_way];
    let mut flipped = train.clone();
    flipped.protected.out_of_model = !train.protected.out_of_model;
    let fits: Vec<(Kind, &str, &TrainSettings)> = Kind::ALL
        .iter()
        .map(|&k| (k, k.name(), train))
        .chain(std::iter::once((Kind::Trees, other_way, &flipped)))
        .collect();
    progress.set_length((eval_nights.len() * fits.len()) as u64);
    let capacity = |district: &str| -> usize {
        capacities
            .scaled(registry, district, settings.capacity_scale)
            .max(1) as usize
    };
    let mut folds = Vec::new();
    let mut skipped: Vec<SkippedFold> = Vec::new();
    let mut pooled: Vec<Scored> = Vec::new();
    for &t in &eval_nights {
        let until_t = t
            .checked_add_days(Days::new(settings.horizon_days as u64))
            .unwrap_or(t);
        // Only outcomes decided before T were known at T; inferred negatives are as of their
        // own night, so those before T are point in time too.
        let known: TrainingSet = all.filter(|l| l.as_of < t && l.decided_on < t, |d| d < t);
        let eval = all.filter(|l| l.as_of >= t && l.as_of < until_t, |_| false);
        let mut scored: Vec<Scored> = (0..eval.labels.len())
            .map(|i| Scored {
                district: eval.labels[i].district_code.clone(),
                night: eval.labels[i].as_of,
                label: eval.labels[i].label,
                groups: {
                    let k = &eval.features.keys[i];
                    crate::fairness::groups(
                        k.household_type.as_deref(),
                        k.head_age_band.as_deref(),
                        k.disability,
                        Some(eval.labels[i].district_code.as_str()),
                        registry,
                    )
                },
                scores: BTreeMap::new(),
                current: None,
                explored: eval.labels[i].selection_probability.is_some(),
            })
            .collect();
        // A fold whose models cannot be fitted (too few labels before it, one class only) is
        // skipped with its reason; the others still count.
        let mut failed = None;
        let jobs: Vec<(Kind, &TrainSettings, u32)> =
            fits.iter().map(|&(kind, _, s)| (kind, s, 0)).collect();
        let fitted = fit_side_by_side(&jobs, &known, engine.spec(), t, || progress.inc(1));
        for ((_, name, _), model) in fits.iter().zip(fitted) {
            let model = match model {
                Ok(m) => m,
                Err(e) => {
                    failed = Some(format!("{name}: {e}"));
                    break;
                }
            };
            for (i, s) in scored.iter_mut().enumerate() {
                s.scores
                    .insert(name.to_string(), model.score(eval.features.row(i)));
            }
        }
        if let Some(reason) = failed {
            tracing::warn!(night = %t, %reason, "back-test fold skipped");
            skipped.push(SkippedFold {
                train_before: t,
                reason,
            });
            continue;
        }
        // The current model, on the referrals it was not trained on (made on or after the
        // date it learned up to): the same rows, so the comparison is like for like.
        if let Some(current) = incumbent {
            for (i, s) in scored.iter_mut().enumerate() {
                if s.night >= current.training.as_of {
                    s.current = Some(current.score(eval.features.row(i)));
                }
            }
        }
        let models = metrics_by_model(&scored, &kind_names, &capacity);
        folds.push(Fold {
            train_before: t,
            evaluate_until: until_t,
            train_labels: known.labels.len(),
            models,
        });
        pooled.extend(scored);
    }
    if folds.is_empty() {
        return Err(ModelError::TooFewLabels {
            detail: format!(
                "every back-test fold was skipped: {}",
                skipped
                    .iter()
                    .map(|s| format!("{} ({})", s.train_before, s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    }
    let mut reliability_tables = BTreeMap::new();
    for name in kind_names {
        let p: Vec<f64> = pooled.iter().map(|s| s.scores[name]).collect();
        let y: Vec<u8> = pooled.iter().map(|s| s.label).collect();
        reliability_tables.insert(name.to_string(), reliability(&p, &y));
    }
    let fairness = fairness_by_model(&pooled, &kind_names, &capacity, &settings.fairness);
    // The exploration slice on its own: the only referrals no ranking chose, so the only ones
    // where a model is measured on households it would not have picked.
    let explored: Vec<Scored> = pooled.iter().filter(|s| s.explored).cloned().collect();
    let exploration =
        (!explored.is_empty()).then(|| metrics_by_model(&explored, &kind_names, &capacity));
    let versus_current = incumbent.map(|current| {
        let rows: Vec<Scored> = pooled
            .iter()
            .filter_map(|s| {
                let mut s = s.clone();
                s.scores.insert("current".into(), s.current?);
                Some(s)
            })
            .collect();
        let names = ["rule", "logistic", "trees", other_way, "current"];
        VersusCurrent {
            model: current.id(),
            trained_until: current.training.as_of,
            metrics: metrics_by_model(&rows, &names, &capacity),
            fairness: fairness_by_model(&rows, &names, &capacity, &settings.fairness),
        }
    });
    Ok(BacktestReport {
        generated_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        data_until: until,
        horizon_days: settings.horizon_days,
        folds,
        pooled: metrics_by_model(&pooled, &kind_names, &capacity),
        reliability: reliability_tables,
        fairness,
        versus_current,
        exploration,
        skipped,
        caveats: vec![
            "Labels exist only for referred households (picked by the rule in use then) whose visit \
             reached a decision; every metric here is about ordering referred households, not about \
             the whole population."
                .into(),
            "Recall is the share of the confirmed crises *among referred households* that the top \
             picks found. Crises no one referred are invisible to outcomes and not counted."
                .into(),
            "`unreachable` and `moved` outcomes carry no label and are left out; they are the \
             households hardest to reach."
                .into(),
            "Precision at capacity ranks each district's referred households of a night and takes the \
             top `capacity` (scaled by screen.capacity_scale); when a district had fewer referrals \
             than its capacity, every model scores the same there."
                .into(),
        ],
    })
}

/// Which rows a model's top-`capacity` per district and night picks.
fn select(rows: &[Scored], model: &str, capacity: &dyn Fn(&str) -> usize) -> Vec<bool> {
    let mut groups: BTreeMap<(&str, NaiveDate), Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        groups
            .entry((r.district.as_str(), r.night))
            .or_default()
            .push(i);
    }
    let mut selected = vec![false; rows.len()];
    for ((district, _), mut idx) in groups {
        // Highest score first; ties by position, so the choice is fully determined.
        idx.sort_by(|&a, &b| {
            rows[b].scores[model]
                .total_cmp(&rows[a].scores[model])
                .then(a.cmp(&b))
        });
        let take = capacity(district);
        for &i in idx.iter().take(take) {
            selected[i] = true;
        }
    }
    selected
}

fn precision_recall(rows: &[Scored], selected: &[bool]) -> (f64, f64) {
    let picked = selected.iter().filter(|&&s| s).count();
    let hits = rows
        .iter()
        .zip(selected)
        .filter(|(r, &s)| s && r.label == 1)
        .count();
    let positives = rows.iter().filter(|r| r.label == 1).count();
    (ratio(hits, picked), ratio(hits, positives))
}

/// Precision among the top `share` of rows by score (ties by position).
fn top_share(p: &[f64], y: &[u8], share: f64) -> f64 {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    let k = ((p.len() as f64 * share).ceil() as usize).min(p.len());
    ratio(idx.iter().take(k).filter(|&&i| y[i] == 1).count(), k)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Each model's metrics on `rows`, by name; `rule` comes first in `names` so every lift is
/// over it.
fn metrics_by_model(
    rows: &[Scored],
    names: &[&str],
    capacity: &dyn Fn(&str) -> usize,
) -> BTreeMap<String, Metrics> {
    let y: Vec<u8> = rows.iter().map(|r| r.label).collect();
    let mut out = BTreeMap::new();
    let mut rule_precision = f64::NAN;
    for &name in names {
        let p: Vec<f64> = rows.iter().map(|r| r.scores[name]).collect();
        let (precision, recall) = precision_recall(rows, &select(rows, name, capacity));
        let fifth = top_share(&p, &y, 0.2);
        if name == "rule" {
            rule_precision = precision;
        }
        out.insert(
            name.to_string(),
            Metrics {
                referrals: rows.len(),
                confirmed: y.iter().filter(|&&v| v == 1).count(),
                precision_at_capacity: precision,
                recall_at_capacity: recall,
                precision_at_top_fifth: fifth,
                roc_auc: roc_auc(&p, &y),
                pr_auc: pr_auc(&p, &y),
                brier: brier(&p, &y),
                lift_over_rule: precision / rule_precision,
            },
        );
    }
    out
}

/// The fairness audit of each model's top-`capacity` picks on `rows`.
fn fairness_by_model(
    rows: &[Scored],
    names: &[&str],
    capacity: &dyn Fn(&str) -> usize,
    settings: &crate::config::FairnessSettings,
) -> BTreeMap<String, Vec<GroupRow>> {
    let mut fairness = BTreeMap::new();
    for &name in names {
        let selected = select(rows, name, capacity);
        let members: Vec<crate::fairness::Member> = rows
            .iter()
            .zip(&selected)
            .map(|(r, &selected)| crate::fairness::Member {
                groups: r.groups,
                selected,
                crisis: r.label as f64,
            })
            .collect();
        fairness.insert(
            name.to_string(),
            crate::fairness::audit_observed(&members, settings),
        );
    }
    fairness
}
