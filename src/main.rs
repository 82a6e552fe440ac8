//! The `lantern` command line.
//!
//! Each subcommand is a thin shell over a library stage; all real work lives in the library so
//! that tests and benchmarks exercise the same code. Errors end here: printed as one line on
//! stderr (`lantern: error: ...`) with a non-zero exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use lantern::config::{LogFormat, Settings, Sources};
use lantern::contract::{Record, RejectReason, Validator};
use lantern::features::{FeatureEngine, FeatureSpec};
use lantern::ingest::{self, DeadLetterSink, FileDeadLetters, Ingestor};
use lantern::lake::{Lake, LakeWriter};
use lantern::model::Kind;
use lantern::pseudonym::Pseudonymizer;
use lantern::sim::{self, SimParams};

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
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Configuration file, layered over the built-in defaults (config/default.toml). Environment
    /// variables LANTERN__SECTION__KEY override both.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Where the lake, models, referral lists and the audit log live [default: data.dir from
    /// the configuration, `lantern-data`].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Log format: `plain` for people, `json` for log collectors [default: logging.format].
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole pipeline end to end on a simulated population, with an in-process Kafka.
    Demo(DemoArgs),
    /// Write a synthetic population: households, signals, past referrals and their outcomes,
    /// and (separately) the ground truth.
    Simulate(SimulateArgs),
    /// Check NDJSON files (signals or outcomes) against the contract without loading them, and
    /// report every rejected line with its reason.
    Check(CheckArgs),
    /// Validate and load signals and outcomes into the lake, from NDJSON files or Kafka.
    Ingest(IngestArgs),
    /// Send a simulated population (the folder `lantern simulate` wrote) to the configured
    /// topics, as the sending agencies would: for demos and load tests against a broker.
    Produce(ProduceArgs),
    /// Maintain the Parquet lake.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Load reference data: the households reference (CSV, SPEC §2) and past referral lists
    /// (NDJSON, SPEC §4), which give training its labels' dates and features their history.
    Import(ImportArgs),
    /// Fit the risk models on outcomes decided before a date, and save them under models/.
    Train(TrainArgs),
    /// Score and rank households as of a date and write each district's referral list
    /// (a draft unless --publish: only issued lists are history).
    Screen(ScreenArgs),
    /// Mark a night's draft list as issued, for a deployment that hands lists over as files
    /// instead of through case-intake (audited).
    Issue(IssueArgs),
    /// Temporal back-test: ranking, calibration and fairness metrics per model and baseline.
    Backtest(BacktestArgs),
    /// Compute household features as of one or more dates and write them to Parquet (for
    /// researchers, and to measure the feature pipeline).
    Features(FeaturesArgs),
    /// Read the case-intake topic as a district's system would (recorded in the audit log).
    Intake(IntakeArgs),
    /// List the audit log: who produced, published or read which list, from what data.
    Audit(AuditArgs),
    /// Show the rejected records (the dead letters), each counted once: a record sent again
    /// after a crash is recognised by its key (its origin).
    DeadLetters(DeadLettersArgs),
}

#[derive(Debug, Args)]
struct DeadLettersArgs {
    /// Read the dead-letter topic (`topics.dead_letter`) instead of <data-dir>/dead-letter/.
    #[arg(long)]
    kafka: bool,
    /// Print at most this many letters (0: counts only).
    #[arg(long, default_value_t = 20)]
    show: usize,
}

#[derive(Debug, Args)]
struct FeaturesArgs {
    /// A date to compute features as of (YYYY-MM-DD); repeat for several.
    #[arg(long = "as-of", required = true, value_parser = parse_date)]
    dates: Vec<NaiveDate>,
    /// Output Parquet file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Run one query per date instead of one for all (to compare; the values are the same).
    #[arg(long)]
    separate: bool,
}

#[derive(Debug, Args)]
struct IntakeArgs {
    /// Only this district's referrals (5-digit code).
    #[arg(long, value_name = "CODE")]
    district: Option<String>,
}

#[derive(Debug, Args)]
struct AuditArgs {
    /// Also check that no record was removed or changed (the hash chain).
    #[arg(long)]
    verify: bool,
    /// Print the records as JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// With --verify: also check against an anchor kept elsewhere (RECORDS:SHA256, as a
    /// night's summary prints it); repeatable.
    #[arg(long = "anchor", value_name = "ANCHOR", requires = "verify")]
    anchors: Vec<lantern::audit::Anchor>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Households to simulate; fewer runs faster.
    #[arg(long, default_value_t = 50_000)]
    households: u64,
    /// Months of simulated history.
    #[arg(long, default_value_t = 18)]
    months: u32,
    /// Random seed of the simulation.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Number of households.
    #[arg(long, default_value_t = 20_000)]
    households: u64,
    /// Months of history, ending with the month of --end.
    #[arg(long, default_value_t = 18)]
    months: u32,
    /// Random seed; the same seed gives byte-identical output.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The simulation's last day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-10-31", value_parser = parse_date)]
    end: NaiveDate,
    /// Share of signal records replaced by one that breaks a contract rule, to exercise the
    /// dead-letter path.
    #[arg(long, default_value_t = 0.002)]
    invalid_rate: f64,
    /// Share of valid signal records sent twice, to exercise deduplication.
    #[arg(long, default_value_t = 0.01)]
    duplicate_rate: f64,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// NDJSON files, plain or .ndjson.gz.
    #[arg(required = true, value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Treat dates as if ingested on this day (YYYY-MM-DD) [default: today].
    #[arg(long, value_parser = parse_date)]
    ingest_day: Option<NaiveDate>,
    /// Print at most this many rejected lines.
    #[arg(long, default_value_t = 20)]
    show: usize,
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// NDJSON files (signals or outcomes), plain or .ndjson.gz.
    #[arg(long = "file", value_name = "PATH", num_args = 1.., conflicts_with = "kafka")]
    files: Vec<PathBuf>,
    /// Consume the signal and outcome topics from the configured brokers.
    #[arg(long, required_unless_present = "files")]
    kafka: bool,
    /// With --kafka: stop once the topics are drained.
    #[arg(long, requires = "kafka")]
    until_idle: bool,
    /// With --kafka: serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR", requires = "kafka")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// With --kafka: this process's static group membership id (kafka.group_instance_id),
    /// unique in the group; a restart with the same id reclaims its partitions at once.
    #[arg(long, value_name = "ID", requires = "kafka")]
    instance_id: Option<String>,
    /// Treat dates as if ingested on this day (YYYY-MM-DD) [default: today]. For replaying
    /// history in tests and back-fills.
    #[arg(long, value_parser = parse_date, hide = true)]
    ingest_day: Option<NaiveDate>,
}

