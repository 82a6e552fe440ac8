//! Kafka ingest against librdkafka's mock cluster (a real Kafka protocol over TCP, in this
//! process): every valid event lands once, every invalid one reaches the dead-letter topic, and
//! an ingest process killed with SIGKILL at random points loses nothing.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::BaseProducer;

mod common;

use common::assert_lake_matches;
use lantern::config::Settings;
use lantern::contract::Validator;
use lantern::ingest::kafka::{consume, KafkaDeadLetters, KafkaIngestOptions};
use lantern::ingest::Ingestor;
use lantern::lake::{Lake, LakeWriter};
use lantern::registry::Registry;
use lantern::sim;

/// The tests that run `lantern ingest --kafka` as separate processes run one at a time: each
/// process polls on both cores, and with several at once beside the in-process tests the
/// resumed run of the SIGTERM test was once seen making no progress for three minutes on a
/// loaded machine (CI of session 4, a fresh-clone run in session 6 while a broker compiled).
/// That stall is not explained yet (docs: the closing note of session 6); this keeps the
/// process tests from starving each other, it does not hide a hang, which still fails the test.
static PROCESS_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_process_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    PROCESS_TESTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A configuration with short group sessions, so a killed member's partitions are reassigned
/// within seconds, for the tests that kill `lantern ingest` processes.
fn short_sessions_config(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("short-sessions.toml");
    std::fs::write(
        &config,
        "[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n",
    )
    .unwrap();
    config
}

/// Raises stop flags when dropped (also while a failed assertion unwinds).
struct StopOnDrop(Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for stop in &self.0 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
}

struct Setup {
    _cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    settings: Settings,
    manifest: sim::Manifest,
    _sim: tempfile::TempDir,
}

/// A mock cluster with every topic (3 partitions each), filled with a simulated population's
/// signals and outcomes, invalid and duplicate records included.
fn setup(households: u64, group: &str) -> Setup {
    let mut settings = Settings::defaults();
    let cluster = lantern::kafka::start_mock_cluster(&mut settings, group, 3).unwrap();
    let sim_dir = tempfile::tempdir().unwrap();
    let manifest = common::simulate_to_kafka(&settings, sim_dir.path(), households, 21, 0.02, 0.03);
    Setup {
        _cluster: cluster,
        settings,
        manifest,
        _sim: sim_dir,
    }
}

#[test]
fn topics_drain_into_the_lake_and_invalid_records_into_the_dead_letter_topic() {
    let s = setup(1_500, "lantern-test-drain");
    let data = tempfile::tempdir().unwrap();
    let registry = Registry::embedded();
    let lake = Lake::in_data_dir(data.path());
    let mut ingestor = Ingestor::new(
        Validator::new(&registry, day()),
        None,
        LakeWriter::new(lake.clone()),
        Box::new(KafkaDeadLetters::new(&s.settings).unwrap()),
    );
    let mut opts = KafkaIngestOptions::new(1_000);
    opts.until_idle = true;
    let report = consume(&s.settings, &mut ingestor, &opts).unwrap();
    let m = &s.manifest;
    let stats = ingestor.stats().clone();
    let outcomes = m.referrals - m.open_referrals;
    assert_eq!(stats.accepted, m.total_valid_signals() + outcomes);
    assert_eq!(stats.duplicates, m.duplicate_lines);
    assert_eq!(stats.rejected, m.invalid_by_reason);
    assert_eq!(report.messages, stats.seen());
    assert!(report.commits > 0);
    assert_lake_matches(&lake, m);

    let letters = common::dead_letters(&s.settings);
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for d in &letters {
        *by_reason.entry(d.reason.clone()).or_default() += 1;
        assert!(!lantern::contract::rrn::contains_rrn(&d.payload));
    }
    assert_eq!(by_reason, m.invalid_by_reason);

    // The group's offsets are committed: a second run of the same group finds nothing to do.
    let mut again = Ingestor::new(
        Validator::new(&registry, day()),
        None,
        LakeWriter::new(lake.clone()),
        Box::new(KafkaDeadLetters::new(&s.settings).unwrap()),
    );
    let report = consume(&s.settings, &mut again, &opts).unwrap();
    assert_eq!(report.messages, 0);

    // A different group re-reads everything (a full re-delivery): nothing new lands.
    let mut settings = s.settings.clone();
    settings.kafka.group_id = "lantern-test-redeliver".into();
    let mut replay = Ingestor::new(
        Validator::new(&registry, day()),
        None,
        LakeWriter::new(lake.clone()),
        Box::new(lantern::ingest::deadletter::MemoryDeadLetters::default()),
    );
    consume(&settings, &mut replay, &opts).unwrap();
    assert_eq!(replay.stats().accepted, 0);
    assert_eq!(replay.stats().duplicates, stats.accepted + stats.duplicates);
    assert_lake_matches(&lake, m);
}

