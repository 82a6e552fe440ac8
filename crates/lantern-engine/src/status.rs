//! Status files a process leaves for others to read: the last successfully issued night,
//! which the ingest daemon's `/metrics` reports (screening runs as its own process).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The last successful night, for monitoring (`<data.dir>/status/last-night.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastNight {
    pub as_of: NaiveDate,
    /// Unix seconds when it finished.
    pub finished_at: i64,
    pub referred: u64,
    pub issued: bool,
}

pub fn last_night_path(data_dir: &Path) -> PathBuf {
    data_dir.join("status").join("last-night.json")
}

/// The last successful night, if any.
pub fn last_night(data_dir: &Path) -> Option<LastNight> {
    let bytes = std::fs::read(last_night_path(data_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
