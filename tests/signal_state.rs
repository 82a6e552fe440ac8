//! The signal state (features/state.rs) against the full recomputation from the raw lake.
//!
//! The property: for random event streams arriving in several deliveries, with late and
//! back-filled reports, re-sends under another month and re-sends ingested out of order, the
//! features computed from the incrementally kept state equal, value for value, those computed
//! by deduplicating the raw lake at query time, for every household and several dates, after
//! every delivery, after a lake compaction and after a month is dropped by retention.

use std::path::Path;

use chrono::{Days, NaiveDate};
use lantern::contract::{
    Concern, CouncilReport, Gap, Program, ReporterRole, ServiceGap, Signal, SignalBody, Utility,
    UtilityArrears,
};
use lantern::features::state::SignalState;
use lantern::features::{FeatureBatch, FeatureEngine, FeatureSpec, SignalSource};
use lantern::lake::{Lake, LakeRecord, LakeWriter};
use proptest::prelude::*;

const HOUSEHOLDS: usize = 6;

fn day0() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
}

/// One generated event: who, what, when it happened and when it became known, and whether it
/// is sent again later (shifted in observed_on, and ingested before or after the first copy).
#[derive(Debug, Clone)]
struct Event {
    household: usize,
    kind: u8,
    observed: u64,
    /// Days from observed to reported; large values are back-filled history.
    lag: u64,
    value: u32,
    delivery: usize,
    resend: Option<Resend>,
}

#[derive(Debug, Clone)]
struct Resend {
    delivery: usize,
    /// Days the re-sent copy's observed_on moved (0: same day, so the same month folder).
    shift: u64,
    /// The re-sent copy claims an ingest time before the first copy's.
    earlier: bool,
}

fn event() -> impl Strategy<Value = Event> {
    (
        0..HOUSEHOLDS,
        0u8..3,
        0u64..520,
        prop_oneof![3 => 0u64..20, 1 => 100u64..400],
        0u32..1000,
        0usize..3,
        proptest::option::weighted(
            0.25,
            (0usize..3, prop_oneof![0u64..1, 20u64..60], any::<bool>()),
        ),
    )
        .prop_map(
            |(household, kind, observed, lag, value, delivery, resend)| Event {
                household,
                kind,
                observed,
                lag,
                value,
                delivery,
                resend: resend.map(|(d, shift, earlier)| Resend {
                    delivery: d.max(delivery),
                    shift,
                    earlier,
                }),
            },
        )
}

fn signal(e: &Event, id: usize, observed: NaiveDate) -> Signal {
    let body = match e.kind {
        0 => SignalBody::UtilityArrears(UtilityArrears {
            utility: [Utility::Electricity, Utility::Water, Utility::Rent][e.value as usize % 3],
            months_overdue: (e.value % 7) as u16,
            amount_krw: 10_000 * e.value as u64,
            service_cut: e.value % 5 == 0,
        }),
        1 => SignalBody::CouncilReport(CouncilReport {
            reporter_role: ReporterRole::Neighbor,
            concerns: vec![
                [Concern::Isolation, Concern::Food, Concern::Debt][e.value as usize % 3],
            ],
            urgency: (e.value % 3 + 1) as u8,
            note: Some("free text the state must not copy".into()),
        }),
        _ => SignalBody::ServiceGap(ServiceGap {
            program: [Program::BasicLivelihood, Program::EnergyVoucher][e.value as usize % 2],
            gap: [Gap::BenefitTerminated, Gap::ContactFailed][e.value as usize % 2],
        }),
    };
    Signal {
        event_id: format!("ev-{id}"),
        source: "test".into(),
        household_id: format!("h{}", e.household),
        // Households move: the district follows the value, so "where to visit" is exercised.
        district_code: ["11110", "11140", "26110"][(e.value as usize / 3) % 3].into(),
        dong_code: None,
        observed_on: observed,
        reported_on: Some(observed + Days::new(e.lag)),
        body,
    }
}

/// Writes the copies of `delivery` into the lake, each with its own ingest time.
fn deliver(data: &Path, events: &[Event], delivery: usize) {
    let mut writer = LakeWriter::new(Lake::in_data_dir(data));
    let base = 1_790_000_000_000i64 + delivery as i64 * 86_400_000;
    for (id, e) in events.iter().enumerate() {
        let first = day0() + Days::new(e.observed);
        if e.delivery == delivery {
            let s = signal(e, id, first);
            let known_on = s.reported_on.unwrap();
            writer
                .add(LakeRecord::Signal {
                    signal: s,
                    known_on,
                    ingested_at_ms: base + id as i64,
                })
                .unwrap();
        }
        if let Some(r) = e.resend.as_ref().filter(|r| r.delivery == delivery) {
            let s = signal(e, id, first + Days::new(r.shift));
            let known_on = s.reported_on.unwrap();
            let first_ingested = 1_790_000_000_000i64 + e.delivery as i64 * 86_400_000 + id as i64;
            let ingested = if r.earlier {
                first_ingested - 1_000
            } else {
                base + 500_000 + id as i64
            };
            writer
                .add(LakeRecord::Signal {
                    signal: s,
                    known_on,
                    ingested_at_ms: ingested,
                })
                .unwrap();
        }
    }
    writer.flush().unwrap();
}

