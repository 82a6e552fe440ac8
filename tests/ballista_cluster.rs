//! The night on a real Apache DataFusion Ballista cluster (issue #12): a scheduler and two
//! executors, each a process of its own on 127.0.0.1, started by `scripts/ballista.sh` from this
//! build (`lantern cluster …`), against the same night on the local engine.
//!
//! Built and run with `--features ballista` (the README's test command, `.ci/run`).
#![cfg(feature = "ballista")]

mod common;

use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

const NIGHT: &str = "2026-10-31";

/// Proves: the same data directory gives the same night on a Ballista cluster of separate
/// processes as on the local engine: the features value for value, the trained model's
/// back-test, every district's referral list, the decision log and the fairness audit; the
/// cohorts went to the executors as files that are gone afterwards; and the plans really ran on
/// both executors.
#[test]
fn a_night_on_the_ballista_cluster_equals_the_local_night() {
    let tmp = tempfile::tempdir().unwrap();
    // 14 months: enough referral nights for the promotion gate's back-test.
    let base = common::populated_data_dir(tmp.path(), 3_000, 14, 11, NIGHT);
    let local = tmp.path().join("local");
    let remote = tmp.path().join("remote");
    copy_dir(&base, &local);
    copy_dir(&base, &remote);
    let cluster = common::cluster::Cluster::start(&tmp.path().join("cluster"), 2);
    // One command on each copy: the local engine on `local`, the cluster on `remote`. Paths
    // in the arguments name `DATA`, replaced by each copy's folder; each output has it put back.
    let on_both = |args: &[&str]| {
        let run = |data: &Path, extra: &[&str]| {
            let dir = data.to_str().unwrap();
            let mut args: Vec<String> = args.iter().map(|a| a.replace("DATA", dir)).collect();
            args.extend(extra.iter().map(|a| a.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = common::lantern_ok(data, &args);
            String::from_utf8_lossy(&o.stdout).replace(dir, "DATA")
        };
        (
            run(&local, &[]),
            run(&remote, &["--engine", cluster.address.as_str()]),
        )
    };

    // Training: labels, training features and the back-test all run on the engine.
    let (l, r) = on_both(&[
        "train",
        "--as-of",
        "2026-10-01",
        "--kind",
        "rule",
        "--kind",
        "trees",
        "--folds",
        "1",
    ]);
    // The report folder is named by the time of the run.
    let report = |out: &str| {
        out.lines()
            .filter(|l| !l.starts_with("Back-test the gate judged on"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(report(&l).contains("evaluated referrals"), "{l}");
    assert_eq!(
        report(&l),
        report(&r),
        "the promotion gate's figures differ between the engines"
    );

    // The researcher's export.
    on_both(&[
        "features",
        "--as-of",
        NIGHT,
        "--out",
        "DATA/features.parquet",
    ]);
    let features = common::parquet_rows(&local.join("features.parquet"), "household_id, as_of");
    assert!(
        features.lines().count() > 1_000,
        "too few feature rows to prove anything"
    );
    assert_eq!(
        features,
        common::parquet_rows(&remote.join("features.parquet"), "household_id, as_of")
    );

    // The night.
    on_both(&["screen", "--as-of", NIGHT]);
    let night = |data: &Path| data.join(format!("drafts/as_of={NIGHT}"));
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
        common::parquet_rows(&l.join("referrals.parquet"), "referral_id"),
        common::parquet_rows(&r.join("referrals.parquet"), "referral_id")
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

    // On the cluster each slice's cohort went by path (a file under .scratch/), and every file
    // was removed when its slice was done; the local engine wrote none.
    let scratch = |data: &Path| std::fs::read_dir(data.join(".scratch")).map(|d| d.count());
    assert_eq!(scratch(&remote).ok(), Some(0), "cohort files left behind");
    assert!(
        scratch(&local).is_err(),
        "the local engine wrote cohort files"
    );

    let tasks = cluster.tasks_run(2);
    assert!(
        tasks.iter().all(|&n| n > 0),
        "tasks per executor: {tasks:?}"
    );
}

/// Proves: a scheduler that is not there is one clear error before any work, naming the
/// address and what to do, not a query failure blamed on the pipelines.
#[test]
fn an_unreachable_scheduler_is_a_one_line_error_saying_to_start_the_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(["--data-dir", tmp.path().to_str().unwrap()])
        .args(["features", "--as-of", NIGHT, "--out", "x.parquet"])
        .args(["--engine", &format!("ballista://127.0.0.1:{port}")])
        .env("LANTERN_NO_PROGRESS", "1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for needle in [
        "cannot reach the Ballista scheduler at 127.0.0.1:",
        "scripts/ballista.sh start",
        "--engine local",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in: {err}");
    }
}

/// Proves: a cluster that takes the night's query and never answers (here its only executor is
/// frozen with SIGSTOP, so the scheduler waits for a task slot for ever) ends the night with an
/// error naming the cluster and what to do, after `features.cluster_query_timeout_secs`,
/// instead of leaving the night waiting for ever.
#[test]
fn a_stuck_cluster_ends_the_night_with_an_error_after_the_query_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::populated_data_dir(tmp.path(), 500, 4, 5, NIGHT);
    let cluster = common::cluster::Cluster::start(&tmp.path().join("cluster"), 1);
    let executor = cluster.pid("executor-1").to_string();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &executor])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let started = std::time::Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_lantern"))
        .arg("--data-dir")
        .arg(&data)
        .args(["features", "--as-of", NIGHT, "--out", "x.parquet"])
        .args(["--engine", &cluster.address])
        .env("LANTERN__FEATURES__CLUSTER_QUERY_TIMEOUT_SECS", "3")
        .env("LANTERN_NO_PROGRESS", "1")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    signal("-CONT");
    assert!(
        !o.status.success(),
        "the night finished on a frozen cluster"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "did not finish on the cluster at ballista://127.0.0.1:",
        "within 3 s",
        "--engine local",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in: {err}");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "the deadline did not end the wait"
    );
}
