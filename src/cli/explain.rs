//! `lantern explain`: why a household was, or was not, on a night's list, in Korean and English.

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;

use super::common::parse_date;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The household's pseudonymous id, as on the lists.
    #[arg(long, value_name = "ID")]
    household: String,
    /// The night (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    as_of: NaiveDate,
}

pub fn run(settings: &Settings, args: ExplainArgs) -> Result<()> {
    let e = lantern::night::explain(&settings.data.dir, &args.household, args.as_of)?;
    println!("{}", e.ko);
    println!("{}", e.en);
    if !e.issued {
        println!("(초안: 이 밤의 목록은 아직 발행되지 않았습니다 / draft: this night's list was not issued)");
    }
    Ok(())
}