/// `n` events of one delivery, none re-sent: household `i % HOUSEHOLDS`, observed `every`
/// days apart, reported `lag` days later, of kind `kind(i)`.
fn spaced(n: usize, every: u64, lag: u64, kind: impl Fn(usize) -> u8) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            household: i % HOUSEHOLDS,
            kind: kind(i),
            observed: every * i as u64,
            lag,
            value: i as u32,
            delivery: 0,
            resend: None,
        })
        .collect()
}

fn pairs(dates: &[NaiveDate]) -> Vec<(String, NaiveDate)> {
    let mut out = Vec::new();
    for h in 0..HOUSEHOLDS {
        for d in dates {
            out.push((format!("h{h}"), *d));
        }
    }
    out
}

async fn both(
    data: &Path,
    dates: &[NaiveDate],
) -> (FeatureBatch, FeatureBatch, Vec<String>, Vec<String>) {
    let state = FeatureEngine::open(data, FeatureSpec::embedded())
        .await
        .unwrap()
        .with_state_buckets(3)
        .with_slice_pairs(4);
    let lake = FeatureEngine::open(data, FeatureSpec::embedded())
        .await
        .unwrap()
        .with_source(SignalSource::Lake);
    let p = pairs(dates);
    let from_state = state.compute(&p).await.unwrap();
    let from_lake = lake.compute(&p).await.unwrap();
    let last = *dates.iter().max().unwrap();
    (
        from_state,
        from_lake,
        state.scoring_cohort(last).await.unwrap(),
        lake.scoring_cohort(last).await.unwrap(),
    )
}

fn assert_same(data: &Path, dates: &[NaiveDate], when: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (s, l, cs, cl) = rt.block_on(both(data, dates));
    assert_eq!(s.len(), l.len(), "{when}: row count");
    for i in 0..s.len() {
        assert_eq!(s.keys[i], l.keys[i], "{when}: keys of row {i}");
        assert_eq!(s.row(i), l.row(i), "{when}: features of {:?}", s.keys[i]);
    }
    assert_eq!(cs, cl, "{when}: the night's cohort");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Incremental state plus each delivery gives exactly the full recomputation's features.
    #[test]
    fn the_state_gives_the_features_of_a_full_recomputation(
        events in proptest::collection::vec(event(), 1..40),
        dates in proptest::collection::vec(0u64..560, 1..4),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path();
        let dates: Vec<NaiveDate> = dates.iter().map(|d| day0() + Days::new(*d)).collect();
        for delivery in 0..3 {
            deliver(data, &events, delivery);
            assert_same(data, &dates, &format!("after delivery {delivery}"));
        }
        // Compaction replaces the lake's files: the state rebuilds those months.
        Lake::in_data_dir(data).compact(1).unwrap();
        assert_same(data, &dates, "after compaction");
        // Retention drops a month folder: the state must forget it too.
        let dir = data.join("lake/utility_arrears");
        if let Some(month) = std::fs::read_dir(&dir).ok().and_then(|mut r| r.next()).map(|e| e.unwrap().path()) {
            std::fs::remove_dir_all(&month).unwrap();
            assert_same(data, &dates, "after a month was dropped");
        }
    }
}

/// The state never copies the council reports' free text, and a second update with nothing
/// new changes nothing (no file written, the manifest untouched).
#[test]
fn the_state_keeps_no_free_text_and_an_idle_update_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let events = spaced(20, 10, 1, |_| 1);
    deliver(data, &events, 0);
    let (state, report) = SignalState::update(data, 2).unwrap();
    assert_eq!(report.events_added, 20);
    assert_eq!(state.buckets(), 2);
    let manifest = data.join("state/manifest.json");
    let before = std::fs::metadata(&manifest).unwrap().modified().unwrap();
    let (_, idle) = SignalState::update(data, 2).unwrap();
    assert_eq!(idle.lake_files_read, 0);
    assert_eq!(
        std::fs::metadata(&manifest).unwrap().modified().unwrap(),
        before
    );
    for part in state.all_parts(lantern::lake::Table::CouncilReport) {
        let bytes = std::fs::read(&part).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"free text"),
            "{} holds the note",
            part.display()
        );
    }
}

