//! The lake: Parquet files under `<data.dir>/lake`, one folder per table, one sub-folder per
//! month, laid out for DataFusion and for anyone with pandas, polars or DuckDB:
//!
//! ```text
//! lake/utility_arrears/month=2026-10/part-1763856000000-4242-000001.parquet
//! lake/council_report/month=2026-10/...
//! lake/service_gap/month=2026-10/...
//! lake/outcomes/month=2026-10/...           (by decided_on)
//! ```
//!
//! Signals are partitioned by the month they were observed, so a feature window reads only the
//! months it covers, and retention drops whole months.
//!
//! **Durability.** A file is written under a temporary name, fsynced, renamed into place and
//! the folder fsynced. Readers list only `*.parquet`, so they never see half a file, and a crash
//! leaves at worst a `.partial` file that compaction removes.
//!
//! **Exactly-once effect.** A re-sent event has the same key ([`Table::key_columns`]) and the
//! same partition date, so it lands in the same partition. Before writing, [`LakeWriter`] drops
//! records whose key is already in the partition, using the keys read back from the partition's
//! own files. Because those keys come from the durable files, not from memory, a crash between
//! writing a file and committing Kafka offsets cannot produce a duplicate: the re-delivered
//! records are recognised on the next run. Memory stays bounded: only the key sets of recently
//! used partitions are cached (16-byte fingerprints), up to a budget of keys
//! (`ingest.dedup_cache_keys`); records of a partition outside the cache are checked against
//! its files at the next flush (see [`LakeWriter`]).

pub mod reference;
mod schema;
pub mod sql;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Date32Type;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::reader::ChunkReader;

pub use schema::{date_from_days, days_since_epoch, to_batch, LakeRecord, Table};

/// Why the lake could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(
        "lake I/O on {path}: {source}; check that the data directory is writable and not full"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lake file {path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("object-store lake, {what}: {message}; check the AWS_* settings (endpoint, credentials, region) and that the bucket exists")]
    Store { what: String, message: String },
    #[error(
        "the lake cannot be opened: {0}; `lantern lake use` shows where this data directory's \
         lake is and changes it"
    )]
    Unavailable(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn pq_err(path: &Path) -> impl FnOnce(datafusion::parquet::errors::ParquetError) -> LakeError + '_ {
    move |e| LakeError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A table and a month: the unit of partitioning, deduplication and compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub table: Table,
    pub year: i32,
    pub month: u32,
}

impl Partition {
    pub fn of(table: Table, date: NaiveDate) -> Partition {
        Partition {
            table,
            year: date.year(),
            month: date.month(),
        }
    }

    /// `month=YYYY-MM`, the Hive-style folder name.
    pub fn folder(&self) -> String {
        format!("month={:04}-{:02}", self.year, self.month)
    }
}

/// A 128-bit fingerprint of a record key. Two SipHash passes with different prefixes; the
/// chance that two of a billion distinct keys collide is about 10^-21.
pub fn fingerprint(key: &str) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    (0u8, key).hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (1u8, key).hash(&mut b);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

/// A lake: its root (a folder, or the key prefix in an object store) and how to reach it.
///
/// File paths the lake hands out and takes back ([`Lake::files`], [`Lake::read_file`]) are
/// filesystem paths for a folder lake and object keys (`prefix/table/month=…/part-….parquet`)
/// for an object-store lake: pass them back to the lake, not to `std::fs`.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
    data_dir: PathBuf,
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Local,
    #[cfg(feature = "s3")]
    Object(Arc<store::ObjectLake>),
    /// The data directory names a lake this process cannot open; every call says why (an
    /// error at first use, never a silent fallback to another lake).
    Unavailable(Arc<str>),
}

impl Lake {
    /// The lake of a data directory: the one `lantern lake use` recorded there
    /// ([`store::LOCATION_FILE`]), or the folder `<data>/lake`.
    pub fn in_data_dir(data_dir: &Path) -> Lake {
        let unavailable = |why: String| Lake {
            root: data_dir.join("lake"),
            data_dir: data_dir.to_path_buf(),
            backend: Backend::Unavailable(why.into()),
        };
        match store::Location::of_data_dir(data_dir) {
            Ok(store::Location::Local(root)) => Lake {
                root,
                data_dir: data_dir.to_path_buf(),
                backend: Backend::Local,
            },
            #[cfg(feature = "s3")]
            Ok(store::Location::S3 {
                bucket,
                prefix,
                options,
            }) => match store::ObjectLake::open(&bucket, &prefix, &options) {
                Ok(object) => Lake {
                    root: object.root(),
                    data_dir: data_dir.to_path_buf(),
                    backend: Backend::Object(Arc::new(object)),
                },
                Err(e) => unavailable(e.to_string()),
            },
            #[cfg(not(feature = "s3"))]
            Ok(location @ store::Location::S3 { .. }) => unavailable(format!(
                "{} is on an object store ({location}) and this lantern was built without \
                 object-store support: build it with `--features s3` (or `ballista`)",
                data_dir.display()
            )),
            Err(why) => unavailable(why),
        }
    }

