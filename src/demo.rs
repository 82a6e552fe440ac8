//! `lantern demo`: the whole pipeline on a simulated population, with an in-process Kafka.

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use lantern::config::Settings;
use lantern::contract::Validator;
use lantern::features::{FeatureEngine, FeatureSpec};
use lantern::ingest::{self, FileDeadLetters, Ingestor};
use lantern::lake::{Lake, LakeWriter};
use lantern::model::Kind;
use lantern::sim::{self, SimParams};

use crate::cli::common::runtime;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Households to simulate; fewer runs faster.
    #[arg(long, default_value_t = 50_000)]
    households: u64,
    /// Months of simulated history.
    #[arg(long, default_value_t = 18)]
    months: u32,
    /// Random seed of the simulation.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// Crisis episodes from the simulator's ground truth: household → (start, end) spans.
fn crisis_truth(
    path: &std::path::Path,
) -> Result<std::collections::HashMap<String, Vec<(NaiveDate, NaiveDate)>>> {
    let mut out: std::collections::HashMap<String, Vec<(NaiveDate, NaiveDate)>> =
        Default::default();
    let mut reader = csv::Reader::from_path(path)?;
    for row in reader.records() {
        let row = row?;
        // An episode still going on at the end of the simulation has no end date.
        let d = |i: usize| match row.get(i).unwrap_or("") {
            "" => Ok(NaiveDate::MAX),
            s => NaiveDate::parse_from_str(s, "%Y-%m-%d"),
        };
        out.entry(row.get(0).unwrap_or("").to_string())
            .or_default()
            .push((d(1)?, d(2)?));
    }
    Ok(out)
}

