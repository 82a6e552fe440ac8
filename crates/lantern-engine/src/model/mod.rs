//! Risk models: what turns a household's features into a calibrated probability that a visit
//! confirms a crisis, with the reasons behind it.
//!
//! Three kinds, all explained the same way (per-feature contributions, summed by reason code):
//!
//! | kind | what | contributions |
//! |---|---|---|
//! | `logistic` | L2 logistic regression, weighted ([`logistic`]), on standardized features | coefficient × standardized value |
//! | `trees` | gradient-boosted trees ([`gbm`]): weighted, monotone where declared, stopped early | path contributions |
//! | `rule` | today's practice: cut-offs first, then months overdue, then unpaid bills | points per criterion |
//!
//! Every model's raw score is calibrated on held-out, later referrals (Platt scaling), so
//! scores of different models are comparable probabilities. A saved model is a folder
//! `<data.dir>/models/<name>@<version>/` with `model.json` and a human-readable
//! `MODEL_CARD.md`; see [`artefact`].

pub mod artefact;
pub mod calibrate;
pub mod gbm;
pub mod logistic;
pub mod reject;
pub mod train;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::contract::{ReasonCode, MAX_REASONS};
use crate::features::FeatureSpec;
pub use calibrate::{Platt, ReliabilityBin};
pub use gbm::{Gbm, GbmParams};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "model {model} was trained on other features than pipelines/ now defines ({detail}); \
         retrain with `lantern train --as-of DATE`, or point features.dir at the pipelines it \
         was trained with"
    )]
    FeatureMismatch { model: String, detail: String },
    #[error("no model `{0}` under {1}; train one with `lantern train --as-of DATE`")]
    NotFound(String, String),
    #[error("model file {path}: {message}")]
    File { path: String, message: String },
    #[error(
        "not enough labels to train: {detail}. Labels come from case outcomes (SPEC §3) of \
         referrals in the referral history; ingest outcomes and import past referrals first"
    )]
    TooFewLabels { detail: String },
    #[error("logistic regression did not fit: {0}")]
    Fit(String),
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
}

/// Which algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Logistic,
    Trees,
    Rule,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Trees, Kind::Logistic, Kind::Rule];

    /// The model name a kind is saved under.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Logistic => "logistic",
            Kind::Trees => "trees",
            Kind::Rule => "rule",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// The fitted parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Params {
    Logistic {
        mean: Vec<f64>,
        scale: Vec<f64>,
        coef: Vec<f64>,
        intercept: f64,
        alpha: f64,
    },
    Trees(Gbm),
    Rule(RuleParams),
}

/// Where today's rule finds its inputs among the features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleParams {
    /// Service cut-offs in the last 90 days.
    pub cut: usize,
    /// The worst months overdue of each utility in the last 90 days.
    pub overdue: Vec<usize>,
    /// How many kinds of bills went unpaid in the last 90 days.
    pub unpaid: usize,
}

/// The training window and data counts, for the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Labels decided before this date were used.
    pub as_of: NaiveDate,
    pub first_referral: NaiveDate,
    pub last_referral: NaiveDate,
    /// Referrals on or after this date were held out for calibration and metrics.
    pub calibration_from: NaiveDate,
    pub rows_fit: usize,
    pub positives_fit: usize,
    pub rows_calibration: usize,
    pub positives_calibration: usize,
    /// Labels by where their referral date came from: `referral` (a list) or `estimated`
    /// (an outcome no list holds; `decided_on` less the configured lag).
    #[serde(default)]
    pub label_sources: std::collections::BTreeMap<String, usize>,
    /// Reject inference: never-referred, weak-evidence households that joined the refit as
    /// negatives, how many of them the held-out model was fitted with, and their weight.
    #[serde(default)]
    pub inferred_negatives: usize,
    #[serde(default)]
    pub inferred_negatives_fit: usize,
    #[serde(default)]
    pub inferred_weight: f64,
    /// Trees: the size early stopping chose.
    #[serde(default)]
    pub trees_chosen: Option<usize>,
    /// Whether the saved model was refitted on every row after calibration and metrics were
    /// taken from the model fitted before `calibration_from`.
    #[serde(default)]
    pub refitted_on_all: bool,
}

/// Held-out metrics, on the calibration rows, from cross-fitted (out-of-fold) probabilities:
/// a row's probability comes from a Platt fitted on the other half of the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutMetrics {
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub brier: f64,
    pub base_rate: f64,
    pub reliability: Vec<ReliabilityBin>,
}

