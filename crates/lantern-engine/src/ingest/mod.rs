//! Ingest: signals and outcomes from Kafka or NDJSON files into the lake.
//!
//! ```text
//!  source (Kafka topic / NDJSON file)
//!    └─► decode + personal-identifier guard ─► pseudonymize ─► validate ─► LakeWriter
//!            │ rejected                                          │ (dedup by key)
//!            └──────────────► dead-letter sink ◄─────────────────┘
//! ```
//!
//! Both sources drive the same [`Ingestor`], so a backfill file and a live topic obey the same
//! rules. A source calls [`Ingestor::flush`] before it acknowledges anything (commits Kafka
//! offsets): the flush makes the lake files and the dead letters durable first. Delivery is
//! therefore at least once, and the lake's key check makes the effect exactly once.

pub mod deadletter;
pub mod file;
pub mod kafka;
pub mod reference;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::clock::IngestDay;
use crate::contract::{decode, rrn, Record, RejectReason, Rejection, SignalKind, Validator, Vocab};
use crate::lake::{FlushReport, LakeError, LakeRecord, LakeWriter};
use crate::pseudonym::Pseudonymizer;

pub use deadletter::{DeadLetter, DeadLetterSink, FileDeadLetters};

/// Why ingestion stopped. Rejected records are not errors: they go to the dead-letter sink.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("dead-letter sink: {0}")]
    DeadLetter(String),
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("{path} is cut off after line {after_line}: {cause}. The {after_line} lines before the cut were checked and kept (loaded, or dead-lettered with their reason); nothing after it could be read. Ask the sender for the complete file and ingest it again: the lines already loaded count once")]
    Truncated {
        path: String,
        after_line: u64,
        cause: String,
    },
}

impl IngestError {
    /// A read error from the middle of a file: a truncated gzip stream gets its own error,
    /// saying what happened and what was kept.
    pub(crate) fn reading(path: &std::path::Path, after_line: u64, source: std::io::Error) -> Self {
        let gz = path.extension().is_some_and(|e| e == "gz");
        let cause = match source.kind() {
            std::io::ErrorKind::UnexpectedEof if gz => {
                Some("the gzip stream ends before its end marker (an interrupted transfer or a full disk)".to_string())
            }
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData if gz => {
                Some(format!("the gzip data is damaged ({source})"))
            }
            _ => None,
        };
        match cause {
            Some(cause) => IngestError::Truncated {
                path: path.display().to_string(),
                after_line,
                cause,
            },
            None => IngestError::Read {
                path: format!("{} after line {after_line}", path.display()),
                source,
            },
        }
    }
}

/// Where a record came from, kept with its dead letter so the sender can find it. It is also
/// the dead letter's stable key ([`Origin::key`]): a record delivered again after a crash is
/// rejected again under the same key, so a reader counts it once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Origin {
    File {
        file: String,
        line: u64,
    },
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

impl Origin {
    /// `topic/partition/offset` or `file:line`: the dead letter's key on the dead-letter topic.
    pub fn key(&self) -> String {
        match self {
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => format!("{topic}/{partition}/{offset}"),
            Origin::File { file, line } => format!("{file}:{line}"),
        }
    }
}

/// What a source expects a record to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A signal or an outcome (a mixed NDJSON file).
    Any,
    /// A signal of this kind (its topic).
    Kind(SignalKind),
    /// A case outcome (the outcome topic).
    Outcome,
}

/// Counters for one run, logged at the end and served as metrics while running.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct IngestStats {
    /// New records written to the lake.
    pub accepted: u64,
    /// Records whose key the lake already held (re-sent or re-delivered).
    pub duplicates: u64,
    /// Rejected records, by reason code.
    pub rejected: BTreeMap<String, u64>,
    /// Values replaced by pseudonyms.
    pub pseudonymized: u64,
    /// Lake files written.
    pub files: u64,
}

impl IngestStats {
    pub fn total_rejected(&self) -> u64 {
        self.rejected.values().sum()
    }

    pub fn seen(&self) -> u64 {
        self.accepted + self.duplicates + self.total_rejected()
    }

    /// The counters as the metrics endpoint takes them.
    pub fn totals(&self) -> crate::metrics::IngestTotals<'_> {
        crate::metrics::IngestTotals {
            accepted: self.accepted,
            duplicates: self.duplicates,
            rejected: self
                .rejected
                .iter()
                .map(|(r, n)| (r.as_str(), *n))
                .collect(),
            lake_files: self.files,
        }
    }
}

