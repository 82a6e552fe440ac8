//! Where a lake's files live: a folder on this machine, or an S3-compatible object store
//! (`s3://bucket/prefix`) that a cluster's executors and several ingest processes share.
//!
//! The lake's rules are the same on both ([`super`]); how each is kept differs:
//!
//! | rule | folder | object store |
//! |---|---|---|
//! | a reader sees a whole file or none | write under a hidden name, fsync, rename | one `PUT` is atomic |
//! | a written file never replaces another | unique names | unique names and `If-None-Match: *` |
//! | one writer at a time checks keys and adds files | `flock` on `.write.lock` | a lease object changed only with `If-Match` |
//! | a writer learns whether anyone wrote since | generation number in the lock file | generation number in the lease object |
//!
//! The data directory records where its lake is in `lake-location` (written by `lantern lake
//! use`), so every command and every stage that opens the data directory finds the same lake.

use std::path::{Path, PathBuf};

/// The file, inside a data directory, that names an object-store lake. Absent: the lake is the
/// folder `<data>/lake`.
pub const LOCATION_FILE: &str = "lake-location";

/// Where a lake is, as an operator writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A folder.
    Local(PathBuf),
    /// `s3://bucket/prefix[?option=value&…]`: the options are the object store's settings
    /// other than credentials (`endpoint`, `region`, `allow_http`, `skip_signature`, …), which
    /// otherwise come from the standard `AWS_*` environment variables; credentials come only
    /// from the environment (or the machine's role), never from a file.
    S3 {
        bucket: String,
        prefix: String,
        options: Vec<(String, String)>,
    },
}

/// Settings that must not be written into `lake-location`.
const SECRET_OPTIONS: [&str; 4] = [
    "access_key_id",
    "secret_access_key",
    "session_token",
    "token",
];

