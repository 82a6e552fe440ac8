//! `lantern lake`: lake maintenance.

use anyhow::Result;
use clap::Subcommand;

use lantern::config::Settings;
use lantern::lake::Lake;

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Merge each month's small files into one, dropping repeated keys and leftovers of
    /// interrupted writes.
    Compact {
        /// Compact partitions holding more files than this.
        #[arg(long, default_value_t = 1)]
        max_files: usize,
    },
    /// Bring the signal state (`<data>/state`, what features read) up to date with the lake:
    /// only lake files not seen before are read. Every feature query does this first; run it
    /// after ingest to keep that work out of the night (docs/LAKE.md).
    State,
}

pub fn run(settings: &Settings, command: LakeCommand) -> Result<()> {
    match command {
        LakeCommand::Compact { max_files } => {
            let lake = Lake::in_data_dir(&settings.data.dir);
            let r = lake.compact(max_files)?;
            println!(
                "Compacted {} partitions: {} files into {}, {} rows kept, {} repeated keys dropped, {} interrupted writes removed",
                r.partitions, r.files_before, r.files_after, r.rows, r.duplicates_removed, r.partials_removed
            );
            Ok(())
        }
        LakeCommand::State => {
            let started = std::time::Instant::now();
            let (state, r) = lantern::features::state::SignalState::update(
                &settings.data.dir,
                settings.features.state_buckets,
            )?;
            println!(
                "Signal state up to date in {:.1} s: {} new lake files read, {} events added, {} repeated copies left out, {} replaced by an earlier copy, {} months rebuilt, {} buckets merged, {} households of the reference copied by bucket ({} buckets, under {})",
                started.elapsed().as_secs_f64(),
                r.lake_files_read,
                r.events_added,
                r.duplicates,
                r.replaced,
                r.months_rebuilt.len(),
                r.buckets_merged,
                r.households_copied,
                state.buckets(),
                lantern::features::state::SignalState::root_in(&settings.data.dir).display()
            );
            Ok(())
        }
    }
}
