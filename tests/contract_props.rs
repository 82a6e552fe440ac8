//! Property tests of the validator: it never panics, whatever the bytes, and every valid record
//! survives serialization and validation unchanged. Proptest's runs are seeded from the test
//! name, so failures reproduce; a found failure is kept in `proptest-regressions/`.

use chrono::{Days, NaiveDate};
use lantern::contract::{
    Concern, CouncilReport, Gap, Program, Record, ReporterRole, ServiceGap, Signal, SignalBody,
    Utility, UtilityArrears, Validator, Vocab,
};
use lantern::registry::Registry;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
}

fn codes() -> Vec<String> {
    Registry::embedded()
        .iter()
        .map(|d| d.code.clone())
        .collect()
}

/// Dates from 2000 to the ingest day plus one, the range the contract accepts.
fn date() -> impl Strategy<Value = NaiveDate> {
    let first = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let span = (day() - first).num_days() as u64 + 1;
    (0..=span).prop_map(move |d| first + Days::new(d))
}

fn body() -> impl Strategy<Value = SignalBody> {
    let arrears = (
        select(Utility::ALL),
        0u16..=240,
        0u64..=10_000_000_000,
        any::<bool>(),
    )
        .prop_map(|(utility, months_overdue, amount_krw, service_cut)| {
            SignalBody::UtilityArrears(UtilityArrears {
                utility,
                months_overdue,
                amount_krw,
                service_cut,
            })
        });
    let council = (
        select(ReporterRole::ALL),
        proptest::sample::subsequence(Concern::ALL, 1..=Concern::ALL.len()).prop_shuffle(),
        1u8..=3,
        // No digits in generated notes: a random digit run could look like an identifier.
        proptest::option::of("[a-zA-Z 가-힣.,!?\n\"\\\\]{0,500}"),
    )
        .prop_map(|(reporter_role, concerns, urgency, note)| {
            SignalBody::CouncilReport(CouncilReport {
                reporter_role,
                concerns,
                urgency,
                note,
            })
        });
    let gap = (select(Program::ALL), select(Gap::ALL))
        .prop_map(|(program, gap)| SignalBody::ServiceGap(ServiceGap { program, gap }));
    prop_oneof![arrears, council, gap]
}

fn signal() -> impl Strategy<Value = Signal> {
    (
        "[a-zA-Z가-힣:._-]{1,64}",
        "[a-z_-]{1,32}",
        "[A-Za-z_-]{8,64}",
        select(codes()),
        proptest::option::of(0u32..100_000),
        date(),
        proptest::option::of(0u64..400),
        body(),
    )
        .prop_map(
            |(event_id, source, household_id, district_code, dong, observed_on, lag, body)| {
                let reported_on =
                    lag.map(|l| (observed_on + Days::new(l)).min(day().succ_opt().unwrap()));
                Signal {
                    event_id,
                    source,
                    household_id,
                    dong_code: dong.map(|d| format!("{district_code}{d:05}")),
                    district_code,
                    observed_on,
                    reported_on,
                    body,
                }
            },
        )
}