/// The pure part of ingest: decode, guard, pseudonymize and validate one record. It touches no
/// shared state, so sources can run it on several threads and hand the results to
/// [`Ingestor::accept`] in order.
pub struct Checker<'r> {
    validator: Validator<'r>,
    pseudonymizer: Option<Pseudonymizer>,
    /// Where the ingest day comes from: the validator's own day unless a clock is set.
    day: IngestDay,
    /// Whether a council report's free-text `note` is kept (masked) or dropped at the door.
    keep_notes: bool,
}

/// One record after [`Checker::check`]: ready for the lake, or rejected with the payload to keep.
#[derive(Debug)]
pub enum Checked {
    Accepted {
        record: LakeRecord,
        pseudonymized: usize,
    },
    Rejected {
        rejection: Rejection,
        /// The payload as the dead-letter sink may keep it: identifiers masked, configured
        /// fields pseudonymized.
        payload: String,
        pseudonymized: usize,
    },
}

impl<'r> Checker<'r> {
    pub fn new(validator: Validator<'r>, pseudonymizer: Option<Pseudonymizer>) -> Checker<'r> {
        let day = IngestDay::Fixed(validator.ingest_day());
        Checker {
            validator,
            pseudonymizer,
            day,
            keep_notes: false,
        }
    }

    /// What becomes of a council report's `note` before anything is written: dropped unless
    /// `keep` (`ingest.keep_notes`), and then with phone numbers, e-mail addresses, card and
    /// account numbers and look-alike identifiers masked.
    fn note(&self, note: Option<String>) -> Option<String> {
        note.filter(|_| self.keep_notes)
            .map(|n| crate::contract::freetext::mask_free_text(&n))
    }

    /// Checks one record as of the ingest day now.
    pub fn check(&self, payload: &[u8], expect: Expect) -> Checked {
        self.check_on(payload, expect, self.day.today())
    }

    /// Checks one record as if it arrived on `day`.
    fn check_on(&self, payload: &[u8], expect: Expect, day: NaiveDate) -> Checked {
        let validator = self.validator.on_day(day);
        let validator = &validator;
        // The common case first: a plainly valid signal, without building a JSON tree.
        if expect != Expect::Outcome {
            let avoid = self
                .pseudonymizer
                .as_ref()
                .map(|p| p.fields())
                .unwrap_or(&[]);
            if let Some(signal) = validator.fast_signal(payload, avoid) {
                // On the wrong topic the full path below gives the precise rejection.
                if !matches!(expect, Expect::Kind(k) if k != signal.kind()) {
                    return Checked::Accepted {
                        record: self.to_lake(Record::Signal(signal), day),
                        pseudonymized: 0,
                    };
                }
            }
        }
        let mut obj = match decode(payload) {
            Ok(obj) => obj,
            Err(rejection) => {
                let text = rrn::mask_rrn_bytes(payload);
                let text = match &self.pseudonymizer {
                    Some(p) => p.apply_to_text(&text),
                    None => text,
                };
                return Checked::Rejected {
                    rejection,
                    payload: text,
                    pseudonymized: 0,
                };
            }
        };
        let pseudonymized = match &self.pseudonymizer {
            Some(p) => p.apply(&mut obj),
            None => 0,
        };
        let result = match expect {
            Expect::Any => validator.record_object(&obj),
            Expect::Outcome => validator.outcome_object(&obj).map(Record::Outcome),
            Expect::Kind(kind) => self
                .validator
                .signal_object(&obj)
                .and_then(|s| {
                    if s.kind() == kind {
                        Ok(s)
                    } else {
                        Err(Rejection::new(
                            RejectReason::KindMismatch,
                            "kind",
                            format!(
                                "`{}` arrived on the topic for `{}`",
                                s.kind().as_str(),
                                kind.as_str()
                            ),
                        ))
                    }
                })
                .map(Record::Signal),
        };
        let record = match result {
            Ok(r) => r,
            Err(rejection) => {
                // The decoded object is already pseudonymized, and decoding refused any
                // resident registration number; the note follows the same policy as for a
                // record that passes.
                let mut obj = obj;
                let note = match obj.remove("note") {
                    Some(serde_json::Value::String(n)) => self.note(Some(n)),
                    _ => None,
                };
                if let Some(n) = note {
                    obj.insert("note".into(), serde_json::Value::String(n));
                }
                return Checked::Rejected {
                    rejection,
                    payload: serde_json::to_string(&obj).unwrap_or_default(),
                    pseudonymized,
                };
            }
        };
        Checked::Accepted {
            record: self.to_lake(record, day),
            pseudonymized,
        }
    }

    /// Checks many records on every available core, returning the results in input order, so
    /// what follows (deduplication, dead letters) does not depend on the number of cores.
    pub fn check_all(&self, records: &[(&[u8], Expect)]) -> Vec<Checked> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        // One day for the whole chunk: records that arrived together are judged together.
        let day = self.day.today();
        let check = |part: &[(&[u8], Expect)]| -> Vec<Checked> {
            part.iter()
                .map(|&(p, e)| self.check_on(p, e, day))
                .collect()
        };
        if threads == 1 || records.len() < 2_048 {
            return check(records);
        }
        let size = records.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = records
                .chunks(size)
                .map(|part| scope.spawn(move || check(part)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("checking a record never panics"))
                .collect()
        })
    }

    /// What ingest adds to a valid record: the knowledge date (`reported_on`, or the ingest
    /// day) and the ingest time.
    fn to_lake(&self, record: Record, day: NaiveDate) -> LakeRecord {
        let now = self.day.now().timestamp_millis();
        match record {
            Record::Signal(mut signal) => {
                if let crate::contract::SignalBody::CouncilReport(c) = &mut signal.body {
                    c.note = self.note(c.note.take());
                }
                LakeRecord::Signal {
                    known_on: signal.reported_on.unwrap_or(day),
                    signal,
                    ingested_at_ms: now,
                }
            }
            Record::Outcome(outcome) => LakeRecord::Outcome {
                outcome,
                ingested_at_ms: now,
            },
        }
    }
}

