//! NDJSON ingest into the lake: every valid record lands exactly once, every invalid one is in
//! the dead-letter sink with its reason, and nothing raw leaks.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::column;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use lantern::contract::{SignalKind, Validator, Vocab};
use lantern::ingest::deadletter::MemoryDeadLetters;
use lantern::ingest::{file::ingest_files, Ingestor};
use lantern::lake::{Lake, LakeWriter, Table};
use lantern::pseudonym::Pseudonymizer;
use lantern::registry::Registry;
use lantern::sim;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
}

fn simulate(dir: &Path, households: u64, invalid: f64, dup: f64) -> (sim::Manifest, Vec<PathBuf>) {
    let m = common::simulate(dir, households, 5, invalid, dup);
    let mut files: Vec<PathBuf> = SignalKind::ALL
        .iter()
        .map(|k| sim::signal_file(dir, *k))
        .collect();
    files.push(dir.join("outcomes/case-outcomes.ndjson"));
    (m, files)
}

fn run(
    registry: &Registry,
    lake: &Lake,
    files: &[PathBuf],
    batch: usize,
    pseudo: Option<Pseudonymizer>,
    dead: &mut MemoryDeadLetters,
) -> lantern::ingest::IngestStats {
    let mut ing = Ingestor::new(
        Validator::new(registry, day()),
        pseudo,
        LakeWriter::new(lake.clone()),
        Box::new(dead),
    );
    ingest_files(&mut ing, files, batch, &indicatif::ProgressBar::hidden()).unwrap();
    ing.stats().clone()
}

#[test]
fn valid_records_land_once_and_invalid_ones_are_dead_lettered_by_reason() {
    let sim_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (m, files) = simulate(sim_dir.path(), 3_000, 0.02, 0.03);
    let registry = Registry::embedded();
    let lake = Lake::in_data_dir(data.path());
    let mut dead = MemoryDeadLetters::default();
    // Small batches: many flushes, many files, duplicates spread across them.
    let stats = run(&registry, &lake, &files, 2_000, None, &mut dead);

    let outcomes = m.referrals - m.open_referrals;
    assert_eq!(stats.accepted, m.total_valid_signals() + outcomes);
    assert_eq!(stats.duplicates, m.duplicate_lines);
    assert_eq!(stats.rejected, m.invalid_by_reason);
    assert_eq!(dead.letters.len() as u64, m.total_invalid());

    // The lake holds each valid event exactly once, in the right table.
    for kind in SignalKind::ALL {
        let ids = column(&lake, Table::for_kind(*kind), "event_id");
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), unique.len(), "duplicates in {kind:?}");
        assert_eq!(ids.len() as u64, m.valid_signals[kind.as_str()]);
    }
    assert_eq!(
        column(&lake, Table::Outcomes, "referral_id").len() as u64,
        outcomes
    );

    // Every dead letter says where it came from and why, and no identifier survives in it.
    for d in &dead.letters {
        assert!(matches!(d.origin, lantern::ingest::Origin::File { line, .. } if line > 0));
        assert!(!d.field.is_empty() && !d.reason.is_empty());
        assert!(
            !lantern::contract::rrn::contains_rrn(&d.payload),
            "{}",
            d.payload
        );
    }
    let masked = dead
        .letters
        .iter()
        .filter(|d| d.reason == "personal_identifier")
        .count();
    assert_eq!(
        masked as u64,
        m.invalid_by_reason
            .get("personal_identifier")
            .copied()
            .unwrap_or(0)
    );

    // Ingesting the same files again adds nothing: every valid record is a duplicate now.
    let mut dead2 = MemoryDeadLetters::default();
    let again = run(&registry, &lake, &files, 50_000, None, &mut dead2);
    assert_eq!(again.accepted, 0);
    assert_eq!(again.duplicates, stats.accepted + stats.duplicates);
    assert_eq!(again.rejected, stats.rejected);
}

