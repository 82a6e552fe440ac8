//! The lake on an S3-compatible object store (issue #12), against a real server process: moto's
//! server mode on 127.0.0.1, one per test, installed by `scripts/moto.sh install` (which
//! `.ci/run` calls, passing the path in `LANTERN_MOTO`). Without it these tests say so and do
//! nothing, except in CI (`CI` set), where a missing server is a failure.
//!
//! Every command runs as an operator runs it (`lantern lake use s3://…`, then the usual
//! commands); the lake's contents are checked through the library's own reader.
#![cfg(feature = "s3")]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use datafusion::arrow::array::AsArray;
use lantern::lake::{Lake, Table};

fn moto() -> Option<PathBuf> {
    match std::env::var_os("LANTERN_MOTO") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "LANTERN_MOTO must be the path of moto_server (from scripts/moto.sh install)"
            );
            Some(p)
        }
        None if std::env::var_os("CI").is_some() => {
            panic!("LANTERN_MOTO is not set: .ci/run must install moto with scripts/moto.sh")
        }
        None => {
            eprintln!(
                "skipped: set LANTERN_MOTO=$(scripts/moto.sh install) to run against an S3 server"
            );
            None
        }
    }
}

/// Credentials for every process of these tests: moto takes any, but signs nothing
/// conditional without them. Set once, the same in every test, before any lake is opened.
fn credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "lantern-test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "lantern-test");
    });
}

