//! Calibration: turning a raw score into a probability that a visit confirms a crisis.
//!
//! Platt scaling fits `p = sigmoid(a * raw + b)` on held-out rows, later in time than the rows
//! the model was fitted on, so the probabilities hold for the referrals the model will see next
//! rather than for the ones it memorised. Two parameters cannot overfit a few hundred labels,
//! which isotonic regression can.

use serde::{Deserialize, Serialize};

/// `p = sigmoid(a * raw + b)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Platt {
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    pub fn apply(&self, raw: f64) -> f64 {
        sigmoid(self.a * raw + self.b)
    }

    /// Out-of-fold calibrated probabilities for measuring a model: the rows are split into two
    /// folds (even and odd positions), each fold's probabilities come from a Platt fitted on
    /// the other fold only. So no row that reports a metric calibrated its own probability
    /// (measuring on the rows Platt was fitted on flatters the Brier score and the reliability
    /// table). The model itself is calibrated on all rows.
    pub fn cross_fitted(raw: &[f64], y: &[u8]) -> Vec<f64> {
        let fold = |k: usize| -> (Vec<f64>, Vec<u8>) {
            raw.iter()
                .zip(y)
                .enumerate()
                .filter(|(i, _)| i % 2 == k)
                .map(|(_, (&r, &l))| (r, l))
                .unzip()
        };
        let (even, odd) = (fold(0), fold(1));
        let on_even = Platt::fit(&odd.0, &odd.1);
        let on_odd = Platt::fit(&even.0, &even.1);
        raw.iter()
            .enumerate()
            .map(|(i, &r)| {
                if i % 2 == 0 {
                    on_even.apply(r)
                } else {
                    on_odd.apply(r)
                }
            })
            .collect()
    }

    /// Fits by Newton's method on the log loss, with Platt's smoothed targets
    /// (`(n₊+1)/(n₊+2)` and `1/(n₋+2)`) so that a perfectly separated hold-out does not
    /// produce certainties.
    pub fn fit(raw: &[f64], y: &[u8]) -> Platt {
        let pos = y.iter().filter(|&&v| v == 1).count() as f64;
        let neg = y.len() as f64 - pos;
        if pos == 0.0 || neg == 0.0 {
            // Nothing to learn a slope from: keep the ranking, match the base rate.
            let rate = (pos + 1.0) / (y.len() as f64 + 2.0);
            return Platt {
                a: 0.0,
                b: (rate / (1.0 - rate)).ln(),
            };
        }
        let hi = (pos + 1.0) / (pos + 2.0);
        let lo = 1.0 / (neg + 2.0);
        let t: Vec<f64> = y.iter().map(|&v| if v == 1 { hi } else { lo }).collect();
        let (mut a, mut b) = (1.0, ((pos + 1.0) / (neg + 1.0)).ln());
        for _ in 0..100 {
            let (mut g_a, mut g_b, mut h_aa, mut h_ab, mut h_bb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
            for (&x, &t) in raw.iter().zip(&t) {
                let p = sigmoid(a * x + b);
                let d = p - t;
                let w = (p * (1.0 - p)).max(1e-12);
                g_a += d * x;
                g_b += d;
                h_aa += w * x * x;
                h_ab += w * x;
                h_bb += w;
            }
            let det = h_aa * h_bb - h_ab * h_ab;
            if det.abs() < 1e-15 {
                break;
            }
            let da = (h_bb * g_a - h_ab * g_b) / det;
            let db = (h_aa * g_b - h_ab * g_a) / det;
            a -= da;
            b -= db;
            if da.abs() < 1e-10 && db.abs() < 1e-10 {
                break;
            }
        }
        if a < 0.0 || !a.is_finite() || !b.is_finite() {
            // A model that ranks the held-out rows backwards must not have its ranking
            // silently reversed: it gets a flat score at the base rate, and its held-out
            // metrics show it is useless.
            let rate = (pos + 1.0) / (y.len() as f64 + 2.0);
            return Platt {
                a: 0.0,
                b: (rate / (1.0 - rate)).ln(),
            };
        }
        Platt { a, b }
    }
}

/// One row of a reliability table: predictions in `[lower, upper)`, how many, their mean, and
/// how often the visit confirmed a crisis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// A ten-bin reliability table (bins with no predictions are left out).
pub fn reliability(p: &[f64], y: &[u8]) -> Vec<ReliabilityBin> {
    let mut sums = [(0usize, 0.0f64, 0usize); 10];
    for (&p, &y) in p.iter().zip(y) {
        let k = ((p * 10.0) as usize).min(9);
        sums[k].0 += 1;
        sums[k].1 += p;
        sums[k].2 += y as usize;
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(k, &(n, sp, sy))| ReliabilityBin {
            lower: k as f64 / 10.0,
            upper: (k + 1) as f64 / 10.0,
            count: n,
            mean_predicted: sp / n as f64,
            observed_rate: sy as f64 / n as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_slope_and_offset() {
        // Labels drawn (deterministically, by quantile) from p = sigmoid(2x - 1).
        let mut raw = Vec::new();
        let mut y = Vec::new();
        for i in 0..2000 {
            let x = (i % 200) as f64 / 50.0 - 2.0;
            let p = sigmoid(2.0 * x - 1.0);
            raw.push(x);
            y.push(u8::from(((i / 200) as f64 + 0.5) / 10.0 < p));
        }
        let c = Platt::fit(&raw, &y);
        assert!((c.a - 2.0).abs() < 0.4 && (c.b + 1.0).abs() < 0.3, "{c:?}");
    }

    #[test]
    fn a_calibrated_score_matches_observed_rates() {
        let p: Vec<f64> = (0..1000).map(|i| (i % 10) as f64 / 10.0 + 0.05).collect();
        let y: Vec<u8> = (0..1000)
            .map(|i| u8::from(((i / 10) % 10) as f64 / 10.0 < (i % 10) as f64 / 10.0 + 0.05))
            .collect();
        let table = reliability(&p, &y);
        assert_eq!(table.len(), 10);
        for bin in table {
            assert!(
                (bin.mean_predicted - bin.observed_rate).abs() <= 0.051,
                "{bin:?}"
            );
        }
    }

    /// Issue 15.3: a metric row never calibrates its own probability. Flipping the labels of
    /// the even rows leaves the even rows' out-of-fold probabilities unchanged (they come from
    /// a Platt fitted on the odd rows), and changes the odd rows'.
    #[test]
    fn cross_fitted_probabilities_do_not_depend_on_their_own_labels() {
        let raw: Vec<f64> = (0..40).map(|i| (i as f64 - 20.0) / 5.0).collect();
        let y: Vec<u8> = (0..40).map(|i| u8::from(i % 3 == 0 || i > 25)).collect();
        let flipped: Vec<u8> = y
            .iter()
            .enumerate()
            .map(|(i, &l)| if i % 2 == 0 { 1 - l } else { l })
            .collect();
        let a = Platt::cross_fitted(&raw, &y);
        let b = Platt::cross_fitted(&raw, &flipped);
        for i in (0..40).step_by(2) {
            assert_eq!(a[i], b[i], "row {i} depends on its own label");
        }
        assert!((1..40).step_by(2).any(|i| a[i] != b[i]));
    }
}
