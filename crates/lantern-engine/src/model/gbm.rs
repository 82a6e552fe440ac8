//! Gradient-boosted decision trees for a binary label, with per-feature path contributions.
//!
//! linfa 0.8 has trees, random forests and AdaBoost, but no gradient boosting, and its
//! ensembles give neither probabilities nor serde. Boosted trees rank tabular data of this
//! kind best, and a caseworker needs each referral explained, so this is a small, plain
//! implementation of the standard algorithm (second-order boosting of the log loss, as in
//! XGBoost/LightGBM):
//!
//! - each feature is cut into at most [`MAX_BINS`] quantile bins once, so finding a split is a
//!   histogram scan, not a sort; of two sibling nodes only the smaller is scanned, the other's
//!   histogram is its parent's minus the sibling's;
//! - trees grow level by level to `depth`, a split must gain more than zero and leave at least
//!   `min_child_weight` of hessian on each side, leaves are shrunk by `lambda` and the learning rate;
//! - rows and features are subsampled per tree with a seeded generator, so a fit is reproducible;
//! - every row may carry a weight (it scales the row's gradient and hessian), which is how
//!   down-weighted inferred negatives and inverse-propensity weighted outcomes enter a fit;
//! - a feature may be monotone (more months overdue never lowers the score): a split against
//!   the constraint is refused and the leaves below a constrained split are bounded by its
//!   midpoint, as XGBoost and LightGBM do;
//! - the log loss on validation rows is tracked tree by tree, so the caller can stop early
//!   ([`best_size`]) and refit at the chosen size.
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

    /// Fits on `x` (row-major, `width` columns) and 0/1 labels, every row weighing the same
    /// and no feature constrained.
    pub fn fit(x: &[f32], width: usize, y: &[u8], params: &GbmParams) -> Gbm {
        Gbm::fit_with(x, width, y, &FitOptions::default(), params).0
    }

    /// Fits with per-row weights and per-feature monotone constraints, growing up to
    /// `params.trees` trees. With `opts.validation`, also returns the weighted log loss on those
    /// rows after each tree (entry `k` is the loss of the first `k + 1` trees), from which
    /// [`best_size`] picks where to stop (and, with `opts.patience`, stops growing early).
    pub fn fit_with(
        x: &[f32],
        width: usize,
        y: &[u8],
        opts: &FitOptions<'_>,
        params: &GbmParams,
    ) -> (Gbm, Vec<f64>) {
        let n = y.len();
        assert_eq!(x.len(), n * width, "feature matrix shape");
        let weight = |i: usize| opts.weights.get(i).copied().unwrap_or(1.0);
        assert!(
            opts.weights.is_empty() || opts.weights.len() == n,
            "one weight per row"
        );
        assert!(
            opts.monotone.is_empty() || opts.monotone.len() == width,
            "one constraint per feature"
        );
        let (mut pos, mut total) = (0.0, 0.0);
        for (i, &label) in y.iter().enumerate() {
            pos += weight(i) * label as f64;
            total += weight(i);
        }
        let prior = ((pos + 0.5) / (total + 1.0)).clamp(1e-6, 1.0 - 1e-6);
        let base = (prior / (1.0 - prior)).ln();
        let binned = Binned::new(x, width, n);
        let has_nan = x.iter().any(|v| v.is_nan());
        let mut raw = vec![base; n];
        let mut valid_raw = opts.validation.map(|(_, vy)| vec![base; vy.len()]);
        let mut valid_loss = Vec::new();
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let mut trees = Vec::with_capacity(params.trees);
        // Each row's gradient and hessian side by side: a histogram reads both at once.
        let mut gh = vec![[0.0f64; 2]; n];
        for _ in 0..params.trees {
            par_each(&mut gh, |i, v| {
                let p = 1.0 / (1.0 + (-raw[i]).exp());
                let w = weight(i);
                *v = [w * (p - y[i] as f64), (w * p * (1.0 - p)).max(1e-12)];
            });
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
            let (tree, leaves) = grow(&binned, &gh, rows, &cols, opts.monotone, params);
            // The rows the tree was grown on are already sorted into its leaves (by their bins,
            // which send a row the way its value does, NaN aside); the others walk the tree.
            let mut reached = Vec::new();
            if !has_nan {
                reached = vec![f64::NAN; n];
                for (leaf, rows) in &leaves {
                    for &i in rows {
                        reached[i as usize] = tree.nodes[*leaf].value;
                    }
                }
            }
            par_each(&mut raw, |i, r| {
                *r += match reached.get(i) {
                    Some(v) if !v.is_nan() => *v,
                    _ => tree.leaf_path(&x[i * width..(i + 1) * width], |_, _| {}),
                };
            });
            if let (Some((vx, vy)), Some(vr)) = (opts.validation, valid_raw.as_mut()) {
                par_each(vr, |i, r| {
                    *r += tree.leaf_path(&vx[i * width..(i + 1) * width], |_, _| {});
                });
                valid_loss.push(log_loss(vr, vy, opts.validation_weights));
            }
            trees.push(tree);
            // No point growing trees early stopping will cut off.
            if opts.patience > 0
                && best_size(&valid_loss, opts.patience) + opts.patience <= valid_loss.len()
            {
                break;
            }
        }
        let model = Gbm {
            base,
            trees,
            params: params.clone(),
        };
        (model, valid_loss)
    }
}

