//! Helpers shared by the integration tests that read the lake back.

#![allow(dead_code)]

pub mod cluster;

use std::collections::HashSet;

use datafusion::arrow::array::AsArray;
use lantern::contract::{SignalKind, Vocab};
use lantern::lake::{Lake, Table};
use lantern::sim::Manifest;

/// Every value of a string column across a table's files.
pub fn column(lake: &Lake, table: Table, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for f in lake.table_files(table).unwrap() {
        for b in lake.read_file(&f).unwrap() {
            let c = b.column_by_name(name).unwrap().as_string::<i32>();
            out.extend(c.iter().map(|v| v.unwrap_or_default().to_string()));
        }
    }
    out
}

/// Rows in a table.
pub fn rows(lake: &Lake, table: Table) -> usize {
    lake.table_files(table)
        .unwrap()
        .iter()
        .flat_map(|f| lake.read_file(f).unwrap())
        .map(|b| b.num_rows())
        .sum()
}

/// Rows in every signal table and the outcomes together, or `None` when a file could not be read
/// (one being replaced while a writer runs): for a test that watches a running writer.
pub fn try_rows(lake: &Lake) -> Option<usize> {
    let mut n = 0;
    let tables = SignalKind::ALL
        .iter()
        .map(|k| Table::for_kind(*k))
        .chain([Table::Outcomes]);
    for table in tables {
        for f in lake.table_files(table).ok()? {
            n += lake
                .read_file(&f)
                .ok()?
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>();
        }
    }
    Some(n)
}

/// The lake holds each valid simulated event exactly once, and every decided outcome.
pub fn assert_lake_matches(lake: &Lake, m: &Manifest) {
    for kind in SignalKind::ALL {
        let ids = column(lake, Table::for_kind(*kind), "event_id");
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            ids.len(),
            unique.len(),
            "{kind:?} has duplicates in the lake"
        );
        assert_eq!(ids.len() as u64, m.valid_signals[kind.as_str()], "{kind:?}");
    }
    assert_eq!(
        rows(lake, Table::Outcomes) as u64,
        m.referrals - m.open_referrals,
        "outcomes"
    );
}

/// Simulates `households` over 8 months into `dir` with the given share of planted invalid and
/// duplicate records.
pub fn simulate(
    dir: &std::path::Path,
    households: u64,
    seed: u64,
    invalid: f64,
    dup: f64,
) -> Manifest {
    let mut p = lantern::sim::SimParams::new(households, 8, seed);
    p.invalid_rate = invalid;
    p.duplicate_rate = dup;
    lantern::sim::simulate(
        &p,
        &lantern::registry::Registry::embedded(),
        dir,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap()
}

/// Simulates and produces the population to the configured topics.
pub fn simulate_to_kafka(
    settings: &lantern::config::Settings,
    dir: &std::path::Path,
    households: u64,
    seed: u64,
    invalid: f64,
    dup: f64,
) -> Manifest {
    let m = simulate(dir, households, seed, invalid, dup);
    let producer: rdkafka::producer::BaseProducer =
        lantern::kafka::producer_config(&settings.kafka)
            .create()
            .unwrap();
    lantern::sim::produce_simulation(&producer, &settings.topics, dir).unwrap();
    m
}

/// `lantern ingest --kafka` as a child process against `brokers`, the way the crash tests run
/// it: JSON logs at debug on stderr (they watch for `lake flush durable`), no progress bars,
/// the ingest day fixed. The caller adds `--until-idle` and the stdio it wants.
pub fn ingest_command(
    data: &std::path::Path,
    config: &std::path::Path,
    brokers: &str,
    group: &str,
    batch: u32,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lantern"));
    cmd.args(["--config", config.to_str().unwrap(), "--log-format", "json"])
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["ingest", "--kafka", "--ingest-day", "2026-11-01"])
        .env("LANTERN__KAFKA__BROKERS", brokers)
        .env("LANTERN__KAFKA__GROUP_ID", group)
        .env("LANTERN__INGEST__BATCH_RECORDS", batch.to_string())
        // librdkafka's own warnings too: a broker or group error explains a stalled run.
        .env(
            "RUST_LOG",
            std::env::var("LANTERN_TEST_CHILD_LOG")
                .unwrap_or("lantern=debug,librdkafka=info".into()),
        )
        .env("LANTERN_NO_PROGRESS", "1")
        .stdout(std::process::Stdio::null());
    cmd
}

