//! `lantern issue`: a night's draft becomes its list, for hand-over as files.

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;

use super::common::parse_date;

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The night whose draft is issued (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    as_of: NaiveDate,
    /// Replace a list already issued for that night; its replaced referrals are withdrawn.
    #[arg(long)]
    supersede: bool,
}

pub fn run(settings: &Settings, args: IssueArgs) -> Result<()> {
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
