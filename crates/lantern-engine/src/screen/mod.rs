//! Nightly screening: score every household with a signal in the look-back window, apply the
//! exclusions and overrides, and cut each district's ranked list to its capacity.
//!
//! Order of a district's list:
//! 1. **urgent**: a council report of urgency 3 in the last `screen.urgent_days` days, as known
//!    that night. Always on the list, whatever the score, even beyond capacity (the run
//!    reports when that happens), and whatever exclusion would otherwise apply (the referral
//!    names the exclusion it overrode): a person at risk tonight is never cut for lack of a
//!    seat, nor because a visit is already pending or support was given recently.
//! 2. **escalated**: referred `escalate_after` times or more in the escalation window and never
//!    reached (every visit `unreachable`, or no outcome at all). Repeat flags without contact
//!    are how people die unseen, so they go ahead of the score order, with a reason code.
//! 3. everyone else by calibrated score, highest first; ties by `household_id`, so a night
//!    re-run gives the same list.
//!
//! Excluded before ranking, unless urgent: a household with an open referral (no outcome yet)
//! younger than `cooldown_days`, and one whose visit ended `supported` within
//! `supported_exclusion_days`.
//!
//! An override is marked in the referral's `placement` (and `overrode`) fields, not as an
//! invented reason: `reasons` carry only the model's own contributions.
//!
//! Memory stays bounded at national scale: features stream in batches and each district keeps
//! only its overrides and its best `capacity` candidates.

pub mod output;

use std::collections::{BTreeMap, HashMap};

use chrono::{Days, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::error::DataFusionError;
use serde::Serialize;

use crate::config::ScreenSettings;
use crate::contract::{referral_id, Exclusion, Placement, ReasonCode, Referral, MAX_REASONS};
use crate::features::{FeatureEngine, FeatureError, RowKey};
use crate::lake::date_from_days;
use crate::model::{Model, ModelError};
use crate::registry::{Capacities, Registry};

#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error("screening history query: {0}")]
    Query(#[from] DataFusionError),
    #[error("{0}")]
    Output(String),
}

impl From<datafusion::arrow::error::ArrowError> for ScreenError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        ScreenError::Query(e.into())
    }
}

/// A household's referral history as of the screening night.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The newest referral still without an outcome.
    pub open_since: Option<NaiveDate>,
    /// The latest visit that ended `supported`.
    pub supported_on: Option<NaiveDate>,
    /// Referrals in the escalation window.
    pub flags: u32,
    /// Whether any of them reached the household (an outcome other than `unreachable`).
    pub reached: bool,
}

/// Why a scored household is on a list ahead of the score order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Urgent,
    Escalated,
    Score,
}

/// One household on a district's list, before it becomes a SPEC §4 referral.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub key: RowKey,
    pub score: f64,
    pub priority: Priority,
    pub reasons: Vec<ReasonCode>,
    /// The exclusion an urgent report overrode.
    pub overrode: Option<Exclusion>,
}

/// Counts for the summary and the audit log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScreenCounts {
    pub scored: u64,
    pub excluded_open_referral: u64,
    pub excluded_recently_supported: u64,
    pub without_district: u64,
    pub urgent: u64,
    /// Urgent households listed although an exclusion applied (counted in `urgent` too).
    pub urgent_overrode_cooldown: u64,
    pub urgent_overrode_recently_supported: u64,
    pub escalated: u64,
    /// Drawn at random from the band below the cut (exploration).
    pub explored: u64,
    pub referred: u64,
    /// Districts whose urgent households alone exceeded capacity.
    pub over_capacity_districts: Vec<String>,
}

/// Why a screened household is, or is not, on its district's list: one row of the night's
/// decision log, so that "why was this household not on the list?" has an answer.
///
/// One is kept for every screened household until the night's outputs are written (11 million
/// at national scale), so it is kept small: the id in a box of its exact length, the district
/// shared with every other decision in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub household_id: Box<str>,
    /// None when no signal named a district.
    pub district_code: Option<std::sync::Arc<str>>,
    /// The model's calibrated score (also for excluded households).
    pub score: f64,
    pub outcome: DecisionOutcome,
    /// The household's groups for the night's fairness audit ([`crate::fairness::groups`]);
    /// not written to the decision log.
    pub groups: crate::fairness::Groups,
}

