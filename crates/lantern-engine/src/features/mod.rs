//! Point-in-time household features, computed by DataFusion SQL over the lake.
//!
//! The definitions live in `pipelines/`, not here: `features.sql` computes raw values for every
//! `(household_id, as_of)` pair of a `cohort` table, `features.toml` lists the columns a model
//! uses, in order, with their imputation and reason code, and `cohort.sql` says who is screened
//! on a night. This module only plans and runs them and turns the result into a matrix.
//!
//! **One plan for many dates.** The cohort holds every pair at once (a training set has one
//! per past referral), and the query joins it with the events by household and filters each
//! event against its own row's `as_of`. So 12 dates cost one scan of the lake, not 12.
//!
//! **One code path.** Training, back-tests and nightly scoring all call [`FeatureEngine::stream`]
//! with their cohort; the values for a household and date do not depend on who asked or on
//! which other pairs were in the cohort (a test holds this).
//!
//! **No leakage.** The SQL admits an event for `(h, D)` only when `observed_on <= D` and
//! `reported_on <= D`, and outcomes only when decided before `D`.

pub mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use datafusion::arrow::array::{Array, AsArray, Date32Builder, RecordBatch, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Schema};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::engine::QueryEngine;
use futures::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::lake::{date_from_days, days_since_epoch, Table};
use state::{SignalState, StateError, SIGNAL_TABLES};

const EMBEDDED_SQL: &str = include_str!("../../../../pipelines/features.sql");
const EMBEDDED_COHORT: &str = include_str!("../../../../pipelines/cohort.sql");
const EMBEDDED_TOML: &str = include_str!("../../../../pipelines/features.toml");
const EMBEDDED_LABELS: &str = include_str!("../../../../pipelines/labels.sql");

/// Columns of `features.sql` that identify and describe a row rather than feed a model.
pub const KEY_COLUMNS: [&str; 6] = [
    "household_id",
    "as_of",
    "district_code",
    "dong_code",
    "household_type",
    "head_age_band",
];

/// Key columns a `features.sql` may leave out (older copies of `pipelines/` do): `disability`
/// (boolean, from the household reference) feeds the fairness audit, not the models.
pub const OPTIONAL_KEY_COLUMNS: [&str; 1] = ["disability"];

#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("{path}: {message}")]
    Catalogue { path: String, message: String },
    #[error(
        "features.sql and features.toml disagree: {detail}. Add the column to both, or remove it \
         from both (see pipelines/README.md)"
    )]
    Mismatch { detail: String },
    #[error(
        "feature query failed: {0}. If features.dir points at an edited copy of pipelines/, \
         the SQL there is the first suspect"
    )]
    Query(#[from] DataFusionError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(
        "{what} did not finish on the cluster at {engine} within {seconds} s; the cluster may be stuck: read the scheduler's and \
         executors' logs, restart them (scripts/ballista.sh stop/start, or your service \
         manager) and run the night again, or run it with --engine local \
         (features.cluster_query_timeout_secs sets the limit)"
    )]
    ClusterTimeout {
        engine: String,
        /// "a feature slice of N households and dates", or "a query".
        what: String,
        seconds: u64,
    },
}

/// Where the feature query reads the signals from (config `features.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalSource {
    /// The signal state ([`state`]), brought up to date with the lake before each query:
    /// deduplicated once, bucketed by household, so a slice reads only its bucket.
    #[default]
    State,
    /// The raw lake, deduplicated by every query (the full recomputation: the reference the
    /// state is tested and benchmarked against).
    Lake,
}

/// The SQL name of a signal table's deduplicated events.
pub fn events_table(table: Table) -> String {
    format!("{}_events", table.name())
}

/// Which events a query sees.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// Every household's.
    All,
    /// The `cohort` table's households (and, reading the state, only one bucket's files).
    Cohort(Option<u32>),
}

/// One model input column.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureDef {
    pub name: String,
    /// The value used when the query yields NULL (no event of that kind in the window).
    pub impute: f64,
    /// The reason code this feature's contribution counts towards.
    pub reason: String,
    /// `1`: a higher value never lowers the score; `-1`: never raises it; `0` (the default):
    /// free. Models that can honour it do (the gradient-boosted trees).
    #[serde(default)]
    pub monotone: i8,
    /// The protected attribute this feature describes (`disability`, `age_band`,
    /// `household_type`), if any: `[model.protected]` decides whether models may use it and
    /// whether caseworkers are shown it as a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<String>,
}

/// The labels of a reason code, for caseworkers (Korean) and researchers (English).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonLabel {
    pub ko: String,
    pub en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    lookback_days: u32,
    #[serde(default = "default_estimated_lag")]
    estimated_referral_lag_days: u32,
    features: Vec<FeatureDef>,
    reasons: BTreeMap<String, ReasonLabel>,
}

fn default_estimated_lag() -> u32 {
    30
}

/// The feature pipeline: the SQL, the cohort query and the catalogue.
#[derive(Debug, Clone)]
pub struct FeatureSpec {
    pub sql: String,
    pub cohort_sql: String,
    /// Training labels: past referrals with a decided outcome (`{before}` placeholder).
    pub labels_sql: String,
    pub lookback_days: u32,
    /// For an outcome whose referral no list holds (a legacy system's feed): its referral date
    /// is estimated as `decided_on` less this many days (`{estimated_lag_days}` in labels.sql).
    pub estimated_referral_lag_days: u32,
    pub features: Vec<FeatureDef>,
    pub reasons: BTreeMap<String, ReasonLabel>,
    /// Where it came from, for messages: `embedded` or a folder.
    pub origin: String,
}

impl FeatureSpec {
    /// The pipeline compiled into the binary (the repository's `pipelines/`).
    pub fn embedded() -> FeatureSpec {
        FeatureSpec::parse(
            EMBEDDED_SQL,
            EMBEDDED_COHORT,
            EMBEDDED_LABELS,
            EMBEDDED_TOML,
            "embedded pipelines/",
        )
        .expect("the embedded pipelines/ are valid (checked by tests)")
    }

