//! The audit log: who produced, published or read which referral list, when, from what data.
//!
//! `<data.dir>/audit/audit.ndjson`, one JSON record per line. Records are only ever appended
//! (the file is opened in append mode and fsynced after each record) and each carries the
//! SHA-256 of the previous line, so a removed or edited record breaks the chain that
//! [`verify`] checks. `lantern audit` lists the records.
//!
//! **Concurrency.** An append holds an exclusive lock (`flock` on `audit/audit.lock`) from
//! reading the last line to the fsync, so two runs at once (a night and an intake read, say)
//! cannot both chain to the same predecessor and fork the log.
//!
//! **Anchors.** A hash chain alone does not show that its *end* was cut off, nor that the whole
//! log was rewritten with fresh hashes. After every append the chain's head (record count and
//! SHA-256 of the last line) is written to `audit/HEAD`; the screening night also writes it
//! beside its lists (`audit-anchor.json`) and prints it in its summary, where it leaves the
//! machine with the lists and the operator's logs. [`verify`] checks the chain against every
//! anchor it finds (and any the operator passes in): a log shorter than an anchor, or whose
//! record at an anchor's position hashes differently, fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub run_id: String,
    /// `screen`, `draft`, `publish`, `supersede`, `issue`, `read`, `train`, `promote`,
    /// `export`, `erase`, `retention`, `explain` or `lake_location` (the lake moved).
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
    /// The household a record is about (explain, erase), as its keyed hash
    /// ([`household_hash`]), never the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<String>,
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

static IDENTITY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the configured identity (`audit.identity`) recorded beside the OS user, once per
/// process (the command line does it at start).
pub fn set_identity(identity: &str) {
    let _ = IDENTITY.set(identity.trim().to_string());
}

/// Who is running this process: the OS user and host, and the configured identity if there is
/// one (`audit.identity`, or `LANTERN_ACTOR` for a service account's runs), as
/// `user@host (identity)`.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let identity = IDENTITY
        .get()
        .filter(|i| !i.is_empty())
        .cloned()
        .or_else(|| {
            std::env::var("LANTERN_ACTOR")
                .ok()
                .filter(|a| !a.is_empty())
        });
    match identity {
        Some(i) => format!("{user}@{host} ({i})"),
        None => format!("{user}@{host}"),
    }
}

/// Which records `lantern audit` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    /// A part of the actor (user, host or identity).
    pub actor: Option<String>,
    pub as_of: Option<String>,
    /// Records written on or after this day (UTC).
    pub since: Option<chrono::NaiveDate>,
    /// Records written on or before this day (UTC).
    pub until: Option<chrono::NaiveDate>,
    /// Records about this household, given as its keyed hash ([`household_hash`]).
    pub household: Option<String>,
}

impl Filter {
    pub fn keeps(&self, r: &AuditRecord) -> bool {
        let day =
            r.at.get(..10)
                .and_then(|d| d.parse::<chrono::NaiveDate>().ok());
        self.action.as_ref().is_none_or(|a| &r.action == a)
            && self
                .actor
                .as_ref()
                .is_none_or(|a| r.actor.contains(a.as_str()))
            && self
                .as_of
                .as_ref()
                .is_none_or(|d| r.as_of.as_ref() == Some(d))
            && self.since.is_none_or(|s| day.is_some_and(|d| d >= s))
            && self.until.is_none_or(|u| day.is_some_and(|d| d <= u))
            && self
                .household
                .as_ref()
                .is_none_or(|h| r.household.as_ref() == Some(h))
    }
}

/// The keyed hash that stands for a household in the audit log: HMAC-SHA-256 of its id under a
/// key kept beside the log (`audit/household.key`, made on first use, readable by its owner
/// only). A plain hash of a pseudonymous token could be reversed by hashing candidate tokens;
/// the key makes that impossible for whoever holds the log without the key.
pub fn household_hash(data_dir: &Path, household_id: &str) -> Result<String, AuditError> {
    use hmac::{Hmac, Mac};
    let path = path(data_dir).with_file_name("household.key");
    let key = match std::fs::read(&path) {
        Ok(k) if k.len() >= 32 => k,
        _ => {
            let mut k = [0u8; 32];
            {
                use std::io::Read;
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut r| r.read_exact(&mut k))
                    .map_err(io(Path::new("/dev/urandom")))?;
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            let mut f = std::fs::OpenOptions::new();
            f.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                f.mode(0o600);
            }
            match f.open(&path) {
                Ok(mut file) => {
                    file.write_all(&k).map_err(io(&path))?;
                    file.sync_all().map_err(io(&path))?;
                    k.to_vec()
                }
                // Another process made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read(&path).map_err(io(&path))?
                }
                Err(e) => return Err(io(&path)(e)),
            }
        }
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(household_id.as_bytes());
    Ok(format!(
        "hh_{}",
        hex::encode(&mac.finalize().into_bytes()[..16])
    ))
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
            household: None,
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