    /// The lake's root: a folder, or the key prefix inside the bucket.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The data directory whose lake this is.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the lake is, for people: a folder path or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) if self.root.as_os_str().is_empty() => {
                format!("s3://{}", o.bucket())
            }
            #[cfg(feature = "s3")]
            Backend::Object(o) => format!("s3://{}/{}", o.bucket(), self.root.display()),
            _ => self.root.display().to_string(),
        }
    }

    /// True for a lake in an object store.
    pub fn is_object_store(&self) -> bool {
        !matches!(self.backend, Backend::Local | Backend::Unavailable(_))
    }

    fn check(&self) -> Result<(), LakeError> {
        match &self.backend {
            Backend::Unavailable(why) => Err(LakeError::Unavailable(why.to_string())),
            _ => Ok(()),
        }
    }

    /// The names of the folders directly under `dir`.
    fn dir_names(&self, dir: &Path) -> Result<Vec<String>, LakeError> {
        self.check()?;
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => o.list_dirs(dir),
            _ => Ok(entries(dir)?
                .iter()
                .filter(|p| p.is_dir())
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect()),
        }
    }

    /// The files directly under `dir`.
    fn dir_files(&self, dir: &Path) -> Result<Vec<PathBuf>, LakeError> {
        self.check()?;
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => o.list_files(dir),
            _ => entries(dir),
        }
    }

    /// Reads a lake file with `read` (a Parquet reader over the file, or over its bytes
    /// fetched from the object store).
    fn with_file<T>(
        &self,
        path: &Path,
        read: impl FnOnce(ParquetRecordBatchReaderBuilder<Source>) -> Result<T, LakeError>,
    ) -> Result<T, LakeError> {
        self.check()?;
        let source = match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => Source::Bytes(o.get(path)?),
            _ => Source::File(File::open(path).map_err(io_err(path))?),
        };
        read(ParquetRecordBatchReaderBuilder::try_new(source).map_err(pq_err(path))?)
    }

    /// The number of rows of a lake file (its footer only).
    pub fn file_rows(&self, path: &Path) -> Result<u64, LakeError> {
        self.with_file(path, |b| {
            Ok(b.metadata().file_metadata().num_rows().max(0) as u64)
        })
    }

    /// Removes one lake file.
    pub fn remove_file(&self, path: &Path) -> Result<(), LakeError> {
        self.check()?;
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => o.delete(path),
            _ => std::fs::remove_file(path).map_err(io_err(path)),
        }
    }

    /// Writes new files, each one whole or not at all ([`write_parquet_group`] for a folder;
    /// one conditional `PUT` each in an object store, which refuses to replace a file).
    pub fn write_files(&self, files: &[(PathBuf, RecordBatch)]) -> Result<(), LakeError> {
        self.check()?;
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => {
                let mut encoded = Vec::with_capacity(files.len());
                for (dest, batch) in files {
                    let mut bytes = Vec::new();
                    write_parquet_to(
                        &mut bytes,
                        dest,
                        std::slice::from_ref(batch),
                        LAKE_ROW_GROUP_ROWS,
                    )?;
                    encoded.push((dest.clone(), bytes));
                }
                o.create_all(encoded)
            }
            _ => write_parquet_group(files),
        }
    }

    /// Writes a scratch file for a cluster's executors to read (a feature slice's cohort) in
    /// the lake's object store, under `<prefix>/_scratch/`, and returns its URL and its key (to
    /// remove it with [`Lake::remove_file`]); `None` for a folder lake, whose scratch files
    /// stay in the data directory. Makes `ctx` able to read it.
    pub fn write_scratch(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        name: &str,
        batch: &RecordBatch,
    ) -> Result<Option<(String, PathBuf)>, LakeError> {
        self.check()?;
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => {
                let key = self.root.join(SCRATCH_PREFIX).join(name);
                self.write_files(&[(key.clone(), batch.clone())])?;
                let url = self.register_store(ctx, o)?;
                Ok(Some((format!("{url}/{}", key.display()), key)))
            }
            _ => {
                let _ = (ctx, name, batch);
                Ok(None)
            }
        }
    }

    /// Removes scratch files older than `age` from the lake's object store (those a killed
    /// process left; a running night's are minutes old). Returns how many.
    pub fn sweep_scratch(&self, age: std::time::Duration) -> Result<usize, LakeError> {
        self.check()?;
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => {
                let old = o.list_older(&self.root.join(SCRATCH_PREFIX), age)?;
                for f in &old {
                    o.delete(f)?;
                }
                Ok(old.len())
            }
            _ => {
                let _ = age;
                Ok(0)
            }
        }
    }

    /// The scratch files in the lake's object store now (none for a folder lake).
    pub fn scratch_files(&self) -> Result<Vec<PathBuf>, LakeError> {
        self.check()?;
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => o.list_all(&self.root.join(SCRATCH_PREFIX)),
            _ => Ok(Vec::new()),
        }
    }

    /// Registers the lake's bucket in `ctx`; returns its URL (`s3://bucket`).
    #[cfg(feature = "s3")]
    fn register_store(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        o: &store::ObjectLake,
    ) -> Result<String, LakeError> {
        let base = format!("s3://{}", o.bucket());
        let url = datafusion::execution::object_store::ObjectStoreUrl::parse(&base)
            .map_err(|e| LakeError::Unavailable(e.to_string()))?;
        ctx.register_object_store(url.as_ref(), o.store());
        Ok(base)
    }

    /// The table's folder as a URL DataFusion lists (`file:///…/` or `s3://bucket/…/`), after
    /// making sure `ctx` can reach it.
    pub(crate) fn table_url(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        table: Table,
    ) -> Result<String, LakeError> {
        self.check()?;
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => {
                let base = self.register_store(ctx, o)?;
                Ok(format!("{base}/{}/", self.table_dir(table).display()))
            }
            _ => {
                let _ = ctx;
                let dir = self.table_dir(table);
                std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                let dir = dir.canonicalize().map_err(io_err(&dir))?;
                Ok(format!("{}/", dir.display()))
            }
        }
    }

    pub fn table_dir(&self, table: Table) -> PathBuf {
        self.root.join(table.name())
    }

    pub fn partition_dir(&self, p: &Partition) -> PathBuf {
        self.table_dir(p.table).join(p.folder())
    }

    /// The partitions a table has on disk, in order.
    pub fn partitions(&self, table: Table) -> Result<Vec<Partition>, LakeError> {
        let mut out = Vec::new();
        for name in self.dir_names(&self.table_dir(table))? {
            let Some(ym) = name.strip_prefix("month=") else {
                continue;
            };
            let Some((y, m)) = ym.split_once('-') else {
                continue;
            };
            if let (Ok(year), Ok(month)) = (y.parse(), m.parse()) {
                out.push(Partition { table, year, month });
            }
        }
        out.sort();
        Ok(out)
    }

    /// The finished Parquet files of a partition, in name order (which is write order).
    pub fn files(&self, p: &Partition) -> Result<Vec<PathBuf>, LakeError> {
        let mut out: Vec<PathBuf> = self
            .dir_files(&self.partition_dir(p))?
            .into_iter()
            .filter(|path| path.extension().is_some_and(|x| x == "parquet"))
            .collect();
        out.sort();
        Ok(out)
    }

    /// All finished files of a table.
    pub fn table_files(&self, table: Table) -> Result<Vec<PathBuf>, LakeError> {
        let mut out = Vec::new();
        for p in self.partitions(table)? {
            out.extend(self.files(&p)?);
        }
        Ok(out)
    }

    /// Reads every record batch of a file.
    pub fn read_file(&self, path: &Path) -> Result<Vec<RecordBatch>, LakeError> {
        self.with_file(path, |builder| {
            builder
                .with_batch_size(64 * 1024)
                .build()
                .map_err(pq_err(path))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| LakeError::Parquet {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })
        })
    }

    /// The fingerprints of every key already stored in a partition, sorted, each once.
    pub fn partition_keys(&self, p: &Partition) -> Result<Vec<u128>, LakeError> {
        Ok(self.partition_keys_and_files(p)?.0)
    }

    /// As [`Lake::partition_keys`], with the names of the files read, so a writer can tell
    /// later which files another process added.
    fn partition_keys_and_files(
        &self,
        p: &Partition,
    ) -> Result<(Vec<u128>, HashSet<std::ffi::OsString>), LakeError> {
        let mut keys = Vec::new();
        let mut names = HashSet::new();
        for path in self.files(p)? {
            self.file_keys(p.table, &path, &mut keys)?;
            names.extend(path.file_name().map(|n| n.to_os_string()));
        }
        keys.sort_unstable();
        keys.dedup();
        keys.shrink_to_fit();
        Ok((keys, names))
    }

    /// Appends the key fingerprints of one file (reading only the key columns).
    fn file_keys(&self, table: Table, path: &Path, keys: &mut Vec<u128>) -> Result<(), LakeError> {
        self.with_file(path, |builder| {
            let mask =
                ProjectionMask::columns(builder.parquet_schema(), table.key_columns().to_vec());
            let reader = builder
                .with_projection(mask)
                .with_batch_size(64 * 1024)
                .build()
                .map_err(pq_err(path))?;
            for batch in reader {
                let batch = batch.map_err(|e| LakeError::Parquet {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
                for i in 0..batch.num_rows() {
                    keys.push(fingerprint(&key_at(table, &batch, i)));
                }
            }
            Ok(())
        })
    }

    /// The lake's write lock: every writer's flush and compaction hold it (an exclusive `flock`
    /// on `lake/.write.lock`; in an object store, a lease object, [`store::ObjectLake::lock`]),
    /// so that ingest processes sharing the lake check a partition's keys and add their file
    /// as one step, and compaction never removes a writer's file in flight. It serializes
    /// only the writing of files, not the consuming and checking.
    pub fn write_lock(&self) -> Result<WriteLock, LakeError> {
        self.check()?;
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => Ok(WriteLock::Lease(o.lock()?)),
            _ => {
                std::fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
                let path = self.root.join(".write.lock");
                let file = exclusive_lock(&path).map_err(io_err(&path))?;
                Ok(WriteLock::File { file, path })
            }
        }
    }

    /// Writes one Parquet file into a partition, atomically and durably. Returns its path.
    pub fn write_file(&self, p: &Partition, batch: &RecordBatch) -> Result<PathBuf, LakeError> {
        let dest = self.partition_dir(p).join(unique_file_name());
        self.write_files(&[(dest.clone(), batch.clone())])?;
        Ok(dest)
    }
}