/// What a fit may be given beyond its rows and labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct FitOptions<'a> {
    /// A weight per row (empty: all 1). A row of weight 0.3 counts as 0.3 of a row in every
    /// gradient, hessian and split: how down-weighted inferred negatives and inverse-propensity
    /// weighted outcomes enter the fit.
    pub weights: &'a [f64],
    /// Per feature: `1` the score never falls as the feature rises, `-1` it never rises, `0`
    /// free (empty: all free). Enforced in every tree by rejecting splits that go the wrong way
    /// and bounding the leaves below them, so the sum of trees is monotone too.
    pub monotone: &'a [i8],
    /// Rows (row-major, same width) and labels to measure the log loss on after each tree.
    pub validation: Option<(&'a [f32], &'a [u8])>,
    /// Weights of the validation rows (empty: all 1).
    pub validation_weights: &'a [f64],
    /// With `validation`: stop growing once this many trees in a row have not improved the
    /// validation loss (0: grow all `trees`).
    pub patience: usize,
}

/// Weighted mean log loss of raw scores (log-odds) against 0/1 labels.
fn log_loss(raw: &[f64], y: &[u8], w: &[f64]) -> f64 {
    let (mut loss, mut total) = (0.0, 0.0);
    for (i, (&r, &label)) in raw.iter().zip(y).enumerate() {
        let wi = w.get(i).copied().unwrap_or(1.0);
        // log(1 + e^-r) for a positive, log(1 + e^r) for a negative, computed stably.
        let z = if label == 1 { -r } else { r };
        loss += wi * (z.max(0.0) + (-z.abs()).exp().ln_1p());
        total += wi;
    }
    if total > 0.0 {
        loss / total
    } else {
        0.0
    }
}

/// Sets every element of `items` with `f(index, element)` on all cores, in contiguous chunks.
/// Each element is computed on its own, so the result does not depend on the thread count.
fn par_each<T: Send>(items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if threads == 1 || items.len() < 20_000 {
        items.iter_mut().enumerate().for_each(|(i, t)| f(i, t));
        return;
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        for (c, part) in items.chunks_mut(chunk).enumerate() {
            s.spawn(move || {
                for (j, t) in part.iter_mut().enumerate() {
                    f(c * chunk + j, t);
                }
            });
        }
    });
}

/// Early stopping: the number of trees with the lowest validation loss, stopping the search
/// once `patience` further trees have not improved on it. At least one tree.
pub fn best_size(valid_loss: &[f64], patience: usize) -> usize {
    let mut best = (f64::INFINITY, 0usize);
    for (k, &loss) in valid_loss.iter().enumerate() {
        if loss < best.0 - 1e-12 {
            best = (loss, k);
        } else if k - best.1 >= patience.max(1) {
            break;
        }
    }
    best.1 + 1
}

/// Features cut into quantile bins, stored row by row: a histogram reads each row's bins
/// together, once, with its gradient and hessian.
struct Binned {
    /// `bins[i * width + f]`: the bin of row `i` for feature `f`.
    bins: Vec<u8>,
    width: usize,
    /// `edges[f][b]`: the largest value in bin `b`; a split after bin `b` has that threshold.
    edges: Vec<Vec<f32>>,
}

