//! `lantern lake`: lake maintenance.

use anyhow::{Context, Result};
use clap::Subcommand;

use lantern::config::Settings;
use lantern::lake::store::Location;
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
    /// Say where this data directory's lake is: a folder, or `s3://BUCKET/PREFIX` on an
    /// S3-compatible object store that executors and ingest processes on other machines share.
    /// Credentials, region and endpoint come from the standard `AWS_*` variables
    /// (`AWS_ENDPOINT=http://…` and `AWS_ALLOW_HTTP=true` for a server without TLS). Without a
    /// location, prints the current one. The choice is kept in `<data>/lake-location`; moving
    /// the files is up to you (docs/LAKE.md).
    Use {
        /// `s3://BUCKET/PREFIX`, a folder, or `default` for `<data>/lake`.
        location: Option<String>,
    },
}

pub fn run(settings: &Settings, command: LakeCommand) -> Result<()> {
    match command {
        LakeCommand::Use { location: None } => {
            println!("{}", Lake::in_data_dir(&settings.data.dir).location());
            Ok(())
        }
        LakeCommand::Use {
            location: Some(text),
        } => {
            let data = &settings.data.dir;
            let location = if text == "default" {
                Location::Local(data.join("lake"))
            } else {
                Location::parse(&text).map_err(anyhow::Error::msg)?
            };
            let previous = Location::of_data_dir(data).ok();
            Location::record(data, &location)
                .with_context(|| format!("recording the lake location in {}", data.display()))?;
            // Reach it now, so a wrong bucket or credential shows here and not at night.
            let lake = Lake::in_data_dir(data);
            if let Err(e) = lake.partitions(lantern::lake::Table::Outcomes) {
                if let Some(previous) = previous {
                    let _ = Location::record(data, &previous);
                }
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot reach {location}; the lake location is unchanged"
                )));
            }
            // Where the people's data lives is itself a fact the audit keeps.
            let mut record = lantern::audit::AuditRecord::new("lake_location");
            record.detail = serde_json::json!({
                "from": previous.map(|p| p.to_string()),
                "to": location.to_string(),
            });
            lantern::audit::append(data, record)?;
            println!("The lake of {} is now {}", data.display(), lake.location());
            Ok(())
        }
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
