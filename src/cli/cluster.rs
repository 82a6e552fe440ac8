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
}

#[cfg(feature = "ballista")]
pub fn run(_settings: &Settings, command: ClusterCommand) -> Result<()> {
    let rt = super::common::runtime()?;
    match command {
        ClusterCommand::Scheduler(args) => {
            tracing::info!(bind = %args.bind, "Ballista scheduler starting");
            rt.block_on(lantern::cluster::run_scheduler(args.bind))
                .map_err(|e| anyhow::anyhow!("the scheduler stopped: {e}"))
        }
        ClusterCommand::Executor(args) => {
            std::fs::create_dir_all(&args.work_dir)?;
            let settings = lantern::cluster::ExecutorSettings {
                scheduler: args.scheduler,
                bind: args.bind,
                flight_port: args.flight_port,
                grpc_port: args.grpc_port,
                task_slots: args
                    .task_slots
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                work_dir: args.work_dir,
            };
            tracing::info!(scheduler = %settings.scheduler, flight_port = settings.flight_port, "Ballista executor starting");
            rt.block_on(lantern::cluster::run_executor(settings))
                .map_err(|e| anyhow::anyhow!("the executor stopped: {e}"))
        }
    }
}

#[cfg(not(feature = "ballista"))]
pub fn run(_settings: &Settings, _command: ClusterCommand) -> Result<()> {
    anyhow::bail!(
        "this lantern was built without the Ballista engine: build it with \
         `cargo build --release --features ballista`"
    )
}
