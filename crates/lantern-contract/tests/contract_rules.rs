//! One test per rule of SPEC §1–§3. Each starts from a record that passes, breaks exactly one
//! rule, and checks the reason code and the field named. Removing a rule from the validator
//! makes its test fail.

use chrono::NaiveDate;
use lantern_contract::contract::{
    CaseOutcome, Outcome, Record, RejectReason as R, Rejection, SignalBody, Validator,
    NOTE_MAX_CHARS,
};
use lantern_contract::registry::Registry;
use serde_json::{json, Value};

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
}

fn arrears() -> Value {
    json!({
        "event_id": "ev-0001",
        "source": "kepco",
        "household_id": "hh_abcdefgh",
        "district_code": "11110",
        "dong_code": "1111051500",
        "observed_on": "2026-10-31",
        "reported_on": "2026-11-01",
        "kind": "utility_arrears",
        "utility": "electricity",
        "months_overdue": 3,
        "amount_krw": 152000,
        "service_cut": true
    })
}

fn council() -> Value {
    json!({
        "event_id": "ev-0002",
        "source": "council",
        "household_id": "hh_abcdefgh",
        "district_code": "41110",
        "observed_on": "2026-10-20",
        "kind": "council_report",
        "reporter_role": "honorary_welfare_officer",
        "concerns": ["isolation", "food"],
        "urgency": 3,
        "note": "우편물이 쌓여 있음"
    })
}

fn gap() -> Value {
    json!({
        "event_id": "ev-0003",
        "source": "ssis",
        "household_id": "HH-12345678",
        "district_code": "52710",
        "observed_on": "2026-09-01",
        "kind": "service_gap",
        "program": "basic_livelihood",
        "gap": "benefit_terminated"
    })
}

fn outcome() -> Value {
    json!({
        "referral_id": "ref_0123456789abcdef01234567",
        "household_id": "hh_abcdefgh",
        "district_code": "11110",
        "outcome": "supported",
        "decided_on": "2026-10-15"
    })
}

fn validate(v: &Value) -> Result<SignalBody, Rejection> {
    let reg = Registry::embedded();
    let bytes = serde_json::to_vec(v).unwrap();
    Validator::new(&reg, day()).signal(&bytes).map(|s| s.body)
}

fn validate_outcome(v: &Value) -> Result<CaseOutcome, Rejection> {
    let reg = Registry::embedded();
    let bytes = serde_json::to_vec(v).unwrap();
    Validator::new(&reg, day()).outcome(&bytes)
}

/// Sets `field` to `value` (or removes it when `value` is None) and expects `reason` at `at`.
fn expect(mut v: Value, field: &str, value: Option<Value>, reason: R, at: &str) {
    match value {
        Some(x) => {
            v[field] = x;
        }
        None => {
            v.as_object_mut().unwrap().remove(field);
        }
    }
    // Through `record`, the mixed-stream entry point, which must route each to its rules.
    let reg = Registry::embedded();
    let bytes = serde_json::to_vec(&v).unwrap();
    let got = Validator::new(&reg, day()).record(&bytes).map(|_| ());
    let err = got.expect_err(&format!("{field} = {:?} should be rejected", v.get(field)));
    assert_eq!(err.reason, reason, "{err}");
    assert_eq!(err.field, at, "{err}");
}

#[test]
fn the_base_records_are_valid() {
    assert!(matches!(
        validate(&arrears()).unwrap(),
        SignalBody::UtilityArrears(_)
    ));
    assert!(matches!(
        validate(&council()).unwrap(),
        SignalBody::CouncilReport(_)
    ));
    assert!(matches!(
        validate(&gap()).unwrap(),
        SignalBody::ServiceGap(_)
    ));
    let o = validate_outcome(&outcome()).unwrap();
    assert_eq!(o.outcome, Outcome::Supported);
}

// ---- envelope -------------------------------------------------------------------------------

#[test]
fn every_required_envelope_field_is_required() {
    for f in [
        "event_id",
        "source",
        "household_id",
        "district_code",
        "observed_on",
        "kind",
    ] {
        expect(arrears(), f, None, R::MissingField, f);
        expect(arrears(), f, Some(Value::Null), R::MissingField, f);
    }
}

#[test]
fn event_id_is_1_to_64_chars() {
    expect(
        arrears(),
        "event_id",
        Some(json!("")),
        R::InvalidLength,
        "event_id",
    );
    expect(
        arrears(),
        "event_id",
        Some(json!("x".repeat(65))),
        R::InvalidLength,
        "event_id",
    );
    // 64 multi-byte characters are 64 characters, not 192 bytes.
    let mut v = arrears();
    v["event_id"] = json!("가".repeat(64));
    validate(&v).unwrap();
    expect(
        arrears(),
        "event_id",
        Some(json!(17)),
        R::WrongType,
        "event_id",
    );
}