#[derive(Debug, Args)]
struct ProduceArgs {
    /// The simulation's output folder.
    #[arg(long, value_name = "DIR")]
    sim: PathBuf,
}

#[derive(Debug, Subcommand)]
enum LakeCommand {
    /// Merge each month's small files into one, dropping repeated keys and leftovers of
    /// interrupted writes.
    Compact {
        /// Compact partitions holding more files than this.
        #[arg(long, default_value_t = 1)]
        max_files: usize,
    },
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Households reference CSV (household_id, district_code, dong_code, members,
    /// head_age_band, household_type, disability). Replaces the previous reference.
    #[arg(long, value_name = "CSV", required_unless_present = "referrals")]
    households: Option<PathBuf>,
    /// Past referrals, one SPEC §4 JSON record per line (e.g. the lists of the system Lantern
    /// replaces). Merged into <data-dir>/referrals/ by night.
    #[arg(long, value_name = "NDJSON")]
    referrals: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// Use outcomes decided before this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    as_of: NaiveDate,
    /// Which models to fit: trees, logistic, rule (repeatable) [default: all three].
    #[arg(long = "kind", value_name = "KIND", value_parser = parse_kind)]
    kinds: Vec<Kind>,
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| format!("`{s}` is not a model kind; use trees, logistic or rule"))
}

#[derive(Debug, Args)]
struct ScreenArgs {
    /// The screening date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    as_of: NaiveDate,
    /// Issue the night: the lists become history and go to the case-intake topic. Without it
    /// the run is a dry run: drafts under drafts/, which no later night reads.
    #[arg(long)]
    publish: bool,
    /// With --publish, for a night already issued: replace its list with this run's, and
    /// withdraw every replaced referral on case-intake (audited). Without it a re-run
    /// republishes the issued list unchanged.
    #[arg(long, requires = "publish")]
    supersede: bool,
    /// The model to use: `name` (its newest version) or `name@version` [default: the model
    /// `lantern train` marked current].
    #[arg(long, value_name = "MODEL", default_value = "")]
    model: String,
}

#[derive(Debug, Args)]
struct IssueArgs {
    /// The night whose draft is issued (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    as_of: NaiveDate,
    /// Replace a list already issued for that night; its replaced referrals are withdrawn.
    #[arg(long)]
    supersede: bool,
}

#[derive(Debug, Args)]
struct BacktestArgs {
    /// Use outcomes decided up to this date (YYYY-MM-DD) [default: today].
    #[arg(long, value_parser = parse_date)]
    until: Option<NaiveDate>,
    /// Evaluation nights: the most recent referral nights with outcomes.
    #[arg(long, default_value_t = 3)]
    folds: usize,
    /// Days after each evaluation night whose referrals are evaluated.
    #[arg(long, default_value_t = 60)]
    horizon_days: u32,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; write it as YYYY-MM-DD"))
}

/// Fixes glibc's mmap threshold at 256 KiB. By default it rises each time a large block is
/// freed, after which the multi-megabyte key arrays and record batches of ingest come from the
/// heap and fragment it: measured on 10 million signals, 320 MB peak memory instead of 265 MB.
/// Only `lantern ingest` sets it, the long-running process whose memory must stay flat; query
/// commands keep glibc's default.
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter (glibc takes its own lock).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help and --version
        Err(e) => {
            // clap's own message spans several lines; operators' scripts want one. Its first
            // paragraph is the message (a missing argument is named on the line after).
            let rendered = e.render().to_string();
            let first: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            let first = first.trim_start_matches("error: ");
            eprintln!("lantern: error: {first}; run `lantern --help` for usage");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lantern: error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the message already
/// carries (our error types print their cause themselves).
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg.replace('\n', " ")
}