    /// The pipeline in `dir` (a copy of `pipelines/` a researcher edited), or the embedded one
    /// when `dir` is empty.
    pub fn load(dir: &str) -> Result<FeatureSpec, FeatureError> {
        if dir.is_empty() {
            return Ok(FeatureSpec::embedded());
        }
        let read = |name: &str| -> Result<String, FeatureError> {
            let path = Path::new(dir).join(name);
            std::fs::read_to_string(&path).map_err(|e| FeatureError::Catalogue {
                path: path.display().to_string(),
                message: format!("{e}; features.dir must name a folder like pipelines/"),
            })
        };
        FeatureSpec::parse(
            &read("features.sql")?,
            &read("cohort.sql")?,
            &read("labels.sql")?,
            &read("features.toml")?,
            dir,
        )
    }

    fn parse(
        sql: &str,
        cohort: &str,
        labels: &str,
        toml_text: &str,
        origin: &str,
    ) -> Result<FeatureSpec, FeatureError> {
        let bad = |message: String| FeatureError::Catalogue {
            path: format!("{origin}/features.toml"),
            message,
        };
        let cat: Catalogue = toml::from_str(toml_text).map_err(|e| bad(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for f in &cat.features {
            if !seen.insert(f.name.as_str()) {
                return Err(bad(format!("feature `{}` is listed twice", f.name)));
            }
            if !(-1..=1).contains(&f.monotone) {
                return Err(bad(format!(
                    "feature `{}` has monotone = {}; use 1 (never lowers the score), -1 (never raises it) or 0",
                    f.name, f.monotone
                )));
            }
            if !cat.reasons.contains_key(&f.reason) {
                return Err(bad(format!(
                    "feature `{}` names reason `{}`, which has no [reasons.{}] labels",
                    f.name, f.reason, f.reason
                )));
            }
            if let Some(p) = &f.protected {
                if !crate::config::PROTECTED_ATTRIBUTES.contains(&p.as_str()) {
                    return Err(bad(format!(
                        "feature `{}` has protected = \"{p}\"; use one of {}",
                        f.name,
                        crate::config::PROTECTED_ATTRIBUTES.join(", ")
                    )));
                }
            }
            if KEY_COLUMNS.contains(&f.name.as_str()) {
                return Err(bad(format!("`{}` is a key column, not a feature", f.name)));
            }
        }
        if cat.lookback_days == 0 {
            return Err(bad("lookback_days must be at least 1".into()));
        }
        Ok(FeatureSpec {
            sql: sql.to_string(),
            cohort_sql: cohort.to_string(),
            labels_sql: labels.to_string(),
            lookback_days: cat.lookback_days,
            estimated_referral_lag_days: cat.estimated_referral_lag_days,
            features: cat.features,
            reasons: cat.reasons,
            origin: origin.to_string(),
        })
    }

    /// Each feature's monotone constraint, in model order.
    pub fn monotone(&self) -> Vec<i8> {
        self.features.iter().map(|f| f.monotone).collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// A short hash of the pipeline (the query, the look-back, the catalogue); a saved model
    /// records it and [`crate::model::Model::check_features`] refuses one that differs.
    pub fn fingerprint(&self) -> String {
        // What a model's parameters depend on: the query that computes the features, the
        // look-back, and the catalogue (names in order, imputation, reason codes). An edited
        // features.sql with the same column names is a different pipeline.
        let mut h = Sha256::new();
        h.update(self.sql.as_bytes());
        h.update([0u8]);
        h.update(self.lookback_days.to_le_bytes());
        for f in &self.features {
            h.update(f.name.as_bytes());
            h.update([0u8]);
            h.update(f.impute.to_le_bytes());
            h.update(f.reason.as_bytes());
            h.update([0u8]);
        }
        hex::encode(&h.finalize()[..8])
    }

    /// Labels of a reason code (features' codes and screening's own).
    pub fn reason_label(&self, code: &str) -> Option<&ReasonLabel> {
        self.reasons.get(code)
    }

    /// Fills the placeholders for the dates `first..=last`.
    fn render(&self, template: &str, first: NaiveDate, last: NaiveDate) -> String {
        let start = first
            .checked_sub_days(Days::new(self.lookback_days as u64))
            .unwrap_or(NaiveDate::MIN);
        template
            .replace("{window_start}", &format!("DATE '{start}'"))
            .replace("{window_end}", &format!("DATE '{last}'"))
            .replace("{month_start}", &start.format("%Y-%m").to_string())
            .replace("{month_end}", &last.format("%Y-%m").to_string())
            .replace("{lookback_days}", &self.lookback_days.to_string())
    }
}

/// One labelled past referral.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub household_id: String,
    /// The referral date: features are computed as of it.
    pub as_of: NaiveDate,
    pub referral_id: String,
    pub district_code: String,
    /// When the outcome was decided: a back-test fold may learn from it only after this day.
    pub decided_on: NaiveDate,
    /// 1: the visit confirmed a crisis.
    pub label: u8,
    /// Where the referral date comes from: `referral` (a list Lantern issued or imported) or
    /// `estimated` (no list holds the referral: `decided_on` less the configured lag).
    pub source: String,
    /// For a referral drawn by exploration: the probability it was drawn with (`None`: listed
    /// for certain).
    pub selection_probability: Option<f64>,
}

/// What identifies and describes one row of features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKey {
    pub household_id: String,
    pub as_of: NaiveDate,
    /// Where the most recent signal places the household; `None` when it has no signal in the
    /// look-back window.
    pub district_code: Option<String>,
    pub dong_code: Option<String>,
    pub household_type: Option<String>,
    pub head_age_band: Option<String>,
    /// From the household reference; `None` when the household is not in it (or the pipelines
    /// do not give it).
    pub disability: Option<bool>,
}

/// Features of many rows: row-major, `width` values per row, imputed (never NaN).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureBatch {
    pub keys: Vec<RowKey>,
    pub values: Vec<f32>,
    pub width: usize,
}

impl FeatureBatch {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }

    pub fn extend(&mut self, other: FeatureBatch) {
        self.width = other.width;
        self.keys.extend(other.keys);
        self.values.extend(other.values);
    }
}

/// Runs the feature pipeline over a data directory.
pub struct FeatureEngine {
    ctx: SessionContext,
    /// Where the plans run, and the settings every slice's session starts from.
    engine: QueryEngine,
    session_config: SessionConfig,
    spec: Arc<FeatureSpec>,
    data_dir: PathBuf,
    slice_pairs: usize,
    source: SignalSource,
    /// Bucket count for a first build of the state (0: from the lake's size).
    state_buckets: u32,
    /// Slices whose queries run at once; see [`FeatureEngine::with_slices_in_flight`].
    in_flight: usize,
    /// The lake of `data_dir`, opened once (an object-store lake's client and runtime are
    /// shared by every slice through its clones).
    lake: crate::lake::Lake,
    /// On a cluster, the longest a query may take; see [`FeatureEngine::with_cluster_timeout`].
    cluster_timeout: Option<std::time::Duration>,
}

