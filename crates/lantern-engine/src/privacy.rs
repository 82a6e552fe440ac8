//! Retention and erasure: Lantern forgets what it no longer needs, and one household entirely
//! when asked.
//!
//! **Retention** (`lantern retention [--apply]`) goes by kind, each with its own period in
//! `[retention]`:
//!
//! | kind | what goes | by which date |
//! |---|---|---|
//! | signals, outcomes | whole month folders of the lake | the month's last day |
//! | dead letters | `dead-letter/*.ndjson` files | the file's last write |
//! | referral lists | issued nights `referrals/as_of=D/` | D |
//! | drafts | `drafts/as_of=D/` | D |
//! | decision logs | `decisions.parquet` inside a night that is kept | D |
//! | feature exports | files named by `export` audit records | the record's day |
//! | reports | `reports/backtest-*/` | the folder's last write |
//!
//! Features read the signal state (`features::state`), a deduplicated copy of the lake's
//! signals: applying retention to the lake also rebuilds the state's dropped months and deletes
//! the state files that held them at once, so what the lake forgets, features forget. There is
//! no other feature cache.
//!
//! The lake's months go through the lake ([`crate::lake::Lake::drop_partition`]), wherever it
//! is (a folder or an object store), under its write lock.
//!
//! **Erasure** (`lantern erase --household ID`) rewrites every file of the lake (wherever it
//! is, under its write lock: [`crate::lake::Lake::erase_household`]) and under the data
//! directory that names the household: Parquet files lose its rows (on their `household_id` column),
//! NDJSON and CSV files its lines, caseworker pages its table row; each rewritten file replaces
//! the old one atomically and durably, and the night's `MANIFEST.json` is brought up to date.
//! Running it twice changes nothing the second time. The audit record keeps a keyed hash of the
//! id, never the id. What Lantern cannot erase is said: messages already on Kafka topics, and
//! copies of exports outside the data directory that no audit record names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::RecordBatch;
use serde::Serialize;

use crate::config::RetentionSettings;

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error(
        "{path}: {message}; check that the data directory is on a writable disk with space left, \
         then run the command again (it picks up where it stopped: erasure and retention are idempotent)"
    )]
    File { path: String, message: String },
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> PrivacyError {
    PrivacyError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// One thing past its retention period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expired {
    /// `signals`, `outcomes`, `dead_letters`, `referral_lists`, `drafts`, `decision_logs`,
    /// `feature_exports` or `reports`.
    pub kind: &'static str,
    pub path: PathBuf,
    /// The date its age is counted from.
    pub dated: NaiveDate,
    /// For signals and outcomes: the lake partition (a month of a table) that goes.
    #[serde(skip)]
    pub partition: Option<crate::lake::Partition>,
}

/// Everything under `data_dir` past its period on `today`.
pub fn expired(
    data_dir: &Path,
    settings: &RetentionSettings,
    today: NaiveDate,
) -> Result<Vec<Expired>, PrivacyError> {
    let cutoff = |days: u32| -> Option<NaiveDate> {
        (days > 0).then(|| today - chrono::Days::new(days as u64))
    };
    let mut out = Vec::new();
    let lake = crate::lake::Lake::in_data_dir(data_dir);
    for table in crate::lake::Table::ALL {
        let (kind, days) = if table == crate::lake::Table::Outcomes {
            ("outcomes", settings.outcomes_days)
        } else {
            ("signals", settings.signals_days)
        };
        let Some(cut) = cutoff(days) else { continue };
        for p in lake
            .partitions(table)
            .map_err(|e| file_err(Path::new(&lake.location()), e))?
        {
            let Some(last) = month_end(&format!("{:04}-{:02}", p.year, p.month)) else {
                continue;
            };
            if last < cut {
                out.push(Expired {
                    kind,
                    path: lake.partition_dir(&p),
                    dated: last,
                    partition: Some(p),
                });
            }
        }
    }
    if let Some(cut) = cutoff(settings.dead_letters_days) {
        for (path, _) in children(&data_dir.join("dead-letter"))? {
            if let Some(d) = modified(&path).filter(|d| *d < cut) {
                out.push(Expired {
                    kind: "dead_letters",
                    path,
                    dated: d,
                    partition: None,
                });
            }
        }
    }
    for (kind, root, days) in [
        (
            "referral_lists",
            crate::lake::reference::referrals_root(data_dir),
            settings.referral_lists_days,
        ),
        (
            "drafts",
            crate::lake::reference::drafts_root(data_dir),
            settings.drafts_days,
        ),
    ] {
        let nights = nights(&root)?;
        let whole = cutoff(days);
        for (path, d) in nights {
            if whole.is_some_and(|cut| d < cut) {
                out.push(Expired {
                    kind,
                    path,
                    dated: d,
                    partition: None,
                });
            } else if cutoff(settings.decision_logs_days).is_some_and(|cut| d < cut) {
                let log = path.join(crate::screen::output::DECISIONS);
                if log.exists() {
                    out.push(Expired {
                        kind: "decision_logs",
                        path: log,
                        dated: d,
                        partition: None,
                    });
                }
            }
        }
    }
    if let Some(cut) = cutoff(settings.feature_exports_days) {
        for (path, d) in exports(data_dir)? {
            if d < cut && path.exists() {
                out.push(Expired {
                    kind: "feature_exports",
                    path,
                    dated: d,
                    partition: None,
                });
            }
        }
    }
    if let Some(cut) = cutoff(settings.reports_days) {
        for (path, name) in children(&data_dir.join("reports"))? {
            if !name.starts_with("backtest-") {
                continue;
            }
            if let Some(d) = modified(&path).filter(|d| *d < cut) {
                out.push(Expired {
                    kind: "reports",
                    path,
                    dated: d,
                    partition: None,
                });
            }
        }
    }
    Ok(out)
}

