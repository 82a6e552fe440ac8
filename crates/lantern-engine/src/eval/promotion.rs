//! The promotion gate: which freshly trained model, if any, becomes the current one.
//!
//! A model that screens the country must earn it on the back-test, not on its own hold-out
//! rows (which its calibration saw, and which are referred households of one period). The
//! candidate is the learned model with the best pooled precision at capacity; it is promoted
//! only if, on the same back-test:
//!
//! 1. **it beats the rule** (today's practice): higher precision at capacity;
//! 2. **it beats the current model**, compared on the evaluated referrals made on or after the
//!    date the current model learned up to (so neither has seen them): at least its precision at
//!    capacity. With no current model, or too few such referrals to tell, this check says so
//!    and does not block;
//! 3. **it does not worsen the fairness audit** ([`super::fairness`]): for each group (household
//!    type, age band, disability, region kind) large enough to judge, the ratios of its
//!    precision and of its false-negative rate to the reference group are not a *breach* (the
//!    whole 95% interval outside the band, 0.8–1.25 by default), or no further from 1 (measured
//!    as `|ln ratio|`, from the end of its interval nearest to 1) than the current model's on
//!    the same rows (today's practice, the rule, when there is no current model). A wider gap
//!    is not refused when the group itself is no worse served than under the current model (its
//!    own precision no lower, its own missed-crisis rate no higher, judged from the end of its
//!    interval in its favour): the reference group gained more, and refusing would keep more
//!    crises missed in every group ("levelling down"). A ratio outside the band whose interval
//!    reaches into it is reported as uncertain and does not block: groups of a few dozen
//!    referrals would otherwise refuse every model on noise. Selection rates differ legitimately where need
//!    differs (elderly singles are in crisis far more often): they are reported, not gated.
//!
//! An operator may promote a model the gate refused (`lantern promote MODEL --reason TEXT`);
//! either way the decision and its numbers go to the audit log. On a first training (no model
//! current yet) a refused candidate leaves the rule current, today's practice, so screening
//! works from the first night.

use chrono::NaiveDate;
use serde::Serialize;

use super::backtest::{BacktestReport, BacktestSettings, GroupRow, Metrics};
use crate::fairness::Judgement;
use crate::features::FeatureEngine;
use crate::model::train::{audit, train_all_on, TrainSettings, Trained};
use crate::model::{artefact, Kind, Model, ModelError};
use crate::registry::{Capacities, Registry};

/// The current model is compared only on at least this many referrals out of its window.
pub const MIN_VERSUS_REFERRALS: usize = 50;

/// One check of the gate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// What the gate decided, with every number it looked at.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Decision {
    /// The candidate (`name`, e.g. `trees`), the best learned model on the back-test.
    pub candidate: Option<String>,
    pub promote: bool,
    pub checks: Vec<Check>,
}

