//! The case-intake queue: referrals out to districts (`case-intake`, JSON, key = district code,
//! SPEC §4), and reading them back as a district's intake system would.
//!
//! **No duplicates on a re-run.** A night's referral ids are deterministic, and every id whose
//! delivery the broker acknowledged is recorded in `published.ndjson` beside the night's
//! referral files. Publishing the same night again sends only the ids not recorded there. The
//! producer is idempotent, so librdkafka's own retries do not duplicate either. (A crash after
//! the broker acknowledged but before the ledger was written can still repeat a message on
//! the next run; consumers should treat `referral_id` as the key, as the contract makes it.)
//!
//! **Withdrawals.** When an issued night is corrected (`lantern screen --publish --supersede`),
//! each replaced referral is withdrawn with a message on the same topic and key:
//! `{"withdrawn": true, "referral_id", "as_of", "district_code", "household_id",
//! "replaced_by_model", "withdrawn_at"}`, with the Kafka header `lantern-message: withdrawal`.
//! It has no `rank` or `score`, so a reader that parses only SPEC §4 referrals skips it as
//! foreign; [`read_all`] applies it, so a district sees one live list per night.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

use crate::contract::Referral;
use crate::lake::reference::referrals_dir;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("kafka: {0}; check kafka.brokers and that topic `{1}` exists")]
    Kafka(rdkafka::error::KafkaError, String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{failed} referrals were not acknowledged by the broker (first error: {first}); run the same `lantern screen --publish` again to send the rest")]
    Undelivered { failed: usize, first: String },
}

/// What a publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    pub sent: usize,
    /// Already published by an earlier run of the same night.
    pub skipped: usize,
}

/// `<referrals dir>/published.ndjson`.
pub fn ledger_path(data_dir: &Path, as_of: chrono::NaiveDate) -> PathBuf {
    referrals_dir(data_dir, as_of).join("published.ndjson")
}

fn read_ledger(path: &Path) -> HashSet<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(|l| l.trim().trim_matches('"').to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A referral taken back by a correction of its night (Lantern's extension of SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Withdrawal {
    pub withdrawn: bool,
    pub referral_id: String,
    pub as_of: chrono::NaiveDate,
    pub district_code: String,
    pub household_id: String,
    /// The model of the list that replaced it.
    pub replaced_by_model: String,
    pub withdrawn_at: String,
}

/// The ledger line of an acknowledged withdrawal (a referral id never starts with `-`).
fn withdrawal_mark(id: &str) -> String {
    format!("-{id}")
}

/// Appends acknowledged ids (or withdrawal marks) to a night's ledger, durably.
fn append_ledger(ledger: &Path, lines: &[String]) -> Result<(), IntakeError> {
    let io = |source| IntakeError::Io {
        path: ledger.display().to_string(),
        source,
    };
    if let Some(dir) = ledger.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ledger)
        .map_err(io)?;
    for id in lines {
        writeln!(file, "{id}").map_err(io)?;
    }
    file.sync_all().map_err(io)
}

/// Sends a withdrawal for each referral of `withdrawn` not yet withdrawn on the topic, and
/// records the acknowledged ones in the night's ledger.
pub async fn publish_withdrawals(
    producer: &FutureProducer,
    topic: &str,
    data_dir: &Path,
    withdrawn: &[Referral],
    replaced_by_model: &str,
) -> Result<PublishReport, IntakeError> {
    let mut report = PublishReport::default();
    let Some(first) = withdrawn.first() else {
        return Ok(report);
    };
    let ledger = ledger_path(data_dir, first.as_of);
    let done = read_ledger(&ledger);
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut pending = Vec::new();
    for r in withdrawn {
        let mark = withdrawal_mark(&r.referral_id);
        if done.contains(&mark) {
            report.skipped += 1;
            continue;
        }
        let w = Withdrawal {
            withdrawn: true,
            referral_id: r.referral_id.clone(),
            as_of: r.as_of,
            district_code: r.district_code.clone(),
            household_id: r.household_id.clone(),
            replaced_by_model: replaced_by_model.to_string(),
            withdrawn_at: at.clone(),
        };
        let payload = serde_json::to_string(&w).expect("withdrawals serialize");
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "lantern-message",
            value: Some("withdrawal"),
        });
        let record = FutureRecord::to(topic)
            .key(&r.district_code)
            .payload(&payload)
            .headers(headers);
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| IntakeError::Kafka(e, topic.to_string()))?;
        pending.push((mark, delivery));
    }
    settle(pending, &ledger, report).await
}

