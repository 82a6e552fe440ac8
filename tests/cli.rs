//! The `lantern` binary as an operator meets it: help text, one-line errors, exit codes.

use std::process::{Command, Output};

fn lantern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(args)
        .env("LANTERN_NO_PROGRESS", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn lantern_env(args: &[&str], key: &str, value: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(args)
        .env("LANTERN_NO_PROGRESS", "1")
        .env(key, value)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_every_command_of_the_contract() {
    let o = lantern(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for cmd in [
        "demo",
        "simulate",
        "ingest",
        "train",
        "screen",
        "backtest",
        "--config",
        "--data-dir",
    ] {
        assert!(text.contains(cmd), "--help does not mention {cmd}");
    }
}

#[test]
fn every_subcommand_has_help() {
    for (cmd, must) in [
        ("demo", "--households"),
        ("simulate", "--seed"),
        ("ingest", "--kafka"),
        ("lake", "compact"),
        ("lake", "state"),
        ("train", "--as-of"),
        ("screen", "--publish"),
        ("backtest", "Usage"),
        ("check", "--ingest-day"),
        ("retention", "--apply"),
        ("erase", "--household"),
    ] {
        let o = lantern(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd} --help failed");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(must),
            "{cmd} --help lacks {must}"
        );
    }
}

#[test]
fn an_unknown_flag_is_a_one_line_error_with_exit_2() {
    let o = lantern(&["simulate", "--out", "x", "--housholds", "5"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--housholds"), "{err}");
}

#[test]
fn a_bad_date_is_a_one_line_error() {
    let o = lantern(&["train", "--as-of", "2026-13-01"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("YYYY-MM-DD"), "{err}");
}

#[test]
fn a_bad_config_value_is_a_one_line_error_naming_the_key() {
    let o = lantern_env(&["backtest"], "LANTERN__CAPACITY__CITY", "lots");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("capacity.city"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(&path, "[kafka]\nbrokers = 5\ngroup = \"x\"\n").unwrap();
    let o = lantern(&["--config", path.to_str().unwrap(), "backtest"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("site.toml"), "{err}");
}

#[test]
fn train_and_screen_on_an_empty_data_dir_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = lantern(&["--data-dir", d, "train", "--as-of", "2026-10-01"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("not enough labels"), "{}", stderr(&o));
    let o = lantern(&["--data-dir", d, "screen", "--as-of", "2026-10-01"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("lantern train --as-of"),
        "{}",
        stderr(&o)
    );
}

/// The README's main command, small: every stage runs, the lists reach case-intake and come
/// back, and the summary compares the model with the rule on the simulator's ground truth.
#[test]
fn demo_runs_the_whole_pipeline_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let o = lantern(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "demo",
        "--households",
        "3000",
        "--months",
        "14",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    for needle in [
        "[9/9]",
        "Published",
        "Read back from case-intake",
        "Precision against the simulator",
        "rule@1",
        "duplicates 0",
    ] {
        assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    }
    let data = dir.path().join("demo").join("data");
    let nights: Vec<_> = std::fs::read_dir(data.join("referrals"))
        .unwrap()
        .flatten()
        .collect();
    assert!(nights.len() > 1, "past nights and tonight");
    let audit = std::fs::read_to_string(data.join("audit").join("audit.ndjson")).unwrap();
    for action in ["\"screen\"", "\"publish\"", "\"read\""] {
        assert!(audit.contains(action), "audit lacks {action}");
    }
}

#[test]
fn simulate_then_check_reports_the_planted_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let o = lantern(&[
        "simulate",
        "--households",
        "2000",
        "--months",
        "6",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--invalid-rate",
        "0.05",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Simulated 2000 households"));

    let file = out.join("signals/utility-arrears.ndjson");
    let o = lantern(&[
        "check",
        "--ingest-day",
        "2026-11-01",
        file.to_str().unwrap(),
    ]);
    // Planted invalid records make `check` fail, and it lists them by reason.
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("rejected"), "{text}");
    assert!(text.contains("utility-arrears.ndjson:"), "{text}");

    let outcomes = out.join("outcomes/case-outcomes.ndjson");
    let o = lantern(&[
        "check",
        "--ingest-day",
        "2026-11-01",
        outcomes.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn json_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let o = lantern(&[
        "--log-format",
        "json",
        "simulate",
        "--households",
        "200",
        "--months",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("simulation written"))
        .expect("a log line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "INFO");
}

/// Issue 13.4: `lantern audit` filters by action, actor and date, and every record names the OS
/// user with the configured identity.
#[test]
fn audit_filters_by_action_and_actor_and_records_the_configured_identity() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let config = dir.path().join("site.toml");
    std::fs::write(&config, "[audit]\nidentity = \"night-job@ssis\"\n").unwrap();
    for action in ["screen", "read", "read"] {
        lantern::audit::append(dir.path(), lantern::audit::AuditRecord::new(action)).unwrap();
    }
    // A CLI run that audits (a feature export of an empty lake), under the configured identity.
    let out = dir.path().join("f.parquet");
    let o = lantern(&[
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        d,
        "features",
        "--as-of",
        "2026-10-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lantern(&["--data-dir", d, "audit", "--json", "--action", "read"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
    let o = lantern(&[
        "--data-dir",
        d,
        "audit",
        "--json",
        "--actor",
        "night-job@ssis",
    ]);
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"export\"") && lines[0].contains("(night-job@ssis)"));
    let o = lantern(&["--data-dir", d, "audit", "--json", "--until", "2000-01-01"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 0);
}

/// Issue 13.1/13.2/13.4 at the command line: `retention` lists without deleting and `--apply`
/// deletes (a feature export past its period), `erase` removes a household's lines and says
/// what it cannot erase, and `audit --household ID` finds the erasure by its keyed hash while
/// the log never holds the id.
#[test]
fn retention_erase_and_audit_by_household_at_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = dir.path().join("export.parquet");
    let o = lantern(&[
        "--data-dir",
        d,
        "features",
        "--as-of",
        "2026-10-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());
    let o = lantern(&["--data-dir", d, "retention", "--today", "2030-01-01"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("feature_exports") && text.contains("--apply"),
        "{text}"
    );
    assert!(out.exists(), "listing deletes nothing");
    let o = lantern(&[
        "--data-dir",
        d,
        "retention",
        "--today",
        "2030-01-01",
        "--apply",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.exists());

    std::fs::create_dir_all(dir.path().join("dead-letter")).unwrap();
    std::fs::write(
        dir.path().join("dead-letter/dl.ndjson"),
        "{\"payload\":{\"household_id\":\"hh_erase_me\"}}\n{\"payload\":{\"household_id\":\"hh_other\"}}\n",
    )
    .unwrap();
    let o = lantern(&["--data-dir", d, "erase", "--household", "hh_erase_me"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("Erased 1") && text.contains("Kafka"),
        "{text}"
    );
    let left = std::fs::read_to_string(dir.path().join("dead-letter/dl.ndjson")).unwrap();
    assert!(!left.contains("hh_erase_me") && left.contains("hh_other"));
    let o = lantern(&[
        "--data-dir",
        d,
        "audit",
        "--json",
        "--household",
        "hh_erase_me",
    ]);
    let lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"erase\""));
    let log = std::fs::read_to_string(dir.path().join("audit/audit.ndjson")).unwrap();
    assert!(!log.contains("hh_erase_me"));
    let o = lantern(&["--data-dir", d, "audit", "--json", "--action", "retention"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
}

/// `lantern lake state` builds the signal state once and then reads only what is new: a second
/// run with nothing ingested in between reads no lake file.
#[test]
fn lake_state_builds_once_then_reads_only_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let data = dir.path().join("data");
    let (s, d) = (sim.to_str().unwrap(), data.to_str().unwrap());
    let o = lantern(&[
        "simulate",
        "--households",
        "500",
        "--months",
        "3",
        "--out",
        s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = sim.join("signals/utility-arrears.ndjson");
    let o = lantern(&[
        "--data-dir",
        d,
        "ingest",
        "--file",
        file.to_str().unwrap(),
        "--ingest-day",
        "2026-11-01",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lantern(&["--data-dir", d, "lake", "state"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(first.contains("Signal state up to date"), "{first}");
    assert!(!first.contains(" 0 new lake files read"), "{first}");
    assert!(data.join("state/manifest.json").exists());
    let o = lantern(&["--data-dir", d, "lake", "state"]);
    let again = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        again.contains(" 0 new lake files read, 0 events added"),
        "{again}"
    );
}