#[test]
fn a_record_on_the_wrong_topic_is_a_kind_mismatch() {
    let cluster = MockCluster::new(1).unwrap();
    let mut settings = Settings::defaults();
    settings.kafka.brokers = cluster.bootstrap_servers();
    settings.kafka.group_id = "lantern-test-mismatch".into();
    for (_, t) in settings.topics.all() {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let council = r#"{"event_id":"c1","source":"council","household_id":"hh_abcdefgh","district_code":"11110","observed_on":"2026-10-20","kind":"council_report","reporter_role":"neighbor","concerns":["food"],"urgency":2}"#;
    let path = dir.path().join("wrong.ndjson");
    std::fs::write(&path, council).unwrap();
    let producer: BaseProducer = lantern::kafka::producer_config(&settings.kafka)
        .create()
        .unwrap();
    lantern::kafka::produce_file(&producer, &settings.topics.utility_arrears, &path).unwrap();
    lantern::kafka::produce_file(&producer, &settings.topics.case_outcomes, &path).unwrap();

    let data = tempfile::tempdir().unwrap();
    let registry = Registry::embedded();
    let mut dead = lantern::ingest::deadletter::MemoryDeadLetters::default();
    let mut ingestor = Ingestor::new(
        Validator::new(&registry, day()),
        None,
        LakeWriter::new(Lake::in_data_dir(data.path())),
        Box::new(&mut dead),
    );
    let mut opts = KafkaIngestOptions::new(100);
    opts.until_idle = true;
    consume(&settings, &mut ingestor, &opts).unwrap();
    drop(ingestor);
    let reasons: Vec<(&str, &str)> = dead
        .letters
        .iter()
        .map(|d| (d.reason.as_str(), d.field.as_str()))
        .collect();
    assert!(reasons.contains(&("kind_mismatch", "kind")), "{reasons:?}");
    // On the outcome topic a signal is checked against the outcome rules.
    assert!(
        reasons.contains(&("missing_field", "referral_id")),
        "{reasons:?}"
    );
}

/// The crash test: an ingest process is killed with SIGKILL at seeded random points (after a
/// random number of durable flushes, which lands the kill anywhere between writing a file and
/// committing its offsets), restarted, and killed again. After a final clean run the lake holds
/// every valid event exactly once and the dead-letter topic holds every invalid one.
#[test]
fn sigkill_at_random_points_loses_nothing_and_duplicates_nothing() {
    let _serial = one_process_test_at_a_time();
    let s = setup(2_500, "lantern-test-crash");
    let data = tempfile::tempdir().unwrap();
    let config = short_sessions_config(data.path());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261123);
    let run = |kill_after: Option<u32>| {
        let mut cmd = common::ingest_command(
            data.path(),
            &config,
            &s.settings.kafka.brokers,
            &s.settings.kafka.group_id,
            400,
        );
        cmd.arg("--until-idle");
        let mut child = common::Watched::spawn("ingest", &mut cmd, Duration::from_secs(180));
        let killed = kill_after.is_some_and(|k| child.wait_for("lake flush durable", k as usize));
        if killed {
            child.signal("KILL");
        }
        let status = child.wait();
        (killed, status)
    };
    let mut kills = 0;
    for _ in 0..3 {
        let k = rng.random_range(1..6u32);
        let (killed, _) = run(Some(k));
        kills += killed as u32;
    }
    assert!(
        kills >= 2,
        "the ingest process should have been killed mid-run"
    );
    let (killed, status) = run(None);
    assert!(!killed);
    assert!(status.success(), "final clean run failed: {status:?}");

    let lake = Lake::in_data_dir(data.path());
    assert_lake_matches(&lake, &s.manifest);
    // Dead letters are at least once: after crashes some may be repeated, but every invalid
    // message is there.
    let letters = common::dead_letters(&s.settings);
    let origins: HashSet<String> = letters
        .iter()
        .map(|d| serde_json::to_string(&d.origin).unwrap())
        .collect();
    assert_eq!(origins.len() as u64, s.manifest.total_invalid());
    // What `lantern dead-letters --kafka` shows: each rejected record once, by reason, however
    // often a crash made it be sent again (issue 14.3).
    let tally = lantern::ingest::kafka::read_dead_letters(&s.settings).unwrap();
    assert_eq!(tally.letters.len() as u64, s.manifest.total_invalid());
    assert_eq!(tally.by_reason(), s.manifest.invalid_by_reason);
}

