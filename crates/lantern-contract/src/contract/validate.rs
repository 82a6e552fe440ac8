//! Bytes in, typed records or a precise [`Rejection`] out.
//!
//! Validation works on a parsed `serde_json::Value` rather than deriving `Deserialize` for the
//! record types: serde stops at the first problem with a message meant for programmers, while a
//! sending agency needs the exact field and a stable reason code. Every check returns instead of
//! panicking, so arbitrary bytes are safe (a property test holds us to that).
//!
//! Checks run in a fixed order, so the same bad record always gets the same reason:
//! encoding, JSON, object, personal identifier (anywhere in the record), then the envelope
//! fields in contract order, then the kind's own fields.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::reject::{RejectReason as R, Rejection};
use super::rrn::contains_rrn;
use super::vocab::*;
use super::{
    CaseOutcome, CouncilReport, Household, Referral, ServiceGap, Signal, SignalBody, UtilityArrears,
};
use crate::registry::Registry;

/// The longest council-report note, in characters.
pub const NOTE_MAX_CHARS: usize = 500;
pub(super) const MONTHS_OVERDUE_MAX: u64 = 240;
pub(super) const AMOUNT_KRW_MAX: u64 = 10_000_000_000;

/// A validated record from a mixed stream (an NDJSON backfill may carry signals and outcomes).
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Signal(Signal),
    Outcome(CaseOutcome),
}

/// Checks records against the contract as of one ingest day.
///
/// The ingest day matters because "not in the future" is relative: SPEC allows `observed_on` up
/// to the ingest day plus one (agencies in other time zones, batch jobs that run past midnight).
#[derive(Debug, Clone)]
pub struct Validator<'r> {
    registry: &'r Registry,
    ingest_day: NaiveDate,
}

type Obj = Map<String, Value>;

fn reject(reason: R, field: &str, detail: impl Into<String>) -> Rejection {
    Rejection::new(reason, field, detail)
}

impl<'r> Validator<'r> {
    pub fn new(registry: &'r Registry, ingest_day: NaiveDate) -> Self {
        Validator {
            registry,
            ingest_day,
        }
    }

    pub fn ingest_day(&self) -> NaiveDate {
        self.ingest_day
    }

