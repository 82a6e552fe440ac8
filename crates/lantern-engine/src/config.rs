//! Settings, layered: the embedded `config/default.toml`, then `--config FILE`, then environment
//! variables `LANTERN__SECTION__KEY`.
//!
//! Every section refuses unknown keys. A misspelt key in an operator's file would otherwise be
//! ignored without a word, and the operator would believe a capacity or a topic had changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::registry::{Capacities, Registry, RegistryError};

/// The defaults, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// The environment variable prefix; `LANTERN__KAFKA__BROKERS` sets `kafka.brokers`.
pub const ENV_PREFIX: &str = "LANTERN";

/// Why configuration could not be loaded. Messages name the key and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist; pass an existing file to --config")]
    FileMissing { path: String },
    #[error("configuration ({layers}): {message}")]
    Invalid { layers: String, message: String },
    #[error("configuration key `{key}` (from {layers}): {message}")]
    Value {
        key: String,
        layers: String,
        message: String,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("pseudonymization key: {0}")]
    Key(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub data: DataSettings,
    pub registry: RegistrySettings,
    pub kafka: KafkaSettings,
    pub topics: Topics,
    pub pseudonymization: PseudonymSettings,
    pub capacity: Capacities,
    pub ingest: IngestSettings,
    pub features: FeatureSettings,
    pub model: TrainSettings,
    pub screen: ScreenSettings,
    pub logging: LoggingSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub fairness: FairnessSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
}

/// The fairness audit (config section `[fairness]`): the band a ratio to the reference group
/// should stay in, and the smallest group judged.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FairnessSettings {
    pub band_low: f64,
    pub band_high: f64,
    /// A rate resting on fewer households (selections, or crises) than this is marked
    /// `too_small` and not ratioed.
    pub min_group: usize,
}

impl Default for FairnessSettings {
    fn default() -> Self {
        FairnessSettings {
            band_low: 0.8,
            band_high: 1.25,
            min_group: 30,
        }
    }
}

/// How long each kind of data is kept (config section `[retention]`), in days; 0 keeps it
/// forever. `lantern retention` shows what is past its period, `--apply` deletes it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub signals_days: u32,
    pub outcomes_days: u32,
    pub dead_letters_days: u32,
    pub referral_lists_days: u32,
    pub drafts_days: u32,
    pub decision_logs_days: u32,
    pub feature_exports_days: u32,
    pub reports_days: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            signals_days: 1095,
            outcomes_days: 1825,
            dead_letters_days: 90,
            referral_lists_days: 1825,
            drafts_days: 30,
            decision_logs_days: 365,
            feature_exports_days: 30,
            reports_days: 1825,
        }
    }
}

/// Who answers for the models (config section `[model.card]`), named on every model card.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CardSettings {
    /// The team or office that owns the models, e.g. "보건복지부 복지사각지대 발굴 TF".
    #[serde(default)]
    pub owner: String,
    /// Whom to contact about a model's use.
    #[serde(default)]
    pub contact: String,
}

/// The audit log (config section `[audit]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Recorded beside the OS user on every audit record: the operator's or service's name
    /// (e.g. `night-job@ssis`). Empty: the OS user alone.
    #[serde(default)]
    pub identity: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSettings {
    /// A folder like `pipelines/`; empty for the pipelines compiled into the binary.
    pub dir: String,
    /// Cap on the query engine's memory, in MiB (0: none).
    pub memory_limit_mb: usize,
    /// Where features read the signals: `state` (the incremental signal state, kept up from
    /// the lake) or `lake` (deduplicate the raw lake at every query: the full recomputation).
    #[serde(default)]
    pub source: crate::features::SignalSource,
    /// Household buckets of the signal state when it is first built (0: one per 500,000
    /// signals in the lake, a power of two). An existing state keeps its own.
    #[serde(default)]
    pub state_buckets: u32,
    /// Feature slices whose queries run at once (at least 1): the next slice's query runs
    /// while the caller scores the last one.
    #[serde(default = "default_slices_in_flight")]
    pub slices_in_flight: usize,
    /// Where the feature plans run: `local` (this process) or `ballista://HOST:PORT` (the
    /// scheduler of a Ballista cluster; a build with the `ballista` feature).
    #[serde(default)]
    pub engine: crate::engine::QueryEngine,
    /// On a cluster, the longest one query may take, in seconds (0: no limit): a
    /// stuck cluster becomes an error instead of a night that never ends.
    #[serde(default = "default_cluster_query_timeout")]
    pub cluster_query_timeout_secs: u64,
}