#[test]
fn source_matches_its_pattern() {
    for bad in ["KEPCO", "ke pco", "", &"a".repeat(33), "kepco!"] {
        expect(
            arrears(),
            "source",
            Some(json!(bad)),
            R::InvalidFormat,
            "source",
        );
    }
    let mut v = arrears();
    v["source"] = json!("k-water_2");
    validate(&v).unwrap();
}

#[test]
fn household_id_matches_its_pattern() {
    for bad in [
        "short",
        "has space1",
        &"a".repeat(65),
        "한글한글한글한글",
        "abc/defgh",
    ] {
        expect(
            arrears(),
            "household_id",
            Some(json!(bad)),
            R::InvalidFormat,
            "household_id",
        );
    }
    let mut v = arrears();
    v["household_id"] = json!("Ab_-1234");
    validate(&v).unwrap();
}

#[test]
fn district_code_is_five_digits_and_registered() {
    expect(
        arrears(),
        "district_code",
        Some(json!("1111")),
        R::InvalidFormat,
        "district_code",
    );
    expect(
        arrears(),
        "district_code",
        Some(json!("1111a")),
        R::InvalidFormat,
        "district_code",
    );
    let mut v = arrears();
    v.as_object_mut().unwrap().remove("dong_code");
    expect(
        v,
        "district_code",
        Some(json!("99999")),
        R::UnknownDistrict,
        "district_code",
    );
    expect(
        arrears(),
        "district_code",
        Some(json!(11110)),
        R::WrongType,
        "district_code",
    );
}

#[test]
fn dong_code_is_optional_ten_digits_within_the_district() {
    let mut v = arrears();
    v.as_object_mut().unwrap().remove("dong_code");
    validate(&v).unwrap();
    v["dong_code"] = Value::Null;
    validate(&v).unwrap();
    expect(
        arrears(),
        "dong_code",
        Some(json!("111105150")),
        R::InvalidFormat,
        "dong_code",
    );
    expect(
        arrears(),
        "dong_code",
        Some(json!("111105150x")),
        R::InvalidFormat,
        "dong_code",
    );
    expect(
        arrears(),
        "dong_code",
        Some(json!("2611051500")),
        R::DongDistrictMismatch,
        "dong_code",
    );
}

#[test]
fn observed_on_is_a_real_date_not_after_ingest_day_plus_one() {
    for bad in [
        "2026-02-30",
        "2026-13-01",
        "26-10-01",
        "2026/10/01",
        "2026-10-1",
        "yesterday",
    ] {
        expect(
            arrears(),
            "observed_on",
            Some(json!(bad)),
            R::InvalidDate,
            "observed_on",
        );
    }
    // Ingest day is 2026-11-01: the 2nd is allowed, the 3rd is not.
    let mut v = arrears();
    v["observed_on"] = json!("2026-11-02");
    v["reported_on"] = json!("2026-11-02");
    validate(&v).unwrap();
    let mut v = arrears();
    v.as_object_mut().unwrap().remove("reported_on");
    expect(
        v,
        "observed_on",
        Some(json!("2026-11-03")),
        R::FutureDate,
        "observed_on",
    );
}

#[test]
fn kind_is_one_of_the_three() {
    expect(
        arrears(),
        "kind",
        Some(json!("utility")),
        R::UnknownValue,
        "kind",
    );
    expect(
        arrears(),
        "kind",
        Some(json!(["utility_arrears"])),
        R::WrongType,
        "kind",
    );
}

#[test]
fn reported_on_is_optional_and_not_before_observed_on() {
    let mut v = arrears();
    v.as_object_mut().unwrap().remove("reported_on");
    validate(&v).unwrap();
    expect(
        arrears(),
        "reported_on",
        Some(json!("2026-10-30")),
        R::ReportedBeforeObserved,
        "reported_on",
    );
    expect(
        arrears(),
        "reported_on",
        Some(json!("2026-10-32")),
        R::InvalidDate,
        "reported_on",
    );
    // Extension (docs/CONTRACT.md): a knowledge date cannot lie in the future either.
    expect(
        arrears(),
        "reported_on",
        Some(json!("2026-12-01")),
        R::FutureDate,
        "reported_on",
    );
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let mut v = arrears();
    v["meter_serial"] = json!("M-1234");
    v["nested"] = json!({"a": [1, 2, {"b": null}]});
    validate(&v).unwrap();
}