/// Deletes what [`expired`] found, and audits it (one `retention` record with the count and
/// every path by kind). A folder is renamed aside first and then removed, so a crash leaves it
/// either whole under its own name or gone from every reader's view.
pub fn apply(data_dir: &Path, items: &[Expired]) -> Result<usize, PrivacyError> {
    let mut by_kind: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let lake = crate::lake::Lake::in_data_dir(data_dir);
    for item in items {
        let p = &item.path;
        if let Some(partition) = &item.partition {
            lake.drop_partition(partition).map_err(|e| file_err(p, e))?;
        } else if p.is_dir() {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let aside = p.with_file_name(format!(".{name}.deleting"));
            std::fs::rename(p, &aside).map_err(|e| file_err(p, e))?;
            sync_parent(p)?;
            std::fs::remove_dir_all(&aside).map_err(|e| file_err(&aside, e))?;
        } else if p.exists() {
            std::fs::remove_file(p).map_err(|e| file_err(p, e))?;
            sync_parent(p)?;
            if item.kind == "decision_logs" {
                if let Some(night) = p.parent() {
                    refresh_manifest(night)?;
                }
            }
        }
        by_kind
            .entry(item.kind)
            .or_default()
            .push(p.display().to_string());
    }
    if items.iter().any(|i| i.kind == "referral_lists") {
        crate::lake::reference::touch_referrals_root(data_dir)
            .map_err(|e| file_err(data_dir, e))?;
    }
    // The signal state holds copies of lake rows: it forgets the dropped months now (their
    // rebuild), and the parts that held them are deleted at once, not after the usual grace.
    let mut state_forgot = serde_json::Value::Null;
    let state = crate::features::state::SignalState::root_in(data_dir);
    if state.join("manifest.json").exists() && items.iter().any(|i| i.kind == "signals") {
        let (_, report) = crate::features::state::SignalState::update(data_dir, 0)
            .map_err(|e| file_err(&state, e))?;
        let purged = crate::features::state::SignalState::purge_retired(data_dir)
            .map_err(|e| file_err(&state, e))?;
        state_forgot = serde_json::json!({
            "months_rebuilt": report.months_rebuilt,
            "parts_deleted": purged,
        });
    }
    let mut record = crate::audit::AuditRecord::new("retention");
    record.detail = serde_json::json!({
        "deleted": items.len(),
        "by_kind": by_kind,
        "signal_state": state_forgot,
    });
    crate::audit::append(data_dir, record)?;
    Ok(items.len())
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Erased {
    /// Files rewritten without the household, relative to the data directory.
    pub files: Vec<String>,
    /// Rows or lines removed in all.
    pub removed: u64,
    /// What Lantern cannot erase, and what to do about it.
    pub not_erasable: Vec<String>,
    /// The keyed hash the audit record keeps.
    pub household_hash: String,
}

/// Removes every trace of `household_id` from the files under `data_dir` (see the module
/// docs), and audits it under a keyed hash. Idempotent.
pub fn erase(data_dir: &Path, household_id: &str) -> Result<Erased, PrivacyError> {
    if household_id.trim().is_empty() {
        return Err(file_err(
            data_dir,
            "an empty household id names nothing to erase",
        ));
    }
    let mut out = Erased {
        household_hash: crate::audit::household_hash(data_dir, household_id)?,
        ..Erased::default()
    };
    let mut manifests: Vec<PathBuf> = Vec::new();
    // The lake, wherever it is, under its write lock (so no ingest process writes the
    // household's rows back from a stale cache of keys).
    let lake = crate::lake::Lake::in_data_dir(data_dir);
    let (removed, rewritten) = lake
        .erase_household(household_id)
        .map_err(|e| file_err(Path::new(&lake.location()), e))?;
    out.removed += removed;
    for f in rewritten {
        out.files.push(if lake.is_object_store() {
            let rel = f.strip_prefix(lake.root()).unwrap_or(&f);
            format!("{}/{}", lake.location(), rel.display())
        } else {
            f.strip_prefix(data_dir).unwrap_or(&f).display().to_string()
        });
    }
    let mut files = Vec::new();
    walk(data_dir, &mut files)?;
    if !lake.is_object_store() {
        files.retain(|f| !f.starts_with(lake.root()));
    }
    // Feature exports may live anywhere: the audit log names them.
    for (path, _) in exports(data_dir)? {
        if path.exists() && !path.starts_with(data_dir) {
            files.push(path);
        }
    }
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        // The audit log is append-only and holds keyed hashes, never ids.
        if path.starts_with(data_dir.join("audit")) || name.ends_with(".partial") {
            continue;
        }
        let removed = if name.ends_with(".parquet") {
            erase_parquet(&path, household_id)?
        } else if name.ends_with(".html") {
            erase_html(&path, household_id)?
        } else if name.ends_with(".ndjson") || name.ends_with(".csv") {
            erase_lines(&path, household_id)?
        } else if name.ends_with(".json") || name.ends_with(".md") {
            erase_mentions(&path, household_id)?
        } else {
            0
        };
        if removed > 0 {
            out.removed += removed;
            let shown = path.strip_prefix(data_dir).unwrap_or(&path);
            out.files.push(shown.display().to_string());
            if let Some(dir) = night_of(data_dir, &path) {
                if !manifests.contains(&dir) {
                    manifests.push(dir);
                }
            }
        }
    }
    for dir in &manifests {
        refresh_manifest(dir)?;
    }
    if !manifests.is_empty() {
        crate::lake::reference::touch_referrals_root(data_dir)
            .map_err(|e| file_err(data_dir, e))?;
    }
    out.not_erasable.push(
        "Messages already on Kafka topics (signals.*, case-outcomes, case-intake, \
         signals.dead-letter) cannot be erased by Lantern: they expire with each topic's \
         retention.ms; ask the broker's operator to delete or compact them if they must go \
         sooner."
            .into(),
    );
    out.not_erasable.push(
        "Copies made outside Lantern (a caseworker's downloaded CSV, a researcher's copy of an \
         export) are not Lantern's to reach: the audit log's `read` and `export` records say \
         who took which."
            .into(),
    );
    let mut record = crate::audit::AuditRecord::new("erase");
    record.household = Some(out.household_hash.clone());
    record.detail = serde_json::json!({
        "files_rewritten": out.files,
        "removed": out.removed,
        "not_erasable": out.not_erasable,
    });
    crate::audit::append(data_dir, record)?;
    Ok(out)
}

