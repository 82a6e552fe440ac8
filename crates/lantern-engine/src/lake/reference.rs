//! The two tables beside the signal lake that features read: the households reference
//! (SPEC §2) and the referral lists (SPEC §4), past and present.
//!
//! ```text
//! <data.dir>/reference/households.parquet            replaced whole by each import
//! <data.dir>/referrals/as_of=YYYY-MM-DD/referrals.parquet   one file per issued night
//! <data.dir>/referrals/as_of=YYYY-MM-DD/withdrawn.parquet   referrals a correction replaced
//! <data.dir>/drafts/as_of=YYYY-MM-DD/referrals.parquet      what-if runs, never read back
//! ```
//!
//! **Only issued referrals are history.** A night's list enters `referrals/` when it is issued:
//! published to `case-intake`, marked issued by `lantern issue` (a deployment that hands lists
//! over as files), or imported from the system Lantern replaces. A dry run (`lantern screen`
//! without `--publish`) writes the same files under `drafts/`, which no later night, feature or
//! link reads: a what-if changes nothing.
//!
//! **One list per district per night.** Once a night is issued, a re-run republishes that list
//! unchanged; only an explicit, audited correction (`--supersede`) replaces it, and the
//! referrals it replaces move to `withdrawn.parquet` (still linked to their outcomes).
//!
//! Referral lists are both an output (what districts receive) and an input: a household's
//! earlier referrals and their outcomes are features, and the open ones drive the cool-down.
//! Lists from the system Lantern replaces are imported into the same layout
//! (`lantern import --referrals FILE`), so history looks the same whoever produced it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder,
    RecordBatch, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int32Type, Schema, SchemaRef,
};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{date_from_days, days_since_epoch, write_parquet_atomic, LakeError};
use crate::contract::{Exclusion, Household, Placement, ReasonCode, Referral, Vocab};

/// `<data.dir>/reference/households.parquet`.
pub fn households_path(data_dir: &Path) -> PathBuf {
    data_dir.join("reference").join("households.parquet")
}

/// `<data.dir>/referrals/`.
pub fn referrals_root(data_dir: &Path) -> PathBuf {
    data_dir.join("referrals")
}

/// `<data.dir>/referrals/as_of=YYYY-MM-DD/` (SPEC §4).
pub fn referrals_dir(data_dir: &Path, as_of: NaiveDate) -> PathBuf {
    referrals_root(data_dir).join(format!("as_of={as_of}"))
}

/// `<data.dir>/drafts/`: what-if lists.
pub fn drafts_root(data_dir: &Path) -> PathBuf {
    data_dir.join("drafts")
}

/// `<data.dir>/drafts/as_of=YYYY-MM-DD/`.
pub fn drafts_dir(data_dir: &Path, as_of: NaiveDate) -> PathBuf {
    drafts_root(data_dir).join(format!("as_of={as_of}"))
}

/// A fresh folder for writing a night's set of files before it replaces the old set in one
/// step (see [`super::replace_dir`]): `<data.dir>/.staging/as_of=D-<pid>-<n>`, outside every
/// folder a reader lists, on the same filesystem.
pub fn staging_dir(data_dir: &Path, as_of: NaiveDate) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    data_dir.join(".staging").join(format!(
        "as_of={as_of}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Whether the night `as_of` has been issued (its list is history).
pub fn is_issued(data_dir: &Path, as_of: NaiveDate) -> bool {
    referrals_dir(data_dir, as_of)
        .join("referrals.parquet")
        .exists()
}

/// `<referrals dir>/withdrawn.parquet`.
pub fn withdrawn_path(data_dir: &Path, as_of: NaiveDate) -> PathBuf {
    referrals_dir(data_dir, as_of).join("withdrawn.parquet")
}

/// The referrals of the night that corrections replaced.
pub fn read_withdrawn(data_dir: &Path, as_of: NaiveDate) -> Result<Vec<Referral>, LakeError> {
    read_referral_file(&withdrawn_path(data_dir, as_of))
}

pub fn households_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("household_id", DataType::Utf8, false),
        Field::new("district_code", DataType::Utf8, false),
        Field::new("dong_code", DataType::Utf8, true),
        Field::new("members", DataType::Int32, false),
        Field::new("head_age_band", DataType::Utf8, false),
        Field::new("household_type", DataType::Utf8, false),
        Field::new("disability", DataType::Boolean, false),
    ]))
}

