//! Model training at scale: 1,000,000 labelled rows of the real feature width (the catalogue
//! in pipelines/features.toml), synthetic values with a known latent risk. The baseline in the
//! same run is the rule, which learns nothing but its calibration, so the ratios show what
//! fitting the learned models costs on top of one pass over the data.
//!
//! Run: `cargo bench --bench train`. Figures go to docs/BENCHMARKS.md.

use chrono::{Days, NaiveDate};
use lantern::features::{FeatureBatch, FeatureSpec, Label, RowKey};
use lantern::model::train::{fit, TrainSettings, TrainingSet};
use lantern::model::Kind;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    divan::main();
}

/// `n` rows over ten referral nights, label rate about 35%, every feature a noisy count driven
/// by the same latent risk.
fn set(n: usize) -> (TrainingSet, FeatureSpec) {
    let spec = FeatureSpec::embedded();
    let width = spec.features.len();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let weights: Vec<f64> = (0..width).map(|_| rng.random_range(-0.5..1.5)).collect();
    let start = NaiveDate::from_ymd_opt(2025, 1, 31).unwrap();
    let mut values = Vec::with_capacity(n * width);
    let mut labels = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let z: f64 = rng.random_range(-2.0..2.0);
        for w in &weights {
            let v: f64 = (z * w + rng.random_range(-1.0..1.0)).max(0.0).floor();
            values.push(v as f32);
        }
        let p = 1.0 / (1.0 + (-(1.5 * z - 0.6)).exp());
        let as_of = start
            .checked_add_days(Days::new(60 * (i * 10 / n) as u64))
            .unwrap();
        labels.push(Label {
            household_id: format!("hh_{i}"),
            as_of,
            referral_id: format!("ref_{i}"),
            district_code: "11110".into(),
            decided_on: as_of,
            label: u8::from(rng.random_bool(p)),
        });
        keys.push(RowKey {
            household_id: format!("hh_{i}"),
            as_of,
            district_code: Some("11110".into()),
            dong_code: None,
            household_type: None,
            head_age_band: None,
        });
    }
    (
        TrainingSet {
            labels,
            features: FeatureBatch {
                keys,
                values,
                width,
            },
        },
        spec,
    )
}

#[divan::bench(args = [100_000, 1_000_000], sample_count = 1, sample_size = 1)]
fn train(bencher: divan::Bencher, rows: usize) {
    let (data, spec) = set(rows);
    let as_of = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    for kind in [Kind::Rule, Kind::Logistic] {
        let started = std::time::Instant::now();
        let m = fit(kind, &data, &spec, &TrainSettings::default(), as_of, 1).unwrap();
        eprintln!(
            "{rows} rows, {}: {:.1}s, held-out ROC-AUC {:.3}",
            kind.name(),
            started.elapsed().as_secs_f64(),
            m.metrics.roc_auc
        );
    }
    // divan's own figure: the tree model alone.
    bencher.bench(|| {
        fit(
            Kind::Trees,
            &data,
            &spec,
            &TrainSettings::default(),
            as_of,
            1,
        )
        .unwrap()
    });
}
