//! # Lantern
//!
//! Lantern finds households in crisis before they fall through the cracks. Agencies send crisis
//! signals (unpaid bills, cut-offs, council reports, lapsed benefits); every night Lantern ranks
//! households by risk and gives each district (시군구) a short, explained referral list sized to
//! what its caseworkers can handle. Visit outcomes come back as labels.
//!
//! The pipeline, stage by stage (each a module):
//!
//! ```text
//!  sources                 transforms                          sinks
//!  ───────                 ──────────                          ─────
//!  Kafka signal topics ─┐                                   ┌─ Parquet lake (by kind, month)
//!  NDJSON backfills ────┼─ ingest: validate → pseudonymize ─┤
//!  case-outcomes ───────┘          → deduplicate            └─ dead-letter sink (with reason)
//!
//!  lake ─ features (DataFusion SQL, as of a date) ─ model (score + reasons) ─ screen
//!                                                                              │
//!           case-intake topic, per-district CSV / Parquet / HTML, audit log ◄─┘
//! ```
//!
//! - [`contract`]: the interface contract (`SPEC.md`) as types, and the validator every record
//!   passes before anything else sees it.
//! - [`registry`]: the 229 districts and their nightly capacity.
//! - [`config`]: layered settings (embedded defaults, `--config FILE`, `LANTERN__*`).
//! - [`ingest`]: Kafka and NDJSON sources into the lake, with the dead-letter sink.
//! - [`lake`]: the Parquet lake: layout, atomic writes, deduplication by key, compaction.
//! - [`pseudonym`]: keyed HMAC pseudonyms for source-side identifiers.
//! - [`kafka`]: client settings shared by every producer and consumer.
//! - [`sim`]: a seeded synthetic population with a latent crisis process, for the demo, tests
//!   and back-tests.
//! - [`screen`]: scores, exclusions, overrides and capacity: a night's ranked lists.
//! - [`night`]: the night composed: screen, write the lists, audit, publish (one list per
//!   district per night; drafts for dry runs).
//! - [`audit`]: the append-only, hash-chained, anchored audit log.
//! - [`privacy`]: retention periods and the erasure of one household.
//! - [`fairness`]: the fairness audit (rates by group, ratios with intervals), for the
//!   back-test and every night.
//! - [`clock`]: the ingest day, in the agencies' time zone.
//! - [`faults`]: named crash points for the crash tests.
//! - [`logging`]: `tracing` setup, plain or JSON.
//! - [`phases`]: wall time by phase of a night, for the log and the benchmarks.
//! - [`engine`]: where the DataFusion plans run: this process, or a Ballista cluster
//!   (`cluster`, cargo feature `ballista`: Lantern's codec and the scheduler and executor roles).

/// The interface contract and the district registry, from the `lantern-contract` crate: every
/// stage speaks these types (`crate::contract::…`, `crate::registry::…`).
pub use lantern_contract::{contract, registry};

pub mod audit;
pub mod clock;
#[cfg(feature = "ballista")]
pub mod cluster;
pub mod config;
pub mod engine;
pub mod eval;
pub mod fairness;
pub mod faults;
pub mod features;
pub mod ingest;
pub mod intake;
pub mod kafka;
pub mod lake;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod night;
pub mod phases;
pub mod privacy;
pub mod progress;
pub mod pseudonym;
pub mod screen;
pub mod sim;
pub mod stats;
pub mod status;
pub mod templates;
