//! The interface contract (`../shared/SPEC.md`) as Rust types.
//!
//! Everything that crosses Lantern's boundary is one of these types: signals and case outcomes
//! coming in, the households reference, and referrals going out. Records arrive as bytes and
//! become typed only through [`Validator`], which enforces every rule of the contract and says
//! precisely why a record was refused ([`Rejection`]). Nothing downstream ever sees an unchecked
//! record, so later stages never re-validate.
//!
//! Extensions to SPEC made here (backward compatible, documented in `docs/CONTRACT.md`):
//! - `reported_on`, like `observed_on`, may not lie after the ingest day plus one;
//! - the reason codes of [`RejectReason`] are the published dead-letter vocabulary.

mod fast;
pub mod freetext;
mod reject;
pub mod rrn;
mod validate;
mod vocab;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use reject::{RejectReason, Rejection};
pub use validate::{decode, JsonObject, Record, Validator, NOTE_MAX_CHARS};
pub use vocab::{
    AgeBand, Concern, Gap, HouseholdType, Outcome, Program, ReporterRole, SignalKind, Utility,
    Vocab,
};

/// One crisis signal from a sending agency (SPEC §1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    /// The idempotency key: a re-sent event carries the same id and counts once.
    pub event_id: String,
    /// The sending agency, e.g. `kepco`.
    pub source: String,
    /// Pseudonymous household token.
    pub household_id: String,
    pub district_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dong_code: Option<String>,
    /// The day the fact holds.
    pub observed_on: NaiveDate,
    /// The day the agency knew it. `None` means "the day it was ingested"; the lake fills it in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_on: Option<NaiveDate>,
    #[serde(flatten)]
    pub body: SignalBody,
}

impl Signal {
    pub fn kind(&self) -> SignalKind {
        match self.body {
            SignalBody::UtilityArrears(_) => SignalKind::UtilityArrears,
            SignalBody::CouncilReport(_) => SignalKind::CouncilReport,
            SignalBody::ServiceGap(_) => SignalKind::ServiceGap,
        }
    }
}

/// The kind-specific part of a signal; serialized flat beside the envelope, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignalBody {
    UtilityArrears(UtilityArrears),
    CouncilReport(CouncilReport),
    ServiceGap(ServiceGap),
}

/// An unpaid bill or a cut-off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UtilityArrears {
    pub utility: Utility,
    /// 0–240.
    pub months_overdue: u16,
    /// 0–10,000,000,000.
    pub amount_krw: u64,
    /// 단전/단수/단가스 or line suspension.
    pub service_cut: bool,
}

/// A report from the human safety net (인적안전망).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CouncilReport {
    pub reporter_role: ReporterRole,
    /// Non-empty, unique.
    pub concerns: Vec<Concern>,
    /// 1–3; 3 means act now.
    pub urgency: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A benefit or service that stopped, or never started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceGap {
    pub program: Program,
    pub gap: Gap,
}

/// The result of a visit, linked to the referral that caused it (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseOutcome {
    pub referral_id: String,
    pub household_id: String,
    pub district_code: String,
    pub outcome: Outcome,
    pub decided_on: NaiveDate,
}

/// One row of the optional households reference (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Household {
    pub household_id: String,
    pub district_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dong_code: Option<String>,
    /// 1–20.
    pub members: u8,
    pub head_age_band: AgeBand,
    pub household_type: HouseholdType,
    pub disability: bool,
}

/// One explained reason behind a referral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonCode {
    /// Stable code, e.g. `service_cut_recent`.
    pub code: String,
    pub label_ko: String,
    pub label_en: String,
    /// The reason's share of the score, in the model's own units; larger first.
    pub contribution: f64,
}

/// One household on a district's list (SPEC §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    pub referral_id: String,
    pub as_of: NaiveDate,
    pub district_code: String,
    pub dong_code: Option<String>,
    pub household_id: String,
    /// 1 = highest risk within the district.
    pub rank: u32,
    /// Calibrated probability that a visit confirms a crisis.
    pub score: f64,
    /// `name@version`.
    pub model: String,
    /// At most three, largest contribution first: what the model weighed, in its own units.
    pub reasons: Vec<ReasonCode>,
    /// Set when a rule, not the score, put the household on the list (Lantern's extension of
    /// SPEC §4; absent for a place by score). Kept apart from `reasons`, whose contributions
    /// are the model's own and add up to its score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// The exclusion an urgent report overrode (extension of SPEC §4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrode: Option<Exclusion>,
    /// For an `explored` referral: the probability with which it was drawn (extension of
    /// SPEC §4). Absent for every other referral, which was listed for certain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_probability: Option<f64>,
}