/// (household, date) pairs per query slice by default; see [`FeatureEngine::with_slice_pairs`].
pub const DEFAULT_SLICE_PAIRS: usize = 50_000;

/// Slices whose queries run at once by default: two, so that the next query runs while the
/// caller scores and one query's single-threaded stretches (planning, the final joins, which
/// build on one thread) overlap the other's work. On two cores this was slower while the final
/// joins copied the wide arrears columns several times; since they copy them once, two are
/// 0.94x one (docs/BENCHMARKS.md).
pub const DEFAULT_SLICES_IN_FLIGHT: usize = 2;

impl FeatureEngine {
    /// Registers the lake, the households reference and the referral lists of `data_dir`, with
    /// no memory limit.
    pub async fn open(data_dir: &Path, spec: FeatureSpec) -> Result<FeatureEngine, FeatureError> {
        FeatureEngine::open_with_limit(data_dir, spec, 0).await
    }

    /// As [`FeatureEngine::open`], with DataFusion's memory pool capped at `memory_limit_mb`
    /// (0: none). Sorts and aggregations that can spill to disk do so at the cap; others fail
    /// with "Resources exhausted" instead of taking the machine down.
    pub async fn open_with_limit(
        data_dir: &Path,
        spec: FeatureSpec,
        memory_limit_mb: usize,
    ) -> Result<FeatureEngine, FeatureError> {
        FeatureEngine::open_on(data_dir, spec, memory_limit_mb, QueryEngine::Local).await
    }

    /// As [`FeatureEngine::open_with_limit`], with the plans run on `engine` (a Ballista
    /// cluster, say: [`crate::engine`]). The memory cap then applies to this process only; each
    /// executor has its own.
    pub async fn open_on(
        data_dir: &Path,
        spec: FeatureSpec,
        memory_limit_mb: usize,
        engine: QueryEngine,
    ) -> Result<FeatureEngine, FeatureError> {
        // DataFusion's own `DATAFUSION_*` variables apply (target partitions, say), for
        // experiments without a rebuild.
        let config = SessionConfig::from_env()?.with_batch_size(8192);
        let mut runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new();
        if memory_limit_mb > 0 {
            runtime = runtime.with_memory_pool(Arc::new(
                datafusion::execution::memory_pool::FairSpillPool::new(memory_limit_mb << 20),
            ));
        }
        engine.check()?;
        // Opened once: an object-store lake's client is shared by every slice.
        let lake = crate::lake::Lake::in_data_dir(data_dir);
        if !matches!(engine, QueryEngine::Local) {
            sweep_scratch(&data_dir.join(SCRATCH_DIR));
            // The same for cohorts a killed process left in the lake's bucket.
            let day = std::time::Duration::from_secs(24 * 3600);
            if let Err(e) = lake.sweep_scratch(day) {
                tracing::warn!(error = %e, "could not sweep old cohort files from the lake's bucket");
            }
        }
        let ctx = engine.session(config.clone(), runtime.build_arc()?).await?;
        crate::lake::sql::register_all(&ctx, &lake).await?;
        Ok(FeatureEngine {
            ctx,
            lake,
            engine,
            session_config: config,
            spec: Arc::new(spec),
            data_dir: data_dir.to_path_buf(),
            slice_pairs: DEFAULT_SLICE_PAIRS,
            source: SignalSource::State,
            state_buckets: 0,
            in_flight: DEFAULT_SLICES_IN_FLIGHT,
            cluster_timeout: None,
        })
    }

    /// As [`FeatureEngine::open_with_limit`], with every `[features]` setting applied.
    pub async fn open_configured(
        data_dir: &Path,
        spec: FeatureSpec,
        settings: &crate::config::FeatureSettings,
    ) -> Result<FeatureEngine, FeatureError> {
        Ok(FeatureEngine::open_on(
            data_dir,
            spec,
            settings.memory_limit_mb,
            settings.engine.clone(),
        )
        .await?
        .with_source(settings.source)
        .with_state_buckets(settings.state_buckets)
        .with_slices_in_flight(settings.slices_in_flight)
        .with_cluster_timeout(settings.cluster_query_timeout_secs))
    }

    /// On a cluster, fails a query (a feature slice, the cohort, …) that has not finished after `seconds` (0: waits for
    /// ever). Ballista 55's client waits for ever when a job fails in some scheduler-side ways;
    /// the night must end, with an error an operator can act on. No effect on the local engine.
    pub fn with_cluster_timeout(mut self, seconds: u64) -> FeatureEngine {
        self.cluster_timeout = (seconds > 0).then(|| std::time::Duration::from_secs(seconds));
        self
    }

    /// Reads the signals from `source` (the default is the signal state).
    pub fn with_source(mut self, source: SignalSource) -> FeatureEngine {
        self.source = source;
        self
    }

    /// The bucket count a first build of the signal state uses (0: from the lake's size).
    pub fn with_state_buckets(mut self, buckets: u32) -> FeatureEngine {
        self.state_buckets = buckets;
        self
    }

    pub fn source(&self) -> SignalSource {
        self.source
    }

