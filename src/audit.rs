//! The audit log: who produced, published or read which referral list, when, from what data.
//!
//! `<data.dir>/audit/audit.ndjson`, one JSON record per line. Records are only ever appended
//! (the file is opened in append mode and fsynced after each record) and each carries the
//! SHA-256 of the previous line, so a removed or edited record breaks the chain that
//! [`verify`] checks. `lantern audit` lists the records.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub run_id: String,
    /// `screen`, `publish` or `read`.
    pub action: String,
    pub at: String,
    /// Who or what ran it: `LANTERN_ACTOR`, else the OS user, with the host.
    pub actor: String,
    pub as_of: Option<String>,
    pub model: Option<String>,
    /// The newest ingest time and observation date in the lake when the run read it.
    pub input_watermark: Option<String>,
    /// Referrals per district (screen, publish) or read back (read).
    pub districts: BTreeMap<String, u64>,
    /// SHA-256 of every file written.
    pub outputs: BTreeMap<String, String>,
    /// Anything else worth keeping (counts, settings).
    pub detail: serde_json::Value,
    /// SHA-256 of the previous line ("" for the first record).
    pub prev: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("audit log {path} line {line}: {message}")]
    Corrupt {
        path: String,
        line: usize,
        message: String,
    },
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("audit.ndjson")
}

/// Who is running this process.
pub fn actor() -> String {
    let who = std::env::var("LANTERN_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{who}@{host}")
}

/// A fresh run id: time and process, readable and unique.
pub fn run_id(action: &str) -> String {
    format!(
        "{action}-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    )
}

impl AuditRecord {
    pub fn new(action: &str) -> AuditRecord {
        AuditRecord {
            run_id: run_id(action),
            action: action.to_string(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: actor(),
            as_of: None,
            model: None,
            input_watermark: None,
            districts: BTreeMap::new(),
            outputs: BTreeMap::new(),
            detail: serde_json::Value::Null,
            prev: String::new(),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Appends a record, chained to the last one, and makes it durable.
pub fn append(data_dir: &Path, mut record: AuditRecord) -> Result<AuditRecord, AuditError> {
    let p = path(data_dir);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let text = std::fs::read_to_string(&p).unwrap_or_default();
    record.prev = text
        .lines()
        .last()
        .map(|l| hex::encode(Sha256::digest(l.as_bytes())))
        .unwrap_or_default();
    let line = serde_json::to_string(&record).expect("audit records serialize");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(io(&p))?;
    writeln!(f, "{line}").map_err(io(&p))?;
    f.sync_all().map_err(io(&p))?;
    Ok(record)
}

/// Every record, oldest first.
pub fn list(data_dir: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let p = path(data_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&p)(e)),
    };
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| AuditError::Corrupt {
                path: p.display().to_string(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Checks the hash chain; returns the number of records.
pub fn verify(data_dir: &Path) -> Result<usize, AuditError> {
    let p = path(data_dir);
    let text = std::fs::read_to_string(&p).unwrap_or_default();
    let mut prev = String::new();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let r: AuditRecord = serde_json::from_str(line).map_err(|e| AuditError::Corrupt {
            path: p.display().to_string(),
            line: i + 1,
            message: e.to_string(),
        })?;
        if r.prev != prev {
            return Err(AuditError::Corrupt {
                path: p.display().to_string(),
                line: i + 1,
                message: "does not follow the line before it: a record was removed or changed"
                    .into(),
            });
        }
        prev = hex::encode(Sha256::digest(line.as_bytes()));
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_chain_and_an_edit_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        for action in ["screen", "publish", "read"] {
            append(dir.path(), AuditRecord::new(action)).unwrap();
        }
        assert_eq!(verify(dir.path()).unwrap(), 3);
        assert_eq!(list(dir.path()).unwrap()[1].action, "publish");
        let p = path(dir.path());
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&p, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
