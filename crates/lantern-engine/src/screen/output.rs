//! A screening night's files (SPEC §4), under `<data.dir>/referrals/as_of=YYYY-MM-DD/`:
//!
//! ```text
//! referrals.parquet          every district's referrals (pandas, polars, DuckDB)
//! <district_code>.csv        one per registered district, UTF-8 with BOM and Korean headers,
//!                            so Excel opens it; header only when the district has no referral
//! html/index.html            the districts, their capacity and list length, linked to
//! html/<district_code>.html  the ranked list with reasons in Korean and the signals behind them
//! ```
//!
//! The set is written whole into a fresh staging folder, with `MANIFEST.json` (every file's
//! SHA-256) last, made durable, and then put in the place of the night's folder in one step
//! ([`crate::lake::replace_dir`]): after a crash a reader finds the complete old set or the
//! complete new one, never a torn mixture. The same hashes go into the audit log.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use sha2::{Digest, Sha256};

use super::{Priority, ScreenError, Screening};
use crate::features::FeatureEngine;

fn render(name: &str, ctx: serde_json::Value) -> Result<String, ScreenError> {
    crate::templates::render(name, ctx).map_err(|e| ScreenError::Output(e.to_string()))
}
use crate::fairness::GroupRow;
use crate::lake::reference::{drafts_dir, staging_dir, write_referral_file};
use crate::registry::Registry;

/// One signal behind a referral, for the caseworker's page.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignalLine {
    pub observed_on: String,
    pub source: String,
    /// In Korean: `전기요금 3개월 체납 (공급 중단)`.
    pub text: String,
    /// The contract's codes behind the Korean words (`isolation,food`, `energy_voucher`), for a
    /// tooltip: what the sending agency wrote.
    pub codes: String,
}

/// The files written and their SHA-256.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub dir: PathBuf,
    pub parquet: PathBuf,
    pub index_html: PathBuf,
    pub hashes: BTreeMap<String, String>,
}

fn utility_ko(u: &str) -> &str {
    match u {
        "electricity" => "전기요금",
        "water" => "수도요금",
        "gas" => "가스요금",
        "telecom" => "통신요금",
        "health_insurance" => "건강보험료",
        "housing_fee" => "관리비",
        "rent" => "임차료",
        "pension_loan" => "연금·대출",
        "credit" => "금융채무",
        other => other,
    }
}

fn program_ko(p: &str) -> &str {
    match p {
        "basic_livelihood" => "기초생활보장",
        "emergency_welfare" => "긴급복지지원",
        "housing_benefit" => "주거급여",
        "basic_pension" => "기초연금",
        "disability_pension" => "장애인연금",
        "child_allowance" => "아동수당",
        "energy_voucher" => "에너지바우처",
        "medical_aid" => "의료급여",
        "other" => "기타 서비스",
        other => other,
    }
}

fn gap_ko(g: &str) -> &str {
    match g {
        "benefit_terminated" => "급여 중지",
        "application_rejected" => "신청 탈락",
        "eligible_not_enrolled" => "자격 있으나 미신청",
        "service_ended" => "서비스 종료",
        "contact_failed" => "연락 두절",
        other => other,
    }
}