#[test]
fn compaction_merges_files_and_removes_repeated_keys() {
    let sim_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (m, files) = simulate(sim_dir.path(), 1_500, 0.0, 0.0);
    let registry = Registry::embedded();
    let lake = Lake::in_data_dir(data.path());
    let mut dead = MemoryDeadLetters::default();
    run(&registry, &lake, &files, 500, None, &mut dead);
    let before = lake.table_files(Table::UtilityArrears).unwrap();
    let partitions = lake.partitions(Table::UtilityArrears).unwrap();
    assert!(
        before.len() > partitions.len(),
        "small batches should leave several files per month"
    );

    // Simulate a compaction interrupted after writing its output: a copy of a file sits beside
    // the original, so its keys appear twice.
    let copy = before[0].with_file_name("part-99999999999999-0000000-000000.parquet");
    std::fs::copy(&before[0], &copy).unwrap();

    let r = lake.compact(1).unwrap();
    assert!(r.duplicates_removed > 0);
    for p in &partitions {
        assert_eq!(lake.files(p).unwrap().len(), 1);
    }
    let ids = column(&lake, Table::UtilityArrears, "event_id");
    assert_eq!(ids.len() as u64, m.valid_signals["utility_arrears"]);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
}

#[test]
fn configured_source_identifiers_are_pseudonymized_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let raw_id = "KEPCO-CUST-77123";
    let lines = [
        // Valid, but its household_id is the agency's own customer number.
        format!(
            r#"{{"event_id":"e1","source":"kepco","household_id":"{raw_id}","district_code":"11110","observed_on":"2026-10-31","kind":"utility_arrears","utility":"electricity","months_overdue":2,"amount_krw":90000,"service_cut":false,"meter_owner":"Kim"}}"#
        ),
        // Invalid (unknown utility), same customer: the dead letter must not hold the raw id.
        format!(
            r#"{{"event_id":"e2","source":"kepco","household_id":"{raw_id}","district_code":"11110","observed_on":"2026-10-31","kind":"utility_arrears","utility":"cable","months_overdue":2,"amount_krw":90000,"service_cut":false}}"#
        ),
        // Broken JSON that still carries the raw id.
        format!(r#"{{"event_id":"e3","household_id":"{raw_id}","#),
    ];
    let path = dir.path().join("in.ndjson");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let registry = Registry::embedded();
    let lake = Lake::in_data_dir(data.path());
    let pseudo = Pseudonymizer::new(
        b"test-key-0123456789".to_vec(),
        vec!["household_id".into(), "meter_owner".into()],
    );
    let token = pseudo.token(raw_id);
    let mut dead = MemoryDeadLetters::default();
    let stats = run(&registry, &lake, &[path], 10, Some(pseudo), &mut dead);
    assert_eq!(stats.accepted, 1);
    assert_eq!(
        column(&lake, Table::UtilityArrears, "household_id"),
        vec![token.clone()]
    );
    assert_eq!(dead.letters.len(), 2);
    for d in &dead.letters {
        assert!(!d.payload.contains(raw_id), "{}", d.payload);
        assert!(d.payload.contains(&token), "{}", d.payload);
    }
    // No lake file contains the raw identifier anywhere.
    for f in lake.table_files(Table::UtilityArrears).unwrap() {
        let bytes = std::fs::read(f).unwrap();
        assert!(!bytes.windows(raw_id.len()).any(|w| w == raw_id.as_bytes()));
    }
}