/// A child process under a deadline, its stderr read line by line on a thread.
///
/// CI has one time budget for everything, so a child that hangs (a consumer that never gets its
/// partitions, a shutdown that never finishes) must fail its own test, with its last log lines,
/// instead of stalling the whole run. A watchdog thread kills the child with SIGKILL when the
/// deadline passes; that also closes its stderr, so every wait below ends. Dropping the
/// `Watched` kills a child still running.
pub struct Watched {
    child: std::process::Child,
    log: std::sync::Arc<(std::sync::Mutex<Log>, std::sync::Condvar)>,
    fired: std::sync::Arc<std::sync::atomic::AtomicBool>,
    disarm: Option<std::sync::mpsc::Sender<()>>,
    what: String,
}

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    closed: bool,
}

impl Watched {
    /// Spawns `cmd` with stderr piped; it is killed if still running after `limit`.
    pub fn spawn(
        what: &str,
        cmd: &mut std::process::Command,
        limit: std::time::Duration,
    ) -> Watched {
        use std::io::BufRead;
        let mut child = cmd
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
        let log = std::sync::Arc::new((
            std::sync::Mutex::new(Log::default()),
            std::sync::Condvar::new(),
        ));
        let stderr = child.stderr.take().expect("stderr is piped");
        let l = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                l.0.lock().unwrap().lines.push(line);
                l.1.notify_all();
            }
            l.0.lock().unwrap().closed = true;
            l.1.notify_all();
        });
        let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (disarm, armed) = std::sync::mpsc::channel::<()>();
        let (pid, f, name) = (child.id(), fired.clone(), what.to_string());
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = armed.recv_timeout(limit) {
                eprintln!(
                    "{name}: still running after {}s; killing it",
                    limit.as_secs()
                );
                f.store(true, std::sync::atomic::Ordering::SeqCst);
                eprintln!("{name}: its threads before the kill:\n{}", thread_dump(pid));
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        });
        Watched {
            child,
            log,
            fired,
            disarm: Some(disarm),
            what: what.to_string(),
        }
    }

    /// Blocks until `count` lines containing `needle` have been logged; false if the child
    /// closed its stderr (it exited, or the watchdog killed it) first.
    pub fn wait_for(&self, needle: &str, count: usize) -> bool {
        let (lock, changed) = &*self.log;
        let mut log = lock.lock().unwrap();
        loop {
            if log.lines.iter().filter(|l| l.contains(needle)).count() >= count {
                return true;
            }
            if log.closed {
                return false;
            }
            log = changed.wait(log).unwrap();
        }
    }

    /// Sends a signal (`TERM`, `KILL`, ...).
    pub fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{}: could not send SIG{signal}", self.what);
    }

    /// As [`Watched::wait`], but `None` (not a panic) when the watchdog had to kill the child.
    pub fn wait_unless_hung(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.wait().unwrap();
        self.disarm.take();
        let (lock, changed) = &*self.log;
        let mut log = lock.lock().unwrap();
        while !log.closed {
            log = changed.wait(log).unwrap();
        }
        drop(log);
        (!self.fired.load(std::sync::atomic::Ordering::SeqCst)).then_some(status)
    }

    /// Waits for the child to exit and for its stderr to close; panics with the log's tail if
    /// the watchdog had to kill it.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        match self.wait_unless_hung() {
            Some(status) => status,
            None => panic!(
                "{} hung and was killed at its deadline; its last log lines:\n{}",
                self.what,
                self.tail(30)
            ),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap().lines.clone()
    }

    /// The last `n` lines, for a failure message.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Every thread's stack of a running process, by gdb, so a hang's cause is in the test output;