/// SIGTERM stops a running ingest daemon gracefully: it flushes, commits, leaves the group and
/// exits 0; a later run of the same group picks up exactly where it stopped.
#[test]
fn sigterm_stops_gracefully_and_a_restart_resumes() {
    let _serial = one_process_test_at_a_time();
    let s = setup(1_500, "lantern-test-sigterm");
    let data = tempfile::tempdir().unwrap();
    let config = short_sessions_config(data.path());
    let spawn = |what: &str, until_idle: bool, deadline: u64| {
        let mut cmd = common::ingest_command(
            data.path(),
            &config,
            &s.settings.kafka.brokers,
            &s.settings.kafka.group_id,
            500,
        );
        if until_idle {
            // The resumed run must not wait for ever on a group that never assigns.
            cmd.arg("--until-idle")
                .env("LANTERN__INGEST__ASSIGNMENT_DEADLINE_SECS", "120");
        }
        common::Watched::spawn(what, &mut cmd, Duration::from_secs(deadline))
    };
    let mut daemon = spawn("the daemon", false, 180);
    assert!(
        daemon.wait_for("lake flush durable", 1),
        "the daemon ended before its first flush:\n{}",
        daemon.tail(30)
    );
    daemon.signal("TERM");
    let status = daemon.wait();
    let rest = daemon.lines();
    assert!(
        status.success(),
        "graceful stop must exit 0: {status:?}\n{}",
        daemon.tail(30)
    );
    assert!(rest.iter().any(|l| l.contains("stop requested")));
    assert!(rest.iter().any(|l| l.contains("ingest finished")));

    // Known, unexplained (sessions 4, 6, 7): about one resumed run in ten on a loaded machine
    // logs "partitions assigned" and then reads nothing until killed. The resumed run takes
    // about 10 s; one that is still running at 90 s is reported here with its log and run once
    // more, so the test still proves what it is for (the restart resumes: the lake is exact, no
    // record lost or doubled) while the stall stays visible in the test output. A second stall
    // fails the test.
    let mut resume = spawn("the resumed run", true, 90);
    let status = match resume.wait_unless_hung() {
        Some(status) => status,
        None => {
            eprintln!(
                "KNOWN STALL: the resumed run read nothing for 90 s and was killed; running it again. Its last log lines:\n{}",
                resume.tail(30)
            );
            resume = spawn("the resumed run (second attempt)", true, 180);
            resume.wait()
        }
    };
    assert!(
        status.success(),
        "the resumed run failed:\n{}",
        resume.tail(30)
    );
    assert_lake_matches(&Lake::in_data_dir(data.path()), &s.manifest);
}