fn default_cluster_query_timeout() -> u64 {
    900
}

fn default_slices_in_flight() -> usize {
    crate::features::DEFAULT_SLICES_IN_FLIGHT
}

/// Screening rules (config section `[screen]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenSettings {
    /// A household with an open referral (no outcome yet) is not referred again for this many days.
    pub cooldown_days: u32,
    /// A household whose visit ended in `supported` is not referred again for this many days.
    pub supported_exclusion_days: u32,
    /// Flagged this many times in the escalation window without ever being reached:
    /// escalated (flag, reason code, placed ahead of the score order).
    pub escalate_after: u32,
    /// How far back repeat flags are counted for escalation, in days.
    pub escalation_window_days: u32,
    /// A council report of urgency 3 this recent puts a household on the list whatever its score.
    pub urgent_days: u32,
    /// Scale applied to every district's capacity (1.0 = as configured). Lets a simulated
    /// population of a fraction of the country get lists of a realistic size.
    pub capacity_scale: f64,
    /// No household is listed by score below this calibrated probability (0: lists are filled
    /// to capacity whatever the scores). Urgent and escalated households are listed anyway.
    #[serde(default)]
    pub min_score: f64,
    /// Per-district minimum scores, by district code, overriding `min_score`.
    #[serde(default)]
    pub min_score_districts: BTreeMap<String, f64>,
    /// Exploration: this share of each district's capacity (in expectation) is drawn at random
    /// from the band just below the cut, so outcomes arrive for households the model would not
    /// have picked. 0 turns it off.
    #[serde(default)]
    pub exploration_share: f64,
    /// The band drawn from: this many times the capacity of plain candidates right below the
    /// seats filled by score.
    #[serde(default = "default_exploration_band")]
    pub exploration_band: f64,
}

fn default_exploration_band() -> f64 {
    1.0
}