impl Binned {
    fn new(x: &[f32], width: usize, n: usize) -> Binned {
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
            edges.push(e);
        }
        let mut bins = vec![0u8; n * width];
        par_each(&mut bins, |j, bin| {
            let e = &edges[j % width];
            *bin = e
                .partition_point(|&edge| edge < x[j])
                .min(e.len().saturating_sub(1)) as u8;
        });
        Binned { bins, width, edges }
    }

    fn bin(&self, row: usize, feature: usize) -> usize {
        self.bins[row * self.width + feature] as usize
    }
}

fn leaf_value(g: f64, h: f64, params: &GbmParams) -> f64 {
    -g / (h + params.lambda) * params.learning_rate
}

fn gain(g: f64, h: f64, lambda: f64) -> f64 {
    g * g / (h + lambda)
}

/// The range a node's value must stay in, set by monotone splits above it.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    lo: f64,
    hi: f64,
}

impl Bounds {
    const FREE: Bounds = Bounds {
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
    };

    fn clamp(self, v: f64) -> f64 {
        v.clamp(self.lo, self.hi)
    }
}

/// Gradient and hessian sums per bin of each searched feature (in the order of `cols`), for
/// one node's rows: what a split search reads. Entry `c * MAX_BINS + k` is bin `k` of
/// `cols[c]`.
struct Histogram {
    gh: Vec<[f64; 2]>,
}

/// Rows per block of a histogram. Blocks are summed in their order, so a histogram is the same
/// whatever the number of threads.
const HIST_BLOCK: usize = 8192;

impl Histogram {
    /// Scans `rows` once, each row's bins of every searched feature together: one read of its
    /// gradient and hessian, not one per feature. Blocks of rows are spread over the cores.
    fn of(b: &Binned, gh: &[[f64; 2]], rows: &[u32], cols: &[usize]) -> Histogram {
        let size = cols.len() * MAX_BINS;
        let block = |part: &[u32]| -> Vec<[f64; 2]> {
            let mut out = vec![[0.0f64; 2]; size];
            for &i in part {
                let i = i as usize;
                let [g, h] = gh[i];
                let row = &b.bins[i * b.width..(i + 1) * b.width];
                for (c, &f) in cols.iter().enumerate() {
                    let slot = &mut out[c * MAX_BINS + row[f] as usize];
                    slot[0] += g;
                    slot[1] += h;
                }
            }
            out
        };
        let blocks: Vec<&[u32]> = rows.chunks(HIST_BLOCK).collect();
        let mut total = vec![[0.0f64; 2]; size];
        for part in super::blocks_in_order(blocks.len(), |k| block(blocks[k])) {
            for (t, p) in total.iter_mut().zip(part) {
                t[0] += p[0];
                t[1] += p[1];
            }
        }
        Histogram { gh: total }
    }

    /// The sibling's histogram: the parent's minus this child's. The standard trick of
    /// histogram learners (LightGBM, XGBoost's `hist`): only the smaller child of a split is
    /// scanned, at most half the parent's rows.
    fn sibling_of(&self, parent: &Histogram) -> Histogram {
        Histogram {
            gh: parent
                .gh
                .iter()
                .zip(&self.gh)
                .map(|(p, c)| [p[0] - c[0], p[1] - c[1]])
                .collect(),
        }
    }
}

/// A node waiting to be split: its index, rows, gradient and hessian sums, bounds, and (for a
/// node that may still be split) its histogram.
struct Open {
    idx: usize,
    rows: Vec<u32>,
    g: f64,
    h: f64,
    bounds: Bounds,
    hist: Option<Histogram>,
}