/// The signals known by `as_of` in the look-back window for the referred households, each event
/// once (the deduplicated `*_events` tables).
pub async fn signals_behind(
    engine: &FeatureEngine,
    as_of: NaiveDate,
    households: &[String],
) -> Result<HashMap<String, Vec<SignalLine>>, ScreenError> {
    // Each event once (a re-sent copy with other dates is not shown twice), from the signal
    // state's compact files rather than a year of small lake files.
    engine.register_all_events().await?;
    let ctx = engine.context();
    let spec = engine.spec();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "household_id",
        DataType::Utf8,
        false,
    )]));
    let mut ids = StringBuilder::new();
    for h in households {
        ids.append_value(h);
    }
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(ids.finish())])
        .map_err(DataFusionError::from)?;
    ctx.deregister_table("selected")?;
    ctx.register_table(
        "selected",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    let start = as_of
        .checked_sub_days(Days::new(engine.spec().lookback_days as u64))
        .unwrap_or(NaiveDate::MIN);
    let window = format!(
        "e.observed_on > DATE '{start}' AND e.observed_on <= DATE '{as_of}' AND e.reported_on <= DATE '{as_of}' \
         AND e.month >= '{}' AND e.month <= '{}'",
        start.format("%Y-%m"),
        as_of.format("%Y-%m")
    );
    let queries = [
        format!("SELECT DISTINCT e.household_id, CAST(e.observed_on AS VARCHAR), e.source, e.utility, CAST(e.months_overdue AS VARCHAR), CAST(e.service_cut AS VARCHAR), 'arrears' FROM utility_arrears_events e JOIN selected s ON s.household_id = e.household_id WHERE {window}"),
        format!("SELECT DISTINCT e.household_id, CAST(e.observed_on AS VARCHAR), e.source, e.concerns, CAST(e.urgency AS VARCHAR), e.reporter_role, 'council' FROM council_report_events e JOIN selected s ON s.household_id = e.household_id WHERE {window}"),
        format!("SELECT DISTINCT e.household_id, CAST(e.observed_on AS VARCHAR), e.source, e.program, e.gap, '', 'gap' FROM service_gap_events e JOIN selected s ON s.household_id = e.household_id WHERE {window}"),
    ];
    let mut out: HashMap<String, Vec<SignalLine>> = HashMap::new();
    for q in queries {
        for b in engine.query(&q).await? {
            let cols: Vec<_> = (0..7)
                .map(|j| cast(b.column(j), &DataType::Utf8))
                .collect::<Result<_, _>>()
                .map_err(DataFusionError::from)?;
            let v = |j: usize, i: usize| -> String {
                let c = cols[j].as_string::<i32>();
                if c.is_valid(i) {
                    c.value(i).to_string()
                } else {
                    String::new()
                }
            };
            for i in 0..b.num_rows() {
                // Council concerns in Korean, from the feature catalogue's reason labels.
                let concerns_ko = || -> String {
                    v(3, i)
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(|c| {
                            spec.reason_label(&format!("concern_{c}"))
                                .map(|l| l.ko.clone())
                                .unwrap_or_else(|| c.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let codes = match v(6, i).as_str() {
                    "arrears" => v(3, i),
                    "council" => v(3, i),
                    _ => format!("{} {}", v(3, i), v(4, i)),
                };
                let text = match v(6, i).as_str() {
                    "arrears" => format!(
                        "{} {}개월 체납{}",
                        utility_ko(&v(3, i)),
                        v(4, i),
                        if v(5, i) == "true" {
                            " (공급 중단)"
                        } else {
                            ""
                        }
                    ),
                    "council" => format!("인적안전망 신고 (긴급도 {}): {}", v(4, i), concerns_ko()),
                    _ => format!("복지 서비스: {} {}", program_ko(&v(3, i)), gap_ko(&v(4, i))),
                };
                out.entry(v(0, i)).or_default().push(SignalLine {
                    observed_on: v(1, i),
                    source: v(2, i),
                    text,
                    codes,
                });
            }
        }
    }
    for lines in out.values_mut() {
        lines.sort_by(|a, b| b.cmp(a));
    }
    Ok(out)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes one file of a staged set. Durability comes once for the whole set, in [`commit`].
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ScreenError> {
    std::fs::write(path, bytes)
        .map_err(|e| ScreenError::Output(format!("cannot write {}: {e}", path.display())))?;
    crate::faults::crash_point("screen.output.file");
    Ok(())
}

/// The night's decision log: every screened household's score and what became of it.
pub const DECISIONS: &str = "decisions.parquet";

/// One row of a decision log, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    pub household_id: String,
    pub district_code: Option<String>,
    pub score: f64,
    /// `listed`, `below_cut`, `below_min_score`, `excluded` or `no_district`.
    pub outcome: String,
    pub rank: Option<u32>,
    /// The placement (`urgent`, `escalated`) or exclusion (`cooldown`, `recently_supported`).
    pub rule: Option<String>,
    /// The lowest score listed by score in the household's district that night (the cut).
    pub cut_score: Option<f64>,
    pub capacity: Option<u32>,
}

fn decisions_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("household_id", DataType::Utf8, false),
        Field::new("district_code", DataType::Utf8, true),
        Field::new("score", DataType::Float64, false),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("rank", DataType::Int32, true),
        Field::new("rule", DataType::Utf8, true),
        Field::new("cut_score", DataType::Float64, true),
        Field::new("capacity", DataType::Int32, true),
    ]))
}

