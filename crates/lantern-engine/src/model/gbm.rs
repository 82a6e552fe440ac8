//! Gradient-boosted decision trees for a binary label, with per-feature path contributions.
//!
//! linfa 0.8 has trees, random forests and AdaBoost, but no gradient boosting, and its
//! ensembles give neither probabilities nor serde. Boosted trees rank tabular data of this
//! kind best, and a caseworker needs each referral explained, so this is a small, plain
//! implementation of the standard algorithm (second-order boosting of the log loss, as in
//! XGBoost/LightGBM):
//!
//! - each feature is cut into at most [`MAX_BINS`] quantile bins once, so finding a split is a
//!   histogram scan, not a sort;
//! - trees grow level by level to `depth`, a split must gain more than zero and leave at least
//!   `min_child_weight` of hessian on each side, leaves are shrunk by `lambda` and the learning rate;
//! - rows and features are subsampled per tree with a seeded generator, so a fit is reproducible.
//!
//! **Explanations.** Every node keeps the value it would have as a leaf. Walking a row's path,
//! the change in value at each split is credited to the split's feature (Saabas path
//! contributions); the contributions of all trees plus the base score add up exactly to the
//! row's raw score.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The most bins a feature is cut into.
pub const MAX_BINS: usize = 64;

pub use crate::config::GbmParams;

/// A node: a split (`feature`, go left when `x <= threshold`) or a leaf (`feature` is `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: Option<usize>,
    pub threshold: f32,
    pub left: u32,
    pub right: u32,
    /// What the tree would add if it stopped here.
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    fn leaf_path(&self, row: &[f32], mut visit: impl FnMut(usize, f64)) -> f64 {
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            let Some(f) = node.feature else {
                return node.value;
            };
            let next = if row[f] <= node.threshold {
                node.left
            } else {
                node.right
            } as usize;
            visit(f, self.nodes[next].value - node.value);
            i = next;
        }
    }
}

/// A fitted model: `raw = base + Σ trees`, a log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbm {
    pub base: f64,
    pub trees: Vec<Tree>,
    pub params: GbmParams,
}

impl Gbm {
    pub fn raw(&self, row: &[f32]) -> f64 {
        self.base
            + self
                .trees
                .iter()
                .map(|t| t.leaf_path(row, |_, _| {}))
                .sum::<f64>()
    }

    /// Per-feature contributions to [`Gbm::raw`] (which equals `base + Σ contributions`).
    pub fn contributions(&self, row: &[f32]) -> Vec<f64> {
        let mut out = vec![0.0; row.len()];
        for t in &self.trees {
            // The root's value belongs to the bias; each split credits its change to its feature.
            t.leaf_path(row, |f, d| out[f] += d);
        }
        out
    }

    /// The constant part of [`Gbm::raw`] (base plus every tree's root value).
    pub fn bias(&self) -> f64 {
        self.base + self.trees.iter().map(|t| t.nodes[0].value).sum::<f64>()
    }

    /// Fits on `x` (row-major, `width` columns) and 0/1 labels.
    pub fn fit(x: &[f32], width: usize, y: &[u8], params: &GbmParams) -> Gbm {
        let n = y.len();
        assert_eq!(x.len(), n * width, "feature matrix shape");
        let positives = y.iter().filter(|&&v| v == 1).count() as f64;
        let prior = ((positives + 0.5) / (n as f64 + 1.0)).clamp(1e-6, 1.0 - 1e-6);
        let base = (prior / (1.0 - prior)).ln();
        let binned = Binned::new(x, width, n);
        let mut raw = vec![base; n];
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let mut trees = Vec::with_capacity(params.trees);
        let mut grad = vec![0.0f64; n];
        let mut hess = vec![0.0f64; n];
        for _ in 0..params.trees {
            for i in 0..n {
                let p = 1.0 / (1.0 + (-raw[i]).exp());
                grad[i] = p - y[i] as f64;
                hess[i] = (p * (1.0 - p)).max(1e-12);
            }
            let rows: Vec<u32> = if params.row_sample < 1.0 {
                let k = ((n as f64 * params.row_sample).ceil() as usize).clamp(1, n);
                let mut r: Vec<u32> = sample(&mut rng, n, k)
                    .into_iter()
                    .map(|i| i as u32)
                    .collect();
                r.sort_unstable();
                r
            } else {
                (0..n as u32).collect()
            };
            let cols: Vec<usize> = if params.col_sample < 1.0 {
                let k = ((width as f64 * params.col_sample).ceil() as usize).clamp(1, width);
                let mut c = sample(&mut rng, width, k).into_vec();
                c.sort_unstable();
                c
            } else {
                (0..width).collect()
            };
            let tree = grow(&binned, &grad, &hess, rows, &cols, params);
            for (i, r) in raw.iter_mut().enumerate() {
                *r += tree.leaf_path(&x[i * width..(i + 1) * width], |_, _| {});
            }
            trees.push(tree);
        }
        Gbm {
            base,
            trees,
            params: params.clone(),
        }
    }
}