fn grow(
    b: &Binned,
    gh: &[[f64; 2]],
    rows: Vec<u32>,
    cols: &[usize],
    monotone: &[i8],
    params: &GbmParams,
) -> (Tree, Vec<(usize, Vec<u32>)>) {
    let (g, h) = rows.iter().fold((0.0, 0.0), |(g, h), &i| {
        (g + gh[i as usize][0], h + gh[i as usize][1])
    });
    let leaf = |value: f64| Node {
        feature: None,
        threshold: 0.0,
        left: 0,
        right: 0,
        value,
    };
    let mut nodes = vec![leaf(leaf_value(g, h, params))];
    let hist = (params.depth > 0).then(|| Histogram::of(b, gh, &rows, cols));
    let mut frontier = vec![Open {
        idx: 0,
        rows,
        g,
        h,
        bounds: Bounds::FREE,
        hist,
    }];
    // Each leaf with the rows that reached it.
    let mut leaves = Vec::new();
    for level in 0..params.depth {
        // Children of the last level are leaves: no histogram is made for them.
        let last = level + 1 == params.depth;
        let mut next = Vec::new();
        for open in frontier {
            let Some(hist) = &open.hist else {
                leaves.push((open.idx, open.rows));
                continue;
            };
            let Some(split) = best_split(b, hist, &open, cols, monotone, params) else {
                leaves.push((open.idx, open.rows));
                continue;
            };
            let (left, right): (Vec<u32>, Vec<u32>) = open
                .rows
                .iter()
                .partition(|&&i| b.bin(i as usize, split.feature) <= split.bin);
            let (gl, hl) = (split.gl, split.hl);
            let (gr, hr) = (open.g - gl, open.h - hl);
            let (wl, wr) = (
                open.bounds.clamp(leaf_value(gl, hl, params)),
                open.bounds.clamp(leaf_value(gr, hr, params)),
            );
            // Below a monotone split, the left side stays at or under the midpoint and the
            // right side at or over it (the other way round for a falling constraint), so no
            // later split can undo the order.
            let mid = (wl + wr) / 2.0;
            let (lb, rb) = match monotone.get(split.feature).copied().unwrap_or(0) {
                c if c > 0 => (
                    Bounds {
                        hi: open.bounds.hi.min(mid),
                        ..open.bounds
                    },
                    Bounds {
                        lo: open.bounds.lo.max(mid),
                        ..open.bounds
                    },
                ),
                c if c < 0 => (
                    Bounds {
                        lo: open.bounds.lo.max(mid),
                        ..open.bounds
                    },
                    Bounds {
                        hi: open.bounds.hi.min(mid),
                        ..open.bounds
                    },
                ),
                _ => (open.bounds, open.bounds),
            };
            let (hist_l, hist_r) = if last {
                (None, None)
            } else if left.len() <= right.len() {
                let small = Histogram::of(b, gh, &left, cols);
                let big = small.sibling_of(hist);
                (Some(small), Some(big))
            } else {
                let small = Histogram::of(b, gh, &right, cols);
                let big = small.sibling_of(hist);
                (Some(big), Some(small))
            };
            let li = nodes.len();
            nodes.push(leaf(wl));
            nodes.push(leaf(wr));
            let node = &mut nodes[open.idx];
            node.feature = Some(split.feature);
            node.threshold = b.edges[split.feature][split.bin];
            node.left = li as u32;
            node.right = li as u32 + 1;
            next.push(Open {
                idx: li,
                rows: left,
                g: gl,
                h: hl,
                bounds: lb,
                hist: hist_l,
            });
            next.push(Open {
                idx: li + 1,
                rows: right,
                g: gr,
                h: hr,
                bounds: rb,
                hist: hist_r,
            });
        }
        frontier = next;
        if frontier.is_empty() {
            break;
        }
    }
    leaves.extend(frontier.into_iter().map(|open| (open.idx, open.rows)));
    (Tree { nodes }, leaves)
}

/// A chosen split: rows whose bin of `feature` is at most `bin` go left, with these sums.
#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    bin: usize,
    gl: f64,
    hl: f64,
}

