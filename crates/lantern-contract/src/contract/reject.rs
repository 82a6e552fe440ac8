//! Why a record was refused, in a form both machines and people can read.
//!
//! The reason codes are part of the contract with the sending agencies: their operators count
//! and alert on them, so a code, once published, never changes its spelling or meaning. Add new
//! codes at the end; never rename one.

use std::fmt;

/// A stable, machine-readable reason for rejecting a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The bytes are not valid UTF-8.
    InvalidEncoding,
    /// The bytes are not one well-formed JSON value.
    MalformedJson,
    /// The JSON value is not an object.
    NotAnObject,
    /// A required field is absent or `null`.
    MissingField,
    /// A field has the wrong JSON type (a number where a string is due, say).
    WrongType,
    /// A string is shorter or longer than the contract allows.
    InvalidLength,
    /// A string does not match the pattern the contract gives (`household_id`, `source`, ...).
    InvalidFormat,
    /// `district_code` is not in the district registry.
    UnknownDistrict,
    /// `dong_code` does not start with `district_code`.
    DongDistrictMismatch,
    /// A date is not a real `YYYY-MM-DD` calendar date.
    InvalidDate,
    /// A date lies after the day of ingestion plus one.
    FutureDate,
    /// `reported_on` is before `observed_on`.
    ReportedBeforeObserved,
    /// A value is not in the field's value set (`kind`, `utility`, `outcome`, ...).
    UnknownValue,
    /// A number is outside the field's range.
    OutOfRange,
    /// An array that must hold unique values holds one twice.
    DuplicateValue,
    /// An array that must not be empty is empty.
    EmptyArray,
    /// A string looks like a Korean resident registration number.
    PersonalIdentifier,
    /// A record's `kind` does not belong to the topic or file it arrived on.
    KindMismatch,
    /// A case outcome names a `referral_id` that no referral list holds (SPEC §3 outcomes
    /// must answer a referral).
    UnknownReferral,
}

impl RejectReason {
    /// Every reason, in a fixed order: used for counters and reports.
    pub const ALL: [RejectReason; 19] = [
        RejectReason::InvalidEncoding,
        RejectReason::MalformedJson,
        RejectReason::NotAnObject,
        RejectReason::MissingField,
        RejectReason::WrongType,
        RejectReason::InvalidLength,
        RejectReason::InvalidFormat,
        RejectReason::UnknownDistrict,
        RejectReason::DongDistrictMismatch,
        RejectReason::InvalidDate,
        RejectReason::FutureDate,
        RejectReason::ReportedBeforeObserved,
        RejectReason::UnknownValue,
        RejectReason::OutOfRange,
        RejectReason::DuplicateValue,
        RejectReason::EmptyArray,
        RejectReason::PersonalIdentifier,
        RejectReason::KindMismatch,
        RejectReason::UnknownReferral,
    ];

    /// The published code, as it appears in the dead-letter sink and in metrics.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::InvalidEncoding => "invalid_encoding",
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::MissingField => "missing_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::InvalidLength => "invalid_length",
            RejectReason::InvalidFormat => "invalid_format",
            RejectReason::UnknownDistrict => "unknown_district",
            RejectReason::DongDistrictMismatch => "dong_district_mismatch",
            RejectReason::InvalidDate => "invalid_date",
            RejectReason::FutureDate => "future_date",
            RejectReason::ReportedBeforeObserved => "reported_before_observed",
            RejectReason::UnknownValue => "unknown_value",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::DuplicateValue => "duplicate_value",
            RejectReason::EmptyArray => "empty_array",
            RejectReason::PersonalIdentifier => "personal_identifier",
            RejectReason::KindMismatch => "kind_mismatch",
            RejectReason::UnknownReferral => "unknown_referral",
        }
    }

    /// Parses a published code back into a reason.
    pub fn from_code(code: &str) -> Option<RejectReason> {
        RejectReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One refused record: the reason, the field it concerns (a JSON path such as `concerns[2]`, or
/// `$` for the record as a whole) and a sentence for the person who has to fix the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at `{field}`: {detail}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub field: String,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, field: impl Into<String>, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            field: field.into(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_code_is_unique_and_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for r in RejectReason::ALL {
            assert!(seen.insert(r.code()), "duplicate code {}", r.code());
            assert_eq!(RejectReason::from_code(r.code()), Some(r));
        }
        assert_eq!(RejectReason::from_code("nonsense"), None);
    }

    #[test]
    fn rejection_message_names_reason_and_field() {
        let r = Rejection::new(RejectReason::MissingField, "event_id", "required");
        assert_eq!(r.to_string(), "missing_field at `event_id`: required");
    }
}