/// What screening decided for one household.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    /// On the list at this rank (placed by a rule, or by score).
    Listed {
        rank: u32,
        placement: Option<Placement>,
    },
    /// Scored below the last household listed by score in its district.
    BelowCut,
    /// Scored below the district's minimum score.
    BelowMinScore,
    /// Kept off by an exclusion.
    Excluded(Exclusion),
    /// No district to list it in.
    NoDistrict,
}

/// A screening night's result.
#[derive(Debug, Clone)]
pub struct Screening {
    pub as_of: NaiveDate,
    pub model: String,
    /// All districts' referrals, by district code then rank.
    pub referrals: Vec<Referral>,
    /// Referral id → (priority), for the outputs' flags.
    pub priority: HashMap<String, Priority>,
    pub counts: ScreenCounts,
    /// Every registered district with its capacity and list length (zero included).
    pub districts: BTreeMap<String, (u32, u32)>,
    /// Districts whose list the minimum score shortened: the minimum and how many seats it left
    /// empty.
    pub below_min_score: BTreeMap<String, (f64, u32)>,
    /// Every screened household's decision, in screening order.
    pub decisions: Vec<Decision>,
    /// Wall time by phase: state, history, cohort, features, scoring, ranking (the night adds
    /// its own: fairness, signals behind, watermark, outputs).
    pub phases: crate::phases::Phases,
}

/// The night's fairness audit: among the households that could be listed (not excluded, with a
/// district), who was, and the precision and missed crises the calibrated scores expect.
pub fn fairness(
    s: &Screening,
    settings: &crate::config::FairnessSettings,
) -> Vec<crate::fairness::GroupRow> {
    let members: Vec<crate::fairness::Member> = s
        .decisions
        .iter()
        .filter(|d| {
            matches!(
                d.outcome,
                DecisionOutcome::Listed { .. }
                    | DecisionOutcome::BelowCut
                    | DecisionOutcome::BelowMinScore
            )
        })
        .map(|d| crate::fairness::Member {
            groups: d.groups,
            selected: matches!(d.outcome, DecisionOutcome::Listed { .. }),
            crisis: d.score,
        })
        .collect();
    crate::fairness::audit_expected(&members, settings)
}

/// The history of every household referred before `as_of`, from the referral lists and the
/// outcomes known by then.
pub async fn history(
    engine: &FeatureEngine,
    as_of: NaiveDate,
    window_days: u32,
) -> Result<HashMap<String, History>, ScreenError> {
    let window_start = as_of
        .checked_sub_days(Days::new(window_days as u64))
        .unwrap_or(NaiveDate::MIN);
    // One row per referral with the outcome known by as_of (the latest one).
    let sql = format!(
        "SELECT r.household_id, r.as_of, o.outcome, o.decided_on
         FROM referrals r
         LEFT JOIN (
             SELECT referral_id, outcome, decided_on FROM (
                 SELECT referral_id, outcome, decided_on,
                        row_number() OVER (PARTITION BY referral_id
                                           ORDER BY decided_on DESC, ingested_at DESC) AS nth
                 FROM outcomes WHERE decided_on <= DATE '{as_of}'
             ) WHERE nth = 1
         ) o ON o.referral_id = r.referral_id
         WHERE r.as_of < DATE '{as_of}'"
    );
    let batches = engine.query(&sql).await?;
    let mut out: HashMap<String, History> = HashMap::new();
    for b in batches {
        let h = cast(b.column(0), &DataType::Utf8)?;
        let h = h.as_string::<i32>();
        let d = cast(b.column(1), &DataType::Date32)?;
        let d = d.as_primitive::<Date32Type>();
        let o = cast(b.column(2), &DataType::Utf8)?;
        let o = o.as_string::<i32>();
        let od = cast(b.column(3), &DataType::Date32)?;
        let od = od.as_primitive::<Date32Type>();
        for i in 0..b.num_rows() {
            let entry = out.entry(h.value(i).to_string()).or_default();
            let referred = date_from_days(d.value(i));
            let outcome = o.is_valid(i).then(|| o.value(i));
            match outcome {
                None => entry.open_since = entry.open_since.max(Some(referred)),
                Some("supported") => {
                    entry.supported_on = entry.supported_on.max(Some(date_from_days(od.value(i))))
                }
                _ => {}
            }
            if referred >= window_start {
                entry.flags += 1;
                if matches!(outcome, Some(o) if o != "unreachable") {
                    entry.reached = true;
                }
            }
        }
    }
    Ok(out)
}

