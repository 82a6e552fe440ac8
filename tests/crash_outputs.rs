//! Issue 9.5: what another process or a later night relies on survives a crash. `lantern
//! screen` and `lantern train` are killed with SIGKILL at named points of their writes (the
//! `LANTERN_CRASH_AT` crash points: between files, after staging, between the two steps of the
//! swap), and what is left is always the old complete set of files or the new complete one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NIGHT: &str = "2026-10-31";

fn lantern(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lantern"));
    c.arg("--data-dir")
        .arg(data)
        .args(args)
        .env("LANTERN_NO_PROGRESS", "1")
        .env_remove("RUST_LOG")
        .env_remove("LANTERN_CRASH_AT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn killed(o: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    o.status.signal() == Some(9)
}

/// A small population ingested, imported and trained (the rule baseline: quick to fit).
fn world() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::populated_data_dir(tmp.path(), 3_000, 12, 5, NIGHT);
    common::lantern_ok(&data, &["train", "--as-of", NIGHT, "--kind", "rule"]);
    (tmp, data)
}

/// The manifest of the draft set for the night, after checking the set against it.
fn intact_set(data: &Path) -> Option<String> {
    let dir = lantern::lake::reference::drafts_dir(data, NIGHT.parse().unwrap());
    if !dir.exists() {
        return None;
    }
    lantern::screen::output::verify_set(&dir).unwrap_or_else(|e| panic!("torn set: {e}"));
    Some(std::fs::read_to_string(dir.join("MANIFEST.json")).unwrap())
}

#[test]
fn a_screen_killed_at_any_write_leaves_the_old_or_the_new_complete_set() {
    let (_tmp, data) = world();
    let screen = |scale: &str, crash: Option<&str>| {
        let mut env = vec![("LANTERN__SCREEN__CAPACITY_SCALE", scale)];
        if let Some(c) = crash {
            env.push(("LANTERN_CRASH_AT", c));
        }
        lantern(&data, &["screen", "--as-of", NIGHT], &env)
    };
    // A crash before any set exists leaves none.
    let o = screen("0.05", Some("screen.output.staged"));
    assert!(killed(&o), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(intact_set(&data), None);
    // The old set, and the new one (a different capacity gives a different list).
    ok(&screen("0.05", None));
    let old = intact_set(&data).unwrap();
    ok(&screen("0.1", None));
    let new = intact_set(&data).unwrap();
    assert_ne!(old, new);
    ok(&screen("0.05", None));
    assert_eq!(intact_set(&data).unwrap(), old);
    for point in [
        "screen.output.file#1",
        "screen.output.file#7",
        "screen.output.file#300",
        "screen.output.staged",
        "replace_dir.exchanged",
    ] {
        let o = screen("0.1", Some(point));
        assert!(
            killed(&o),
            "{point}: not killed\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let after = intact_set(&data).unwrap();
        let expect = if point == "replace_dir.exchanged" {
            &new
        } else {
            &old
        };
        assert_eq!(&after, expect, "after a kill at {point}");
        // Back to the old set for the next point.
        ok(&screen("0.05", None));
    }
}

#[test]
fn a_train_killed_at_any_write_leaves_every_model_complete_and_current_loadable() {
    let (_tmp, data) = world();
    let before = lantern::model::artefact::load(&data, "").unwrap().id();
    for point in [
        "train.save.file#1",
        "train.save.file#2",
        "train.save.done",
        "train.current",
    ] {
        let o = lantern(
            &data,
            &["train", "--as-of", NIGHT, "--kind", "rule"],
            &[("LANTERN_CRASH_AT", point)],
        );
        assert!(
            killed(&o),
            "{point}: not killed\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // Every saved version loads; the current one is a complete model.
        let root = lantern::model::artefact::models_dir(&data);
        for e in std::fs::read_dir(&root).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains('@') && !name.starts_with('.') {
                lantern::model::artefact::load(&data, &name)
                    .unwrap_or_else(|err| panic!("after a kill at {point}, {name}: {err}"));
            }
        }
        let current = lantern::model::artefact::load(&data, "")
            .unwrap_or_else(|err| panic!("after a kill at {point}, CURRENT: {err}"));
        assert!(current.id().starts_with("rule@"));
    }
    // A clean run afterwards still works and moves CURRENT on.
    ok(&lantern(
        &data,
        &["train", "--as-of", NIGHT, "--kind", "rule"],
        &[],
    ));
    assert_ne!(
        lantern::model::artefact::load(&data, "").unwrap().id(),
        before
    );
}
