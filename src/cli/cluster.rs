//! `lantern cluster`: run a role of an Apache DataFusion Ballista cluster from this build, so
//! every process knows Lantern's codec (`lantern::cluster`). `scripts/ballista.sh` starts a
//! scheduler and executors on one machine; docs/DEPLOY.md says how to spread them out.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use lantern::config::Settings;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run a scheduler: it plans each query into stages and hands their tasks to executors.
    /// Clients (`--engine ballista://HOST:PORT`) and executors connect to it.
    Scheduler(SchedulerArgs),
    /// Run an executor: it registers with the scheduler, runs tasks, and serves their results
    /// over Arrow Flight. It must see the data directory at the same path as the clients.
    Executor(ExecutorArgs),
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
    /// The lake, when it is in an object store (the scheduler lists its files to plan): as
    /// for the executor.
    #[arg(long, value_name = "LOCATION", env = "LANTERN_LAKE")]
    lake: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler's address.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    scheduler: SocketAddr,
    /// Address to listen on (and to give the scheduler for this executor).
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port of the Arrow Flight service that serves task results.
    #[arg(long, value_name = "PORT", default_value_t = 50051)]
    flight_port: u16,
    /// Port of the executor's gRPC service (the scheduler's calls).
    #[arg(long, value_name = "PORT", default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks run at once [default: the machine's cores].
    #[arg(long, value_name = "N")]
    task_slots: Option<usize>,
    /// Folder for the shuffle files between stages.
    #[arg(long, value_name = "DIR")]
    work_dir: PathBuf,
    /// The lake the plans read when it is in an object store: the same
    /// `s3://BUCKET/PREFIX?…` as `lantern lake use` (credentials from the AWS_* variables)
    /// [default: the lake recorded in --data-dir, if it is in an object store].
    #[arg(long, value_name = "LOCATION", env = "LANTERN_LAKE")]
    lake: Option<String>,
}

#[cfg(feature = "ballista")]
pub fn run(settings: &Settings, command: ClusterCommand) -> Result<()> {
    let rt = super::common::runtime()?;
    match command {
        ClusterCommand::Scheduler(args) => {
            tracing::info!(bind = %args.bind, "Ballista scheduler starting");
            let lake = lake_location(args.lake.as_deref(), settings)?;
            rt.block_on(lantern::cluster::run_scheduler(args.bind, lake))
                .map_err(|e| anyhow::anyhow!("the scheduler stopped: {e}"))
        }
        ClusterCommand::Executor(args) => {
            std::fs::create_dir_all(&args.work_dir)?;
            let lake = lake_location(args.lake.as_deref(), settings)?;
            let settings = lantern::cluster::ExecutorSettings {
                scheduler: args.scheduler,
                bind: args.bind,
                flight_port: args.flight_port,
                grpc_port: args.grpc_port,
                task_slots: args
                    .task_slots
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                work_dir: args.work_dir,
                lake,
            };
            tracing::info!(scheduler = %settings.scheduler, flight_port = settings.flight_port, "Ballista executor starting");
            rt.block_on(lantern::cluster::run_executor(settings))
                .map_err(|e| anyhow::anyhow!("the executor stopped: {e}"))
        }
    }
}

/// The lake a cluster role reads: `--lake`, else the one recorded in the data directory.
#[cfg(feature = "ballista")]
fn lake_location(
    given: Option<&str>,
    settings: &Settings,
) -> Result<Option<lantern::lake::store::Location>> {
    use lantern::lake::store::Location;
    Ok(match given {
        Some(text) => Some(Location::parse(text).map_err(anyhow::Error::msg)?),
        None => Location::of_data_dir(&settings.data.dir).ok(),
    })
}

#[cfg(not(feature = "ballista"))]
pub fn run(_settings: &Settings, _command: ClusterCommand) -> Result<()> {
    anyhow::bail!(
        "this lantern was built without the Ballista engine: build it with \
         `cargo build --release --features ballista`"
    )
}