/// The households with a council report of urgency 3 observed in the `days` days up to
/// `as_of` and known by then (`reported_on` ≤ `as_of`).
pub async fn urgent_households(
    engine: &FeatureEngine,
    as_of: NaiveDate,
    days: u32,
) -> Result<std::collections::HashSet<String>, ScreenError> {
    let start = as_of
        .checked_sub_days(Days::new(days as u64))
        .unwrap_or(NaiveDate::MIN);
    let sql = format!(
        "SELECT DISTINCT household_id FROM council_report
         WHERE urgency = 3 AND observed_on > DATE '{start}' AND observed_on <= DATE '{as_of}'
           AND reported_on <= DATE '{as_of}' AND month >= '{}' AND month <= '{}'",
        start.format("%Y-%m"),
        as_of.format("%Y-%m")
    );
    let mut out = std::collections::HashSet::new();
    for b in engine.query(&sql).await? {
        let h = cast(b.column(0), &DataType::Utf8)?;
        let h = h.as_string::<i32>();
        out.extend((0..b.num_rows()).map(|i| h.value(i).to_string()));
    }
    Ok(out)
}

/// The newest ingest time and observation date in the lake, for the audit log: what data a
/// list was made from.
pub async fn input_watermark(engine: &FeatureEngine) -> Result<String, ScreenError> {
    let sql = "SELECT CAST(max(i) AS VARCHAR), CAST(max(o) AS VARCHAR) FROM (
        SELECT max(ingested_at) AS i, max(observed_on) AS o FROM utility_arrears
        UNION ALL SELECT max(ingested_at), max(observed_on) FROM council_report
        UNION ALL SELECT max(ingested_at), max(observed_on) FROM service_gap
        UNION ALL SELECT max(ingested_at), max(decided_on) FROM outcomes)";
    let batches = engine.query(sql).await?;
    let get = |j: usize| -> String {
        batches
            .first()
            .filter(|b| b.num_rows() > 0)
            .and_then(|b| cast(b.column(j), &DataType::Utf8).ok())
            .map(|c| {
                let c = c.as_string::<i32>();
                if c.is_valid(0) {
                    c.value(0).to_string()
                } else {
                    "none".into()
                }
            })
            .unwrap_or_else(|| "none".into())
    };
    Ok(format!("ingested_at<={} observed_on<={}", get(0), get(1)))
}