/// a note instead when gdb is not installed or cannot attach.
fn thread_dump(pid: u32) -> String {
    match std::process::Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-nx",
            "-ex",
            "thread apply all bt",
        ])
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("Thread ") || l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("(no thread dump: gdb could not run: {e})"),
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.disarm.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `lantern` on `data` with `args`, no progress bars, the log at `warn`; panics with the
/// output when it fails.
pub fn lantern_ok(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_lantern"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("LANTERN_NO_PROGRESS", "1")
        .env("RUST_LOG", "warn")
        .env_remove("LANTERN_CRASH_AT")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "lantern {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The NDJSON files `lantern simulate --out sim` writes that `lantern ingest` reads: the
/// three signal kinds and the case outcomes.
pub fn signal_files(sim: &std::path::Path) -> Vec<String> {
    [
        "signals/utility-arrears",
        "signals/council-reports",
        "signals/service-gaps",
        "outcomes/case-outcomes",
    ]
    .iter()
    .map(|f| sim.join(format!("{f}.ndjson")).display().to_string())
    .collect()
}

/// A data directory as an agency has it before its first night, made with the commands an
/// operator runs: `lantern simulate` (into `root/sim`), `ingest` of every signal file and the
/// outcomes (ingest day `night`), `import` of the households and the past referral lists.
/// Returns `root/data`.
pub fn populated_data_dir(
    root: &std::path::Path,
    households: u32,
    months: u32,
    seed: u64,
    night: &str,
) -> std::path::PathBuf {
    let sim = root.join("sim");
    let data = root.join("data");
    let (h, m, s) = (households.to_string(), months.to_string(), seed.to_string());
    lantern_ok(
        &data,
        &[
            "simulate",
            "--households",
            &h,
            "--months",
            &m,
            "--seed",
            &s,
            "--end",
            night,
            "--out",
            sim.to_str().unwrap(),
        ],
    );
    let files = signal_files(&sim);
    let mut ingest = vec!["ingest", "--ingest-day", night, "--file"];
    ingest.extend(files.iter().map(String::as_str));
    lantern_ok(&data, &ingest);
    lantern_ok(
        &data,
        &[
            "import",
            "--households",
            sim.join("households.csv").to_str().unwrap(),
            "--referrals",
            sim.join("history/referrals.ndjson").to_str().unwrap(),
        ],
    );
    data
}

/// Every row of a Parquet file, sorted, as text: equal text is equal values.
pub fn parquet_rows(path: &std::path::Path, order: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_parquet(
            "t",
            path.to_str().unwrap(),
            datafusion::prelude::ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        let batches = ctx
            .sql(&format!("SELECT * FROM t ORDER BY {order}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    })
}

/// Every letter on the dead-letter topic, read to its end by assigning its partitions.
///
/// Not by subscribing: a reader in a group closes through rust-rdkafka's default rebalance
/// handler, which asks librdkafka for the rebalance protocol from inside the callback, and that
/// request can wait for ever during a close (session 9 found it in the ingest consumer, which
/// has its own handler since; this test's own reader hung the same way in session 11's CI, for
/// 30 minutes until the CI's ceiling). Everything is on the topic by now: ingest flushes its
/// dead letters before it commits and returns.
pub fn dead_letters(settings: &lantern::config::Settings) -> Vec<lantern::ingest::DeadLetter> {
    let consumer: rdkafka::consumer::BaseConsumer = lantern::kafka::client_config(&settings.kafka)
        .set("group.id", "dead-letter-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut out = Vec::new();
    lantern::kafka::read_to_end(&consumer, &settings.topics.dead_letter, |m| {
        out.push(
            serde_json::from_slice::<lantern::ingest::DeadLetter>(
                rdkafka::Message::payload(m).unwrap(),
            )
            .unwrap(),
        );
    })
    .unwrap();
    out
}