/// The referral ids case outcomes may answer (SPEC §3), from the referral lists of the data
/// directory: issued lists and the referrals corrections withdrew (an outcome for a withdrawn
/// referral is still a real visit). Linking starts once the first list exists (issued or
/// imported); before that there is nothing to link to and outcomes are taken as they come.
///
/// The index is built once and rebuilt only when the referral folder changed: every writer of
/// a list stamps `referrals/.changed` with a fresh value (see
/// [`crate::lake::reference::touch_referrals_root`]), and the folder's modification time
/// catches one that did not. An unknown id costs a stat and a tiny read, not a listing.
struct ReferralIndex {
    data_dir: std::path::PathBuf,
    /// How often the referral folder was listed (the index is rebuilt only when it changed).
    listings: u64,
    /// The folder's signature when last read: modification time and `.changed` stamp.
    seen: Option<(Option<std::time::SystemTime>, Vec<u8>)>,
    nights: usize,
    ids: std::collections::HashSet<String>,
}

impl ReferralIndex {
    fn refresh(&mut self) -> Result<(), IngestError> {
        let root = crate::lake::reference::referrals_root(&self.data_dir);
        let signature = (
            std::fs::metadata(&root).and_then(|m| m.modified()).ok(),
            std::fs::read(root.join(".changed")).unwrap_or_default(),
        );
        if signature.0.is_some() && self.seen.as_ref() == Some(&signature) {
            return Ok(());
        }
        self.seen = Some(signature);
        self.listings += 1;
        let nights = crate::lake::reference::referral_nights(&self.data_dir)?;
        self.nights = nights.len();
        for night in nights {
            for r in crate::lake::reference::read_referrals(&self.data_dir, night)? {
                self.ids.insert(r.referral_id);
            }
            for r in crate::lake::reference::read_withdrawn(&self.data_dir, night)? {
                self.ids.insert(r.referral_id);
            }
        }
        Ok(())
    }

    /// `None` while no referral list exists; otherwise whether `id` is known.
    fn knows(&mut self, id: &str) -> Result<Option<bool>, IngestError> {
        if self.ids.contains(id) {
            return Ok(Some(true));
        }
        self.refresh()?;
        if self.nights == 0 {
            return Ok(None);
        }
        Ok(Some(self.ids.contains(id)))
    }
}

/// The shared middle of every ingest path.
pub struct Ingestor<'r> {
    checker: std::sync::Arc<Checker<'r>>,
    writer: LakeWriter,
    dead: Box<dyn DeadLetterSink + 'r>,
    stats: IngestStats,
    referrals: ReferralIndex,
}