/// Writes `bytes` to `dest` the same way as [`write_parquet_atomic`]: a hidden `.partial`
/// file, fsynced, renamed into place, the folder fsynced. For the per-district lists and pages.
pub fn write_bytes_atomic(dest: &Path, bytes: &[u8]) -> Result<(), LakeError> {
    use std::io::Write;
    let (dir, tmp) = partial_path(dest)?;
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, dest).map_err(io_err(dest))?;
    sync_dir(&dir)
}

/// Makes every file under `dir` durable: one `syncfs` of the filesystem on Linux (a night's
/// set is hundreds of small files), an fsync per file and folder elsewhere.
pub fn sync_tree(dir: &Path) -> Result<(), LakeError> {
    #[cfg(target_os = "linux")]
    {
        syncfs(&dir.join("."))
    }
    #[cfg(not(target_os = "linux"))]
    {
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let p = entry.map_err(io_err(dir))?.path();
            if p.is_dir() {
                sync_tree(&p)?;
            } else {
                File::open(&p)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(&p))?;
            }
        }
        sync_dir(dir)
    }
}

/// Puts the folder `staging` (complete and durable: see [`sync_tree`]) in the place of `dest`
/// in one step, so a reader, or a process restarted after a crash, sees the whole old set of
/// files or the whole new one, never a mixture. On Linux the two folders are exchanged with
/// `renameat2(RENAME_EXCHANGE)` and the old set, now under the staging name, is removed; a crash
/// before that removal leaves only a stale staging folder, which no reader looks at. Elsewhere
/// `dest` is moved aside first, which leaves a moment with no `dest` at all.
pub fn replace_dir(staging: &Path, dest: &Path) -> Result<(), LakeError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    if !dest.exists() {
        std::fs::rename(staging, dest).map_err(io_err(dest))?;
        return sync_dir(parent);
    }
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|e| io_err(p)(std::io::Error::other(e)))
        };
        let (a, b) = (c(staging)?, c(dest)?);
        // SAFETY: both paths are NUL-terminated strings that outlive the call; AT_FDCWD makes
        // them relative to the working directory as any path is.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc != 0 {
            return Err(io_err(dest)(std::io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let aside = staging.with_extension("old");
        std::fs::rename(dest, &aside).map_err(io_err(dest))?;
        std::fs::rename(staging, dest).map_err(io_err(dest))?;
        std::fs::rename(&aside, staging).map_err(io_err(staging))?;
    }
    sync_dir(parent)?;
    crate::faults::crash_point("replace_dir.exchanged");
    // `staging` now holds the old set.
    std::fs::remove_dir_all(staging).map_err(io_err(staging))
}

