//! `lantern retention` and `lantern erase`: forgetting what is past its period, and one
//! household entirely.

use anyhow::Result;
use clap::Args;

use lantern::config::Settings;

#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Delete what is past its period (audited). Without it, only list what would go.
    #[arg(long)]
    apply: bool,
    /// Count ages from this day instead of today (YYYY-MM-DD), to see what a later run would
    /// delete.
    #[arg(long, value_parser = super::common::parse_date)]
    today: Option<chrono::NaiveDate>,
}

pub fn retention(settings: &Settings, args: RetentionArgs) -> Result<()> {
    let today = args
        .today
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let items = lantern::privacy::expired(&settings.data.dir, &settings.retention, today)?;
    if items.is_empty() {
        println!("Nothing under {} is past its retention period on {today} ([retention] in the configuration).", settings.data.dir.display());
        return Ok(());
    }
    for i in &items {
        println!("{:<16} {}  {}", i.kind, i.dated, i.path.display());
    }
    if args.apply {
        let n = lantern::privacy::apply(&settings.data.dir, &items)?;
        println!("Deleted {n} items past their retention period (audited: `lantern audit --action retention`).");
    } else {
        println!(
            "{} items are past their retention period on {today}. Nothing was deleted: run again with --apply to delete them.",
            items.len()
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The household's id as Lantern holds it (the pseudonymous token of SPEC §2).
    #[arg(long, value_name = "ID")]
    household: String,
}

pub fn erase(settings: &Settings, args: EraseArgs) -> Result<()> {
    let e = lantern::privacy::erase(&settings.data.dir, &args.household)?;
    if e.files.is_empty() {
        println!(
            "No file under {} names this household (nothing to erase, or erased before).",
            settings.data.dir.display()
        );
    } else {
        println!(
            "Erased {} rows or lines from {} files:",
            e.removed,
            e.files.len()
        );
        for f in &e.files {
            println!("  {f}");
        }
    }
    println!(
        "Audited as household {} (`lantern audit --household {}`).",
        e.household_hash, args.household
    );
    println!("Not erasable by Lantern:");
    for n in &e.not_erasable {
        println!("  - {n}");
    }
    Ok(())
}
