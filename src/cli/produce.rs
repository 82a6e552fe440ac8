//! `lantern produce`: a simulated population to the topics, as the agencies would send it.

use anyhow::Result;
use clap::Args;

use lantern::config::Settings;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The simulation's output folder.
    #[arg(long, value_name = "DIR")]
    sim: PathBuf,
}

pub fn run(settings: &Settings, args: ProduceArgs) -> Result<()> {
    let producer: rdkafka::producer::BaseProducer =
        lantern::kafka::producer_config(&settings.kafka).create()?;
    let started = std::time::Instant::now();
    let n = lantern::sim::produce_simulation(&producer, &settings.topics, &args.sim)?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "Produced {n} messages to {} in {secs:.1}s ({:.0} messages/s)",
        settings.kafka.brokers,
        n as f64 / secs
    );
    Ok(())
}