/// Every field a signal can carry, plus an unknown one.
const FIELDS: &[&str] = &[
    "event_id",
    "source",
    "household_id",
    "district_code",
    "dong_code",
    "observed_on",
    "reported_on",
    "kind",
    "utility",
    "months_overdue",
    "amount_krw",
    "service_cut",
    "reporter_role",
    "concerns",
    "urgency",
    "note",
    "program",
    "gap",
    "extra",
];

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the decoder; they are accepted or rejected.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let reg = Registry::embedded();
        let v = Validator::new(&reg, day());
        let _ = v.record(&bytes);
        let _ = v.signal(&bytes);
        let _ = v.outcome(&bytes);
    }

    /// A valid record with any field replaced by any JSON value never panics either, and a
    /// rejection always names a field.
    #[test]
    fn any_value_in_any_field_never_panics(
        s in signal(),
        field in select(FIELDS),
        value in json_value(),
    ) {
        let reg = Registry::embedded();
        let v = Validator::new(&reg, day());
        let mut obj = serde_json::to_value(&s).unwrap();
        obj[field] = value;
        let bytes = serde_json::to_vec(&obj).unwrap();
        if let Err(r) = v.record(&bytes) {
            prop_assert!(!r.field.is_empty());
        }
    }

    /// Every valid signal serializes to JSON that validates back to the same signal.
    #[test]
    fn valid_signals_round_trip(s in signal()) {
        let reg = Registry::embedded();
        let v = Validator::new(&reg, day());
        let bytes = serde_json::to_vec(&s).unwrap();
        let back = v.signal(&bytes);
        prop_assert_eq!(back.as_ref().ok(), Some(&s), "{:?}", back.as_ref().err());
        prop_assert_eq!(v.record(&bytes).ok(), Some(Record::Signal(s)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The whole ingest path (decode, mask, pseudonymize, validate, dead-letter) never panics on
    /// arbitrary bytes, and every line is accounted for: accepted, duplicate or rejected.
    #[test]
    fn ingest_never_panics_and_accounts_for_every_line(
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20),
    ) {
        let reg = Registry::embedded();
        let data = tempfile::tempdir().unwrap();
        let mut dead = lantern::ingest::deadletter::MemoryDeadLetters::default();
        let pseudo = lantern::pseudonym::Pseudonymizer::new(
            b"fuzz-key-0123456789".to_vec(),
            vec!["household_id".into(), "customer_no".into()],
        );
        let mut ing = lantern::ingest::Ingestor::new(
            Validator::new(&reg, day()),
            Some(pseudo),
            lantern::lake::LakeWriter::new(lantern::lake::Lake::in_data_dir(data.path())),
            Box::new(&mut dead),
        );
        for (i, l) in lines.iter().enumerate() {
            ing.process(
                l,
                || lantern::ingest::Origin::File { file: "fuzz".into(), line: i as u64 + 1 },
                lantern::ingest::Expect::Any,
            ).unwrap();
        }
        ing.flush().unwrap();
        prop_assert_eq!(ing.stats().seen(), lines.len() as u64);
    }

    /// Pseudonymizing arbitrary text never panics and never leaves a configured field's string
    /// value in place.
    #[test]
    fn pseudonymizing_arbitrary_text_never_panics(text in ".{0,200}", raw in "[A-Za-z-]{1,20}") {
        let p = lantern::pseudonym::Pseudonymizer::new(
            b"fuzz-key-0123456789".to_vec(),
            vec!["customer_no".into()],
        );
        let _ = p.apply_to_text(&text);
        let framed = format!("{text}\"customer_no\": \"SECRET{raw}\"{text}");
        let out = p.apply_to_text(&framed);
        let secret = format!("SECRET{raw}");
        prop_assert!(!out.contains(&secret), "{} survived in {}", secret, out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every valid case outcome serializes to JSON that validates back to the same outcome,
    /// both on its own and through the mixed-stream entry point.
    #[test]
    fn valid_outcomes_round_trip(
        referral_id in "[a-zA-Z_-]{1,64}",
        household_id in "[A-Za-z_-]{8,64}",
        district_code in select(codes()),
        outcome in select(lantern::contract::Outcome::ALL),
        decided_on in date(),
    ) {
        let o = lantern::contract::CaseOutcome { referral_id, household_id, district_code, outcome, decided_on };
        let reg = Registry::embedded();
        let v = Validator::new(&reg, day());
        let bytes = serde_json::to_vec(&o).unwrap();
        prop_assert_eq!(v.outcome(&bytes).ok(), Some(o.clone()));
        prop_assert_eq!(v.record(&bytes).ok(), Some(Record::Outcome(o)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// The fast path accepts only what the full validator accepts, as the same signal: for
    /// valid signals and for signals with any field replaced by any JSON value.
    #[test]
    fn the_fast_path_agrees_with_the_full_validator(
        s in signal(),
        field in select(FIELDS),
        value in json_value(),
        mutate in any::<bool>(),
    ) {
        let reg = Registry::embedded();
        let v = Validator::new(&reg, day());
        let mut obj = serde_json::to_value(&s).unwrap();
        if mutate {
            obj[field] = value;
        }
        let bytes = serde_json::to_vec(&obj).unwrap();
        if let Some(fast) = v.fast_signal(&bytes, &[]) {
            prop_assert_eq!(v.signal(&bytes).ok(), Some(fast));
        }
        // A plainly valid record without escapes takes the fast path.
        if !mutate && !bytes.contains(&b'\\') {
            prop_assert!(v.fast_signal(&bytes, &[]).is_some());
        }
    }
}