    /// The same checks as of another ingest day (a daemon's day turns at midnight).
    pub fn on_day(&self, ingest_day: NaiveDate) -> Validator<'r> {
        Validator {
            registry: self.registry,
            ingest_day,
        }
    }

    pub fn registry(&self) -> &Registry {
        self.registry
    }

    /// The latest date a record may carry.
    pub(super) fn latest_allowed(&self) -> NaiveDate {
        self.ingest_day.succ_opt().unwrap_or(self.ingest_day)
    }

    /// Validates one signal from raw bytes (a Kafka payload or an NDJSON line).
    pub fn signal(&self, bytes: &[u8]) -> Result<Signal, Rejection> {
        self.signal_object(&decode(bytes)?)
    }

    /// Validates one case outcome from raw bytes.
    pub fn outcome(&self, bytes: &[u8]) -> Result<CaseOutcome, Rejection> {
        self.outcome_object(&decode(bytes)?)
    }

    /// Validates a record that may be either a signal or an outcome: a record with a `kind` is a
    /// signal; one without, carrying any of the outcome fields `referral_id`, `outcome` or
    /// `decided_on`, is an outcome (so a broken outcome is reported against the outcome rules).
    pub fn record(&self, bytes: &[u8]) -> Result<Record, Rejection> {
        self.record_object(&decode(bytes)?)
    }

    /// [`Validator::record`] for an object already decoded by [`decode`] (and perhaps
    /// pseudonymized in between).
    pub fn record_object(&self, obj: &JsonObject) -> Result<Record, Rejection> {
        let looks_like_outcome = ["referral_id", "outcome", "decided_on"]
            .iter()
            .any(|f| obj.contains_key(*f));
        if !obj.contains_key("kind") && looks_like_outcome {
            self.outcome_object(obj).map(Record::Outcome)
        } else {
            self.signal_object(obj).map(Record::Signal)
        }
    }

    /// Validates a decoded object as a signal.
    pub fn signal_object(&self, o: &JsonObject) -> Result<Signal, Rejection> {
        let event_id = string_len(o, "event_id", 1, 64)?;
        let source = patterned(o, "source", 1, 32, is_source_byte)?;
        let household_id = household_id(o)?;
        let district_code = self.district(o)?;
        let dong_code = dong_code(o, &district_code)?;
        let observed_on = self.date(o, "observed_on")?;
        let kind_s = required_str(o, "kind")?;
        let kind =
            SignalKind::parse(kind_s).ok_or_else(|| unknown::<SignalKind>("kind", kind_s))?;
        let reported_on = match optional(o, "reported_on") {
            None => None,
            Some(_) => {
                let r = self.date(o, "reported_on")?;
                if r < observed_on {
                    return Err(reject(
                        R::ReportedBeforeObserved,
                        "reported_on",
                        format!("{r} is before observed_on {observed_on}"),
                    ));
                }
                Some(r)
            }
        };
        let body = match kind {
            SignalKind::UtilityArrears => SignalBody::UtilityArrears(utility_arrears(o)?),
            SignalKind::CouncilReport => SignalBody::CouncilReport(council_report(o)?),
            SignalKind::ServiceGap => SignalBody::ServiceGap(ServiceGap {
                program: vocab(o, "program")?,
                gap: vocab(o, "gap")?,
            }),
        };
        Ok(Signal {
            event_id: event_id.to_string(),
            source: source.to_string(),
            household_id: household_id.to_string(),
            district_code,
            dong_code,
            observed_on,
            reported_on,
            body,
        })
    }

    /// Validates a decoded object as a case outcome.
    pub fn outcome_object(&self, o: &JsonObject) -> Result<CaseOutcome, Rejection> {
        let referral_id = string_len(o, "referral_id", 1, 64)?.to_string();
        let household_id = household_id(o)?.to_string();
        let district_code = self.district(o)?;
        let outcome = vocab(o, "outcome")?;
        let decided_on = self.date(o, "decided_on")?;
        Ok(CaseOutcome {
            referral_id,
            household_id,
            district_code,
            outcome,
            decided_on,
        })
    }

    /// Validates one past referral from any system (a SPEC §4 record, e.g. the lists of the
    /// system Lantern replaces), from raw bytes: the personal-identifier guard first, as for
    /// every input.
    pub fn referral(&self, bytes: &[u8]) -> Result<Referral, Rejection> {
        self.referral_object(&decode(bytes)?)
    }

    /// Validates one past referral. Its id may be any the SPEC allows (1–64 characters, not
    /// only Lantern's own), `model` any name, and `rank`, `score`, `model` and `reasons` may be
    /// absent (another system may not have them): rank 1, score 0, model `imported`, no
    /// reasons. The household, district, dong and date follow the rules of every input.
    pub fn referral_object(&self, o: &JsonObject) -> Result<Referral, Rejection> {
        let referral_id = string_len(o, "referral_id", 1, 64)?.to_string();
        let as_of = self.date(o, "as_of")?;
        let household_id = household_id(o)?.to_string();
        let district_code = self.district(o)?;
        let dong_code = dong_code(o, &district_code)?;
        let rank = match optional(o, "rank") {
            None => 1,
            Some(_) => integer(o, "rank", 1, 1_000_000)? as u32,
        };
        let score = match optional(o, "score") {
            None => 0.0,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if (0.0..=1.0).contains(&x) => x,
                _ => {
                    return Err(reject(
                        R::OutOfRange,
                        "score",
                        format!("{n} is not a probability in [0, 1]"),
                    ))
                }
            },
            Some(v) => {
                return Err(reject(
                    R::WrongType,
                    "score",
                    format!("expected a number, found {}", type_name(v)),
                ))
            }
        };
        let model = match optional(o, "model") {
            None => "imported".to_string(),
            Some(_) => string_len(o, "model", 1, 64)?.to_string(),
        };
        let reasons =
            match optional(o, "reasons") {
                None => Vec::new(),
                Some(v) => {
                    serde_json::from_value::<Vec<super::ReasonCode>>(v.clone()).map_err(|e| {
                        reject(
                    R::WrongType,
                    "reasons",
                    format!("expected an array of {{code, label_ko, label_en, contribution}}: {e}"),
                )
                    })?
                }
            };
        Ok(Referral {
            referral_id,
            as_of,
            district_code,
            dong_code,
            household_id,
            rank,
            score,
            model,
            reasons,
            placement: None,
            overrode: None,
            selection_probability: None,
        })
    }

    /// Validates one row of the households reference (SPEC §2), given as strings by column
    /// name, as a CSV reader or a Parquet row converter yields them. Empty cells are absent.
    pub fn household<'a>(
        &self,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Household, Rejection> {
        let mut o = Obj::new();
        for f in [
            "household_id",
            "district_code",
            "dong_code",
            "members",
            "head_age_band",
            "household_type",
            "disability",
        ] {
            if let Some(v) = get(f).map(str::trim).filter(|v| !v.is_empty()) {
                o.insert(f.to_string(), Value::String(v.to_string()));
            }
        }
        if let Some(field) = find_rrn(&o) {
            return Err(reject(
                R::PersonalIdentifier,
                &field,
                "looks like a resident registration number; pseudonymize before sending",
            ));
        }
        let household_id = household_id(&o)?.to_string();
        let district_code = self.district(&o)?;
        let dong_code = dong_code(&o, &district_code)?;
        let members_s = required_str(&o, "members")?;
        let members: u8 = members_s
            .parse::<u64>()
            .map_err(|_| {
                reject(
                    R::WrongType,
                    "members",
                    format!("`{members_s}` is not a whole number"),
                )
            })
            .and_then(|m| {
                if (1..=20).contains(&m) {
                    Ok(m as u8)
                } else {
                    Err(reject(
                        R::OutOfRange,
                        "members",
                        format!("{m} is not within 1–20"),
                    ))
                }
            })?;
        let head_age_band = vocab(&o, "head_age_band")?;
        let household_type = vocab(&o, "household_type")?;
        let disability_s = required_str(&o, "disability")?;
        let disability = match disability_s.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(reject(
                    R::WrongType,
                    "disability",
                    format!("`{disability_s}` is not true or false"),
                ))
            }
        };
        Ok(Household {
            household_id,
            district_code,
            dong_code,
            members,
            head_age_band,
            household_type,
            disability,
        })
    }

    fn district(&self, o: &Obj) -> Result<String, Rejection> {
        let code = required_str(o, "district_code")?;
        if code.len() != 5 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(reject(
                R::InvalidFormat,
                "district_code",
                format!("`{code}` is not a 5-digit code"),
            ));
        }
        if !self.registry.contains(code) {
            return Err(reject(
                R::UnknownDistrict,
                "district_code",
                format!("`{code}` is not in the district registry"),
            ));
        }
        Ok(code.to_string())
    }

    fn date(&self, o: &Obj, field: &str) -> Result<NaiveDate, Rejection> {
        let s = required_str(o, field)?;
        let d = parse_date(s).ok_or_else(|| {
            reject(
                R::InvalidDate,
                field,
                format!("`{s}` is not a real calendar date written YYYY-MM-DD"),
            )
        })?;
        if d > self.latest_allowed() {
            return Err(reject(
                R::FutureDate,
                field,
                format!("{d} is after the ingest day {} plus one", self.ingest_day),
            ));
        }
        Ok(d)
    }
}

