//! The night, composed in one place: screen, write the lists, record the run, publish.
//!
//! The stages compute ([`crate::screen::screen`] ranks, [`crate::screen::output`] renders);
//! this module decides where their results go and in what order, the way a Vector pipeline
//! wires sources, transforms and sinks. The rules it keeps:
//!
//! - **A dry run changes nothing.** Without a producer the lists are drafts (`drafts/`), which
//!   no later night reads as history (cool-down, escalation, `ref_*` features, outcome links).
//! - **One list per district per night.** The first issued run of a night is its list. A
//!   re-run republishes that list (only what the broker has not acknowledged) even after
//!   retraining; if its own screening came out different, that screening is left as a draft
//!   and reported. Replacing an issued list takes an explicit, audited correction
//!   (`supersede`): every replaced referral is withdrawn on `case-intake` and kept in
//!   `withdrawn.parquet`, where outcomes still find it.
//! - **Outputs survive a crash.** Each night's set of files replaces the old one in one step
//!   ([`crate::screen::output::commit`]).
//! - **The audit chain is anchored.** The chain's head after the night goes beside its lists
//!   (`audit-anchor.json`) and into the run's summary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;

use crate::audit::{Anchor, AuditError, AuditRecord};
use crate::contract::Referral;
use crate::features::FeatureEngine;
use crate::intake::{IntakeError, PublishReport};
use crate::lake::reference::{
    drafts_dir, is_issued, read_referrals, read_withdrawn, referrals_dir, write_referral_file,
};
use crate::lake::LakeError;
use crate::model::Model;
use crate::registry::Registry;
use crate::screen::output::{self, Outputs};
use crate::screen::{input_watermark, ScreenError, Screening};
use crate::status::{last_night_path, LastNight};

#[derive(Debug, thiserror::Error)]
pub enum NightError {
    #[error(transparent)]
    Screen(#[from] ScreenError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{0}")]
    Rule(String),
}

/// Where a night's lists go.
pub enum Delivery<'a> {
    /// A what-if: drafts only, nothing sent, nothing becomes history.
    Draft,
    /// Issue the night: the lists become history and go to `case-intake`.
    Publish {
        producer: &'a rdkafka::producer::FutureProducer,
        topic: &'a str,
        /// Replace an already issued list (withdrawing what it replaces).
        supersede: bool,
    },
}

/// How this run's screening compares with the night's issued list, when they differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// In this run's list, not in the issued one.
    pub added: usize,
    /// In the issued list, not in this run's.
    pub dropped: usize,
    /// Where this run's list was left, as a draft.
    pub draft: std::path::PathBuf,
}

/// What a night did.
pub struct Night {
    /// This run's screening (for a republished night: what it would list now).
    pub screening: Screening,
    /// The night's files: the issued set, or the draft of a dry run.
    pub outputs: Outputs,
    /// Whether `outputs` is the issued list (history) rather than a draft.
    pub issued: bool,
    pub published: Option<PublishReport>,
    /// Withdrawals sent by a correction.
    pub withdrawn: Option<PublishReport>,
    /// Set when the night was already issued and this run's screening differs from it.
    pub differs: Option<Difference>,
    pub run_id: String,
    /// The audit chain's head after this night.
    pub anchor: Anchor,
    /// The night's fairness audit (also `fairness.json` beside the lists).
    pub fairness: Vec<crate::fairness::GroupRow>,
}

