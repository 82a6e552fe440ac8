//! `lantern simulate`: a seeded synthetic population for the demo, the tests and back-tests.
//!
//! Real crisis data cannot leave the agencies, so every stage is developed and evaluated on a
//! population whose truth we know. The simulator writes, under one output folder:
//!
//! ```text
//! households.csv                       SPEC §2 reference, one row per household
//! signals/utility-arrears.ndjson       SPEC §1, one file per default topic
//! signals/council-reports.ndjson
//! signals/service-gaps.ndjson
//! outcomes/case-outcomes.ndjson        SPEC §3, outcomes of past referral rounds
//! history/referrals.ndjson             SPEC §4, the past rounds' referrals (model `rule@1`)
//! truth/crisis_episodes.csv            ground truth: who was in crisis when (evaluation only)
//! truth/manifest.json                  what was written, including every planted bad record
//! ```
//!
//! Labels exist only for referred households, as in reality: past rounds were chosen by a naive
//! rule (service cut-offs first, then months overdue, then the number of unpaid bills), every
//! two months, flagging about 2.5% of the households with any record in each district. About
//! half of those turn out to be in crisis, as in the current national system.
//!
//! Output is a pure function of the parameters: the same seed gives byte-identical files.
//! Households are generated one at a time with their own random stream and written straight to
//! disk, so memory holds only the round candidates (a few bytes per household with a record).

mod corrupt;
mod population;
mod process;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use corrupt::fake_rrn;
pub use population::{SimDistrict, NATIONAL_HOUSEHOLDS};
pub use process::{Timeline, CRISIS_THRESHOLD};

use crate::contract::{
    referral_id, CaseOutcome, HouseholdType, Outcome, ReasonCode, Referral, SignalBody, SignalKind,
    Vocab,
};
use crate::registry::Registry;

/// The model name written on the simulated past referrals.
pub const HISTORY_MODEL: &str = "rule@1";

/// What to simulate.
#[derive(Debug, Clone, Serialize)]
pub struct SimParams {
    pub households: u64,
    pub months: u32,
    pub seed: u64,
    /// The simulation's "today", the last day anything is observed or reported.
    pub end: NaiveDate,
    /// Share of signal records replaced by one that breaks a contract rule.
    pub invalid_rate: f64,
    /// Share of valid signal records sent twice (same `event_id`).
    pub duplicate_rate: f64,
    /// Share of households with any record flagged per district in each past round.
    pub round_share: f64,
    /// Months between past referral rounds.
    pub round_every_months: u32,
}

impl SimParams {
    /// Sensible defaults for `households` households over `months` months.
    pub fn new(households: u64, months: u32, seed: u64) -> SimParams {
        SimParams {
            households,
            months,
            seed,
            end: NaiveDate::from_ymd_opt(2026, 10, 31).expect("valid date"),
            invalid_rate: 0.002,
            duplicate_rate: 0.01,
            round_share: 0.025,
            round_every_months: 2,
        }
    }