fn run(cli: Cli) -> Result<()> {
    let mut settings = Settings::load(&Sources {
        file: cli.global.config.clone(),
        env: None,
    })?;
    if let Some(dir) = &cli.global.data_dir {
        settings.data.dir = dir.clone();
    }
    let format = cli.global.log_format.unwrap_or(settings.logging.format);
    // The demo talks to people through its own summary; stage logs would drown it. RUST_LOG
    // still brings them back.
    let level = if matches!(cli.command, Command::Demo(_)) && settings.logging.level == "info" {
        "warn".to_string()
    } else {
        settings.logging.level.clone()
    };
    lantern::logging::init(format, &level);

    match cli.command {
        Command::Simulate(args) => simulate(&settings, args),
        Command::Check(args) => check(&settings, args),
        Command::Demo(args) => demo(&settings, args),
        Command::Ingest(args) => ingest(&settings, args),
        Command::Produce(args) => {
            let producer: rdkafka::producer::BaseProducer =
                lantern::kafka::producer_config(&settings.kafka).create()?;
            let started = std::time::Instant::now();
            let n = lantern::sim::produce_simulation(&producer, &settings.topics, &args.sim)?;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            println!(
                "Produced {n} messages to {} in {secs:.1}s ({:.0} messages/s)",
                settings.kafka.brokers,
                n as f64 / secs
            );
            Ok(())
        }
        Command::Lake(LakeCommand::Compact { max_files }) => {
            let lake = Lake::in_data_dir(&settings.data.dir);
            let r = lake.compact(max_files)?;
            println!(
                "Compacted {} partitions: {} files into {}, {} rows kept, {} repeated keys dropped, {} interrupted writes removed",
                r.partitions, r.files_before, r.files_after, r.rows, r.duplicates_removed, r.partials_removed
            );
            Ok(())
        }
        Command::Import(args) => import(&settings, args),
        Command::Train(args) => train(&settings, args),
        Command::Screen(args) => screen(&settings, args),
        Command::Issue(args) => {
            let r = lantern::night::issue(&settings.data.dir, args.as_of, args.supersede)?;
            println!(
                "Issued the list of {}: {} referrals{}; audit run id {}",
                args.as_of,
                r.referrals,
                if r.withdrawn > 0 {
                    format!(", {} earlier referrals withdrawn", r.withdrawn)
                } else {
                    String::new()
                },
                r.run_id
            );
            Ok(())
        }
        Command::Intake(args) => intake(&settings, args),
        Command::Features(args) => features(&settings, args),
        Command::Audit(args) => audit(&settings, args),
        Command::DeadLetters(args) => dead_letters(&settings, args),
        Command::Backtest(args) => backtest(&settings, args),
    }
}

fn simulate(settings: &Settings, args: SimulateArgs) -> Result<()> {
    let registry = settings.registry()?;
    let mut params = SimParams::new(args.households, args.months, args.seed);
    params.end = args.end;
    params.invalid_rate = args.invalid_rate;
    params.duplicate_rate = args.duplicate_rate;
    let bar = lantern::progress::bar(args.households, "households");
    let started = std::time::Instant::now();
    let manifest = sim::simulate(&params, &registry, &args.out, &bar)?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let signals =
        manifest.total_valid_signals() + manifest.total_invalid() + manifest.duplicate_lines;
    tracing::info!(
        households = manifest.households,
        signals,
        seconds = format!("{secs:.2}"),
        "simulation written"
    );
    println!(
        "Simulated {} households over {} months ({} to {}) into {}",
        manifest.households,
        args.months,
        manifest.params.start,
        manifest.params.end,
        args.out.display()
    );
    println!(
        "  signals: {} valid, {} planted invalid, {} planted duplicates",
        manifest.total_valid_signals(),
        manifest.total_invalid(),
        manifest.duplicate_lines
    );
    println!(
        "  past rounds: {}, referrals: {}, open: {}, rule precision {:.1}%, crisis prevalence {:.2}%",
        manifest.referral_rounds.len(),
        manifest.referrals,
        manifest.open_referrals,
        manifest.rule_precision * 100.0,
        manifest.crisis_prevalence * 100.0
    );
    println!(
        "  {:.0} households/s, {:.0} signals/s; ground truth in {}",
        manifest.households as f64 / secs.max(1e-9),
        signals as f64 / secs.max(1e-9),
        args.out.join("truth").display()
    );
    Ok(())
}

fn check(settings: &Settings, args: CheckArgs) -> Result<()> {
    let registry = settings.registry()?;
    let day = match args.ingest_day {
        Some(d) => d,
        None => settings.ingest.ingest_day()?.today(),
    };
    let validator = Validator::new(&registry, day);
    let mut accepted = 0u64;
    let mut rejected: std::collections::BTreeMap<RejectReason, u64> = Default::default();
    let mut shown = 0usize;
    let bar = indicatif::ProgressBar::hidden();
    for path in &args.files {
        let mut reader = ingest::file::open(path, &bar)?;
        ingest::file::for_each_line(path, reader.as_mut(), |bytes, number| {
            match validator.record(bytes) {
                Ok(Record::Signal(_) | Record::Outcome(_)) => accepted += 1,
                Err(r) => {
                    *rejected.entry(r.reason).or_default() += 1;
                    if shown < args.show {
                        shown += 1;
                        println!("{}:{number}: {r}", path.display());
                    }
                }
            }
            Ok(())
        })?;
    }
    let total_rejected: u64 = rejected.values().sum();
    println!("{accepted} accepted, {total_rejected} rejected");
    for (reason, n) in &rejected {
        println!("  {n:>8}  {reason}");
    }
    if total_rejected > 0 {
        bail!("{total_rejected} lines break the contract (reasons above); fix them at the sender or let `lantern ingest` route them to the dead-letter sink")
    }
    Ok(())
}