/// A trained, calibrated model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    pub version: u32,
    /// The feature names, in the order `params` expects them.
    pub features: Vec<String>,
    /// [`FeatureSpec::fingerprint`] of those names.
    pub feature_fingerprint: String,
    pub params: Params,
    pub calibration: Platt,
    pub training: TrainingInfo,
    pub metrics: HoldoutMetrics,
    pub created_at: String,
    /// Which features describe protected attributes, and where they may not go.
    #[serde(default)]
    pub protected: Protected,
}

/// A model's protected features ([`crate::config::ProtectedSettings`]), resolved to indices
/// when it was fitted, so that scoring and reasons need no catalogue lookup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Protected {
    /// The attributes the setting named.
    pub attributes: Vec<String>,
    /// Features held at their imputed value when fitting and scoring (out of the model):
    /// (index, value).
    pub withheld: Vec<(usize, f32)>,
    /// Features never shown as a reason.
    pub hidden: Vec<usize>,
}

impl Protected {
    /// The protected features of `spec` under `settings`, for a model of `kind` (the rule reads
    /// no household attribute, so nothing is withheld from it; its reasons are hidden alike).
    pub fn resolve(
        spec: &FeatureSpec,
        settings: &crate::config::ProtectedSettings,
        kind: Kind,
    ) -> Protected {
        let chosen: Vec<usize> = spec
            .features
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.protected
                    .as_ref()
                    .is_some_and(|a| settings.attributes.iter().any(|s| s == a))
            })
            .map(|(i, _)| i)
            .collect();
        Protected {
            attributes: settings.attributes.clone(),
            withheld: if settings.out_of_model && kind != Kind::Rule {
                chosen
                    .iter()
                    .map(|&i| (i, spec.features[i].impute as f32))
                    .collect()
            } else {
                Vec::new()
            },
            hidden: if settings.out_of_reasons || settings.out_of_model {
                chosen
            } else {
                Vec::new()
            },
        }
    }

    /// `row` with the withheld features at their imputed value (borrowed when none are).
    pub fn mask<'a>(&self, row: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        if self.withheld.is_empty() {
            return std::borrow::Cow::Borrowed(row);
        }
        let mut owned = row.to_vec();
        for &(i, v) in &self.withheld {
            if let Some(x) = owned.get_mut(i) {
                *x = v;
            }
        }
        std::borrow::Cow::Owned(owned)
    }

    /// Every row of a row-major batch of `width`, masked in place.
    pub fn mask_all(&self, values: &mut [f32], width: usize) {
        if self.withheld.is_empty() || width == 0 {
            return;
        }
        for row in values.chunks_mut(width) {
            for &(i, v) in &self.withheld {
                row[i] = v;
            }
        }
    }
}