    fn check(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Params(m));
        if self.households == 0 || self.households > 100_000_000 {
            return bad(format!(
                "--households {} must be 1–100,000,000",
                self.households
            ));
        }
        if self.households > u32::MAX as u64 {
            return bad("--households must fit in 32 bits".into());
        }
        if self.months == 0 || self.months > 240 {
            return bad(format!("--months {} must be 1–240", self.months));
        }
        for (name, v) in [
            ("--invalid-rate", self.invalid_rate),
            ("--duplicate-rate", self.duplicate_rate),
            ("--round-share", self.round_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} {v} must be between 0 and 1"));
            }
        }
        if self.round_every_months == 0 {
            return bad("--round-every-months must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Params(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was written, for people and for tests. Saved as `truth/manifest.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Manifest {
    pub params: ManifestParams,
    pub households: u64,
    pub households_by_type: BTreeMap<String, u64>,
    /// Distinct valid signal events, by kind.
    pub valid_signals: BTreeMap<String, u64>,
    /// Extra copies of valid events (same `event_id`), which must count once.
    pub duplicate_lines: u64,
    /// Planted bad records, by the reason code the validator must give.
    pub invalid_by_reason: BTreeMap<String, u64>,
    pub referral_rounds: Vec<NaiveDate>,
    pub referrals: u64,
    pub outcomes_by_type: BTreeMap<String, u64>,
    /// Referrals with no outcome yet (decided after `end`): open cases.
    pub open_referrals: u64,
    /// Share of household-months in crisis.
    pub crisis_prevalence: f64,
    /// Share of the rule's referrals whose household was in crisis at the round.
    pub rule_precision: f64,
    /// Households whose later signals come from a district they are not registered in.
    pub moved_unregistered: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifestParams {
    pub households: u64,
    pub months: u32,
    pub seed: u64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub invalid_rate: f64,
    pub duplicate_rate: f64,
    pub round_share: f64,
    pub round_every_months: u32,
}

impl Manifest {
    pub fn total_valid_signals(&self) -> u64 {
        self.valid_signals.values().sum()
    }
    pub fn total_invalid(&self) -> u64 {
        self.invalid_by_reason.values().sum()
    }
}

/// SplitMix64's finalizer: a bijection on u64, so distinct inputs give distinct ids.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A u64 in 14 lowercase letters (26^14 > 2^64). Ids carry no digits at all, so no id can ever
/// look like a resident registration number and be refused by the guard.
fn letters(x: u64) -> String {
    crate::contract::letters(x as u128, 14)
}

/// The pseudonymous token of household number `idx` under `seed`.
pub fn household_token(seed: u64, idx: u64) -> String {
    format!("hh_{}", letters(mix(mix(seed ^ 0x4855_4853) ^ idx)))
}

/// One candidate of a past round: a household with a known record at the round date.
struct Candidate {
    round: u16,
    district: u16,
    household: u32,
    score: f64,
    cut: bool,
    max_overdue: u16,
    unpaid: u8,
    in_crisis: bool,
    moved: bool,
    isolated: bool,
    household_id: String,
    dong_code: Option<String>,
}

struct Writers {
    households: BufWriter<File>,
    signals: [BufWriter<File>; 3],
    episodes: BufWriter<File>,
}

fn create(path: &Path) -> Result<BufWriter<File>, SimError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|source| SimError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn kind_index(kind: SignalKind) -> usize {
    match kind {
        SignalKind::UtilityArrears => 0,
        SignalKind::CouncilReport => 1,
        SignalKind::ServiceGap => 2,
    }
}

/// The file a kind's signals go to, named after its default topic.
pub fn signal_file(out: &Path, kind: SignalKind) -> PathBuf {
    let topic = kind.default_topic().trim_start_matches("signals.");
    out.join("signals").join(format!("{topic}.ndjson"))
}

/// The file the outcomes of past rounds go to.
pub fn outcome_file(out: &Path) -> PathBuf {
    out.join("outcomes").join("case-outcomes.ndjson")
}

/// Runs the simulation and writes everything under `out`.
pub fn simulate(
    params: &SimParams,
    registry: &Registry,
    out: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Manifest, SimError> {
    params.check()?;
    let timeline = Timeline::new(params.end, params.months);
    let mut district_rng = ChaCha8Rng::seed_from_u64(mix(params.seed ^ 0xD157));
    let districts = population::districts(registry, params.households, &mut district_rng);
    let codes: Vec<String> = districts.iter().map(|d| d.code.clone()).collect();

    let households_path = out.join("households.csv");
    let episodes_path = out.join("truth").join("crisis_episodes.csv");
    let mut w = Writers {
        households: create(&households_path)?,
        signals: [
            create(&signal_file(out, SignalKind::UtilityArrears))?,
            create(&signal_file(out, SignalKind::CouncilReport))?,
            create(&signal_file(out, SignalKind::ServiceGap))?,
        ],
        episodes: create(&episodes_path)?,
    };
    writeln!(
        w.households,
        "household_id,district_code,dong_code,members,head_age_band,household_type,disability"
    )
    .map_err(io(&households_path))?;
    writeln!(w.episodes, "household_id,start,end").map_err(io(&episodes_path))?;

    // Past referral rounds: every `round_every_months`, from the third month, before `end`.
    let rounds: Vec<NaiveDate> = (2..params.months)
        .filter(|m| (m + 1) % params.round_every_months == 0)
        .map(|m| timeline.month_end(m))
        .filter(|d| *d < params.end)
        .collect();

    let mut valid_signals: BTreeMap<String, u64> = SignalKind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), 0))
        .collect();
    let mut invalid_by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut households_by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut duplicate_lines = 0u64;
    let mut pending_duplicates: Vec<(usize, String)> = Vec::new();
    let mut crisis_months = 0u64;
    let mut moved_unregistered = 0u64;
    let mut candidates: Vec<Candidate> = Vec::new();

    let mut idx: u64 = 0;
    for (d_idx, district) in districts.iter().enumerate() {
        for _ in 0..district.households {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(params.seed) ^ mix(idx));
            let id = household_token(params.seed, idx);
            let hh = population::household(id, district, &mut rng);
            *households_by_type
                .entry(hh.household_type.as_str().to_string())
                .or_default() += 1;
            writeln!(
                w.households,
                "{},{},{},{},{},{},{}",
                hh.household_id,
                hh.district_code,
                hh.dong_code.as_deref().unwrap_or(""),
                hh.members,
                hh.head_age_band.as_str(),
                hh.household_type.as_str(),
                hh.disability
            )
            .map_err(io(&households_path))?;

            let mut counter: u64 = 0;
            let event_base = mix(params.seed ^ 0x0045_5645_4E54) ^ (idx << 12);
            let mut next_id = || {
                counter += 1;
                format!("ev_{}", letters(mix(event_base ^ counter)))
            };
            let mut other = |rng: &mut ChaCha8Rng| -> String {
                // Somewhere else, usually nearby: another district of the same 시도.
                let same: Vec<&SimDistrict> = districts
                    .iter()
                    .filter(|o| o.sido == district.sido && o.code != district.code)
                    .collect();
                if same.is_empty() {
                    codes[rng.random_range(0..codes.len())].clone()
                } else {
                    same[rng.random_range(0..same.len())].code.clone()
                }
            };
            let run = process::run_household(
                &hh,
                district,
                &timeline,
                &mut rng,
                &mut other,
                &mut next_id,
            );
            if run
                .signals
                .iter()
                .any(|s| s.district_code != hh.district_code)
            {
                moved_unregistered += 1;
            }

            // Flush the duplicates planted by the previous household, so copies are not
            // adjacent to their originals.
            for (k, line) in pending_duplicates.drain(..) {
                writeln!(w.signals[k], "{line}").map_err(io(out))?;
                duplicate_lines += 1;
            }
            for s in &run.signals {
                let k = kind_index(s.kind());
                if rng.random_bool(params.invalid_rate) {
                    let (line, reason) = corrupt::corrupt(s, &mut rng);
                    writeln!(w.signals[k], "{line}").map_err(io(out))?;
                    *invalid_by_reason
                        .entry(reason.code().to_string())
                        .or_default() += 1;
                    continue;
                }
                let line = serde_json::to_string(s).expect("signals serialize");
                writeln!(w.signals[k], "{line}").map_err(io(out))?;
                *valid_signals
                    .get_mut(s.kind().as_str())
                    .expect("every kind has a counter") += 1;
                if rng.random_bool(params.duplicate_rate) {
                    pending_duplicates.push((k, line));
                }
            }

            crisis_months += run.crisis.iter().filter(|&&c| c).count() as u64;
            write_episodes(&mut w.episodes, &hh.household_id, &run.crisis, &timeline)
                .map_err(io(&episodes_path))?;
            collect_candidates(
                &mut candidates,
                &rounds,
                &timeline,
                d_idx as u16,
                idx as u32,
                &hh,
                &run,
            );
            idx += 1;
            if idx.is_multiple_of(4096) {
                progress.inc(4096);
            }
        }
    }
    for (k, line) in pending_duplicates.drain(..) {
        writeln!(w.signals[k], "{line}").map_err(io(out))?;
        duplicate_lines += 1;
    }
    progress.set_position(idx);

    let history = refer_and_decide(params, &rounds, &districts, candidates);
    write_history(out, &history)?;

    for mut f in [w.households, w.episodes].into_iter().chain(w.signals) {
        f.flush().map_err(io(out))?;
    }

    let mut outcomes_by_type: BTreeMap<String, u64> = Outcome::ALL
        .iter()
        .map(|o| (o.as_str().to_string(), 0))
        .collect();
    for (_, o) in &history {
        if let Some(o) = o {
            *outcomes_by_type
                .get_mut(o.outcome.as_str())
                .expect("every outcome has a counter") += 1;
        }
    }
    let referrals = history.len() as u64;
    let crisis_hits = history.iter().filter(|(r, _)| r.in_crisis).count() as u64;
    let manifest = Manifest {
        params: ManifestParams {
            households: params.households,
            months: params.months,
            seed: params.seed,
            start: timeline.start,
            end: params.end,
            invalid_rate: params.invalid_rate,
            duplicate_rate: params.duplicate_rate,
            round_share: params.round_share,
            round_every_months: params.round_every_months,
        },
        households: idx,
        households_by_type,
        valid_signals,
        duplicate_lines,
        invalid_by_reason,
        referral_rounds: rounds,
        referrals,
        open_referrals: history.iter().filter(|(_, o)| o.is_none()).count() as u64,
        outcomes_by_type,
        crisis_prevalence: ratio(crisis_months, idx * params.months as u64),
        rule_precision: ratio(crisis_hits, referrals),
        moved_unregistered,
    };
    let manifest_path = out.join("truth").join("manifest.json");
    let mut f = create(&manifest_path)?;
    serde_json::to_writer_pretty(&mut f, &manifest).expect("manifest serializes");
    writeln!(f)
        .and_then(|_| f.flush())
        .map_err(io(&manifest_path))?;
    Ok(manifest)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        // Rounded so the manifest is stable text across platforms' float printing.
        ((a as f64 / b as f64) * 1e6).round() / 1e6
    }
}

