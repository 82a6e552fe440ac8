//! Against a real Kafka-protocol broker process (tansu, SQLite storage, on 127.0.0.1): an
//! ingest process rides out a broker restart and loses nothing, and one killed with SIGKILL
//! again and again, restarted at once each time, comes back by itself and ends exact.
//!
//! The broker binary comes from `scripts/tansu.sh install`, which `.ci/run` calls and whose
//! path it passes in `LANTERN_TANSU`. Without it the test says so and does nothing, except in
//! CI (`CI` set), where a missing broker is a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

use lantern::config::Settings;
use lantern::lake::Lake;

fn tansu() -> Option<PathBuf> {
    match std::env::var_os("LANTERN_TANSU") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "LANTERN_TANSU must be the path of the tansu binary (from scripts/tansu.sh install), \
                 got {} characters that name no file",
                p.as_os_str().len()
            );
            Some(p)
        }
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "LANTERN_TANSU is not set: .ci/run must install the broker with scripts/tansu.sh"
            )
        }
        None => {
            eprintln!("skipped: set LANTERN_TANSU=$(scripts/tansu.sh install) to run against a real broker");
            None
        }
    }
}

/// A broker process, killed when dropped.
struct Broker {
    child: Child,
}

impl Broker {
    /// Starts tansu on `port` with its database in `dir`, and returns once it says it is ready.
    fn start(bin: &Path, dir: &Path, port: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("ready in") => break,
                Some(Ok(_)) => continue,
                _ => panic!("tansu exited before it was ready"),
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Broker { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn create_topic_with(bin: &Path, port: u16, name: &str, partitions: u32) {
    let ok = Command::new(bin)
        .args([
            "topic",
            "create",
            name,
            "--partitions",
            &partitions.to_string(),
        ])
        .args(["--broker", &format!("tcp://127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "cannot create topic {name}");
}

/// A broker on a free port with every topic created, and settings pointing at it.
fn broker_with_topics(
    bin: &Path,
    dir: &Path,
    group: &str,
    partitions: u32,
) -> (Broker, Settings, u16) {
    let port = free_port();
    let broker = Broker::start(bin, dir, port);
    let mut settings = Settings::defaults();
    settings.kafka.brokers = format!("127.0.0.1:{port}");
    settings.kafka.group_id = group.into();
    for (_, t) in settings.topics.all() {
        create_topic_with(bin, port, t, partitions);
    }
    (broker, settings, port)
}

#[test]
fn ingest_rides_out_a_broker_restart_and_loses_nothing() {
    let Some(bin) = tansu() else { return };
    let broker_dir = tempfile::tempdir().unwrap();
    let (mut broker, settings, port) =
        broker_with_topics(&bin, broker_dir.path(), "lantern-real-broker", 3);

    let sim_dir = tempfile::tempdir().unwrap();
    let m = common::simulate_to_kafka(&settings, sim_dir.path(), 2_000, 33, 0.01, 0.01);

    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lantern"));
    cmd.args([
        "--log-format",
        "json",
        "--data-dir",
        data.path().to_str().unwrap(),
    ])
    .args([
        "ingest",
        "--kafka",
        "--until-idle",
        "--ingest-day",
        "2026-11-01",
    ])
    .env("LANTERN__KAFKA__BROKERS", &settings.kafka.brokers)
    .env("LANTERN__KAFKA__GROUP_ID", &settings.kafka.group_id)
    .env("LANTERN__INGEST__BATCH_RECORDS", "500")
    .env("RUST_LOG", "lantern=debug")
    .env("LANTERN_NO_PROGRESS", "1")
    .stdout(Stdio::null());
    let mut ingest = common::Watched::spawn("ingest", &mut cmd, Duration::from_secs(240));
    // After the first durable flush (most of the topics still unread), take the broker down
    // hard and bring it back on the same storage.
    assert!(
        ingest.wait_for("lake flush durable", 1),
        "ingest ended before its first flush:\n{}",
        ingest.tail(30)
    );
    broker.kill();
    let mut broker = Broker::start(&bin, broker_dir.path(), port);
    let status = ingest.wait();
    assert!(
        status.success(),
        "ingest failed: {status:?}\n{}",
        ingest.tail(30)
    );
    broker.kill();

    common::assert_lake_matches(&Lake::in_data_dir(data.path()), &m);
}

/// Issue 14.4: the crash loop an operator saw. A population with re-sent and invalid records on
/// four partitions per topic; `lantern ingest --kafka --until-idle` is killed with SIGKILL after
/// a seeded number of durable flushes and restarted at once, as a service manager would, while
/// the killed member's session is still alive on the broker. No restart gives up (each one
/// waits for its partitions, however long the old session lingers), and at the end every valid
/// event is in the lake once and every invalid record is dead-lettered once in effect (counted
/// once by its key however often a crash made it be sent again).
#[test]
fn an_ingest_killed_again_and_again_and_restarted_at_once_comes_back_by_itself_and_ends_exact() {
    use rand::{Rng, SeedableRng};
    let Some(bin) = tansu() else { return };
    let broker_dir = tempfile::tempdir().unwrap();
    let (mut broker, settings, _) =
        broker_with_topics(&bin, broker_dir.path(), "lantern-real-crash", 4);
    let sim_dir = tempfile::tempdir().unwrap();
    let m = common::simulate_to_kafka(&settings, sim_dir.path(), 2_000, 41, 0.02, 0.02);

    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("crash.toml");
    // A short session so the test does not take minutes; the restarts do not rely on it.
    std::fs::write(
        &config,
        "[kafka.properties]\n\"session.timeout.ms\" = \"10000\"\n\"heartbeat.interval.ms\" = \"1000\"\n",
    )
    .unwrap();
    let run = |kill_after: Option<u32>| {
        let mut cmd = common::ingest_command(
            data.path(),
            &config,
            &settings.kafka.brokers,
            &settings.kafka.group_id,
            400,
        );
        cmd.arg("--until-idle");
        let mut child = common::Watched::spawn("ingest", &mut cmd, Duration::from_secs(240));
        let killed = kill_after.is_some_and(|k| child.wait_for("lake flush durable", k as usize));
        if killed {
            child.signal("KILL");
        }
        let status = child.wait();
        (killed, status, child.tail(20))
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261202);
    let mut kills = 0;
    for _ in 0..3 {
        let (killed, status, last) = run(Some(rng.random_range(1..5u32)));
        if killed {
            kills += 1;
        } else {
            assert!(
                status.success(),
                "a restart exited with an error: {status:?}\n{}",
                last
            );
        }
    }
    assert!(
        kills >= 2,
        "the ingest process should have been killed mid-stream"
    );
    let (killed, status, last) = run(None);
    assert!(!killed);
    assert!(
        status.success(),
        "the last run failed: {status:?}\n{}",
        last
    );

    common::assert_lake_matches(&Lake::in_data_dir(data.path()), &m);
    let tally = lantern::ingest::kafka::read_dead_letters(&settings).unwrap();
    assert_eq!(
        tally.letters.len() as u64,
        m.total_invalid(),
        "every invalid record, once"
    );
    assert_eq!(tally.by_reason(), m.invalid_by_reason);
    broker.kill();
}