/// The chain's head after some record: how many records the log held and the SHA-256 of the
/// last line. Kept beside each night's lists and in `audit/HEAD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub records: usize,
    pub sha256: String,
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.records, self.sha256)
    }
}

impl std::str::FromStr for Anchor {
    type Err = String;
    fn from_str(s: &str) -> Result<Anchor, String> {
        let (n, h) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not an anchor; write it as RECORDS:SHA256"))?;
        let records = n
            .parse()
            .map_err(|_| format!("`{n}` is not a record count"))?;
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{h}` is not a SHA-256 in hex"));
        }
        Ok(Anchor {
            records,
            sha256: h.to_ascii_lowercase(),
        })
    }
}

/// `audit/HEAD`: the head after the latest append.
pub fn head_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("HEAD")
}

/// Holds the exclusive append lock while alive.
struct AppendLock(#[allow(dead_code)] std::fs::File);

fn lock(data_dir: &Path) -> Result<AppendLock, AuditError> {
    let p = data_dir.join("audit").join("audit.lock");
    crate::lake::exclusive_lock(&p)
        .map(AppendLock)
        .map_err(io(&p))
}

fn line_hash(line: &str) -> String {
    hex::encode(Sha256::digest(line.as_bytes()))
}

/// Appends a record, chained to the last one, and makes it durable. Returns the record as
/// written (with its `prev`).
pub fn append(data_dir: &Path, record: AuditRecord) -> Result<AuditRecord, AuditError> {
    append_anchored(data_dir, record).map(|(r, _)| r)
}

/// [`append`], also returning the chain's head after it, for the caller to keep elsewhere.
pub fn append_anchored(
    data_dir: &Path,
    mut record: AuditRecord,
) -> Result<(AuditRecord, Anchor), AuditError> {
    let p = path(data_dir);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let _lock = lock(data_dir)?;
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(&p)(e)),
    };
    record.prev = text.lines().last().map(line_hash).unwrap_or_default();
    let line = serde_json::to_string(&record).expect("audit records serialize");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(io(&p))?;
    writeln!(f, "{line}").map_err(io(&p))?;
    f.sync_all().map_err(io(&p))?;
    let anchor = Anchor {
        records: text.lines().count() + 1,
        sha256: line_hash(&line),
    };
    write_anchor(&head_path(data_dir), &anchor)?;
    Ok((record, anchor))
}

/// Writes an anchor file atomically and durably.
pub fn write_anchor(dest: &Path, anchor: &Anchor) -> Result<(), AuditError> {
    let json = serde_json::to_vec(anchor).expect("anchors serialize");
    crate::lake::write_bytes_atomic(dest, &json).map_err(|e| AuditError::Io {
        path: dest.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Every anchor Lantern keeps in the data directory: `audit/HEAD` and each night's
/// `audit-anchor.json`, with where it was found.
pub fn anchors(data_dir: &Path) -> Vec<(PathBuf, Anchor)> {
    let mut files = vec![head_path(data_dir)];
    for root in [
        crate::lake::reference::referrals_root(data_dir),
        crate::lake::reference::drafts_root(data_dir),
    ] {
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                files.push(e.path().join("audit-anchor.json"));
            }
        }
    }
    files
        .into_iter()
        .filter_map(|f| {
            let bytes = std::fs::read(&f).ok()?;
            let a = serde_json::from_slice::<Anchor>(&bytes).ok()?;
            Some((f, a))
        })
        .collect()
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

/// Checks the hash chain and every anchor in the data directory; returns the number of records.
pub fn verify(data_dir: &Path) -> Result<usize, AuditError> {
    verify_with(data_dir, &[])
}

/// [`verify`], also against anchors the caller kept (from a night's summary, say).
pub fn verify_with(data_dir: &Path, extra: &[Anchor]) -> Result<usize, AuditError> {
    let p = path(data_dir);
    let hashes = chain(&p)?;
    let mut all: Vec<(String, Anchor)> = anchors(data_dir)
        .into_iter()
        .map(|(f, a)| (f.display().to_string(), a))
        .collect();
    all.extend(
        extra
            .iter()
            .map(|a| ("the command line".to_string(), a.clone())),
    );
    for (from, a) in &all {
        let broken = |message: String| AuditError::Corrupt {
            path: p.display().to_string(),
            line: a.records,
            message,
        };
        match hashes.get(a.records.wrapping_sub(1)) {
            None => {
                return Err(broken(format!(
                    "the log holds {} records but the anchor in {from} was taken after {}: records were cut off the end",
                    hashes.len(),
                    a.records
                )))
            }
            Some(h) if h != &a.sha256 => {
                return Err(broken(format!(
                    "does not match the anchor in {from}: the log was rewritten"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(hashes.len())
}

/// The SHA-256 of every line, after checking that each follows the one before.
fn chain(p: &Path) -> Result<Vec<String>, AuditError> {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(p)(e)),
    };
    let mut prev = String::new();
    let mut out = Vec::new();
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
        prev = line_hash(line);
        out.push(prev.clone());
    }
    Ok(out)
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

    /// Issue 9.8: appends from many writers at once are serialized by the lock, so the chain
    /// never forks (without it, two writers read the same last line and both chain to it).
    #[test]
    fn concurrent_appends_keep_one_unbroken_chain() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let d = dir.path();
                scope.spawn(move || {
                    for i in 0..25 {
                        let mut r = AuditRecord::new("read");
                        r.detail = serde_json::json!({ "thread": t, "i": i });
                        append(d, r).unwrap();
                    }
                });
            }
        });
        assert_eq!(verify(dir.path()).unwrap(), 200);
    }

    /// Issue 9.8: cutting records off the end of the log leaves a valid chain, but not one
    /// that reaches the anchor in `audit/HEAD`.
    #[test]
    fn a_truncated_log_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        for action in ["screen", "publish", "read"] {
            append(dir.path(), AuditRecord::new(action)).unwrap();
        }
        let p = path(dir.path());
        let text = std::fs::read_to_string(&p).unwrap();
        let kept: Vec<&str> = text.lines().take(2).collect();
        std::fs::write(&p, kept.join("\n") + "\n").unwrap();
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(err.contains("cut off the end"), "{err}");
    }

    /// Issue 9.8: a log rewritten with a consistent fresh chain (and a forged `audit/HEAD`)
    /// still fails against the anchor kept beside a night's lists, and against an anchor the
    /// operator copied from a night's summary.
    #[test]
    fn a_rewritten_log_fails_against_the_anchors_kept_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let (_, night_anchor) = append_anchored(dir.path(), AuditRecord::new("screen")).unwrap();
        let night_dir = crate::lake::reference::referrals_root(dir.path()).join("as_of=2026-11-01");
        write_anchor(&night_dir.join("audit-anchor.json"), &night_anchor).unwrap();
        append(dir.path(), AuditRecord::new("publish")).unwrap();
        assert_eq!(verify(dir.path()).unwrap(), 2);

        // Rewrite history: the screen record now names another model, chain recomputed.
        let original: Vec<AuditRecord> = list(dir.path()).unwrap();
        std::fs::remove_file(path(dir.path())).unwrap();
        for mut r in original {
            if r.action == "screen" {
                r.model = Some("forged@1".into());
            }
            append(dir.path(), r).unwrap();
        }
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(err.contains("rewritten"), "{err}");
        assert!(err.contains("audit-anchor.json"), "{err}");

        // Without the night's anchor, the one from the summary still catches it.
        std::fs::remove_file(night_dir.join("audit-anchor.json")).unwrap();
        assert_eq!(
            verify(dir.path()).unwrap(),
            2,
            "nothing left in the data dir to compare"
        );
        let err = verify_with(dir.path(), &[night_anchor.clone()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("the command line"), "{err}");
        assert_eq!(
            night_anchor.to_string().parse::<Anchor>().unwrap(),
            night_anchor
        );
    }
}