/// Writes the household's crisis episodes as `household_id,start,end` rows (`end` empty while
/// the crisis is still going on at the end of the window).
fn write_episodes(
    w: &mut impl Write,
    household_id: &str,
    crisis: &[bool],
    timeline: &Timeline,
) -> std::io::Result<()> {
    let mut m = 0usize;
    while m < crisis.len() {
        if !crisis[m] {
            m += 1;
            continue;
        }
        let start = m;
        while m < crisis.len() && crisis[m] {
            m += 1;
        }
        let end = if m == crisis.len() {
            String::new()
        } else {
            timeline.month_end(m as u32 - 1).to_string()
        };
        writeln!(
            w,
            "{household_id},{},{end}",
            timeline.month_start(start as u32)
        )?;
    }
    Ok(())
}

/// Scores the household by the naive rule at each round date, from what was known then.
fn collect_candidates(
    out: &mut Vec<Candidate>,
    rounds: &[NaiveDate],
    timeline: &Timeline,
    district: u16,
    household: u32,
    hh: &crate::contract::Household,
    run: &process::HouseholdRun,
) {
    for (r, &date) in rounds.iter().enumerate() {
        let window_start = date - Days::new(90);
        let mut any = false;
        let mut cut = false;
        let mut max_overdue = 0u16;
        let mut unpaid = std::collections::BTreeSet::new();
        let mut moved = false;
        for s in &run.signals {
            let known = s.reported_on.unwrap_or(s.observed_on) <= date;
            if !known || s.observed_on > date || s.observed_on <= window_start {
                continue;
            }
            any = true;
            moved |= s.district_code != hh.district_code;
            if let SignalBody::UtilityArrears(a) = &s.body {
                cut |= a.service_cut;
                max_overdue = max_overdue.max(a.months_overdue);
                if a.months_overdue > 0 {
                    unpaid.insert(a.utility);
                }
            }
        }
        if !any {
            continue;
        }
        let month = months_between(timeline.start, date);
        out.push(Candidate {
            round: r as u16,
            district,
            household,
            score: rule_score(cut, max_overdue, unpaid.len()),
            cut,
            max_overdue,
            unpaid: unpaid.len() as u8,
            in_crisis: run.crisis.get(month).copied().unwrap_or(false),
            moved,
            isolated: matches!(
                hh.household_type,
                HouseholdType::Single | HouseholdType::ElderlySingle
            ),
            household_id: hh.household_id.clone(),
            dong_code: hh.dong_code.clone(),
        });
    }
}

