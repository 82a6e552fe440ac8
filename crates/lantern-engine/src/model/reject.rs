//! Reject inference: negatives for the households no rule chose to visit.
//!
//! Every label Lantern learns from answers a referral, and every referral was chosen by some
//! rule (today's system, or Lantern itself). A model fitted on those rows alone has never seen
//! the great majority of screened households, those with one small arrears record, say, and
//! nothing forbids it to rank some of them high. The standard correction used in credit scoring
//! ("augmentation" with the rejects) is applied here in its most conservative form:
//!
//! - from the referral nights of the training window (at most `nights` of them, evenly spread),
//!   households screened that night (the scoring cohort: a signal known by then) that had never
//!   been referred *as of that night*, so no later knowledge is used and a back-test fold
//!   stays point in time;
//! - whose evidence was weak: the rule's score (today's practice, model-independent) at or
//!   below `evidence_quantile` of those households' scores that night;
//! - enter fitting as negatives (label 0) of weight `weight`, `share` of them per labelled
//!   referral; never the calibration or the metrics, which use real outcomes only.
//!
//! What it cannot correct: a household in crisis whose evidence is weak (its bills paid by
//! auto-debit while it slides) is such a negative by construction. Its weight is small, and the
//! model card says the correction was made.

use std::collections::HashMap;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::ModelError;
use crate::config::RejectInference;
use crate::features::{FeatureBatch, FeatureEngine, FeatureError, Label};

/// Screened, never-referred, weak-evidence households as of their night, with features.
#[derive(Debug, Clone, Default)]
pub struct Inferred {
    pub features: FeatureBatch,
    /// The weight each row carries in a fit.
    pub weight: f64,
}

impl Inferred {
    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The rows whose night satisfies `keep`.
    pub fn filter(&self, keep: impl Fn(NaiveDate) -> bool) -> Inferred {
        let mut out = Inferred {
            features: FeatureBatch {
                width: self.features.width,
                ..Default::default()
            },
            weight: self.weight,
        };
        for (i, k) in self.features.keys.iter().enumerate() {
            if keep(k.as_of) {
                out.features.keys.push(k.clone());
                out.features.values.extend_from_slice(self.features.row(i));
            }
        }
        out
    }
}

/// The nights to sample from: at most `n` of the labels' referral dates, evenly spread.
fn nights(labels: &[Label], n: usize) -> Vec<NaiveDate> {
    let mut all: Vec<NaiveDate> = labels.iter().map(|l| l.as_of).collect();
    all.sort();
    all.dedup();
    if all.len() <= n {
        return all;
    }
    (0..n)
        .map(|k| all[k * (all.len() - 1) / (n - 1).max(1)])
        .collect()
}

/// Each household's referral dates: every list (issued, imported, withdrawn) and every label
/// (an estimated referral date included).
pub async fn referral_dates(
    engine: &FeatureEngine,
    labels: &[Label],
) -> Result<HashMap<String, Vec<NaiveDate>>, ModelError> {
    let mut out: HashMap<String, Vec<NaiveDate>> = HashMap::new();
    for l in labels {
        out.entry(l.household_id.clone()).or_default().push(l.as_of);
    }
    let sql = "SELECT household_id, as_of FROM referrals \
               UNION ALL SELECT household_id, as_of FROM withdrawn_referrals";
    let batches = engine.query(sql).await?;
    for b in batches {
        let arrow = |e| FeatureError::from(datafusion::error::DataFusionError::from(e));
        let ids = cast(b.column(0), &DataType::Utf8).map_err(arrow)?;
        let ids = ids.as_string::<i32>();
        let dates = cast(b.column(1), &DataType::Date32).map_err(arrow)?;
        let dates = dates.as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            if ids.is_valid(i) && dates.is_valid(i) {
                let d = crate::lake::date_from_days(dates.value(i));
                out.entry(ids.value(i).to_string()).or_default().push(d);
            }
        }
    }
    Ok(out)
}

/// The first half of sampling: the candidate (household, night) pairs whose features the
/// second half, [`Candidates::choose`], needs. Split so that a training set computes the
/// features of its labels and of these candidates in one pass over the state.
pub struct Candidates {
    /// Sorted (household, night) pairs.
    pub pairs: Vec<(String, NaiveDate)>,
    nights: Vec<NaiveDate>,
    per_night: usize,
    weight: f64,
    evidence_quantile: f64,
    rng: ChaCha8Rng,
}