    /// Brings the signal state up to date with the lake (reading the state), and returns it.
    pub fn refresh(&self) -> Result<Option<SignalState>, FeatureError> {
        if self.source == SignalSource::Lake {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let (state, report) = SignalState::update(&self.data_dir, self.state_buckets)?;
        if report.lake_files_read > 0 || !report.months_rebuilt.is_empty() {
            tracing::info!(
                lake_files = report.lake_files_read,
                added = report.events_added,
                duplicates = report.duplicates,
                replaced = report.replaced,
                months_rebuilt = report.months_rebuilt.len(),
                buckets = report.buckets,
                merged = report.buckets_merged,
                seconds = started.elapsed().as_secs_f64(),
                "signal state brought up to date"
            );
        }
        Ok(Some(state))
    }

    /// Registers the `*_events` tables for a query over `scope` in the engine's own session.
    async fn register_events(
        &self,
        state: Option<&SignalState>,
        scope: Scope,
    ) -> Result<(), FeatureError> {
        register_events(&self.ctx, &events_source(state, scope), scope).await
    }

    /// Registers every household's deduplicated signals as `*_events` in the engine's session
    /// (the signal state, brought up to date first, or the raw lake deduplicated), for queries
    /// other than the feature query: the signals behind a referral, say.
    pub async fn register_all_events(&self) -> Result<(), FeatureError> {
        let state = self.refresh()?;
        self.register_events(state.as_ref(), Scope::All).await
    }

    /// A session of its own for one slice: the engine's settings, memory pool and tables (the
    /// same providers, shared), so slices running at once each register their own `cohort`
    /// and `*_events`.
    async fn slice_context(&self) -> Result<SessionContext, FeatureError> {
        let ctx = self
            .engine
            .session(self.session_config.clone(), self.ctx.runtime_env())
            .await?;
        let catalog = self
            .ctx
            .catalog("datafusion")
            .ok_or_else(|| DataFusionError::Internal("the default catalog is missing".into()))?;
        let schema = catalog
            .schema("public")
            .ok_or_else(|| DataFusionError::Internal("the default schema is missing".into()))?;
        for name in schema.table_names() {
            if let Some(provider) = schema.table(&name).await? {
                ctx.register_table(name.as_str(), provider)?;
            }
        }
        Ok(ctx)
    }

    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// Runs the query over slices of about `n` (household, date) pairs, every date of a
    /// household in the same slice. Memory follows the slice, not the cohort (the query's
    /// aggregations hold one group per pair); reading the signal state, a slice reads only its
    /// bucket (the raw lake: all of it). A bucket is cut into the whole number of even slices
    /// closest to `n` pairs each (so a slice holds at most about 1.5 `n`): each slice reads its
    /// bucket's files again, so a small leftover slice cost nearly as much as a full one.
    /// Values do not depend on the slicing (a test holds this).
    pub fn with_slice_pairs(mut self, n: usize) -> FeatureEngine {
        self.slice_pairs = n.max(1);
        self
    }

    /// Runs up to `n` slices' queries at once, each in its own session over the same tables
    /// (at least 1). Batches still come out slice by slice, in order; memory holds up to `n + 1`
    /// slices' results.
    pub fn with_slices_in_flight(mut self, n: usize) -> FeatureEngine {
        self.in_flight = n.max(1);
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The session, with every table registered, for ad-hoc SQL over the same data. Run
    /// queries with [`FeatureEngine::query`], which keeps the cluster's deadline.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs `sql` on the engine's session and collects the rows; on a cluster, under the
    /// deadline of [`FeatureEngine::with_cluster_timeout`].
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, FeatureError> {
        let run = async { Ok(self.ctx.sql(sql).await?.collect().await?) };
        within_deadline(&self.engine, self.deadline(), 0, run).await
    }

    /// The deadline of one cluster query, if any.
    fn deadline(&self) -> Option<std::time::Duration> {
        match self.engine {
            QueryEngine::Local => None,
            QueryEngine::Ballista { .. } => self.cluster_timeout,
        }
    }

    /// The households screened on `as_of`: any signal known by then in the look-back window.
    pub async fn scoring_cohort(&self, as_of: NaiveDate) -> Result<Vec<String>, FeatureError> {
        let mut cohorts = self.scoring_cohorts(&[as_of]).await?;
        Ok(cohorts.pop().unwrap_or_default())
    }

    /// The households screened on each of `nights`, in that order: the state is brought up to
    /// date and its tables registered once, not once per night, and two nights' queries run at
    /// once. Measured in `lantern train` (ten nights): 0.99x, a small saving.
    pub async fn scoring_cohorts(
        &self,
        nights: &[NaiveDate],
    ) -> Result<Vec<Vec<String>>, FeatureError> {
        let state = self.refresh()?;
        self.register_events(state.as_ref(), Scope::All).await?;
        futures::stream::iter(nights.iter().map(|&night| self.registered_cohort(night)))
            .buffered(2)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// One night's cohort query, with the events already registered.
    async fn registered_cohort(&self, as_of: NaiveDate) -> Result<Vec<String>, FeatureError> {
        let sql = self.spec.render(&self.spec.cohort_sql, as_of, as_of);
        let batches = self.query(&sql).await?;
        let mut out = Vec::new();
        for b in batches {
            let ids = cast(b.column(0), &DataType::Utf8).map_err(DataFusionError::from)?;
            let ids = ids.as_string::<i32>();
            out.extend(
                (0..ids.len())
                    .filter(|&i| ids.is_valid(i))
                    .map(|i| ids.value(i).to_string()),
            );
        }
        Ok(out)
    }

    /// Past referrals with an outcome decided before `before`, labelled 1 (crisis confirmed)
    /// or 0, oldest first. Runs `labels.sql`.
    pub async fn labels(&self, before: NaiveDate) -> Result<Vec<Label>, FeatureError> {
        let sql = self
            .spec
            .labels_sql
            .replace("{before}", &format!("DATE '{before}'"))
            .replace(
                "{estimated_lag_days}",
                &self.spec.estimated_referral_lag_days.to_string(),
            );
        let batches = self.query(&sql).await?;
        let mut out = Vec::new();
        for b in batches {
            let text = |name: &str| -> Result<Vec<String>, FeatureError> {
                let c = b
                    .column_by_name(name)
                    .ok_or_else(|| FeatureError::Mismatch {
                        detail: format!("labels.sql must return a `{name}` column"),
                    })?;
                let c = cast(c, &DataType::Utf8).map_err(DataFusionError::from)?;
                let c = c.as_string::<i32>();
                Ok((0..c.len()).map(|i| c.value(i).to_string()).collect())
            };
            let ids = text("household_id")?;
            let referrals = text("referral_id")?;
            let districts = text("district_code")?;
            let labels = text("label")?;
            // Older labels.sql files have no `source`: every label then came from a list.
            let sources = match b.column_by_name("source") {
                Some(_) => text("source")?,
                None => vec!["referral".to_string(); b.num_rows()],
            };
            let as_of = b
                .column_by_name("as_of")
                .ok_or_else(|| FeatureError::Mismatch {
                    detail: "labels.sql must return an `as_of` column".into(),
                })?;
            let as_of = cast(as_of, &DataType::Date32).map_err(DataFusionError::from)?;
            let as_of = as_of.as_primitive::<Date32Type>();
            let decided = b
                .column_by_name("decided_on")
                .ok_or_else(|| FeatureError::Mismatch {
                    detail: "labels.sql must return a `decided_on` column".into(),
                })?;
            let decided = cast(decided, &DataType::Date32).map_err(DataFusionError::from)?;
            let decided = decided.as_primitive::<Date32Type>();
            // Older labels.sql files have no `selection_probability`: none was explored.
            let selection = match b.column_by_name("selection_probability") {
                Some(c) => Some(cast(c, &DataType::Float64).map_err(DataFusionError::from)?),
                None => None,
            };
            let selection = selection
                .as_ref()
                .map(|c| c.as_primitive::<datafusion::arrow::datatypes::Float64Type>());
            for i in 0..b.num_rows() {
                out.push(Label {
                    decided_on: date_from_days(decided.value(i)),
                    household_id: ids[i].clone(),
                    as_of: date_from_days(as_of.value(i)),
                    referral_id: referrals[i].clone(),
                    district_code: districts[i].clone(),
                    label: u8::from(labels[i] == "1"),
                    source: sources[i].clone(),
                    selection_probability: selection
                        .filter(|c| c.is_valid(i))
                        .map(|c| c.value(i))
                        .filter(|p| *p > 0.0 && *p <= 1.0),
                });
            }
        }
        Ok(out)
    }

    /// Starts the feature query for every `(household_id, as_of)` pair; batches arrive as
    /// DataFusion produces them, slice after slice, so memory does not grow with the cohort.
    pub async fn stream(
        &self,
        cohort: &[(String, NaiveDate)],
    ) -> Result<FeatureStream<'_>, FeatureError> {
        let state = self.refresh()?;
        // Reading the state, a slice holds one bucket's households (or part of them), so it
        // reads only that bucket's files.
        let buckets = state.as_ref().map(|s| s.buckets());
        let mut sorted: Vec<(Option<u32>, String, NaiveDate)> = cohort
            .iter()
            .map(|(h, d)| (buckets.map(|n| state::bucket_of(h, n)), h.clone(), *d))
            .collect();
        sorted.sort();
        let mut in_bucket: BTreeMap<Option<u32>, usize> = BTreeMap::new();
        for (bucket, _, _) in &sorted {
            *in_bucket.entry(*bucket).or_default() += 1;
        }
        // Pairs per slice in a bucket: even slices, as many as make them closest to the
        // configured size.
        let target = |bucket: &Option<u32>| {
            let pairs = in_bucket.get(bucket).copied().unwrap_or(0);
            let n = ((pairs as f64 / self.slice_pairs as f64).round() as usize).max(1);
            pairs.div_ceil(n).max(1)
        };
        let mut slices = std::collections::VecDeque::new();
        let mut current: Vec<(String, NaiveDate)> = Vec::new();
        let mut current_bucket = None;
        let mut size = self.slice_pairs;
        for (bucket, h, d) in sorted {
            let new_household = current.last().is_none_or(|p| p.0 != h);
            let new_bucket = bucket != current_bucket;
            if !current.is_empty() && (new_bucket || (new_household && current.len() >= size)) {
                slices.push_back((current_bucket, std::mem::take(&mut current)));
            }
            if new_bucket || current.is_empty() {
                size = target(&bucket);
            }
            current_bucket = bucket;
            current.push((h, d));
        }
        if !current.is_empty() {
            slices.push_back((current_bucket, current));
        }
        let dates = (
            cohort.iter().map(|c| c.1).min(),
            cohort.iter().map(|c| c.1).max(),
        );
        Ok(FeatureStream {
            engine: self,
            state,
            slices,
            dates,
            running: std::collections::VecDeque::new(),
        })
    }

    /// Starts one slice's query on a task of its own, in a session of its own; the task
    /// returns the slice's features, imputed.
    async fn spawn_slice(
        &self,
        state: Option<&SignalState>,
        bucket: Option<u32>,
        slice: Vec<(String, NaiveDate)>,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<tokio::task::JoinHandle<Result<FeatureBatch, FeatureError>>, FeatureError> {
        let started = std::time::Instant::now();
        let ctx = self.slice_context().await?;
        let events = events_source(state, Scope::Cohort(bucket));
        let spec = Arc::clone(&self.spec);
        let scratch = match self.engine {
            QueryEngine::Local => None,
            QueryEngine::Ballista { .. } => Some(Scratch {
                dir: self.data_dir.join(SCRATCH_DIR),
                lake: self.lake.clone(),
            }),
        };
        let deadline = self.deadline();
        let engine = self.engine.clone();
        Ok(tokio::spawn(async move {
            let pairs = slice.len();
            let query = run_slice(
                ctx, slice, scratch, events, spec, first, last, bucket, started,
            );
            within_deadline(&engine, deadline, pairs, query).await
        }))
    }
}

/// Runs a cluster query, failing it with [`FeatureError::ClusterTimeout`] if it has not ended
/// after `deadline`. `pairs`: the households and dates a feature slice computes (0: another
/// query).
async fn within_deadline<T>(
    engine: &QueryEngine,
    deadline: Option<std::time::Duration>,
    pairs: usize,
    query: impl std::future::Future<Output = Result<T, FeatureError>>,
) -> Result<T, FeatureError> {
    match deadline {
        None => query.await,
        Some(limit) => tokio::time::timeout(limit, query)
            .await
            .unwrap_or_else(|_| {
                Err(FeatureError::ClusterTimeout {
                    engine: engine.to_string(),
                    what: if pairs > 0 {
                        format!("a feature slice of {pairs} households and dates")
                    } else {
                        "a query".to_string()
                    },
                    seconds: limit.as_secs(),
                })
            }),
    }
}

/// One slice's query, start to end: registers its cohort and events in `ctx`, runs the feature
/// SQL and collects the rows.
#[allow(clippy::too_many_arguments)]
async fn run_slice(
    ctx: SessionContext,
    slice: Vec<(String, NaiveDate)>,
    scratch: Option<Scratch>,
    events: EventsSource,
    spec: Arc<FeatureSpec>,
    first: NaiveDate,
    last: NaiveDate,
    bucket: Option<u32>,
    started: std::time::Instant,
) -> Result<FeatureBatch, FeatureError> {
    // Removes the cohort's file, if any, when the slice is done or dropped.
    let _cohort_file = register_cohort(&ctx, &slice, scratch.as_ref()).await?;
    register_events(&ctx, &events, Scope::Cohort(bucket)).await?;
    let sql = spec.render(&spec.sql, first, last);
    let df = ctx.sql(&sql).await?;
    let columns = check_columns(&spec, df.schema().as_arrow())?;
    let planned = started.elapsed().as_secs_f64();
    let mut stream = df.execute_stream().await?;
    let mut out = FeatureBatch {
        width: spec.features.len(),
        ..Default::default()
    };
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() > 0 {
            out.extend(to_features(&batch, &columns, &spec)?);
        }
    }
    tracing::debug!(
        pairs = slice.len(),
        ?bucket,
        planned,
        seconds = started.elapsed().as_secs_f64(),
        "feature slice done"
    );
    Ok(out)
}

impl FeatureEngine {
    /// All features of a cohort in memory, in the cohort's order.
    pub async fn compute(
        &self,
        cohort: &[(String, NaiveDate)],
    ) -> Result<FeatureBatch, FeatureError> {
        let mut stream = self.stream(cohort).await?;
        let mut all = FeatureBatch {
            width: self.spec.features.len(),
            ..Default::default()
        };
        while let Some(batch) = stream.next().await? {
            all.extend(batch);
        }
        // Put rows back in cohort order: joins do not keep it.
        let position: std::collections::HashMap<(&str, NaiveDate), usize> = cohort
            .iter()
            .enumerate()
            .map(|(i, (h, d))| ((h.as_str(), *d), i))
            .collect();
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by_key(|&i| {
            position
                .get(&(all.keys[i].household_id.as_str(), all.keys[i].as_of))
                .copied()
                .unwrap_or(usize::MAX)
        });
        let width = all.width;
        let mut sorted = FeatureBatch {
            width,
            keys: Vec::with_capacity(all.len()),
            values: Vec::with_capacity(all.values.len()),
        };
        for i in order {
            sorted.keys.push(all.keys[i].clone());
            sorted.values.extend_from_slice(all.row(i));
        }
        Ok(sorted)
    }
}

/// Where a slice's cohort is written for a cluster to read (under the data directory, which
/// every executor sees); each file is removed when its slice is done.
pub const SCRATCH_DIR: &str = ".scratch";

/// Removes cohort files a killed process left in `dir` more than a day ago (a running night's
/// are minutes old).
fn sweep_scratch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let day = std::time::Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > day));
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Where a cluster's cohort files go: the lake's object store when the lake is in one (the
/// executors then need nothing but the bucket), else `dir` in the data directory.
struct Scratch {
    dir: PathBuf,
    lake: crate::lake::Lake,
}

/// A scratch file, removed when dropped.
enum RemoveOnDrop {
    File(PathBuf),
    Object(crate::lake::Lake, PathBuf),
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        match self {
            RemoveOnDrop::File(path) => {
                let _ = std::fs::remove_file(path);
            }
            RemoveOnDrop::Object(lake, key) => {
                if let Err(e) = lake.remove_file(key) {
                    tracing::warn!(error = %e, "a cohort scratch file was left in the lake's bucket");
                }
            }
        }
    }
}