/// The pseudonymizer the settings ask for, if any fields are configured.
fn pseudonymizer(settings: &Settings) -> Result<Option<Pseudonymizer>> {
    let p = &settings.pseudonymization;
    if p.fields.is_empty() {
        return Ok(None);
    }
    Ok(Some(Pseudonymizer::new(p.load_key()?, p.fields.clone())))
}

fn ingest(settings: &Settings, args: IngestArgs) -> Result<()> {
    fixed_mmap_threshold();
    let registry = settings.registry()?;
    // The ingest day is the day each record arrives, in the agencies' time zone, unless a
    // replay fixes it.
    let day = match args.ingest_day {
        Some(d) => lantern::clock::IngestDay::Fixed(d),
        None => settings.ingest.ingest_day()?,
    };
    let validator = Validator::new(&registry, day.today());
    let lake = Lake::in_data_dir(&settings.data.dir);
    let writer = LakeWriter::new(lake.clone()).with_cache_budget(settings.ingest.dedup_cache_keys);
    let pseudo = pseudonymizer(settings)?;
    let started = std::time::Instant::now();
    if args.kafka {
        let mut settings = settings.clone();
        if let Some(id) = &args.instance_id {
            settings.kafka.group_instance_id = id.clone();
        }
        let settings = &settings;
        let dead = ingest::kafka::KafkaDeadLetters::new(settings)?;
        let mut ingestor =
            Ingestor::new(validator, pseudo, writer, Box::new(dead)).with_ingest_day(day);
        let mut opts = ingest::kafka::KafkaIngestOptions::new(settings.ingest.batch_records);
        opts.until_idle = args.until_idle;
        opts.stop = ingest::kafka::stop_on_signals();
        if let Some(secs) = settings.ingest.assignment_deadline_secs.filter(|&s| s > 0) {
            opts.assignment_timeout = Some(std::time::Duration::from_secs(secs));
        }
        opts.data_dir = Some(settings.data.dir.clone());
        if let Some(addr) = args.metrics_addr {
            lantern::metrics::serve(addr)?;
            lantern::metrics::record_last_night(&settings.data.dir);
            tracing::info!(%addr, "serving metrics at /metrics");
        }
        let report = ingest::kafka::consume(settings, &mut ingestor, &opts)?;
        ingestor.log_summary("kafka");
        print_summary(ingestor.stats(), started, &lake);
        println!(
            "  {} messages, {} offset commits; {:.1}s from the first message, {:.0} messages/s",
            report.messages,
            report.commits,
            report.consuming.as_secs_f64(),
            report.rate()
        );
        return Ok(());
    }
    let mut dead = FileDeadLetters::for_run(&settings.data.dir);
    let mut ingestor =
        Ingestor::new(validator, pseudo, writer, Box::new(&mut dead)).with_ingest_day(day);
    let bar = lantern::progress::bytes_bar(0, "ingesting");
    ingest::file::ingest_files(
        &mut ingestor,
        &args.files,
        settings.ingest.batch_records,
        &bar,
    )?;
    bar.finish_and_clear();
    ingestor.log_summary("files");
    let stats = ingestor.stats().clone();
    drop(ingestor);
    print_summary(&stats, started, &lake);
    if stats.total_rejected() > 0 {
        println!("  dead letters: {}", dead.path().display());
    }
    Ok(())
}

fn print_summary(s: &ingest::IngestStats, started: std::time::Instant, lake: &Lake) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "Ingested {} new records into {} ({} duplicates skipped, {} rejected) in {secs:.1}s, {:.0} records/s",
        s.accepted,
        lake.root().display(),
        s.duplicates,
        s.total_rejected(),
        s.seen() as f64 / secs
    );
    for (reason, n) in &s.rejected {
        println!("  {n:>8}  {reason}");
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn import(settings: &Settings, args: ImportArgs) -> Result<()> {
    let registry = settings.registry()?;
    let validator = Validator::new(&registry, settings.ingest.ingest_day()?.today());
    let mut dead = FileDeadLetters::for_run(&settings.data.dir);
    if let Some(path) = &args.households {
        let r =
            ingest::reference::import_households(path, &validator, &settings.data.dir, &mut dead)?;
        println!("Households: {} loaded, {} rejected", r.accepted, r.rejected);
    }
    if let Some(path) = &args.referrals {
        let r = ingest::reference::import_referral_history(
            path,
            &validator,
            &settings.data.dir,
            &mut dead,
        )?;
        println!(
            "Referrals: {} loaded into {} nights, {} rejected",
            r.accepted, r.nights, r.rejected
        );
    }
    if dead.count() > 0 {
        println!(
            "Rejected rows, with line and reason: {}",
            dead.path().display()
        );
    }
    Ok(())
}

fn train(settings: &Settings, args: TrainArgs) -> Result<()> {
    let spec = FeatureSpec::load(&settings.features.dir)?;
    let kinds = if args.kinds.is_empty() {
        Kind::ALL.to_vec()
    } else {
        args.kinds.clone()
    };
    let rt = runtime()?;
    let trained = rt.block_on(async {
        let engine = FeatureEngine::open_with_limit(
            &settings.data.dir,
            spec,
            settings.features.memory_limit_mb,
        )
        .await?;
        lantern::model::train::train_all(&engine, &settings.model, args.as_of, &kinds).await
    })?;
    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>8}  {}",
        "model", "ROC-AUC", "PR-AUC", "Brier", "labels", "saved in"
    );
    for (m, dir) in &trained.models {
        println!(
            "{:<14} {:>8.3} {:>8.3} {:>8.3} {:>8}  {}",
            m.id(),
            m.metrics.roc_auc,
            m.metrics.pr_auc,
            m.metrics.brier,
            m.training.rows_fit + m.training.rows_calibration,
            dir.display()
        );
    }
    println!(
        "Current model (used by `lantern screen`): {}",
        trained.current
    );
    Ok(())
}

