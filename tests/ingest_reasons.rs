//! Every dead-letter reason, through both ingest paths: an NDJSON file and a Kafka topic. Each
//! bad record must reach the dead-letter sink with its reason, its field and its origin, and
//! the one good record must reach the lake.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

mod common;

use lantern::config::Settings;
use lantern::contract::{RejectReason, Validator};
use lantern::ingest::deadletter::MemoryDeadLetters;
use lantern::ingest::file::ingest_files;
use lantern::ingest::kafka::{consume, KafkaDeadLetters, KafkaIngestOptions};
use lantern::ingest::{Ingestor, Origin};
use lantern::lake::{Lake, LakeWriter};
use lantern::registry::Registry;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
}

fn arrears() -> Value {
    json!({"event_id":"ok-1","source":"kepco","household_id":"hh_abcdefgh","district_code":"11110",
           "observed_on":"2026-10-31","kind":"utility_arrears","utility":"water",
           "months_overdue":2,"amount_krw":40000,"service_cut":false})
}

fn council() -> Value {
    json!({"event_id":"c-1","source":"council","household_id":"hh_abcdefgh","district_code":"11110",
           "observed_on":"2026-10-20","kind":"council_report","reporter_role":"neighbor",
           "concerns":["food"],"urgency":2})
}

fn with(mut v: Value, field: &str, value: Value) -> Vec<u8> {
    v[field] = value;
    serde_json::to_vec(&v).unwrap()
}

/// One line per reason a file can carry (all but `kind_mismatch`, which needs a topic), with
/// the field the dead letter must name, followed by one valid record.
fn cases() -> Vec<(Vec<u8>, RejectReason, &'static str)> {
    use RejectReason as R;
    let mut without_id = arrears();
    without_id.as_object_mut().unwrap().remove("event_id");
    vec![
        (b"{\"a\":\"\xff\"}".to_vec(), R::InvalidEncoding, "$"),
        (b"{\"event_id\":".to_vec(), R::MalformedJson, "$"),
        (b"[1,2]".to_vec(), R::NotAnObject, "$"),
        (
            serde_json::to_vec(&without_id).unwrap(),
            R::MissingField,
            "event_id",
        ),
        (
            with(arrears(), "amount_krw", json!("lots")),
            R::WrongType,
            "amount_krw",
        ),
        (
            with(arrears(), "event_id", json!("x".repeat(65))),
            R::InvalidLength,
            "event_id",
        ),
        (
            with(arrears(), "source", json!("KEPCO")),
            R::InvalidFormat,
            "source",
        ),
        (
            with(arrears(), "district_code", json!("99999")),
            R::UnknownDistrict,
            "district_code",
        ),
        (
            with(arrears(), "dong_code", json!("2611051000")),
            R::DongDistrictMismatch,
            "dong_code",
        ),
        (
            with(arrears(), "observed_on", json!("2026-02-30")),
            R::InvalidDate,
            "observed_on",
        ),
        (
            with(arrears(), "observed_on", json!("2027-01-01")),
            R::FutureDate,
            "observed_on",
        ),
        (
            with(arrears(), "reported_on", json!("2026-10-01")),
            R::ReportedBeforeObserved,
            "reported_on",
        ),
        (
            with(arrears(), "utility", json!("cable")),
            R::UnknownValue,
            "utility",
        ),
        (
            with(arrears(), "months_overdue", json!(300)),
            R::OutOfRange,
            "months_overdue",
        ),
        (
            with(council(), "concerns", json!(["food", "food"])),
            R::DuplicateValue,
            "concerns[1]",
        ),
        (
            with(council(), "concerns", json!([])),
            R::EmptyArray,
            "concerns",
        ),
        (
            with(council(), "note", json!("주민번호 900101-1234567")),
            R::PersonalIdentifier,
            "note",
        ),
    ]
}

#[test]
fn every_reason_reaches_the_file_dead_letter_sink() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.ndjson");
    let mut text = Vec::new();
    for (line, _, _) in cases() {
        text.extend_from_slice(&line);
        text.push(b'\n');
    }
    text.extend_from_slice(&serde_json::to_vec(&arrears()).unwrap());
    std::fs::write(&path, text).unwrap();

    let registry = Registry::embedded();
    let data = tempfile::tempdir().unwrap();
    let mut dead = MemoryDeadLetters::default();
    let mut ing = Ingestor::new(
        Validator::new(&registry, day()),
        None,
        LakeWriter::new(Lake::in_data_dir(data.path())),
        Box::new(&mut dead),
    );
    ingest_files(&mut ing, &[&path], 100, &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(ing.stats().accepted, 1);
    drop(ing);

    assert_eq!(dead.letters.len(), cases().len());
    for (i, ((_, reason, field), d)) in cases().iter().zip(&dead.letters).enumerate() {
        assert_eq!(d.reason, reason.code());
        assert_eq!(d.field, *field, "{}", d.reason);
        assert_eq!(
            d.origin,
            Origin::File {
                file: path.display().to_string(),
                line: i as u64 + 1
            }
        );
        assert!(!d.payload.contains("900101-1234567"));
    }
}

