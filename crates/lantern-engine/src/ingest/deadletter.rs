//! The dead-letter sink: every rejected record, with why, where it came from, and its payload
//! with personal identifiers masked and configured source identifiers pseudonymized.
//!
//! Record format (one JSON object per line or per Kafka message):
//!
//! ```json
//! {"rejected_at":"2026-11-23T01:02:03.456Z",
//!  "origin":{"topic":"signals.council-reports","partition":2,"offset":1881},
//!  "reason":"personal_identifier","field":"note",
//!  "detail":"looks like a resident registration number; pseudonymize before sending",
//!  "payload":"{\"event_id\":\"...\",\"note\":\"주민번호 ******-*******\"}"}
//! ```
//!
//! For files, `origin` is `{"file": "...", "line": 12}`.
//!
//! **Exactly once in effect.** A record is dead-lettered before its offset is committed, so a
//! crash between the two makes the record arrive again after the restart and be dead-lettered
//! again. Each dead letter therefore carries a stable key, its origin (the Kafka message key
//! `topic/partition/offset`, or `file:line`): a repeat has the same key, and [`Tally`] (what
//! `lantern dead-letters` shows) counts each key once. The alternative, a transactional
//! producer committing offsets with the dead letters, would need the lake write inside the same
//! transaction, which a Parquet lake cannot join; the key costs nothing.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{IngestError, Origin};

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub rejected_at: String,
    pub origin: Origin,
    pub reason: String,
    pub field: String,
    pub detail: String,
    pub payload: String,
}

impl DeadLetter {
    /// A letter stamped now.
    pub fn new(
        rejection: crate::contract::Rejection,
        origin: Origin,
        payload: String,
    ) -> DeadLetter {
        DeadLetter {
            rejected_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            origin,
            reason: rejection.reason.code().to_string(),
            field: rejection.field,
            detail: rejection.detail,
            payload,
        }
    }
}

/// Dead letters counted once per key (origin): what a sender or an operator needs to see.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// The first letter of each key.
    pub letters: BTreeMap<String, DeadLetter>,
    /// Letters whose key was already seen (sent again after a crash).
    pub repeats: u64,
    /// Records in the sink that are not dead letters.
    pub unreadable: u64,
}

impl Tally {
    pub fn add(&mut self, letter: DeadLetter) {
        let key = letter.origin.key();
        if self.letters.contains_key(&key) {
            self.repeats += 1;
        } else {
            self.letters.insert(key, letter);
        }
    }

    /// Distinct rejected records by reason code.
    pub fn by_reason(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for l in self.letters.values() {
            *out.entry(l.reason.clone()).or_default() += 1;
        }
        out
    }

    /// Every dead-letter file under `<data.dir>/dead-letter/`.
    pub fn from_files(data_dir: &Path) -> Result<Tally, IngestError> {
        let dir = data_dir.join("dead-letter");
        let mut tally = Tally::default();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(tally),
            Err(e) => return Err(IngestError::DeadLetter(format!("{}: {e}", dir.display()))),
        };
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "ndjson"))
        {
            let text = std::fs::read_to_string(f)
                .map_err(|e| IngestError::DeadLetter(format!("{}: {e}", f.display())))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<DeadLetter>(line) {
                    Ok(l) => tally.add(l),
                    Err(_) => tally.unreadable += 1,
                }
            }
        }
        Ok(tally)
    }
}

/// Where dead letters go. `flush` must make everything sent so far durable.
pub trait DeadLetterSink {
    fn send(&mut self, letter: &DeadLetter) -> Result<(), IngestError>;
    fn flush(&mut self) -> Result<(), IngestError>;
    /// Letters sent so far.
    fn count(&self) -> u64;
}

/// Dead letters as NDJSON under `<data.dir>/dead-letter/`, one file per run, created on the
/// first rejection.
pub struct FileDeadLetters {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    count: u64,
}

impl FileDeadLetters {
    /// A sink writing to `<dir>/<name>.ndjson`; nothing is created until a record is rejected.
    pub fn new(dir: &Path, name: &str) -> FileDeadLetters {
        FileDeadLetters {
            path: dir.join(format!("{name}.ndjson")),
            writer: None,
            count: 0,
        }
    }

    /// A sink with a fresh name for this run: `dead-letter-<UTC time>-<pid>.ndjson`.
    pub fn for_run(data_dir: &Path) -> FileDeadLetters {
        let name = format!(
            "dead-letter-{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
            std::process::id()
        );
        FileDeadLetters::new(&data_dir.join("dead-letter"), &name)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> IngestError {
        IngestError::DeadLetter(format!("{}: {e}", self.path.display()))
    }
}

impl DeadLetterSink for FileDeadLetters {
    fn send(&mut self, letter: &DeadLetter) -> Result<(), IngestError> {
        if self.writer.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| self.err(e))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| self.err(e))?;
            self.writer = Some(BufWriter::new(file));
        }
        let line = serde_json::to_string(letter).map_err(|e| self.err(e))?;
        let w = self.writer.as_mut().expect("opened above");
        writeln!(w, "{line}").map_err(|e| IngestError::DeadLetter(e.to_string()))?;
        self.count += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        if let Some(w) = self.writer.as_mut() {
            w.flush()
                .and_then(|_| w.get_ref().sync_data())
                .map_err(|e| IngestError::DeadLetter(e.to_string()))?;
        }
        Ok(())
    }

    fn count(&self) -> u64 {
        self.count
    }
}

/// Dead letters kept in memory: for tests and for the demo's summary.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    pub letters: Vec<DeadLetter>,
}

impl DeadLetterSink for MemoryDeadLetters {
    fn send(&mut self, letter: &DeadLetter) -> Result<(), IngestError> {
        self.letters.push(letter.clone());
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IngestError> {
        Ok(())
    }
    fn count(&self) -> u64 {
        self.letters.len() as u64
    }
}

/// Lets a caller keep ownership of its sink (and read it afterwards) while an ingestor uses it.
impl<T: DeadLetterSink + ?Sized> DeadLetterSink for &mut T {
    fn send(&mut self, letter: &DeadLetter) -> Result<(), IngestError> {
        (**self).send(letter)
    }
    fn flush(&mut self) -> Result<(), IngestError> {
        (**self).flush()
    }
    fn count(&self) -> u64 {
        (**self).count()
    }
}