/// Screens the night `as_of` with `model`.
#[allow(clippy::too_many_arguments)]
pub async fn screen(
    engine: &FeatureEngine,
    model: &Model,
    registry: &Registry,
    capacities: &Capacities,
    settings: &ScreenSettings,
    as_of: NaiveDate,
    progress: &indicatif::ProgressBar,
) -> Result<Screening, ScreenError> {
    model.check_features(engine.spec())?;
    let spec = engine.spec();
    let mut phases = crate::phases::Phases::default();
    let started = std::time::Instant::now();
    // The signal state first, so its update is timed on its own (the steps below find it
    // current).
    engine.refresh()?;
    let t = phases.since("state", started);
    let history = history(engine, as_of, settings.escalation_window_days).await?;
    let urgent_set = urgent_households(engine, as_of, settings.urgent_days).await?;
    let t = phases.since("history", t);
    let cohort: Vec<(String, NaiveDate)> = engine
        .scoring_cohort(as_of)
        .await?
        .into_iter()
        .map(|h| (h, as_of))
        .collect();
    let mut t = phases.since("cohort", t);
    progress.set_length(cohort.len() as u64);
    let capacity = |code: &str| capacities.scaled(registry, code, settings.capacity_scale);
    let mut counts = ScreenCounts::default();
    // Per district: the candidates still in the running, and the score to beat once the
    // district holds more than its capacity.
    let mut decisions: Vec<Decision> = Vec::new();
    let mut pools: BTreeMap<String, (Vec<Candidate>, Option<f64>)> = BTreeMap::new();
    // Each district's code once, shared by its decisions.
    let mut district_codes: HashMap<String, std::sync::Arc<str>> = HashMap::new();
    let mut stream = engine.stream(&cohort).await?;
    // The stream holds its own copy of the pairs, slice by slice, and lets each go when its
    // query starts; this one would only keep every screened household's id for the rest of
    // the night.
    drop(cohort);
    // Time waiting for the next batch is the feature query's; the loop's own is scoring.
    while let Some(batch) = stream.next().await? {
        t = phases.since("features", t);
        for i in 0..batch.len() {
            progress.inc(1);
            counts.scored += 1;
            let key = &batch.keys[i];
            let row = batch.row(i);
            let score = model.score(row);
            let district_code =
                key.district_code
                    .as_deref()
                    .map(|code| match district_codes.get(code) {
                        Some(shared) => shared.clone(),
                        None => {
                            let shared: std::sync::Arc<str> = code.into();
                            district_codes.insert(code.to_string(), shared.clone());
                            shared
                        }
                    });
            let decide = |outcome| Decision {
                household_id: key.household_id.as_str().into(),
                district_code: district_code.clone(),
                score: (score * 1e6).round() / 1e6,
                outcome,
                groups: crate::fairness::groups(
                    key.household_type.as_deref(),
                    key.head_age_band.as_deref(),
                    key.disability,
                    key.district_code.as_deref(),
                    registry,
                ),
            };
            let Some(district) = key.district_code.clone() else {
                counts.without_district += 1;
                decisions.push(decide(DecisionOutcome::NoDistrict));
                continue;
            };
            let past = history.get(&key.household_id);
            // Urgency is looked at first: it beats every exclusion.
            let urgent = urgent_set.contains(&key.household_id);
            let excluded = past.and_then(|h| exclusion(h, as_of, settings));
            match (excluded, urgent) {
                (Some(e @ Exclusion::Cooldown), false) => {
                    counts.excluded_open_referral += 1;
                    decisions.push(decide(DecisionOutcome::Excluded(e)));
                    continue;
                }
                (Some(e @ Exclusion::RecentlySupported), false) => {
                    counts.excluded_recently_supported += 1;
                    decisions.push(decide(DecisionOutcome::Excluded(e)));
                    continue;
                }
                _ => {}
            }
            // Listed or below the cut: settled once every district's list is drawn.
            decisions.push(decide(DecisionOutcome::BelowCut));
            let escalated = past.is_some_and(|h| h.flags >= settings.escalate_after && !h.reached);
            let priority = if urgent {
                Priority::Urgent
            } else if escalated {
                Priority::Escalated
            } else {
                Priority::Score
            };
            let cap = capacity(&district) as usize;
            let keep = cap + band_len(cap, settings);
            let (pool, floor) = pools.entry(district).or_default();
            // Only a household that can still make the list needs its reasons worked out.
            if priority == Priority::Score && floor.is_some_and(|f| score < f) {
                continue;
            }
            let reasons = model_reasons(model.reasons(row, spec));
            pool.push(Candidate {
                key: key.clone(),
                score,
                priority,
                reasons,
                overrode: if urgent { excluded } else { None },
            });
            // Keep the pool small: overrides always, the rest only while they could still
            // make the list.
            if pool.len() > 4 * keep.max(8) {
                rank(pool);
                let overrides = pool
                    .iter()
                    .filter(|c| c.priority != Priority::Score)
                    .count();
                pool.truncate(overrides + keep);
                // The score to beat from now on: the last plain candidate still seated, or in
                // the exploration band below the seats.
                *floor = pool
                    .iter()
                    .filter(|c| c.priority == Priority::Score)
                    .nth(keep.saturating_sub(1))
                    .map(|c| c.score);
            }
        }
        t = phases.since("scoring", t);
    }
    // The last wait, for the stream's end, was the query's too.
    let t = phases.since("features", t);
    let mut referrals = Vec::new();
    let mut priority = HashMap::new();
    let mut districts = BTreeMap::new();
    let mut below_min_score = BTreeMap::new();
    let mut listed: HashMap<String, (u32, Option<Placement>)> = HashMap::new();
    let mut min_cut: std::collections::HashSet<String> = Default::default();
    let model_id = model.id();
    for d in registry.iter() {
        let cap = capacity(&d.code);
        let mut pool = pools.remove(&d.code).unwrap_or_default().0;
        rank(&mut pool);
        let urgent = pool
            .iter()
            .filter(|c| c.priority == Priority::Urgent)
            .count();
        if urgent > cap as usize {
            counts.over_capacity_districts.push(d.code.clone());
        }
        // A list is not filled with households the model thinks unlikely to be in crisis: the
        // minimum score applies to the seats by score and to the exploration band alike.
        let min = settings.min_score_for(&d.code);
        let seated = urgent.max(cap as usize);
        if min > 0.0 {
            let mut cut = 0u32;
            let mut kept = Vec::with_capacity(pool.len());
            for (i, c) in pool.into_iter().enumerate() {
                if c.priority == Priority::Score && c.score < min {
                    if i < seated {
                        min_cut.insert(c.key.household_id.clone());
                        cut += 1;
                    }
                } else {
                    kept.push(c);
                }
            }
            pool = kept;
            if cut > 0 {
                below_min_score.insert(d.code.clone(), (min, cut));
            }
        }
        let (mut pool, explored) = explore(
            pool,
            seated,
            cap as usize,
            settings,
            as_of,
            &d.code,
            &model_id,
        );
        pool.truncate(seated.saturating_sub(explored.len()).min(pool.len()));
        pool.extend(explored);
        districts.insert(d.code.clone(), (cap, pool.len() as u32));
        for (r, (c, selection_probability)) in pool.into_iter().enumerate() {
            let placement = match (c.priority, selection_probability) {
                (Priority::Urgent, _) => {
                    counts.urgent += 1;
                    Some(Placement::Urgent)
                }
                (Priority::Escalated, _) => {
                    counts.escalated += 1;
                    Some(Placement::Escalated)
                }
                (Priority::Score, Some(_)) => {
                    counts.explored += 1;
                    Some(Placement::Explored)
                }
                (Priority::Score, None) => None,
            };
            match c.overrode {
                Some(Exclusion::Cooldown) => counts.urgent_overrode_cooldown += 1,
                Some(Exclusion::RecentlySupported) => {
                    counts.urgent_overrode_recently_supported += 1
                }
                None => {}
            }
            listed.insert(c.key.household_id.clone(), (r as u32 + 1, placement));
            let id = referral_id(&c.key.household_id, as_of, &model_id);
            priority.insert(id.clone(), c.priority);
            referrals.push(Referral {
                referral_id: id,
                as_of,
                district_code: d.code.clone(),
                dong_code: c.key.dong_code.clone(),
                household_id: c.key.household_id,
                rank: r as u32 + 1,
                score: (c.score * 1e6).round() / 1e6,
                model: model_id.clone(),
                reasons: c.reasons,
                placement,
                overrode: c.overrode,
                selection_probability,
            });
        }
    }
    counts.referred = referrals.len() as u64;
    for d in &mut decisions {
        if d.outcome == DecisionOutcome::BelowCut {
            if let Some(&(rank, placement)) = listed.get(&*d.household_id) {
                d.outcome = DecisionOutcome::Listed { rank, placement };
            } else if min_cut.contains(&*d.household_id) {
                d.outcome = DecisionOutcome::BelowMinScore;
            }
        }
    }
    // The features of a slice come back in whatever order the engine's partitions finish (a
    // Ballista cluster's differ from this process's): the decision log, and the fairness
    // audit's sums over it, follow the household id instead, so a night is the same value for
    // value on every engine.
    decisions.sort_unstable_by(|a, b| a.household_id.cmp(&b.household_id));
    for r in &referrals {
        r.check()
            .map_err(|e| ScreenError::Output(format!("internal error, please report: {e}")))?;
    }
    Ok(Screening {
        as_of,
        model: model_id,
        referrals,
        priority,
        counts,
        districts,
        below_min_score,
        decisions,
        phases: {
            phases.since("ranking", t);
            phases
        },
    })
}

