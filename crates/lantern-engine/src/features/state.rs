//! The signal state: the lake's signals deduplicated and laid out by household, kept up to date
//! as the lake grows, so that a night reads compact household-local files instead of re-reading
//! and re-deduplicating a year of the raw lake in every slice.
//!
//! ```text
//! state/manifest.json                                 what the state holds (the only truth)
//! state/utility_arrears/bucket=0007/part-….parquet    one household bucket's events
//! state/council_report/…   state/service_gap/…
//! state/households/bucket=0007/part-….parquet         the households reference, by bucket
//! ```
//!
//! **What it holds.** Every signal of the lake once (the first copy ingested of each
//! `event_id` wins, ties broken by `observed_on` then `reported_on`: the same rule as the full
//! recomputation, [`dedup_view_sql`]), with the lake's columns and the lake `month` as a plain
//! column, minus the council reports' free-text `note` (no feature reads it, and a copy of a
//! narrative about a family in crisis is one more place it could leak from). Rows keep
//! `observed_on` and `reported_on`, so the state answers "as the system knew it on D" for any
//! D: `features.sql` applies the same point-in-time filters to it as to the lake. A household's
//! events all live in one bucket (`bucket_of`, a stable FNV-1a hash of the pseudonymous id), so
//! a slice of the cohort reads only its bucket's files; inside a file rows are sorted by
//! `observed_on` in row groups of 32,768, so a one-year window skips older row groups by their
//! statistics.
//!
//! **Why events and not daily aggregate tiles.** On the simulator a household has fewer than
//! one signal per day it has any signal at all (6.7 million signals over 1 million households
//! and 24 months), so a daily tile would hold as many rows as the events it replaces, and
//! monthly tiles cannot answer the 30- and 90-day windows for an arbitrary date exactly. The
//! deduplicated events are the smallest exact state; they also let a researcher add any
//! feature in `features.sql` without a change here.
//!
//! **Kept up incrementally.** [`SignalState::update`] lists the lake, folds in only the files
//! the manifest has not seen (their rows routed to buckets, checked against the bucket's stored
//! `event_id`s), writes one new part per touched bucket and then the manifest, atomically. The
//! nightly cost follows the new data, plus one read of the key columns of the touched buckets.
//! A lake file that disappeared (compaction merged it, retention dropped its month, an operator
//! deleted it) makes its month be rebuilt from the lake as it now is, so the state never holds
//! what the lake forgot. Buckets with more than [`MAX_PARTS`] parts are merged.
//!
//! **Crash safety.** Parts are written under new names before the manifest that names them;
//! readers read only the parts the manifest names, so a crash leaves at worst unnamed files
//! (removed by the next update). Parts the manifest stops naming are deleted by a later update,
//! [`RETIRE_AFTER_SECS`] on, so a query already reading them is not cut short. Updates are
//! serialized by an exclusive lock on `state/state.lock`.
//!
//! **Privacy.** The state is under the data directory: `lantern erase` rewrites its Parquet
//! files like the lake's, and retention reaches it through the month rebuild above (retention
//! calls [`SignalState::update`] and [`SignalState::purge_retired`] right after it deletes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::{concat_batches, lexsort_to_indices, take, SortColumn};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, Schema, SchemaRef, TimestampMillisecondType,
};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};

use crate::lake::{Lake, LakeError, Table};

/// The lake tables the state keeps (outcomes are small and read from the lake directly).
pub const SIGNAL_TABLES: [Table; 3] = [
    Table::UtilityArrears,
    Table::CouncilReport,
    Table::ServiceGap,
];

/// The key, in the manifest and as a folder, of the households reference's copy by bucket: a
/// slice reads its bucket's households instead of scanning the whole country's reference (at
/// 5 million households that scan, once per slice, made the night's cost grow with the square
/// of the population).
pub const HOUSEHOLDS: &str = "households";

/// Lake columns the state leaves out: free text no feature reads.
pub const LEFT_OUT: [&str; 1] = ["note"];

/// A bucket with more parts than this is merged into one at the next update.
pub const MAX_PARTS: usize = 8;

/// How long a part the manifest no longer names is kept for queries already reading it.
pub const RETIRE_AFTER_SECS: i64 = 600;

/// Signals per bucket the bucket count aims at when the state is first built (about 70,000
/// households on the simulator): a slice's memory follows its bucket, not the population.
pub const EVENTS_PER_BUCKET: u64 = 500_000;

/// Rows held in memory while routing new lake files to buckets; beyond it they wait in
/// temporary files, so a first build of a national lake runs in bounded memory.
const ROUTE_BUFFER_ROWS: usize = 2_000_000;

