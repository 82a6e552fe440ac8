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
}

pub fn run(settings: &Settings, args: AuditArgs) -> Result<()> {
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
