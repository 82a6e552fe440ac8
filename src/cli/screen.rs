//! `lantern screen`: the night's lists (drafts, or issued with `--publish`).

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;
use lantern::features::{FeatureEngine, FeatureSpec};

use super::common::{parse_date, runtime};

#[derive(Debug, Args)]
pub struct ScreenArgs {
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
    #[command(flatten)]
    engine: super::common::EngineArg,
}

pub fn run(settings: &Settings, args: ScreenArgs) -> Result<()> {
    let settings = &args.engine.apply(settings);
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
        let engine =
            FeatureEngine::open_configured(&settings.data.dir, spec, &settings.features).await?;
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

pub fn print_night(night: &lantern::night::Night) {
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
    println!("Time by phase: {}", s.phases.summary());
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
    let breaches = lantern::fairness::breaches(&night.fairness);
    if breaches.is_empty() {
        println!("Fairness audit: no group's expected precision or missed-crisis ratio is outside the band beyond its 95% interval (fairness.json, html/index.html)");
    } else {
        println!(
            "Fairness audit: BREACH for {} — expected precision or missed-crisis ratio outside the band beyond its 95% interval; see fairness.json and html/index.html before issuing",
            breaches.join(", ")
        );
    }
    println!("Audit run id: {}", night.run_id);
    println!(
        "Audit chain head: {}  (keep it; `lantern audit --verify --anchor {}` proves the log was not cut or rewritten since)",
        night.anchor, night.anchor
    );
}
