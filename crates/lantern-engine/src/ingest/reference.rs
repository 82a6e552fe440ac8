//! Loading reference data: the households reference (SPEC §2, CSV) and past referral lists
//! (SPEC §4 records, NDJSON), for `lantern import`. Bad rows go to the dead-letter file with
//! their line and reason, like bad signals; good rows are written whole and atomically.

use std::io::BufRead;
use std::path::Path;

use crate::contract::rrn::mask_rrn;
use crate::contract::{Household, Referral, RejectReason, Rejection, Validator};
use crate::lake::reference::{import_referrals, write_households};

use super::{DeadLetter, DeadLetterSink, IngestError, Origin};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub accepted: u64,
    pub rejected: u64,
    /// Referral nights written (referral imports only).
    pub nights: usize,
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Read {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a households CSV (header row with SPEC §2 column names), validates every row and
/// replaces `<data.dir>/reference/households.parquet` with the valid ones.
pub fn import_households(
    path: &Path,
    validator: &Validator,
    data_dir: &Path,
    dead: &mut dyn DeadLetterSink,
) -> Result<ImportReport, IngestError> {
    let file = std::fs::File::open(path).map_err(read_err(path))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let headers = reader
        .headers()
        .map_err(|e| read_err(path)(std::io::Error::other(e.to_string())))?
        .clone();
    let mut households: Vec<Household> = Vec::new();
    let mut report = ImportReport::default();
    for (i, row) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let origin = Origin::File {
            file: path.display().to_string(),
            line,
        };
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                report.rejected += 1;
                dead.send(&DeadLetter::new(
                    Rejection::new(RejectReason::InvalidEncoding, "", e.to_string()),
                    origin,
                    String::new(),
                ))?;
                continue;
            }
        };
        let get = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .and_then(|j| row.get(j))
        };
        match validator.household(get) {
            Ok(h) => {
                report.accepted += 1;
                households.push(h);
            }
            Err(rejection) => {
                report.rejected += 1;
                let payload = mask_rrn(&row.iter().collect::<Vec<_>>().join(",")).into_owned();
                dead.send(&DeadLetter::new(rejection, origin, payload))?;
            }
        }
    }
    dead.flush()?;
    // The last row for a household wins, as a later correction would.
    let mut seen = std::collections::HashSet::new();
    households.reverse();
    households.retain(|h| seen.insert(h.household_id.clone()));
    households.reverse();
    write_households(data_dir, &households)?;
    Ok(report)
}

/// Reads past referrals (one SPEC §4 JSON record per line) and files them by night under
/// `<data.dir>/referrals/`, validated by [`Validator::referral`]: any system's ids (not only
/// Lantern's), any model name, `rank`, `score`, `model` and `reasons` optional; the
/// personal-identifier guard, household, district and date rules as for every input. Each
/// rejected line goes to the dead-letter sink with its reason and field.
pub fn import_referral_history(
    path: &Path,
    validator: &Validator,
    data_dir: &Path,
    dead: &mut dyn DeadLetterSink,
) -> Result<ImportReport, IngestError> {
    let file = std::fs::File::open(path).map_err(read_err(path))?;
    let mut report = ImportReport::default();
    let mut referrals = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line_no = i as u64 + 1;
        let text = line.map_err(read_err(path))?;
        if text.trim().is_empty() {
            continue;
        }
        let origin = || Origin::File {
            file: path.display().to_string(),
            line: line_no,
        };
        // Validated like every input: the personal-identifier guard, the id, household and
        // district rules; another system's ids, model names and missing fields are fine.
        let parsed: Result<Referral, Rejection> = validator.referral(text.as_bytes());
        match parsed {
            Ok(r) => {
                report.accepted += 1;
                referrals.push(r);
            }
            Err(rejection) => {
                report.rejected += 1;
                dead.send(&DeadLetter::new(
                    rejection,
                    origin(),
                    mask_rrn(&text).into_owned(),
                ))?;
            }
        }
    }
    dead.flush()?;
    report.nights = import_referrals(data_dir, referrals)?;
    Ok(report)
}
