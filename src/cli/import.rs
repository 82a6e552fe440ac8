//! `lantern import`: the households reference and past referral lists.

use anyhow::Result;
use clap::Args;

use lantern::config::Settings;
use lantern::contract::Validator;
use lantern::ingest::{self, DeadLetterSink, FileDeadLetters};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Households reference CSV (household_id, district_code, dong_code, members,
    /// head_age_band, household_type, disability). Replaces the previous reference.
    #[arg(long, value_name = "CSV", required_unless_present = "referrals")]
    households: Option<PathBuf>,
    /// Past referrals, one SPEC §4 JSON record per line (e.g. the lists of the system Lantern
    /// replaces). Merged into <data-dir>/referrals/ by night.
    #[arg(long, value_name = "NDJSON")]
    referrals: Option<PathBuf>,
}

pub fn run(settings: &Settings, args: ImportArgs) -> Result<()> {
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
