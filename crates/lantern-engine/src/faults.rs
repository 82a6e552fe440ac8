//! Crash points: where the crash tests kill the process, deterministically.
//!
//! A test that SIGKILLs a process at a random moment mostly hits the moments that take longest
//! and rarely the few microseconds between two renames, where a torn set of files would appear.
//! So the places that matter call [`crash_point`] with a name; when the environment variable
//! `LANTERN_CRASH_AT` is `NAME` or `NAME#N`, the process sends itself SIGKILL at the first (or
//! N-th) time it passes that point: no destructor runs and no buffer is flushed, exactly as if
//! the machine's operator or the kernel had killed it there. Unset (always, in production), a
//! crash point costs one relaxed atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// `(name, n)` from `LANTERN_CRASH_AT`, read once.
fn target() -> Option<&'static (String, u64)> {
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let v = std::env::var("LANTERN_CRASH_AT").ok()?;
            let (name, n) = match v.split_once('#') {
                Some((name, n)) => (name.to_string(), n.parse().ok()?),
                None => (v, 1),
            };
            Some((name, n))
        })
        .as_ref()
}

static HITS: AtomicU64 = AtomicU64::new(0);

/// Kills this process with SIGKILL if `LANTERN_CRASH_AT` names this point (and this is the N-th
/// time it is reached).
pub fn crash_point(name: &str) {
    let Some((target, n)) = target() else {
        return;
    };
    if target != name {
        return;
    }
    if HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n {
        #[cfg(target_os = "linux")]
        // SAFETY: kill(2) on our own pid; it does not return.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}
