//! Logging through `tracing`: plain text for people at a terminal, JSON lines for collectors.
//!
//! `RUST_LOG` wins over the configured level, so an operator can turn on `debug` for one module
//! without editing files (`RUST_LOG=lantern::ingest=debug`).
//!
//! Lantern's code lives in three crates (`lantern`, `lantern_engine`, `lantern_contract`), so
//! log targets carry those names; an operator writes `lantern` for all of them, and
//! [`crate_directives`] expands it.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Logs go to stderr so that stdout stays clean for data and
/// summaries a script may read. Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat, level: &str) {
    let directives = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => crate_directives(&v),
        _ => crate_directives(&format!("lantern={level},warn")),
    };
    let filter = EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| EnvFilter::new(crate_directives(&format!("lantern={level},warn"))));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Plain => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}

/// Expands each `lantern…` directive to the workspace's crates: `lantern=debug` also sets
/// `lantern_engine=debug` and `lantern_contract=debug`, and `lantern::ingest=debug` also sets
/// `lantern_engine::ingest=debug` (where the ingest stage lives).
pub fn crate_directives(spec: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        out.push(d.to_string());
        if let Some(rest) = d.strip_prefix("lantern=") {
            out.push(format!("lantern_engine={rest}"));
            out.push(format!("lantern_contract={rest}"));
        } else if let Some(rest) = d.strip_prefix("lantern::") {
            out.push(format!("lantern_engine::{rest}"));
            out.push(format!("lantern_contract::{rest}"));
        }
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lantern_directive_covers_every_crate_of_the_workspace() {
        assert_eq!(
            super::crate_directives("lantern=debug,warn"),
            "lantern=debug,lantern_engine=debug,lantern_contract=debug,warn"
        );
        assert_eq!(
            super::crate_directives("lantern::ingest=trace"),
            "lantern::ingest=trace,lantern_engine::ingest=trace,lantern_contract::ingest=trace"
        );
    }
}