impl Model {
    /// `name@version`, as written on every referral.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    pub fn kind(&self) -> Kind {
        match self.params {
            Params::Logistic { .. } => Kind::Logistic,
            Params::Trees(_) => Kind::Trees,
            Params::Rule(_) => Kind::Rule,
        }
    }

    /// Fails, saying what differs, unless the model was trained on exactly `spec`'s features:
    /// the same names in the same order, computed by the same pipeline (the fingerprint covers
    /// features.sql, the look-back and the catalogue). An edited query with the same column
    /// names computes different numbers, which the model's parameters were not fitted to.
    pub fn check_features(&self, spec: &FeatureSpec) -> Result<(), ModelError> {
        let now = spec.names();
        if now == self.features {
            let fingerprint = spec.fingerprint();
            if fingerprint == self.feature_fingerprint {
                return Ok(());
            }
            return Err(ModelError::FeatureMismatch {
                model: self.id(),
                detail: format!(
                    "the same {} columns, but features.sql, the look-back, or an imputation \
                     or reason code in features.toml changed since: pipeline fingerprint {} \
                     then, {} now",
                    now.len(),
                    self.feature_fingerprint,
                    fingerprint
                ),
            });
        }
        let missing: Vec<&String> = self.features.iter().filter(|f| !now.contains(f)).collect();
        let added: Vec<&String> = now.iter().filter(|f| !self.features.contains(f)).collect();
        let detail = if missing.is_empty() && added.is_empty() {
            "same features in a different order".to_string()
        } else {
            format!(
                "{} no longer defined: {:?}; {} new: {:?}",
                missing.len(),
                missing.iter().take(5).collect::<Vec<_>>(),
                added.len(),
                added.iter().take(5).collect::<Vec<_>>()
            )
        };
        Err(ModelError::FeatureMismatch {
            model: self.id(),
            detail,
        })
    }

    /// Checks that the parameters fit the feature list, so that scoring a row can never index
    /// out of bounds: a hand-edited or truncated `model.json` is refused at load, not at 3 a.m.
    /// in the middle of a screening run.
    pub fn check_shape(&self) -> Result<(), String> {
        let p = self.features.len();
        let protected = self.protected.withheld.iter().map(|(i, _)| i);
        if protected.chain(&self.protected.hidden).any(|&i| i >= p) {
            return Err(format!(
                "a protected feature index is beyond the {p} listed"
            ));
        }
        match &self.params {
            Params::Logistic {
                mean, scale, coef, ..
            } => {
                if mean.len() != p || scale.len() != p || coef.len() != p {
                    return Err(format!(
                        "logistic parameters have {}/{}/{} values (mean/scale/coef) for {p} features",
                        mean.len(),
                        scale.len(),
                        coef.len()
                    ));
                }
                if scale.iter().any(|s| !(*s > 0.0)) {
                    return Err("a logistic scale is not positive".into());
                }
            }
            Params::Trees(g) => {
                for (t, tree) in g.trees.iter().enumerate() {
                    let n = tree.nodes.len();
                    if n == 0 {
                        return Err(format!("tree {t} has no nodes"));
                    }
                    for (i, node) in tree.nodes.iter().enumerate() {
                        // Children come after their parent, so a walk always ends.
                        let child_ok = |c: u32| (c as usize) > i && (c as usize) < n;
                        let bad_children = node.feature.is_some()
                            && !(child_ok(node.left) && child_ok(node.right));
                        if node.feature.is_some_and(|f| f >= p) || bad_children {
                            return Err(format!(
                                "tree {t} points outside its {n} nodes or {p} features"
                            ));
                        }
                    }
                }
            }
            Params::Rule(r) => {
                if r.cut >= p || r.unpaid >= p || r.overdue.iter().any(|&i| i >= p) {
                    return Err(format!("the rule names a feature beyond the {p} listed"));
                }
            }
        }
        Ok(())
    }

    /// The uncalibrated score (log-odds for learned models, scaled points for the rule).
    pub fn raw(&self, row: &[f32]) -> f64 {
        raw_score(&self.params, &self.protected.mask(row))
    }

    /// The calibrated probability that a visit confirms a crisis.
    pub fn score(&self, row: &[f32]) -> f64 {
        self.calibration.apply(self.raw(row))
    }

    /// Each feature's contribution to the raw score, in calibrated log-odds.
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        let c = contributions(&self.params, &self.protected.mask(row));
        c.into_iter().map(|v| v * self.calibration.a).collect()
    }

    /// Up to three reasons, largest positive contribution first: feature contributions summed
    /// by their reason code, leaving out protected features the model may not show.
    pub fn reasons(&self, row: &[f32], spec: &FeatureSpec) -> Vec<ReasonCode> {
        let mut contributions = self.contributions(row);
        for &i in &self.protected.hidden {
            if let Some(c) = contributions.get_mut(i) {
                *c = 0.0;
            }
        }
        let mut by_code: Vec<(String, f64)> = Vec::new();
        for (def, c) in spec.features.iter().zip(contributions) {
            match by_code.iter_mut().find(|(code, _)| *code == def.reason) {
                Some((_, sum)) => *sum += c,
                None => by_code.push((def.reason.clone(), c)),
            }
        }
        top_reasons(by_code, spec)
    }
}

/// The `MAX_REASONS` largest positive (code, contribution) pairs, labelled; ties by code so the
/// order never depends on anything else.
pub fn top_reasons(mut by_code: Vec<(String, f64)>, spec: &FeatureSpec) -> Vec<ReasonCode> {
    by_code.retain(|(_, c)| *c > 1e-9);
    by_code.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_code
        .into_iter()
        .take(MAX_REASONS)
        .map(|(code, contribution)| reason(spec, &code, contribution))
        .collect()
}