/// The decision log of a screening as one Arrow batch.
fn decisions_batch(s: &Screening) -> Result<RecordBatch, ScreenError> {
    use super::DecisionOutcome as O;
    use datafusion::arrow::array::{Float64Builder, Int32Builder};
    // The cut of each district: its lowest score among households listed by score.
    let mut cut: HashMap<&str, f64> = HashMap::new();
    for r in s.referrals.iter().filter(|r| r.placement.is_none()) {
        let e = cut.entry(r.district_code.as_str()).or_insert(r.score);
        *e = e.min(r.score);
    }
    let (mut h, mut d, mut sc, mut o, mut rk, mut rl, mut c, mut cap) = (
        StringBuilder::new(),
        StringBuilder::new(),
        Float64Builder::new(),
        StringBuilder::new(),
        Int32Builder::new(),
        StringBuilder::new(),
        Float64Builder::new(),
        Int32Builder::new(),
    );
    for x in &s.decisions {
        h.append_value(&x.household_id);
        d.append_option(x.district_code.as_deref());
        sc.append_value(x.score);
        let (outcome, rank, rule) = match x.outcome {
            O::Listed { rank, placement } => {
                ("listed", Some(rank as i32), placement.map(|p| p.as_str()))
            }
            O::BelowCut => ("below_cut", None, None),
            O::BelowMinScore => ("below_min_score", None, None),
            O::Excluded(e) => ("excluded", None, Some(e.as_str())),
            O::NoDistrict => ("no_district", None, None),
        };
        o.append_value(outcome);
        rk.append_option(rank);
        rl.append_option(rule);
        let district = x.district_code.as_deref().unwrap_or("");
        c.append_option(cut.get(district).copied());
        cap.append_option(s.districts.get(district).map(|&(c, _)| c as i32));
    }
    RecordBatch::try_new(
        decisions_schema(),
        vec![
            Arc::new(h.finish()),
            Arc::new(d.finish()),
            Arc::new(sc.finish()),
            Arc::new(o.finish()),
            Arc::new(rk.finish()),
            Arc::new(rl.finish()),
            Arc::new(c.finish()),
            Arc::new(cap.finish()),
        ],
    )
    .map_err(|e| ScreenError::Output(format!("decision log: {e}")))
}