/// Every regular file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PrivacyError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries {
        let p = e.map_err(|e| file_err(dir, e))?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// The night folder (`referrals/as_of=D` or `drafts/as_of=D`) a file belongs to, if any.
fn night_of(data_dir: &Path, path: &Path) -> Option<PathBuf> {
    let roots = [
        crate::lake::reference::referrals_root(data_dir),
        crate::lake::reference::drafts_root(data_dir),
    ];
    for root in roots {
        if let Ok(rest) = path.strip_prefix(&root) {
            let first = rest.components().next()?;
            return Some(root.join(first));
        }
    }
    None
}

/// Rewrites a night's `MANIFEST.json` with the hashes of the files it lists that still exist.
fn refresh_manifest(dir: &Path) -> Result<(), PrivacyError> {
    let path = dir.join(crate::screen::output::MANIFEST);
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(());
    };
    let old: BTreeMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|e| file_err(&path, e))?;
    let mut new = BTreeMap::new();
    for name in old.keys() {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            new.insert(
                name.clone(),
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b)),
            );
        }
    }
    let json = serde_json::to_vec_pretty(&new).expect("hashes serialize");
    crate::lake::write_bytes_atomic(&path, &json).map_err(|e| file_err(&path, e))
}

/// Drops the rows whose `household_id` is `id`; returns how many went.
fn erase_parquet(path: &Path, id: &str) -> Result<u64, PrivacyError> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).map_err(|e| file_err(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| file_err(path, e))?;
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut removed = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| file_err(path, e))?;
        let (kept, gone) =
            crate::lake::without_household(&batch, id).map_err(|e| file_err(path, e))?;
        removed += gone;
        batches.push(kept);
    }
    if removed > 0 {
        crate::lake::write_parquet_atomic(path, &batches).map_err(|e| file_err(path, e))?;
    }
    Ok(removed)
}