/// Registers `cohort` in `ctx` as the `cohort` table.
///
/// In this process it is an in-memory table split so the join's probe side runs on every core.
/// For a cluster (`scratch` set) it is a Parquet file (in the lake's bucket if the lake is in
/// an object store, else under the data directory's `.scratch/`), so the plan carries its
/// path: an in-memory table would travel inside the plan once for every place the feature SQL
/// reads `cohort`, and again with every task (over Ballista's 16 MiB message limit at 50,000
/// households a slice). The returned guard removes the file.
async fn register_cohort(
    ctx: &SessionContext,
    cohort: &[(String, NaiveDate)],
    scratch: Option<&Scratch>,
) -> Result<Option<RemoveOnDrop>, FeatureError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("household_id", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
    ]));
    let mut ids = StringBuilder::new();
    let mut dates = Date32Builder::with_capacity(cohort.len());
    for (h, d) in cohort {
        ids.append_value(h);
        dates.append_value(days_since_epoch(*d));
    }
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(ids.finish()), Arc::new(dates.finish())],
    )
    .map_err(DataFusionError::from)?;
    ctx.deregister_table("cohort")?;
    if let Some(scratch) = scratch {
        let name = format!("cohort-{}", crate::lake::new_part_name());
        let lake_err = |e: crate::lake::LakeError| DataFusionError::External(Box::new(e));
        if let Some((url, key)) = scratch
            .lake
            .write_scratch(ctx, &name, &batch)
            .map_err(lake_err)?
        {
            let guard = RemoveOnDrop::Object(scratch.lake.clone(), key);
            ctx.register_parquet(
                "cohort",
                &url,
                datafusion::prelude::ParquetReadOptions::default(),
            )
            .await?;
            return Ok(Some(guard));
        }
        let dir = &scratch.dir;
        let path = dir.join(name);
        let guard = RemoveOnDrop::File(path.clone());
        std::fs::create_dir_all(dir).map_err(|e| DataFusionError::External(Box::new(e)))?;
        crate::lake::write_parquet_atomic(&path, std::slice::from_ref(&batch))
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        ctx.register_parquet(
            "cohort",
            path.to_string_lossy().as_ref(),
            datafusion::prelude::ParquetReadOptions::default(),
        )
        .await?;
        return Ok(Some(guard));
    }
    let parts = ctx.copied_config().target_partitions().max(1);
    let chunk = batch.num_rows().div_ceil(parts).max(1);
    let partitions: Vec<Vec<RecordBatch>> = (0..batch.num_rows())
        .step_by(chunk)
        .map(|start| vec![batch.slice(start, chunk.min(batch.num_rows() - start))])
        .collect();
    let table = MemTable::try_new(schema, partitions)?;
    ctx.register_table("cohort", Arc::new(table))?;
    Ok(None)
}

