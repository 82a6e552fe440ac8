//! The fast path for the common case: a well-formed, valid signal.
//!
//! Decoding every record into a generic `serde_json::Value` costs most of validation's time.
//! Most records are valid, so this path deserializes straight into borrowed fields and only
//! *accepts*: the moment anything is unusual (an escape sequence, a look-alike identifier, a
//! wrong type, any broken rule) it gives up and the full validator decides, with its exact
//! reason and field. It therefore never rejects anything itself, and a property test holds it
//! to accepting only what the full validator accepts, as the same [`Signal`].

use serde::Deserialize;

use super::rrn::contains_rrn;
use super::validate::{
    is_household_byte, is_source_byte, parse_date, AMOUNT_KRW_MAX, MONTHS_OVERDUE_MAX,
};
use super::{
    Concern, CouncilReport, Gap, Program, ReporterRole, ServiceGap, Signal, SignalBody, SignalKind,
    Utility, UtilityArrears, Validator, Vocab, NOTE_MAX_CHARS,
};

/// Every field a signal may carry, borrowed from the input. Unknown fields are skipped.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    event_id: Option<&'a str>,
    source: Option<&'a str>,
    household_id: Option<&'a str>,
    district_code: Option<&'a str>,
    dong_code: Option<&'a str>,
    observed_on: Option<&'a str>,
    reported_on: Option<&'a str>,
    kind: Option<&'a str>,
    utility: Option<&'a str>,
    months_overdue: Option<u64>,
    amount_krw: Option<u64>,
    service_cut: Option<bool>,
    reporter_role: Option<&'a str>,
    #[serde(borrow)]
    concerns: Option<Vec<&'a str>>,
    urgency: Option<u64>,
    note: Option<&'a str>,
    program: Option<&'a str>,
    gap: Option<&'a str>,
}

impl Validator<'_> {
    /// The signal in `bytes` if it is plainly valid; `None` means "ask the full validator",
    /// never "invalid". `avoid` lists field names whose presence sends the record to the full
    /// path (fields to pseudonymize).
    pub fn fast_signal(&self, bytes: &[u8], avoid: &[String]) -> Option<Signal> {
        // Escapes could hide digits from the identifier scan below; leave them to the full path.
        if bytes.contains(&b'\\') {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        // Without escapes every string, key and number appears literally in the text, so one
        // scan of the text sees everything the full path's guard would.
        if contains_rrn(text) {
            return None;
        }
        // A field to pseudonymize needs the full path; its bare name anywhere is enough to send
        // the record there (a cheap, conservative test with no allocation).
        if avoid.iter().any(|f| text.contains(f.as_str())) {
            return None;
        }
        let f: Fields = serde_json::from_str(text).ok()?;

        let event_id = f.event_id?;
        if !(1..=64).contains(&event_id.chars().count()) {
            return None;
        }
        let source = f.source?;
        if !(1..=32).contains(&source.len()) || !source.bytes().all(is_source_byte) {
            return None;
        }
        let household_id = f.household_id?;
        if !(8..=64).contains(&household_id.len()) || !household_id.bytes().all(is_household_byte) {
            return None;
        }
        let district_code = f.district_code?;
        if district_code.len() != 5
            || !district_code.bytes().all(|b| b.is_ascii_digit())
            || !self.registry().contains(district_code)
        {
            return None;
        }
        let dong_code = match f.dong_code {
            None => None,
            Some(d) => {
                if d.len() != 10
                    || !d.bytes().all(|b| b.is_ascii_digit())
                    || &d[..5] != district_code
                {
                    return None;
                }
                Some(d.to_string())
            }
        };
        let latest = self.latest_allowed();
        let observed_on = parse_date(f.observed_on?).filter(|d| *d <= latest)?;
        let kind = SignalKind::parse(f.kind?)?;
        let reported_on = match f.reported_on {
            None => None,
            Some(r) => Some(parse_date(r).filter(|d| *d <= latest && *d >= observed_on)?),
        };
        let body = match kind {
            SignalKind::UtilityArrears => {
                let months_overdue = f.months_overdue.filter(|m| *m <= MONTHS_OVERDUE_MAX)?;
                let amount_krw = f.amount_krw.filter(|a| *a <= AMOUNT_KRW_MAX)?;
                SignalBody::UtilityArrears(UtilityArrears {
                    utility: Utility::parse(f.utility?)?,
                    months_overdue: months_overdue as u16,
                    amount_krw,
                    service_cut: f.service_cut?,
                })
            }
            SignalKind::CouncilReport => {
                let reporter_role = ReporterRole::parse(f.reporter_role?)?;
                let raw = f.concerns?;
                if raw.is_empty() {
                    return None;
                }
                let mut concerns: Vec<Concern> = Vec::with_capacity(raw.len());
                for c in raw {
                    let c = Concern::parse(c)?;
                    if concerns.contains(&c) {
                        return None;
                    }
                    concerns.push(c);
                }
                let urgency = f.urgency.filter(|u| (1..=3).contains(u))? as u8;
                let note = match f.note {
                    None => None,
                    Some(n) if n.chars().count() <= NOTE_MAX_CHARS => Some(n.to_string()),
                    Some(_) => return None,
                };
                SignalBody::CouncilReport(CouncilReport {
                    reporter_role,
                    concerns,
                    urgency,
                    note,
                })
            }
            SignalKind::ServiceGap => SignalBody::ServiceGap(ServiceGap {
                program: Program::parse(f.program?)?,
                gap: Gap::parse(f.gap?)?,
            }),
        };
        Some(Signal {
            event_id: event_id.to_string(),
            source: source.to_string(),
            household_id: household_id.to_string(),
            district_code: district_code.to_string(),
            dong_code,
            observed_on,
            reported_on,
            body,
        })
    }
}