/// A decoded JSON record.
pub type JsonObject = Map<String, Value>;

/// Decodes bytes to a JSON object and runs the personal-identifier guard over all of it. The
/// first step of every validation; exposed so that ingest can pseudonymize between decoding and
/// checking the fields.
pub fn decode(bytes: &[u8]) -> Result<JsonObject, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        reject(
            R::InvalidEncoding,
            "$",
            format!("not UTF-8 (first bad byte at offset {})", e.valid_up_to()),
        )
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| reject(R::MalformedJson, "$", format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(reject(
            R::NotAnObject,
            "$",
            format!("expected a JSON object, found {}", type_name(&value)),
        ));
    };
    if let Some(path) = find_rrn(&obj) {
        return Err(reject(
            R::PersonalIdentifier,
            &path,
            "looks like a resident registration number; pseudonymize before sending",
        ));
    }
    Ok(obj)
}

/// The path of the first string (or integer) anywhere in the object that looks like a resident
/// registration number. Keys are checked too: an identifier used as a key is still identifying.
/// Paths are only built on a hit, so the common clean record costs no allocation here.
fn find_rrn(obj: &Obj) -> Option<String> {
    /// The path below `v` to the hit: empty for `v` itself, `[i]...` or `.key...` below it.
    fn walk(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => contains_rrn(s).then(String::new),
            // Only 13 or more digits can look like one; skip the formatting for the rest.
            Value::Number(n) => (n.as_u64().is_none_or(|u| u >= 1_000_000_000_000)
                && contains_rrn(&n.to_string()))
            .then(String::new),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x).map(|rest| format!("[{i}]{rest}"))),
            Value::Object(m) => walk_object(m).map(|rest| format!(".{rest}")),
            Value::Null | Value::Bool(_) => None,
        }
    }
    fn walk_object(m: &Obj) -> Option<String> {
        m.iter().find_map(|(k, x)| {
            if contains_rrn(k) {
                Some(k.clone())
            } else {
                walk(x).map(|rest| format!("{k}{rest}"))
            }
        })
    }
    walk_object(obj)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The field's value, treating JSON `null` as absent.