/// Writes batches (one schema) as one Parquet file at `dest`, atomically and durably: a hidden
/// `.partial` file is written, fsynced, renamed into place and the folder fsynced, so a reader
/// sees the whole file or none, even after a crash or a power cut. The households reference and
/// referral lists are written this way; lake partitions by [`write_parquet_group`].
pub fn write_parquet_atomic(dest: &Path, batches: &[RecordBatch]) -> Result<(), LakeError> {
    write_parquet_atomic_rows(dest, batches, LAKE_ROW_GROUP_ROWS)
}

/// [`write_parquet_atomic`] with row groups of at most `row_group_rows` rows: smaller groups
/// let a reader skip more of a sorted file by its statistics (the signal state does).
pub fn write_parquet_atomic_rows(
    dest: &Path,
    batches: &[RecordBatch],
    row_group_rows: usize,
) -> Result<(), LakeError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = write_parquet_partial(dest, batches, row_group_rows)?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, dest).map_err(io_err(dest))?;
    sync_dir(dir)?;
    Ok(())
}

/// Writes several Parquet files with the guarantees of [`write_parquet_atomic`], but with two
/// flushes of the whole filesystem (`syncfs`) instead of two fsyncs per file: all files are
/// written under temporary names, the filesystem is flushed, the files are renamed into place,
/// and the filesystem is flushed again. A crash before the second flush leaves some files
/// visible and others still `.partial`; the caller acknowledges nothing until this returns, so
/// the records of the missing files are delivered again and those of the visible ones are
/// recognised by their keys. One ingest batch touches dozens of month partitions, and on this
/// machine's disk the per-file fsyncs were a fifth of ingest time. Elsewhere than Linux each
/// file is fsynced as in [`write_parquet_atomic`].
pub fn write_parquet_group(files: &[(PathBuf, RecordBatch)]) -> Result<(), LakeError> {
    let Some((first, _)) = files.first() else {
        return Ok(());
    };
    #[cfg(target_os = "linux")]
    {
        let mut partials = Vec::with_capacity(files.len());
        for (dest, batch) in files {
            partials.push(write_parquet_partial(
                dest,
                std::slice::from_ref(batch),
                LAKE_ROW_GROUP_ROWS,
            )?);
        }
        syncfs(first)?;
        for ((dest, _), tmp) in files.iter().zip(&partials) {
            std::fs::rename(tmp, dest).map_err(io_err(dest))?;
        }
        syncfs(first)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = first;
        for (dest, batch) in files {
            write_parquet_atomic(dest, std::slice::from_ref(batch))?;
        }
        Ok(())
    }
}

/// Flushes every pending write of the filesystem that holds `path` (data and metadata, renames
/// included) and waits for it; a write-back error since the last call is reported.
#[cfg(target_os = "linux")]
fn syncfs(path: &Path) -> Result<(), LakeError> {
    use std::os::fd::AsRawFd;
    let dir = path.parent().unwrap_or(Path::new("."));
    let handle = File::open(dir).map_err(io_err(dir))?;
    // SAFETY: `handle` is an open file descriptor for the whole call; syncfs only reads it.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(io_err(dir)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The folder of `dest`, created if missing, and the hidden `.partial` name a file is written
/// under before it is renamed to `dest`. Compaction removes such leftovers of a crash.
fn partial_path(dest: &Path) -> Result<(PathBuf, PathBuf), LakeError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.partial"));
    Ok((dir.to_path_buf(), tmp))
}

/// Writes batches as a Parquet file at `dest` with `.partial` added to a hidden name, without
/// fsyncing it, and returns that name.
fn write_parquet_partial(
    dest: &Path,
    batches: &[RecordBatch],
    row_group_rows: usize,
) -> Result<PathBuf, LakeError> {
    let (_, tmp) = partial_path(dest)?;
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let buf = write_parquet_to(
        BufWriter::with_capacity(1 << 20, file),
        &tmp,
        batches,
        row_group_rows,
    )?;
    buf.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
    Ok(tmp)
}

/// Writes batches as one Parquet file (the lake's compression and row groups) into `out`, and
/// returns it. `path` names the file in errors.
fn write_parquet_to<W: std::io::Write + Send>(
    out: W,
    path: &Path,
    batches: &[RecordBatch],
    row_group_rows: usize,
) -> Result<W, LakeError> {
    let Some(first) = batches.first() else {
        return Err(LakeError::Parquet {
            path: path.to_path_buf(),
            message: "nothing to write (no batches)".into(),
        });
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let mut writer =
        ArrowWriter::try_new(out, first.schema(), Some(props)).map_err(pq_err(path))?;
    for batch in batches {
        writer.write(batch).map_err(pq_err(path))?;
    }
    writer.into_inner().map_err(pq_err(path))
}

/// What a lake file is read from: the file itself, or its bytes from the object store.
enum Source {
    File(File),
    #[cfg(feature = "s3")]
    Bytes(bytes::Bytes),
}

impl datafusion::parquet::file::reader::Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::File(f) => datafusion::parquet::file::reader::Length::len(f),
            #[cfg(feature = "s3")]
            Source::Bytes(b) => b.len() as u64,
        }
    }
}

impl ChunkReader for Source {
    type T = Box<dyn std::io::Read + Send>;

    fn get_read(&self, start: u64) -> datafusion::parquet::errors::Result<Self::T> {
        match self {
            Source::File(f) => Ok(Box::new(ChunkReader::get_read(f, start)?)),
            #[cfg(feature = "s3")]
            Source::Bytes(b) => Ok(Box::new(ChunkReader::get_read(b, start)?)),
        }
    }

    fn get_bytes(
        &self,
        start: u64,
        length: usize,
    ) -> datafusion::parquet::errors::Result<bytes::Bytes> {
        match self {
            Source::File(f) => ChunkReader::get_bytes(f, start, length),
            #[cfg(feature = "s3")]
            Source::Bytes(b) => ChunkReader::get_bytes(b, start, length),
        }
    }
}

