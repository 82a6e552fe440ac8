//! The night on a real Apache DataFusion Ballista cluster (issue #12): a scheduler and two
//! executors, each a process of its own on 127.0.0.1, started by `scripts/ballista.sh` from this
//! build (`lantern cluster …`), against the same night on the local engine.
//!
//! Built and run with `--features ballista` (the README's test command, `.ci/run`).
#![cfg(feature = "ballista")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

/// A cluster started by the script; stopped when dropped, also when the test fails.
struct Cluster {
    dir: PathBuf,
    address: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ballista.sh")
}

impl Cluster {
    fn start(dir: &Path, executors: u32) -> Cluster {
        let o = Command::new("bash")
            .arg(script())
            .args(["start", dir.to_str().unwrap(), &executors.to_string()])
            .env("LANTERN_BIN", env!("CARGO_BIN_EXE_lantern"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "scripts/ballista.sh start failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let address = String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert!(address.starts_with("ballista://127.0.0.1:"), "{address}");
        Cluster {
            dir: dir.to_path_buf(),
            address,
        }
    }

    /// Tasks each executor's log says it ran.
    fn tasks_run(&self, executors: u32) -> Vec<usize> {
        (1..=executors)
            .map(|i| {
                std::fs::read_to_string(self.dir.join(format!("executor-{i}.log")))
                    .unwrap_or_default()
                    .matches("Execute task")
                    .count()
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

fn lantern(data: &Path, args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(args)
        .env("LANTERN_NO_PROGRESS", "1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "lantern {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Every row of a Parquet file, sorted, as text: equal text is equal values.
fn rows(path: &Path, order: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = SessionContext::new();
        ctx.register_parquet("t", path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
        let batches = ctx
            .sql(&format!("SELECT * FROM t ORDER BY {order}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    })
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Proves: the same data directory gives the same night on a Ballista cluster of separate
/// processes as on the local engine: the features value for value, the trained model's
/// back-test, every district's referral list, the decision log and the fairness audit; and the
/// plans really ran on both executors.
#[test]
fn a_night_on_the_ballista_cluster_equals_the_local_night() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let base = tmp.path().join("base");
    // 14 months: enough referral nights for the promotion gate's back-test.
    lantern(
        &base,
        &[
            "simulate",
            "--households",
            "3000",
            "--months",
            "14",
            "--seed",
            "11",
            "--out",
            sim.to_str().unwrap(),
        ],
    );
    let signals: Vec<String> = ["utility-arrears", "council-reports", "service-gaps"]
        .iter()
        .map(|k| {
            sim.join(format!("signals/{k}.ndjson"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let outcomes = sim.join("outcomes/case-outcomes.ndjson");
    let mut ingest = vec!["ingest", "--file"];
    ingest.extend(signals.iter().map(String::as_str));
    ingest.push(outcomes.to_str().unwrap());
    lantern(&base, &ingest);
    lantern(
        &base,
        &[
            "import",
            "--households",
            sim.join("households.csv").to_str().unwrap(),
            "--referrals",
            sim.join("history/referrals.ndjson").to_str().unwrap(),
        ],
    );

    let local = tmp.path().join("local");
    let remote = tmp.path().join("remote");
    copy_dir(&base, &local);
    copy_dir(&base, &remote);
    let cluster = Cluster::start(&tmp.path().join("cluster"), 2);
    let engine = cluster.address.as_str();

    // Training: labels, training features and the back-test all run on the engine.
    let train = [
        "train",
        "--as-of",
        "2026-10-01",
        "--kind",
        "rule",
        "--kind",
        "trees",
        "--folds",
        "1",
    ];
    let trained_local = lantern(&local, &train);
    let mut on_cluster = train.to_vec();
    on_cluster.extend(["--engine", engine]);
    let trained_remote = lantern(&remote, &on_cluster);
    let report = |o: &Output, data: &Path| {
        // The report folder is named by the time of the run.
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with("Back-test the gate judged on"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(data.to_str().unwrap(), "DATA")
    };
    assert!(
        report(&trained_local, &local).contains("evaluated referrals"),
        "{}",
        report(&trained_local, &local)
    );
    assert_eq!(
        report(&trained_local, &local),
        report(&trained_remote, &remote),
        "the promotion gate's figures differ between the engines"
    );

    // The researcher's export.
    let f_local = tmp.path().join("features-local.parquet");
    let f_remote = tmp.path().join("features-remote.parquet");
    lantern(
        &local,
        &[
            "features",
            "--as-of",
            "2026-10-31",
            "--out",
            f_local.to_str().unwrap(),
        ],
    );
    lantern(
        &remote,
        &[
            "features",
            "--as-of",
            "2026-10-31",
            "--out",
            f_remote.to_str().unwrap(),
            "--engine",
            engine,
        ],
    );
    let features = rows(&f_local, "household_id, as_of");
    assert!(
        features.lines().count() > 1_000,
        "too few feature rows to prove anything"
    );
    assert_eq!(features, rows(&f_remote, "household_id, as_of"));

    // The night.
    lantern(&local, &["screen", "--as-of", "2026-10-31"]);
    lantern(
        &remote,
        &["screen", "--as-of", "2026-10-31", "--engine", engine],
    );
    let night = |data: &Path| data.join("drafts/as_of=2026-10-31");
    let (l, r) = (night(&local), night(&remote));
    let mut lists = 0;
    for entry in std::fs::read_dir(&l).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".csv") {
            lists += 1;
            assert_eq!(
                std::fs::read_to_string(l.join(&name)).unwrap(),
                std::fs::read_to_string(r.join(&name)).unwrap_or_default(),
                "district list {name} differs"
            );
        }
    }
    assert!(lists > 100, "only {lists} district lists");
    assert_eq!(
        rows(&l.join("referrals.parquet"), "referral_id"),
        rows(&r.join("referrals.parquet"), "referral_id")
    );
    assert_eq!(
        std::fs::read(l.join("decisions.parquet")).unwrap(),
        std::fs::read(r.join("decisions.parquet")).unwrap(),
        "the decision logs differ"
    );
    assert_eq!(
        std::fs::read_to_string(l.join("fairness.json")).unwrap(),
        std::fs::read_to_string(r.join("fairness.json")).unwrap()
    );

    let tasks = cluster.tasks_run(2);
    assert!(
        tasks.iter().all(|&n| n > 0),
        "tasks per executor: {tasks:?}"
    );
}