fn months_between(start: NaiveDate, date: NaiveDate) -> usize {
    use chrono::Datelike;
    ((date.year() - start.year()) * 12 + date.month() as i32 - start.month() as i32).max(0) as usize
}

pub use crate::model::{rule_score, RULE_MAX};

/// One past referral, whether its household was truly in crisis then, and its outcome if one
/// was decided by `end`.
struct PastReferral {
    referral: Referral,
    in_crisis: bool,
}

/// Picks each round's referrals per district by the rule, and decides their outcomes.
fn refer_and_decide(
    params: &SimParams,
    rounds: &[NaiveDate],
    districts: &[SimDistrict],
    mut candidates: Vec<Candidate>,
) -> Vec<(PastReferral, Option<CaseOutcome>)> {
    // Group by round and district; best score first; ties by household id so the choice is
    // fully determined.
    candidates.sort_by(|a, b| {
        (a.round, a.district)
            .cmp(&(b.round, b.district))
            .then(b.score.total_cmp(&a.score))
            .then(a.household_id.cmp(&b.household_id))
    });
    let mut out = Vec::new();
    let mut i = 0;
    while i < candidates.len() {
        let (round, district) = (candidates[i].round, candidates[i].district);
        let mut j = i;
        while j < candidates.len()
            && candidates[j].round == round
            && candidates[j].district == district
        {
            j += 1;
        }
        let group = &candidates[i..j];
        let take = ((group.len() as f64) * params.round_share).ceil() as usize;
        let as_of = rounds[round as usize];
        for (rank, c) in group.iter().take(take).enumerate() {
            let referral = Referral {
                referral_id: referral_id(&c.household_id, as_of, HISTORY_MODEL),
                as_of,
                district_code: districts[district as usize].code.clone(),
                dong_code: c.dong_code.clone(),
                household_id: c.household_id.clone(),
                rank: rank as u32 + 1,
                score: (c.score / RULE_MAX).clamp(0.0, 1.0),
                model: HISTORY_MODEL.to_string(),
                reasons: rule_reasons(c),
                placement: None,
                overrode: None,
                selection_probability: None,
            };
            let mut rng = ChaCha8Rng::seed_from_u64(
                mix(params.seed ^ 0x0C7C) ^ mix(((round as u64) << 32) | c.household as u64),
            );
            let decided_on = as_of + Days::new(rng.random_range(7..75));
            let outcome = (decided_on <= params.end).then(|| {
                let unreachable_p = 0.05 + if c.isolated { 0.06 } else { 0.0 };
                let outcome = if rng.random_bool(if c.moved { 0.35 } else { 0.015 }) {
                    Outcome::Moved
                } else if rng.random_bool(unreachable_p) {
                    Outcome::Unreachable
                } else if c.in_crisis {
                    if rng.random_bool(0.8) {
                        Outcome::Supported
                    } else {
                        Outcome::DeclinedSupport
                    }
                } else {
                    Outcome::NoCrisis
                };
                CaseOutcome {
                    referral_id: referral.referral_id.clone(),
                    household_id: c.household_id.clone(),
                    district_code: referral.district_code.clone(),
                    outcome,
                    decided_on,
                }
            });
            out.push((
                PastReferral {
                    referral,
                    in_crisis: c.in_crisis,
                },
                outcome,
            ));
        }
        i = j;
    }
    out
}