/// Features cut into quantile bins, stored column by column.
struct Binned {
    /// `bins[f][i]`: the bin of row `i` for feature `f`.
    bins: Vec<Vec<u8>>,
    /// `edges[f][b]`: the largest value in bin `b`; a split after bin `b` has that threshold.
    edges: Vec<Vec<f32>>,
}

impl Binned {
    fn new(x: &[f32], width: usize, n: usize) -> Binned {
        let mut bins = Vec::with_capacity(width);
        let mut edges = Vec::with_capacity(width);
        // Quantiles from a sample keep binning linear in n.
        let step = (n / 50_000).max(1);
        for f in 0..width {
            let mut sample: Vec<f32> = (0..n).step_by(step).map(|i| x[i * width + f]).collect();
            sample.sort_by(|a, b| a.total_cmp(b));
            sample.dedup();
            let e: Vec<f32> = if sample.len() <= MAX_BINS {
                sample
            } else {
                let mut e: Vec<f32> = (1..=MAX_BINS)
                    .map(|k| sample[(k * sample.len() / MAX_BINS).min(sample.len()) - 1])
                    .collect();
                e.dedup();
                e
            };
            let col: Vec<u8> = (0..n)
                .map(|i| {
                    let v = x[i * width + f];
                    e.partition_point(|&edge| edge < v)
                        .min(e.len().saturating_sub(1)) as u8
                })
                .collect();
            bins.push(col);
            edges.push(e);
        }
        Binned { bins, edges }
    }
}

fn leaf_value(g: f64, h: f64, params: &GbmParams) -> f64 {
    -g / (h + params.lambda) * params.learning_rate
}

fn gain(g: f64, h: f64, lambda: f64) -> f64 {
    g * g / (h + lambda)
}