/// A crash after parts were written but before the manifest named them leaves files no reader
/// reads; the next update removes them and folds the lake files in again, once.
#[test]
fn parts_a_crash_left_unnamed_are_ignored_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let events = spaced(30, 7, 2, |i| (i % 3) as u8);
    deliver(data, &events, 0);
    let (state, _) = SignalState::update(data, 2).unwrap();
    let part = state.all_parts(lantern::lake::Table::UtilityArrears)[0].clone();
    // What a crashed update leaves: a copy of a part the manifest does not name.
    let orphan = part.with_file_name("part-99999999999999-0000001-000001.parquet");
    std::fs::copy(&part, &orphan).unwrap();
    let (state, report) = SignalState::update(data, 2).unwrap();
    assert!(!orphan.exists(), "the unnamed part is removed");
    assert_eq!(report.events_added, 0);
    let total: usize = lantern::lake::Table::ALL[..3]
        .iter()
        .flat_map(|t| state.all_parts(*t))
        .map(|p| {
            let f = std::fs::File::open(p).unwrap();
            datafusion::parquet::file::reader::SerializedFileReader::new(f)
                .map(|r| {
                    use datafusion::parquet::file::reader::FileReader;
                    r.metadata().file_metadata().num_rows() as usize
                })
                .unwrap()
        })
        .sum();
    assert_eq!(total, 30, "every event once");
}

/// The households reference is copied into the state by bucket, so a slice reads its own
/// bucket's households instead of the whole country's; features from the copy equal those from
/// the reference (the full recomputation reads the reference itself), and a new import
/// replaces the copy at the next update (as an erasure's rewrite does).
#[test]
fn the_households_copy_follows_the_reference_and_gives_the_same_features() {
    use lantern::contract::{AgeBand, Household, HouseholdType};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let events = spaced(30, 10, 1, |i| (i % 3) as u8);
    deliver(data, &events, 0);
    let household = |h: usize, members: u8| Household {
        household_id: format!("h{h}"),
        district_code: "11110".into(),
        dong_code: None,
        members,
        head_age_band: AgeBand::Over65,
        household_type: if h % 2 == 0 {
            HouseholdType::ElderlySingle
        } else {
            HouseholdType::Family
        },
        disability: h == 1,
    };
    // Every household but the last is in the reference.
    let reference: Vec<Household> = (0..HOUSEHOLDS - 1)
        .map(|h| household(h, 1 + h as u8))
        .collect();
    lantern::lake::reference::write_households(data, &reference).unwrap();
    let (state, report) = SignalState::update(data, 3).unwrap();
    assert_eq!(report.households_copied, (HOUSEHOLDS - 1) as u64);
    let copied: usize = (0..3)
        .map(|b| state.households_parts(b).unwrap().len())
        .sum();
    assert!(copied >= 2, "the households spread over the buckets");
    let (_, idle) = SignalState::update(data, 3).unwrap();
    assert_eq!(
        idle.households_copied, 0,
        "an unchanged reference is not copied again"
    );

    let members = FeatureSpec::embedded()
        .features
        .iter()
        .position(|f| f.name == "hh_members")
        .unwrap();
    let last = day0() + Days::new(300);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (s, l, _, _) = rt.block_on(both(data, &[last]));
    assert_eq!(
        s, l,
        "features from the copy equal features from the reference"
    );
    let row = |b: &FeatureBatch, h: &str| {
        let i = b.keys.iter().position(|k| k.household_id == h).unwrap();
        b.row(i)[members]
    };
    assert_eq!(row(&s, "h3"), 4.0);
    assert_eq!(
        row(&s, &format!("h{}", HOUSEHOLDS - 1)),
        0.0,
        "not in the reference: imputed"
    );

    // A new import: h3 now has 9 members.
    let mut changed = reference.clone();
    changed[3].members = 9;
    // The modification time alone may not move within the clock's resolution; the size does
    // not either, so wait until the file's time differs (bounded: filesystems tick in ns-ms).
    let path = lantern::lake::reference::households_path(data);
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    for _ in 0..1000 {
        lantern::lake::reference::write_households(data, &changed).unwrap();
        if std::fs::metadata(&path).unwrap().modified().unwrap() != before {
            break;
        }
    }
    let (_, again) = SignalState::update(data, 3).unwrap();
    assert_eq!(again.households_copied, (HOUSEHOLDS - 1) as u64);
    let (s, l, _, _) = rt.block_on(both(data, &[last]));
    assert_eq!(s, l);
    assert_eq!(row(&s, "h3"), 9.0);
}

/// A households reference that is not Parquet stops the update with an error naming the file
/// and what to do (import it again), not the lake's or the state's remedy.
#[test]
fn a_damaged_households_reference_says_to_import_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    deliver(data, &spaced(6, 10, 1, |_| 0), 0);
    let path = lantern::lake::reference::households_path(data);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"not parquet").unwrap();
    let err = SignalState::update(data, 2).unwrap_err().to_string();
    assert!(err.contains("households.parquet"), "{err}");
    assert!(err.contains("lantern import --households"), "{err}");
}
