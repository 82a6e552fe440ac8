//! The command line's shape: the global options and one module per command. Each module holds
//! its arguments and a `run` function, a thin shell over the library stages (all real work is
//! in the library, so tests and benchmarks exercise the same code).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use lantern::config::LogFormat;

pub mod audit;
pub mod backtest;
pub mod check;
pub mod cluster;
pub mod common;
pub mod dead_letters;
pub mod explain;
pub mod features;
pub mod import;
pub mod ingest;
pub mod intake;
pub mod issue;
pub mod lake;
pub mod privacy;
pub mod produce;
pub mod screen;
pub mod simulate;
pub mod train;

/// Lantern finds households in crisis before they fall through the cracks.
///
/// Agencies send crisis signals (unpaid bills, service cut-offs, council reports, lapsed
/// benefits). Every night Lantern ranks households by risk and gives each district (시군구) a
/// short, explained referral list sized to its caseworkers' capacity.
///
/// Start with `lantern demo`, which runs the whole pipeline on a simulated population with no
/// outside services.
#[derive(Debug, Parser)]
#[command(
    name = "lantern",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file, layered over the built-in defaults (config/default.toml). Environment
    /// variables LANTERN__SECTION__KEY override both.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where the lake, models, referral lists and the audit log live [default: data.dir from
    /// the configuration, `lantern-data`].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log format: `plain` for people, `json` for log collectors [default: logging.format].
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline end to end on a simulated population, with an in-process Kafka.
    Demo(crate::demo::DemoArgs),
    /// Write a synthetic population: households, signals, past referrals and their outcomes,
    /// and (separately) the ground truth.
    Simulate(simulate::SimulateArgs),
    /// Check NDJSON files (signals or outcomes) against the contract without loading them, and
    /// report every rejected line with its reason.
    Check(check::CheckArgs),
    /// Validate and load signals and outcomes into the lake, from NDJSON files or Kafka.
    Ingest(ingest::IngestArgs),
    /// Send a simulated population (the folder `lantern simulate` wrote) to the configured
    /// topics, as the sending agencies would: for demos and load tests against a broker.
    Produce(produce::ProduceArgs),
    /// Maintain the Parquet lake.
    #[command(subcommand)]
    Lake(lake::LakeCommand),
    /// Load reference data: the households reference (CSV, SPEC §2) and past referral lists
    /// (NDJSON, SPEC §4), which give training its labels' dates and features their history.
    Import(import::ImportArgs),
    /// Fit the risk models on outcomes decided before a date, save them under models/, and
    /// promote the best only if it beats the rule and the current model on the back-test
    /// without worsening the fairness audit (audited).
    Train(train::TrainArgs),
    /// Make a model current although the promotion gate refused it: an operator's override,
    /// with a required reason, recorded in the audit log.
    Promote(train::PromoteArgs),
    /// Score and rank households as of a date and write each district's referral list
    /// (a draft unless --publish: only issued lists are history).
    Screen(screen::ScreenArgs),
    /// Mark a night's draft list as issued, for a deployment that hands lists over as files
    /// instead of through case-intake (audited).
    Issue(issue::IssueArgs),
    /// Temporal back-test: ranking, calibration and fairness metrics per model and baseline.
    Backtest(backtest::BacktestArgs),
    /// Compute household features as of one or more dates and write them to Parquet (for
    /// researchers, and to measure the feature pipeline).
    Features(features::FeaturesArgs),
    /// Read the case-intake topic as a district's system would (recorded in the audit log).
    Intake(intake::IntakeArgs),
    /// List the audit log: who produced, published or read which list, from what data.
    Audit(audit::AuditArgs),
    /// Show the rejected records (the dead letters), each counted once: a record sent again
    /// after a crash is recognised by its key (its origin).
    DeadLetters(dead_letters::DeadLettersArgs),
    /// Why a household was, or was not, on a night's list (from the night's decision log), in
    /// Korean and English; the read is audited.
    Explain(explain::ExplainArgs),
    /// List what is past its retention period ([retention] in the configuration); with
    /// --apply, delete it (audited).
    Retention(privacy::RetentionArgs),
    /// Remove one household from everything Lantern keeps (lake, dead letters, reference,
    /// lists, pages, decision logs, feature exports), audited under a keyed hash.
    Erase(privacy::EraseArgs),
    /// Run a scheduler or an executor of an Apache DataFusion Ballista cluster, for
    /// `--engine ballista://HOST:PORT` (a build with `--features ballista`; docs/DEPLOY.md).
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}
