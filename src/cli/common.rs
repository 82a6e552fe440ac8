//! Small helpers the commands share.

use anyhow::Result;
use chrono::NaiveDate;

pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; write it as YYYY-MM-DD"))
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `--engine`, over the configuration's `features.engine`: where the feature plans run.
#[derive(Debug, clap::Args)]
pub struct EngineArg {
    /// Where the feature plans run: `local` (this process) or `ballista://HOST:PORT`, the
    /// scheduler of a Ballista cluster (scripts/ballista.sh, docs/DEPLOY.md) [default:
    /// features.engine, `local`].
    #[arg(long, value_name = "ENGINE")]
    engine: Option<lantern::engine::QueryEngine>,
}

impl EngineArg {
    /// The settings with `--engine` applied.
    pub fn apply(&self, settings: &lantern::config::Settings) -> lantern::config::Settings {
        let mut settings = settings.clone();
        if let Some(engine) = &self.engine {
            settings.features.engine = engine.clone();
        }
        settings
    }
}