/// Picks the candidates for the inferred negatives of a training set of `labels` (see the
/// module docs): per night, twice what is needed of the screened, never-referred households.
/// Deterministic for a given lake, labels, settings and seed.
pub async fn candidates(
    engine: &FeatureEngine,
    labels: &[Label],
    settings: &RejectInference,
    seed: u64,
) -> Result<Candidates, ModelError> {
    let mut out = Candidates {
        pairs: Vec::new(),
        nights: Vec::new(),
        per_night: 0,
        weight: settings.weight,
        evidence_quantile: settings.evidence_quantile,
        rng: ChaCha8Rng::seed_from_u64(seed),
    };
    let wanted = (labels.len() as f64 * settings.share).round() as usize;
    if wanted == 0 || settings.nights == 0 || labels.is_empty() {
        return Ok(out);
    }
    out.nights = nights(labels, settings.nights);
    out.per_night = wanted.div_ceil(out.nights.len());
    let referred = referral_dates(engine, labels).await?;
    // Candidates: twice what is needed per night, so the weak-evidence half still fills it.
    let cohorts = engine.scoring_cohorts(&out.nights).await?;
    for (&night, cohort) in out.nights.iter().zip(cohorts) {
        let mut cohort: Vec<String> = cohort
            .into_iter()
            .filter(|h| {
                referred
                    .get(h)
                    .is_none_or(|dates| dates.iter().all(|&d| d > night))
            })
            .collect();
        cohort.shuffle(&mut out.rng);
        cohort.truncate(2 * out.per_night);
        out.pairs.extend(cohort.into_iter().map(|h| (h, night)));
    }
    out.pairs.sort();
    Ok(out)
}

impl Candidates {
    /// The second half: of `computed`, the features of [`Candidates::pairs`] in that order,
    /// keeps per night the weakest evidence by the rule's score (today's practice,
    /// model-independent), `per_night` of them at random.
    pub fn choose(
        mut self,
        computed: &FeatureBatch,
        spec: &crate::features::FeatureSpec,
    ) -> Result<Inferred, ModelError> {
        let mut out = Inferred {
            features: FeatureBatch {
                width: computed.width,
                ..Default::default()
            },
            weight: self.weight,
        };
        if self.pairs.is_empty() {
            return Ok(out);
        }
        let rule = super::Params::Rule(super::train::rule_params(spec)?);
        // By night: the candidates and their rule scores; keep the weakest evidence.
        let mut by_night: HashMap<NaiveDate, Vec<(f64, usize)>> = HashMap::new();
        for (i, k) in computed.keys.iter().enumerate() {
            let score = super::raw_score(&rule, computed.row(i));
            by_night.entry(k.as_of).or_default().push((score, i));
        }
        let mut keep: Vec<usize> = Vec::new();
        for night in &self.nights {
            let Some(mut rows) = by_night.remove(night) else {
                continue;
            };
            // Sorted by score, ties by row (the rows come in key order): deterministic.
            rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let q = self.evidence_quantile.clamp(0.0, 1.0);
            let cut = rows[((rows.len() - 1) as f64 * q).floor() as usize].0;
            let mut weak: Vec<usize> = rows
                .into_iter()
                .filter(|(s, _)| *s <= cut)
                .map(|(_, i)| i)
                .collect();
            weak.shuffle(&mut self.rng);
            weak.truncate(self.per_night);
            keep.extend(weak);
        }
        keep.sort_unstable();
        for i in keep {
            out.features.keys.push(computed.keys[i].clone());
            out.features.values.extend_from_slice(computed.row(i));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(day: u32) -> Label {
        Label {
            household_id: format!("h{day}"),
            as_of: NaiveDate::from_ymd_opt(2026, 1, day).unwrap(),
            referral_id: format!("r{day}"),
            district_code: "11110".into(),
            decided_on: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            label: 0,
            source: "referral".into(),
            selection_probability: None,
        }
    }

    #[test]
    fn nights_are_spread_over_the_window_and_capped() {
        let labels: Vec<Label> = (1..=30).map(label).collect();
        let n = nights(&labels, 4);
        assert_eq!(n.len(), 4);
        assert_eq!(n[0], labels[0].as_of);
        assert_eq!(n[3], labels[29].as_of);
        assert_eq!(nights(&labels[..3], 12).len(), 3);
    }
}
