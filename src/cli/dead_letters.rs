//! `lantern dead-letters`: the rejected records, each once.

use anyhow::Result;
use clap::Args;

use lantern::config::Settings;
use lantern::ingest::{self};

#[derive(Debug, Args)]
pub struct DeadLettersArgs {
    /// Read the dead-letter topic (`topics.dead_letter`) instead of <data-dir>/dead-letter/.
    #[arg(long)]
    kafka: bool,
    /// Print at most this many letters (0: counts only).
    #[arg(long, default_value_t = 20)]
    show: usize,
}

pub fn run(settings: &Settings, args: DeadLettersArgs) -> Result<()> {
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
