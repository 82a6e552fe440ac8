//! # lantern-contract
//!
//! The interface contract of Lantern (`SPEC.md`, with the compatible extensions of
//! `docs/CONTRACT.md`) as Rust types, and the rules every record must pass before anything else
//! sees it. It depends on neither a query engine nor Kafka, so a sending agency can vet its
//! files with a small, fast build, and so a change to a validation rule recompiles little.
//!
//! - [`contract`]: signals (SPEC §1), households (§2), case outcomes (§3), referrals (§4); the
//!   [`contract::Validator`], which turns bytes into a typed record or a
//!   [`contract::Rejection`] with a stable reason code and the offending field; the
//!   resident-registration-number guard and masking ([`contract::rrn`]).
//! - [`registry`]: the 229 districts (시군구), compiled in, and their nightly capacities.
//!
//! Validating one NDJSON line as ingest would, on the day it arrives:
//!
//! ```
//! use chrono::NaiveDate;
//! use lantern_contract::contract::{Record, Validator};
//! use lantern_contract::registry::Registry;
//!
//! let registry = Registry::embedded();
//! let today = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
//! let validator = Validator::new(&registry, today);
//!
//! let line = br#"{"event_id":"e1","source":"kepco","household_id":"hh_abcdefgh","district_code":"11110","observed_on":"2026-10-30","kind":"utility_arrears","utility":"electricity","months_overdue":3,"amount_krw":250000,"service_cut":true}"#;
//! assert!(matches!(validator.record(line), Ok(Record::Signal(_))));
//!
//! // A resident registration number anywhere is refused, with a stable reason code.
//! let bad = br#"{"event_id":"e2","source":"kepco","household_id":"900101-1234567","district_code":"11110","observed_on":"2026-10-30","kind":"utility_arrears","utility":"electricity","months_overdue":3,"amount_krw":250000,"service_cut":true}"#;
//! let rejection = validator.record(bad).unwrap_err();
//! assert_eq!(rejection.reason.code(), "personal_identifier");
//! ```

pub mod contract;
pub mod registry;