/// The entries of a folder; none if it does not exist yet.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, LakeError> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    read.map(|e| e.map(|e| e.path()).map_err(io_err(dir)))
        .collect()
}

/// fsyncs a folder so a rename in it survives a power cut.
fn sync_dir(dir: &Path) -> Result<(), LakeError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Opens (creating it if needed) `path` and takes an exclusive `flock` on it, released when the
/// returned file is dropped: how the audit log and the signal state serialize their writers
/// across processes. Elsewhere than Linux the file is opened without a lock.
pub fn exclusive_lock(path: &Path) -> std::io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `f` is an open descriptor for the whole call; flock only takes a lock on it,
        // released when the file is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(f)
}

/// The lake's write lock, held until dropped ([`Lake::write_lock`]). The lock file also holds
/// the lake's write generation: a number every writer raises when it adds or replaces files,
/// so a writer that finds the number it left knows no one else wrote since and need not list
/// the partitions again. Written before the flush's second `syncfs`, it is durable with the
/// files it counts.
pub enum WriteLock {
    File {
        file: File,
        path: PathBuf,
    },
    #[cfg(feature = "s3")]
    Lease(store::Lease),
}

impl WriteLock {
    /// The generation now (0 for a lake no writer has counted yet).
    pub fn generation(&mut self) -> Result<u64, LakeError> {
        use std::io::{Read, Seek};
        let (file, path) = match self {
            WriteLock::File { file, path } => (file, path),
            #[cfg(feature = "s3")]
            WriteLock::Lease(lease) => return Ok(lease.generation()),
        };
        let mut bytes = Vec::new();
        file.seek(std::io::SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(io_err(path))?;
        Ok(bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0))
    }

    /// Keeps the lock through long work (compaction, erasure): an object-store lease is
    /// extended (an error if another writer took it); a `flock` needs nothing.
    pub fn renew(&mut self) -> Result<(), LakeError> {
        match self {
            WriteLock::File { .. } => Ok(()),
            #[cfg(feature = "s3")]
            WriteLock::Lease(lease) => lease.renew(),
        }
    }

    /// Raises the generation by one; returns the new number.
    pub fn advance(&mut self) -> Result<u64, LakeError> {
        use std::io::{Seek, Write};
        let next = self.generation()?.wrapping_add(1);
        match self {
            WriteLock::File { file, path } => file
                .seek(std::io::SeekFrom::Start(0))
                .and_then(|_| file.write_all(&next.to_le_bytes()))
                .map_err(io_err(path))?,
            #[cfg(feature = "s3")]
            WriteLock::Lease(lease) => return lease.advance(),
        }
        Ok(next)
    }
}

/// Where, under an object-store lake's prefix, a cluster's scratch files go.
pub const SCRATCH_PREFIX: &str = "_scratch";

/// Rows per row group in lake files.
const LAKE_ROW_GROUP_ROWS: usize = 256 * 1024;

/// A new file name, unique across processes and restarts, sorting by write time (as
/// [`Lake::write_file`] names lake files).
pub fn new_part_name() -> String {
    unique_file_name()
}

/// `part-<unix ms>-<pid>-<seq>.parquet`: unique across processes and restarts, and sorting by
/// name sorts by write time.
fn unique_file_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "part-{ms:014}-{:07}-{:06}.parquet",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The key of row `i` of a batch of `table` (which may hold only the key columns).
fn key_at(table: Table, batch: &RecordBatch, i: usize) -> String {
    let string = |name: &str| -> String {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .map(|c| c.value(i).to_string())
            .unwrap_or_default()
    };
    match table {
        Table::Outcomes => {
            let days = batch
                .column_by_name("decided_on")
                .and_then(|c| c.as_primitive_opt::<Date32Type>())
                .filter(|c| c.is_valid(i))
                .map(|c| c.value(i))
                .unwrap_or_default();
            format!(
                "{}\u{1f}{}\u{1f}{}",
                string("referral_id"),
                string("outcome"),
                days
            )
        }
        _ => string("event_id"),
    }
}

/// `batch` without the rows whose `household_id` is `id` (every row, if the batch has no such
/// column), and how many went.
pub fn without_household(
    batch: &RecordBatch,
    id: &str,
) -> Result<(RecordBatch, u64), datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::array::BooleanArray;
    use datafusion::arrow::datatypes::DataType;
    let Some(col) = batch.column_by_name("household_id") else {
        return Ok((batch.clone(), 0));
    };
    let col = datafusion::arrow::compute::cast(col, &DataType::Utf8)?;
    let col = col.as_string::<i32>();
    let keep: BooleanArray = (0..col.len())
        .map(|i| Some(!(col.is_valid(i) && col.value(i) == id)))
        .collect();
    let kept = datafusion::arrow::compute::filter_record_batch(batch, &keep)?;
    let gone = (batch.num_rows() - kept.num_rows()) as u64;
    Ok((kept, gone))
}

/// What one flush wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    pub files: usize,
    pub records: u64,
    /// Records dropped because the partition already held their key.
    pub duplicates: u64,
}

/// The key fingerprints of one partition: those read back from its files, sorted (16 bytes a
/// key, the bulk), and those added since, in a hash set. Fresh keys are folded into the
/// sorted part as they accumulate, so the cache costs about 17 bytes a key rather than a hash
/// set's 30 or more, and more partitions fit the budget.
#[derive(Debug, Default)]
struct KeySet {
    stored: Vec<u128>,
    fresh: FingerprintSet,
    /// The partition's files whose keys are in the set: a file not among them was written by
    /// another process since, and is read at the next flush that touches the partition.
    files: HashSet<std::ffi::OsString>,
}

impl KeySet {
    fn len(&self) -> usize {
        self.stored.len() + self.fresh.len()
    }

    /// Adds a key; false if it was already there.
    fn insert(&mut self, fp: u128) -> bool {
        self.stored.binary_search(&fp).is_err() && self.fresh.insert(fp)
    }