fn optional<'a>(o: &'a Obj, field: &str) -> Option<&'a Value> {
    o.get(field).filter(|v| !v.is_null())
}

fn required<'a>(o: &'a Obj, field: &str) -> Result<&'a Value, Rejection> {
    optional(o, field).ok_or_else(|| reject(R::MissingField, field, "required field is missing"))
}

fn as_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, Rejection> {
    v.as_str().ok_or_else(|| {
        reject(
            R::WrongType,
            field,
            format!("expected a string, found {}", type_name(v)),
        )
    })
}

fn required_str<'a>(o: &'a Obj, field: &str) -> Result<&'a str, Rejection> {
    as_str(required(o, field)?, field)
}

fn string_len<'a>(o: &'a Obj, field: &str, min: usize, max: usize) -> Result<&'a str, Rejection> {
    let s = required_str(o, field)?;
    let n = s.chars().count();
    if n < min || n > max {
        return Err(reject(
            R::InvalidLength,
            field,
            format!("{n} characters, must be {min}–{max}"),
        ));
    }
    Ok(s)
}

/// A required string of `min..=max` bytes, each allowed by `ok`.
fn patterned<'a>(
    o: &'a Obj,
    field: &str,
    min: usize,
    max: usize,
    ok: impl Fn(u8) -> bool,
) -> Result<&'a str, Rejection> {
    let s = required_str(o, field)?;
    if s.len() < min || s.len() > max || !s.bytes().all(ok) {
        return Err(reject(
            R::InvalidFormat,
            field,
            format!("`{}` does not match the required pattern", truncate(s, 80)),
        ));
    }
    Ok(s)
}

fn household_id(o: &Obj) -> Result<&str, Rejection> {
    patterned(o, "household_id", 8, 64, is_household_byte)
}

/// `source` is `[a-z0-9_-]{1,32}`.
pub(super) fn is_source_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

/// `household_id` is `[A-Za-z0-9_-]{8,64}`.
pub(super) fn is_household_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn dong_code(o: &Obj, district_code: &str) -> Result<Option<String>, Rejection> {
    let Some(v) = optional(o, "dong_code") else {
        return Ok(None);
    };
    let s = as_str(v, "dong_code")?;
    if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(reject(
            R::InvalidFormat,
            "dong_code",
            format!("`{}` is not a 10-digit code", truncate(s, 80)),
        ));
    }
    if &s[..5] != district_code {
        return Err(reject(
            R::DongDistrictMismatch,
            "dong_code",
            format!("`{s}` does not start with district_code {district_code}"),
        ));
    }
    Ok(Some(s.to_string()))
}