/// Issue 12.4: three `lantern ingest --kafka` processes in one consumer group share one lake,
/// each with its own static member id, and are killed and restarted at seeded random moments:
/// SIGKILL (a crash: nothing flushed since the last commit is kept, the restart re-reads it)
/// or SIGTERM (a graceful stop), each restart a rejoin that moves partitions. Every kill comes
/// after that process was assigned partitions (it takes part in the group; small batches keep
/// the stream long enough that most kills interrupt work in flight).
/// Then one run drains what is left. Every valid event is in the lake once (re-sent copies
/// and re-deliveries counted as duplicates, across processes: the lake's write lock and the
/// key catch-up), and every invalid record is dead-lettered under its origin once in effect.
#[test]
fn three_ingest_processes_killed_and_restarted_at_random_keep_every_event_once() {
    use rand_chacha::ChaCha8Rng;
    let _serial = one_process_test_at_a_time();
    let s = setup(6_000, "lantern-test-three");
    let data = tempfile::tempdir().unwrap();
    let config = short_sessions_config(data.path());
    let spawn = |slot: usize, until_idle: bool| {
        let mut cmd = common::ingest_command(
            data.path(),
            &config,
            &s.settings.kafka.brokers,
            &s.settings.kafka.group_id,
            100,
        );
        cmd.args(["--instance-id", &format!("ingest-{slot}")]);
        if until_idle {
            cmd.arg("--until-idle")
                .env("LANTERN__INGEST__ASSIGNMENT_DEADLINE_SECS", "120");
        }
        common::Watched::spawn(
            &format!("ingest process {slot}"),
            &mut cmd,
            Duration::from_secs(180),
        )
    };
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut procs: Vec<common::Watched> = (0..3).map(|slot| spawn(slot, false)).collect();
    let mut kills = 0;
    for _ in 0..6 {
        let slot = rng.random_range(0..3);
        let p = &mut procs[slot];
        if !p.wait_for("partitions assigned", 1) {
            panic!(
                "process {slot} was never assigned partitions:\n{}",
                p.tail(30)
            );
        }
        let signal = if rng.random_bool(0.5) { "KILL" } else { "TERM" };
        kills += (signal == "KILL") as u32;
        p.signal(signal);
        p.wait();
        procs[slot] = spawn(slot, false);
    }
    assert!(kills > 0, "the seed must crash at least one process");
    for p in &mut procs {
        p.signal("TERM");
        p.wait();
    }
    let mut drain = spawn(0, true);
    let status = drain.wait();
    assert!(
        status.success(),
        "the draining run failed:\n{}",
        drain.tail(30)
    );

    assert_lake_matches(&Lake::in_data_dir(data.path()), &s.manifest);
    let letters = common::dead_letters(&s.settings);
    let origins: HashSet<String> = letters.iter().map(|d| format!("{:?}", d.origin)).collect();
    assert_eq!(
        origins.len() as u64,
        s.manifest.total_invalid(),
        "every invalid record dead-lettered, each origin once in effect"
    );
}

/// Issue 9.1: the ingest day is the day each record arrives, in Korean time, not the day the
/// daemon started. One ingestor (the daemon's state) consumes three days' traffic while an
/// injected clock passes two midnights in Asia/Seoul: every day's records are accepted (none is
/// `future_date`), and a record without `reported_on` gets its own arrival day as its knowledge
/// date.
#[test]
fn a_daemon_running_across_two_midnights_accepts_each_days_records_and_stamps_each_with_its_own_day(
) {
    use chrono::TimeZone;
    use lantern::clock::{IngestDay, ManualClock};
    use rdkafka::producer::{BaseRecord, Producer};
    let mut settings = Settings::defaults();
    let _cluster =
        lantern::kafka::start_mock_cluster(&mut settings, "lantern-midnight", 1).unwrap();
    let registry = Registry::embedded();
    let data = tempfile::tempdir().unwrap();
    let lake = Lake::in_data_dir(data.path());
    // 23:30 in Seoul on 1 November is 14:30 UTC: a server on UTC would still say 1 November
    // for nine more hours after Seoul's midnight.
    let clock = std::sync::Arc::new(ManualClock::new(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 1, 14, 30, 0)
            .unwrap(),
    ));
    let start = day();
    let mut ingestor = Ingestor::new(
        Validator::new(&registry, start),
        None,
        LakeWriter::new(lake.clone()),
        Box::new(lantern::ingest::deadletter::MemoryDeadLetters::default()),
    )
    .with_ingest_day(IngestDay::Clock {
        clock: clock.clone(),
        zone: lantern::clock::parse_zone(&settings.ingest.time_zone).unwrap(),
    });
    let producer: BaseProducer = lantern::kafka::producer_config(&settings.kafka)
        .create()
        .unwrap();
    let mut opts = KafkaIngestOptions::new(1_000);
    opts.until_idle = true;
    let mut expected = BTreeMap::new();
    for n in 0..3u64 {
        let today = start + chrono::Days::new(n);
        // Half an hour past each midnight in Seoul (after the first night).
        if n > 0 {
            let utc = chrono::Utc
                .with_ymd_and_hms(2026, 11, 1, 15, 30, 0)
                .unwrap()
                + chrono::Duration::days(n as i64 - 1);
            clock.set(utc);
        }
        for i in 0..20 {
            let id = format!("evt-day{n}-{i}");
            let line = format!(
                r#"{{"event_id":"{id}","source":"kepco","household_id":"hh-midnight-{i:03}","district_code":"11110","observed_on":"{today}","kind":"utility_arrears","utility":"electricity","months_overdue":2,"amount_krw":90000,"service_cut":false}}"#
            );
            producer
                .send(
                    BaseRecord::to(&settings.topics.utility_arrears)
                        .key(&id)
                        .payload(&line),
                )
                .unwrap();
            expected.insert(id, today);
        }
        producer.flush(Duration::from_secs(10)).unwrap();
        consume(&settings, &mut ingestor, &opts).unwrap();
        assert_eq!(
            ingestor.ingest_day(),
            today,
            "the daemon's day follows the clock"
        );
    }
    let stats = ingestor.stats();
    assert_eq!(
        stats.rejected,
        BTreeMap::new(),
        "no day's records are refused"
    );
    assert_eq!(stats.accepted, 60);
    let mut got = BTreeMap::new();
    for f in lake
        .table_files(lantern::lake::Table::UtilityArrears)
        .unwrap()
    {
        for b in lake.read_file(&f).unwrap() {
            use datafusion::arrow::array::AsArray;
            let ids = b
                .column_by_name("event_id")
                .unwrap()
                .as_string::<i32>()
                .clone();
            let known = b
                .column_by_name("reported_on")
                .unwrap()
                .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                .clone();
            for i in 0..b.num_rows() {
                got.insert(
                    ids.value(i).to_string(),
                    lantern::lake::date_from_days(known.value(i)),
                );
            }
        }
    }
    assert_eq!(
        got, expected,
        "each record's knowledge date is the day it arrived"
    );
}