pub fn run(base: &Settings, args: DemoArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let root = base.data.dir.join("demo");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    let mut settings = base.clone();
    settings.data.dir = root.join("data");
    let step = |n: u32, what: &str| println!("[{n}/9] {what}");

    step(1, "starting an in-process Kafka cluster (librdkafka mock)");
    let partitions = lantern::kafka::mock_partitions_for(args.households, args.months);
    let _cluster = lantern::kafka::start_mock_cluster(&mut settings, "lantern-demo", partitions)?;
    // Lists sized to the simulated share of the country: at least one seat per district.
    settings.screen.capacity_scale =
        (args.households as f64 / lantern::sim::NATIONAL_HOUSEHOLDS).min(1.0);

    step(
        2,
        &format!(
            "simulating {} households over {} months",
            args.households, args.months
        ),
    );
    let registry = settings.registry()?;
    let tonight = chrono::Utc::now()
        .date_naive()
        .pred_opt()
        .unwrap_or(NaiveDate::MIN);
    let mut params = SimParams::new(args.households, args.months, args.seed);
    params.end = tonight;
    let sim_dir = root.join("sim");
    let bar = lantern::progress::bar(args.households, "households");
    let manifest = sim::simulate(&params, &registry, &sim_dir, &bar)?;
    bar.finish_and_clear();
    println!(
        "      {} signals ({} planted invalid, {} planted duplicates), {} past referrals in {} rounds",
        manifest.total_valid_signals(),
        manifest.total_invalid(),
        manifest.duplicate_lines,
        manifest.referrals,
        manifest.referral_rounds.len()
    );

    step(
        3,
        "producing the signals and outcomes to their topics, as the agencies would",
    );
    let producer: rdkafka::producer::BaseProducer =
        lantern::kafka::producer_config(&settings.kafka).create()?;
    let produced = lantern::sim::produce_simulation(&producer, &settings.topics, &sim_dir)?;
    println!("      {produced} messages");

    step(
        4,
        "ingesting through the Kafka consumer into the Parquet lake",
    );
    let validator = Validator::new(&registry, tonight);
    // Reference data first, so every outcome on the topic can be linked to its referral.
    let mut file_dead = FileDeadLetters::for_run(&settings.data.dir);
    let h = ingest::reference::import_households(
        &sim_dir.join("households.csv"),
        &validator,
        &settings.data.dir,
        &mut file_dead,
    )?;
    let r = ingest::reference::import_referral_history(
        &sim_dir.join("history").join("referrals.ndjson"),
        &validator,
        &settings.data.dir,
        &mut file_dead,
    )?;
    println!(
        "      reference: {} households, {} past referrals over {} nights",
        h.accepted, r.accepted, r.nights
    );

    let lake = Lake::in_data_dir(&settings.data.dir);
    let writer = LakeWriter::new(lake.clone()).with_cache_budget(settings.ingest.dedup_cache_keys);
    let dead = ingest::kafka::KafkaDeadLetters::new(&settings)?;
    let mut ingestor = Ingestor::new(validator.clone(), None, writer, Box::new(dead));
    let mut opts = ingest::kafka::KafkaIngestOptions::new(settings.ingest.batch_records);
    opts.until_idle = true;
    let consumed = ingest::kafka::consume(&settings, &mut ingestor, &opts)?;
    if consumed.messages < produced {
        anyhow::bail!(
            "the in-process Kafka kept only {} of the {produced} messages produced (librdkafka's \
             mock cluster drops the oldest messages past about 5 MB per partition); run the demo \
             with fewer --households or --months",
            consumed.messages
        );
    }
    let stats = ingestor.stats().clone();
    println!(
        "      {} messages: {} accepted, {} duplicates dropped, {} rejected to {}",
        consumed.messages,
        stats.accepted,
        stats.duplicates,
        stats.rejected.values().sum::<u64>(),
        settings.topics.dead_letter
    );

    let spec = FeatureSpec::load(&settings.features.dir)?;
    let rt = runtime()?;
    step(
        5,
        "training on the outcomes of past referrals (point-in-time features)",
    );
    let (current, report, night, rule_night, read_back) = rt.block_on(async {
        let engine = FeatureEngine::open_configured(&settings.data.dir, spec, &settings.features).await?;
        let bt = lantern::eval::backtest::BacktestSettings { folds: 3, horizon_days: 60, capacity_scale: settings.screen.capacity_scale, fairness: settings.fairness.clone() };
        let bar = lantern::progress::bar(0, "back-test fits");
        let gated = lantern::eval::promotion::train_and_promote(&engine, &settings.model, &registry, &settings.capacity, &bt, tonight, &Kind::ALL, &bar).await?;
        bar.finish_and_clear();
        for (m, _) in &gated.trained.models {
            println!("      {:<12} held-out ROC-AUC {:.3}  PR-AUC {:.3}  Brier {:.3}", m.id(), m.metrics.roc_auc, m.metrics.pr_auc, m.metrics.brier);
        }
        step(6, "back-testing every model against the rule over rolling time splits: the promotion gate");
        for line in gated.decision.summary().lines() {
            println!("      {line}");
        }
        let current = match &gated.current {
            Some(c) => c.clone(),
            None => {
                // A fresh demo has no earlier model to fall back on: show the candidate anyway,
                // as an operator's audited override would.
                let candidate = gated.decision.candidate.clone().unwrap_or_else(|| "rule".into());
                let m = lantern::eval::promotion::promote_by_operator(&settings.data.dir, &candidate, "lantern demo: the gate refused the first model of a simulated population; screening with it for illustration")?;
                println!("      (demo) the gate refused; {} made current by an audited override", m.id());
                m.id()
            }
        };
        let Some(report) = gated.report else { anyhow::bail!("the demo trains learned models, so the gate back-tests them") };
        step(7, &format!("screening tonight ({tonight}) with {current}"));
        let model = lantern::model::artefact::load(&settings.data.dir, &current)?;
        let intake_producer: rdkafka::producer::FutureProducer = lantern::kafka::producer_config(&settings.kafka).create()?;
        let bar = lantern::progress::bar(0, "households");
        step(8, "publishing the lists to case-intake");
        let delivery = lantern::night::Delivery::Publish { producer: &intake_producer, topic: settings.topics.case_intake.as_str(), supersede: false };
        let night = lantern::night::run(&engine, &model, &settings, &registry, tonight, delivery, &bar).await?;
        bar.finish_and_clear();
        let rule = lantern::model::artefact::load(&settings.data.dir, "rule")?;
        let rule_night = lantern::screen::screen(&engine, &rule, &registry, &settings.capacity, &settings.screen, tonight, &indicatif::ProgressBar::hidden()).await?;
        step(9, "reading case-intake back as the districts would");
        let consumer: rdkafka::consumer::BaseConsumer = lantern::kafka::client_config(&settings.kafka)
            .set("group.id", "district-intake")
            .set("enable.auto.commit", "false")
            .create()?;
        let (read_back, _) = lantern::intake::read_all(&consumer, &settings.topics.case_intake, None)?;
        let mut record = lantern::audit::AuditRecord::new("read");
        for r in &read_back {
            *record.districts.entry(r.district_code.clone()).or_default() += 1;
        }
        record.detail = serde_json::json!({ "topic": settings.topics.case_intake, "referrals": read_back.len(), "reader": "demo district intake" });
        lantern::audit::append(&settings.data.dir, record)?;
        anyhow::Ok((current, report, night, rule_night, read_back))
    })?;
    let report_dir = lantern::eval::report::write(&settings.data.dir, &report)?;

    // Against the simulator's ground truth: was each referred household in crisis tonight?
    let truth = crisis_truth(&sim_dir.join("truth").join("crisis_episodes.csv"))?;
    let in_crisis = |h: &str| {
        truth
            .get(h)
            .is_some_and(|spans| spans.iter().any(|&(a, b)| a <= tonight && tonight <= b))
    };
    let precision = |refs: &[lantern::contract::Referral]| {
        let hits = refs.iter().filter(|r| in_crisis(&r.household_id)).count();
        (
            hits,
            refs.len(),
            if refs.is_empty() {
                f64::NAN
            } else {
                hits as f64 / refs.len() as f64
            },
        )
    };
    let (hits, n, p_model) = precision(&night.screening.referrals);
    let (rule_hits, rule_n, p_rule) = precision(&rule_night.referrals);
    println!();
    crate::cli::screen::print_night(&night);
    let mut busiest: Vec<(&String, &(u32, u32))> = night.screening.districts.iter().collect();
    busiest.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
    let names = |code: &str| {
        registry
            .get(code)
            .map(|d| format!("{} {}", d.sido, d.name))
            .unwrap_or_default()
    };
    println!(
        "Per district (capacity {}–{} tonight; first 8 of {}):",
        night
            .screening
            .districts
            .values()
            .map(|d| d.0)
            .min()
            .unwrap_or(0),
        night
            .screening
            .districts
            .values()
            .map(|d| d.0)
            .max()
            .unwrap_or(0),
        night.screening.districts.len()
    );
    for (code, (cap, len)) in busiest.iter().take(8) {
        println!("  {code} {:<16} {len}/{cap}", names(code));
    }
    println!(
        "Read back from case-intake: {} referrals (published {}, duplicates {})",
        read_back.len(),
        night.published.as_ref().map(|p| p.sent).unwrap_or(0),
        read_back.len()
            - read_back
                .iter()
                .map(|r| r.referral_id.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len()
    );
    println!();
    println!("Precision against the simulator's ground truth (in crisis on {tonight}):");
    println!(
        "  {:<12} {hits}/{n} = {:.1}%",
        night.screening.model,
        p_model * 100.0
    );
    println!("  {:<12} {rule_hits}/{rule_n} = {:.1}%  (today's rule: cut-offs first, then months overdue)", rule_night.model, p_rule * 100.0);
    if p_rule > 0.0 {
        println!("  lift over the rule: {:.2}x", p_model / p_rule);
    }
    let pooled = &report.pooled;
    if let (Some(m), Some(r)) = (
        pooled.get(current.split('@').next().unwrap_or("")),
        pooled.get("rule"),
    ) {
        println!("Back-test on referred households ({} labelled): PR-AUC {:.3} vs rule {:.3}; precision in the top 20% {:.1}% vs {:.1}%",
            m.referrals, m.pr_auc, r.pr_auc, m.precision_at_top_fifth * 100.0, r.precision_at_top_fifth * 100.0);
    }
    println!();
    println!("Written:");
    println!(
        "  referral lists  {}  (open html/index.html in a browser)",
        night.outputs.dir.display()
    );
    println!(
        "  back-test       {}",
        report_dir.join("report.html").display()
    );
    println!(
        "  models          {}",
        lantern::model::artefact::models_dir(&settings.data.dir).display()
    );
    println!("  lake            {}", lake.location());
    println!(
        "  audit log       {}",
        lantern::audit::path(&settings.data.dir).display()
    );
    println!(
        "  simulation      {}  (ground truth in truth/)",
        sim_dir.display()
    );
    println!("Done in {:.0}s.", started.elapsed().as_secs_f64());
    Ok(())
}