/// The decision rows of one household in a night's decision log (none if it was not screened).
pub fn read_decision(path: &Path, household_id: &str) -> Result<Option<DecisionRow>, ScreenError> {
    use datafusion::arrow::datatypes::{Float64Type, Int32Type};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let err = |e: &dyn std::fmt::Display| ScreenError::Output(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| err(&e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| err(&e))?
        .build()
        .map_err(|e| err(&e))?;
    for batch in reader {
        let b = batch.map_err(|e| err(&e))?;
        let col = |name: &str, t: &DataType| {
            b.column_by_name(name)
                .ok_or_else(|| err(&format!("column `{name}` missing")))
                .and_then(|c| cast(c, t).map_err(|e| err(&e)))
        };
        let hh = col("household_id", &DataType::Utf8)?;
        let hh = hh.as_string::<i32>();
        let Some(i) = (0..b.num_rows()).find(|&i| hh.value(i) == household_id) else {
            continue;
        };
        let text = |name: &str| -> Result<Option<String>, ScreenError> {
            let c = col(name, &DataType::Utf8)?;
            let c = c.as_string::<i32>();
            Ok(c.is_valid(i).then(|| c.value(i).to_string()))
        };
        let num = |name: &str| -> Result<Option<f64>, ScreenError> {
            let c = col(name, &DataType::Float64)?;
            let c = c.as_primitive::<Float64Type>();
            Ok(c.is_valid(i).then(|| c.value(i)))
        };
        let int = |name: &str| -> Result<Option<u32>, ScreenError> {
            let c = col(name, &DataType::Int32)?;
            let c = c.as_primitive::<Int32Type>();
            Ok(c.is_valid(i).then(|| c.value(i).max(0) as u32))
        };
        return Ok(Some(DecisionRow {
            household_id: household_id.to_string(),
            district_code: text("district_code")?,
            score: num("score")?.unwrap_or(f64::NAN),
            outcome: text("outcome")?.unwrap_or_default(),
            rank: int("rank")?,
            rule: text("rule")?,
            cut_score: num("cut_score")?,
            capacity: int("capacity")?,
        }));
    }
    Ok(None)
}

/// The manifest of a night's set: file name → SHA-256.
pub const MANIFEST: &str = "MANIFEST.json";

/// A night's set of files, complete in its staging folder, not yet in place.
#[derive(Debug)]
pub struct Staged {
    pub staging: PathBuf,
    pub hashes: BTreeMap<String, String>,
}

/// Puts a staged set in the place of `dest` in one step, first copying the files named in
/// `carry` (ledgers that outlive a re-run) from the old set if it has them.
pub fn commit(staged: Staged, dest: &Path, carry: &[&str]) -> Result<Outputs, ScreenError> {
    let err = |e: crate::lake::LakeError| ScreenError::Output(e.to_string());
    for name in carry {
        let from = dest.join(name);
        if from.exists() {
            std::fs::copy(&from, staged.staging.join(name))
                .map_err(|e| ScreenError::Output(format!("cannot copy {}: {e}", from.display())))?;
        }
    }
    crate::lake::sync_tree(&staged.staging).map_err(err)?;
    crate::faults::crash_point("screen.output.staged");
    crate::lake::replace_dir(&staged.staging, dest).map_err(err)?;
    Ok(Outputs {
        dir: dest.to_path_buf(),
        parquet: dest.join("referrals.parquet"),
        index_html: dest.join("html").join("index.html"),
        hashes: staged.hashes,
    })
}

/// The outputs of a set already in place, from its manifest (or, for a set written before
/// manifests, hashed afresh).
pub fn existing(dir: &Path) -> Result<Outputs, ScreenError> {
    let hashes = match std::fs::read(dir.join(MANIFEST)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| ScreenError::Output(format!("{}: {e}", dir.join(MANIFEST).display())))?,
        Err(_) => {
            let mut h = BTreeMap::new();
            let bytes = std::fs::read(dir.join("referrals.parquet"))
                .map_err(|e| ScreenError::Output(format!("{}: {e}", dir.display())))?;
            h.insert("referrals.parquet".to_string(), sha256(&bytes));
            h
        }
    };
    Ok(Outputs {
        dir: dir.to_path_buf(),
        parquet: dir.join("referrals.parquet"),
        index_html: dir.join("html").join("index.html"),
        hashes,
    })
}

/// Checks a set in place against its manifest: every file there, every hash right. For the
/// crash tests and for an operator who wants to know whether a night's files are intact.
pub fn verify_set(dir: &Path) -> Result<usize, ScreenError> {
    let out = existing(dir)?;
    for (name, hash) in &out.hashes {
        let bytes = std::fs::read(dir.join(name))
            .map_err(|e| ScreenError::Output(format!("{}: {e}", dir.join(name).display())))?;
        if &sha256(&bytes) != hash {
            return Err(ScreenError::Output(format!(
                "{} does not match the night's manifest",
                dir.join(name).display()
            )));
        }
    }
    Ok(out.hashes.len())
}

/// Removes staging folders left by processes that are gone (killed before they swapped their
/// set in, or after, before removing the old set). No reader looks at them; this only frees
/// the space.
fn remove_stale_staging(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir.join(".staging")) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // as_of=YYYY-MM-DD-<pid>-<n>
        let pid = name
            .rsplitn(3, '-')
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| {
            p == std::process::id() || Path::new("/proc").join(p.to_string()).exists()
        });
        if !alive && Path::new("/proc/self").exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Writes the night's set as a draft (`drafts/as_of=D/`): what a dry run leaves.
pub fn write(
    data_dir: &Path,
    s: &Screening,
    registry: &Registry,
    signals: &HashMap<String, Vec<SignalLine>>,
    fairness: &[GroupRow],
) -> Result<Outputs, ScreenError> {
    let staged = stage(data_dir, s, registry, signals, fairness)?;
    commit(staged, &drafts_dir(data_dir, s.as_of), &[])
}