/// Writes the households reference, replacing the previous one atomically.
pub fn write_households(data_dir: &Path, households: &[Household]) -> Result<PathBuf, LakeError> {
    let mut id = StringBuilder::new();
    let mut district = StringBuilder::new();
    let mut dong = StringBuilder::new();
    let mut members = Int32Builder::with_capacity(households.len());
    let mut age = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut disability = BooleanBuilder::with_capacity(households.len());
    for h in households {
        id.append_value(&h.household_id);
        district.append_value(&h.district_code);
        dong.append_option(h.dong_code.as_deref());
        members.append_value(h.members as i32);
        age.append_value(h.head_age_band.as_str());
        kind.append_value(h.household_type.as_str());
        disability.append_value(h.disability);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(district.finish()),
        Arc::new(dong.finish()),
        Arc::new(members.finish()),
        Arc::new(age.finish()),
        Arc::new(kind.finish()),
        Arc::new(disability.finish()),
    ];
    let path = households_path(data_dir);
    let batch =
        RecordBatch::try_new(households_schema(), columns).map_err(|e| arrow_err(&path, e))?;
    write_parquet_atomic(&path, &[batch])?;
    Ok(path)
}

/// The referral list schema. `reasons` holds the SPEC §4 array as JSON text, so the file opens
/// in any Parquet reader; `placement`, `overrode` and `selection_probability` are documented
/// extensions (docs/CONTRACT.md).
pub fn referrals_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("referral_id", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("district_code", DataType::Utf8, false),
        Field::new("dong_code", DataType::Utf8, true),
        Field::new("household_id", DataType::Utf8, false),
        Field::new("rank", DataType::Int32, false),
        Field::new("score", DataType::Float64, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("reasons", DataType::Utf8, false),
        Field::new("placement", DataType::Utf8, true),
        Field::new("overrode", DataType::Utf8, true),
        Field::new("selection_probability", DataType::Float64, true),
    ]))
}

/// Builds the Arrow batch of a referral list.
pub fn referrals_batch(referrals: &[Referral]) -> Result<RecordBatch, LakeError> {
    let n = referrals.len();
    let mut id = StringBuilder::new();
    let mut as_of = Date32Builder::with_capacity(n);
    let mut district = StringBuilder::new();
    let mut dong = StringBuilder::new();
    let mut household = StringBuilder::new();
    let mut rank = Int32Builder::with_capacity(n);
    let mut score = Float64Builder::with_capacity(n);
    let mut model = StringBuilder::new();
    let mut reasons = StringBuilder::new();
    let mut placement = StringBuilder::new();
    let mut overrode = StringBuilder::new();
    let mut selection = Float64Builder::with_capacity(n);
    for r in referrals {
        selection.append_option(r.selection_probability);
        placement.append_option(r.placement.map(|p| p.as_str()));
        overrode.append_option(r.overrode.map(|e| e.as_str()));
        id.append_value(&r.referral_id);
        as_of.append_value(days_since_epoch(r.as_of));
        district.append_value(&r.district_code);
        dong.append_option(r.dong_code.as_deref());
        household.append_value(&r.household_id);
        rank.append_value(r.rank as i32);
        score.append_value(r.score);
        model.append_value(&r.model);
        reasons.append_value(serde_json::to_string(&r.reasons).unwrap_or_else(|_| "[]".into()));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(as_of.finish()),
        Arc::new(district.finish()),
        Arc::new(dong.finish()),
        Arc::new(household.finish()),
        Arc::new(rank.finish()),
        Arc::new(score.finish()),
        Arc::new(model.finish()),
        Arc::new(reasons.finish()),
        Arc::new(placement.finish()),
        Arc::new(overrode.finish()),
        Arc::new(selection.finish()),
    ];
    RecordBatch::try_new(referrals_schema(), columns)
        .map_err(|e| arrow_err(Path::new("referrals.parquet"), e))
}