/// Rows in every signal and outcome table of a lake, and the event ids of the signal tables.
fn lake_ids(lake: &Lake) -> (Vec<String>, usize) {
    use lantern::contract::Vocab;
    let mut ids = Vec::new();
    for kind in lantern::contract::SignalKind::ALL {
        ids.extend(common::column(
            lake,
            lantern::lake::Table::for_kind(*kind),
            "event_id",
        ));
    }
    let outcomes = common::rows(lake, lantern::lake::Table::Outcomes);
    (ids, outcomes)
}

/// Issue 9.7: two ingest consumers in one group sharing one lake (as two machines share the
/// lake's store), one joining mid-stream and the other leaving mid-stream. At each rebalance
/// the old owner makes everything durable, commits, and forgets the revoked partitions (no
/// stale offset is committed later), and the new owner re-reads the lake's keys. So every valid
/// event is in the lake once, the two processes' `accepted` counters add up to exactly the
/// valid events (a redelivered event counts as a duplicate), and every invalid record is
/// dead-lettered under its origin once in effect.
///
/// The premise is made, not hoped for: half of every topic is produced before the first
/// consumer starts and the other half only once the second has been handed partitions, so the
/// second always finds work of its own however fast the first drains (in CI the first once
/// drained everything before the second joined).
#[test]
fn two_consumers_in_one_group_one_leaving_mid_stream_lose_nothing_and_count_nothing_twice() {
    // No planted re-sends: they would make `duplicates` non-zero for reasons of their own.
    let mut settings = Settings::defaults();
    let _cluster =
        lantern::kafka::start_mock_cluster(&mut settings, "lantern-test-rebalance", 3).unwrap();
    let sim_dir = tempfile::tempdir().unwrap();
    let manifest = common::simulate(sim_dir.path(), 6_000, 23, 0.02, 0.0);
    let m = &manifest;
    // Each topic's file, split into its first and second halves.
    use lantern::contract::Vocab;
    let mut files: Vec<(String, std::path::PathBuf)> = lantern::contract::SignalKind::ALL
        .iter()
        .map(|k| {
            (
                settings.topics.for_kind(*k).to_string(),
                lantern::sim::signal_file(sim_dir.path(), *k),
            )
        })
        .collect();
    files.push((
        settings.topics.case_outcomes.clone(),
        lantern::sim::outcome_file(sim_dir.path()),
    ));
    let halves: Vec<(String, std::path::PathBuf, std::path::PathBuf)> = files
        .iter()
        .enumerate()
        .map(|(i, (topic, path))| {
            let text = std::fs::read_to_string(path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let (first, second) = lines.split_at(lines.len() / 2);
            let write = |name: String, part: &[&str]| {
                let p = sim_dir.path().join(name);
                std::fs::write(
                    &p,
                    part.iter().map(|l| format!("{l}\n")).collect::<String>(),
                )
                .unwrap();
                p
            };
            (
                topic.clone(),
                write(format!("first-{i}.ndjson"), first),
                write(format!("second-{i}.ndjson"), second),
            )
        })
        .collect();
    let producer: rdkafka::producer::BaseProducer =
        lantern::kafka::producer_config(&settings.kafka)
            .create()
            .unwrap();
    for (topic, first, _) in &halves {
        lantern::kafka::produce_file(&producer, topic, first).unwrap();
    }
    let registry = Registry::embedded();
    let data = tempfile::tempdir().unwrap();
    let lake = Lake::in_data_dir(data.path());
    let expected_signals = m.total_valid_signals() as usize;
    let expected_outcomes = (m.referrals - m.open_referrals) as usize;
    // Small batches: many flushes and commits, so the stream lasts long enough to be shared.
    let mut opts_a = KafkaIngestOptions::new(20);
    opts_a.flush_interval = Duration::from_millis(20);
    let mut opts_b = opts_a.clone();
    opts_b.stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    opts_b.progress = Default::default();
    let (stop_a, stop_b) = (opts_a.stop.clone(), opts_b.stop.clone());
    let settings = &settings;
    let run = |opts: &KafkaIngestOptions| {
        let mut dead = lantern::ingest::deadletter::MemoryDeadLetters::default();
        let mut ing = Ingestor::new(
            Validator::new(&registry, day()),
            None,
            LakeWriter::new(lake.clone()),
            Box::new(&mut dead),
        );
        let report = consume(settings, &mut ing, opts).unwrap();
        let stats = ing.stats().clone();
        drop(ing);
        (dead, stats, report)
    };
    let (pa, pb) = (opts_a.progress.clone(), opts_b.progress.clone());
    let taken = |p: &lantern::ingest::kafka::Progress| {
        p.messages.load(std::sync::atomic::Ordering::Relaxed)
    };
    let (a, b) = std::thread::scope(|scope| {
        // A failed assertion below must end both consumers, or the scope waits for them for
        // ever and the test hangs instead of failing.
        let _stop = StopOnDrop(vec![stop_a.clone(), stop_b.clone()]);
        let a = scope.spawn(|| run(&opts_a));
        assert!(
            pa.wait_until(Duration::from_secs(60), || taken(&pa) > 0),
            "the first consumer took nothing"
        );
        let b = scope.spawn(|| run(&opts_b));
        // Mid-stream: the second joins and is handed partitions...
        assert!(
            pb.wait_until(Duration::from_secs(120), || {
                pb.assigned.load(std::sync::atomic::Ordering::Relaxed) > 0
            }),
            "the second consumer was never handed partitions"
        );
        // ... the second half of the stream arrives, for both of them ...
        for (topic, _, second) in &halves {
            lantern::kafka::produce_file(&producer, topic, second).unwrap();
        }
        assert!(
            pb.wait_until(Duration::from_secs(120), || taken(&pb) > 0),
            "the second consumer took nothing from its partitions"
        );
        // ... and the first goes on with its share for a moment, then leaves.
        let now = taken(&pa);
        pa.wait_until(Duration::from_secs(10), || taken(&pa) > now + 200);
        stop_a.store(true, std::sync::atomic::Ordering::Relaxed);
        let a = a.join().unwrap();
        // The second drains the rest.
        pb.wait_until(Duration::from_secs(120), || {
            let (signals, outcomes) = lake_ids(&lake);
            signals.len() >= expected_signals && outcomes >= expected_outcomes
        });
        stop_b.store(true, std::sync::atomic::Ordering::Relaxed);
        (a, b.join().unwrap())
    });
    let ((dead_a, stats_a, report_a), (dead_b, stats_b, report_b)) = (a, b);
    assert!(
        report_a.messages > 0 && report_b.messages > 0,
        "both consumers took part"
    );
    let (ids, outcomes) = lake_ids(&lake);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        ids.len(),
        unique.len(),
        "{} events written twice",
        ids.len() - unique.len()
    );
    assert_eq!(ids.len(), expected_signals, "every valid event once");
    assert_eq!(outcomes, expected_outcomes, "every outcome once");
    assert_eq!(
        stats_a.accepted + stats_b.accepted,
        (expected_signals + expected_outcomes) as u64,
        "accepted counted once across the group"
    );
    let origins: std::collections::BTreeSet<String> = dead_a
        .letters
        .iter()
        .chain(dead_b.letters.iter())
        .map(|d| format!("{:?}", d.origin))
        .collect();
    assert_eq!(
        origins.len() as u64,
        m.total_invalid(),
        "every invalid record dead-lettered, each origin once in effect"
    );
}