fn unknown<T: Vocab>(field: &str, got: &str) -> Rejection {
    reject(
        R::UnknownValue,
        field,
        format!("`{}` is not one of {}", truncate(got, 80), T::expected()),
    )
}

fn vocab<T: Vocab>(o: &Obj, field: &str) -> Result<T, Rejection> {
    let s = required_str(o, field)?;
    T::parse(s).ok_or_else(|| unknown::<T>(field, s))
}

/// A required whole number within `min..=max`. `3.0` is refused: a sender that writes floats
/// for counts has a bug we want it to hear about.
fn integer(o: &Obj, field: &str, min: u64, max: u64) -> Result<u64, Rejection> {
    let v = required(o, field)?;
    let Value::Number(n) = v else {
        return Err(reject(
            R::WrongType,
            field,
            format!("expected a whole number, found {}", type_name(v)),
        ));
    };
    let value = if let Some(u) = n.as_u64() {
        u
    } else if n.as_i64().is_some() {
        return Err(reject(
            R::OutOfRange,
            field,
            format!("{n} is not within {min}–{max}"),
        ));
    } else {
        return Err(reject(
            R::WrongType,
            field,
            format!("{n} is not a whole number"),
        ));
    };
    if value < min || value > max {
        return Err(reject(
            R::OutOfRange,
            field,
            format!("{n} is not within {min}–{max}"),
        ));
    }
    Ok(value)
}

fn boolean(o: &Obj, field: &str) -> Result<bool, Rejection> {
    let v = required(o, field)?;
    v.as_bool().ok_or_else(|| {
        reject(
            R::WrongType,
            field,
            format!("expected true or false, found {}", type_name(v)),
        )
    })
}

fn utility_arrears(o: &Obj) -> Result<UtilityArrears, Rejection> {
    Ok(UtilityArrears {
        utility: vocab(o, "utility")?,
        months_overdue: integer(o, "months_overdue", 0, MONTHS_OVERDUE_MAX)? as u16,
        amount_krw: integer(o, "amount_krw", 0, AMOUNT_KRW_MAX)?,
        service_cut: boolean(o, "service_cut")?,
    })
}

fn council_report(o: &Obj) -> Result<CouncilReport, Rejection> {
    let reporter_role = vocab(o, "reporter_role")?;
    let v = required(o, "concerns")?;
    let Value::Array(items) = v else {
        return Err(reject(
            R::WrongType,
            "concerns",
            format!("expected an array, found {}", type_name(v)),
        ));
    };
    if items.is_empty() {
        return Err(reject(
            R::EmptyArray,
            "concerns",
            "at least one concern is required",
        ));
    }
    let mut concerns: Vec<Concern> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("concerns[{i}]");
        let s = as_str(item, &field)?;
        let c = Concern::parse(s).ok_or_else(|| unknown::<Concern>(&field, s))?;
        if concerns.contains(&c) {
            return Err(reject(
                R::DuplicateValue,
                &field,
                format!("`{s}` appears more than once"),
            ));
        }
        concerns.push(c);
    }
    let urgency = integer(o, "urgency", 1, 3)? as u8;
    let note = match optional(o, "note") {
        None => None,
        Some(v) => {
            let s = as_str(v, "note")?;
            let n = s.chars().count();
            if n > NOTE_MAX_CHARS {
                return Err(reject(
                    R::InvalidLength,
                    "note",
                    format!("{n} characters, at most {NOTE_MAX_CHARS} allowed"),
                ));
            }
            Some(s.to_string())
        }
    };
    Ok(CouncilReport {
        reporter_role,
        concerns,
        urgency,
        note,
    })
}

/// Strict `YYYY-MM-DD`: exactly ten characters, digits where digits belong, a real calendar
/// day. Parsed by hand: this runs twice per record on the ingest hot path.
pub(super) fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32)
        })
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}