/// Writes one night's referrals (all districts) as `referrals/as_of=D/referrals.parquet`,
/// replacing the file of an earlier run of the same night. An empty night writes an empty file,
/// so "screened, nobody referred" differs from "not screened".
pub fn write_referrals(
    data_dir: &Path,
    as_of: NaiveDate,
    referrals: &[Referral],
) -> Result<PathBuf, LakeError> {
    let path = referrals_dir(data_dir, as_of).join("referrals.parquet");
    write_referral_file(&path, referrals)?;
    Ok(path)
}

/// Writes a referral list file (atomically and durably) at `path`.
pub fn write_referral_file(path: &Path, referrals: &[Referral]) -> Result<(), LakeError> {
    write_parquet_atomic(path, &[referrals_batch(referrals)?])
}

/// Imports past referrals (SPEC §4 records) into the per-night layout, merging with what a
/// night's file already holds (the same `referral_id` once). Returns how many nights were written.
pub fn import_referrals(data_dir: &Path, referrals: Vec<Referral>) -> Result<usize, LakeError> {
    let mut by_night: BTreeMap<NaiveDate, BTreeMap<String, Referral>> = BTreeMap::new();
    for r in referrals {
        by_night
            .entry(r.as_of)
            .or_default()
            .insert(r.referral_id.clone(), r);
    }
    for (as_of, mut night) in by_night.iter_mut().map(|(d, m)| (*d, std::mem::take(m))) {
        for old in read_referrals(data_dir, as_of)? {
            night.entry(old.referral_id.clone()).or_insert(old);
        }
        let mut list: Vec<Referral> = night.into_values().collect();
        list.sort_by(|a, b| {
            (&a.district_code, a.rank, &a.household_id).cmp(&(
                &b.district_code,
                b.rank,
                &b.household_id,
            ))
        });
        write_referrals(data_dir, as_of, &list)?;
    }
    touch_referrals_root(data_dir)?;
    Ok(by_night.len())
}

/// Marks the referral folder as changed (a fresh stamp in `referrals/.changed`), for readers
/// that index it (ingest's outcome links) and re-read it only when it changed. Every writer of
/// a list calls it: imports, issued nights, corrections.
pub fn touch_referrals_root(data_dir: &Path) -> Result<(), LakeError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    // Unique whatever the clock's granularity: time, process and a counter.
    let stamp = format!(
        "{} {} {}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    super::write_bytes_atomic(&referrals_root(data_dir).join(".changed"), stamp.as_bytes())
}

/// The nights that have a referral list, oldest first.
pub fn referral_nights(data_dir: &Path) -> Result<Vec<NaiveDate>, LakeError> {
    let root = referrals_root(data_dir);
    let mut nights = Vec::new();
    for entry in super::entries(&root)? {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(d) = name
            .strip_prefix("as_of=")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        {
            if entry.join("referrals.parquet").exists() {
                nights.push(d);
            }
        }
    }
    nights.sort();
    Ok(nights)
}

/// One night's referrals; none if that night has no list.
pub fn read_referrals(data_dir: &Path, as_of: NaiveDate) -> Result<Vec<Referral>, LakeError> {
    read_referral_file(&referrals_dir(data_dir, as_of).join("referrals.parquet"))
}