fn backtest(settings: &Settings, args: BacktestArgs) -> Result<()> {
    let spec = FeatureSpec::load(&settings.features.dir)?;
    let registry = settings.registry()?;
    let until = args
        .until
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let bt = lantern::eval::backtest::BacktestSettings {
        folds: args.folds.max(1),
        horizon_days: args.horizon_days,
        capacity_scale: settings.screen.capacity_scale,
    };
    let bar = lantern::progress::bar(0, "fits");
    let report = runtime()?.block_on(async {
        let engine = FeatureEngine::open_with_limit(
            &settings.data.dir,
            spec,
            settings.features.memory_limit_mb,
        )
        .await?;
        lantern::eval::backtest::backtest(
            &engine,
            &settings.model,
            &registry,
            &settings.capacity,
            &bt,
            until,
            &bar,
        )
        .await
    })?;
    bar.finish_and_clear();
    let dir = lantern::eval::report::write(&settings.data.dir, &report)?;
    println!("{}", lantern::eval::report::summary(&report));
    println!(
        "Report: {} (backtest.json, summary.md, report.html)",
        dir.display()
    );
    Ok(())
}

fn screen(settings: &Settings, args: ScreenArgs) -> Result<()> {
    let spec = FeatureSpec::load(&settings.features.dir)?;
    let registry = settings.registry()?;
    let model = lantern::model::artefact::load(&settings.data.dir, &args.model)?;
    let producer: Option<rdkafka::producer::FutureProducer> = if args.publish {
        Some(lantern::kafka::producer_config(&settings.kafka).create()?)
    } else {
        None
    };
    let bar = lantern::progress::bar(0, "households");
    let night = runtime()?.block_on(async {
        let engine = FeatureEngine::open_with_limit(
            &settings.data.dir,
            spec,
            settings.features.memory_limit_mb,
        )
        .await?;
        let delivery = match &producer {
            Some(p) => lantern::night::Delivery::Publish {
                producer: p,
                topic: settings.topics.case_intake.as_str(),
                supersede: args.supersede,
            },
            None => lantern::night::Delivery::Draft,
        };
        anyhow::Ok(
            lantern::night::run(
                &engine, &model, settings, &registry, args.as_of, delivery, &bar,
            )
            .await?,
        )
    })?;
    bar.finish_and_clear();
    print_night(&night);
    Ok(())
}

fn print_night(night: &lantern::night::Night) {
    let s = &night.screening;
    let c = &s.counts;
    println!(
        "Screened {} households as of {} with {}: {} referred in {} districts ({} urgent, {} escalated); excluded {} with an open referral, {} recently supported",
        c.scored,
        s.as_of,
        s.model,
        c.referred,
        s.districts.values().filter(|d| d.1 > 0).count(),
        c.urgent,
        c.escalated,
        c.excluded_open_referral,
        c.excluded_recently_supported
    );
    if !c.over_capacity_districts.is_empty() {
        println!(
            "Urgent reports exceeded capacity in: {}",
            c.over_capacity_districts.join(", ")
        );
    }
    if c.urgent_overrode_cooldown + c.urgent_overrode_recently_supported > 0 {
        println!(
            "Urgent reports overrode {} cool-down and {} recently-supported exclusions",
            c.urgent_overrode_cooldown, c.urgent_overrode_recently_supported
        );
    }
    if let Some(d) = &night.differs {
        println!(
            "This night was already issued: its list stands and was republished. This run's list differs ({} new, {} dropped) and is a draft in {}; to replace the issued list, run again with --supersede",
            d.added,
            d.dropped,
            d.draft.display()
        );
    }
    if let Some(w) = &night.withdrawn {
        println!(
            "Withdrew {} replaced referrals on case-intake ({} already withdrawn)",
            w.sent, w.skipped
        );
    }
    if let Some(p) = &night.published {
        println!(
            "Published {} referrals to case-intake ({} already published by an earlier run)",
            p.sent, p.skipped
        );
    }
    if night.issued {
        println!(
            "Lists: {}  (referrals.parquet, <district>.csv, html/index.html)",
            night.outputs.dir.display()
        );
    } else {
        println!(
            "Draft lists (a dry run: not history, not sent): {}  — issue them with `lantern screen --publish` or `lantern issue --as-of {}`",
            night.outputs.dir.display(),
            s.as_of
        );
    }
    println!("Audit run id: {}", night.run_id);
    println!(
        "Audit chain head: {}  (keep it; `lantern audit --verify --anchor {}` proves the log was not cut or rewritten since)",
        night.anchor, night.anchor
    );
}