type Pending = Vec<(String, rdkafka::producer::DeliveryFuture)>;

/// Waits for every delivery, records the acknowledged keys in the ledger, and fails naming the
/// first undelivered one (a re-run sends what is missing).
async fn settle(
    pending: Pending,
    ledger: &Path,
    mut report: PublishReport,
) -> Result<PublishReport, IntakeError> {
    let (acknowledged, failed) = await_deliveries(pending).await;
    append_ledger(ledger, &acknowledged)?;
    report.sent = acknowledged.len();
    if let Some(first) = failed.first() {
        return Err(IntakeError::Undelivered {
            failed: failed.len(),
            first: first.clone(),
        });
    }
    Ok(report)
}

/// Waits for every delivery: the acknowledged keys, and the errors of the others.
async fn await_deliveries(pending: Pending) -> (Vec<String>, Vec<String>) {
    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    for (id, delivery) in pending {
        match delivery.await {
            Ok(Ok(_)) => acknowledged.push(id),
            Ok(Err((e, _))) => failed.push(e.to_string()),
            Err(_) => failed.push("delivery cancelled".into()),
        }
    }
    (acknowledged, failed)
}

/// Sends each referral not yet published for its night, keyed by district, and records the
/// acknowledged ids.
pub async fn publish(
    producer: &FutureProducer,
    topic: &str,
    data_dir: &Path,
    referrals: &[Referral],
) -> Result<PublishReport, IntakeError> {
    let mut report = PublishReport::default();
    let Some(first) = referrals.first() else {
        return Ok(report);
    };
    let ledger = ledger_path(data_dir, first.as_of);
    let done = read_ledger(&ledger);
    let mut pending = Vec::new();
    for r in referrals {
        if done.contains(&r.referral_id) {
            report.skipped += 1;
            continue;
        }
        let payload = serde_json::to_string(r).expect("referrals serialize");
        let record = FutureRecord::to(topic)
            .key(&r.district_code)
            .payload(&payload);
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| IntakeError::Kafka(e, topic.to_string()))?;
        pending.push((r.referral_id.clone(), delivery));
    }
    settle(pending, &ledger, report).await
}

/// Reads the live referrals on the intake topic, as a district's system would: every referral
/// from the beginning to the current end, less those withdrawn since; `district` keeps only
/// that district's. Messages that are neither are counted, not returned.
pub fn read_all(
    consumer: &BaseConsumer,
    topic: &str,
    district: Option<&str>,
) -> Result<(Vec<Referral>, usize), IntakeError> {
    let read = read_intake(consumer, topic, district)?;
    Ok((read.live(), read.other))
}

/// Everything on the intake topic, in order.
#[derive(Debug, Default)]
pub struct IntakeRead {
    pub referrals: Vec<Referral>,
    pub withdrawals: Vec<Withdrawal>,
    /// Messages that are neither.
    pub other: usize,
}

impl IntakeRead {
    /// The referrals not withdrawn, each once (a re-sent referral keeps its first place).
    pub fn live(&self) -> Vec<Referral> {
        let gone: HashSet<&str> = self
            .withdrawals
            .iter()
            .map(|w| w.referral_id.as_str())
            .collect();
        let mut seen = HashSet::new();
        self.referrals
            .iter()
            .filter(|r| !gone.contains(r.referral_id.as_str()) && seen.insert(&r.referral_id))
            .cloned()
            .collect()
    }
}

/// Reads the intake topic from the beginning to its current end.
pub fn read_intake(
    consumer: &BaseConsumer,
    topic: &str,
    district: Option<&str>,
) -> Result<IntakeRead, IntakeError> {
    let mut out = IntakeRead::default();
    crate::kafka::read_to_end(consumer, topic, |m| {
        let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
        if district.is_some_and(|d| key.as_deref() != Some(d)) {
            return;
        }
        let payload = m.payload().unwrap_or_default();
        if let Ok(r) = serde_json::from_slice::<Referral>(payload) {
            out.referrals.push(r);
        } else if let Ok(w) = serde_json::from_slice::<Withdrawal>(payload) {
            if w.withdrawn {
                out.withdrawals.push(w);
            } else {
                out.other += 1;
            }
        } else {
            out.other += 1;
        }
    })
    .map_err(|e| IntakeError::Kafka(e, topic.to_string()))?;
    Ok(out)
}