impl Location {
    /// Parses `s3://bucket[/prefix]` or a folder path.
    pub fn parse(text: &str) -> Result<Location, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("s3://") {
            let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!(
                    "`{text}` names no bucket: write s3://BUCKET/PREFIX"
                ));
            }
            let mut options = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(format!("`{pair}` in `{text}` is not option=value"));
                };
                let bare = key.strip_prefix("aws_").unwrap_or(key);
                if SECRET_OPTIONS.contains(&bare) {
                    return Err(format!(
                        "`{key}` is a credential: set it in the AWS_* environment of each \
                         process, not in the lake location (which is kept in a plain file)"
                    ));
                }
                options.push((key.to_string(), value.to_string()));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
                options,
            });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "`{text}`: the lake can be a folder or s3://BUCKET/PREFIX, not a {scheme}:// URL"
            ));
        }
        if text.is_empty() {
            return Err("an empty lake location".into());
        }
        Ok(Location::Local(PathBuf::from(text)))
    }

    /// The location a data directory records, or its own `lake` folder.
    pub fn of_data_dir(data_dir: &Path) -> Result<Location, String> {
        let file = data_dir.join(LOCATION_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => Location::parse(&text).map_err(|e| format!("{}: {e}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Location::Local(data_dir.join("lake")))
            }
            Err(e) => Err(format!("cannot read {}: {e}", file.display())),
        }
    }

    /// Records `location` as the lake of `data_dir` (the folder `<data>/lake` is recorded by
    /// removing the file).
    pub fn record(data_dir: &Path, location: &Location) -> Result<(), std::io::Error> {
        let file = data_dir.join(LOCATION_FILE);
        match location {
            Location::Local(p) if p == &data_dir.join("lake") => {
                match std::fs::remove_file(&file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
            other => {
                std::fs::create_dir_all(data_dir)?;
                super::write_bytes_atomic(&file, format!("{other}\n").as_bytes())
                    .map_err(std::io::Error::other)
            }
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 {
                bucket,
                prefix,
                options,
            } => {
                write!(f, "s3://{bucket}")?;
                if !prefix.is_empty() {
                    write!(f, "/{prefix}")?;
                }
                for (i, (k, v)) in options.iter().enumerate() {
                    write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(feature = "s3")]
pub use object::{s3_store, Lease, ObjectLake};

#[cfg(feature = "s3")]
mod object {
    use std::future::Future;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use futures::TryStreamExt;
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::path::Path as Key;
    use object_store::{
        ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
    };
    use serde::{Deserialize, Serialize};

    use crate::lake::LakeError;

    /// How long a writer's lease on the lake lasts before another writer may take it: a
    /// writer that dies holding it blocks the others this long at most. A flush or a
    /// compaction holds it for seconds.
    const LEASE: Duration = Duration::from_secs(120);
    /// How long a writer waits for a held lease before it gives up with an error.
    const WAIT: Duration = Duration::from_secs(600);
    const LOCK_OBJECT: &str = "_write_lock.json";
    /// `PUT`s a flush keeps in flight at once.
    const PUTS_AT_ONCE: usize = 8;

    /// An S3-compatible bucket and prefix holding a lake. Its calls run on a runtime of their
    /// own, so the lake's synchronous interface works from any thread, a Tokio worker
    /// included.
    #[derive(Debug)]
    pub struct ObjectLake {
        store: Arc<dyn ObjectStore>,
        bucket: String,
        prefix: String,
        /// Always `Some` until dropped.
        runtime: Option<tokio::runtime::Runtime>,
    }

    impl Drop for ObjectLake {
        /// A lake may be dropped inside an async command, where dropping a runtime the usual
        /// way (waiting for its threads) is not allowed; nothing of ours is left running on
        /// it by then.
        fn drop(&mut self) {
            if let Some(rt) = self.runtime.take() {
                rt.shutdown_background();
            }
        }
    }

    fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> LakeError {
        LakeError::Store {
            what: what.to_string(),
            message: e.to_string(),
        }
    }

    /// The client of an S3 bucket: the `AWS_*` environment, then `options` (which win). Nothing
    /// is sent until the first call. The lake and the cluster's executors build it alike.
    pub fn s3_store(
        bucket: &str,
        options: &[(String, String)],
    ) -> Result<Arc<dyn ObjectStore>, LakeError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in options {
            let key: AmazonS3ConfigKey = key
                .parse()
                .map_err(|e| err(format!("option `{key}` of s3://{bucket}"), e))?;
            builder = builder.with_config(key, value);
        }
        let store = builder
            .build()
            .map_err(|e| err(format!("s3://{bucket}"), e))?;
        Ok(Arc::new(store))
    }

    impl ObjectLake {
        /// Connects to `s3://bucket/prefix` ([`s3_store`]).
        pub fn open(
            bucket: &str,
            prefix: &str,
            options: &[(String, String)],
        ) -> Result<ObjectLake, LakeError> {
            let store = s3_store(bucket, options)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("lake-store")
                .enable_all()
                .build()
                .map_err(|e| err("the object store's runtime", e))?;
            Ok(ObjectLake {
                store,
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                runtime: Some(runtime),
            })
        }

        pub fn store(&self) -> Arc<dyn ObjectStore> {
            self.store.clone()
        }

        pub fn bucket(&self) -> &str {
            &self.bucket
        }

        /// The key prefix, as the path the lake's methods join table and month folders to.
        pub fn root(&self) -> PathBuf {
            PathBuf::from(&self.prefix)
        }

        /// Runs `f` on the store's runtime and waits for it.
        fn block<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let runtime = self.runtime.as_ref().expect("set until dropped");
            runtime.spawn(async move {
                let _ = tx.send(f.await);
            });
            rx.recv()
                .expect("the store's runtime runs every task it is given")
        }

        fn key(path: &Path) -> Key {
            Key::from(path.to_string_lossy().as_ref())
        }

        /// What is directly under `dir`: "folders" and objects.
        fn list(&self, dir: &Path) -> Result<object_store::ListResult, LakeError> {
            let store = self.store.clone();
            let key = Self::key(dir);
            self.block(async move { store.list_with_delimiter(Some(&key)).await })
                .map_err(|e| err(dir.display(), e))
        }

        /// The names of the "folders" directly under `dir`.
        pub fn list_dirs(&self, dir: &Path) -> Result<Vec<String>, LakeError> {
            Ok(self
                .list(dir)?
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_string))
                .collect())
        }

        /// The objects directly under `dir`, as paths.
        pub fn list_files(&self, dir: &Path) -> Result<Vec<PathBuf>, LakeError> {
            Ok(self
                .list(dir)?
                .objects
                .iter()
                .map(|o| PathBuf::from(o.location.as_ref()))
                .collect())
        }

        /// Every object under `dir`, at any depth.
        pub fn list_all(&self, dir: &Path) -> Result<Vec<PathBuf>, LakeError> {
            Ok(self
                .list_deep(dir)?
                .iter()
                .map(|o| PathBuf::from(o.location.as_ref()))
                .collect())
        }

        fn list_deep(&self, dir: &Path) -> Result<Vec<object_store::ObjectMeta>, LakeError> {
            let store = self.store.clone();
            let key = Self::key(dir);
            self.block(async move { store.list(Some(&key)).try_collect::<Vec<_>>().await })
                .map_err(|e| err(dir.display(), e))
        }

        /// The objects under `dir`, at any depth, last written more than `age` ago.
        pub fn list_older(&self, dir: &Path, age: Duration) -> Result<Vec<PathBuf>, LakeError> {
            let cutoff = chrono::Utc::now()
                - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::zero());
            Ok(self
                .list_deep(dir)?
                .iter()
                .filter(|o| o.last_modified < cutoff)
                .map(|o| PathBuf::from(o.location.as_ref()))
                .collect())
        }

        pub fn get(&self, path: &Path) -> Result<bytes::Bytes, LakeError> {
            let store = self.store.clone();
            let key = Self::key(path);
            self.block(async move { store.get(&key).await?.bytes().await })
                .map_err(|e| err(path.display(), e))
        }

        /// Writes new objects, up to [`PUTS_AT_ONCE`] at a time (one flush writes a file per
        /// month partition it touches, and each `PUT` to a remote store is a round trip); each
        /// fails if an object already has its name, so no file is ever replaced by accident.
        /// On an error some objects may be written: the caller acknowledges nothing, and their
        /// records are recognised by their keys when delivered again.
        pub fn create_all(&self, files: Vec<(PathBuf, Vec<u8>)>) -> Result<(), LakeError> {
            use futures::StreamExt;
            let store = self.store.clone();
            let results: Vec<(PathBuf, object_store::Result<_>)> = self.block(async move {
                futures::stream::iter(files)
                    .map(|(path, bytes)| {
                        let store = store.clone();
                        async move {
                            let key = Self::key(&path);
                            let put = store
                                .put_opts(
                                    &key,
                                    PutPayload::from(bytes),
                                    PutOptions::from(PutMode::Create),
                                )
                                .await;
                            (path, put)
                        }
                    })
                    .buffer_unordered(PUTS_AT_ONCE)
                    .collect()
                    .await
            });
            for (path, put) in results {
                put.map_err(|e| err(path.display(), e))?;
            }
            Ok(())
        }

        pub fn delete(&self, path: &Path) -> Result<(), LakeError> {
            let store = self.store.clone();
            let key = Self::key(path);
            match self.block(async move { store.delete(&key).await }) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(err(path.display(), e)),
            }
        }

        fn lock_key(&self) -> Key {
            Self::key(&self.root().join(LOCK_OBJECT))
        }

        /// Takes the lake's write lease, waiting while another writer holds an unexpired one.
        pub fn lock(self: &Arc<Self>) -> Result<Lease, LakeError> {
            let holder = format!(
                "{}-{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            );
            let started = Instant::now();
            let mut pause = Duration::from_millis(20);
            loop {
                match self.try_lock(&holder)? {
                    Ok(lease) => return Ok(lease),
                    Err(held) => {
                        if pause == Duration::from_millis(20) {
                            tracing::info!(
                                holder = %held,
                                "waiting for the lake's write lock (another writer holds it; \
                                 a writer that died releases it when its lease ends)"
                            );
                        }
                        if started.elapsed() > WAIT {
                            return Err(err(
                                format!("s3://{}/{}", self.bucket, self.lock_key()),
                                format!(
                                    "the lake's write lock has been held by {held} for over {} s; \
                                     if that writer is gone its lease ends within {} s",
                                    WAIT.as_secs(),
                                    LEASE.as_secs()
                                ),
                            ));
                        }
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                }
            }
        }

        /// One attempt: the lease, or the name of who holds it.
        fn try_lock(self: &Arc<Self>, holder: &str) -> Result<Result<Lease, String>, LakeError> {
            let key = self.lock_key();
            let store = self.store.clone();
            let k = key.clone();
            let current = self.block(async move {
                match store.get(&k).await {
                    Ok(r) => {
                        let version = UpdateVersion {
                            e_tag: r.meta.e_tag.clone(),
                            version: r.meta.version.clone(),
                        };
                        r.bytes().await.map(|b| Some((b, version)))
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            });
            let current = current.map_err(|e| err(key.as_ref(), e))?;
            let now = now_ms();
            let (state, mode) = match current {
                None => (LockState::default(), PutMode::Create),
                Some((bytes, version)) => {
                    let state: LockState = serde_json::from_slice(&bytes)
                        .map_err(|e| err(key.as_ref(), format!("unreadable lock object: {e}")))?;
                    if let Some(other) = &state.holder {
                        if state.until_ms > now {
                            return Ok(Err(other.clone()));
                        }
                        tracing::warn!(
                            holder = %other,
                            "taking over the lake's write lock: its holder's lease ran out"
                        );
                    }
                    (state, PutMode::Update(version))
                }
            };
            let mut lease = Lease {
                lake: self.clone(),
                holder: holder.to_string(),
                state,
                version: None,
            };
            match lease.put(mode, Some(holder.to_string()))? {
                true => Ok(Ok(lease)),
                false => Ok(Err("another writer, just now".into())),
            }
        }
    }

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// The lease object's content.
    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    struct LockState {
        generation: u64,
        holder: Option<String>,
        until_ms: u64,
    }

    /// A writer's hold on an object-store lake, released when dropped. Every change to the
    /// lease object is conditional on the version this writer last saw, so a writer whose
    /// lease was taken over (it stalled past [`LEASE`]) finds out at its next change, before
    /// it writes files, instead of writing alongside the new holder.
    #[derive(Debug)]
    pub struct Lease {
        lake: Arc<ObjectLake>,
        holder: String,
        state: LockState,
        version: Option<UpdateVersion>,
    }

    impl Lease {
        pub fn generation(&self) -> u64 {
            self.state.generation
        }

        /// Raises the generation by one (and renews the lease).
        pub fn advance(&mut self) -> Result<u64, LakeError> {
            self.state.generation = self.state.generation.wrapping_add(1);
            self.renew()?;
            Ok(self.state.generation)
        }

        /// Extends the lease by its full length from now; an error if another writer took it
        /// meanwhile. Long work under the lock (compaction, erasure) renews it as it goes, so
        /// a writer that is working is never taken over.
        pub fn renew(&mut self) -> Result<(), LakeError> {
            let version = self.version.clone().map(PutMode::Update);
            let mode = version.unwrap_or(PutMode::Create);
            if !self.put(mode, Some(self.holder.clone()))? {
                return Err(err(
                    self.lake.lock_key().as_ref(),
                    "this writer's lease on the lake ran out and another writer took it; \
                     nothing was written, and what this writer holds is delivered again",
                ));
            }
            Ok(())
        }

        /// Writes the lease object with `mode`; false if the condition failed.
        fn put(&mut self, mode: PutMode, holder: Option<String>) -> Result<bool, LakeError> {
            self.state.holder = holder;
            self.state.until_ms = now_ms() + LEASE.as_millis() as u64;
            let body = serde_json::to_vec(&self.state).expect("plain struct");
            let key = self.lake.lock_key();
            let store = self.lake.store.clone();
            let k = key.clone();
            let put = self.lake.block(async move {
                store
                    .put_opts(&k, PutPayload::from(body), PutOptions::from(mode))
                    .await
            });
            match put {
                Ok(r) => {
                    self.version = Some(UpdateVersion {
                        e_tag: r.e_tag,
                        version: r.version,
                    });
                    Ok(true)
                }
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(err(key.as_ref(), e)),
            }
        }
    }

    impl Drop for Lease {
        fn drop(&mut self) {
            if let Some(v) = self.version.clone() {
                if let Err(e) = self.put(PutMode::Update(v), None) {
                    tracing::warn!(error = %e, "could not release the lake's write lock; it ends with its lease");
                }
            }
        }
    }
}