fn flag(p: Option<&Priority>) -> (&'static str, &'static str) {
    match p {
        Some(Priority::Urgent) => ("Y", ""),
        Some(Priority::Escalated) => ("", "Y"),
        _ => ("", ""),
    }
}

/// The night's fairness audit, beside its lists ([`crate::screen::fairness`]).
pub const FAIRNESS: &str = "fairness.json";

/// Writes the night's Parquet, CSVs, HTML pages, fairness audit and manifest into a fresh
/// staging folder.
pub fn stage(
    data_dir: &Path,
    s: &Screening,
    registry: &Registry,
    signals: &HashMap<String, Vec<SignalLine>>,
    fairness: &[GroupRow],
) -> Result<Staged, ScreenError> {
    remove_stale_staging(data_dir);
    let dir = staging_dir(data_dir, s.as_of);
    let html_dir = dir.join("html");
    std::fs::create_dir_all(&html_dir)
        .map_err(|e| ScreenError::Output(format!("cannot create {}: {e}", html_dir.display())))?;
    let parquet = dir.join("referrals.parquet");
    write_referral_file(&parquet, &s.referrals).map_err(|e| ScreenError::Output(e.to_string()))?;
    crate::faults::crash_point("screen.output.file");
    let mut hashes = BTreeMap::new();
    let bytes = std::fs::read(&parquet).map_err(|e| ScreenError::Output(e.to_string()))?;
    hashes.insert("referrals.parquet".to_string(), sha256(&bytes));
    // Every screened household's decision (the largest file, about half a million rows at 1
    // million households) is written on a thread of its own while this one writes the lists.
    let decisions = dir.join(DECISIONS);
    let write_decisions = || -> Result<String, ScreenError> {
        crate::lake::write_parquet_atomic(&decisions, &[decisions_batch(s)?])
            .map_err(|e| ScreenError::Output(e.to_string()))?;
        let bytes = std::fs::read(&decisions).map_err(|e| ScreenError::Output(e.to_string()))?;
        Ok(sha256(&bytes))
    };
    let (decisions_hash, lists) = std::thread::scope(|scope| {
        let decisions = scope.spawn(write_decisions);
        let lists = stage_lists(&dir, &html_dir, s, registry, signals, fairness, &mut hashes);
        (
            decisions
                .join()
                .unwrap_or_else(|_| Err(ScreenError::Output("writing decisions panicked".into()))),
            lists,
        )
    });
    hashes.insert(DECISIONS.to_string(), decisions_hash?);
    lists?;
    let manifest = serde_json::to_vec_pretty(&hashes).expect("hashes serialize");
    write_file(&dir.join(MANIFEST), &manifest)?;
    Ok(Staged {
        staging: dir,
        hashes,
    })
}