fn rule_reasons(c: &Candidate) -> Vec<ReasonCode> {
    let mut reasons = Vec::new();
    if c.cut {
        reasons.push(ReasonCode {
            code: "service_cut".into(),
            label_ko: "단전·단수 등 공급 중단".into(),
            label_en: "Utility service cut off".into(),
            contribution: 1000.0,
        });
    }
    if c.max_overdue > 0 {
        reasons.push(ReasonCode {
            code: "months_overdue".into(),
            label_ko: format!("최대 {}개월 체납", c.max_overdue),
            label_en: format!("Up to {} months overdue", c.max_overdue),
            contribution: 10.0 * c.max_overdue.min(60) as f64,
        });
    }
    if c.unpaid > 1 {
        reasons.push(ReasonCode {
            code: "multiple_arrears".into(),
            label_ko: format!("{}종 요금 체납", c.unpaid),
            label_en: format!("{} kinds of bills unpaid", c.unpaid),
            contribution: c.unpaid as f64,
        });
    }
    reasons
}

fn write_history(
    out: &Path,
    history: &[(PastReferral, Option<CaseOutcome>)],
) -> Result<(), SimError> {
    let referrals_path = out.join("history").join("referrals.ndjson");
    let outcomes_path = outcome_file(out);
    let mut referrals = create(&referrals_path)?;
    let mut outcomes = create(&outcomes_path)?;
    // Outcomes arrive in the order they were decided.
    let mut decided: Vec<&CaseOutcome> = history.iter().filter_map(|(_, o)| o.as_ref()).collect();
    decided.sort_by(|a, b| {
        a.decided_on
            .cmp(&b.decided_on)
            .then(a.referral_id.cmp(&b.referral_id))
    });
    for (r, _) in history {
        serde_json::to_writer(&mut referrals, &r.referral).expect("referrals serialize");
        writeln!(referrals).map_err(io(&referrals_path))?;
    }
    for o in decided {
        serde_json::to_writer(&mut outcomes, o).expect("outcomes serialize");
        writeln!(outcomes).map_err(io(&outcomes_path))?;
    }
    referrals.flush().map_err(io(&referrals_path))?;
    outcomes.flush().map_err(io(&outcomes_path))?;
    Ok(())
}