#[test]
fn every_reason_reaches_the_kafka_dead_letter_topic() {
    let cluster = MockCluster::new(1).unwrap();
    let mut settings = Settings::defaults();
    settings.kafka.brokers = cluster.bootstrap_servers();
    settings.kafka.group_id = "lantern-test-reasons".into();
    for (_, t) in settings.topics.all() {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    let producer: BaseProducer = lantern::kafka::producer_config(&settings.kafka)
        .create()
        .unwrap();
    // Everything goes to the arrears topic; a valid council report there is the one reason
    // only a topic can give.
    let mut sent: Vec<(Vec<u8>, RejectReason, &str)> = cases();
    sent.push((
        serde_json::to_vec(&council()).unwrap(),
        RejectReason::KindMismatch,
        "kind",
    ));
    for (line, _, _) in &sent {
        producer
            .send(BaseRecord::<str, [u8]>::to(&settings.topics.utility_arrears).payload(line))
            .unwrap();
    }
    // An outcome on its own topic, answering no referral Lantern knows, once a referral list
    // exists (linking starts with the first list).
    let outcome = json!({"referral_id": "ref_nosuchreferralxxxxxx", "household_id": "hh_abcdefghij",
        "district_code": "11110", "outcome": "no_crisis", "decided_on": "2026-10-20"});
    producer
        .send(
            BaseRecord::<str, [u8]>::to(&settings.topics.case_outcomes)
                .payload(&serde_json::to_vec(&outcome).unwrap()),
        )
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    let registry = Registry::embedded();
    let data = tempfile::tempdir().unwrap();
    let known = lantern::contract::Referral {
        referral_id: lantern::contract::referral_id("hh_abcdefghij", day(), "rule@1"),
        as_of: day(),
        district_code: "11110".into(),
        dong_code: None,
        household_id: "hh_abcdefghij".into(),
        rank: 1,
        score: 0.5,
        model: "rule@1".into(),
        reasons: vec![],
        placement: None,
        overrode: None,
        selection_probability: None,
    };
    lantern::lake::reference::import_referrals(data.path(), vec![known]).unwrap();
    let mut ing = Ingestor::new(
        Validator::new(&registry, day()),
        None,
        LakeWriter::new(Lake::in_data_dir(data.path())),
        Box::new(KafkaDeadLetters::new(&settings).unwrap()),
    );
    let mut opts = KafkaIngestOptions::new(100);
    opts.until_idle = true;
    consume(&settings, &mut ing, &opts).unwrap();

    // Every letter, read by assigning the partitions (see `common::dead_letters`); ingest has
    // flushed them all before returning.
    let mut got: BTreeMap<i64, (String, String)> = BTreeMap::new();
    let mut outcome_letter: Option<(String, String)> = None;
    for d in common::dead_letters(&settings) {
        let Origin::Kafka { topic, offset, .. } = &d.origin else {
            panic!(
                "a dead letter from Kafka has a Kafka origin: {:?}",
                d.origin
            );
        };
        if *topic == settings.topics.case_outcomes {
            outcome_letter = Some((d.reason.clone(), d.field.clone()));
            continue;
        }
        assert_eq!(topic, &settings.topics.utility_arrears);
        got.insert(*offset, (d.reason.clone(), d.field.clone()));
    }
    assert_eq!(got.len(), sent.len());
    for (offset, (_, reason, field)) in sent.iter().enumerate() {
        let (r, f) = &got[&(offset as i64)];
        assert_eq!(
            (r.as_str(), f.as_str()),
            (reason.code(), *field),
            "offset {offset}"
        );
    }
    assert_eq!(
        outcome_letter,
        Some(("unknown_referral".to_string(), "referral_id".to_string()))
    );
    // Every reason code is covered by this test.
    let mut covered: std::collections::BTreeSet<&str> = sent.iter().map(|c| c.1.code()).collect();
    covered.insert(RejectReason::UnknownReferral.code());
    assert_eq!(covered.len(), RejectReason::ALL.len());
}