/// The fairness audit, each district's CSV and page, and the index page, into `dir`; each
/// file's hash into `hashes`.
fn stage_lists(
    dir: &Path,
    html_dir: &Path,
    s: &Screening,
    registry: &Registry,
    signals: &HashMap<String, Vec<SignalLine>>,
    fairness: &[GroupRow],
    hashes: &mut BTreeMap<String, String>,
) -> Result<(), ScreenError> {
    let audit = serde_json::to_vec_pretty(&serde_json::json!({
        "as_of": s.as_of.to_string(),
        "model": s.model,
        "basis": "households that could be listed tonight (not excluded, with a district); \
                  precision and false-negative rate are expected from the calibrated scores, \
                  the selection rate is a count; ratios to each attribute's largest group with \
                  95% intervals",
        "groups": fairness,
    }))
    .expect("fairness serializes");
    write_file(&dir.join(FAIRNESS), &audit)?;
    hashes.insert(FAIRNESS.to_string(), sha256(&audit));

    let mut by_district: BTreeMap<&str, Vec<&crate::contract::Referral>> = BTreeMap::new();
    for r in &s.referrals {
        by_district
            .entry(r.district_code.as_str())
            .or_default()
            .push(r);
    }
    let mut index = Vec::new();
    for d in registry.iter() {
        let list = by_district
            .get(d.code.as_str())
            .cloned()
            .unwrap_or_default();
        // CSV for Excel: BOM, Korean headers.
        let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
        let header = [
            "순위",
            "가구ID",
            "읍면동코드",
            "위기확률(%)",
            "긴급",
            "반복미접촉",
            "사유1",
            "사유2",
            "사유3",
            "의뢰ID",
            "모델",
            "기준일",
            "무시된제외",
            "무작위탐색(선택확률%)",
        ];
        let csv_err = |e: csv::Error| ScreenError::Output(format!("CSV for {}: {e}", d.code));
        w.write_record(header).map_err(csv_err)?;
        for r in &list {
            let (urgent, escalated) = flag(s.priority.get(&r.referral_id));
            let reason = |k: usize| {
                r.reasons
                    .get(k)
                    .map(|x| x.label_ko.clone())
                    .unwrap_or_default()
            };
            w.write_record([
                r.rank.to_string(),
                r.household_id.clone(),
                r.dong_code.clone().unwrap_or_default(),
                format!("{:.1}", r.score * 100.0),
                urgent.to_string(),
                escalated.to_string(),
                reason(0),
                reason(1),
                reason(2),
                r.referral_id.clone(),
                r.model.clone(),
                r.as_of.to_string(),
                r.overrode
                    .map(|e| e.label_ko())
                    .unwrap_or_default()
                    .to_string(),
                r.selection_probability
                    .map(|p| format!("{:.1}", p * 100.0))
                    .unwrap_or_default(),
            ])
            .map_err(csv_err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| ScreenError::Output(e.to_string()))?;
        let name = format!("{}.csv", d.code);
        write_file(&dir.join(&name), &bytes)?;
        hashes.insert(name, sha256(&bytes));

        // The caseworker's page.
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|r| {
                let (urgent, escalated) = flag(s.priority.get(&r.referral_id));
                let lines = signals.get(&r.household_id).cloned().unwrap_or_default();
                serde_json::json!({
                    "rank": r.rank,
                    "household_id": r.household_id,
                    "dong": r.dong_code.as_deref().unwrap_or(""),
                    "score_pct": format!("{:.1}", r.score * 100.0),
                    "urgent": !urgent.is_empty(),
                    "escalated": !escalated.is_empty(),
                    "overrode": r.overrode.map(|e| serde_json::json!({"code": e.as_str(), "label": e.label_ko()})),
                    "explored_pct": r.selection_probability.map(|p| format!("{:.1}", p * 100.0)),
                    "reasons": r.reasons.iter().map(|x| serde_json::json!({"label_ko": x.label_ko, "label_en": x.label_en})).collect::<Vec<_>>(),
                    "signal_count": lines.len(),
                    "signals": lines.iter().take(20).map(|l| serde_json::json!({"observed_on": l.observed_on, "source": l.source, "text": l.text, "codes": l.codes})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let (cap, n) = s.districts.get(&d.code).copied().unwrap_or((0, 0));
        let page = render(
            "district.html",
            serde_json::json!({
                "d": {"sido": d.sido, "name": d.name, "code": d.code},
                "as_of": s.as_of.to_string(),
                "model": s.model,
                "capacity": cap,
                "any_explored": list.iter().any(|r| r.selection_probability.is_some()),
                "rows": rows,
                "below_min_score": s.below_min_score.get(&d.code).map(|(min, cut)| serde_json::json!({"min_pct": format!("{:.1}", min * 100.0), "cut": cut})),
            }),
        )?;
        let name = format!("html/{}.html", d.code);
        write_file(&dir.join(&name), page.as_bytes())?;
        hashes.insert(name, sha256(page.as_bytes()));
        index.push(serde_json::json!({
            "sido": d.sido, "code": d.code, "name": d.name, "capacity": cap, "listed": n
        }));
    }
    let page = render(
        "index.html",
        serde_json::json!({
            "as_of": s.as_of.to_string(),
            "model": s.model,
            "referred": s.counts.referred,
            "urgent": s.counts.urgent,
            "escalated": s.counts.escalated,
            "districts": index,
            "fairness_header": crate::fairness::TABLE_HEADER,
            "fairness": crate::fairness::table_rows(fairness),
            "breaches": fairness.iter().filter(|g| g.breach).count(),
        }),
    )?;
    let index_html = html_dir.join("index.html");
    write_file(&index_html, page.as_bytes())?;
    hashes.insert("html/index.html".into(), sha256(page.as_bytes()));
    Ok(())
}