impl ScreenSettings {
    /// The minimum score of a district's list by score.
    pub fn min_score_for(&self, district: &str) -> f64 {
        self.min_score_districts
            .get(district)
            .copied()
            .unwrap_or(self.min_score)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// Empty means the embedded registry.
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub brokers: String,
    pub group_id: String,
    pub client_id: String,
    /// Static group membership (KIP-345): this ingest process's stable `group.instance.id`.
    /// Empty: dynamic membership. Each process in the group needs its own.
    #[serde(default)]
    pub group_instance_id: String,
    /// Passed to librdkafka verbatim (security settings and tuning).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    pub utility_arrears: String,
    pub council_reports: String,
    pub service_gaps: String,
    pub case_outcomes: String,
    pub case_intake: String,
    pub dead_letter: String,
}

impl Topics {
    /// Every topic with its configuration key, in a fixed order.
    pub fn all(&self) -> [(&'static str, &str); 6] {
        [
            ("topics.utility_arrears", &self.utility_arrears),
            ("topics.council_reports", &self.council_reports),
            ("topics.service_gaps", &self.service_gaps),
            ("topics.case_outcomes", &self.case_outcomes),
            ("topics.case_intake", &self.case_intake),
            ("topics.dead_letter", &self.dead_letter),
        ]
    }

    /// The topic a signal kind is consumed from.
    pub fn for_kind(&self, kind: crate::contract::SignalKind) -> &str {
        use crate::contract::SignalKind;
        match kind {
            SignalKind::UtilityArrears => &self.utility_arrears,
            SignalKind::CouncilReport => &self.council_reports,
            SignalKind::ServiceGap => &self.service_gaps,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PseudonymSettings {
    pub fields: Vec<String>,
    pub key_env: String,
    pub key_file: String,
}

impl PseudonymSettings {
    /// Reads the HMAC key from the configured source. The key must be at least 16 bytes: a
    /// shorter key makes the pseudonyms guessable by brute force over identifiers.
    pub fn load_key(&self) -> Result<Vec<u8>, ConfigError> {
        let key = if !self.key_file.is_empty() {
            std::fs::read(&self.key_file).map_err(|e| {
                ConfigError::Key(format!(
                    "cannot read pseudonymization.key_file {}: {e}",
                    self.key_file
                ))
            })?
        } else {
            std::env::var(&self.key_env)
                .map_err(|_| {
                    ConfigError::Key(format!(
                        "environment variable {} is not set; set it to a secret of at least \
                         16 bytes, or set pseudonymization.key_file",
                        self.key_env
                    ))
                })?
                .into_bytes()
        };
        let trimmed: Vec<u8> = key.trim_ascii().to_vec();
        if trimmed.len() < 16 {
            return Err(ConfigError::Key(format!(
                "the key is {} bytes; at least 16 are required",
                trimmed.len()
            )));
        }
        Ok(trimmed)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    pub batch_records: usize,
    pub dedup_cache_keys: usize,
    /// The agencies' time zone (IANA name): the ingest day turns at midnight there.
    pub time_zone: String,
    /// Keep council reports' free-text `note` (masked) instead of dropping it at the door.
    #[serde(default)]
    pub keep_notes: bool,
    /// With `--until-idle`: stop with an error when no partition was assigned for this many
    /// seconds. Absent or 0: wait as long as it takes.
    #[serde(default)]
    pub assignment_deadline_secs: Option<u64>,
}

impl IngestSettings {
    /// The configured time zone, or an error naming the key.
    pub fn zone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        crate::clock::parse_zone(&self.time_zone).map_err(|m| ConfigError::Value {
            key: "ingest.time_zone".into(),
            layers: "settings".into(),
            message: m,
        })
    }

    /// Today's ingest day from the system clock in the configured zone.
    pub fn ingest_day(&self) -> Result<crate::clock::IngestDay, ConfigError> {
        Ok(crate::clock::IngestDay::system(self.zone()?))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Where settings come from, for loading and for error messages.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config FILE`.
    pub file: Option<PathBuf>,
    /// Environment variables; `None` reads the process environment. Tests pass their own map
    /// so that they never depend on, or change, the real environment.
    pub env: Option<BTreeMap<String, String>>,
}

impl Sources {
    fn describe(&self) -> String {
        let mut parts = vec!["embedded config/default.toml".to_string()];
        if let Some(f) = &self.file {
            parts.push(f.display().to_string());
        }
        parts.push(format!("{ENV_PREFIX}__* environment variables"));
        parts.join(" < ")
    }
}

impl Settings {
    /// The embedded defaults alone.
    pub fn defaults() -> Settings {
        Settings::load(&Sources {
            file: None,
            env: Some(BTreeMap::new()),
        })
        .expect("embedded config/default.toml is valid (checked by tests)")
    }

    /// Loads and checks the layered settings.
    pub fn load(sources: &Sources) -> Result<Settings, ConfigError> {
        use config::{Config, Environment, File, FileFormat};
        let layers = sources.describe();
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = &sources.file {
            if !path.exists() {
                return Err(ConfigError::FileMissing {
                    path: path.display().to_string(),
                });
            }
            builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml));
        }
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("pseudonymization.fields")
            .try_parsing(true);
        let env = match &sources.env {
            Some(map) => env.source(Some(map.clone().into_iter().collect())),
            None => env,
        };
        builder = builder.add_source(env);
        let cfg = builder.build().map_err(|e| convert(e, &layers))?;
        let settings: Settings = cfg.try_deserialize().map_err(|e| convert(e, &layers))?;
        settings.check(&layers)?;
        Ok(settings)
    }

    /// Rules serde cannot express.
    fn check(&self, layers: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Value {
            key: key.to_string(),
            layers: layers.to_string(),
            message,
        };
        if self.kafka.brokers.trim().is_empty() {
            return Err(bad(
                "kafka.brokers",
                "must name at least one host:port".into(),
            ));
        }
        for (key, topic) in self.topics.all() {
            let ok = !topic.is_empty()
                && topic.len() <= 249
                && topic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(bad(
                    key,
                    format!("`{topic}` is not a valid Kafka topic name (letters, digits, . _ -)"),
                ));
            }
        }
        if !(0.05..=0.8).contains(&self.model.holdout_share) {
            return Err(bad(
                "model.holdout_share",
                "must be between 0.05 and 0.8".into(),
            ));
        }
        if self.model.trees.trees == 0 || self.model.trees.depth == 0 || self.model.trees.depth > 12
        {
            return Err(bad(
                "model.trees",
                "trees must be at least 1 and depth 1–12".into(),
            ));
        }
        for (key, v) in [
            ("model.trees.row_sample", self.model.trees.row_sample),
            ("model.trees.col_sample", self.model.trees.col_sample),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(bad(key, format!("{v} must be in (0, 1]")));
            }
        }
        for a in &self.model.protected.attributes {
            if !PROTECTED_ATTRIBUTES.contains(&a.as_str()) {
                return Err(bad(
                    "model.protected.attributes",
                    format!("`{a}` is not one of {}", PROTECTED_ATTRIBUTES.join(", ")),
                ));
            }
        }
        let f = &self.fairness;
        if !(f.band_low > 0.0 && f.band_low < 1.0 && f.band_high > 1.0) {
            return Err(bad(
                "fairness.band_low",
                format!(
                    "the band {}–{} must hold 1 (band_low in (0, 1), band_high above 1)",
                    f.band_low, f.band_high
                ),
            ));
        }
        if !(self.screen.capacity_scale > 0.0) {
            return Err(bad("screen.capacity_scale", "must be above 0".into()));
        }
        let scores = std::iter::once(("screen.min_score".to_string(), self.screen.min_score))
            .chain(
                self.screen
                    .min_score_districts
                    .iter()
                    .map(|(d, v)| (format!("screen.min_score_districts.{d}"), *v)),
            );
        for (key, v) in scores {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(&key, format!("{v} is not a probability in [0, 1]")));
            }
        }
        for d in self.screen.min_score_districts.keys() {
            // With a registry file of its own, codes are checked when the registry is loaded.
            let known =
                crate::registry::Registry::embedded().contains(d) || !self.registry.file.is_empty();
            if !known {
                return Err(bad(
                    &format!("screen.min_score_districts.{d}"),
                    format!("`{d}` is not a district code of the registry"),
                ));
            }
        }
        if self.screen.escalate_after == 0 {
            return Err(bad("screen.escalate_after", "must be at least 1".into()));
        }
        if self.ingest.batch_records == 0 {
            return Err(bad("ingest.batch_records", "must be at least 1".into()));
        }
        let level = self.logging.level.to_ascii_lowercase();
        if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
            return Err(bad(
                "logging.level",
                format!(
                    "`{}` is not one of error, warn, info, debug, trace",
                    self.logging.level
                ),
            ));
        }
        let registry = self.registry()?;
        if let Some(code) = self.capacity.unknown_overrides(&registry).first() {
            return Err(bad(
                &format!("capacity.districts.{code}"),
                format!("district {code} is not in the district registry"),
            ));
        }
        Ok(())
    }

    /// The district registry these settings point at.
    pub fn registry(&self) -> Result<Registry, ConfigError> {
        if self.registry.file.is_empty() {
            Ok(Registry::embedded())
        } else {
            Ok(Registry::from_file(Path::new(&self.registry.file))?)
        }
    }
}

/// Turns the `config` crate's errors into ours, keeping the key and the origin it names.
fn convert(e: config::ConfigError, layers: &str) -> ConfigError {
    match e {
        config::ConfigError::Type {
            origin,
            unexpected,
            expected,
            key,
        } => ConfigError::Value {
            key: key.unwrap_or_else(|| "?".into()),
            layers: origin.unwrap_or_else(|| layers.to_string()),
            message: format!("found {unexpected}, expected {expected}"),
        },
        other => ConfigError::Invalid {
            layers: layers.to_string(),
            message: other.to_string(),
        },
    }
}

/// Hyper-parameters (config section `[model]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    /// L2 penalty of the logistic regression.
    pub logistic_alpha: f64,
    /// Share of the most recent labelled referrals held out for calibration and metrics.
    pub holdout_share: f64,
    pub trees: GbmParams,
    /// Reject inference (config section `[model.reject_inference]`).
    #[serde(default)]
    pub reject_inference: RejectInference,
    /// No model is fitted on fewer labelled referrals (a back-test fold with fewer is skipped).
    #[serde(default = "default_min_labels")]
    pub min_labels: usize,
    /// The largest weight an explored referral's outcome gets (its inverse selection
    /// probability, capped here).
    #[serde(default = "default_max_inverse_propensity")]
    pub max_inverse_propensity: f64,
    /// Protected attributes (config section `[model.protected]`).
    #[serde(default)]
    pub protected: ProtectedSettings,
    /// Owner and contact on the model cards (config section `[model.card]`).
    #[serde(default)]
    pub card: CardSettings,
}

/// Where protected attributes (disability, age band, household type; features.toml marks each
/// feature's `protected` attribute) may go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedSettings {
    /// Which attributes this applies to: any of `disability`, `age_band`, `household_type`.
    pub attributes: Vec<String>,
    /// Models never see them: their features are held at their imputed value in fitting and
    /// scoring, so they cannot move a score.
    pub out_of_model: bool,
    /// They are never shown to caseworkers as a reason (the score may still use them).
    pub out_of_reasons: bool,
}

impl Default for ProtectedSettings {
    fn default() -> Self {
        ProtectedSettings {
            attributes: vec![
                "disability".into(),
                "age_band".into(),
                "household_type".into(),
            ],
            out_of_model: false,
            out_of_reasons: true,
        }
    }
}

/// The attributes [`ProtectedSettings::attributes`] may name.
pub const PROTECTED_ATTRIBUTES: [&str; 3] = ["disability", "age_band", "household_type"];

fn default_max_inverse_propensity() -> f64 {
    20.0
}

fn default_min_labels() -> usize {
    20
}

/// Reject inference: screened households that were never referred and whose evidence was weak
/// enter training as down-weighted negatives. Labels exist only for households some rule chose
/// to visit; without these rows a model never sees the many households that look nothing like
/// a referral, and may rank some of them high for reasons it never had to unlearn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectInference {
    /// Inferred negatives per labelled referral used for fitting (0 turns it off).
    pub share: f64,
    /// The weight of each inferred negative (a labelled referral weighs 1).
    pub weight: f64,
    /// "Weak evidence": at or below this quantile of the rule's score among the night's
    /// never-referred screened households.
    pub evidence_quantile: f64,
    /// At most this many referral nights are sampled from (evenly spread over the window).
    pub nights: usize,
}

impl Default for RejectInference {
    fn default() -> Self {
        RejectInference {
            share: 0.5,
            weight: 0.3,
            evidence_quantile: 0.5,
            nights: 12,
        }
    }
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            logistic_alpha: 50.0,
            holdout_share: 0.25,
            trees: GbmParams::default(),
            reject_inference: RejectInference::default(),
            min_labels: default_min_labels(),
            max_inverse_propensity: default_max_inverse_propensity(),
            protected: ProtectedSettings::default(),
            card: CardSettings::default(),
        }
    }
}

/// Gradient-boosted trees' hyper-parameters (config section `[model.trees]`; also kept in each
/// saved model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbmParams {
    pub trees: usize,
    pub depth: usize,
    pub learning_rate: f64,
    pub lambda: f64,
    pub min_child_weight: f64,
    pub row_sample: f64,
    pub col_sample: f64,
    pub seed: u64,
    /// Early stopping: `trees` is the most grown; the size kept is the one with the lowest log
    /// loss on a time-ordered validation slice, once this many further trees have not improved
    /// on it. The model is then refitted on every labelled row at that size.
    #[serde(default = "default_early_stopping_rounds")]
    pub early_stopping_rounds: usize,
    /// The most recent share of the fitting rows that early stopping measures on.
    #[serde(default = "default_validation_share")]
    pub validation_share: f64,
}

fn default_early_stopping_rounds() -> usize {
    30
}

fn default_validation_share() -> f64 {
    0.2
}

impl Default for GbmParams {
    fn default() -> Self {
        GbmParams {
            trees: 300,
            depth: 4,
            learning_rate: 0.1,
            lambda: 1.0,
            min_child_weight: 2.0,
            row_sample: 0.8,
            col_sample: 0.8,
            seed: 7,
            early_stopping_rounds: default_early_stopping_rounds(),
            validation_share: default_validation_share(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Sources {
        Sources {
            file: None,
            env: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn embedded_defaults_load() {
        let s = Settings::defaults();
        assert_eq!(s.topics.utility_arrears, "signals.utility-arrears");
        assert_eq!(s.capacity.county, 8);
        assert_eq!(s.logging.format, LogFormat::Plain);
    }

    #[test]
    fn file_layer_overrides_defaults_and_env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.toml");
        std::fs::write(
            &path,
            "[kafka]\nbrokers = \"k1:9092\"\n[capacity]\ncity = 25\n[capacity.districts]\n\"11110\" = 40\n",
        )
        .unwrap();
        let mut src = env(&[("LANTERN__KAFKA__BROKERS", "k2:9092")]);
        src.file = Some(path);
        let s = Settings::load(&src).unwrap();
        assert_eq!(s.kafka.brokers, "k2:9092");
        assert_eq!(s.capacity.city, 25);
        assert_eq!(s.capacity.districts.get("11110"), Some(&40));
        assert_eq!(s.capacity.county, 8);
    }

    #[test]
    fn env_sets_nested_maps_and_numbers() {
        let s = Settings::load(&env(&[
            ("LANTERN__CAPACITY__COUNTY", "11"),
            ("LANTERN__CAPACITY__DISTRICTS__41110", "33"),
            (
                "LANTERN__PSEUDONYMIZATION__FIELDS",
                "customer_no,meter_owner",
            ),
        ]))
        .unwrap();
        assert_eq!(s.capacity.county, 11);
        assert_eq!(s.capacity.districts.get("41110"), Some(&33));
        assert_eq!(
            s.pseudonymization.fields,
            vec!["customer_no", "meter_owner"]
        );
    }

    #[test]
    fn a_bad_value_names_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[capacity]\ncity = \"lots\"\n").unwrap();
        let mut src = env(&[]);
        src.file = Some(path.clone());
        let msg = Settings::load(&src).unwrap_err().to_string();
        assert!(msg.contains("capacity.city"), "{msg}");
        assert!(msg.contains("bad.toml"), "{msg}");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.toml");
        std::fs::write(&path, "[kafka]\nbrokerz = \"x\"\n").unwrap();
        let mut src = env(&[]);
        src.file = Some(path);
        let msg = Settings::load(&src).unwrap_err().to_string();
        assert!(msg.contains("brokerz"), "{msg}");
        assert!(msg.contains("typo.toml"), "{msg}");
    }

    #[test]
    fn semantic_checks_name_the_key() {
        let msg = Settings::load(&env(&[("LANTERN__LOGGING__LEVEL", "loud")]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("logging.level"), "{msg}");
        let msg = Settings::load(&env(&[("LANTERN__TOPICS__CASE_INTAKE", "bad topic!")]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("topics.case_intake"), "{msg}");
        let msg = Settings::load(&env(&[("LANTERN__CAPACITY__DISTRICTS__99999", "3")]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("capacity.districts.99999"), "{msg}");
    }

    #[test]
    fn a_missing_config_file_says_so() {
        let mut src = env(&[]);
        src.file = Some(PathBuf::from("/nonexistent/lantern.toml"));
        let msg = Settings::load(&src).unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/lantern.toml"), "{msg}");
    }

    #[test]
    fn pseudonym_key_comes_from_a_file_and_must_be_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "short\n").unwrap();
        let mut p = Settings::defaults().pseudonymization;
        p.key_file = path.display().to_string();
        assert!(p
            .load_key()
            .unwrap_err()
            .to_string()
            .contains("at least 16"));
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        assert_eq!(p.load_key().unwrap(), b"0123456789abcdef0123");
    }
}
