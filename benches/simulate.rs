//! Simulator throughput: households (and the signals they produce) per second, written to disk.
//!
//! Run: `cargo bench --bench simulate`. Figures go to docs/BENCHMARKS.md.

use lantern::registry::Registry;
use lantern::sim::{self, SimParams};

fn main() {
    divan::main();
}

/// 10,000 households over 24 months, streamed to a temporary folder.
#[divan::bench(sample_count = 5)]
fn households_10k_24_months(bencher: divan::Bencher) {
    let registry = Registry::embedded();
    let dir = tempfile::tempdir().unwrap();
    bencher
        .counter(divan::counter::ItemsCount::new(10_000u64))
        .bench_local(|| {
            sim::simulate(
                &SimParams::new(10_000, 24, 7),
                &registry,
                dir.path(),
                &indicatif::ProgressBar::hidden(),
            )
            .unwrap()
        });
}
