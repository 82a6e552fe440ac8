//! A real Ballista cluster for the tests: a scheduler and executors, separate processes on
//! 127.0.0.1, started by `scripts/ballista.sh` from this build (`lantern cluster …`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A cluster started by the script; stopped when dropped, also when the test fails.
pub struct Cluster {
    dir: PathBuf,
    pub address: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ballista.sh")
}

impl Cluster {
    pub fn start(dir: &Path, executors: u32) -> Cluster {
        Cluster::start_with(dir, executors, &[])
    }

    /// [`Cluster::start`] with extra environment variables for every process of the cluster.
    pub fn start_with(dir: &Path, executors: u32, env: &[(&str, &str)]) -> Cluster {
        let o = Command::new("bash")
            .arg(script())
            .args(["start", dir.to_str().unwrap(), &executors.to_string()])
            .env("LANTERN_BIN", env!("CARGO_BIN_EXE_lantern"))
            .envs(env.iter().copied())
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

    /// The process id of a role (`scheduler`, `executor-1`, …).
    pub fn pid(&self, role: &str) -> u32 {
        std::fs::read_to_string(self.dir.join(format!("{role}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Tasks each executor's log says it ran.
    pub fn tasks_run(&self, executors: u32) -> Vec<usize> {
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