    /// Folds the fresh keys into the sorted part once they are a sixteenth of it: a hash set
    /// costs about twice as much memory a key as the sorted array, so the cache stays close
    /// to 16 bytes a key. The fold sorts only the fresh keys and merges the two sorted runs.
    fn settle(&mut self) {
        if self.fresh.len() <= 1_024 || self.fresh.len() * 16 <= self.stored.len() {
            return;
        }
        let mut fresh: Vec<u128> = self.fresh.drain().collect();
        fresh.sort_unstable();
        let mut merged = Vec::with_capacity(self.stored.len() + fresh.len());
        let (mut a, mut b) = (self.stored.iter().peekable(), fresh.iter().peekable());
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            if x < y {
                merged.push(**x);
                a.next();
            } else {
                merged.push(**y);
                b.next();
            }
        }
        merged.extend(a);
        merged.extend(b);
        self.stored = merged;
        self.fresh.shrink_to_fit();
    }
}

/// Hashes a fingerprint by taking its low 64 bits: fingerprints are already uniformly spread,
/// so hashing them again (SipHash, the default) would only cost time.
#[derive(Debug, Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// Buffers records per partition and writes them as one file per partition on flush, dropping
/// records whose key the partition already holds.
///
/// Keys are checked in two ways. For a partition whose keys are cached, at once, in
/// [`LakeWriter::add`]. For any other, a record is checked against the batch at once and
/// against the partition's files at the next flush, which reads the partition's keys, drops the
/// repeats and then caches the keys if they fit the budget. Loading keys only at a flush, when
/// nothing is pending, means any cached partition may be evicted then, so the budget holds
/// however many partitions one batch touches (a household-ordered backfill touches every month
/// in every batch).
#[derive(Debug)]
pub struct LakeWriter {
    lake: Lake,
    pending: HashMap<Partition, Vec<LakeRecord>>,
    pending_count: usize,
    /// Cached key fingerprints per partition (those on disk plus those pending), with the
    /// number of the last flush whose batch touched the partition.
    keys: HashMap<Partition, (KeySet, u64)>,
    /// Fingerprints of the pending records of partitions whose keys are not cached: checked
    /// against the partition's files at the next flush.
    unverified: HashMap<Partition, FingerprintSet>,
    /// Flushes so far: the clock of the cache.
    flushes: u64,
    max_cached_keys: usize,
    /// The lake's write generation this writer left at its last flush: while the lake still
    /// shows it, no other process has written, and the cached keys are complete.
    generation: Option<u64>,
}

type FingerprintSet = HashSet<u128, std::hash::BuildHasherDefault<FingerprintHasher>>;

/// The default budget of cached key fingerprints: about 200 MB.
pub const DEFAULT_DEDUP_CACHE_KEYS: usize = 12_000_000;

impl LakeWriter {
    pub fn new(lake: Lake) -> LakeWriter {
        LakeWriter {
            lake,
            pending: HashMap::new(),
            pending_count: 0,
            keys: HashMap::new(),
            unverified: HashMap::new(),
            flushes: 0,
            max_cached_keys: DEFAULT_DEDUP_CACHE_KEYS,
            generation: None,
        }
    }

    /// Sets the budget of cached key fingerprints.
    pub fn with_cache_budget(mut self, max_cached_keys: usize) -> LakeWriter {
        self.max_cached_keys = max_cached_keys;
        self
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Records waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.pending_count
    }

    /// Adds a record unless its key is already pending, or stored in a partition whose keys
    /// are cached. Returns false for a duplicate. A record of a partition whose keys are not
    /// cached is checked against its files at the next flush, which reports the repeats it
    /// drops in [`FlushReport::duplicates`].
    pub fn add(&mut self, record: LakeRecord) -> Result<bool, LakeError> {
        let p = Partition::of(record.table(), record.partition_date());
        let fp = record.fingerprint();
        let new = match self.keys.get_mut(&p) {
            Some((keys, used)) => {
                *used = self.flushes;
                keys.insert(fp)
            }
            None => self.unverified.entry(p).or_default().insert(fp),
        };
        if new {
            self.pending.entry(p).or_default().push(record);
            self.pending_count += 1;
        }
        Ok(new)
    }

    /// Checks the pending records of partitions whose keys are not cached against their files,
    /// drops the repeats, and caches each partition's keys if they fit. Returns the records
    /// dropped. One partition's keys are in memory at a time, beyond the cache.
    fn verify_pending(&mut self) -> Result<u64, LakeError> {
        let mut dropped = 0;
        let mut parts: Vec<Partition> = self.unverified.keys().copied().collect();
        parts.sort();
        for p in parts {
            let mut fresh = self.unverified.remove(&p).expect("listed above");
            let (stored, files) = self.lake.partition_keys_and_files(&p)?;
            let repeats: FingerprintSet = fresh
                .iter()
                .filter(|fp| stored.binary_search(fp).is_ok())
                .copied()
                .collect();
            if !repeats.is_empty() {
                dropped += self.drop_pending(&p, &repeats);
                fresh.retain(|fp| !repeats.contains(fp));
            }
            let keys = KeySet {
                stored,
                fresh,
                files,
            };
            if self.make_room(keys.len()) {
                self.keys.insert(p, (keys, self.flushes));
            }
        }
        Ok(dropped)
    }

    /// For each cached partition with pending records, reads the keys of the files other
    /// processes added since its keys were read, and drops the pending records they hold.
    /// Returns the records dropped. Called under the lake's write lock.
    fn catch_up_cached(&mut self) -> Result<u64, LakeError> {
        let mut dropped = 0;
        let mut parts: Vec<Partition> = self
            .pending
            .keys()
            .filter(|p| self.keys.contains_key(p))
            .copied()
            .collect();
        parts.sort();
        for p in parts {
            let (keys, _) = self.keys.get_mut(&p).expect("filtered above");
            let mut theirs = Vec::new();
            for path in self.lake.files(&p)? {
                let Some(name) = path.file_name() else {
                    continue;
                };
                if keys.files.contains(name) {
                    continue;
                }
                self.lake.file_keys(p.table, &path, &mut theirs)?;
                keys.files.insert(name.to_os_string());
            }
            if theirs.is_empty() {
                continue;
            }
            let theirs: FingerprintSet = theirs.into_iter().collect();
            // Pending fingerprints are already in the set; the others join it now.
            keys.fresh.extend(theirs.iter().copied());
            dropped += self.drop_pending(&p, &theirs);
        }
        Ok(dropped)
    }