#[test]
fn gzip_files_ingest_like_plain_ones() {
    use std::io::Write;
    let sim_dir = tempfile::tempdir().unwrap();
    let (m, files) = simulate(sim_dir.path(), 800, 0.0, 0.0);
    let gz = sim_dir.path().join("arrears.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&files[0]).unwrap()).unwrap();
    enc.finish().unwrap();
    let data = tempfile::tempdir().unwrap();
    let lake = Lake::in_data_dir(data.path());
    let mut dead = MemoryDeadLetters::default();
    let stats = run(&Registry::embedded(), &lake, &[gz], 10_000, None, &mut dead);
    assert_eq!(stats.accepted, m.valid_signals["utility_arrears"]);
    let by_table: BTreeMap<&str, usize> = [(
        "utility_arrears",
        column(&lake, Table::UtilityArrears, "event_id").len(),
    )]
    .into_iter()
    .collect();
    assert_eq!(by_table["utility_arrears"] as u64, stats.accepted);
}

/// With a tiny key cache, partitions are evicted and read back constantly; deduplication must
/// stay exact.
#[test]
fn deduplication_stays_exact_when_the_key_cache_is_tiny() {
    let sim_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (m, files) = simulate(sim_dir.path(), 1_500, 0.0, 0.05);
    let registry = Registry::embedded();
    let lake = Lake::in_data_dir(data.path());
    for pass in 0..2 {
        let mut dead = MemoryDeadLetters::default();
        let mut ing = Ingestor::new(
            Validator::new(&registry, day()),
            None,
            LakeWriter::new(lake.clone()).with_cache_budget(50),
            Box::new(&mut dead),
        );
        ingest_files(&mut ing, &files, 300, &indicatif::ProgressBar::hidden()).unwrap();
        let s = ing.stats();
        let outcomes = m.referrals - m.open_referrals;
        if pass == 0 {
            assert_eq!(s.accepted, m.total_valid_signals() + outcomes);
            assert_eq!(s.duplicates, m.duplicate_lines);
        } else {
            assert_eq!(s.accepted, 0);
        }
    }
    common::assert_lake_matches(&lake, &m);
}

/// The lake is queryable with DataFusion SQL as written: every table, with the month folder
/// as a partition column, each event once.
#[test]
fn the_lake_answers_sql_through_datafusion() {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    let sim_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (m, files) = simulate(sim_dir.path(), 1_000, 0.0, 0.02);
    let lake = Lake::in_data_dir(data.path());
    let mut dead = MemoryDeadLetters::default();
    run(&Registry::embedded(), &lake, &files, 700, None, &mut dead);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let ctx = datafusion::prelude::SessionContext::new();
        lantern::lake::sql::register(&ctx, &lake).await.unwrap();
        let count = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                batches[0].column(0).as_primitive::<Int64Type>().value(0) as u64
            }
        };
        let rows = count("SELECT count(*) FROM utility_arrears").await;
        let distinct = count("SELECT count(DISTINCT event_id) FROM utility_arrears").await;
        assert_eq!(rows, m.valid_signals["utility_arrears"]);
        assert_eq!(distinct, rows);
        // The partition column matches the observed month of every row.
        let mismatched = count(
            "SELECT count(*) FROM council_report WHERE month <> to_char(observed_on, '%Y-%m')",
        )
        .await;
        assert_eq!(mismatched, 0);
        let outcomes = count("SELECT count(*) FROM outcomes").await;
        assert_eq!(outcomes, m.referrals - m.open_referrals);
    });
}

/// Issue 9.9: a `.ndjson.gz` cut off in transfer is reported as what it is: which file, after
/// which line, that the lines before the cut were kept, and what to do. The lines before the cut
/// are in the lake (durably, so the promise holds), and ingesting the complete file afterwards
/// adds only the rest.
#[test]
fn a_truncated_gzip_file_says_where_it_was_cut_and_keeps_the_lines_before() {
    use std::io::Write;
    let sim_dir = tempfile::tempdir().unwrap();
    let (m, files) = simulate(sim_dir.path(), 800, 0.0, 0.0);
    let full = std::fs::read(&files[0]).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&full).unwrap();
    let gz_bytes = enc.finish().unwrap();
    let cut = sim_dir.path().join("cut.ndjson.gz");
    std::fs::write(&cut, &gz_bytes[..gz_bytes.len() / 2]).unwrap();

    let data = tempfile::tempdir().unwrap();
    let lake = Lake::in_data_dir(data.path());
    let registry = Registry::embedded();
    let mut dead = MemoryDeadLetters::default();
    let mut ing = Ingestor::new(
        Validator::new(&registry, day()),
        None,
        LakeWriter::new(lake.clone()),
        Box::new(&mut dead),
    );
    let err = ingest_files(
        &mut ing,
        &[&cut],
        100_000,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap_err();
    let lantern::ingest::IngestError::Truncated { after_line, .. } = &err else {
        panic!("expected a truncation error, got: {err}");
    };
    let after_line = *after_line;
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("cut off after line {after_line}")),
        "{msg}"
    );
    assert!(
        msg.contains("kept") && msg.contains("ingest it again"),
        "{msg}"
    );
    assert!(
        !msg.contains("permissions"),
        "not a permissions problem: {msg}"
    );
    assert!(after_line > 0 && after_line < full.iter().filter(|&&b| b == b'\n').count() as u64);
    drop(ing);
    // Exactly the lines before the cut are in the lake, durably.
    let kept = column(&lake, Table::UtilityArrears, "event_id").len() as u64;
    assert_eq!(kept, after_line);
    // The complete file afterwards adds the rest, and nothing twice.
    let stats = run(&registry, &lake, &files[..1], 100_000, None, &mut dead);
    assert_eq!(stats.duplicates, after_line);
    assert_eq!(
        column(&lake, Table::UtilityArrears, "event_id").len() as u64,
        m.valid_signals["utility_arrears"]
    );
}