const ROW_GROUP_ROWS: usize = 32 * 1024;
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(
        "signal state {path}: {message}; the state is derived from the lake: delete the state \
         folder and run again to rebuild it"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "signal state {path}: {message}; if the lake file is damaged, move it aside and run \
         `lantern lake compact`; the state itself can always be deleted and rebuilt from the lake"
    )]
    Arrow { path: PathBuf, message: String },
    #[error(
        "households reference {path}: {message}; import it again (`lantern import --households \
         FILE`), then run `lantern lake state`"
    )]
    Reference { path: PathBuf, message: String },
}

fn arrow_err(path: &Path) -> impl FnOnce(datafusion::arrow::error::ArrowError) -> StateError + '_ {
    move |e| StateError::Arrow {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| {
        StateError::Lake(LakeError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// What the state holds: its bucket count, the lake files folded in and its own parts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    buckets: u32,
    /// Lake files folded in, per table, relative to the table's lake folder.
    sources: BTreeMap<String, BTreeSet<String>>,
    /// The state's files, per table and bucket, relative to the state folder.
    parts: BTreeMap<String, BTreeMap<u32, Vec<String>>>,
    /// Parts no longer named, with the time (unix seconds) they were retired.
    #[serde(default)]
    retired: Vec<(String, i64)>,
    /// Per table, the lake months holding a copy of an event that lost to a copy elsewhere.
    /// When a month is rebuilt (its winning copies may be gone), these months are read again
    /// so that a surviving copy takes the place of one the lake forgot.
    #[serde(default)]
    shadowed: BTreeMap<String, BTreeSet<String>>,
}

/// What an update did, for the log and the benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpdateReport {
    pub lake_files_read: usize,
    pub events_added: u64,
    /// Copies of events already in the state (re-sent under another month, or a lake file
    /// folded in again after a crash).
    pub duplicates: u64,
    /// Stored copies replaced by an earlier-ingested copy that arrived later.
    pub replaced: u64,
    /// `table/month` rebuilt because a lake file of it disappeared.
    pub months_rebuilt: Vec<String>,
    pub buckets_merged: usize,
    pub buckets: u32,
    /// Households of the reference copied by bucket (0: the copy was already current).
    pub households_copied: u64,
}

/// The state of a data directory as its manifest names it.
#[derive(Debug, Clone)]
pub struct SignalState {
    root: PathBuf,
    manifest: Manifest,
}

/// The bucket of a household: FNV-1a over the id's bytes, modulo `buckets`. Stable across
/// runs, machines and Rust versions (it is part of the on-disk layout).
pub fn bucket_of(household_id: &str, buckets: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in household_id.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % buckets.max(1) as u64) as u32
}