// ---- utility_arrears --------------------------------------------------------------------------

#[test]
fn utility_is_in_its_value_set() {
    expect(
        arrears(),
        "utility",
        Some(json!("cable_tv")),
        R::UnknownValue,
        "utility",
    );
    expect(arrears(), "utility", None, R::MissingField, "utility");
    for u in [
        "electricity",
        "water",
        "gas",
        "telecom",
        "health_insurance",
        "housing_fee",
        "rent",
        "pension_loan",
        "credit",
    ] {
        let mut v = arrears();
        v["utility"] = json!(u);
        validate(&v).unwrap();
    }
}

#[test]
fn months_overdue_is_an_integer_0_to_240() {
    expect(
        arrears(),
        "months_overdue",
        Some(json!(241)),
        R::OutOfRange,
        "months_overdue",
    );
    expect(
        arrears(),
        "months_overdue",
        Some(json!(-1)),
        R::OutOfRange,
        "months_overdue",
    );
    expect(
        arrears(),
        "months_overdue",
        Some(json!(2.5)),
        R::WrongType,
        "months_overdue",
    );
    expect(
        arrears(),
        "months_overdue",
        Some(json!("3")),
        R::WrongType,
        "months_overdue",
    );
    expect(
        arrears(),
        "months_overdue",
        None,
        R::MissingField,
        "months_overdue",
    );
    for ok in [0, 240] {
        let mut v = arrears();
        v["months_overdue"] = json!(ok);
        validate(&v).unwrap();
    }
}

#[test]
fn amount_krw_is_an_integer_0_to_ten_billion() {
    expect(
        arrears(),
        "amount_krw",
        Some(json!(10_000_000_001u64)),
        R::OutOfRange,
        "amount_krw",
    );
    expect(
        arrears(),
        "amount_krw",
        Some(json!(-5)),
        R::OutOfRange,
        "amount_krw",
    );
    expect(
        arrears(),
        "amount_krw",
        Some(json!(u64::MAX)),
        R::OutOfRange,
        "amount_krw",
    );
    expect(
        arrears(),
        "amount_krw",
        Some(json!(1.5e3)),
        R::WrongType,
        "amount_krw",
    );
    expect(arrears(), "amount_krw", None, R::MissingField, "amount_krw");
    let mut v = arrears();
    v["amount_krw"] = json!(10_000_000_000u64);
    validate(&v).unwrap();
}

#[test]
fn service_cut_is_a_boolean() {
    expect(
        arrears(),
        "service_cut",
        Some(json!("true")),
        R::WrongType,
        "service_cut",
    );
    expect(
        arrears(),
        "service_cut",
        Some(json!(1)),
        R::WrongType,
        "service_cut",
    );
    expect(
        arrears(),
        "service_cut",
        None,
        R::MissingField,
        "service_cut",
    );
}

// ---- council_report ---------------------------------------------------------------------------

#[test]
fn reporter_role_is_in_its_value_set() {
    expect(
        council(),
        "reporter_role",
        Some(json!("mayor")),
        R::UnknownValue,
        "reporter_role",
    );
    expect(
        council(),
        "reporter_role",
        None,
        R::MissingField,
        "reporter_role",
    );
}

#[test]
fn concerns_is_a_non_empty_unique_array_of_known_values() {
    expect(
        council(),
        "concerns",
        Some(json!([])),
        R::EmptyArray,
        "concerns",
    );
    expect(
        council(),
        "concerns",
        Some(json!(["food", "debt", "food"])),
        R::DuplicateValue,
        "concerns[2]",
    );
    expect(
        council(),
        "concerns",
        Some(json!(["food", "loneliness"])),
        R::UnknownValue,
        "concerns[1]",
    );
    expect(
        council(),
        "concerns",
        Some(json!(["food", 3])),
        R::WrongType,
        "concerns[1]",
    );
    expect(
        council(),
        "concerns",
        Some(json!("food")),
        R::WrongType,
        "concerns",
    );
    expect(council(), "concerns", None, R::MissingField, "concerns");
    let mut v = council();
    v["concerns"] = json!([
        "isolation",
        "food",
        "housing",
        "health",
        "mental_health",
        "addiction",
        "debt",
        "child_care",
        "elder_care",
        "disability_care",
        "suicide_risk",
        "unemployment"
    ]);
    validate(&v).unwrap();
}