/// The rule that placed a household on its district's list ahead of the score order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// A council report of urgency 3 within `screen.urgent_days`: always listed.
    Urgent,
    /// Flagged `screen.escalate_after` times in the window and never reached.
    Escalated,
    /// Drawn at random from the band just below the cut (`screen.exploration_share` of the
    /// capacity), so the model learns about households it would not have picked; the referral
    /// carries its `selection_probability`.
    Explored,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Urgent => "urgent",
            Placement::Escalated => "escalated",
            Placement::Explored => "explored",
        }
    }

    pub fn parse(s: &str) -> Option<Placement> {
        match s {
            "urgent" => Some(Placement::Urgent),
            "escalated" => Some(Placement::Escalated),
            "explored" => Some(Placement::Explored),
            _ => None,
        }
    }
}

/// A screening exclusion: a rule that keeps a household off tonight's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// An open referral younger than `screen.cooldown_days`.
    Cooldown,
    /// A visit that ended `supported` within `screen.supported_exclusion_days`.
    RecentlySupported,
}

impl Exclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::Cooldown => "cooldown",
            Exclusion::RecentlySupported => "recently_supported",
        }
    }

    pub fn parse(s: &str) -> Option<Exclusion> {
        match s {
            "cooldown" => Some(Exclusion::Cooldown),
            "recently_supported" => Some(Exclusion::RecentlySupported),
            _ => None,
        }
    }

    /// For caseworkers' lists.
    pub fn label_ko(self) -> &'static str {
        match self {
            Exclusion::Cooldown => "재의뢰 유예 기간 중",
            Exclusion::RecentlySupported => "최근 지원 완료",
        }
    }
}

/// The most reasons a referral carries.
pub const MAX_REASONS: usize = 3;

/// Why a referral we are about to publish breaks SPEC §4. Produced by our own code, so any of
/// these is a bug in Lantern, not in the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReferralError {
    #[error("referral {referral_id}: score {score} is not a probability in [0, 1]")]
    Score { referral_id: String, score: f64 },
    #[error("referral {referral_id}: rank must start at 1")]
    Rank { referral_id: String },
    #[error("referral {referral_id}: {count} reasons, at most {MAX_REASONS} allowed")]
    TooManyReasons { referral_id: String, count: usize },
    #[error("referral {referral_id}: reasons are not ordered largest contribution first")]
    ReasonOrder { referral_id: String },
    #[error("referral {referral_id}: model `{model}` is not `name@version`")]
    Model { referral_id: String, model: String },
    #[error("referral {referral_id}: id is not the one derived from household, as_of and model")]
    Id { referral_id: String },
    #[error(
        "referral {referral_id}: selection_probability {p} is not in (0, 1], or is given without placement `explored`"
    )]
    SelectionProbability { referral_id: String, p: f64 },
}

impl Referral {
    /// Checks the output rules of SPEC §4 before a referral leaves the system.
    pub fn check(&self) -> Result<(), ReferralError> {
        let id = || self.referral_id.clone();
        if !(0.0..=1.0).contains(&self.score) {
            return Err(ReferralError::Score {
                referral_id: id(),
                score: self.score,
            });
        }
        if self.rank == 0 {
            return Err(ReferralError::Rank { referral_id: id() });
        }
        if self.reasons.len() > MAX_REASONS {
            return Err(ReferralError::TooManyReasons {
                referral_id: id(),
                count: self.reasons.len(),
            });
        }
        if self
            .reasons
            .windows(2)
            .any(|w| w[0].contribution < w[1].contribution)
        {
            return Err(ReferralError::ReasonOrder { referral_id: id() });
        }
        match self.model.split_once('@') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => {}
            _ => {
                return Err(ReferralError::Model {
                    referral_id: id(),
                    model: self.model.clone(),
                })
            }
        }
        if self.referral_id != referral_id(&self.household_id, self.as_of, &self.model) {
            return Err(ReferralError::Id { referral_id: id() });
        }
        let explored = self.placement == Some(Placement::Explored);
        match self.selection_probability {
            Some(p) if explored && p > 0.0 && p <= 1.0 => {}
            None if !explored => {}
            other => {
                return Err(ReferralError::SelectionProbability {
                    referral_id: id(),
                    p: other.unwrap_or(f64::NAN),
                })
            }
        }
        Ok(())
    }
}