/// A referral list file (referrals or withdrawn); none if the file does not exist.
pub fn read_referral_file(path: &Path) -> Result<Vec<Referral>, LakeError> {
    let path = path.to_path_buf();
    if !path.exists() {
        return Ok(Vec::new());
    }
    let file = std::fs::File::open(&path).map_err(super::io_err(&path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(super::pq_err(&path))?
        .build()
        .map_err(super::pq_err(&path))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| arrow_err(&path, e))?;
        // Cast each column to the type Lantern writes, so a file rewritten by another tool
        // (large strings, string views, int64 ranks) reads the same, and a wrong one is an
        // error naming the column rather than a panic.
        let col = |name: &str, to: &DataType| -> Result<ArrayRef, LakeError> {
            let c = batch
                .column_by_name(name)
                .ok_or_else(|| LakeError::Parquet {
                    path: path.clone(),
                    message: format!(
                        "column `{name}` is missing; was this file written by Lantern?"
                    ),
                })?;
            cast(c, to).map_err(|e| LakeError::Parquet {
                path: path.clone(),
                message: format!("column `{name}` cannot be read as {to}: {e}"),
            })
        };
        let (id, district, dong, household, model, reasons) = (
            col("referral_id", &DataType::Utf8)?,
            col("district_code", &DataType::Utf8)?,
            col("dong_code", &DataType::Utf8)?,
            col("household_id", &DataType::Utf8)?,
            col("model", &DataType::Utf8)?,
            col("reasons", &DataType::Utf8)?,
        );
        let (id, district, dong, household, model, reasons) = (
            id.as_string::<i32>(),
            district.as_string::<i32>(),
            dong.as_string::<i32>(),
            household.as_string::<i32>(),
            model.as_string::<i32>(),
            reasons.as_string::<i32>(),
        );
        // Columns added after the first release: absent in older lists, read as null.
        let optional = |name: &str| -> Result<Option<ArrayRef>, LakeError> {
            match batch.column_by_name(name) {
                None => Ok(None),
                Some(_) => col(name, &DataType::Utf8).map(Some),
            }
        };
        let (placement, overrode) = (optional("placement")?, optional("overrode")?);
        let text_at = |c: &Option<ArrayRef>, i: usize| -> Option<String> {
            let c = c.as_ref()?.as_string::<i32>();
            c.is_valid(i).then(|| c.value(i).to_string())
        };
        let as_of_c = col("as_of", &DataType::Date32)?;
        let as_of_c = as_of_c.as_primitive::<Date32Type>();
        let rank = col("rank", &DataType::Int32)?;
        let rank = rank.as_primitive::<Int32Type>();
        let score = col("score", &DataType::Float64)?;
        let score = score.as_primitive::<Float64Type>();
        let selection = match batch.column_by_name("selection_probability") {
            None => None,
            Some(_) => Some(col("selection_probability", &DataType::Float64)?),
        };
        let selection = selection.as_ref().map(|c| c.as_primitive::<Float64Type>());
        for i in 0..batch.num_rows() {
            let reasons: Vec<ReasonCode> =
                serde_json::from_str(reasons.value(i)).map_err(|e| LakeError::Parquet {
                    path: path.clone(),
                    message: format!("row {i}: reasons are not valid JSON: {e}"),
                })?;
            out.push(Referral {
                referral_id: id.value(i).to_string(),
                as_of: date_from_days(as_of_c.value(i)),
                district_code: district.value(i).to_string(),
                dong_code: dong.is_valid(i).then(|| dong.value(i).to_string()),
                household_id: household.value(i).to_string(),
                rank: rank.value(i).max(1) as u32,
                score: score.value(i),
                model: model.value(i).to_string(),
                reasons,
                placement: text_at(&placement, i).and_then(|p| Placement::parse(&p)),
                overrode: text_at(&overrode, i).and_then(|e| Exclusion::parse(&e)),
                selection_probability: selection.filter(|c| c.is_valid(i)).map(|c| c.value(i)),
            });
        }
    }
    Ok(out)
}

fn arrow_err(path: &Path, e: impl std::fmt::Display) -> LakeError {
    LakeError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
