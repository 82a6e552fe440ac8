//! # Lantern
//!
//! The `lantern` package: the command line (`src/main.rs`, a module per command under
//! `src/cli/`) and this library, which gathers the workspace's crates under one name so tests,
//! benchmarks and scripts write `lantern::ingest::…`, `lantern::contract::…`:
//!
//! - [`lantern_contract`] (`crates/lantern-contract`): the interface contract (SPEC.md) as
//!   types, the validator, reason codes, the resident-registration-number guard, the district
//!   registry. No query engine, no Kafka: an agency can vet its files with a small build.
//! - [`lantern_engine`] (`crates/lantern-engine`): the stages, from ingest to the night.

pub use lantern_engine::*;