/// Drops the lines that name `id` (NDJSON records, CSV rows, JSON lines).
fn erase_lines(path: &Path, id: &str) -> Result<u64, PrivacyError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    if !contains(&bytes, id.as_bytes()) {
        return Ok(0);
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut kept = String::with_capacity(text.len());
    let mut removed = 0;
    for line in text.split_inclusive('\n') {
        if line.contains(id) {
            removed += 1;
        } else {
            kept.push_str(line);
        }
    }
    crate::lake::write_bytes_atomic(path, kept.as_bytes()).map_err(|e| file_err(path, e))?;
    Ok(removed)
}

/// Drops the household's table row from a caseworker page (`<tr data-household="ID">…</tr>`),
/// and any other mention of the id.
fn erase_html(path: &Path, id: &str) -> Result<u64, PrivacyError> {
    let mut text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    if !text.contains(id) {
        return Ok(0);
    }
    let mut removed = 0;
    let marker = format!("<tr data-household=\"{id}\"");
    while let Some(start) = text.find(&marker) {
        let end = text[start..]
            .find("</tr>")
            .map(|e| start + e + "</tr>".len())
            .unwrap_or(text.len());
        text.replace_range(start..end, "");
        removed += 1;
    }
    let rest = text.matches(id).count();
    if rest > 0 {
        text = text.replace(id, "(삭제됨 erased)");
        removed += rest;
    }
    crate::lake::write_bytes_atomic(path, text.as_bytes()).map_err(|e| file_err(path, e))?;
    Ok(removed as u64)
}

/// Replaces every mention of `id` in a text file (JSON stays valid: an id is only ever inside
/// a string).
fn erase_mentions(path: &Path, id: &str) -> Result<u64, PrivacyError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    let n = text.matches(id).count();
    if n > 0 {
        let text = text.replace(id, "(erased)");
        crate::lake::write_bytes_atomic(path, text.as_bytes()).map_err(|e| file_err(path, e))?;
    }
    Ok(n as u64)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// `(path, name)` of each entry of `dir` (none when it does not exist).
fn children(dir: &Path) -> Result<Vec<(PathBuf, String)>, PrivacyError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| file_err(dir, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with('.') {
            out.push((e.path(), name));
        }
    }
    out.sort();
    Ok(out)
}

/// The night folders `as_of=D` under `root`, with D.
fn nights(root: &Path) -> Result<Vec<(PathBuf, NaiveDate)>, PrivacyError> {
    Ok(children(root)?
        .into_iter()
        .filter_map(|(p, n)| {
            let d = n.strip_prefix("as_of=")?.parse().ok()?;
            Some((p, d))
        })
        .collect())
}

/// The last day of `YYYY-MM`.
fn month_end(s: &str) -> Option<NaiveDate> {
    let first = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok()?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
    };
    next.pred_opt()
}

fn modified(path: &Path) -> Option<NaiveDate> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(chrono::DateTime::<chrono::Utc>::from(t).date_naive())
}

/// The feature exports the audit log names, with the day each was made.
fn exports(data_dir: &Path) -> Result<Vec<(PathBuf, NaiveDate)>, PrivacyError> {
    let records = match crate::audit::list(data_dir) {
        Ok(r) => r,
        Err(_) if !crate::audit::path(data_dir).exists() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(records
        .iter()
        .filter(|r| r.action == "export")
        .filter_map(|r| {
            let file = r.detail.get("file")?.as_str()?;
            let day = r.at.get(..10)?.parse().ok()?;
            Some((PathBuf::from(file), day))
        })
        .collect())
}

fn sync_parent(path: &Path) -> Result<(), PrivacyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| file_err(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_ends_on_its_last_day() {
        assert_eq!(month_end("2025-02"), NaiveDate::from_ymd_opt(2025, 2, 28));
        assert_eq!(month_end("2024-12"), NaiveDate::from_ymd_opt(2024, 12, 31));
        assert_eq!(month_end("junk"), None);
    }

    /// A caseworker page loses the household's row and nothing else; a second pass finds
    /// nothing to do.
    #[test]
    fn a_page_loses_the_households_row_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.html");
        std::fs::write(
            &p,
            "<table><tr data-household=\"hh_a\"><td>1</td>\n<td>a</td></tr><tr data-household=\"hh_b\"><td>2</td></tr></table>",
        )
        .unwrap();
        assert_eq!(erase_html(&p, "hh_a").unwrap(), 1);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "<table><tr data-household=\"hh_b\"><td>2</td></tr></table>"
        );
        assert_eq!(erase_html(&p, "hh_a").unwrap(), 0);
    }
}