/// Issue 13.3: a council report's free-text note is dropped at the door by default, in the lake
/// and in the dead letters; with `ingest.keep_notes` it is kept, phone numbers and e-mail
/// addresses masked before anything is written.
#[test]
fn a_council_note_is_dropped_at_the_door_unless_kept_and_then_masked() {
    let dir = tempfile::tempdir().unwrap();
    let report = |id: &str, urgency: u32| {
        format!(
            r#"{{"event_id":"{id}","source":"council","household_id":"hh_abcdefgh","district_code":"11110","observed_on":"2026-10-20","kind":"council_report","reporter_role":"neighbor","concerns":["isolation"],"urgency":{urgency},"note":"전화 010-1234-5678 안 받음, kim@example.com"}}"#
        )
    };
    // One valid report and one rejected (urgency 9) that still carries its note.
    let path = dir.path().join("council.ndjson");
    std::fs::write(&path, format!("{}\n{}\n", report("n1", 2), report("n2", 9))).unwrap();
    let registry = Registry::embedded();
    for keep in [false, true] {
        let data = tempfile::tempdir().unwrap();
        let lake = Lake::in_data_dir(data.path());
        let mut dead = MemoryDeadLetters::default();
        let mut ing = Ingestor::new(
            Validator::new(&registry, day()),
            None,
            LakeWriter::new(lake.clone()),
            Box::new(&mut dead),
        )
        .with_notes_kept(keep);
        ingest_files(&mut ing, &[&path], 100, &indicatif::ProgressBar::hidden()).unwrap();
        drop(ing);
        let notes = column(&lake, Table::CouncilReport, "note");
        let letter = &dead.letters[0].payload;
        if keep {
            assert_eq!(
                notes,
                vec!["전화 ***-****-**** 안 받음, [이메일]".to_string()]
            );
            assert!(
                letter.contains("***-****-****") && !letter.contains("5678"),
                "{letter}"
            );
        } else {
            assert!(notes.iter().all(|n| n.is_empty()), "{notes:?}");
            assert!(!letter.contains("note"), "{letter}");
        }
        for f in lake.table_files(Table::CouncilReport).unwrap() {
            let bytes = std::fs::read(f).unwrap();
            assert!(
                !bytes.windows(4).any(|w| w == b"5678"),
                "a phone number reached the lake"
            );
        }
    }
}

/// Proves: two writers sharing a lake (two ingest processes) write an event once even when one
/// of them holds the partition's keys cached from before the other wrote it. Writer A caches
/// the keys of every month (first half of the file); writer B writes the second half; then A
/// is handed the second half again (a re-sent copy on a partition A owns): at A's flush, under
/// the lake's write lock, A reads B's new files and drops every record as a duplicate.
#[test]
fn a_writer_with_cached_keys_sees_another_writers_files_at_its_flush() {
    let sim_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (_, files) = simulate(sim_dir.path(), 1_500, 0.0, 0.0);
    let arrears = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<&str> = arrears.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let first_file = sim_dir.path().join("first.ndjson");
    let second_file = sim_dir.path().join("second.ndjson");
    std::fs::write(&first_file, first.join("\n") + "\n").unwrap();
    std::fs::write(&second_file, second.join("\n") + "\n").unwrap();

    let registry = Registry::embedded();
    let lake = Lake::in_data_dir(data.path());
    let mut dead = MemoryDeadLetters::default();
    let writer = |dead: &mut MemoryDeadLetters| {
        Ingestor::new(
            Validator::new(&registry, day()),
            None,
            LakeWriter::new(lake.clone()),
            Box::new(std::mem::take(dead)),
        )
    };
    let mut a = writer(&mut dead);
    let bar = indicatif::ProgressBar::hidden();
    ingest_files(&mut a, std::slice::from_ref(&first_file), 10_000, &bar).unwrap();
    assert_eq!(a.stats().accepted, first.len() as u64);

    let mut b = writer(&mut dead);
    ingest_files(&mut b, std::slice::from_ref(&second_file), 10_000, &bar).unwrap();
    assert_eq!(b.stats().accepted, second.len() as u64);

    ingest_files(&mut a, std::slice::from_ref(&second_file), 10_000, &bar).unwrap();
    assert_eq!(
        a.stats().accepted,
        first.len() as u64,
        "A wrote B's events again"
    );
    assert_eq!(a.stats().duplicates, second.len() as u64);
    assert_eq!(common::rows(&lake, Table::UtilityArrears), lines.len());
}
