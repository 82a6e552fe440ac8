//! The simulator writes contract-valid files, plants exactly the bad records its manifest says,
//! is byte-for-byte reproducible, and resembles the population it models.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use lantern::contract::{Outcome, Record, Referral, SignalKind, Validator, Vocab};
use lantern::registry::Registry;
use lantern::sim::{self, Manifest, SimParams};

fn run(households: u64, months: u32, seed: u64, out: &Path) -> Manifest {
    let params = SimParams::new(households, months, seed);
    sim::simulate(
        &params,
        &Registry::embedded(),
        out,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap()
}

fn ingest_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_gives_byte_identical_output_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    run(3_000, 12, 7, a.path());
    run(3_000, 12, 7, b.path());
    run(3_000, 12, 8, c.path());
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert!(
            bytes == &fb[name],
            "{name} differs between two runs with seed 7"
        );
    }
    assert_ne!(fa["households.csv"], fc["households.csv"]);
}

/// Validates every line of the simulator's output and checks it against the manifest: every
/// planted bad record is rejected for exactly the planted reason, every other line passes, and
/// duplicates carry the ids of events already seen.
#[test]
fn output_is_contract_valid_except_the_planted_records() {
    let dir = tempfile::tempdir().unwrap();
    let m = run(20_000, 18, 7, dir.path());
    let reg = Registry::embedded();
    let v = Validator::new(&reg, ingest_day());

    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut per_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut duplicates = 0u64;
    for kind in SignalKind::ALL {
        let text = std::fs::read_to_string(sim::signal_file(dir.path(), *kind)).unwrap();
        for line in text.lines() {
            match v.signal(line.as_bytes()) {
                Ok(s) => {
                    assert_eq!(s.kind(), *kind, "signal in the wrong file: {line}");
                    assert!(s.reported_on.unwrap() >= s.observed_on);
                    if seen.insert(s.event_id.clone()) {
                        *per_kind.entry(kind.as_str().to_string()).or_default() += 1;
                    } else {
                        duplicates += 1;
                    }
                }
                Err(r) => *rejected.entry(r.reason.code().to_string()).or_default() += 1,
            }
        }
    }
    assert_eq!(rejected, m.invalid_by_reason);
    assert_eq!(per_kind, m.valid_signals);
    assert_eq!(duplicates, m.duplicate_lines);
    assert!(m.total_invalid() > 0 && m.duplicate_lines > 0, "{m:?}");
    // Every reason the corruptor can plant shows up at this size.
    assert!(m.invalid_by_reason.len() >= 12, "{:?}", m.invalid_by_reason);

    // Households: one valid row each.
    let text = std::fs::read_to_string(dir.path().join("households.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let mut ids = BTreeSet::new();
    for row in rdr.records() {
        let row = row.unwrap();
        let h = v
            .household(|k| headers.iter().position(|h| h == k).and_then(|i| row.get(i)))
            .unwrap();
        ids.insert(h.household_id);
    }
    assert_eq!(ids.len() as u64, m.households);

    // Past referrals obey SPEC §4, and outcomes link to them.
    let text = std::fs::read_to_string(dir.path().join("history/referrals.ndjson")).unwrap();
    let referrals: Vec<Referral> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(referrals.len() as u64, m.referrals);
    let referral_ids: HashSet<&str> = referrals.iter().map(|r| r.referral_id.as_str()).collect();
    for r in &referrals {
        r.check().unwrap();
        assert!(ids.contains(&r.household_id));
    }
    let text = std::fs::read_to_string(dir.path().join("outcomes/case-outcomes.ndjson")).unwrap();
    let mut outcomes = 0u64;
    let mut last_decided = NaiveDate::MIN;
    for line in text.lines() {
        let Record::Outcome(o) = v.record(line.as_bytes()).unwrap() else {
            panic!("not an outcome: {line}")
        };
        assert!(referral_ids.contains(o.referral_id.as_str()));
        assert!(
            o.decided_on >= last_decided,
            "outcomes arrive in decision order"
        );
        last_decided = o.decided_on;
        outcomes += 1;
    }
    assert_eq!(outcomes + m.open_referrals, m.referrals);
}

/// The population looks like the one it models: a third of households live alone, past rounds
/// flag a few percent of those with records and are right about half the time, some households
/// move without registering, and crisis is rare.
#[test]
fn the_population_resembles_korea() {
    let dir = tempfile::tempdir().unwrap();
    let m = run(40_000, 24, 11, dir.path());
    let share = |t: &str| m.households_by_type[t] as f64 / m.households as f64;
    let alone = share("single") + share("elderly_single");
    assert!((0.31..0.39).contains(&alone), "one-person share {alone}");
    assert!(
        (0.3..0.7).contains(&m.rule_precision),
        "rule precision {}",
        m.rule_precision
    );
    assert!(
        (0.005..0.08).contains(&m.crisis_prevalence),
        "crisis prevalence {}",
        m.crisis_prevalence
    );
    assert!(m.moved_unregistered > 0);
    assert!(
        m.outcomes_by_type[Outcome::Supported.as_str()]
            > m.outcomes_by_type[Outcome::Moved.as_str()]
    );
    // About one to two signals per household per year, as national volumes suggest.
    let per_household_year = m.total_valid_signals() as f64 / m.households as f64 / 2.0;
    assert!(
        (0.5..4.0).contains(&per_household_year),
        "{per_household_year} signals per household-year"
    );
    // Council reports are rare next to arrears.
    assert!(m.valid_signals["council_report"] * 10 < m.valid_signals["utility_arrears"]);
}