/// Produces a simulated population (the output folder of `lantern simulate`) as the agencies
/// would: each kind's signals to its topic, and the outcomes to the outcome topic. Returns the
/// messages sent.
pub fn produce_simulation(
    producer: &rdkafka::producer::BaseProducer,
    topics: &crate::config::Topics,
    sim_dir: &std::path::Path,
) -> Result<u64, crate::kafka::ProduceError> {
    use crate::contract::{SignalKind, Vocab};
    let mut n = 0;
    for kind in SignalKind::ALL {
        n += crate::kafka::produce_file(
            producer,
            topics.for_kind(*kind),
            &signal_file(sim_dir, *kind),
        )?;
    }
    n += crate::kafka::produce_file(producer, &topics.case_outcomes, &outcome_file(sim_dir))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_no_digits_and_are_distinct() {
        let ids: std::collections::BTreeSet<String> =
            (0..10_000).map(|i| household_token(7, i)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| !id.bytes().any(|b| b.is_ascii_digit())));
        assert_ne!(household_token(7, 0), household_token(8, 0));
    }

    #[test]
    fn timeline_ends_with_the_month_of_end() {
        let t = Timeline::new(NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(), 18);
        assert_eq!(t.start, NaiveDate::from_ymd_opt(2025, 5, 1).unwrap());
        assert_eq!(
            t.month_end(17),
            NaiveDate::from_ymd_opt(2026, 10, 31).unwrap()
        );
        assert_eq!(
            t.month_end(0),
            NaiveDate::from_ymd_opt(2025, 5, 31).unwrap()
        );
    }

    #[test]
    fn rule_puts_cut_offs_before_months_overdue() {
        assert!(rule_score(true, 0, 1) > rule_score(false, 60, 9));
        assert!(rule_score(false, 4, 1) > rule_score(false, 3, 9));
        assert!(rule_score(true, 240, 9) <= RULE_MAX);
    }

    #[test]
    fn bad_parameters_are_refused_with_the_flag_name() {
        let mut p = SimParams::new(0, 12, 1);
        assert!(p.check().unwrap_err().to_string().contains("--households"));
        p.households = 10;
        p.invalid_rate = 2.0;
        assert!(p
            .check()
            .unwrap_err()
            .to_string()
            .contains("--invalid-rate"));
    }
}