/// A moto server process, killed when dropped.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts moto on a free port and returns once it says it is listening (`Running on …` on
    /// its stderr), or fails after a minute with its log. A port taken between choosing it and
    /// moto's bind (another test's server) makes moto exit without saying so: then it is
    /// started again on another.
    fn start(bin: &Path, dir: &Path) -> S3Server {
        use std::io::BufRead;
        credentials();
        std::fs::create_dir_all(dir).unwrap();
        let log_path = dir.join("moto.log");
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::piped())
                .spawn()
                .expect("moto_server starts");
            // Its stderr, line by line, into the log; the first `Running on` (or the end of
            // the stream, when it exits) is sent back. It keeps draining afterwards.
            let (tx, rx) = std::sync::mpsc::channel();
            let stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                let mut told = false;
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    let _ = writeln!(log, "{line}");
                    if !told && line.contains("Running on") {
                        told = true;
                        let _ = tx.send(true);
                    }
                }
                let _ = tx.send(false);
            });
            let server = S3Server { child, port };
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(true) => return server,
                Ok(false) => continue, // exited: most likely the port was taken; try another
                Err(_) => panic!(
                    "moto did not listen within a minute:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                ),
            }
        }
        panic!(
            "moto exited five times before listening:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// Creates a bucket and returns the lake location of `prefix` in it.
    fn bucket(&self, bucket: &str, prefix: &str) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        format!(
            "s3://{bucket}/{prefix}?endpoint=http://127.0.0.1:{}&allow_http=true&region=us-east-1",
            self.port
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs lantern with extra environment variables; the output, whether it succeeded or not.
fn lantern(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lantern"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .envs(env.iter().copied())
        .env("LANTERN_NO_PROGRESS", "1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The key of every row of a table, in the order read.
fn keys(lake: &Lake, table: Table) -> Vec<String> {
    let mut out = Vec::new();
    for f in lake.table_files(table).unwrap() {
        for b in lake.read_file(&f).unwrap() {
            let cols: Vec<_> = table
                .key_columns()
                .iter()
                .map(|c| {
                    datafusion::arrow::compute::cast(
                        b.column_by_name(c).unwrap(),
                        &datafusion::arrow::datatypes::DataType::Utf8,
                    )
                    .unwrap()
                })
                .collect();
            for i in 0..b.num_rows() {
                let key: Vec<&str> = cols.iter().map(|c| c.as_string::<i32>().value(i)).collect();
                out.push(key.join("|"));
            }
        }
    }
    out
}

fn households_in(lake: &Lake, table: Table) -> Vec<String> {
    let mut out = Vec::new();
    for f in lake.table_files(table).unwrap() {
        for b in lake.read_file(&f).unwrap() {
            let col = b.column_by_name("household_id").unwrap().as_string::<i32>();
            out.extend((0..b.num_rows()).map(|i| col.value(i).to_string()));
        }
    }
    out
}

const NIGHT: &str = "2026-10-31";

/// A moto server with `bucket`, and a data directory `root/data` whose lake is in it under
/// `lake/` (returned with its location). Keep the server alive as long as the lake is used.
fn bucket_lake(bin: &Path, root: &Path, bucket: &str) -> (S3Server, PathBuf, String) {
    let s3 = S3Server::start(bin, &root.join("moto"));
    let location = s3.bucket(bucket, "lake");
    let data = root.join("data");
    ok(lantern(&data, &["lake", "use", &location], &[]), "lake use");
    (s3, data, location)
}

/// A moto server with `bucket`, a data directory under `root` whose lake is in it, and a
/// simulated population (6 months to [`NIGHT`]) whose NDJSON files are returned, not yet
/// ingested. Keep the server alive as long as the lake is used.
fn simulated_bucket(
    bin: &Path,
    root: &Path,
    bucket: &str,
    households: u32,
    seed: u64,
) -> (S3Server, PathBuf, Vec<String>) {
    let (s3, data, _) = bucket_lake(bin, root, bucket);
    let sim = root.join("sim");
    let (h, s) = (households.to_string(), seed.to_string());
    let args = [
        "simulate",
        "--households",
        &h,
        "--months",
        "6",
        "--seed",
        &s,
        "--end",
        NIGHT,
        "--out",
        sim.to_str().unwrap(),
    ];
    ok(lantern(&data, &args, &[]), "simulate");
    (s3, data, common::signal_files(&sim))
}

/// Proves: a data directory whose lake is in an object store gives the same night as one whose
/// lake is a folder: the same ingest, the same features (from the signal state and straight
/// from the lake's files in the bucket), the same referral lists and decision log; and nothing
/// of the lake is on the local disk.
#[test]
fn a_night_on_an_object_store_lake_equals_the_night_on_a_folder_lake() {
    let Some(bin) = moto() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&bin, &tmp.path().join("moto"));
    let location = s3.bucket("night-lake", "agency/lake");
    let remote_root = tmp.path().join("remote");
    ok(
        lantern(&remote_root.join("data"), &["lake", "use", &location], &[]),
        "lake use",
    );
    let local = common::populated_data_dir(&tmp.path().join("local"), 2_000, 14, 7, NIGHT);
    let remote = common::populated_data_dir(&remote_root, 2_000, 14, 7, NIGHT);
    assert!(
        !remote.join("lake").exists(),
        "lake files on the local disk"
    );
    let lake = Lake::in_data_dir(&remote);
    assert!(lake.is_object_store());
    for table in Table::ALL {
        let (mut l, mut r) = (keys(&Lake::in_data_dir(&local), table), keys(&lake, table));
        l.sort();
        r.sort();
        assert!(!r.is_empty(), "{} is empty in the bucket", table.name());
        assert_eq!(l, r, "{} differs", table.name());
    }

    let both = |args: &[&str], env: &[(&str, &str)]| {
        for data in [&local, &remote] {
            let dir = data.to_str().unwrap();
            let args: Vec<String> = args.iter().map(|a| a.replace("DATA", dir)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(lantern(data, &args, env), &format!("{args:?}"));
        }
    };
    both(
        &[
            "train",
            "--as-of",
            "2026-10-01",
            "--kind",
            "rule",
            "--folds",
            "1",
        ],
        &[],
    );
    both(
        &[
            "features",
            "--as-of",
            NIGHT,
            "--out",
            "DATA/features.parquet",
        ],
        &[],
    );
    let features = common::parquet_rows(&local.join("features.parquet"), "household_id, as_of");
    assert!(features.lines().count() > 500, "too few feature rows");
    assert_eq!(
        features,
        common::parquet_rows(&remote.join("features.parquet"), "household_id, as_of")
    );
    // DataFusion reading the bucket's files itself (the full recomputation from the lake).
    ok(
        lantern(
            &remote,
            &[
                "features",
                "--as-of",
                NIGHT,
                "--out",
                remote.join("raw.parquet").to_str().unwrap(),
            ],
            &[("LANTERN__FEATURES__SOURCE", "lake")],
        ),
        "features from the raw lake",
    );
    assert_eq!(
        features,
        common::parquet_rows(&remote.join("raw.parquet"), "household_id, as_of")
    );

    both(&["screen", "--as-of", NIGHT], &[]);
    let night = |data: &Path| data.join(format!("drafts/as_of={NIGHT}"));
    assert_eq!(
        common::parquet_rows(&night(&local).join("referrals.parquet"), "referral_id"),
        common::parquet_rows(&night(&remote).join("referrals.parquet"), "referral_id")
    );
    assert_eq!(
        std::fs::read(night(&local).join("decisions.parquet")).unwrap(),
        std::fs::read(night(&remote).join("decisions.parquet")).unwrap(),
        "the decision logs differ"
    );
}

/// Proves the local lake's rules hold in the bucket: two ingest processes writing the same
/// events at once (many small flushes each) store every event once; every object is a whole
/// Parquet file; a written file is never replaced; the write lock is free afterwards.
#[test]
fn two_ingest_processes_store_each_event_once_in_an_object_store_lake() {
    let Some(bin) = moto() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (_s3, data, files) = simulated_bucket(&bin, tmp.path(), "shared-lake", 1500, 5);
    let spawn = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lantern"));
        c.arg("--data-dir")
            .arg(&data)
            .args(["ingest", "--ingest-day", NIGHT, "--file"])
            .args(&files)
            .env("LANTERN__INGEST__BATCH_RECORDS", "150")
            .env("LANTERN_NO_PROGRESS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let accepted = |o: Output| -> u64 {
        let out = ok(o, "ingest");
        let line = out
            .lines()
            .find(|l| l.starts_with("Ingested "))
            .unwrap()
            .to_string();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let written = accepted(a) + accepted(b);

    let lake = Lake::in_data_dir(&data);
    let mut stored = 0u64;
    let mut valid = 0u64;
    for table in Table::ALL {
        let k = keys(&lake, table);
        let distinct: HashSet<&String> = k.iter().collect();
        assert_eq!(
            distinct.len(),
            k.len(),
            "{} holds repeated keys",
            table.name()
        );
        stored += k.len() as u64;
        valid += distinct.len() as u64;
    }
    assert!(valid > 1_000, "too few events to prove anything: {valid}");
    assert_eq!(
        written, stored,
        "the processes' counts disagree with the bucket"
    );

    // A third run adds nothing: every event is recognised by its key in the bucket.
    let again = ok(
        lantern(
            &data,
            &["ingest", "--ingest-day", NIGHT, "--file", &files[0]],
            &[],
        ),
        "ingest again",
    );
    assert!(again.starts_with("Ingested 0 new records"), "{again}");

    // Whole files only, and a written file is never replaced.
    let some = lake.table_files(Table::UtilityArrears).unwrap();
    assert!(
        some.len() > 2,
        "expected many small files, got {}",
        some.len()
    );
    for f in &some {
        assert!(
            lake.read_file(f).is_ok(),
            "{} is not a whole Parquet file",
            f.display()
        );
    }
    let batch = lake.read_file(&some[0]).unwrap().remove(0);
    let err = lake
        .write_files(&[(some[0].clone(), batch)])
        .expect_err("an existing file was replaced");
    assert!(err.to_string().contains("exist"), "{err}");

    // The lock is free: another writer takes it at once.
    let started = Instant::now();
    drop(lake.write_lock().unwrap());
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Proves: compaction, erasure and retention reach a lake in a bucket: compaction leaves one
/// file per month with the same rows; erasure removes every row of the household from the
/// bucket (and says which objects it rewrote); retention deletes the months past their period
/// there, and the audit log records each.
#[test]
fn compaction_erasure_and_retention_work_on_an_object_store_lake() {
    let Some(bin) = moto() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (_s3, data, files) = simulated_bucket(&bin, tmp.path(), "kept-lake", 500, 9);
    let mut args = vec!["ingest", "--ingest-day", NIGHT, "--file"];
    args.extend(files.iter().map(String::as_str));
    ok(
        lantern(&data, &args, &[("LANTERN__INGEST__BATCH_RECORDS", "200")]),
        "ingest",
    );
    let lake = Lake::in_data_dir(&data);
    let table = Table::UtilityArrears;
    let mut before = keys(&lake, table);
    before.sort();

    ok(lantern(&data, &["lake", "compact"], &[]), "compact");
    let partitions = lake.partitions(table).unwrap();
    for p in &partitions {
        assert_eq!(lake.files(p).unwrap().len(), 1, "{p:?} not compacted");
    }
    let mut after = keys(&lake, table);
    after.sort();
    assert_eq!(before, after, "compaction changed the rows");

    let household = households_in(&lake, table)[0].clone();
    let out = ok(
        lantern(&data, &["erase", "--household", &household], &[]),
        "erase",
    );
    assert!(
        out.contains("s3://kept-lake/lake/"),
        "erasure did not name the objects: {out}"
    );
    for t in Table::ALL.into_iter().filter(|t| *t != Table::Outcomes) {
        assert!(
            !households_in(&lake, t).contains(&household),
            "{} still holds the household",
            t.name()
        );
    }

    // Signals kept 60 days, counted from the night: the older months go.
    let expired_before = partitions.len();
    ok(
        lantern(
            &data,
            &["retention", "--apply", "--today", NIGHT],
            &[("LANTERN__RETENTION__SIGNALS_DAYS", "60")],
        ),
        "retention",
    );
    let kept = lake.partitions(table).unwrap();
    assert!(!kept.is_empty() && kept.len() < expired_before, "{kept:?}");
    assert!(
        kept.iter().all(|p| (p.year, p.month) >= (2026, 9)),
        "{kept:?}"
    );

    let audit = ok(lantern(&data, &["audit"], &[]), "audit");
    for action in ["lake_location", "erase", "retention"] {
        assert!(audit.contains(action), "no `{action}` record in:\n{audit}");
    }
}

/// Proves: a cluster's cohort file a killed process left in the bucket is swept once it is
/// old (a day, at the next cluster night), and a fresh one, a running night's, is kept.
#[test]
fn old_scratch_files_are_swept_from_the_bucket_and_fresh_ones_kept() {
    let Some(bin) = moto() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (_s3, data, _) = bucket_lake(&bin, tmp.path(), "scratch-lake");
    let lake = Lake::in_data_dir(&data);
    let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new(
            "household_id",
            datafusion::arrow::datatypes::DataType::Utf8,
            false,
        ),
    ]));
    let batch = datafusion::arrow::array::RecordBatch::try_new(
        schema,
        vec![std::sync::Arc::new(
            datafusion::arrow::array::StringArray::from(vec!["H-1"]),
        )],
    )
    .unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    let (url, _) = lake
        .write_scratch(&ctx, "cohort-left-behind.parquet", &batch)
        .unwrap()
        .expect("an object-store lake keeps scratch files in its bucket");
    assert!(url.starts_with("s3://scratch-lake/lake/_scratch/"), "{url}");
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(
        lake.sweep_scratch(day).unwrap(),
        0,
        "a fresh file was swept"
    );
    assert_eq!(lake.scratch_files().unwrap().len(), 1);
    assert_eq!(lake.sweep_scratch(Duration::ZERO).unwrap(), 1);
    assert!(lake.scratch_files().unwrap().is_empty());
}

/// Proves: a writer whose lease another writer took over (as after a stall past the lease)
/// finds out at its next change to the lease, before writing any file, with an error saying
/// so; the other writer's lease stands.
#[test]
fn a_writer_whose_lease_was_taken_over_stops_before_writing() {
    use object_store::ObjectStoreExt;
    let Some(bin) = moto() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (_s3, data, location) = bucket_lake(&bin, tmp.path(), "fenced-lake");
    let lake = Lake::in_data_dir(&data);
    let mut lock = lake.write_lock().unwrap();
    lock.advance().unwrap();

    // Another writer takes the lease over: the lease object replaced, unconditionally here.
    let lantern::lake::store::Location::S3 {
        bucket, options, ..
    } = lantern::lake::store::Location::parse(&location).unwrap()
    else {
        unreachable!()
    };
    let store = lantern::lake::store::s3_store(&bucket, &options).unwrap();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 600_000;
    let theirs = format!(r#"{{"generation":7,"holder":"another-writer","until_ms":{until}}}"#);
    let key = object_store::path::Path::from("lake/_write_lock.json");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(store.put(
            &key,
            object_store::PutPayload::from(theirs.clone().into_bytes()),
        ))
        .unwrap();

    let err = lock.advance().expect_err("a lease taken over was used");
    assert!(
        err.to_string().contains("lease on the lake ran out"),
        "{err}"
    );
    drop(lock);
    let now = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { store.get(&key).await.unwrap().bytes().await.unwrap() });
    assert_eq!(
        String::from_utf8(now.to_vec()).unwrap(),
        theirs,
        "the lease taken over was released or changed by its old holder"
    );
    assert!(lake.table_files(Table::UtilityArrears).unwrap().is_empty());
}

/// Proves: pointing a data directory at a bucket that does not exist is refused at once, with
/// the reason, and the lake stays where it was.
#[test]
fn a_lake_location_that_cannot_be_reached_is_refused_and_nothing_changes() {
    let Some(bin) = moto() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&bin, &tmp.path().join("moto"));
    let good = s3.bucket("real-bucket", "lake");
    let data = tmp.path().join("data");
    ok(lantern(&data, &["lake", "use", &good], &[]), "lake use");
    let missing = good.replace("real-bucket", "no-such-bucket");
    let o = lantern(&data, &["lake", "use", &missing], &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot reach s3://no-such-bucket"), "{err}");
    assert!(err.contains("unchanged"), "{err}");
    let now = ok(lantern(&data, &["lake", "use"], &[]), "lake use");
    assert_eq!(now.trim(), "s3://real-bucket/lake");
    // A credential in the location is refused: it would sit in a plain file.
    let o = lantern(
        &data,
        &["lake", "use", "s3://real-bucket/lake?secret_access_key=x"],
        &[],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("credential"));
}

/// Proves: a Ballista cluster reads a lake in a bucket: its executors, told the lake's
/// location (`LANTERN_LAKE`), resolve the plans' `s3://` tables themselves, and the features
/// they compute, from the signal state and straight from the bucket's files, equal the local
/// engine's value for value.
#[cfg(feature = "ballista")]
#[test]
fn the_ballista_cluster_reads_an_object_store_lake_and_equals_the_local_engine() {
    let Some(bin) = moto() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&bin, &tmp.path().join("moto"));
    let location = s3.bucket("cluster-lake", "lake");
    let root = tmp.path().join("agency");
    ok(
        lantern(&root.join("data"), &["lake", "use", &location], &[]),
        "lake use",
    );
    let data = common::populated_data_dir(&root, 2_000, 8, 3, NIGHT);
    let cluster = common::cluster::Cluster::start_with(
        &tmp.path().join("cluster"),
        2,
        &[("LANTERN_LAKE", location.as_str())],
    );
    let out = |name: &str| data.join(name).to_str().unwrap().to_string();
    let features = |file: &str, engine: &str, source: &str| {
        ok(
            lantern(
                &data,
                &[
                    "features",
                    "--as-of",
                    NIGHT,
                    "--out",
                    &out(file),
                    "--engine",
                    engine,
                ],
                &[("LANTERN__FEATURES__SOURCE", source)],
            ),
            &format!("features on {engine} from the {source}"),
        );
        common::parquet_rows(&data.join(file), "household_id, as_of")
    };
    let local = features("local.parquet", "local", "state");
    assert!(local.lines().count() > 500, "too few feature rows");
    assert_eq!(
        local,
        features("cluster.parquet", &cluster.address, "state")
    );
    assert_eq!(
        local,
        features("cluster-raw.parquet", &cluster.address, "lake")
    );
    let tasks = cluster.tasks_run(2);
    assert!(
        tasks.iter().all(|&n| n > 0),
        "tasks per executor: {tasks:?}"
    );
    // The slices' cohorts went to the executors through the bucket, not the data directory,
    // and each was removed when its slice was done.
    assert!(
        !data.join(".scratch").exists(),
        "cohort files in the data directory"
    );
    let left = Lake::in_data_dir(&data).scratch_files().unwrap();
    assert!(left.is_empty(), "cohort files left in the bucket: {left:?}");
}