/// Issue 14.1: a consumer without partitions waits instead of failing. One partition per topic,
/// the range assignor and two members: every partition goes to one of them and the other has
/// none, as in a group with more members than partitions or whose old members' sessions are
/// still alive. Whichever member the assignor left idle stays running with zero partitions;
/// when the busy one leaves, the idle one is handed all four and carries on until the lake
/// holds everything exactly once.
///
/// Every wait is on the consumers' own progress (a condition variable) with a deadline, and
/// each member is stopped by its flag: nothing here depends on which member joined first, how
/// fast the machine is, or whether the busy member had read everything before it left.
#[test]
fn a_consumer_without_partitions_waits_and_carries_on_when_they_arrive() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut settings = Settings::defaults();
    let _cluster =
        lantern::kafka::start_mock_cluster(&mut settings, "lantern-test-wait", 1).unwrap();
    settings
        .kafka
        .properties
        .insert("partition.assignment.strategy".into(), "range".into());
    let sim_dir = tempfile::tempdir().unwrap();
    let manifest = common::simulate_to_kafka(&settings, sim_dir.path(), 2_000, 29, 0.0, 0.0);
    let outcomes = manifest.referrals - manifest.open_referrals;
    let expected = manifest.total_valid_signals() + outcomes;
    let registry = Registry::embedded();
    let data = tempfile::tempdir().unwrap();
    let lake = Lake::in_data_dir(data.path());
    let member = || {
        let mut o = KafkaIngestOptions::new(20);
        o.flush_interval = Duration::from_millis(20);
        o.waiting_log_interval = Duration::from_millis(200);
        o
    };
    let (first, second) = (member(), member());
    let settings = &settings;
    let run = |opts: &KafkaIngestOptions| {
        let mut ing = Ingestor::new(
            Validator::new(&registry, day()),
            None,
            LakeWriter::new(lake.clone()),
            Box::new(lantern::ingest::deadletter::MemoryDeadLetters::default()),
        );
        let r = consume(settings, &mut ing, opts);
        (r, ing.stats().clone())
    };
    let (p1, p2) = (first.progress.clone(), second.progress.clone());
    let minute = Duration::from_secs(60);
    let stop_both = || {
        first.stop.store(true, Relaxed);
        second.stop.store(true, Relaxed);
    };
    let (r1, r2, steps) = std::thread::scope(|scope| {
        let h1 = scope.spawn(|| run(&first));
        let h2;
        // Each step waits for a state of the group; a step that does not come within a minute
        // stops both members (so the test ends) and is reported below.
        let steps = 'steps: {
            if !p1.wait_until(minute, || p1.messages.load(Relaxed) > 0) {
                h2 = None;
                break 'steps Err("the first member never took a message");
            }
            h2 = Some(scope.spawn(|| run(&second)));
            // Settled: the second member has joined (it was handed an assignment, empty or
            // not) and the first has been handed its share since, together all four.
            let joined_at = p1.assignments.load(Relaxed);
            let settled = p2.wait_until(minute, || {
                p2.assignments.load(Relaxed) >= 1
                    && p1.assignments.load(Relaxed) > joined_at
                    && p1.assigned.load(Relaxed) + p2.assigned.load(Relaxed) == 4
            });
            if !settled {
                break 'steps Err("the group never settled with both members");
            }
            let (a1, a2) = (p1.assigned.load(Relaxed), p2.assigned.load(Relaxed));
            if a1 != 0 && a2 != 0 {
                break 'steps Err("the range assignor split single-partition topics");
            }
            let (busy, idle) = if a1 == 0 {
                (&second, &p1)
            } else {
                (&first, &p2)
            };
            busy.stop.store(true, Relaxed);
            if !idle.wait_until(minute, || idle.assigned.load(Relaxed) == 4) {
                break 'steps Err("the idle member was never handed the partitions");
            }
            // Carries on: it reads what the busy member left until the lake is complete.
            let complete = idle.wait_until(minute, || {
                common::try_rows(&lake).is_some_and(|n| n as u64 >= expected)
            });
            if !complete {
                break 'steps Err("the member that took over did not drain the topics");
            }
            Ok(())
        };
        stop_both();
        let r1 = h1.join().unwrap();
        let r2 = h2.map(|h| h.join().unwrap());
        (r1, r2, steps)
    });
    steps.unwrap();
    let (r1, s1) = r1;
    let (r2, s2) = r2.expect("the second member ran");
    r1.expect("the first member ends without an error");
    r2.expect("the second member ends without an error");
    assert_eq!(
        s1.accepted + s2.accepted,
        expected,
        "each record accepted once"
    );
    assert_lake_matches(&lake, &manifest);
}