fn intake(settings: &Settings, args: IntakeArgs) -> Result<()> {
    let consumer: rdkafka::consumer::BaseConsumer = lantern::kafka::client_config(&settings.kafka)
        .set(
            "group.id",
            format!("{}-intake-reader", settings.kafka.group_id),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let (referrals, other) = lantern::intake::read_all(
        &consumer,
        &settings.topics.case_intake,
        args.district.as_deref(),
    )?;
    let mut record = lantern::audit::AuditRecord::new("read");
    for r in &referrals {
        *record.districts.entry(r.district_code.clone()).or_default() += 1;
    }
    record.detail = serde_json::json!({ "topic": settings.topics.case_intake, "referrals": referrals.len(), "district": args.district });
    lantern::audit::append(&settings.data.dir, record)?;
    println!("as_of,district_code,rank,household_id,score,model,referral_id,reasons");
    for r in &referrals {
        let reasons: Vec<&str> = r.reasons.iter().map(|x| x.code.as_str()).collect();
        println!(
            "{},{},{},{},{:.4},{},{},{}",
            r.as_of,
            r.district_code,
            r.rank,
            r.household_id,
            r.score,
            r.model,
            r.referral_id,
            reasons.join("|")
        );
    }
    eprintln!(
        "{} referrals read from {}{}",
        referrals.len(),
        settings.topics.case_intake,
        if other > 0 {
            format!(" ({other} other messages skipped)")
        } else {
            String::new()
        }
    );
    Ok(())
}

fn audit(settings: &Settings, args: AuditArgs) -> Result<()> {
    let records = lantern::audit::list(&settings.data.dir)?;
    if args.json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        println!(
            "{:<40} {:<8} {:<11} {:<12} {:>9}  {}",
            "run", "action", "as_of", "model", "referrals", "actor"
        );
        for r in &records {
            println!(
                "{:<40} {:<8} {:<11} {:<12} {:>9}  {}",
                r.run_id,
                r.action,
                r.as_of.as_deref().unwrap_or("-"),
                r.model.as_deref().unwrap_or("-"),
                r.districts.values().sum::<u64>(),
                r.actor
            );
        }
    }
    if args.verify {
        let n = lantern::audit::verify_with(&settings.data.dir, &args.anchors)?;
        let anchors = lantern::audit::anchors(&settings.data.dir).len() + args.anchors.len();
        println!("Audit chain intact: {n} records, consistent with {anchors} anchors");
    }
    Ok(())
}

fn dead_letters(settings: &Settings, args: DeadLettersArgs) -> Result<()> {
    let tally = if args.kafka {
        ingest::kafka::read_dead_letters(settings)?
    } else {
        ingest::deadletter::Tally::from_files(&settings.data.dir)?
    };
    println!(
        "{} rejected records{}{}",
        tally.letters.len(),
        if tally.repeats > 0 {
            format!(
                " ({} repeats of a record already dead-lettered, sent again after a restart, counted once)",
                tally.repeats
            )
        } else {
            String::new()
        },
        if tally.unreadable > 0 {
            format!("; {} entries are not dead letters", tally.unreadable)
        } else {
            String::new()
        }
    );
    for (reason, n) in tally.by_reason() {
        println!("  {n:>8}  {reason}");
    }
    for (key, l) in tally.letters.iter().take(args.show) {
        println!("{key}: {} ({}): {}", l.reason, l.field, l.detail);
    }
    Ok(())
}

/// Crisis episodes from the simulator's ground truth: household → (start, end) spans.
fn crisis_truth(
    path: &std::path::Path,
) -> Result<std::collections::HashMap<String, Vec<(NaiveDate, NaiveDate)>>> {
    let mut out: std::collections::HashMap<String, Vec<(NaiveDate, NaiveDate)>> =
        Default::default();
    let mut reader = csv::Reader::from_path(path)?;
    for row in reader.records() {
        let row = row?;
        // An episode still going on at the end of the simulation has no end date.
        let d = |i: usize| match row.get(i).unwrap_or("") {
            "" => Ok(NaiveDate::MAX),
            s => NaiveDate::parse_from_str(s, "%Y-%m-%d"),
        };
        out.entry(row.get(0).unwrap_or("").to_string())
            .or_default()
            .push((d(1)?, d(2)?));
    }
    Ok(out)
}