/// Runs the night `as_of` with `model`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    engine: &FeatureEngine,
    model: &Model,
    settings: &crate::config::Settings,
    registry: &Registry,
    as_of: NaiveDate,
    delivery: Delivery<'_>,
    progress: &indicatif::ProgressBar,
) -> Result<Night, NightError> {
    let screening = crate::screen::screen(
        engine,
        model,
        registry,
        &settings.capacity,
        &settings.screen,
        as_of,
        progress,
    )
    .await?;
    let mut screening = screening;
    let t = std::time::Instant::now();
    let fairness = crate::screen::fairness(&screening, &settings.fairness);
    let breaches = crate::fairness::breaches(&fairness);
    if !breaches.is_empty() {
        tracing::warn!(%as_of, groups = %breaches.join(", "), "fairness audit: expected precision or missed-crisis ratios outside the band (see fairness.json and html/index.html)");
    }
    let households: Vec<String> = screening
        .referrals
        .iter()
        .map(|r| r.household_id.clone())
        .collect();
    let t = screening.phases.since("fairness", t);
    let signals = output::signals_behind(engine, as_of, &households).await?;
    let t = screening.phases.since("signals behind", t);
    let data_dir = engine.data_dir();
    let watermark = input_watermark(engine).await?;
    let t = screening.phases.since("watermark", t);
    let per_district: BTreeMap<String, u64> = screening
        .districts
        .iter()
        .map(|(code, &(_, n))| (code.clone(), n as u64))
        .collect();
    let record = |action: &str, outputs: &BTreeMap<String, String>, detail| {
        let mut r = AuditRecord::new(action);
        r.as_of = Some(as_of.to_string());
        r.model = Some(screening.model.clone());
        r.input_watermark = Some(watermark.clone());
        r.districts = per_district.clone();
        r.outputs = outputs.clone();
        r.detail = detail;
        r
    };
    let mut counts = serde_json::to_value(&screening.counts).unwrap_or_default();
    if let Some(map) = counts.as_object_mut() {
        map.insert("fairness_breaches".into(), serde_json::json!(breaches));
    }

    let (producer, topic, supersede) = match delivery {
        Delivery::Draft => {
            let outputs = output::write(data_dir, &screening, registry, &signals, &fairness)?;
            let (rec, anchor) =
                crate::audit::append_anchored(data_dir, record("draft", &outputs.hashes, counts))?;
            crate::audit::write_anchor(&outputs.dir.join("audit-anchor.json"), &anchor)?;
            end_phases(&mut screening, t);
            return finish(
                data_dir,
                Night {
                    screening,
                    outputs,
                    issued: false,
                    published: None,
                    withdrawn: None,
                    differs: None,
                    run_id: rec.run_id,
                    anchor,
                    fairness,
                },
            );
        }
        Delivery::Publish {
            producer,
            topic,
            supersede,
        } => (producer, topic, supersede),
    };

    let dest = referrals_dir(data_dir, as_of);
    let already = is_issued(data_dir, as_of);
    let mut differs = None;
    let mut withdrawn = None;
    let (outputs, to_publish, screen_run) = if !already {
        let staged = output::stage(data_dir, &screening, registry, &signals, &fairness)?;
        let outputs = output::commit(staged, &dest, &[])?;
        let rec = crate::audit::append(data_dir, record("screen", &outputs.hashes, counts))?;
        (outputs, screening.referrals.clone(), rec.run_id)
    } else {
        let issued = read_referrals(data_dir, as_of)?;
        let old: BTreeSet<&str> = issued.iter().map(|r| r.referral_id.as_str()).collect();
        let new: BTreeSet<&str> = screening
            .referrals
            .iter()
            .map(|r| r.referral_id.as_str())
            .collect();
        if supersede {
            // The correction: this run's list replaces the issued one; what it replaces is
            // withdrawn, and kept where outcomes still find it.
            let mut gone: Vec<Referral> = read_withdrawn(data_dir, as_of)?;
            let before: BTreeSet<String> = gone.iter().map(|r| r.referral_id.clone()).collect();
            gone.extend(
                issued
                    .iter()
                    .filter(|r| !new.contains(r.referral_id.as_str()))
                    .filter(|r| !before.contains(&r.referral_id))
                    .cloned(),
            );
            // A referral that comes back in the new list is live again, not withdrawn.
            gone.retain(|r| !new.contains(r.referral_id.as_str()));
            let staged = output::stage(data_dir, &screening, registry, &signals, &fairness)?;
            write_referral_file(&staged.staging.join("withdrawn.parquet"), &gone)?;
            let outputs = output::commit(staged, &dest, &["published.ndjson"])?;
            let replaced = issued.len()
                - issued
                    .iter()
                    .filter(|r| new.contains(r.referral_id.as_str()))
                    .count();
            let rec = crate::audit::append(
                data_dir,
                record(
                    "supersede",
                    &outputs.hashes,
                    serde_json::json!({
                        "counts": counts,
                        "replaced_referrals": replaced,
                        "withdrawn_total": gone.len(),
                        "previous_models": issued.iter().map(|r| r.model.clone()).collect::<BTreeSet<_>>(),
                    }),
                ),
            )?;
            let report = crate::intake::publish_withdrawals(
                producer,
                topic,
                data_dir,
                &gone,
                &screening.model,
            )
            .await?;
            withdrawn = Some(report);
            (outputs, screening.referrals.clone(), rec.run_id)
        } else {
            // Already issued: the issued list stands. This run's screening is kept as a draft
            // when it came out different (a new model, new data), for the operator to compare.
            if old != new {
                let draft = output::write(data_dir, &screening, registry, &signals, &fairness)?;
                differs = Some(Difference {
                    added: new.difference(&old).count(),
                    dropped: old.difference(&new).count(),
                    draft: draft.dir,
                });
                tracing::warn!(
                    %as_of,
                    issued = old.len(),
                    "this night was already issued; republishing its list unchanged (this run's different list is a draft; use --supersede to replace the issued one)"
                );
            }
            let outputs = output::existing(&dest)?;
            let detail = serde_json::json!({
                "counts": counts,
                "rerun_of_issued_night": true,
                "same_list": differs.is_none(),
            });
            let rec = crate::audit::append(data_dir, record("screen", &outputs.hashes, detail))?;
            (outputs, issued, rec.run_id)
        }
    };
    crate::lake::reference::touch_referrals_root(data_dir)?;
    let report = crate::intake::publish(producer, topic, data_dir, &to_publish).await?;
    let mut p = record("publish", &BTreeMap::new(), serde_json::Value::Null);
    p.model = to_publish.first().map(|r| r.model.clone()).or(p.model);
    p.detail = serde_json::json!({ "topic": topic, "sent": report.sent, "skipped_already_published": report.skipped, "screen_run": screen_run });
    let (_, anchor) = crate::audit::append_anchored(data_dir, p)?;
    crate::audit::write_anchor(&outputs.dir.join("audit-anchor.json"), &anchor)?;
    end_phases(&mut screening, t);
    finish(
        data_dir,
        Night {
            screening,
            outputs,
            issued: true,
            published: Some(report),
            withdrawn,
            differs,
            run_id: screen_run,
            anchor,
            fairness,
        },
    )
}