/// Issue 14.1: an explicit deadline for `--until-idle` is honoured, and its error says what it
/// waited for.
#[test]
fn until_idle_with_a_deadline_says_what_it_waited_for() {
    let mut settings = Settings::defaults();
    let _cluster =
        lantern::kafka::start_mock_cluster(&mut settings, "lantern-test-deadline", 1).unwrap();
    // Topics nobody created: the group can never assign anything.
    settings.topics.utility_arrears = "nowhere.a".into();
    settings.topics.council_reports = "nowhere.b".into();
    settings.topics.service_gaps = "nowhere.c".into();
    settings.topics.case_outcomes = "nowhere.d".into();
    settings
        .kafka
        .properties
        .insert("allow.auto.create.topics".into(), "false".into());
    let registry = Registry::embedded();
    let data = tempfile::tempdir().unwrap();
    let mut ing = Ingestor::new(
        Validator::new(&registry, day()),
        None,
        LakeWriter::new(Lake::in_data_dir(data.path())),
        Box::new(lantern::ingest::deadletter::MemoryDeadLetters::default()),
    );
    let mut opts = KafkaIngestOptions::new(100);
    opts.until_idle = true;
    opts.assignment_timeout = Some(Duration::from_secs(2));
    let err = consume(&settings, &mut ing, &opts).unwrap_err().to_string();
    assert!(
        err.contains("no partition assigned after waiting 2s"),
        "{err}"
    );
    assert!(err.contains("nowhere.a"), "{err}");
}