fn check_columns(spec: &FeatureSpec, schema: &Schema) -> Result<Vec<usize>, FeatureError> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let missing: Vec<&str> = spec
        .features
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| !names.contains(n))
        .collect();
    let extra: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            !KEY_COLUMNS.contains(n)
                && !OPTIONAL_KEY_COLUMNS.contains(n)
                && !spec.features.iter().any(|f| f.name == *n)
        })
        .collect();
    let absent_keys: Vec<&str> = KEY_COLUMNS
        .iter()
        .copied()
        .filter(|k| !names.contains(k))
        .collect();
    if !missing.is_empty() || !extra.is_empty() || !absent_keys.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "in features.toml but not produced by the query: {}",
                missing.join(", ")
            ));
        }
        if !extra.is_empty() {
            parts.push(format!(
                "produced by the query but not in features.toml: {}",
                extra.join(", ")
            ));
        }
        if !absent_keys.is_empty() {
            parts.push(format!(
                "key columns missing from the query: {}",
                absent_keys.join(", ")
            ));
        }
        return Err(FeatureError::Mismatch {
            detail: parts.join("; "),
        });
    }
    Ok(spec
        .features
        .iter()
        .map(|f| {
            names
                .iter()
                .position(|n| *n == f.name)
                .expect("checked above")
        })
        .collect())
}