impl Decision {
    /// One line per check, for the terminal and the audit log.
    pub fn summary(&self) -> String {
        let mut s = match (&self.candidate, self.promote) {
            (Some(c), true) => format!("promotion gate: {c} passes\n"),
            (Some(c), false) => format!("promotion gate: {c} refused\n"),
            (None, _) => "promotion gate: no learned model to consider\n".to_string(),
        };
        for c in &self.checks {
            s.push_str(&format!(
                "  [{}] {}: {}\n",
                if c.passed { "ok" } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
        s
    }
}

fn precision(m: &std::collections::BTreeMap<String, Metrics>, name: &str) -> f64 {
    m.get(name)
        .map(|m| m.precision_at_capacity)
        .unwrap_or(f64::NAN)
}

fn pr_auc(m: &std::collections::BTreeMap<String, Metrics>, name: &str) -> f64 {
    m.get(name).map(|m| m.pr_auc).unwrap_or(f64::NAN)
}

/// Whether (precision `p`, PR-AUC `a`) beats (`q`, `b`): higher precision at capacity, or the
/// same (within rounding) and a higher PR-AUC. Where every district's pool of evaluated
/// referrals is smaller than its capacity, every model picks every referral and precision at
/// capacity ties; the ranking over all of them then decides. `or_equal` lets a tie on both
/// pass (a newer model as good as the current one, on newer data).
fn beats(p: f64, a: f64, q: f64, b: f64, or_equal: bool) -> bool {
    const SAME: f64 = 1e-9;
    if (p - q).abs() > SAME {
        return p > q;
    }
    if (a - b).abs() > SAME {
        return a > b;
    }
    or_equal
}

/// Decides on the learned models `candidates` (names) from a back-test that scored them and,
/// where one exists, the current model.
pub fn decide(report: &BacktestReport, candidates: &[&str]) -> Decision {
    let pooled = &report.pooled;
    let candidate = candidates
        .iter()
        .filter(|c| pooled.contains_key(**c))
        .max_by(|a, b| {
            let (pa, pb) = (precision(pooled, a), precision(pooled, b));
            pa.total_cmp(&pb)
                .then_with(|| pooled[**a].pr_auc.total_cmp(&pooled[**b].pr_auc))
        })
        .map(|c| c.to_string());
    let Some(cand) = candidate else {
        return Decision {
            candidate: None,
            promote: false,
            checks: Vec::new(),
        };
    };
    let mut checks = Vec::new();
    let (pc, pr) = (precision(pooled, &cand), precision(pooled, "rule"));
    let (ac, ar) = (pr_auc(pooled, &cand), pr_auc(pooled, "rule"));
    checks.push(Check {
        name: "beats the rule".into(),
        passed: beats(pc, ac, pr, ar, false),
        detail: format!(
            "precision at capacity {pc:.3} vs the rule's {pr:.3} (PR-AUC {ac:.3} vs {ar:.3}, which decides a tie) over {} evaluated referrals",
            pooled.get(&cand).map(|m| m.referrals).unwrap_or(0)
        ),
    });
    // Against the current model, on the rows neither has seen.
    let versus = report.versus_current.as_ref().filter(|v| {
        v.metrics
            .get("current")
            .is_some_and(|m| m.referrals >= MIN_VERSUS_REFERRALS)
    });
    match (&report.versus_current, versus) {
        (None, _) => checks.push(Check {
            name: "beats the current model".into(),
            passed: true,
            detail: "no current model to compare with".into(),
        }),
        (Some(v), None) => checks.push(Check {
            name: "beats the current model".into(),
            passed: true,
            detail: format!(
                "not compared: fewer than {MIN_VERSUS_REFERRALS} evaluated referrals made on or after {} (the date {} learned up to)",
                v.trained_until, v.model
            ),
        }),
        (Some(_), Some(v)) => {
            let (c, cur) = (precision(&v.metrics, &cand), precision(&v.metrics, "current"));
            let (ac, acur) = (pr_auc(&v.metrics, &cand), pr_auc(&v.metrics, "current"));
            checks.push(Check {
                name: "beats the current model".into(),
                passed: beats(c, ac, cur, acur, true),
                detail: format!(
                    "precision at capacity {c:.3} vs {}'s {cur:.3} (PR-AUC {ac:.3} vs {acur:.3}) over {} referrals made on or after {}",
                    v.model, v.metrics["current"].referrals, v.trained_until
                ),
            });
        }
    }
    // Fairness: the candidate's ratios, against the current model's on the same rows, or the
    // rule's on the whole back-test.
    let (mine, reference, reference_name): (&[GroupRow], &[GroupRow], String) = match versus {
        Some(v) => (
            v.fairness.get(&cand).map(Vec::as_slice).unwrap_or(&[]),
            v.fairness.get("current").map(Vec::as_slice).unwrap_or(&[]),
            v.model.clone(),
        ),
        None => (
            report.fairness.get(&cand).map(Vec::as_slice).unwrap_or(&[]),
            report
                .fairness
                .get("rule")
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            "the rule".to_string(),
        ),
    };
    checks.push(fairness_check(mine, reference, &reference_name));
    let promote = checks.iter().all(|c| c.passed);
    Decision {
        candidate: Some(cand),
        promote,
        checks,
    }
}

/// What `lantern train` did: the models, the back-test they were judged on, the decision, and
/// the model now current (if any).
pub struct Gated {
    pub trained: Trained,
    pub report: Option<BacktestReport>,
    pub decision: Decision,
    pub current: Option<String>,
    /// The gate refused on a first training, so the rule was made current.
    pub fell_back: bool,
}

/// `lantern train`: fits and saves `kinds`, back-tests them against the rule and the current
/// model, and promotes the candidate only if the gate passes. Every step is audited.
///
/// Asked for the rule alone (`--kind rule`), the operator has chosen today's practice: it is
/// made current without a back-test, and the audit record says so.
#[allow(clippy::too_many_arguments)]
pub async fn train_and_promote(
    engine: &FeatureEngine,
    settings: &TrainSettings,
    registry: &Registry,
    capacities: &Capacities,
    backtest: &BacktestSettings,
    as_of: NaiveDate,
    kinds: &[Kind],
    progress: &indicatif::ProgressBar,
) -> Result<Gated, ModelError> {
    let data_dir = engine.data_dir().to_path_buf();
    // The current model, if it still fits today's pipelines (one that does not cannot screen
    // anyway, and is not compared).
    let incumbent: Option<Model> = artefact::load(&data_dir, "")
        .ok()
        .filter(|m| m.check_features(engine.spec()).is_ok());
    // One training set for the fit and its back-test: labels decided before `as_of`.
    let set = crate::model::train::training_set(engine, as_of, settings).await?;
    let learned: Vec<&str> = kinds
        .iter()
        .filter(|k| **k != Kind::Rule)
        .map(|k| k.name())
        .collect();
    let until = as_of.pred_opt().unwrap_or(as_of);
    // The models and the back-test that judges them are fitted side by side: both read the
    // same training set, and each has stretches on one core that the other fills.
    let (trained, backtested) = std::thread::scope(|s| {
        let fits = s.spawn(|| train_all_on(engine, &set, settings, as_of, kinds));
        let backtested = (!learned.is_empty()).then(|| {
            super::backtest::backtest_on(
                engine,
                &set,
                settings,
                registry,
                capacities,
                backtest,
                until,
                incumbent.as_ref(),
                progress,
            )
        });
        (
            fits.join().expect("the model fits do not panic"),
            backtested,
        )
    });
    let trained = trained?;
    let mut record = crate::audit::AuditRecord::new("promote");
    record.as_of = Some(as_of.to_string());
    // No back-test: only the rule was trained.
    let Some(backtested) = backtested else {
        let Some((rule, _)) = trained.models.iter().find(|(m, _)| m.kind() == Kind::Rule) else {
            return Ok(Gated {
                trained,
                report: None,
                decision: Decision {
                    candidate: None,
                    promote: false,
                    checks: Vec::new(),
                },
                current: incumbent.map(|m| m.id()),
                fell_back: false,
            });
        };
        let id = rule.id();
        artefact::set_current(&data_dir, &id)?;
        record.model = Some(id.clone());
        record.detail = serde_json::json!({ "rule": "only the rule was trained (--kind rule): today's practice, made current without a back-test" });
        audit(&data_dir, record)?;
        return Ok(Gated {
            trained,
            report: None,
            decision: Decision {
                candidate: Some("rule".into()),
                promote: true,
                checks: Vec::new(),
            },
            current: Some(id),
            fell_back: false,
        });
    };
    let report = match backtested {
        Ok(r) => r,
        // No back-test, no evidence: refused (the rule stays or becomes current), not a crash.
        Err(e) => {
            tracing::warn!(error = %e, "the promotion gate's back-test could not run");
            let decision = Decision {
                candidate: learned.first().map(|c| c.to_string()),
                promote: false,
                checks: vec![Check {
                    name: "back-test".into(),
                    passed: false,
                    detail: format!("could not run: {e}"),
                }],
            };
            return finish(
                &data_dir,
                trained,
                None,
                decision,
                incumbent,
                record,
                &settings.card,
            );
        }
    };
    let decision = decide(&report, &learned);
    finish(
        &data_dir,
        trained,
        Some(report),
        decision,
        incumbent,
        record,
        &settings.card,
    )
}

/// Records the decision: promotes the candidate it passed, or on a first training leaves the
/// rule current, and audits either.
fn finish(
    data_dir: &std::path::Path,
    trained: Trained,
    report: Option<BacktestReport>,
    decision: Decision,
    incumbent: Option<Model>,
    mut record: crate::audit::AuditRecord,
    card: &crate::config::CardSettings,
) -> Result<Gated, ModelError> {
    let promoted = decision
        .candidate
        .as_deref()
        .filter(|_| decision.promote)
        .and_then(|c| {
            trained
                .models
                .iter()
                .find(|(m, _)| m.kind().name() == c)
                .map(|(m, _)| m.id())
        });
    // With no model current at all (a first training), a refused candidate leaves today's
    // practice: the rule screens, so `lantern screen` still works, and the operator is told.
    let fallback = match (&promoted, &incumbent) {
        (None, None) => trained
            .models
            .iter()
            .find(|(m, _)| m.kind() == Kind::Rule)
            .map(|(m, _)| m.id()),
        _ => None,
    };
    if let Some(id) = &promoted {
        artefact::set_current(data_dir, id)?;
        record.model = Some(id.clone());
    } else if let Some(rule) = &fallback {
        artefact::set_current(data_dir, rule)?;
        record.model = Some(rule.clone());
        record.action = "promote".into();
    } else {
        record.action = "promotion-refused".into();
        record.model = decision.candidate.as_ref().and_then(|c| {
            trained
                .models
                .iter()
                .find(|(m, _)| m.kind().name() == c)
                .map(|(m, _)| m.id())
        });
    }
    record.detail = serde_json::json!({
        "decision": decision,
        "current_before": incumbent.as_ref().map(|m| m.id()),
        "fallback": fallback.as_ref().map(|id| format!("the gate refused and no model was current: {id} (today's practice) made current")),
        "pooled": report.as_ref().map(|r| &r.pooled),
    });
    audit(data_dir, record)?;
    // Every model of this training gets its card completed: the decision, who approved it,
    // and its kind's back-test results by group.
    let actor = crate::audit::actor();
    for (m, _) in &trained.models {
        let id = m.id();
        let approver = if promoted.as_deref() == Some(id.as_str()) {
            Some(format!("the promotion gate (automatic), run by {actor}"))
        } else if fallback.as_deref() == Some(id.as_str()) {
            Some(format!(
                "made current by the promotion gate as today's practice when no learned model passed, run by {actor}"
            ))
        } else {
            None
        };
        let verdict = if approver.is_some() {
            "Made current."
        } else if decision.candidate.as_deref() == Some(m.kind().name()) {
            "Refused: not made current."
        } else {
            "Not the gate's candidate: not made current."
        };
        let text = format!("{verdict} Gate: {}", decision.summary());
        let c = artefact::Card {
            owner: card.owner.clone(),
            contact: card.contact.clone(),
            decision: Some(text),
            approver,
            fairness: report
                .as_ref()
                .and_then(|r| r.fairness.get(m.kind().name()).cloned())
                .unwrap_or_default(),
        };
        artefact::write_card(data_dir, m, &c)?;
    }
    let fell_back = fallback.is_some();
    let current = promoted.or(fallback).or_else(|| incumbent.map(|m| m.id()));
    Ok(Gated {
        trained,
        report,
        decision,
        current,
        fell_back,
    })
}

/// An operator's override: makes `id` current although the gate refused it (or without a
/// gate), with the reason on the audit record.
pub fn promote_by_operator(
    data_dir: &std::path::Path,
    id: &str,
    reason: &str,
) -> Result<Model, ModelError> {
    let model = artefact::load(data_dir, id)?;
    let before = artefact::load(data_dir, "").ok().map(|m| m.id());
    artefact::set_current(data_dir, &model.id())?;
    let mut record = crate::audit::AuditRecord::new("promote");
    record.model = Some(model.id());
    record.detail = serde_json::json!({
        "override": true,
        "reason": reason,
        "current_before": before,
    });
    audit(data_dir, record)?;
    // The card says who overrode the gate, and why.
    let path = artefact::model_dir(data_dir, &model.id()).join("MODEL_CARD.md");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&format!(
        "\n## Operator override\n\nMade current by {} on {}, overriding the promotion gate. Reason given: {reason}\n",
        crate::audit::actor(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    ));
    crate::lake::write_bytes_atomic(&path, text.as_bytes()).map_err(|e| ModelError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(model)
}

/// Distance of a ratio from parity, the same for 0.8 and 1.25; a ratio of 0 (a group where
/// nothing was missed, say, because every one of its referrals fitted in capacity) is
/// infinitely far, and exactly as far as the reference's 0.
fn distance(r: f64) -> f64 {
    if r > 0.0 {
        r.ln().abs()
    } else {
        f64::INFINITY
    }
}

/// The value in a ratio's 95% interval closest to parity (the ratio itself when it has no
/// interval). "Further from 1 than the reference" is judged with the same uncertainty as the
/// breach: a candidate is worse only if even the nearest end of its interval is further out
/// than the reference's ratio. Compared as points, a breach the rule shares at nearly the
/// same size refused a better model on noise (county false-negative ratio 0.09 for the trees
/// against 0.09 for the rule, in the end-to-end run at 1 million households).
fn nearest_to_parity(ratio: f64, interval: Option<crate::fairness::Interval>) -> f64 {
    match interval {
        Some(c) if c.low <= 1.0 && c.high >= 1.0 => 1.0,
        Some(c) if c.high < 1.0 => c.high,
        Some(c) => c.low,
        None => ratio,
    }
}

fn fairness_check(mine: &[GroupRow], reference: &[GroupRow], reference_name: &str) -> Check {
    let mut failures = Vec::new();
    let mut wider_without_harm = Vec::new();
    let (mut judged, mut uncertain, mut not_judged) = (0, 0, 0);
    for row in mine {
        let theirs = reference
            .iter()
            .find(|r| r.attribute == row.attribute && r.group == row.group);
        for (i, (what, rate)) in row.judged().into_iter().enumerate() {
            match rate.judgement {
                Judgement::TooSmall | Judgement::Reference => {
                    not_judged += 1;
                    continue;
                }
                Judgement::Within => {
                    judged += 1;
                    continue;
                }
                Judgement::Uncertain => {
                    judged += 1;
                    uncertain += 1;
                    continue;
                }
                Judgement::Breach => judged += 1,
            }
            let ratio = rate.ratio.unwrap_or(f64::NAN);
            let other = theirs.and_then(|t| t.judged()[i].1.ratio);
            let nearest = nearest_to_parity(ratio, rate.ratio_interval);
            let no_worse = other
                .filter(|o| o.is_finite() && *o >= 0.0)
                .is_some_and(|o| nearest >= 0.0 && distance(nearest) <= distance(o) + 1e-12);
            // A gap wider than the reference's is still no harm when the group itself is at
            // least as well served as under the reference: its own precision no lower, its own
            // missed-crisis rate no higher (each judged from the end of its interval most in its
            // favour). The gap then widened because the reference group gained more, and refusing
            // would keep more crises missed in every group ("levelling down").
            let theirs_rate = theirs.map(|t| t.judged()[i].1.value).unwrap_or(f64::NAN);
            let best = match (i, rate.interval) {
                (0, Some(c)) => c.high,
                (_, Some(c)) => c.low,
                (_, None) => rate.value,
            };
            let no_group_worse = theirs_rate.is_finite()
                && best.is_finite()
                && if i == 0 {
                    best >= theirs_rate - 1e-12
                } else {
                    best <= theirs_rate + 1e-12
                };
            if !no_worse && no_group_worse {
                wider_without_harm.push(format!(
                    "{} {}: {what} {:.1}% against {reference_name}'s {:.1}% (ratio {ratio:.2})",
                    row.attribute,
                    row.group,
                    rate.value * 100.0,
                    theirs_rate * 100.0
                ));
            }
            if !no_worse && !no_group_worse {
                let ci = rate
                    .ratio_interval
                    .map(|c| format!(" [{:.2}–{:.2}]", c.low, c.high))
                    .unwrap_or_default();
                failures.push(format!(
                    "{} {}: {what} ratio {ratio:.2}{ci} ({} {})",
                    row.attribute,
                    row.group,
                    reference_name,
                    other
                        .filter(|o| o.is_finite())
                        .map(|o| format!("{o:.2}"))
                        .unwrap_or_else(|| "not measured".into())
                ));
            }
        }
    }
    let detail = if failures.is_empty() {
        let wider = if wider_without_harm.is_empty() {
            String::new()
        } else {
            format!(
                "; gaps wider than {reference_name}'s but no group worse served, so not refused: {}",
                wider_without_harm.join("; ")
            )
        };
        format!(
            "{judged} ratios judged, none a breach further from 1 than {reference_name}'s that leaves its group worse served ({uncertain} outside the band but within their 95% interval of it); {not_judged} reference or too small to judge{wider}"
        )
    } else {
        format!(
            "a breach (the 95% interval outside the band) further from 1 than {reference_name}'s, its group worse served than under it: {}",
            failures.join("; ")
        )
    };
    Check {
        name: "does not worsen the fairness audit".into(),
        passed: failures.is_empty(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fairness::Rate;
    use std::collections::BTreeMap;

    fn metrics(precision: f64, referrals: usize) -> Metrics {
        Metrics {
            referrals,
            confirmed: referrals / 2,
            precision_at_capacity: precision,
            recall_at_capacity: 0.5,
            precision_at_top_fifth: precision,
            roc_auc: 0.7,
            pr_auc: precision,
            brier: 0.2,
            lift_over_rule: 1.0,
        }
    }

    /// A group whose ratios are breaches when outside the band (large groups).
    fn group(g: &str, precision_ratio: f64, fnr_ratio: f64) -> GroupRow {
        let judge = |r: f64| {
            if (0.8..=1.25).contains(&r) {
                Judgement::Within
            } else {
                Judgement::Breach
            }
        };
        GroupRow {
            attribute: "household_type".into(),
            group: g.into(),
            households: 1000,
            // Reported, never gated.
            selection_rate: Rate::judged(Some(3.0), Judgement::Breach),
            precision: Rate::judged(Some(precision_ratio), judge(precision_ratio)),
            false_negative_rate: Rate::judged(Some(fnr_ratio), judge(fnr_ratio)),
            breach: judge(precision_ratio) == Judgement::Breach
                || judge(fnr_ratio) == Judgement::Breach,
        }
    }

    fn report(rule: f64, trees: f64, logistic: f64, fairness: Vec<GroupRow>) -> BacktestReport {
        let pooled = BTreeMap::from([
            ("rule".to_string(), metrics(rule, 400)),
            ("trees".to_string(), metrics(trees, 400)),
            ("logistic".to_string(), metrics(logistic, 400)),
        ]);
        BacktestReport {
            generated_at: String::new(),
            data_until: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            horizon_days: 60,
            folds: Vec::new(),
            pooled,
            reliability: BTreeMap::new(),
            fairness: BTreeMap::from([
                ("trees".to_string(), fairness.clone()),
                ("logistic".to_string(), fairness),
                (
                    "rule".to_string(),
                    vec![
                        group("elderly_single", 1.0, 1.0),
                        group("family", 0.85, 1.3),
                    ],
                ),
            ]),
            versus_current: None,
            exploration: None,
            skipped: Vec::new(),
            caveats: Vec::new(),
        }
    }

    /// The best learned model on the back-test is the candidate; it passes when it beats the
    /// rule and its fairness ratios stay in the band, whatever its selection-rate ratios.
    #[test]
    fn the_best_learned_model_that_beats_the_rule_fairly_is_promoted() {
        let r = report(
            0.40,
            0.55,
            0.50,
            vec![group("elderly_single", 1.0, 1.0), group("family", 0.9, 1.2)],
        );
        let d = decide(&r, &["trees", "logistic"]);
        assert_eq!(d.candidate.as_deref(), Some("trees"));
        assert!(d.promote, "{}", d.summary());
    }

    /// Where every pool is under capacity all models pick the same referrals: precision ties
    /// and the ranking (PR-AUC) decides.
    #[test]
    fn a_tie_at_capacity_is_decided_by_the_ranking() {
        let mut r = report(0.5, 0.5, 0.5, vec![group("family", 1.0, 1.0)]);
        r.pooled.get_mut("trees").unwrap().pr_auc = 0.6;
        r.pooled.get_mut("rule").unwrap().pr_auc = 0.55;
        assert!(decide(&r, &["trees"]).promote);
        r.pooled.get_mut("rule").unwrap().pr_auc = 0.65;
        assert!(!decide(&r, &["trees"]).promote);
    }

    #[test]
    fn a_model_that_does_not_beat_the_rule_is_refused() {
        let r = report(0.60, 0.55, 0.50, vec![group("family", 1.0, 1.0)]);
        let d = decide(&r, &["trees", "logistic"]);
        assert!(!d.promote);
        assert!(!d.checks[0].passed, "{}", d.summary());
    }

    /// Outside the band is refused unless the reference is as far out: the family group's
    /// false-negative ratio of 1.3 passes when the rule's is 1.3 too, 1.5 does not.
    #[test]
    fn fairness_ratios_outside_the_band_block_unless_no_worse_than_the_reference() {
        let ok = report(0.4, 0.55, 0.5, vec![group("family", 0.9, 1.3)]);
        assert!(decide(&ok, &["trees"]).promote);
        let bad = report(0.4, 0.55, 0.5, vec![group("family", 0.9, 1.5)]);
        let d = decide(&bad, &["trees"]);
        assert!(!d.promote);
        assert!(d.checks[2].detail.contains("family"), "{}", d.summary());
        // A group too small to judge is not gated on, nor is a ratio whose interval reaches
        // into the band.
        let mut small = group("family", 0.9, 3.0);
        small.false_negative_rate = Rate::judged(None, Judgement::TooSmall);
        assert!(decide(&report(0.4, 0.55, 0.5, vec![small]), &["trees"]).promote);
        let mut noisy = group("family", 0.9, 3.0);
        noisy.false_negative_rate = Rate::judged(Some(3.0), Judgement::Uncertain);
        assert!(decide(&report(0.4, 0.55, 0.5, vec![noisy]), &["trees"]).promote);
    }

    /// A zero ratio the reference shares is no worse: in the yardstick run every county
    /// referral fitted in capacity, so no county crisis was missed by the rule or the trees
    /// (false-negative ratio 0 for both), which refused the trees. A zero the reference does not
    /// share still blocks.
    #[test]
    fn a_zero_ratio_shared_with_the_reference_is_no_worse() {
        let mut r = report(0.4, 0.55, 0.5, vec![group("county", 1.0, 0.0)]);
        r.fairness
            .insert("rule".to_string(), vec![group("county", 1.0, 0.0)]);
        assert!(
            decide(&r, &["trees"]).promote,
            "{}",
            decide(&r, &["trees"]).summary()
        );
        r.fairness
            .insert("rule".to_string(), vec![group("county", 1.0, 0.9)]);
        assert!(!decide(&r, &["trees"]).promote);
    }

    /// A breach the reference shares at nearly the same size is no worse when the candidate's
    /// interval reaches the reference's ratio: judged with the same uncertainty as the breach.
    /// Only when even its nearest end is further out is it refused.
    #[test]
    fn a_shared_breach_is_no_worse_within_the_candidates_interval() {
        let breach = |ratio: f64, low: f64, high: f64| {
            let mut g = group("county", 1.0, ratio);
            g.false_negative_rate.ratio_interval = Some(crate::fairness::Interval { low, high });
            g
        };
        let mut r = report(0.4, 0.55, 0.5, vec![breach(0.085, 0.04, 0.2)]);
        r.fairness
            .insert("rule".to_string(), vec![group("county", 1.0, 0.09)]);
        let d = decide(&r, &["trees"]);
        assert!(d.promote, "{}", d.summary());
        // The same point ratio with a narrow interval, wholly further out than the rule's 0.09.
        r.fairness
            .insert("trees".to_string(), vec![breach(0.05, 0.04, 0.06)]);
        let d = decide(&r, &["trees"]);
        assert!(!d.promote, "{}", d.summary());
        assert!(d.checks[2].detail.contains("county"), "{}", d.summary());
    }

    /// A gap that widened because the reference group gained more is not refused when the
    /// group itself is served at least as well as by the reference model (1 million households,
    /// 24 months: the trees missed 36.7% of couples' crises against the rule's 43.0%, yet the
    /// ratio to elderly singles rose from 1.46 to 1.83). A group left worse served still blocks.
    #[test]
    fn a_wider_gap_with_no_group_worse_served_is_not_refused() {
        let with_rates = |fnr_ratio: f64, fnr: f64, interval: Option<(f64, f64)>| {
            let mut g = group("couple", 1.0, fnr_ratio);
            g.false_negative_rate.value = fnr;
            g.false_negative_rate.interval =
                interval.map(|(low, high)| crate::fairness::Interval { low, high });
            g
        };
        let mut r = report(
            0.67,
            0.77,
            0.72,
            vec![with_rates(1.83, 0.367, Some((0.323, 0.414)))],
        );
        r.fairness.insert(
            "rule".to_string(),
            vec![with_rates(1.46, 0.430, Some((0.384, 0.477)))],
        );
        let d = decide(&r, &["trees"]);
        assert!(d.promote, "{}", d.summary());
        assert!(
            d.checks[2].detail.contains("no group worse served"),
            "{}",
            d.summary()
        );
        // The couples' own missed-crisis rate rises beyond its interval: refused.
        r.fairness.insert(
            "trees".to_string(),
            vec![with_rates(1.83, 0.50, Some((0.46, 0.54)))],
        );
        let d = decide(&r, &["trees"]);
        assert!(!d.promote, "{}", d.summary());
        assert!(d.checks[2].detail.contains("couple"), "{}", d.summary());
    }

    /// Against the current model on rows neither has seen: a candidate worse than it is
    /// refused, and fairness is then judged against the current model's ratios.
    #[test]
    fn a_candidate_worse_than_the_current_model_out_of_sample_is_refused() {
        let mut r = report(0.4, 0.55, 0.5, vec![group("family", 1.0, 1.0)]);
        let versus = |current: f64| super::super::backtest::VersusCurrent {
            model: "trees@3".into(),
            trained_until: chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            metrics: BTreeMap::from([
                ("rule".to_string(), metrics(0.4, 120)),
                ("trees".to_string(), metrics(0.5, 120)),
                ("current".to_string(), metrics(current, 120)),
            ]),
            fairness: BTreeMap::from([
                ("trees".to_string(), vec![group("family", 1.0, 1.0)]),
                ("current".to_string(), vec![group("family", 1.0, 1.0)]),
            ]),
        };
        r.versus_current = Some(versus(0.6));
        let d = decide(&r, &["trees"]);
        assert!(!d.promote, "{}", d.summary());
        assert!(!d.checks[1].passed);
        r.versus_current = Some(versus(0.5));
        assert!(decide(&r, &["trees"]).promote);
    }
}