/// Issue 14.2: static membership. An ingest process with a `group.instance.id` (here through
/// the KIP-848 group protocol, the only one in which librdkafka's mock cluster knows static
/// members) is killed with SIGKILL mid-stream and restarted at once with the same id: the
/// restart waits for its partitions without an error, drains and exits 0, and the lake is
/// exact. What this cannot show: that the restart reclaims its partitions *at once*. The mock
/// keeps the dead member until its 30 s session expires whatever the id (measured: 31.5 s with
/// the same id, 33 s with another), so the fast reclaim is the broker's promise (Kafka 2.3+,
/// KIP-345), documented in docs/OPERATIONS.md, not something this test proves.
#[test]
fn a_static_member_killed_and_restarted_at_once_waits_for_its_partitions_and_ends_exact() {
    let _serial = one_process_test_at_a_time();
    let s = setup(2_000, "lantern-test-static");
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("static.toml");
    std::fs::write(
        &config,
        "[kafka]\ngroup_instance_id = \"ingest-1\"\n[kafka.properties]\n\"group.protocol\" = \"consumer\"\n",
    )
    .unwrap();
    let spawn = |what: &str, until_idle: bool| {
        let mut cmd = common::ingest_command(
            data.path(),
            &config,
            &s.settings.kafka.brokers,
            &s.settings.kafka.group_id,
            300,
        );
        if until_idle {
            cmd.arg("--until-idle");
        }
        common::Watched::spawn(what, &mut cmd, Duration::from_secs(180))
    };
    let mut first = spawn("the first member", false);
    assert!(
        first.wait_for("lake flush durable", 1),
        "the first member ended before its first flush:\n{}",
        first.tail(30)
    );
    first.signal("KILL"); // no leave: the session stays on the broker
    first.wait();
    let started = Instant::now();
    let mut second = spawn("the restarted member", true);
    let status = second.wait();
    tracing_free_note(started.elapsed());
    assert!(
        status.success(),
        "the restart exits 0: {status:?}\n{}",
        second.tail(30)
    );
    assert_lake_matches(&Lake::in_data_dir(data.path()), &s.manifest);
}

/// How long the restart took, for whoever reads the test output (not asserted: see above).
fn tracing_free_note(took: Duration) {
    eprintln!("the restarted static member drained in {took:?}");
}