/// What a slice's `*_events` tables are made of: the state's parts for its bucket, or the raw
/// lake (deduplicated by a view in the slice's session).
enum EventsSource {
    Parts {
        events: Vec<(Table, Vec<PathBuf>)>,
        /// The bucket's copy of the households reference (`None`: the reference itself).
        households: Option<Vec<PathBuf>>,
    },
    Lake,
}

fn events_source(state: Option<&SignalState>, scope: Scope) -> EventsSource {
    match state {
        None => EventsSource::Lake,
        Some(state) => EventsSource::Parts {
            events: SIGNAL_TABLES
                .iter()
                .map(|&table| {
                    let parts = match scope {
                        Scope::All | Scope::Cohort(None) => state.all_parts(table),
                        Scope::Cohort(Some(b)) => state.parts(table, b),
                    };
                    (table, parts)
                })
                .collect(),
            households: match scope {
                Scope::Cohort(Some(b)) => state.households_parts(b),
                _ => None,
            },
        },
    }
}

/// Registers the `*_events` tables in `ctx`.
async fn register_events(
    ctx: &SessionContext,
    source: &EventsSource,
    scope: Scope,
) -> Result<(), FeatureError> {
    for table in SIGNAL_TABLES {
        let name = events_table(table);
        ctx.deregister_table(name.as_str())?;
        let provider: Arc<dyn datafusion::catalog::TableProvider> = match source {
            EventsSource::Lake => {
                let cohort_only = matches!(scope, Scope::Cohort(_));
                ctx.sql(&state::dedup_view_sql(table, cohort_only))
                    .await?
                    .into_view()
            }
            EventsSource::Parts { events, .. } => {
                let files = events
                    .iter()
                    .find(|(t, _)| *t == table)
                    .map(|(_, f)| f.as_slice())
                    .unwrap_or(&[]);
                files_table(files, state::state_schema(table))?
            }
        };
        ctx.register_table(name.as_str(), provider)?;
    }
    if let EventsSource::Parts {
        households: Some(files),
        ..
    } = source
    {
        ctx.deregister_table("households")?;
        let households = files_table(files, crate::lake::reference::households_schema())?;
        ctx.register_table("households", households)?;
    }
    Ok(())
}

/// Feature batches slice by slice, in slice order, with the next slices' queries already
/// running (up to the engine's `in_flight`).
pub struct FeatureStream<'e> {
    engine: &'e FeatureEngine,
    /// The signal state as of the stream's start (`None`: reading the raw lake).
    state: Option<SignalState>,
    slices: std::collections::VecDeque<(Option<u32>, Vec<(String, NaiveDate)>)>,
    dates: (Option<NaiveDate>, Option<NaiveDate>),
    running:
        std::collections::VecDeque<tokio::task::JoinHandle<Result<FeatureBatch, FeatureError>>>,
}

impl Drop for FeatureStream<'_> {
    /// A stream dropped early (an error downstream) stops its slices' queries.
    fn drop(&mut self) {
        for task in &self.running {
            task.abort();
        }
    }
}

impl FeatureStream<'_> {
    /// The next slice's features, imputed; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<FeatureBatch>, FeatureError> {
        let (Some(first), Some(last)) = self.dates else {
            return Ok(None);
        };
        loop {
            self.top_up(first, last).await?;
            let Some(task) = self.running.pop_front() else {
                return Ok(None);
            };
            let batch = task.await.map_err(|e| {
                DataFusionError::Internal(format!("a feature slice's task failed: {e}"))
            })??;
            // The next slice starts before the caller works on this one.
            self.top_up(first, last).await?;
            if !batch.is_empty() {
                return Ok(Some(batch));
            }
        }
    }

    /// Starts slices until `in_flight` are running or none is left.
    async fn top_up(&mut self, first: NaiveDate, last: NaiveDate) -> Result<(), FeatureError> {
        while self.running.len() < self.engine.in_flight {
            let Some((bucket, slice)) = self.slices.pop_front() else {
                break;
            };
            let task = self
                .engine
                .spawn_slice(self.state.as_ref(), bucket, slice, first, last)
                .await?;
            self.running.push_back(task);
        }
        Ok(())
    }
}