fn grow(
    b: &Binned,
    grad: &[f64],
    hess: &[f64],
    rows: Vec<u32>,
    cols: &[usize],
    params: &GbmParams,
) -> Tree {
    let (g, h) = rows.iter().fold((0.0, 0.0), |(g, h), &i| {
        (g + grad[i as usize], h + hess[i as usize])
    });
    let mut nodes = vec![Node {
        feature: None,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: leaf_value(g, h, params),
    }];
    // (node index, its rows, grad sum, hess sum)
    let mut frontier = vec![(0usize, rows, g, h)];
    for _ in 0..params.depth {
        let mut next = Vec::new();
        for (idx, rows, g, h) in frontier {
            let Some((f, bin, gl, hl)) = best_split(b, grad, hess, &rows, cols, g, h, params)
            else {
                continue;
            };
            let col = &b.bins[f];
            let (left, right): (Vec<u32>, Vec<u32>) =
                rows.iter().partition(|&&i| col[i as usize] as usize <= bin);
            let (gr, hr) = (g - gl, h - hl);
            let li = nodes.len();
            nodes.push(Node {
                feature: None,
                threshold: 0.0,
                left: 0,
                right: 0,
                value: leaf_value(gl, hl, params),
            });
            nodes.push(Node {
                feature: None,
                threshold: 0.0,
                left: 0,
                right: 0,
                value: leaf_value(gr, hr, params),
            });
            let node = &mut nodes[idx];
            node.feature = Some(f);
            node.threshold = b.edges[f][bin];
            node.left = li as u32;
            node.right = li as u32 + 1;
            next.push((li, left, gl, hl));
            next.push((li + 1, right, gr, hr));
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Tree { nodes }
}

/// The best (feature, last bin going left, left grad sum, left hess sum), if any split gains.
#[allow(clippy::too_many_arguments)]
fn best_split(
    b: &Binned,
    grad: &[f64],
    hess: &[f64],
    rows: &[u32],
    cols: &[usize],
    g: f64,
    h: f64,
    params: &GbmParams,
) -> Option<(usize, usize, f64, f64)> {
    if h < 2.0 * params.min_child_weight {
        return None;
    }
    let parent = gain(g, h, params.lambda);
    let search = |f: usize| -> Option<(f64, usize, usize, f64, f64)> {
        let nb = b.edges[f].len();
        if nb < 2 {
            return None;
        }
        let mut hg = [0.0f64; MAX_BINS];
        let mut hh = [0.0f64; MAX_BINS];
        let col = &b.bins[f];
        for &i in rows {
            let k = col[i as usize] as usize;
            hg[k] += grad[i as usize];
            hh[k] += hess[i as usize];
        }
        let mut best: Option<(f64, usize, usize, f64, f64)> = None;
        let (mut gl, mut hl) = (0.0, 0.0);
        for k in 0..nb - 1 {
            gl += hg[k];
            hl += hh[k];
            let (gr, hr) = (g - gl, h - hl);
            if hl < params.min_child_weight || hr < params.min_child_weight {
                continue;
            }
            let gain = gain(gl, hl, params.lambda) + gain(gr, hr, params.lambda) - parent;
            if gain > 1e-9 && best.is_none_or(|b| gain > b.0) {
                best = Some((gain, f, k, gl, hl));
            }
        }
        best
    };
    // Features are searched on all cores; ties go to the lower feature index, so the result
    // does not depend on thread timing.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(cols.len().max(1));
    let chunk = cols.len().div_ceil(threads).max(1);
    let results: Vec<Option<(f64, usize, usize, f64, f64)>> = if rows.len() * cols.len() < 200_000
        || threads == 1
    {
        cols.iter().map(|&f| search(f)).collect()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = cols
                .chunks(chunk)
                .map(|part| s.spawn(move || part.iter().map(|&f| search(f)).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("split search thread"))
                .collect()
        })
    };
    results
        .into_iter()
        .flatten()
        .fold(
            None,
            |best: Option<(f64, usize, usize, f64, f64)>, c| match best {
                Some(b) if b.0 >= c.0 => Some(b),
                _ => Some(c),
            },
        )
        .map(|(_, f, k, gl, hl)| (f, k, gl, hl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn toy(n: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a: f32 = rng.random_range(0.0..1.0);
            let b: f32 = rng.random_range(0.0..1.0);
            let noise: f32 = rng.random_range(0.0..1.0);
            x.extend([a, b, noise]);
            // Only feature 0 matters, with a step at 0.5.
            let p = if a > 0.5 { 0.9 } else { 0.1 };
            y.push(u8::from(rng.random_bool(p)));
        }
        (x, y)
    }

    #[test]
    fn learns_a_step_and_credits_the_feature_that_matters() {
        let (x, y) = toy(4000, 1);
        let m = Gbm::fit(
            &x,
            3,
            &y,
            &GbmParams {
                trees: 40,
                ..Default::default()
            },
        );
        let hi = m.raw(&[0.9, 0.5, 0.5]);
        let lo = m.raw(&[0.1, 0.5, 0.5]);
        let p = |r: f64| 1.0 / (1.0 + (-r).exp());
        assert!(
            p(hi) > 0.8 && p(lo) < 0.2,
            "p(hi)={} p(lo)={}",
            p(hi),
            p(lo)
        );
        let c = m.contributions(&[0.9, 0.5, 0.5]);
        assert!(c[0] > 5.0 * c[1].abs() && c[0] > 5.0 * c[2].abs(), "{c:?}");
    }

    #[test]
    fn contributions_add_up_to_the_raw_score() {
        let (x, y) = toy(2000, 2);
        let m = Gbm::fit(
            &x,
            3,
            &y,
            &GbmParams {
                trees: 20,
                ..Default::default()
            },
        );
        for row in x.chunks(3).take(50) {
            let total = m.bias() + m.contributions(row).iter().sum::<f64>();
            assert!((total - m.raw(row)).abs() < 1e-9);
        }
    }

    #[test]
    fn the_same_seed_fits_the_same_model() {
        let (x, y) = toy(1000, 3);
        let p = GbmParams {
            trees: 10,
            ..Default::default()
        };
        assert_eq!(Gbm::fit(&x, 3, &y, &p), Gbm::fit(&x, 3, &y, &p));
    }
}