#[test]
fn urgency_is_an_integer_1_to_3() {
    expect(
        council(),
        "urgency",
        Some(json!(0)),
        R::OutOfRange,
        "urgency",
    );
    expect(
        council(),
        "urgency",
        Some(json!(4)),
        R::OutOfRange,
        "urgency",
    );
    expect(
        council(),
        "urgency",
        Some(json!("3")),
        R::WrongType,
        "urgency",
    );
    expect(council(), "urgency", None, R::MissingField, "urgency");
}

#[test]
fn note_is_optional_and_at_most_500_chars() {
    let mut v = council();
    v.as_object_mut().unwrap().remove("note");
    validate(&v).unwrap();
    let mut v = council();
    v["note"] = json!("가".repeat(NOTE_MAX_CHARS));
    validate(&v).unwrap();
    expect(
        council(),
        "note",
        Some(json!("가".repeat(NOTE_MAX_CHARS + 1))),
        R::InvalidLength,
        "note",
    );
    expect(council(), "note", Some(json!(42)), R::WrongType, "note");
}

// ---- service_gap ------------------------------------------------------------------------------

#[test]
fn program_and_gap_are_in_their_value_sets() {
    expect(
        gap(),
        "program",
        Some(json!("lottery")),
        R::UnknownValue,
        "program",
    );
    expect(gap(), "program", None, R::MissingField, "program");
    expect(
        gap(),
        "gap",
        Some(json!("forgotten")),
        R::UnknownValue,
        "gap",
    );
    expect(gap(), "gap", None, R::MissingField, "gap");
}

// ---- the resident registration number guard ------------------------------------------------

#[test]
fn a_resident_registration_number_anywhere_rejects_the_record() {
    // In a known field, an unknown field, an array, a nested object, and without the hyphen.
    expect(
        council(),
        "note",
        Some(json!("주민번호 900101-1234567")),
        R::PersonalIdentifier,
        "note",
    );
    expect(
        arrears(),
        "memo",
        Some(json!("9001012234567")),
        R::PersonalIdentifier,
        "memo",
    );
    expect(
        arrears(),
        "extra",
        Some(json!(["a", "850505-2345678"])),
        R::PersonalIdentifier,
        "extra[1]",
    );
    expect(
        arrears(),
        "extra",
        Some(json!({"who": "850505-2345678"})),
        R::PersonalIdentifier,
        "extra.who",
    );
    expect(
        arrears(),
        "household_id",
        Some(json!("x9001011234567")),
        R::PersonalIdentifier,
        "household_id",
    );
    // The guard runs before any other rule, so the sender always hears about the leak.
    let mut v = council();
    v.as_object_mut().unwrap().remove("event_id");
    expect(
        v,
        "note",
        Some(json!("850505-2345678")),
        R::PersonalIdentifier,
        "note",
    );
}

#[test]
fn look_alikes_that_are_not_identifiers_pass() {
    let mut v = council();
    v["note"] = json!("전화 010-1234-5678, 계좌 110-123-456789, 20자리 12345678901234567890");
    validate(&v).unwrap();
    v["note"] = json!("900101-9234567"); // 7th digit 9 is not a sex/century digit
    validate(&v).unwrap();
}

// ---- framing ----------------------------------------------------------------------------------

#[test]
fn malformed_input_is_a_rejection_not_a_panic() {
    let reg = Registry::embedded();
    let v = Validator::new(&reg, day());
    let cases: [(&[u8], R); 5] = [
        (b"{\"event_id\": ", R::MalformedJson),
        (b"", R::MalformedJson),
        (b"[1,2,3]", R::NotAnObject),
        (b"\"just a string\"", R::NotAnObject),
        (b"{\"a\":\"\xff\xfe\"}", R::InvalidEncoding),
    ];
    for (bytes, reason) in cases {
        let err = v.signal(bytes).unwrap_err();
        assert_eq!(err.reason, reason, "{err}");
        assert_eq!(err.field, "$");
    }
}

// ---- case outcomes (SPEC §3) ------------------------------------------------------------------

#[test]
fn outcome_fields_follow_their_rules() {
    for f in [
        "referral_id",
        "household_id",
        "district_code",
        "outcome",
        "decided_on",
    ] {
        expect(outcome(), f, None, R::MissingField, f);
    }
    expect(
        outcome(),
        "outcome",
        Some(json!("helped")),
        R::UnknownValue,
        "outcome",
    );
    expect(
        outcome(),
        "decided_on",
        Some(json!("2026-11-05")),
        R::FutureDate,
        "decided_on",
    );
    expect(
        outcome(),
        "decided_on",
        Some(json!("2026-02-29")),
        R::InvalidDate,
        "decided_on",
    );
    expect(
        outcome(),
        "district_code",
        Some(json!("99999")),
        R::UnknownDistrict,
        "district_code",
    );
    expect(
        outcome(),
        "household_id",
        Some(json!("tiny")),
        R::InvalidFormat,
        "household_id",
    );
    expect(
        outcome(),
        "referral_id",
        Some(json!("")),
        R::InvalidLength,
        "referral_id",
    );
    expect(
        outcome(),
        "referral_id",
        Some(json!("r".repeat(65))),
        R::InvalidLength,
        "referral_id",
    );
    for o in [
        "supported",
        "declined_support",
        "no_crisis",
        "unreachable",
        "moved",
    ] {
        let mut v = outcome();
        v["outcome"] = json!(o);
        validate_outcome(&v).unwrap();
    }
}

