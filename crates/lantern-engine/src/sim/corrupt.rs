//! Deliberately broken records, so the ingest path can prove it rejects each kind of mistake.
//!
//! Each corruption breaks exactly one contract rule and says which reason code the validator
//! must give. The simulator counts them by reason in its manifest; a test then checks that
//! validating the simulator's files yields exactly those counts.

use chrono::Days;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::contract::{RejectReason, Signal, SignalBody};

/// A made-up resident registration number (random, not a real person's).
pub fn fake_rrn(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{:02}{:02}{:02}-{}{:06}",
        rng.random_range(40..100),
        rng.random_range(1..13),
        rng.random_range(1..29),
        rng.random_range(1..5),
        rng.random_range(0..1_000_000)
    )
}

/// One NDJSON line that breaks one rule, and the reason the validator must give for it.
pub fn corrupt(signal: &Signal, rng: &mut ChaCha8Rng) -> (String, RejectReason) {
    let Value::Object(mut o) = serde_json::to_value(signal).expect("signals serialize") else {
        unreachable!("a struct serializes to an object")
    };
    let reason = match rng.random_range(0..13u32) {
        0 => {
            o.remove("event_id");
            RejectReason::MissingField
        }
        1 => {
            o.insert("district_code".into(), json!("99999"));
            o.remove("dong_code");
            RejectReason::UnknownDistrict
        }
        2 => {
            o.insert("observed_on".into(), json!("2025-02-30"));
            RejectReason::InvalidDate
        }
        3 => {
            o.insert("observed_on".into(), json!("2099-01-01"));
            RejectReason::FutureDate
        }
        4 => {
            let rrn = fake_rrn(rng);
            o.insert("memo".into(), json!(format!("주민번호 {rrn} 확인 바람")));
            RejectReason::PersonalIdentifier
        }
        5 => {
            let text = serde_json::to_string(&o).expect("maps serialize");
            let cut = text.len() / 2;
            // Cut on a char boundary so the line stays UTF-8 (a broken encoding is another
            // reason).
            let cut = (0..=cut)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            return (text[..cut].to_string(), RejectReason::MalformedJson);
        }
        6 => {
            match &signal.body {
                SignalBody::UtilityArrears(_) => o.insert("utility".into(), json!("cable_tv")),
                SignalBody::CouncilReport(_) => o.insert("reporter_role".into(), json!("mayor")),
                SignalBody::ServiceGap(_) => o.insert("gap".into(), json!("lost")),
            };
            RejectReason::UnknownValue
        }
        7 => {
            o.insert("household_id".into(), json!("bad id!"));
            RejectReason::InvalidFormat
        }
        8 => {
            let before = signal.observed_on - Days::new(3);
            o.insert("reported_on".into(), json!(before.to_string()));
            RejectReason::ReportedBeforeObserved
        }
        9 => {
            let other = if signal.district_code == "11110" {
                "2611010100"
            } else {
                "1111010100"
            };
            o.insert("dong_code".into(), json!(other));
            RejectReason::DongDistrictMismatch
        }
        10 => wrong_type(&signal.body, &mut o),
        11 => range_or_array(&signal.body, &mut o),
        _ => {
            o.insert("kind".into(), json!("rumour"));
            RejectReason::UnknownValue
        }
    };
    (serde_json::to_string(&o).expect("maps serialize"), reason)
}

fn wrong_type(body: &SignalBody, o: &mut Map<String, Value>) -> RejectReason {
    match body {
        SignalBody::UtilityArrears(_) => o.insert("amount_krw".into(), json!("lots")),
        SignalBody::CouncilReport(_) => o.insert("urgency".into(), json!("high")),
        SignalBody::ServiceGap(_) => o.insert("program".into(), json!(3)),
    };
    RejectReason::WrongType
}

fn range_or_array(body: &SignalBody, o: &mut Map<String, Value>) -> RejectReason {
    match body {
        SignalBody::UtilityArrears(_) => {
            o.insert("months_overdue".into(), json!(999));
            RejectReason::OutOfRange
        }
        SignalBody::CouncilReport(r) => {
            if r.concerns.len() > 1 {
                let first = r.concerns[0];
                o.insert("concerns".into(), json!([first, first]));
                RejectReason::DuplicateValue
            } else {
                o.insert("concerns".into(), json!([]));
                RejectReason::EmptyArray
            }
        }
        SignalBody::ServiceGap(_) => {
            o.insert("event_id".into(), json!("x".repeat(65)));
            RejectReason::InvalidLength
        }
    }
}
