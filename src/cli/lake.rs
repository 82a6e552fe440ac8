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
    }
}
