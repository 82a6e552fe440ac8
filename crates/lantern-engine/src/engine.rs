//! Where the night's DataFusion plans run: in this process, or on an Apache DataFusion Ballista
//! cluster.
//!
//! The feature query is one DataFusion plan whichever engine runs it: the same SQL from
//! `pipelines/`, over the same tables. [`QueryEngine::Local`] executes it in this process;
//! [`QueryEngine::Ballista`] sends the plan to a Ballista scheduler, whose executors read the
//! lake (a folder every executor sees) and return the result. A slice's cohort is written under
//! `<data>/.scratch/` for them to read; Lantern's small in-memory tables travel inside the plan,
//! through the codec in [`crate::cluster`]. Scoring, ranking and the outputs stay in this process: they are Rust over
//! the features a slice returns, a small fraction of the night's time (`lantern screen` prints
//! its time by phase).
//!
//! Setting: `features.engine` in the configuration, or `--engine` on `lantern screen`, `train`,
//! `backtest` and `features`. Ballista needs a build with the `ballista` cargo feature.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where the DataFusion plans run (config `features.engine`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QueryEngine {
    /// In this process.
    #[default]
    Local,
    /// On the Ballista cluster whose scheduler listens at `host:port`.
    Ballista { scheduler: String },
}

/// Why an engine setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "unknown query engine {0:?}: write `local`, or `ballista://HOST:PORT` for the scheduler \
         of a Ballista cluster (scripts/ballista.sh starts one; docs/DEPLOY.md)"
    )]
    Unknown(String),
    #[error(
        "this lantern was built without the Ballista engine, so it cannot run on {0}: build it \
         with `cargo build --release --features ballista`, or set the engine to `local`"
    )]
    NotBuilt(String),
    #[error(
        "cannot reach the Ballista scheduler at {scheduler}: {message}. Start the cluster \
         (scripts/ballista.sh start DIR on one machine; docs/DEPLOY.md), or run with \
         --engine local"
    )]
    Connect { scheduler: String, message: String },
}

impl FromStr for QueryEngine {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<QueryEngine, EngineError> {
        let s = s.trim();
        if s.is_empty() || s == "local" {
            return Ok(QueryEngine::Local);
        }
        let Some(rest) = s.strip_prefix("ballista://") else {
            return Err(EngineError::Unknown(s.to_string()));
        };
        let rest = rest.trim_end_matches('/');
        match rest.rsplit_once(':') {
            Some((host, port))
                if !host.is_empty()
                    && !host.contains('/')
                    && port.parse::<u16>().is_ok_and(|p| p > 0) =>
            {
                Ok(QueryEngine::Ballista {
                    scheduler: rest.to_string(),
                })
            }
            _ => Err(EngineError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for QueryEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryEngine::Local => f.write_str("local"),
            QueryEngine::Ballista { scheduler } => write!(f, "ballista://{scheduler}"),
        }
    }
}

impl Serialize for QueryEngine {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for QueryEngine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<QueryEngine, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl QueryEngine {
    /// Checks the engine can be used now: built in, and for a cluster, its scheduler reachable.
    /// Called once when the feature engine opens, so a missing cluster is one clear error
    /// before any work.
    pub fn check(&self) -> Result<(), EngineError> {
        match self {
            QueryEngine::Local => Ok(()),
            #[cfg(feature = "ballista")]
            QueryEngine::Ballista { scheduler } => crate::cluster::reachable(scheduler),
            #[cfg(not(feature = "ballista"))]
            QueryEngine::Ballista { .. } => Err(EngineError::NotBuilt(self.to_string())),
        }
    }

    /// A session with `config` and `runtime` whose plans run on this engine. Tables are
    /// registered on it as on any DataFusion session.
    pub async fn session(
        &self,
        config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
    ) -> Result<SessionContext, EngineError> {
        match self {
            QueryEngine::Local => Ok(SessionContext::new_with_config_rt(config, runtime)),
            #[cfg(feature = "ballista")]
            QueryEngine::Ballista { scheduler } => {
                crate::cluster::remote_session(scheduler, config, runtime).await
            }
            #[cfg(not(feature = "ballista"))]
            QueryEngine::Ballista { .. } => Err(EngineError::NotBuilt(self.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_settings_parse_and_print_back() {
        assert_eq!("local".parse::<QueryEngine>().unwrap(), QueryEngine::Local);
        assert_eq!("".parse::<QueryEngine>().unwrap(), QueryEngine::Local);
        let e: QueryEngine = "ballista://127.0.0.1:50050".parse().unwrap();
        assert_eq!(
            e,
            QueryEngine::Ballista {
                scheduler: "127.0.0.1:50050".into()
            }
        );
        assert_eq!(e.to_string(), "ballista://127.0.0.1:50050");
    }

    #[test]
    fn a_wrong_engine_setting_says_what_to_write() {
        for bad in [
            "ballista",
            "ballista://host",
            "ballista://:50050",
            "ballista://host:0",
            "ballista://host:port",
            "spark://host:7077",
        ] {
            let err = bad.parse::<QueryEngine>().unwrap_err().to_string();
            assert!(err.contains("ballista://HOST:PORT"), "{bad}: {err}");
        }
    }
}