fn demo(base: &Settings, args: DemoArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let root = base.data.dir.join("demo");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    let mut settings = base.clone();
    settings.data.dir = root.join("data");
    let step = |n: u32, what: &str| println!("[{n}/9] {what}");

    step(1, "starting an in-process Kafka cluster (librdkafka mock)");
    let partitions = lantern::kafka::mock_partitions_for(args.households, args.months);
    let _cluster = lantern::kafka::start_mock_cluster(&mut settings, "lantern-demo", partitions)?;
    // Lists sized to the simulated share of the country: at least one seat per district.
    settings.screen.capacity_scale =
        (args.households as f64 / lantern::sim::NATIONAL_HOUSEHOLDS).min(1.0);

    step(
        2,
        &format!(
            "simulating {} households over {} months",
            args.households, args.months
        ),
    );
    let registry = settings.registry()?;
    let tonight = chrono::Utc::now()
        .date_naive()
        .pred_opt()
        .unwrap_or(NaiveDate::MIN);
    let mut params = SimParams::new(args.households, args.months, args.seed);
    params.end = tonight;
    let sim_dir = root.join("sim");
    let bar = lantern::progress::bar(args.households, "households");
    let manifest = sim::simulate(&params, &registry, &sim_dir, &bar)?;
    bar.finish_and_clear();
    println!(
        "      {} signals ({} planted invalid, {} planted duplicates), {} past referrals in {} rounds",
        manifest.total_valid_signals(),
        manifest.total_invalid(),
        manifest.duplicate_lines,
        manifest.referrals,
        manifest.referral_rounds.len()
    );

    step(
        3,
        "producing the signals and outcomes to their topics, as the agencies would",
    );
    let producer: rdkafka::producer::BaseProducer =
        lantern::kafka::producer_config(&settings.kafka).create()?;
    let produced = lantern::sim::produce_simulation(&producer, &settings.topics, &sim_dir)?;
    println!("      {produced} messages");

    step(
        4,
        "ingesting through the Kafka consumer into the Parquet lake",
    );
    let validator = Validator::new(&registry, tonight);
    // Reference data first, so every outcome on the topic can be linked to its referral.
    let mut file_dead = FileDeadLetters::for_run(&settings.data.dir);
    let h = ingest::reference::import_households(
        &sim_dir.join("households.csv"),
        &validator,
        &settings.data.dir,
        &mut file_dead,
    )?;
    let r = ingest::reference::import_referral_history(
        &sim_dir.join("history").join("referrals.ndjson"),
        &validator,
        &settings.data.dir,
        &mut file_dead,
    )?;
    println!(
        "      reference: {} households, {} past referrals over {} nights",
        h.accepted, r.accepted, r.nights
    );

    let lake = Lake::in_data_dir(&settings.data.dir);
    let writer = LakeWriter::new(lake.clone()).with_cache_budget(settings.ingest.dedup_cache_keys);
    let dead = ingest::kafka::KafkaDeadLetters::new(&settings)?;
    let mut ingestor = Ingestor::new(validator.clone(), None, writer, Box::new(dead));
    let mut opts = ingest::kafka::KafkaIngestOptions::new(settings.ingest.batch_records);
    opts.until_idle = true;
    let consumed = ingest::kafka::consume(&settings, &mut ingestor, &opts)?;
    if consumed.messages < produced {
        anyhow::bail!(
            "the in-process Kafka kept only {} of the {produced} messages produced (librdkafka's \
             mock cluster drops the oldest messages past about 5 MB per partition); run the demo \
             with fewer --households or --months",
            consumed.messages
        );
    }
    let stats = ingestor.stats().clone();
    println!(
        "      {} messages: {} accepted, {} duplicates dropped, {} rejected to {}",
        consumed.messages,
        stats.accepted,
        stats.duplicates,
        stats.rejected.values().sum::<u64>(),
        settings.topics.dead_letter
    );

    let spec = FeatureSpec::load(&settings.features.dir)?;
    let rt = runtime()?;
    step(
        5,
        "training on the outcomes of past referrals (point-in-time features)",
    );
    let (trained, report, night, rule_night, read_back) = rt.block_on(async {
        let engine = FeatureEngine::open_with_limit(&settings.data.dir, spec, settings.features.memory_limit_mb).await?;
        let trained = lantern::model::train::train_all(&engine, &settings.model, tonight, &Kind::ALL).await?;
        for (m, _) in &trained.models {
            println!("      {:<12} held-out ROC-AUC {:.3}  PR-AUC {:.3}  Brier {:.3}", m.id(), m.metrics.roc_auc, m.metrics.pr_auc, m.metrics.brier);
        }
        step(6, "back-testing every model against the rule over rolling time splits");
        let bt = lantern::eval::backtest::BacktestSettings { folds: 3, horizon_days: 60, capacity_scale: settings.screen.capacity_scale };
        let bar = lantern::progress::bar(0, "fits");
        let report = lantern::eval::backtest::backtest(&engine, &settings.model, &registry, &settings.capacity, &bt, tonight, &bar).await?;
        bar.finish_and_clear();
        step(7, &format!("screening tonight ({tonight}) with {}", trained.current));
        let model = lantern::model::artefact::load(&settings.data.dir, &trained.current)?;
        let intake_producer: rdkafka::producer::FutureProducer = lantern::kafka::producer_config(&settings.kafka).create()?;
        let bar = lantern::progress::bar(0, "households");
        step(8, "publishing the lists to case-intake");
        let delivery = lantern::night::Delivery::Publish { producer: &intake_producer, topic: settings.topics.case_intake.as_str(), supersede: false };
        let night = lantern::night::run(&engine, &model, &settings, &registry, tonight, delivery, &bar).await?;
        bar.finish_and_clear();
        let rule = lantern::model::artefact::load(&settings.data.dir, "rule")?;
        let rule_night = lantern::screen::screen(&engine, &rule, &registry, &settings.capacity, &settings.screen, tonight, &indicatif::ProgressBar::hidden()).await?;
        step(9, "reading case-intake back as the districts would");
        let consumer: rdkafka::consumer::BaseConsumer = lantern::kafka::client_config(&settings.kafka)
            .set("group.id", "district-intake")
            .set("enable.auto.commit", "false")
            .create()?;
        let (read_back, _) = lantern::intake::read_all(&consumer, &settings.topics.case_intake, None)?;
        let mut record = lantern::audit::AuditRecord::new("read");
        for r in &read_back {
            *record.districts.entry(r.district_code.clone()).or_default() += 1;
        }
        record.detail = serde_json::json!({ "topic": settings.topics.case_intake, "referrals": read_back.len(), "reader": "demo district intake" });
        lantern::audit::append(&settings.data.dir, record)?;
        anyhow::Ok((trained, report, night, rule_night, read_back))
    })?;
    let report_dir = lantern::eval::report::write(&settings.data.dir, &report)?;

    // Against the simulator's ground truth: was each referred household in crisis tonight?
    let truth = crisis_truth(&sim_dir.join("truth").join("crisis_episodes.csv"))?;
    let in_crisis = |h: &str| {
        truth
            .get(h)
            .is_some_and(|spans| spans.iter().any(|&(a, b)| a <= tonight && tonight <= b))
    };
    let precision = |refs: &[lantern::contract::Referral]| {
        let hits = refs.iter().filter(|r| in_crisis(&r.household_id)).count();
        (
            hits,
            refs.len(),
            if refs.is_empty() {
                f64::NAN
            } else {
                hits as f64 / refs.len() as f64
            },
        )
    };
    let (hits, n, p_model) = precision(&night.screening.referrals);
    let (rule_hits, rule_n, p_rule) = precision(&rule_night.referrals);
    println!();
    print_night(&night);
    let mut busiest: Vec<(&String, &(u32, u32))> = night.screening.districts.iter().collect();
    busiest.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
    let names = |code: &str| {
        registry
            .get(code)
            .map(|d| format!("{} {}", d.sido, d.name))
            .unwrap_or_default()
    };
    println!(
        "Per district (capacity {}–{} tonight; first 8 of {}):",
        night
            .screening
            .districts
            .values()
            .map(|d| d.0)
            .min()
            .unwrap_or(0),
        night
            .screening
            .districts
            .values()
            .map(|d| d.0)
            .max()
            .unwrap_or(0),
        night.screening.districts.len()
    );
    for (code, (cap, len)) in busiest.iter().take(8) {
        println!("  {code} {:<16} {len}/{cap}", names(code));
    }
    println!(
        "Read back from case-intake: {} referrals (published {}, duplicates {})",
        read_back.len(),
        night.published.as_ref().map(|p| p.sent).unwrap_or(0),
        read_back.len()
            - read_back
                .iter()
                .map(|r| r.referral_id.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len()
    );
    println!();
    println!("Precision against the simulator's ground truth (in crisis on {tonight}):");
    println!(
        "  {:<12} {hits}/{n} = {:.1}%",
        night.screening.model,
        p_model * 100.0
    );
    println!("  {:<12} {rule_hits}/{rule_n} = {:.1}%  (today's rule: cut-offs first, then months overdue)", rule_night.model, p_rule * 100.0);
    if p_rule > 0.0 {
        println!("  lift over the rule: {:.2}x", p_model / p_rule);
    }
    let pooled = &report.pooled;
    if let (Some(m), Some(r)) = (
        pooled.get(trained.current.split('@').next().unwrap_or("")),
        pooled.get("rule"),
    ) {
        println!("Back-test on referred households ({} labelled): PR-AUC {:.3} vs rule {:.3}; precision in the top 20% {:.1}% vs {:.1}%",
            m.referrals, m.pr_auc, r.pr_auc, m.precision_at_top_fifth * 100.0, r.precision_at_top_fifth * 100.0);
    }
    println!();
    println!("Written:");
    println!(
        "  referral lists  {}  (open html/index.html in a browser)",
        night.outputs.dir.display()
    );
    println!(
        "  back-test       {}",
        report_dir.join("report.html").display()
    );
    println!(
        "  models          {}",
        lantern::model::artefact::models_dir(&settings.data.dir).display()
    );
    println!("  lake            {}", lake.root().display());
    println!(
        "  audit log       {}",
        lantern::audit::path(&settings.data.dir).display()
    );
    println!(
        "  simulation      {}  (ground truth in truth/)",
        sim_dir.display()
    );
    println!("Done in {:.0}s.", started.elapsed().as_secs_f64());
    Ok(())
}

fn features(settings: &Settings, args: FeaturesArgs) -> Result<()> {
    let spec = FeatureSpec::load(&settings.features.dir)?;
    let started = std::time::Instant::now();
    let rows = runtime()?.block_on(async {
        let engine = FeatureEngine::open_with_limit(
            &settings.data.dir,
            spec,
            settings.features.memory_limit_mb,
        )
        .await?;
        // Each date's cohort: the households screened that night.
        let mut cohort = Vec::new();
        for &d in &args.dates {
            cohort.extend(engine.scoring_cohort(d).await?.into_iter().map(|h| (h, d)));
        }
        let groups: Vec<Vec<(String, NaiveDate)>> = if args.separate {
            args.dates
                .iter()
                .map(|&d| cohort.iter().filter(|c| c.1 == d).cloned().collect())
                .collect()
        } else {
            vec![cohort]
        };
        let bar = lantern::progress::bar(groups.iter().map(|g| g.len() as u64).sum(), "rows");
        let mut writer = lantern::features::ParquetSink::create(&args.out, engine.spec())?;
        let mut rows = 0u64;
        for group in groups {
            let mut stream = engine.stream(&group).await?;
            while let Some(batch) = stream.next().await? {
                rows += batch.len() as u64;
                bar.inc(batch.len() as u64);
                writer.write(&batch)?;
            }
        }
        writer.finish()?;
        bar.finish_and_clear();
        anyhow::Ok(rows)
    })?;
    println!(
        "{rows} rows ({} dates, {}) in {:.1}s -> {}",
        args.dates.len(),
        if args.separate {
            "one query per date"
        } else {
            "all dates in one plan"
        },
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
