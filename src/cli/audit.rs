//! `lantern audit`: list and verify the audit log.

use anyhow::Result;
use clap::Args;

use lantern::config::Settings;

#[derive(Debug, Args)]
pub struct AuditArgs {
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
    /// Only records of this action (screen, draft, publish, supersede, issue, read, train,
    /// promote, export, explain, retention, erase, lake_location).
    #[arg(long, value_name = "ACTION")]
    action: Option<String>,
    /// Only records whose actor contains this (a user, a host or a configured identity).
    #[arg(long, value_name = "TEXT")]
    actor: Option<String>,
    /// Only records about this night (YYYY-MM-DD).
    #[arg(long = "as-of", value_name = "DATE")]
    as_of: Option<String>,
    /// Only records written on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = super::common::parse_date)]
    since: Option<chrono::NaiveDate>,
    /// Only records written on or before this day (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = super::common::parse_date)]
    until: Option<chrono::NaiveDate>,
    /// Only records about this household (explain, erase): give its id; the log holds only
    /// its keyed hash, which this computes.
    #[arg(long, value_name = "ID")]
    household: Option<String>,
}

pub fn run(settings: &Settings, args: AuditArgs) -> Result<()> {
    let filter = lantern::audit::Filter {
        action: args.action.clone(),
        actor: args.actor.clone(),
        as_of: args.as_of.clone(),
        since: args.since,
        until: args.until,
        household: args
            .household
            .as_deref()
            .map(|h| lantern::audit::household_hash(&settings.data.dir, h))
            .transpose()?,
    };
    let records: Vec<_> = lantern::audit::list(&settings.data.dir)?
        .into_iter()
        .filter(|r| filter.keeps(r))
        .collect();
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