/// How many plain candidates below the seats by score form the exploration band.
fn band_len(cap: usize, settings: &ScreenSettings) -> usize {
    if settings.exploration_share <= 0.0 || cap == 0 {
        return 0;
    }
    (settings.exploration_band * cap as f64).ceil().max(1.0) as usize
}

/// Exploration, for one district's ranked pool (overrides first) whose first `seated`
/// candidates would make the list. Returns the pool paired with each candidate's selection
/// probability (`None`: listed for certain, or not explored), split into the candidates in
/// rank order and the explored draws, to be seated after the first `seated - draws`.
///
/// The expected number of draws is `capacity × exploration_share`: its whole part always, one
/// more with the probability of its fraction. They are drawn uniformly without replacement from
/// the band: the `exploration_band × capacity` plain candidates right after the seats still
/// filled by score. Each band member's selection probability is therefore exactly
/// E[draws] / band, written on its referral. The generator is seeded by night, district and
/// model, so a re-run draws the same households.
fn explore(
    pool: Vec<Candidate>,
    seated: usize,
    cap: usize,
    settings: &ScreenSettings,
    as_of: NaiveDate,
    district: &str,
    model_id: &str,
) -> (Vec<(Candidate, Option<f64>)>, Vec<(Candidate, Option<f64>)>) {
    use rand::{Rng, SeedableRng};
    use sha2::{Digest, Sha256};
    let plain_from = pool
        .iter()
        .position(|c| c.priority == Priority::Score)
        .unwrap_or(pool.len());
    let plain_seats = seated.min(pool.len()).saturating_sub(plain_from);
    let expected = cap as f64 * settings.exploration_share.max(0.0);
    let band = band_len(cap, settings);
    if expected <= 0.0 || band == 0 || plain_seats == 0 {
        return (pool.into_iter().map(|c| (c, None)).collect(), Vec::new());
    }
    let whole = expected.floor() as usize;
    let fraction = expected - whole as f64;
    let mut rng = rand_chacha::ChaCha8Rng::from_seed(
        Sha256::digest(format!(
            "explore\u{1f}{as_of}\u{1f}{district}\u{1f}{model_id}"
        ))
        .into(),
    );
    let extra = usize::from(rng.random_bool(fraction.clamp(0.0, 1.0)));
    // Never more draws than seats by score; the band starts where the score seats end.
    let most = plain_seats;
    let draws = (whole + extra).min(most);
    let start = plain_from + plain_seats - draws;
    let available = pool.len().saturating_sub(start).min(band);
    let draws = draws.min(available);
    if draws == 0 {
        return (pool.into_iter().map(|c| (c, None)).collect(), Vec::new());
    }
    // E[min(whole + Bernoulli(fraction), most)] over `available`, the same for every member.
    let expected_draws =
        (1.0 - fraction) * whole.min(most) as f64 + fraction * (whole + 1).min(most) as f64;
    let p = (expected_draws.min(available as f64) / available as f64).clamp(f64::MIN_POSITIVE, 1.0);
    let mut chosen: Vec<usize> = rand::seq::index::sample(&mut rng, available, draws)
        .into_iter()
        .map(|i| start + i)
        .collect();
    chosen.sort_unstable();
    let mut rest = Vec::with_capacity(pool.len());
    let mut explored = Vec::with_capacity(draws);
    for (i, c) in pool.into_iter().enumerate() {
        if chosen.binary_search(&i).is_ok() {
            explored.push((c, Some(p)));
        } else {
            rest.push((c, None));
        }
    }
    (rest, explored)
}