/// Records an issued night as the last successful one, for monitoring.
/// Closes the night's last phase (outputs) and logs the night's time by phase.
fn end_phases(screening: &mut Screening, outputs_started: std::time::Instant) {
    screening.phases.since("outputs", outputs_started);
    tracing::info!(as_of = %screening.as_of, phases = %screening.phases.summary(), "night's time by phase");
}

fn finish(data_dir: &Path, night: Night) -> Result<Night, NightError> {
    // Only an issued night is what an operator's "no list tonight" alert is about; a dry run
    // must not silence it.
    if !night.issued {
        return Ok(night);
    }
    let status = LastNight {
        as_of: night.screening.as_of,
        finished_at: chrono::Utc::now().timestamp(),
        referred: night.screening.referrals.len() as u64,
        issued: night.issued,
    };
    let json = serde_json::to_vec(&status).expect("status serializes");
    crate::lake::write_bytes_atomic(&last_night_path(data_dir), &json)?;
    Ok(night)
}

/// What `lantern issue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub referrals: usize,
    /// Referrals of an earlier issued list that this one replaced.
    pub withdrawn: usize,
    pub run_id: String,
}

/// Marks the draft of night `as_of` as issued, for a deployment that hands lists over as files
/// rather than through `case-intake`: the draft becomes the night's list (history). A night
/// already issued is replaced only with `supersede`, and the referrals it replaces move to
/// `withdrawn.parquet`. Audited as `issue`.
pub fn issue(data_dir: &Path, as_of: NaiveDate, supersede: bool) -> Result<Issued, NightError> {
    let draft = drafts_dir(data_dir, as_of);
    if !draft.join("referrals.parquet").exists() {
        return Err(NightError::Rule(format!(
            "no draft list for {as_of} in {}; run `lantern screen --as-of {as_of}` first",
            draft.display()
        )));
    }
    let already = is_issued(data_dir, as_of);
    if already && !supersede {
        return Err(NightError::Rule(format!(
            "the night {as_of} is already issued; a night has one list. To replace it, run `lantern issue --as-of {as_of} --supersede` (audited; the replaced referrals are withdrawn)"
        )));
    }
    output::verify_set(&draft)?;
    let new = crate::lake::reference::read_referral_file(&draft.join("referrals.parquet"))?;
    let new_ids: BTreeSet<&str> = new.iter().map(|r| r.referral_id.as_str()).collect();
    let mut gone = read_withdrawn(data_dir, as_of)?;
    if already {
        let known: BTreeSet<String> = gone.iter().map(|r| r.referral_id.clone()).collect();
        for r in read_referrals(data_dir, as_of)? {
            if !new_ids.contains(r.referral_id.as_str()) && !known.contains(&r.referral_id) {
                gone.push(r);
            }
        }
    }
    gone.retain(|r| !new_ids.contains(r.referral_id.as_str()));
    // Stage a copy of the draft (the draft stays as it is until the issued set is in place).
    let staging = crate::lake::reference::staging_dir(data_dir, as_of);
    copy_tree(&draft, &staging)?;
    let _ = std::fs::remove_file(staging.join("audit-anchor.json"));
    if !gone.is_empty() {
        write_referral_file(&staging.join("withdrawn.parquet"), &gone)?;
    }
    let staged = output::Staged {
        staging,
        hashes: output::existing(&draft)?.hashes,
    };
    let dest = referrals_dir(data_dir, as_of);
    let outputs = output::commit(staged, &dest, &["published.ndjson"])?;
    let mut rec = AuditRecord::new("issue");
    rec.as_of = Some(as_of.to_string());
    rec.model = new.first().map(|r| r.model.clone());
    for r in &new {
        *rec.districts.entry(r.district_code.clone()).or_default() += 1;
    }
    rec.outputs = outputs.hashes.clone();
    rec.detail =
        serde_json::json!({ "supersede": supersede && already, "withdrawn_total": gone.len() });
    crate::lake::reference::touch_referrals_root(data_dir)?;
    let (rec, anchor) = crate::audit::append_anchored(data_dir, rec)?;
    crate::audit::write_anchor(&dest.join("audit-anchor.json"), &anchor)?;
    std::fs::remove_dir_all(&draft).map_err(|e| LakeError::Io {
        path: draft.clone(),
        source: e,
    })?;
    Ok(Issued {
        referrals: new.len(),
        withdrawn: gone.len(),
        run_id: rec.run_id,
    })
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), LakeError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| LakeError::Io { path: p, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(io(&src))?;
        }
    }
    Ok(())
}