/// One labelled reason code.
pub fn reason(spec: &FeatureSpec, code: &str, contribution: f64) -> ReasonCode {
    let (ko, en) = spec
        .reason_label(code)
        .map(|l| (l.ko.clone(), l.en.clone()))
        .unwrap_or_else(|| (code.to_string(), code.to_string()));
    ReasonCode {
        code: code.to_string(),
        label_ko: ko,
        label_en: en,
        contribution: (contribution * 1000.0).round() / 1000.0,
    }
}

/// Today's practice, as points: a cut-off outranks everything, then months overdue, then how
/// many bills are unpaid. The rule baseline belongs to the model stage; the simulator uses it to
/// pick its past referral rounds as today's system would.
pub fn rule_score(cut: bool, max_overdue: u16, unpaid: usize) -> f64 {
    (if cut { 1000.0 } else { 0.0 }) + 10.0 * max_overdue.min(60) as f64 + unpaid.min(9) as f64
}

/// The most points [`rule_score`] gives, to scale it into 0–1.
pub const RULE_MAX: f64 = 1000.0 + 600.0 + 9.0;

fn rule_inputs(p: &RuleParams, row: &[f32]) -> (bool, u16, usize) {
    let cut = row[p.cut] > 0.0;
    let overdue = p.overdue.iter().map(|&i| row[i]).fold(0f32, f32::max);
    (
        cut,
        overdue.clamp(0.0, 240.0) as u16,
        row[p.unpaid].max(0.0) as usize,
    )
}

/// How far a standardized value may go. A feature that was rare in the training window (the
/// history of earlier referrals, say, when few existed yet) has a tiny spread, and an ordinary
/// value later would otherwise be dozens of deviations out and swamp every other feature.
const Z_LIMIT: f64 = 5.0;

/// `f(k)` for every block `k` in `0..blocks`, spread over the machine's cores (thread `t`
/// takes blocks `t`, `t + threads`, ...), returned in block order: sums made from them in that
/// order do not depend on the thread count, so a fit is the same on any machine.
pub(crate) fn blocks_in_order<T: Send>(blocks: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(1)
        .clamp(1, blocks.max(1));
    if threads <= 1 {
        return (0..blocks).map(f).collect();
    }
    let f = &f;
    let mut parts: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..blocks)
                        .step_by(threads)
                        .map(|k| (k, f(k)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a block of rows panicked"))
            .collect()
    });
    parts.sort_by_key(|(k, _)| *k);
    parts.into_iter().map(|(_, part)| part).collect()
}

/// `(v - mean) / scale`, clipped to ±[`Z_LIMIT`]; training uses the same function.
pub fn standardize(v: f32, mean: f64, scale: f64) -> f64 {
    ((v as f64 - mean) / scale).clamp(-Z_LIMIT, Z_LIMIT)
}

/// The uncalibrated score of `params` on a feature row (the rule's is its points over
/// [`RULE_MAX`]).
pub fn raw_score_of(params: &Params, row: &[f32]) -> f64 {
    raw_score(params, row)
}

fn raw_score(params: &Params, row: &[f32]) -> f64 {
    match params {
        Params::Logistic {
            mean,
            scale,
            coef,
            intercept,
            ..
        } => {
            intercept
                + row
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| coef[j] * standardize(v, mean[j], scale[j]))
                    .sum::<f64>()
        }
        Params::Trees(g) => g.raw(row),
        Params::Rule(p) => {
            let (cut, overdue, unpaid) = rule_inputs(p, row);
            rule_score(cut, overdue, unpaid) / RULE_MAX
        }
    }
}

fn contributions(params: &Params, row: &[f32]) -> Vec<f64> {
    match params {
        Params::Logistic {
            mean, scale, coef, ..
        } => row
            .iter()
            .enumerate()
            .map(|(j, &v)| coef[j] * standardize(v, mean[j], scale[j]))
            .collect(),
        Params::Trees(g) => g.contributions(row),
        Params::Rule(p) => {
            let mut out = vec![0.0; row.len()];
            let (cut, overdue, unpaid) = rule_inputs(p, row);
            if cut {
                out[p.cut] = 1000.0 / RULE_MAX;
            }
            // Credit the months overdue to the utility that is most overdue.
            if let Some(&worst) = p
                .overdue
                .iter()
                .max_by(|&&a, &&b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
            {
                out[worst] = 10.0 * overdue.min(60) as f64 / RULE_MAX;
            }
            out[p.unpaid] = unpaid.min(9) as f64 / RULE_MAX;
            out
        }
    }
}