impl<'r> Ingestor<'r> {
    pub fn new(
        validator: Validator<'r>,
        pseudonymizer: Option<Pseudonymizer>,
        writer: LakeWriter,
        dead: Box<dyn DeadLetterSink + 'r>,
    ) -> Ingestor<'r> {
        let data_dir = writer.lake().data_dir().to_path_buf();
        Ingestor {
            checker: std::sync::Arc::new(Checker::new(validator, pseudonymizer)),
            writer,
            dead,
            stats: IngestStats::default(),
            referrals: ReferralIndex {
                data_dir,
                listings: 0,
                seen: None,
                nights: 0,
                ids: Default::default(),
            },
        }
    }

    pub fn stats(&self) -> &IngestStats {
        &self.stats
    }

    /// The ingest day now.
    pub fn ingest_day(&self) -> NaiveDate {
        self.checker.day.today()
    }

    /// Keeps council reports' notes (masked) instead of dropping them at the door
    /// (`ingest.keep_notes`).
    pub fn with_notes_kept(mut self, keep: bool) -> Self {
        match std::sync::Arc::get_mut(&mut self.checker) {
            Some(c) => c.keep_notes = keep,
            None => {
                let c = Checker {
                    validator: self.checker.validator.clone(),
                    pseudonymizer: self.checker.pseudonymizer.clone(),
                    day: self.checker.day.clone(),
                    keep_notes: keep,
                };
                self.checker = std::sync::Arc::new(c);
            }
        }
        self
    }

    /// Takes the ingest day from `day` (a clock in the agencies' time zone) instead of the
    /// validator's fixed day: what a daemon that runs past midnight needs.
    pub fn with_ingest_day(mut self, day: IngestDay) -> Self {
        match std::sync::Arc::get_mut(&mut self.checker) {
            Some(c) => c.day = day,
            None => {
                let c = Checker {
                    validator: self.checker.validator.clone(),
                    pseudonymizer: self.checker.pseudonymizer.clone(),
                    day,
                    keep_notes: self.checker.keep_notes,
                };
                self.checker = std::sync::Arc::new(c);
            }
        }
        self
    }

    /// The checker, shareable with threads that check records while this ingestor writes.
    pub fn checker(&self) -> std::sync::Arc<Checker<'r>> {
        self.checker.clone()
    }

    /// Forgets the lake writer's cached keys (see [`LakeWriter::forget_cached_keys`]): when
    /// partitions move between processes sharing a lake.
    pub fn forget_cached_keys(&mut self) {
        self.writer.forget_cached_keys();
    }

    /// Records buffered since the last flush.
    pub fn buffered(&self) -> usize {
        self.writer.pending()
    }

    /// Validates one record and buffers it for the lake, or sends it to the dead-letter sink.
    /// Only a failure to write (lake or sink) is an error. `origin` is called only for a
    /// rejected record, so the common path allocates nothing for it.
    pub fn process(
        &mut self,
        payload: &[u8],
        origin: impl FnOnce() -> Origin,
        expect: Expect,
    ) -> Result<(), IngestError> {
        let checked = self.checker.check(payload, expect);
        self.accept(checked, origin)
    }

    /// Takes a record checked by [`Checker::check`]: buffers it for the lake (or counts it as a
    /// duplicate), or sends it to the dead-letter sink.
    pub fn accept(
        &mut self,
        checked: Checked,
        origin: impl FnOnce() -> Origin,
    ) -> Result<(), IngestError> {
        match checked {
            Checked::Accepted {
                record,
                pseudonymized,
            } => {
                self.stats.pseudonymized += pseudonymized as u64;
                if let LakeRecord::Outcome { outcome, .. } = &record {
                    // Only an outcome that claims to answer a Lantern referral must find it;
                    // another system's ids (a legacy outcome feed) are labels of their own,
                    // with an estimated referral date (labels.sql).
                    let claims_lantern =
                        crate::contract::is_lantern_referral_id(&outcome.referral_id);
                    if claims_lantern && self.referrals.knows(&outcome.referral_id)? == Some(false)
                    {
                        let payload = serde_json::to_string(outcome).unwrap_or_default();
                        let rejection = crate::contract::Rejection::new(
                            crate::contract::RejectReason::UnknownReferral,
                            "referral_id",
                            format!(
                                "no referral list holds `{}`; an outcome must answer a referral \
                                 Lantern made or imported (lantern import --referrals)",
                                outcome.referral_id
                            ),
                        );
                        return self.reject(rejection, origin, payload);
                    }
                }
                if self.writer.add(record)? {
                    self.stats.accepted += 1;
                } else {
                    self.stats.duplicates += 1;
                }
                Ok(())
            }
            Checked::Rejected {
                rejection,
                payload,
                pseudonymized,
            } => {
                self.stats.pseudonymized += pseudonymized as u64;
                self.reject(rejection, origin, payload)
            }
        }
    }

    fn reject(
        &mut self,
        rejection: Rejection,
        origin: impl FnOnce() -> Origin,
        payload: String,
    ) -> Result<(), IngestError> {
        let origin = origin();
        tracing::debug!(?origin, %rejection, "rejected");
        *self
            .stats
            .rejected
            .entry(rejection.reason.code().to_string())
            .or_default() += 1;
        self.dead.send(&DeadLetter::new(rejection, origin, payload))
    }

    /// Makes everything processed so far durable: lake files first, then dead letters. Only
    /// after this returns may a source acknowledge its input.
    pub fn flush(&mut self) -> Result<FlushReport, IngestError> {
        let report = self.writer.flush()?;
        self.stats.files += report.files as u64;
        // Records of partitions whose keys were not cached are checked against the lake's files
        // at the flush: those found there were counted as accepted when added.
        self.stats.accepted -= report.duplicates;
        self.stats.duplicates += report.duplicates;
        self.dead.flush()?;
        Ok(report)
    }

    /// Logs the run's counters.
    pub fn log_summary(&self, what: &str) {
        let s = &self.stats;
        tracing::info!(
            source = what,
            accepted = s.accepted,
            duplicates = s.duplicates,
            rejected = s.total_rejected(),
            pseudonymized = s.pseudonymized,
            lake_files = s.files,
            "ingest finished"
        );
        for (reason, n) in &s.rejected {
            tracing::info!(reason = reason.as_str(), count = n, "rejected records");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{referral_id, Referral};

    fn referral(h: &str, as_of: NaiveDate) -> Referral {
        Referral {
            referral_id: referral_id(h, as_of, "rule@1"),
            as_of,
            district_code: "11110".into(),
            dong_code: None,
            household_id: h.into(),
            rank: 1,
            score: 0.5,
            model: "rule@1".into(),
            reasons: vec![],
            placement: None,
            overrode: None,
            selection_probability: None,
        }
    }

    /// Known defect (unknown-referral check): the referral folder is listed once, not again
    /// for every unknown id; a night added, or a night an import rewrote in place, is still
    /// picked up.
    #[test]
    fn the_referral_index_is_read_once_and_again_only_when_the_lists_change() {
        let dir = tempfile::tempdir().unwrap();
        let night = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let mut index = ReferralIndex {
            data_dir: dir.path().to_path_buf(),
            listings: 0,
            seen: None,
            nights: 0,
            ids: Default::default(),
        };
        assert_eq!(
            index.knows("ref_x").unwrap(),
            None,
            "no list yet: outcomes pass"
        );
        let a = referral("hh_aaaaaaaa", night);
        crate::lake::reference::import_referrals(dir.path(), vec![a.clone()]).unwrap();
        assert_eq!(index.knows(&a.referral_id).unwrap(), Some(true));
        let before = index.listings;
        for i in 0..50 {
            assert_eq!(
                index.knows(&format!("ref_unknown{i}")).unwrap(),
                Some(false)
            );
        }
        assert_eq!(
            index.listings, before,
            "unknown ids do not re-list the folder"
        );
        // The same night rewritten by an import: the new id is found.
        let b = referral("hh_bbbbbbbb", night);
        crate::lake::reference::import_referrals(dir.path(), vec![b.clone()]).unwrap();
        assert_eq!(index.knows(&b.referral_id).unwrap(), Some(true));
        // A new night.
        let c = referral("hh_cccccccc", night.succ_opt().unwrap());
        crate::lake::reference::import_referrals(dir.path(), vec![c.clone()]).unwrap();
        assert_eq!(index.knows(&c.referral_id).unwrap(), Some(true));
    }

    /// Issue 14.3: a record dead-lettered twice (sent again after a crash) has the same key,
    /// and the tally shows it once.
    #[test]
    fn a_dead_letter_sent_twice_is_counted_once_by_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let letter = |line: u64| {
            DeadLetter::new(
                Rejection::new(RejectReason::FutureDate, "observed_on", "too late"),
                Origin::File {
                    file: "a.ndjson".into(),
                    line,
                },
                "{}".into(),
            )
        };
        for run in 0..2 {
            let mut sink =
                FileDeadLetters::new(&dir.path().join("dead-letter"), &format!("run{run}"));
            sink.send(&letter(3)).unwrap();
            sink.send(&letter(run + 7)).unwrap();
            sink.flush().unwrap();
        }
        let tally = deadletter::Tally::from_files(dir.path()).unwrap();
        assert_eq!(tally.letters.len(), 3);
        assert_eq!(tally.repeats, 1);
        assert_eq!(tally.by_reason()["future_date"], 3);
    }
}