    /// Drops a partition's pending records whose key is in `stored` (found in the lake's
    /// files). Returns how many.
    fn drop_pending(&mut self, p: &Partition, stored: &FingerprintSet) -> u64 {
        let Some(records) = self.pending.get_mut(p) else {
            return 0;
        };
        let before = records.len();
        records.retain(|r| !stored.contains(&r.fingerprint()));
        let gone = before - records.len();
        if records.is_empty() {
            self.pending.remove(p);
        }
        self.pending_count -= gone;
        gone as u64
    }

    /// Evicts cached partitions not touched by the current batch, least recently used first,
    /// until `incoming` more keys fit the budget. False if they cannot fit: then the newcomer
    /// is not cached, and the partitions the batch is using stay. Under a cyclic pattern (every
    /// batch touching every month) this keeps a stable part of the months cached instead of
    /// evicting each one just before it is needed again.
    fn make_room(&mut self, incoming: usize) -> bool {
        loop {
            let cached: usize = self.keys.values().map(|(k, _)| k.len()).sum();
            if cached + incoming <= self.max_cached_keys {
                return true;
            }
            let victim = self
                .keys
                .iter()
                .filter(|(_, (_, used))| *used < self.flushes)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(p, _)| *p);
            match victim {
                Some(p) => {
                    self.keys.remove(&p);
                }
                None => return false,
            }
        }
    }

    /// Forgets every cached key, so that each partition is checked against its files again at
    /// the next flush. Another writer may have written to the lake since the keys were read:
    /// the ingest consumer calls this when the group moves partitions, because the events of a
    /// partition this process now owns may have been written by its previous owner after this
    /// process last read the keys. Pending records stay pending and are checked at the flush.
    pub fn forget_cached_keys(&mut self) {
        for (p, _) in self.keys.drain() {
            if let Some(records) = self.pending.get(&p) {
                let unverified = self.unverified.entry(p).or_default();
                unverified.extend(records.iter().map(|r| r.fingerprint()));
            }
        }
    }

    /// Writes every pending partition as one durable file. When this returns, everything added
    /// so far and not reported as a duplicate is on disk.
    ///
    /// Under the lake's write lock ([`Lake::write_lock`]) the pending records are checked
    /// against every file of their partitions, those another ingest process wrote included, and
    /// written: two processes holding the same re-sent event write it once.
    pub fn flush(&mut self) -> Result<FlushReport, LakeError> {
        // Nothing to write (records of an unverified partition are always pending too): no
        // lock, no listing.
        if self.pending_count == 0 {
            self.flushes += 1;
            return Ok(FlushReport::default());
        }
        let mut lock = self.lake.write_lock()?;
        // Another process wrote since this one's last flush: read what it added first.
        let caught_up = if self.generation == Some(lock.generation()?) {
            0
        } else {
            self.catch_up_cached()?
        };
        let mut report = FlushReport {
            duplicates: caught_up + self.verify_pending()?,
            ..FlushReport::default()
        };
        let mut parts: Vec<Partition> = self.pending.keys().copied().collect();
        parts.sort();
        let mut files = Vec::with_capacity(parts.len());
        for p in parts {
            let records = self.pending.remove(&p).expect("listed above");
            let refs: Vec<&LakeRecord> = records.iter().collect();
            let batch = to_batch(p.table, &refs).map_err(|e| LakeError::Parquet {
                path: self.lake.partition_dir(&p),
                message: e.to_string(),
            })?;
            report.files += 1;
            report.records += records.len() as u64;
            let name = unique_file_name();
            if let Some((keys, _)) = self.keys.get_mut(&p) {
                keys.files.insert(name.clone().into());
            }
            files.push((self.lake.partition_dir(&p).join(name), batch));
        }
        self.generation = Some(lock.advance()?);
        self.lake.write_files(&files)?;
        self.pending_count = 0;
        for (keys, _) in self.keys.values_mut() {
            keys.settle();
        }
        // Key sets grow as records arrive; trim back to the budget.
        self.flushes += 1;
        self.make_room(0);
        Ok(report)
    }
}

/// What compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactReport {
    pub partitions: usize,
    pub files_before: usize,
    pub files_after: usize,
    pub rows: u64,
    /// Rows dropped because an earlier file held the same key.
    pub duplicates_removed: u64,
    /// Leftover `.partial` files from interrupted writes, removed.
    pub partials_removed: usize,
}