#[test]
fn mixed_streams_tell_signals_from_outcomes() {
    let reg = Registry::embedded();
    let v = Validator::new(&reg, day());
    let s = serde_json::to_vec(&arrears()).unwrap();
    let o = serde_json::to_vec(&outcome()).unwrap();
    assert!(matches!(v.record(&s).unwrap(), Record::Signal(_)));
    assert!(matches!(v.record(&o).unwrap(), Record::Outcome(_)));
}

// ---- households reference (SPEC §2) ----------------------------------------------------------

fn household_row(
    overrides: &[(&str, &str)],
) -> Result<lantern_contract::contract::Household, Rejection> {
    let reg = Registry::embedded();
    let v = Validator::new(&reg, day());
    let mut row: std::collections::HashMap<&str, &str> = [
        ("household_id", "hh_abcdefgh"),
        ("district_code", "11110"),
        ("dong_code", "1111051500"),
        ("members", "1"),
        ("head_age_band", "65+"),
        ("household_type", "elderly_single"),
        ("disability", "false"),
    ]
    .into_iter()
    .collect();
    for (k, val) in overrides {
        row.insert(k, val);
    }
    v.household(|k| row.get(k).copied())
}

#[test]
fn household_rows_follow_their_rules() {
    let h = household_row(&[]).unwrap();
    assert_eq!(h.members, 1);
    assert!(household_row(&[("dong_code", "")])
        .unwrap()
        .dong_code
        .is_none());
    let cases: &[(&str, &str, R)] = &[
        ("members", "0", R::OutOfRange),
        ("members", "21", R::OutOfRange),
        ("members", "two", R::WrongType),
        ("members", "", R::MissingField),
        ("head_age_band", "65-", R::UnknownValue),
        ("household_type", "commune", R::UnknownValue),
        ("disability", "yes", R::WrongType),
        ("district_code", "99999", R::UnknownDistrict),
        ("dong_code", "2611051500", R::DongDistrictMismatch),
        ("household_id", "900101-1234567", R::PersonalIdentifier),
    ];
    for &(field, value, reason) in cases {
        let err = household_row(&[(field, value)]).unwrap_err();
        assert_eq!(err.reason, reason, "{field}={value}: {err}");
        assert_eq!(err.field, field, "{field}={value}: {err}");
    }
    for band in ["0-19", "20-39", "40-64", "65+"] {
        household_row(&[("head_age_band", band)]).unwrap();
    }
}

/// Issue 15.1: a past referral list from another system is accepted with its own ids and model
/// names and without ranks, scores or reasons, and validated like every input: the RRN guard,
/// the household and district rules, a probability for a score.
#[test]
fn imported_referrals_take_any_system_s_ids_and_keep_every_input_rule() {
    let reg = Registry::embedded();
    let v = Validator::new(&reg, day());
    let legacy = json!({"referral_id": "SSIS-2025-000123", "as_of": "2025-09-01",
        "district_code": "11110", "household_id": "hh_abcdefgh"});
    let r = v.referral(legacy.to_string().as_bytes()).unwrap();
    assert_eq!(
        (r.rank, r.model.as_str(), r.reasons.len()),
        (1, "imported", 0)
    );
    let rejected = |o: Value| v.referral(o.to_string().as_bytes()).unwrap_err();
    let mut bad = legacy.clone();
    bad["household_id"] = json!("900101-1234567");
    assert_eq!(rejected(bad).reason, R::PersonalIdentifier);
    let mut bad = legacy.clone();
    bad["district_code"] = json!("99999");
    assert_eq!(rejected(bad).reason, R::UnknownDistrict);
    let mut bad = legacy.clone();
    bad["score"] = json!(1.5);
    let e = rejected(bad);
    assert_eq!((e.reason, e.field.as_str()), (R::OutOfRange, "score"));
    let mut bad = legacy.clone();
    bad["referral_id"] = json!("");
    assert_eq!(rejected(bad).reason, R::InvalidLength);
}