/// The referral id of SPEC §4: deterministic from household, screening date and model version,
/// so that re-running a night yields the same ids and a district never sees a duplicate.
///
/// `ref_` and 20 lowercase letters encoding the first 96 bits of SHA-256 over the three parts,
/// separated by a byte that cannot occur in any of them. Letters, not hex: hex digits can form a
/// 13-digit run, which the resident-registration-number guard would refuse when the id comes
/// back on an outcome.
///
/// ```
/// use chrono::NaiveDate;
/// use lantern_contract::contract::referral_id;
/// let night = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
/// let id = referral_id("hh_abcdefgh", night, "logit@3");
/// assert_eq!(id, referral_id("hh_abcdefgh", night, "logit@3")); // re-running a night
/// assert!(id.starts_with("ref_") && !id.bytes().any(|b| b.is_ascii_digit()));
/// ```
pub fn referral_id(household_id: &str, as_of: NaiveDate, model: &str) -> String {
    let mut h = Sha256::new();
    h.update(household_id.as_bytes());
    h.update([0x1f]);
    h.update(as_of.format("%Y-%m-%d").to_string().as_bytes());
    h.update([0x1f]);
    h.update(model.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes[4..].copy_from_slice(&digest[..12]);
    format!("ref_{}", letters(u128::from_be_bytes(bytes), 20))
}

/// Whether `id` has the shape of a referral id Lantern makes ([`referral_id`]): `ref_` and 20
/// lowercase letters. An outcome naming such an id claims to answer a Lantern referral; any
/// other id belongs to another system (a legacy feed) and is a label of its own.
///
/// ```
/// use lantern_contract::contract::{is_lantern_referral_id, referral_id};
/// let night = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
/// assert!(is_lantern_referral_id(&referral_id("hh_abcdefgh", night, "trees@2")));
/// assert!(!is_lantern_referral_id("SSIS-2025-000123"));
/// ```
pub fn is_lantern_referral_id(id: &str) -> bool {
    id.strip_prefix("ref_")
        .is_some_and(|rest| rest.len() == 20 && rest.bytes().all(|b| b.is_ascii_lowercase()))
}

/// `n` base-26 lowercase letters of `x`, most significant first. Ids built this way carry no
/// digits, so no id can ever look like a resident registration number.
pub fn letters(mut x: u128, n: usize) -> String {
    let mut out = vec![b'a'; n];
    for c in out.iter_mut().rev() {
        *c = b'a' + (x % 26) as u8;
        x /= 26;
    }
    String::from_utf8(out).expect("ascii letters")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referral() -> Referral {
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        Referral {
            referral_id: referral_id("hh_0001abcd", as_of, "logit@3"),
            as_of,
            district_code: "11110".into(),
            dong_code: None,
            household_id: "hh_0001abcd".into(),
            rank: 1,
            score: 0.7,
            model: "logit@3".into(),
            reasons: vec![
                ReasonCode {
                    code: "a".into(),
                    label_ko: "가".into(),
                    label_en: "A".into(),
                    contribution: 0.5,
                },
                ReasonCode {
                    code: "b".into(),
                    label_ko: "나".into(),
                    label_en: "B".into(),
                    contribution: 0.2,
                },
            ],
            placement: None,
            overrode: None,
            selection_probability: None,
        }
    }

    #[test]
    fn referral_id_is_deterministic_and_depends_on_all_three_parts() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let a = referral_id("hh_0001abcd", d, "logit@3");
        assert_eq!(a, referral_id("hh_0001abcd", d, "logit@3"));
        assert_eq!(a.len(), 24);
        assert!(!a.bytes().any(|b| b.is_ascii_digit()));
        assert_ne!(a, referral_id("hh_0001abce", d, "logit@3"));
        assert_ne!(
            a,
            referral_id("hh_0001abcd", d.succ_opt().unwrap(), "logit@3")
        );
        assert_ne!(a, referral_id("hh_0001abcd", d, "logit@4"));
    }

    /// The exploration extension: a selection probability in (0, 1] exactly when the placement
    /// is `explored`.
    #[test]
    fn a_selection_probability_goes_with_an_explored_placement_and_nothing_else() {
        let mut r = referral();
        r.placement = Some(Placement::Explored);
        r.selection_probability = Some(0.25);
        r.check().unwrap();
        for bad in [Some(0.0), Some(1.5), Some(f64::NAN), None] {
            r.selection_probability = bad;
            assert!(
                matches!(r.check(), Err(ReferralError::SelectionProbability { .. })),
                "{bad:?}"
            );
        }
        let mut plain = referral();
        plain.selection_probability = Some(0.5);
        assert!(plain.check().is_err(), "a probability without `explored`");
        let json = serde_json::to_string(&referral()).unwrap();
        assert!(
            !json.contains("selection_probability"),
            "absent when not explored"
        );
    }

    #[test]
    fn a_well_formed_referral_passes_the_output_check() {
        referral().check().unwrap();
    }

    #[test]
    fn referral_check_enforces_each_output_rule() {
        let mut r = referral();
        r.score = 1.2;
        assert!(matches!(r.check(), Err(ReferralError::Score { .. })));
        let mut r = referral();
        r.rank = 0;
        assert!(matches!(r.check(), Err(ReferralError::Rank { .. })));
        let mut r = referral();
        r.reasons.reverse();
        assert!(matches!(r.check(), Err(ReferralError::ReasonOrder { .. })));
        let mut r = referral();
        let extra = r.reasons[1].clone();
        r.reasons.push(extra.clone());
        r.reasons.push(extra);
        assert!(matches!(
            r.check(),
            Err(ReferralError::TooManyReasons { .. })
        ));
        let mut r = referral();
        r.model = "logit".into();
        assert!(matches!(r.check(), Err(ReferralError::Model { .. })));
        let mut r = referral();
        r.referral_id = "ref_000".into();
        assert!(matches!(r.check(), Err(ReferralError::Id { .. })));
    }

    #[test]
    fn referral_json_round_trips() {
        let r = referral();
        let json = serde_json::to_string(&r).unwrap();
        let back: Referral = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
