//! The `lantern` command line: parse, then dispatch to the command's module (`src/cli/`, the
//! demo in `src/demo.rs`). Errors end here: printed as one line on stderr
//! (`lantern: error: ...`) with a non-zero exit status.

mod cli;
mod demo;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command};
use lantern::config::{Settings, Sources};

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
    lantern::audit::set_identity(&settings.audit.identity);

    match cli.command {
        Command::Simulate(args) => cli::simulate::run(&settings, args),
        Command::Check(args) => cli::check::run(&settings, args),
        Command::Demo(args) => demo::run(&settings, args),
        Command::Ingest(args) => cli::ingest::run(&settings, args),
        Command::Produce(args) => cli::produce::run(&settings, args),
        Command::Lake(command) => cli::lake::run(&settings, command),
        Command::Import(args) => cli::import::run(&settings, args),
        Command::Train(args) => cli::train::run(&settings, args),
        Command::Promote(args) => cli::train::promote(&settings, args),
        Command::Screen(args) => cli::screen::run(&settings, args),
        Command::Issue(args) => cli::issue::run(&settings, args),
        Command::Intake(args) => cli::intake::run(&settings, args),
        Command::Features(args) => cli::features::run(&settings, args),
        Command::Audit(args) => cli::audit::run(&settings, args),
        Command::DeadLetters(args) => cli::dead_letters::run(&settings, args),
        Command::Explain(args) => cli::explain::run(&settings, args),
        Command::Retention(args) => cli::privacy::retention(&settings, args),
        Command::Erase(args) => cli::privacy::erase(&settings, args),
        Command::Backtest(args) => cli::backtest::run(&settings, args),
        Command::Cluster(command) => cli::cluster::run(&settings, command),
    }
}