/// Overrides first, then score, then household id.
fn rank(pool: &mut [Candidate]) {
    pool.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.score.total_cmp(&a.score))
            .then_with(|| a.key.household_id.cmp(&b.key.household_id))
    });
}

/// The exclusion that applies to a household with this history tonight, if any: an open
/// referral within the cool-down first, then a recent `supported` visit.
fn exclusion(h: &History, as_of: NaiveDate, settings: &ScreenSettings) -> Option<Exclusion> {
    let within = |since: Option<NaiveDate>, days: u32| {
        since.is_some_and(|d| {
            d.checked_add_days(Days::new(days as u64))
                .is_some_and(|end| as_of < end)
        })
    };
    if within(h.open_since, settings.cooldown_days) {
        Some(Exclusion::Cooldown)
    } else if within(h.supported_on, settings.supported_exclusion_days) {
        Some(Exclusion::RecentlySupported)
    } else {
        None
    }
}

/// The model's reasons, at most [`MAX_REASONS`]. Rule codes a model might carry from an older
/// feature catalogue are dropped: a rule's placement is in its own field.
fn model_reasons(mut reasons: Vec<ReasonCode>) -> Vec<ReasonCode> {
    reasons.retain(|r| r.code != "urgent_report" && r.code != "escalation");
    reasons.truncate(MAX_REASONS);
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Vec<Candidate> {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        (0..n)
            .map(|i| Candidate {
                key: RowKey {
                    household_id: format!("hh_{i:04}"),
                    as_of,
                    district_code: Some("11110".into()),
                    dong_code: None,
                    household_type: None,
                    head_age_band: None,
                    disability: None,
                },
                score: 1.0 - i as f64 / 100.0,
                priority: if i < 2 {
                    Priority::Urgent
                } else {
                    Priority::Score
                },
                reasons: Vec::new(),
                overrode: None,
            })
            .collect()
    }

    fn settings(share: f64) -> ScreenSettings {
        let mut s = crate::config::Settings::defaults().screen;
        s.exploration_share = share;
        s.exploration_band = 1.0;
        s
    }

    /// Exploration draws `capacity × share` households uniformly from the band right after the
    /// seats still filled by score, each with the same, exact selection probability; overrides
    /// are never displaced; a re-run draws the same; 0 turns it off.
    #[test]
    fn exploration_draws_from_the_band_below_the_cut_with_its_exact_probability() {
        let night = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        // Capacity 10: 2 urgent + 8 by score; 5 draws expected, band of 10 after the 3 kept.
        let (rest, explored) = explore(pool(40), 10, 10, &settings(0.5), night, "11110", "trees@1");
        assert_eq!(explored.len(), 5);
        for (c, p) in &explored {
            assert_eq!(*p, Some(0.5), "5 draws from a band of 10");
            let i: usize = c.key.household_id[3..].parse().unwrap();
            assert!((5..15).contains(&i), "drawn from the band: {i}");
        }
        assert!(
            rest[..5].iter().all(|(c, p)| p.is_none() && {
                let i: usize = c.key.household_id[3..].parse().unwrap();
                i < 5
            }),
            "the urgent two and the top three by score keep their seats"
        );
        let again = explore(pool(40), 10, 10, &settings(0.5), night, "11110", "trees@1").1;
        let ids = |v: &[(Candidate, Option<f64>)]| {
            v.iter()
                .map(|(c, _)| c.key.household_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&again), ids(&explored), "a re-run draws the same");
        assert!(
            explore(pool(40), 10, 10, &settings(0.0), night, "11110", "trees@1")
                .1
                .is_empty()
        );
        // A fractional expectation: 0.3 draws on average, probability 0.3 / 10 each.
        let mut draws = 0;
        for d in 0..400 {
            let (_, e) = explore(
                pool(40),
                10,
                10,
                &settings(0.03),
                night,
                &format!("{d}"),
                "m@1",
            );
            if let Some((_, p)) = e.first() {
                assert!((p.unwrap() - 0.03).abs() < 1e-12);
            }
            draws += e.len();
        }
        assert!(
            (80..160).contains(&draws),
            "about 0.3 per district: {draws} in 400"
        );
    }
}