/// An answer to "why was (or wasn't) this household on the list that night?", in Korean and
/// English, as a caseworker or an ombudsman would ask it.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub ko: String,
    pub en: String,
    /// The decision-log row it is drawn from (none: the household was not screened).
    pub decision: Option<output::DecisionRow>,
    /// Whether the night's list was issued (or only a draft).
    pub issued: bool,
}

/// Explains the decision for `household_id` on the night `as_of`, from the night's decision
/// log (the issued night, or else its draft), and records the read in the audit log under a
/// hash of the household's token.
pub fn explain(
    data_dir: &Path,
    household_id: &str,
    as_of: NaiveDate,
) -> Result<Explanation, NightError> {
    let issued_dir = referrals_dir(data_dir, as_of);
    let draft_dir = drafts_dir(data_dir, as_of);
    let (dir, issued) = if issued_dir.join(output::DECISIONS).exists() {
        (issued_dir, true)
    } else if draft_dir.join(output::DECISIONS).exists() {
        (draft_dir, false)
    } else {
        return Err(NightError::Rule(format!(
            "no decision log for {as_of}: that night was not screened by this version of Lantern (run `lantern screen --as-of {as_of}`)"
        )));
    };
    let decision = output::read_decision(&dir.join(output::DECISIONS), household_id)?;
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let list_ko = if issued { "목록" } else { "초안 목록" };
    let list_en = if issued { "list" } else { "draft list" };
    let (ko, en) = match &decision {
        None => (
            format!("가구 {household_id}는 {as_of}에 심사되지 않았습니다: 조회 기간 안에 이 가구의 위기 신호가 없었습니다."),
            format!("Household {household_id} was not screened on {as_of}: no crisis signal for it in the look-back window."),
        ),
        Some(d) => {
            let district = d.district_code.clone().unwrap_or_default();
            match d.outcome.as_str() {
                "listed" => {
                    let reasons = crate::lake::reference::read_referral_file(&dir.join("referrals.parquet"))
                        .unwrap_or_default()
                        .into_iter()
                        .find(|r| r.household_id == household_id)
                        .map(|r| r.reasons)
                        .unwrap_or_default();
                    let (why_ko, why_en) = match d.rule.as_deref() {
                        Some("urgent") => (" 긴급 신고(긴급도 3)로 점수와 관계없이 올랐습니다.".to_string(), " It was placed by an urgent council report (urgency 3), whatever its score.".to_string()),
                        Some("escalated") => (" 여러 번 의뢰되었으나 한 번도 만나지 못해 우선 배치되었습니다.".to_string(), " It was escalated: referred repeatedly and never reached.".to_string()),
                        _ => (String::new(), String::new()),
                    };
                    let rk: Vec<&str> = reasons.iter().map(|r| r.label_ko.as_str()).collect();
                    let re: Vec<&str> = reasons.iter().map(|r| r.label_en.as_str()).collect();
                    (
                        format!("가구 {household_id}는 {as_of} {district} {list_ko}에 {}위로 올랐습니다 (위기확률 {}).{why_ko} 주요 사유: {}.", d.rank.unwrap_or(0), pct(d.score), if rk.is_empty() { "없음".to_string() } else { rk.join(", ") }),
                        format!("Household {household_id} was on the {as_of} {list_en} of district {district} at rank {} (crisis probability {}).{why_en} Main reasons: {}.", d.rank.unwrap_or(0), pct(d.score), if re.is_empty() { "none".to_string() } else { re.join(", ") }),
                    )
                }
                "below_cut" => {
                    let cut = d.cut_score.map(pct).unwrap_or_else(|| "-".into());
                    let cap = d.capacity.unwrap_or(0);
                    (
                        format!("가구 {household_id}는 {as_of} {district} {list_ko}에 오르지 않았습니다: 위기확률 {}가 정원 {cap}명의 마지막 대상({cut})보다 낮았습니다.", pct(d.score)),
                        format!("Household {household_id} was not on the {as_of} {list_en} of district {district}: its crisis probability {} was below the last household the district's {cap} places took ({cut}).", pct(d.score)),
                    )
                }
                "below_min_score" => (
                    format!("가구 {household_id}는 {as_of} {district} {list_ko}에 오르지 않았습니다: 위기확률 {}가 최소 기준(screen.min_score)보다 낮았습니다.", pct(d.score)),
                    format!("Household {household_id} was not on the {as_of} {list_en} of district {district}: its crisis probability {} was below the district's minimum score (screen.min_score).", pct(d.score)),
                ),
                "excluded" => {
                    let (ko_rule, en_rule) = match d.rule.as_deref() {
                        Some("cooldown") => ("아직 결과가 없는 의뢰가 재의뢰 유예 기간 안에 있습니다", "an earlier referral without an outcome is still within the cool-down"),
                        Some("recently_supported") => ("최근 방문에서 지원이 결정되었습니다", "a recent visit ended with support"),
                        _ => ("제외 규칙", "an exclusion rule"),
                    };
                    (
                        format!("가구 {household_id}는 {as_of}에 제외되었습니다: {ko_rule} (위기확률 {}).", pct(d.score)),
                        format!("Household {household_id} was excluded on {as_of}: {en_rule} (crisis probability {}).", pct(d.score)),
                    )
                }
                _ => (
                    format!("가구 {household_id}는 {as_of}에 심사되었으나 신호에 시군구가 없어 목록에 넣을 수 없었습니다."),
                    format!("Household {household_id} was screened on {as_of} but no signal named its district, so it could not be listed."),
                ),
            }
        }
    };
    let mut rec = AuditRecord::new("explain");
    rec.as_of = Some(as_of.to_string());
    rec.household = Some(crate::audit::household_hash(data_dir, household_id)?);
    rec.detail = serde_json::json!({
        "outcome": decision.as_ref().map(|d| d.outcome.clone()),
    });
    crate::audit::append(data_dir, rec)?;
    Ok(Explanation {
        ko,
        en,
        decision,
        issued,
    })
}