/// A table over exactly these Parquet files (none: an empty table of `schema`).
fn files_table(
    files: &[PathBuf],
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>, DataFusionError> {
    if files.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let urls = files
        .iter()
        .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
        .collect::<Result<Vec<_>, _>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

fn to_features(
    batch: &RecordBatch,
    columns: &[usize],
    spec: &FeatureSpec,
) -> Result<FeatureBatch, FeatureError> {
    let n = batch.num_rows();
    let width = columns.len();
    let string = |name: &str| -> Result<Vec<Option<String>>, FeatureError> {
        let col = batch.column_by_name(name).expect("key columns checked");
        let col = cast(col, &DataType::Utf8).map_err(DataFusionError::from)?;
        let col = col.as_string::<i32>();
        Ok((0..n)
            .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
            .collect())
    };
    let ids = string("household_id")?;
    let mut districts = string("district_code")?;
    let mut dongs = string("dong_code")?;
    let mut types = string("household_type")?;
    let mut ages = string("head_age_band")?;
    let disability: Vec<Option<bool>> = match batch.column_by_name("disability") {
        Some(col) => {
            let col = cast(col, &DataType::Boolean).map_err(DataFusionError::from)?;
            let col = col.as_boolean();
            (0..n)
                .map(|i| col.is_valid(i).then(|| col.value(i)))
                .collect()
        }
        None => vec![None; n],
    };
    let as_of = batch.column_by_name("as_of").expect("key columns checked");
    let as_of = cast(as_of, &DataType::Date32).map_err(DataFusionError::from)?;
    let as_of = as_of.as_primitive::<Date32Type>();
    // Each key takes its row's strings (no second copy).
    let mut keys = Vec::with_capacity(n);
    for (i, id) in ids.into_iter().enumerate() {
        keys.push(RowKey {
            household_id: id.unwrap_or_default(),
            as_of: date_from_days(as_of.value(i)),
            district_code: districts[i].take(),
            dong_code: dongs[i].take(),
            household_type: types[i].take(),
            head_age_band: ages[i].take(),
            disability: disability[i],
        });
    }
    let cols = columns
        .iter()
        .map(|&c| cast(batch.column(c), &DataType::Float64).map_err(DataFusionError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let cols: Vec<_> = cols
        .iter()
        .map(|c| c.as_primitive::<Float64Type>())
        .collect();
    // Row-major output written a block of rows at a time, column by column within the block,
    // so the block's rows stay in cache (a whole batch is several MB, written once per column).
    const BLOCK: usize = 256;
    let mut values = vec![0f32; n * width];
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        for (j, (col, def)) in cols.iter().zip(&spec.features).enumerate() {
            for i in start..end {
                let v = if col.is_valid(i) && col.value(i).is_finite() {
                    col.value(i)
                } else {
                    def.impute
                };
                values[i * width + j] = v as f32;
            }
        }
    }
    Ok(FeatureBatch {
        keys,
        values,
        width,
    })
}

/// Writes feature batches to a Parquet file: keys as strings and dates (with the place to visit:
/// district and dong of the latest signal), features as float32,
/// in catalogue order, for pandas, polars and DuckDB.
pub struct ParquetSink {
    writer: datafusion::parquet::arrow::ArrowWriter<std::fs::File>,
    schema: Arc<Schema>,
    path: PathBuf,
}

impl ParquetSink {
    pub fn create(path: &Path, spec: &FeatureSpec) -> Result<ParquetSink, FeatureError> {
        let mut fields = vec![
            Field::new("household_id", DataType::Utf8, false),
            Field::new("as_of", DataType::Date32, false),
            Field::new("district_code", DataType::Utf8, true),
            Field::new("dong_code", DataType::Utf8, true),
            Field::new("household_type", DataType::Utf8, true),
            Field::new("head_age_band", DataType::Utf8, true),
        ];
        fields.extend(
            spec.features
                .iter()
                .map(|f| Field::new(&f.name, DataType::Float32, false)),
        );
        let schema = Arc::new(Schema::new(fields));
        let err = |e: String| FeatureError::Catalogue {
            path: path.display().to_string(),
            message: e,
        };
        let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
        let writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None)
            .map_err(|e| err(e.to_string()))?;
        Ok(ParquetSink {
            writer,
            schema,
            path: path.to_path_buf(),
        })
    }

    pub fn write(&mut self, b: &FeatureBatch) -> Result<(), FeatureError> {
        use datafusion::arrow::array::{ArrayRef, Float32Array};
        let text = |f: &dyn Fn(&RowKey) -> Option<&str>| -> ArrayRef {
            let mut s = StringBuilder::new();
            for k in &b.keys {
                s.append_option(f(k));
            }
            Arc::new(s.finish())
        };
        let mut dates = Date32Builder::with_capacity(b.len());
        for k in &b.keys {
            dates.append_value(days_since_epoch(k.as_of));
        }
        let mut columns: Vec<ArrayRef> = vec![
            text(&|k| Some(k.household_id.as_str())),
            Arc::new(dates.finish()),
            text(&|k| k.district_code.as_deref()),
            text(&|k| k.dong_code.as_deref()),
            text(&|k| k.household_type.as_deref()),
            text(&|k| k.head_age_band.as_deref()),
        ];
        for j in 0..b.width {
            let col: Float32Array = (0..b.len())
                .map(|i| Some(b.values[i * b.width + j]))
                .collect();
            columns.push(Arc::new(col));
        }
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(DataFusionError::from)?;
        self.writer
            .write(&batch)
            .map_err(|e| FeatureError::Catalogue {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })
    }

    pub fn finish(self) -> Result<(), FeatureError> {
        let path = self.path.display().to_string();
        self.writer
            .close()
            .map(|_| ())
            .map_err(|e| FeatureError::Catalogue {
                path,
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    /// The sweep removes a cohort file a killed process left days ago and keeps a running
    /// night's.
    #[test]
    fn the_scratch_sweep_removes_only_day_old_cohort_files() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("cohort-old.parquet");
        let new = dir.path().join("cohort-new.parquet");
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&new, b"x").unwrap();
        let two_days = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_days)
            .unwrap();
        sweep_scratch(dir.path());
        assert!(!old.exists());
        assert!(new.exists());
    }

    use super::*;

    #[test]
    fn the_embedded_catalogue_parses_and_names_labelled_reasons() {
        let spec = FeatureSpec::embedded();
        assert!(spec.features.len() > 100);
        assert_eq!(spec.lookback_days, 365);
        for f in &spec.features {
            assert!(spec.reason_label(&f.reason).is_some(), "{}", f.name);
        }
    }

    #[test]
    fn placeholders_are_all_replaced() {
        let spec = FeatureSpec::embedded();
        let d = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        for t in [&spec.sql, &spec.cohort_sql] {
            let sql = spec.render(t, d, d);
            assert!(
                !sql.contains("{window") && !sql.contains("{month") && !sql.contains("{lookback")
            );
            assert!(
                sql.contains("DATE '2025-10-31'"),
                "window start is as_of - 365 days"
            );
        }
    }

    #[test]
    fn a_duplicate_feature_is_refused_with_its_name() {
        let toml_text = "lookback_days = 30\nfeatures = [ { name = \"a\", impute = 0, reason = \"r\" }, { name = \"a\", impute = 0, reason = \"r\" } ]\n[reasons.r]\nko = \"가\"\nen = \"a\"\n";
        let err = FeatureSpec::parse("", "", "", toml_text, "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`a` is listed twice"), "{err}");
    }

    /// Known defect: the fingerprint hashed the column names only, so an edited features.sql
    /// with the same names still loaded an old model. The SQL and the catalogue count now.
    #[test]
    fn the_fingerprint_changes_with_the_sql_and_the_catalogue_not_only_the_names() {
        let spec = FeatureSpec::embedded();
        let mut edited = spec.clone();
        edited.sql = edited.sql.replace("age < 365", "age < 364");
        assert_ne!(edited.sql, spec.sql);
        assert_ne!(edited.fingerprint(), spec.fingerprint());
        let mut imputed = spec.clone();
        imputed.features[0].impute += 1.0;
        assert_ne!(imputed.fingerprint(), spec.fingerprint());
        assert_eq!(spec.clone().fingerprint(), spec.fingerprint());
    }
}
