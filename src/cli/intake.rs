//! `lantern intake`: read case-intake as a district would.

use anyhow::Result;
use clap::Args;

use lantern::config::Settings;

#[derive(Debug, Args)]
pub struct IntakeArgs {
    /// Only this district's referrals (5-digit code).
    #[arg(long, value_name = "CODE")]
    district: Option<String>,
}

pub fn run(settings: &Settings, args: IntakeArgs) -> Result<()> {
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