impl Lake {
    /// Rewrites every partition holding more than `max_files` files as a single file, keeping
    /// the first copy of each key, and removes leftover `.partial` files. Safe to interrupt:
    /// the new file is complete before any old one is removed, and a reader or the
    /// deduplicating writer treats a key present in both as one record.
    pub fn compact(&self, max_files: usize) -> Result<CompactReport, LakeError> {
        // No writer's `.partial` file is removed, nor a file added, while this runs.
        let mut lock = self.write_lock()?;
        // Writers re-read the partitions at their next flush.
        lock.advance()?;
        let mut report = CompactReport::default();
        for table in Table::ALL {
            for p in self.partitions(table)? {
                lock.renew()?;
                report.partials_removed += self.remove_partials(&p)?;
                let files = self.files(&p)?;
                if files.len() <= max_files.max(1) {
                    continue;
                }
                let mut seen = HashSet::new();
                let mut kept: Vec<RecordBatch> = Vec::new();
                for f in &files {
                    for batch in self.read_file(f)? {
                        let mut mask = Vec::with_capacity(batch.num_rows());
                        for i in 0..batch.num_rows() {
                            let fresh = seen.insert(fingerprint(&key_at(table, &batch, i)));
                            if !fresh {
                                report.duplicates_removed += 1;
                            }
                            mask.push(fresh);
                        }
                        let mask = datafusion::arrow::array::BooleanArray::from(mask);
                        let filtered =
                            datafusion::arrow::compute::filter_record_batch(&batch, &mask)
                                .map_err(|e| LakeError::Parquet {
                                    path: f.clone(),
                                    message: e.to_string(),
                                })?;
                        if filtered.num_rows() > 0 {
                            kept.push(filtered);
                        }
                    }
                }
                let schema = table.schema();
                let merged =
                    datafusion::arrow::compute::concat_batches(&schema, &kept).map_err(|e| {
                        LakeError::Parquet {
                            path: self.partition_dir(&p),
                            message: e.to_string(),
                        }
                    })?;
                report.rows += merged.num_rows() as u64;
                self.write_file(&p, &merged)?;
                for f in &files {
                    self.remove_file(f)?;
                }
                if !self.is_object_store() {
                    sync_dir(&self.partition_dir(&p))?;
                }
                report.partitions += 1;
                report.files_before += files.len();
                report.files_after += 1;
            }
        }
        Ok(report)
    }

    /// Removes every row of a household from the lake, under the write lock: each file that
    /// names it (on `household_id`) is written again without those rows, under a new name, and
    /// then the old file is removed; a crash in between leaves both, which readers and writers
    /// treat as one copy of each key, and running it again finishes the job. Writers re-read
    /// the partitions at their next flush (the generation advances). Returns the rows removed
    /// and the files rewritten.
    pub fn erase_household(&self, household_id: &str) -> Result<(u64, Vec<PathBuf>), LakeError> {
        let mut lock = self.write_lock()?;
        let mut removed = 0;
        let mut rewritten = Vec::new();
        for table in Table::ALL {
            for p in self.partitions(table)? {
                lock.renew()?;
                for f in self.files(&p)? {
                    let mut kept = Vec::new();
                    let mut gone = 0;
                    for batch in self.read_file(&f)? {
                        let (batch, n) = without_household(&batch, household_id).map_err(|e| {
                            LakeError::Parquet {
                                path: f.clone(),
                                message: e.to_string(),
                            }
                        })?;
                        gone += n;
                        if batch.num_rows() > 0 {
                            kept.push(batch);
                        }
                    }
                    if gone == 0 {
                        continue;
                    }
                    if rewritten.is_empty() {
                        lock.advance()?;
                    }
                    if !kept.is_empty() {
                        let merged =
                            datafusion::arrow::compute::concat_batches(&kept[0].schema(), &kept)
                                .map_err(|e| LakeError::Parquet {
                                    path: f.clone(),
                                    message: e.to_string(),
                                })?;
                        self.write_file(&p, &merged)?;
                    }
                    self.remove_file(&f)?;
                    removed += gone;
                    rewritten.push(f);
                }
            }
        }
        Ok((removed, rewritten))
    }

    /// Deletes a whole month partition (retention), under the write lock. A folder is renamed
    /// aside first, so a crash leaves it whole or out of every reader's view; in an object
    /// store its files are deleted one by one, and a crash part way leaves the rest for the
    /// next run. Returns the files deleted.
    pub fn drop_partition(&self, p: &Partition) -> Result<usize, LakeError> {
        let mut lock = self.write_lock()?;
        lock.advance()?;
        let dir = self.partition_dir(p);
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::Object(o) => {
                let files = o.list_all(&dir)?;
                for f in &files {
                    o.delete(f)?;
                }
                Ok(files.len())
            }
            _ => {
                if !dir.exists() {
                    return Ok(0);
                }
                let n = entries(&dir)?.len();
                let aside = dir.with_file_name(format!(".{}.deleting", p.folder()));
                std::fs::rename(&dir, &aside).map_err(io_err(&dir))?;
                sync_dir(&self.table_dir(p.table))?;
                std::fs::remove_dir_all(&aside).map_err(io_err(&aside))?;
                Ok(n)
            }
        }
    }

    /// Removes a crash's `.partial` files older than an hour. An object store has none: an
    /// interrupted `PUT` leaves nothing behind.
    fn remove_partials(&self, p: &Partition) -> Result<usize, LakeError> {
        if self.is_object_store() {
            return Ok(0);
        }
        let mut n = 0;
        for path in entries(&self.partition_dir(p))? {
            let stale = path
                .file_name()
                .map(|n| n.to_string_lossy().ends_with(".partial"))
                .unwrap_or(false)
                && path
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 3600);
            if stale {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key is refused a second time whether it sits in the sorted part (read back or folded)
    /// or among the keys added since, and folding neither loses nor repeats keys.
    #[test]
    fn key_set_refuses_repeats_before_and_after_folding() {
        let mut stored: Vec<u128> = (0..10_000u128)
            .map(|i| fingerprint(&format!("old-{i}")))
            .collect();
        stored.sort_unstable();
        let mut keys = KeySet {
            stored,
            fresh: HashSet::default(),
            files: HashSet::new(),
        };
        assert!(
            !keys.insert(fingerprint("old-17")),
            "a stored key is a repeat"
        );
        for i in 0..5_000 {
            assert!(keys.insert(fingerprint(&format!("new-{i}"))));
        }
        assert!(
            !keys.insert(fingerprint("new-4")),
            "a fresh key is a repeat"
        );
        assert_eq!(keys.len(), 15_000);
        keys.settle();
        assert!(
            keys.fresh.is_empty(),
            "5,000 fresh keys over 10,000 stored are folded"
        );
        assert!(
            keys.stored.windows(2).all(|w| w[0] < w[1]),
            "sorted, each once"
        );
        assert_eq!(keys.len(), 15_000);
        assert!(
            !keys.insert(fingerprint("new-4")),
            "still a repeat after folding"
        );
        assert!(!keys.insert(fingerprint("old-9999")));
        assert!(keys.insert(fingerprint("newer")));
    }
}