/// The schema of a table in the state: the lake's columns less [`LEFT_OUT`], and `month`.
pub fn state_schema(table: Table) -> SchemaRef {
    let mut fields: Vec<Field> = table
        .schema()
        .fields()
        .iter()
        .filter(|f| !LEFT_OUT.contains(&f.name().as_str()))
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("month", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// The full recomputation's deduplication, as SQL over the raw lake table: the rows of
/// [`state_schema`], each `event_id` once, by the state's own rule. `cohort_only` restricts it
/// to the households of the `cohort` table (an event belongs to one household, so this gives
/// the same rows for them and sorts far fewer).
pub fn dedup_view_sql(table: Table, cohort_only: bool) -> String {
    let columns: Vec<String> = state_schema(table)
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let columns = columns.join(", ");
    let filter = if cohort_only {
        "WHERE household_id IN (SELECT household_id FROM cohort)"
    } else {
        ""
    };
    format!(
        "SELECT {columns} FROM (SELECT {columns}, row_number() OVER (PARTITION BY event_id \
         ORDER BY ingested_at, observed_on, reported_on) AS lantern_copy FROM {} {filter}) \
         WHERE lantern_copy = 1",
        table.name()
    )
}

impl SignalState {
    /// The state folder of a data directory.
    pub fn root_in(data_dir: &Path) -> PathBuf {
        data_dir.join("state")
    }

    /// The state as last committed (empty if never built). Does not update it.
    pub fn open(data_dir: &Path) -> Result<SignalState, StateError> {
        let root = SignalState::root_in(data_dir);
        let path = root.join("manifest.json");
        let manifest = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        if manifest.format > FORMAT {
            return Err(StateError::Corrupt {
                path,
                message: format!(
                    "written by a newer Lantern (format {}, this one reads {FORMAT})",
                    manifest.format
                ),
            });
        }
        Ok(SignalState { root, manifest })
    }

    /// Brings the state up to date with the lake of `data_dir` and returns it. `buckets`: the
    /// bucket count for a first build (0: from the lake's size, [`EVENTS_PER_BUCKET`]); an
    /// existing state keeps its own.
    pub fn update(
        data_dir: &Path,
        buckets: u32,
    ) -> Result<(SignalState, UpdateReport), StateError> {
        let root = SignalState::root_in(data_dir);
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        let _lock = lock(&root)?;
        let mut state = SignalState::open(data_dir)?;
        let lake = Lake::in_data_dir(data_dir);
        let mut report = UpdateReport::default();
        if state.manifest.buckets == 0 {
            state.manifest = Manifest {
                format: FORMAT,
                buckets: if buckets > 0 {
                    buckets
                } else {
                    auto_buckets(&lake)?
                },
                ..Manifest::default()
            };
        }
        report.buckets = state.manifest.buckets;
        let before = state.manifest.clone();
        for table in SIGNAL_TABLES {
            state.update_table(&lake, table, &mut report)?;
        }
        report.households_copied = state.update_households(data_dir)?;
        state.remove_unnamed()?;
        let now = now_secs();
        state.purge_retired_before(now - RETIRE_AFTER_SECS)?;
        if state.manifest != before {
            state.write_manifest()?;
        }
        Ok((state, report))
    }

    /// Deletes every retired part now, whoever may be reading it (retention: the lake has
    /// forgotten those rows, so must the state).
    pub fn purge_retired(data_dir: &Path) -> Result<usize, StateError> {
        let root = SignalState::root_in(data_dir);
        if !root.join("manifest.json").exists() {
            return Ok(0);
        }
        let _lock = lock(&root)?;
        let mut state = SignalState::open(data_dir)?;
        let n = state.purge_retired_before(i64::MAX)?;
        state.write_manifest()?;
        Ok(n)
    }

    pub fn buckets(&self) -> u32 {
        self.manifest.buckets.max(1)
    }

    /// The files holding `table`'s events of one bucket.
    pub fn parts(&self, table: Table, bucket: u32) -> Vec<PathBuf> {
        self.manifest
            .parts
            .get(table.name())
            .and_then(|b| b.get(&bucket))
            .map(|v| v.iter().map(|p| self.root.join(p)).collect())
            .unwrap_or_default()
    }

    /// The files holding all of `table`'s events.
    pub fn all_parts(&self, table: Table) -> Vec<PathBuf> {
        self.manifest
            .parts
            .get(table.name())
            .map(|b| b.values().flatten().map(|p| self.root.join(p)).collect())
            .unwrap_or_default()
    }

    /// The households reference of one bucket, or `None` when the state holds no copy (no
    /// reference imported): then readers use the reference itself.
    pub fn households_parts(&self, bucket: u32) -> Option<Vec<PathBuf>> {
        self.manifest.sources.get(HOUSEHOLDS)?;
        Some(
            self.manifest
                .parts
                .get(HOUSEHOLDS)
                .and_then(|b| b.get(&bucket))
                .map(|v| v.iter().map(|p| self.root.join(p)).collect())
                .unwrap_or_default(),
        )
    }

    /// Copies the households reference by bucket when it changed since the last copy (its size
    /// or modification time: `lantern import` and `lantern erase` both rewrite the file), and
    /// drops the copy when the reference is gone. Returns the rows copied.
    fn update_households(&mut self, data_dir: &Path) -> Result<u64, StateError> {
        let src = crate::lake::reference::households_path(data_dir);
        let signature = match std::fs::metadata(&src) {
            Ok(m) => {
                let modified = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                Some(format!("{}:{modified}", m.len()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&src)(e)),
        };
        let recorded = self
            .manifest
            .sources
            .get(HOUSEHOLDS)
            .and_then(|s| s.iter().next().cloned());
        if signature == recorded {
            return Ok(0);
        }
        let now = now_secs();
        if let Some(old) = self.manifest.parts.remove(HOUSEHOLDS) {
            self.manifest
                .retired
                .extend(old.into_values().flatten().map(|p| (p, now)));
        }
        self.manifest.sources.remove(HOUSEHOLDS);
        let Some(signature) = signature else {
            return Ok(0);
        };
        let buckets = self.buckets();
        let mut router = Router::new(&self.root, HOUSEHOLDS, buckets)?;
        let mut copied = 0u64;
        // Streamed: the router spills past its buffer, so a national reference fits.
        let damaged = |message: String| StateError::Reference {
            path: src.clone(),
            message,
        };
        for batch in parquet_batches(&src, damaged)? {
            let batch = batch.map_err(|e| damaged(e.to_string()))?;
            copied += batch.num_rows() as u64;
            router.add(&batch)?;
        }
        let mut parts: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (bucket, incoming) in router.finish()? {
            let rows = read_all(&incoming)?;
            let rel = format!(
                "{HOUSEHOLDS}/bucket={bucket:04}/{}",
                crate::lake::new_part_name()
            );
            crate::lake::write_parquet_atomic_rows(&self.root.join(&rel), &rows, ROW_GROUP_ROWS)?;
            parts.insert(bucket, vec![rel]);
        }
        router.cleanup()?;
        self.manifest.parts.insert(HOUSEHOLDS.to_string(), parts);
        self.manifest
            .sources
            .insert(HOUSEHOLDS.to_string(), BTreeSet::from([signature]));
        Ok(copied)
    }

    fn update_table(
        &mut self,
        lake: &Lake,
        table: Table,
        report: &mut UpdateReport,
    ) -> Result<(), StateError> {
        let name = table.name().to_string();
        let table_dir = lake.table_dir(table);
        let in_lake: BTreeSet<String> = lake
            .table_files(table)?
            .iter()
            .filter_map(|p| p.strip_prefix(&table_dir).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let known = self
            .manifest
            .sources
            .entry(name.clone())
            .or_default()
            .clone();
        // A month with a vanished file is rebuilt from what the lake now holds, and the months
        // holding losing copies are read again (a copy there may now be the first).
        let rebuild: BTreeSet<String> = known
            .difference(&in_lake)
            .filter_map(|f| month_of_file(f))
            .collect();
        let mut reread = rebuild.clone();
        if !rebuild.is_empty() {
            if let Some(shadowed) = self.manifest.shadowed.get(&name) {
                reread.extend(shadowed.iter().cloned());
            }
        }
        let mut fresh: Vec<String> = in_lake
            .iter()
            .filter(|f| {
                !known.contains(*f) || month_of_file(f).is_some_and(|m| reread.contains(&m))
            })
            .cloned()
            .collect();
        fresh.sort();
        if fresh.is_empty() && rebuild.is_empty() {
            return Ok(());
        }
        report
            .months_rebuilt
            .extend(rebuild.iter().map(|m| format!("{name}/{m}")));
        report.lake_files_read += fresh.len();
        let buckets = self.buckets();
        let mut router = Router::new(&self.root, table.name(), buckets)?;
        for file in &fresh {
            let path = table_dir.join(file);
            let month = month_of_file(file).unwrap_or_default();
            for batch in lake.read_file(&path)? {
                router.add(&to_state_batch(table, &batch, &month, &path)?)?;
            }
        }
        let incoming = router.finish()?;
        let mut touched: BTreeSet<u32> = incoming.keys().copied().collect();
        if !rebuild.is_empty() {
            touched.extend(
                self.manifest
                    .parts
                    .get(&name)
                    .map(|b| b.keys().copied().collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
        }
        for bucket in touched {
            let new_rows = match incoming.get(&bucket) {
                Some(files) => read_all(files)?,
                None => Vec::new(),
            };
            self.fold_bucket(table, bucket, new_rows, &rebuild, report)?;
        }
        router.cleanup()?;
        let months: BTreeSet<String> = in_lake.iter().filter_map(|f| month_of_file(f)).collect();
        if let Some(shadowed) = self.manifest.shadowed.get_mut(&name) {
            shadowed.retain(|m| months.contains(m));
        }
        let sources = self.manifest.sources.entry(name).or_default();
        sources.retain(|f| in_lake.contains(f));
        sources.extend(fresh);
        Ok(())
    }

    /// Adds a bucket's new rows: appended as a part when none is a copy of a stored event with
    /// a later ingest time and no month is dropped; otherwise, or when the bucket has too many
    /// parts, the bucket is rewritten as one part.
    fn fold_bucket(
        &mut self,
        table: Table,
        bucket: u32,
        new_rows: Vec<RecordBatch>,
        drop_months: &BTreeSet<String>,
        report: &mut UpdateReport,
    ) -> Result<(), StateError> {
        let schema = state_schema(table);
        let stored_parts = self.parts(table, bucket);
        let new_rows = concat(&schema, &new_rows)?;
        // The stored copies' order keys and months, by event id (only those columns are read).
        let mut stored: HashMap<String, ((i64, i32, i32), String)> = HashMap::new();
        let mut any_dropped_month = false;
        for part in &stored_parts {
            for b in read_columns(
                part,
                &[
                    "event_id",
                    "ingested_at",
                    "observed_on",
                    "reported_on",
                    "month",
                ],
            )? {
                let ids = b.column(0).as_string::<i32>();
                let ing = b.column(1).as_primitive::<TimestampMillisecondType>();
                let obs = b.column(2).as_primitive::<Date32Type>();
                let rep = b.column(3).as_primitive::<Date32Type>();
                let month = b.column(4).as_string::<i32>();
                for i in 0..b.num_rows() {
                    if drop_months.contains(month.value(i)) {
                        any_dropped_month = true;
                        continue;
                    }
                    stored.insert(
                        ids.value(i).to_string(),
                        (
                            (ing.value(i), obs.value(i), rep.value(i)),
                            month.value(i).to_string(),
                        ),
                    );
                }
            }
        }
        // The new rows' best copy of each event, and whether it beats a stored one. Every
        // losing copy's month is remembered (see `Manifest::shadowed`).
        let mut best: HashMap<&str, (usize, (i64, i32, i32))> = HashMap::new();
        let mut replaces_stored = false;
        let mut losers: BTreeSet<String> = BTreeSet::new();
        if let Some(b) = &new_rows {
            let ids = b
                .column_by_name("event_id")
                .expect("state schema")
                .as_string::<i32>();
            let months = b
                .column_by_name("month")
                .expect("state schema")
                .as_string::<i32>();
            let order = order_keys(b);
            for (i, key) in order.into_iter().enumerate() {
                let id = ids.value(i);
                if let Some((old, old_month)) = stored.get(id) {
                    if key >= *old {
                        report.duplicates += 1;
                        losers.insert(months.value(i).to_string());
                        continue;
                    }
                    replaces_stored = true;
                    losers.insert(old_month.clone());
                }
                match best.get(id) {
                    Some((_, k)) if *k <= key => {
                        report.duplicates += 1;
                        losers.insert(months.value(i).to_string());
                    }
                    Some((j, _)) => {
                        report.duplicates += 1;
                        losers.insert(months.value(*j).to_string());
                        best.insert(id, (i, key));
                    }
                    None => {
                        best.insert(id, (i, key));
                    }
                }
            }
        }
        if !losers.is_empty() {
            self.manifest
                .shadowed
                .entry(table.name().to_string())
                .or_default()
                .extend(losers);
        }
        let mut keep: Vec<u32> = best.values().map(|(i, _)| *i as u32).collect();
        keep.sort_unstable();
        let added = match &new_rows {
            Some(b) => Some(take_rows(b, &keep)?),
            None => None,
        };
        let rewrite = any_dropped_month || replaces_stored || stored_parts.len() + 1 > MAX_PARTS;
        if !rewrite {
            let Some(added) = added.filter(|b| b.num_rows() > 0) else {
                return Ok(());
            };
            report.events_added += added.num_rows() as u64;
            let part = self.write_part(table, bucket, &added)?;
            self.manifest
                .parts
                .entry(table.name().to_string())
                .or_default()
                .entry(bucket)
                .or_default()
                .push(part);
            return Ok(());
        }
        // Rewrite: every stored row outside the dropped months, less those an earlier copy
        // replaces, plus the added rows, as one part.
        let replaced: BTreeSet<&str> = match &new_rows {
            Some(b) => {
                let ids = b
                    .column_by_name("event_id")
                    .expect("state schema")
                    .as_string::<i32>();
                keep.iter()
                    .map(|&i| ids.value(i as usize))
                    .filter(|id| stored.contains_key(*id))
                    .collect()
            }
            None => BTreeSet::new(),
        };
        report.replaced += replaced.len() as u64;
        let mut all = Vec::new();
        for part in &stored_parts {
            for b in read_all(std::slice::from_ref(part))? {
                let ids = b
                    .column_by_name("event_id")
                    .expect("state schema")
                    .as_string::<i32>();
                let month = b
                    .column_by_name("month")
                    .expect("state schema")
                    .as_string::<i32>();
                let rows: Vec<u32> = (0..b.num_rows())
                    .filter(|&i| {
                        !drop_months.contains(month.value(i)) && !replaced.contains(ids.value(i))
                    })
                    .map(|i| i as u32)
                    .collect();
                all.push(take_rows(&b, &rows)?);
            }
        }
        if let Some(added) = added {
            report.events_added += (added.num_rows() - replaced.len()) as u64;
            all.push(added);
        }
        if stored_parts.len() + 1 > MAX_PARTS {
            report.buckets_merged += 1;
        }
        let merged = concat(&schema, &all)?;
        let now = now_secs();
        let old: Vec<String> = self
            .manifest
            .parts
            .get(table.name())
            .and_then(|b| b.get(&bucket))
            .cloned()
            .unwrap_or_default();
        let mut names = Vec::new();
        if let Some(merged) = merged.filter(|b| b.num_rows() > 0) {
            names.push(self.write_part(table, bucket, &merged)?);
        }
        self.manifest
            .retired
            .extend(old.into_iter().map(|p| (p, now)));
        let parts = self
            .manifest
            .parts
            .entry(table.name().to_string())
            .or_default();
        if names.is_empty() {
            parts.remove(&bucket);
        } else {
            parts.insert(bucket, names);
        }
        Ok(())
    }

    /// Writes rows as a new part of a bucket, sorted by `observed_on` then household; returns
    /// its name relative to the state folder.
    fn write_part(
        &self,
        table: Table,
        bucket: u32,
        rows: &RecordBatch,
    ) -> Result<String, StateError> {
        let sorted = sort_rows(rows)?;
        let rel = format!(
            "{}/bucket={bucket:04}/{}",
            table.name(),
            crate::lake::new_part_name()
        );
        let dest = self.root.join(&rel);
        crate::lake::write_parquet_atomic_rows(&dest, &[sorted], ROW_GROUP_ROWS)?;
        Ok(rel)
    }

    fn write_manifest(&self) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(&self.manifest).expect("manifest serializes");
        crate::lake::write_bytes_atomic(&self.root.join("manifest.json"), &bytes)?;
        Ok(())
    }

    /// Removes Parquet files under the state folder that neither the manifest nor the retired
    /// list names: leftovers of a crash before a manifest was written.
    fn remove_unnamed(&self) -> Result<(), StateError> {
        let mut named: BTreeSet<PathBuf> = self
            .manifest
            .parts
            .values()
            .flat_map(|b| b.values().flatten())
            .map(|p| self.root.join(p))
            .collect();
        named.extend(self.manifest.retired.iter().map(|(p, _)| self.root.join(p)));
        let folders = SIGNAL_TABLES.iter().map(|t| t.name()).chain([HOUSEHOLDS]);
        for folder in folders {
            let dir = self.root.join(folder);
            for bucket_dir in list(&dir)? {
                for file in list(&bucket_dir)? {
                    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                    let leftover = name.as_deref().is_some_and(|n| {
                        n.ends_with(".partial")
                            || (n.ends_with(".parquet") && !named.contains(&file))
                    });
                    if leftover {
                        std::fs::remove_file(&file).map_err(io_err(&file))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn purge_retired_before(&mut self, cutoff: i64) -> Result<usize, StateError> {
        let (old, young): (Vec<_>, Vec<_>) = std::mem::take(&mut self.manifest.retired)
            .into_iter()
            .partition(|(_, t)| *t <= cutoff);
        for (p, _) in &old {
            let path = self.root.join(p);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        self.manifest.retired = young;
        Ok(old.len())
    }
}

/// Routes rows to buckets; past [`ROUTE_BUFFER_ROWS`] they wait in temporary files.
struct Router {
    dir: PathBuf,
    buckets: u32,
    held: BTreeMap<u32, Vec<RecordBatch>>,
    held_rows: usize,
    /// Rows held in memory before they are spilled ([`ROUTE_BUFFER_ROWS`]).
    buffer_rows: usize,
    spilled: BTreeMap<u32, Vec<PathBuf>>,
    seq: usize,
}

impl Router {
    fn new(root: &Path, name: &str, buckets: u32) -> Result<Router, StateError> {
        let dir = root.join(format!(".incoming-{name}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(Router {
            dir,
            buckets,
            held: BTreeMap::new(),
            held_rows: 0,
            buffer_rows: ROUTE_BUFFER_ROWS,
            spilled: BTreeMap::new(),
            seq: 0,
        })
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<(), StateError> {
        let ids = batch
            .column_by_name("household_id")
            .expect("state schema")
            .as_string::<i32>();
        let mut rows: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for i in 0..batch.num_rows() {
            rows.entry(bucket_of(ids.value(i), self.buckets))
                .or_default()
                .push(i as u32);
        }
        for (bucket, idx) in rows {
            self.held_rows += idx.len();
            self.held
                .entry(bucket)
                .or_default()
                .push(take_rows(batch, &idx)?);
        }
        if self.held_rows > self.buffer_rows {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes the held rows to temporary files, one per bucket, as Arrow IPC: uncompressed and
    /// not synced, since they only live until the buckets are folded (a crash before the
    /// manifest is written leaves nothing an update relies on; the next one removes the folder
    /// and reads the lake files again). With Parquet, its encodings and two fsyncs a file, a
    /// first build at 1 million households took 14.4 s instead of 9.8 s.
    fn spill(&mut self) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        for (bucket, batches) in std::mem::take(&mut self.held) {
            let path = self.dir.join(format!("{bucket:04}-{:06}.arrow", self.seq));
            self.seq += 1;
            let file = File::create(&path).map_err(io_err(&path))?;
            let schema = batches
                .first()
                .map(|b| b.schema())
                .unwrap_or_else(|| Arc::new(Schema::empty()));
            let mut writer = FileWriter::try_new(std::io::BufWriter::new(file), &schema)
                .map_err(arrow_err(&path))?;
            for b in &batches {
                writer.write(b).map_err(arrow_err(&path))?;
            }
            writer.finish().map_err(arrow_err(&path))?;
            self.spilled.entry(bucket).or_default().push(path);
        }
        self.held_rows = 0;
        Ok(())
    }

    /// Each touched bucket's incoming rows, as files (spilled) or in memory (held).
    fn finish(&mut self) -> Result<BTreeMap<u32, Vec<Incoming>>, StateError> {
        let mut out: BTreeMap<u32, Vec<Incoming>> = BTreeMap::new();
        for (bucket, files) in std::mem::take(&mut self.spilled) {
            out.entry(bucket)
                .or_default()
                .extend(files.into_iter().map(Incoming::File));
        }
        for (bucket, batches) in std::mem::take(&mut self.held) {
            out.entry(bucket)
                .or_default()
                .extend(batches.into_iter().map(Incoming::Rows));
        }
        Ok(out)
    }

    fn cleanup(&self) -> Result<(), StateError> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        }
        Ok(())
    }
}

/// Rows waiting to be folded into a bucket.
enum Incoming {
    File(PathBuf),
    Rows(RecordBatch),
}

trait Source {
    fn batches(&self) -> Result<Vec<RecordBatch>, StateError>;
}

impl Source for Incoming {
    fn batches(&self) -> Result<Vec<RecordBatch>, StateError> {
        match self {
            Incoming::Rows(b) => Ok(vec![b.clone()]),
            Incoming::File(p) => {
                let file = File::open(p).map_err(io_err(p))?;
                FileReader::try_new(std::io::BufReader::new(file), None)
                    .map_err(arrow_err(p))?
                    .map(|b| b.map_err(arrow_err(p)))
                    .collect()
            }
        }
    }
}

impl Source for PathBuf {
    fn batches(&self) -> Result<Vec<RecordBatch>, StateError> {
        let corrupt = |message: String| StateError::Corrupt {
            path: self.clone(),
            message,
        };
        parquet_batches(self, corrupt)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(arrow_err(self))
    }
}

/// A Parquet file's batches of 65,536 rows, read as they are needed; `damaged` says what a file
/// that cannot be opened as Parquet means (and what to do) for the caller.
fn parquet_batches(
    path: &Path,
    damaged: impl Fn(String) -> StateError,
) -> Result<datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader, StateError> {
    let file = File::open(path).map_err(io_err(path))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| damaged(e.to_string()))
}

fn read_all<S: Source>(sources: &[S]) -> Result<Vec<RecordBatch>, StateError> {
    let mut out = Vec::new();
    for s in sources {
        out.extend(s.batches()?);
    }
    Ok(out)
}

/// Reads only the named columns of a part, in that order.
fn read_columns(path: &Path, names: &[&str]) -> Result<Vec<RecordBatch>, StateError> {
    let corrupt = |message: String| StateError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(io_err(path))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(e.to_string()))?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), names.to_vec());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| corrupt(e.to_string()))?;
    let mut out = Vec::new();
    for b in reader {
        let b = b.map_err(arrow_err(path))?;
        let cols: Result<Vec<ArrayRef>, StateError> = names
            .iter()
            .map(|n| {
                b.column_by_name(n)
                    .cloned()
                    .ok_or_else(|| corrupt(format!("no `{n}` column")))
            })
            .collect();
        let fields: Vec<Field> = names
            .iter()
            .map(|n| {
                b.schema()
                    .field_with_name(n)
                    .map(|f| f.clone())
                    .map_err(|e| corrupt(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        out.push(
            RecordBatch::try_new(Arc::new(Schema::new(fields)), cols?).map_err(arrow_err(path))?,
        );
    }
    Ok(out)
}

/// A lake batch as state rows: [`LEFT_OUT`] dropped, `month` added.
fn to_state_batch(
    table: Table,
    batch: &RecordBatch,
    month: &str,
    path: &Path,
) -> Result<RecordBatch, StateError> {
    let schema = state_schema(table);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        if f.name() == "month" {
            columns.push(Arc::new(StringArray::from(vec![month; batch.num_rows()])));
        } else {
            let col = batch
                .column_by_name(f.name())
                .ok_or_else(|| StateError::Corrupt {
                    path: path.to_path_buf(),
                    message: format!("lake file has no `{}` column", f.name()),
                })?;
            columns.push(col.clone());
        }
    }
    RecordBatch::try_new(schema, columns).map_err(arrow_err(path))
}

/// `(ingested_at, observed_on, reported_on)` of every row: the smallest is the copy kept.
fn order_keys(b: &RecordBatch) -> Vec<(i64, i32, i32)> {
    let ing = b
        .column_by_name("ingested_at")
        .expect("state schema")
        .as_primitive::<TimestampMillisecondType>();
    let obs = b
        .column_by_name("observed_on")
        .expect("state schema")
        .as_primitive::<Date32Type>();
    let rep = b
        .column_by_name("reported_on")
        .expect("state schema")
        .as_primitive::<Date32Type>();
    (0..b.num_rows())
        .map(|i| (ing.value(i), obs.value(i), rep.value(i)))
        .collect()
}

fn take_rows(b: &RecordBatch, rows: &[u32]) -> Result<RecordBatch, StateError> {
    let idx = UInt32Array::from(rows.to_vec());
    let columns: Result<Vec<ArrayRef>, _> = b
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &idx, None))
        .collect();
    RecordBatch::try_new(b.schema(), columns.map_err(arrow_err(Path::new("state")))?)
        .map_err(arrow_err(Path::new("state")))
}

fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Option<RecordBatch>, StateError> {
    if batches.is_empty() {
        return Ok(None);
    }
    concat_batches(schema, batches)
        .map(Some)
        .map_err(arrow_err(Path::new("state")))
}

fn sort_rows(b: &RecordBatch) -> Result<RecordBatch, StateError> {
    let cols = ["observed_on", "household_id", "event_id"]
        .iter()
        .map(|n| SortColumn {
            values: b.column_by_name(n).expect("state schema").clone(),
            options: None,
        })
        .collect::<Vec<_>>();
    let idx = lexsort_to_indices(&cols, None).map_err(arrow_err(Path::new("state")))?;
    take_rows(b, idx.values())
}

/// `month=2026-10/part-….parquet` → `2026-10`.
fn month_of_file(rel: &str) -> Option<String> {
    rel.split('/')
        .next()
        .and_then(|d| d.strip_prefix("month="))
        .map(str::to_string)
}

/// A bucket count for a first build: the lake's signals over [`EVENTS_PER_BUCKET`], rounded up
/// to a power of two (Parquet footers only, no data read).
fn auto_buckets(lake: &Lake) -> Result<u32, StateError> {
    let mut rows = 0u64;
    for table in SIGNAL_TABLES {
        for path in lake.table_files(table)? {
            rows += lake.file_rows(&path)?;
        }
    }
    let want = rows.div_ceil(EVENTS_PER_BUCKET).max(1);
    Ok(want.next_power_of_two().min(4096) as u32)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, StateError> {
    match std::fs::read_dir(dir) {
        Ok(r) => r
            .map(|e| e.map(|e| e.path()).map_err(io_err(dir)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Holds `state/state.lock` exclusively while alive.
struct StateLock(#[allow(dead_code)] File);

fn lock(root: &Path) -> Result<StateLock, StateError> {
    let p = root.join("state.lock");
    crate::lake::exclusive_lock(&p)
        .map(StateLock)
        .map_err(io_err(&p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::UInt32Type;

    #[test]
    fn buckets_are_stable_and_spread() {
        // Part of the on-disk layout: these values must never change.
        assert_eq!(bucket_of("h-000001", 16), bucket_of("h-000001", 16));
        assert_eq!(bucket_of("anything", 1), 0);
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[bucket_of(&format!("H{i:07}"), 8) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800 && c < 1200), "{counts:?}");
    }

    #[test]
    fn the_state_leaves_free_text_out_and_keeps_the_month() {
        let s = state_schema(Table::CouncilReport);
        assert!(s.field_with_name("note").is_err());
        assert!(s.field_with_name("month").is_ok());
        assert!(s.field_with_name("reported_on").is_ok());
    }

    /// Past its buffer the router spills to temporary files; what it hands back per bucket is
    /// every row routed there, in the order routed, spilled or held alike.
    #[test]
    fn routed_rows_come_back_by_bucket_in_order_through_spills() {
        let dir = tempfile::tempdir().unwrap();
        let mut router = Router::new(dir.path(), "t", 4).unwrap();
        router.buffer_rows = 5;
        let schema = Arc::new(Schema::new(vec![
            Field::new("household_id", DataType::Utf8, false),
            Field::new("n", DataType::UInt32, false),
        ]));
        let ids: Vec<String> = (0..40).map(|i| format!("H{:03}", i % 13)).collect();
        for chunk in (0..40u32).collect::<Vec<_>>().chunks(7) {
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(
                        chunk
                            .iter()
                            .map(|&i| ids[i as usize].clone())
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(UInt32Array::from(chunk.to_vec())),
                ],
            )
            .unwrap();
            router.add(&batch).unwrap();
        }
        assert!(router.seq > 0, "the tiny buffer made it spill");
        let mut seen = 0;
        for (bucket, incoming) in router.finish().unwrap() {
            let rows: Vec<u32> = read_all(&incoming)
                .unwrap()
                .iter()
                .flat_map(|b| b.column(1).as_primitive::<UInt32Type>().values().to_vec())
                .collect();
            let expected: Vec<u32> = (0..40u32)
                .filter(|&i| bucket_of(&ids[i as usize], 4) == bucket)
                .collect();
            assert_eq!(rows, expected, "bucket {bucket}");
            seen += rows.len();
        }
        assert_eq!(seen, 40);
        router.cleanup().unwrap();
    }

    #[test]
    fn month_of_a_lake_file() {
        assert_eq!(
            month_of_file("month=2026-10/part-1.parquet").as_deref(),
            Some("2026-10")
        );
        assert_eq!(month_of_file("part-1.parquet"), None);
    }
}