/// The split of `open` that gains most, if any does, read from its histogram. A split on a
/// constrained feature whose two sides would go against the constraint is not a candidate.
/// Ties go to the lower feature index and then the lower bin.
fn best_split(
    b: &Binned,
    hist: &Histogram,
    open: &Open,
    cols: &[usize],
    monotone: &[i8],
    params: &GbmParams,
) -> Option<Split> {
    let (g, h) = (open.g, open.h);
    if h < 2.0 * params.min_child_weight {
        return None;
    }
    let parent = gain(g, h, params.lambda);
    let mut best: Option<Split> = None;
    for (c, &f) in cols.iter().enumerate() {
        let nb = b.edges[f].len();
        if nb < 2 {
            continue;
        }
        let constraint = monotone.get(f).copied().unwrap_or(0);
        let bins = &hist.gh[c * MAX_BINS..(c + 1) * MAX_BINS];
        let (mut gl, mut hl) = (0.0, 0.0);
        for (k, bin) in bins[..nb - 1].iter().enumerate() {
            gl += bin[0];
            hl += bin[1];
            let (gr, hr) = (g - gl, h - hl);
            if hl < params.min_child_weight || hr < params.min_child_weight {
                continue;
            }
            if constraint != 0 {
                let wl = open.bounds.clamp(leaf_value(gl, hl, params));
                let wr = open.bounds.clamp(leaf_value(gr, hr, params));
                if (constraint > 0 && wl > wr) || (constraint < 0 && wl < wr) {
                    continue;
                }
            }
            let gain = gain(gl, hl, params.lambda) + gain(gr, hr, params.lambda) - parent;
            if gain > 1e-9 && best.is_none_or(|b| gain > b.gain) {
                best = Some(Split {
                    gain,
                    feature: f,
                    bin: k,
                    gl,
                    hl,
                });
            }
        }
    }
    best
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

    /// Weights are real: rows of weight 0 are as if absent, so a fit on every row with the
    /// second half weighted out scores like a fit on the first half alone (the binning aside,
    /// which sees every row: the same model up to the thresholds it could pick), and weighted
    /// fully in, the flipped half cancels the signal out.
    #[test]
    fn a_row_of_weight_zero_is_as_if_absent() {
        let (x, y) = toy(2000, 4);
        let p = GbmParams {
            trees: 30,
            row_sample: 1.0,
            col_sample: 1.0,
            ..Default::default()
        };
        // Flip the labels of the second half: weighted out, they must not matter.
        let mut flipped = y.clone();
        for v in &mut flipped[1000..] {
            *v = 1 - *v;
        }
        let mut w = vec![1.0; 2000];
        w[1000..].iter_mut().for_each(|v| *v = 0.0);
        let opts = FitOptions {
            weights: &w,
            ..Default::default()
        };
        let weighted = Gbm::fit_with(&x, 3, &flipped, &opts, &p).0;
        let plain = Gbm::fit(&x[..3000], 3, &y[..1000], &p);
        let p = |r: f64| 1.0 / (1.0 + (-r).exp());
        for row in [[0.9f32, 0.5, 0.5], [0.1, 0.5, 0.5]] {
            assert!(
                (p(weighted.raw(&row)) - p(plain.raw(&row))).abs() < 0.05,
                "weight 0 rows moved the score: {} vs {}",
                p(weighted.raw(&row)),
                p(plain.raw(&row))
            );
        }
        // Weighted fully in, the flipped half cancels the step out.
        let flat = Gbm::fit(
            &x,
            3,
            &flipped,
            &GbmParams {
                trees: 30,
                ..Default::default()
            },
        );
        assert!((p(flat.raw(&[0.9, 0.5, 0.5])) - p(flat.raw(&[0.1, 0.5, 0.5]))).abs() < 0.2);
    }

    /// A rising constraint holds for every row: with the label falling in feature 0 over part
    /// of its range, the constrained model's score never falls as feature 0 rises, whatever
    /// the other features, while the free model's does.
    #[test]
    fn a_monotone_feature_never_lowers_the_score_as_it_rises() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..4000 {
            let a: f32 = rng.random_range(0.0..1.0);
            let b: f32 = rng.random_range(0.0..1.0);
            x.extend([a, b]);
            // Rises overall, but dips between 0.6 and 0.8, and interacts with b.
            let mut p = 0.1 + 0.7 * a as f64;
            if (0.6..0.8).contains(&a) {
                p -= 0.4;
            }
            if b > 0.5 {
                p += 0.1;
            }
            y.push(u8::from(rng.random_bool(p.clamp(0.01, 0.99))));
        }
        let params = GbmParams {
            trees: 60,
            ..Default::default()
        };
        let opts = FitOptions {
            monotone: &[1, 0],
            ..Default::default()
        };
        let constrained = Gbm::fit_with(&x, 2, &y, &opts, &params).0;
        let free = Gbm::fit(&x, 2, &y, &params);
        let falls = |m: &Gbm| {
            (0..20).any(|bi| {
                let b = bi as f32 / 20.0;
                (0..100).any(|k| {
                    let (lo, hi) = (k as f32 / 100.0, (k + 1) as f32 / 100.0);
                    m.raw(&[hi, b]) < m.raw(&[lo, b]) - 1e-12
                })
            })
        };
        assert!(falls(&free), "the free model should follow the dip");
        assert!(!falls(&constrained), "the constrained model fell somewhere");
        // Explanations still add up under constraints.
        for row in x.chunks(2).take(50) {
            let total = constrained.bias() + constrained.contributions(row).iter().sum::<f64>();
            assert!((total - constrained.raw(row)).abs() < 1e-9);
        }
    }

    /// Early stopping: the validation curve is measured tree by tree, and the chosen size is
    /// where it was lowest; with labels that are pure noise it stops after a handful of trees.
    #[test]
    fn early_stopping_picks_the_size_with_the_lowest_validation_loss() {
        assert_eq!(best_size(&[0.7, 0.6, 0.5, 0.55, 0.56, 0.57, 0.4], 3), 3);
        assert_eq!(best_size(&[0.7, 0.6, 0.5, 0.55, 0.56, 0.57, 0.4], 10), 7);
        assert_eq!(best_size(&[], 3), 1);
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let x: Vec<f32> = (0..6000).map(|_| rng.random_range(0.0..1.0)).collect();
        let y: Vec<u8> = (0..3000).map(|_| u8::from(rng.random_bool(0.3))).collect();
        let opts = FitOptions {
            validation: Some((&x[4000..], &y[2000..])),
            ..Default::default()
        };
        let params = GbmParams {
            trees: 100,
            ..Default::default()
        };
        let (_, curve) = Gbm::fit_with(&x[..4000], 2, &y[..2000], &opts, &params);
        assert_eq!(curve.len(), 100);
        let k = best_size(&curve, 20);
        assert!(k < 40, "noise should stop early, stopped at {k}");
        assert!(
            curve[..k].iter().all(|&l| l >= curve[k - 1]),
            "the chosen size is the lowest loss seen up to it"
        );
    }

    /// The subtraction trick is exact up to rounding: a child's histogram taken as its parent's
    /// minus its sibling's matches a direct scan of the child's rows, bin by bin.
    #[test]
    fn a_siblings_histogram_by_subtraction_matches_a_direct_scan() {
        let (x, y) = toy(3000, 7);
        let b = Binned::new(&x, 3, 3000);
        let gh: Vec<[f64; 2]> = (0..3000)
            .map(|i| [0.3 - y[i] as f64, 0.1 + (i % 7) as f64 * 0.01])
            .collect();
        let cols = [0usize, 2];
        let all: Vec<u32> = (0..3000).collect();
        let (left, right): (Vec<u32>, Vec<u32>) =
            all.iter().partition(|&&i| b.bin(i as usize, 0) < 20);
        assert!(!left.is_empty() && !right.is_empty());
        let parent = Histogram::of(&b, &gh, &all, &cols);
        let by_subtraction = Histogram::of(&b, &gh, &left, &cols).sibling_of(&parent);
        let direct = Histogram::of(&b, &gh, &right, &cols);
        for (a, d) in by_subtraction.gh.iter().zip(&direct.gh) {
            assert!(
                (a[0] - d[0]).abs() < 1e-9 && (a[1] - d[1]).abs() < 1e-9,
                "{a:?} vs {d:?}"
            );
        }
        assert!(
            direct.gh.iter().map(|v| v[1]).sum::<f64>() > 1.0,
            "the right child has rows to compare"
        );
    }

    /// The rows a tree was grown on are sorted into its leaves by their bins; that must be the
    /// leaf walking the tree by value reaches, or the training scores drift from the model's.
    #[test]
    fn the_leaves_a_tree_sorts_its_rows_into_are_where_the_rows_walk() {
        let (x, y) = toy(3000, 8);
        let b = Binned::new(&x, 3, 3000);
        let gh: Vec<[f64; 2]> = y.iter().map(|&l| [0.4 - l as f64, 0.24]).collect();
        let params = GbmParams {
            depth: 4,
            min_child_weight: 1.0,
            ..Default::default()
        };
        let (tree, leaves) = grow(&b, &gh, (0..3000).collect(), &[0, 1, 2], &[], &params);
        assert!(leaves.len() > 2, "the tree split");
        let mut seen = 0;
        for (leaf, rows) in &leaves {
            assert!(tree.nodes[*leaf].feature.is_none(), "a leaf");
            for &i in rows {
                let row = &x[i as usize * 3..(i as usize + 1) * 3];
                assert_eq!(tree.leaf_path(row, |_, _| {}), tree.nodes[*leaf].value);
                seen += 1;
            }
        }
        assert_eq!(seen, 3000, "every row in one leaf");
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
