//! L2-penalised logistic regression with per-row weights, fitted by Newton's method.
//!
//! Lantern needs weights in every model (down-weighted inferred negatives, inverse-propensity
//! weighted outcomes), and linfa-logistic has none. With a few hundred standardized features
//! the exact Newton step is cheap (one `d × d` system per iteration, `d` the feature count
//! plus one) and converges in a handful of iterations, so this is a small, dependency-free
//! implementation of the textbook method:
//!
//! minimise `Σ wᵢ · logloss(yᵢ, β₀ + xᵢ·β) + α/2 · ‖β‖²` (the intercept is not penalised),
//!
//! each step solving `H d = −g` by Cholesky and halving it until the objective falls.

/// A fitted model on standardized inputs: `raw = intercept + Σ coef · z`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub coef: Vec<f64>,
    pub intercept: f64,
    /// Newton iterations taken.
    pub iterations: usize,
}

/// Why a fit failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LogisticError {
    #[error("no rows to fit on")]
    Empty,
    #[error("the Newton system is singular (a penalty of 0 with collinear features?)")]
    Singular,
    #[error("the fit did not converge in {0} iterations")]
    NoConvergence(usize),
}

const MAX_ITERATIONS: usize = 100;

fn sigmoid(r: f64) -> f64 {
    1.0 / (1.0 + (-r).exp())
}

/// `log(1 + e^z)`, computed stably.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// Fits on `z` (row-major, `width` standardized columns), 0/1 labels and weights (empty: all 1).
pub fn fit(
    z: &[f64],
    width: usize,
    y: &[u8],
    weights: &[f64],
    alpha: f64,
) -> Result<Fitted, LogisticError> {
    fit_from(z, width, y, weights, alpha, None)
}

/// As [`fit`], starting Newton's method from `start` (coefficients, then the intercept) instead
/// of zero. The objective is convex, so the optimum is the same; a start near it (a fit on
/// most of the same rows) only saves iterations.
pub fn fit_from(
    z: &[f64],
    width: usize,
    y: &[u8],
    weights: &[f64],
    alpha: f64,
    start: Option<&[f64]>,
) -> Result<Fitted, LogisticError> {
    let n = y.len();
    if n == 0 {
        return Err(LogisticError::Empty);
    }
    assert_eq!(z.len(), n * width, "feature matrix shape");
    let w = |i: usize| weights.get(i).copied().unwrap_or(1.0);
    let d = width + 1; // the intercept is the last parameter
    let mut beta = match start {
        Some(b) if b.len() == d && b.iter().all(|v| v.is_finite()) => b.to_vec(),
        _ => vec![0.0; d],
    };
    let raw = |beta: &[f64], i: usize| {
        beta[width]
            + z[i * width..(i + 1) * width]
                .iter()
                .zip(beta)
                .map(|(a, b)| a * b)
                .sum::<f64>()
    };
    let objective = |beta: &[f64]| {
        let loss: f64 = (0..n)
            .map(|i| {
                let r = raw(beta, i);
                w(i) * softplus(if y[i] == 1 { -r } else { r })
            })
            .sum();
        loss + 0.5 * alpha * beta[..width].iter().map(|b| b * b).sum::<f64>()
    };
    let mut current = objective(&beta);
    for iteration in 1..=MAX_ITERATIONS {
        let (mut g, mut h) = gradient_hessian(z, width, y, weights, &beta);
        for a in 0..width {
            g[a] += alpha * beta[a];
            h[a * d + a] += alpha;
        }
        // A tiny ridge on the intercept keeps an all-one-class corner solvable.
        h[width * d + width] += 1e-9;
        for a in 0..d {
            for b in 0..a {
                h[b * d + a] = h[a * d + b];
            }
        }
        let step = solve(&mut h, &g, d).ok_or(LogisticError::Singular)?;
        // Backtracking: halve the Newton step until the objective falls.
        let mut t = 1.0;
        let mut next = beta.clone();
        let mut value = f64::INFINITY;
        for _ in 0..30 {
            for a in 0..d {
                next[a] = beta[a] - t * step[a];
            }
            value = objective(&next);
            if value <= current {
                break;
            }
            t *= 0.5;
        }
        let decrease = current - value;
        if value <= current {
            beta = next;
            current = value;
        }
        let newton_decrement: f64 = step.iter().zip(&g).map(|(s, g)| s * g).sum();
        if newton_decrement.abs() < 1e-9 * (1.0 + current.abs()) || decrease.abs() < 1e-12 {
            return Ok(Fitted {
                intercept: beta[width],
                coef: beta[..width].to_vec(),
                iterations: iteration,
            });
        }
    }
    Err(LogisticError::NoConvergence(MAX_ITERATIONS))
}

/// Rows per block of the gradient and Hessian sums. Blocks are summed in their order, so the
/// result is the same whatever the number of threads.
const BLOCK: usize = 4096;

/// The gradient and the Hessian (lower triangle) of the unpenalised loss at `beta`: a sum over
/// blocks of rows, the blocks spread over the machine's cores. This is nearly all of a fit
/// (`n · d² / 2` multiply-adds an iteration), and was 59% of `lantern train` at 1 million
/// households when it ran on one core, one element at a time.
fn gradient_hessian(
    z: &[f64],
    width: usize,
    y: &[u8],
    weights: &[f64],
    beta: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let n = y.len();
    let d = width + 1;
    let blocks = n.div_ceil(BLOCK);
    let block = |k: usize| {
        let mut g = vec![0.0; d];
        let mut h = vec![0.0; d * d];
        let mut row = vec![0.0; d];
        for i in k * BLOCK..((k + 1) * BLOCK).min(n) {
            row[..width].copy_from_slice(&z[i * width..(i + 1) * width]);
            row[width] = 1.0;
            let r: f64 = row.iter().zip(beta).map(|(a, b)| a * b).sum();
            let p = sigmoid(r);
            let wi = weights.get(i).copied().unwrap_or(1.0);
            let gi = wi * (p - y[i] as f64);
            let hi = wi * (p * (1.0 - p)).max(1e-12);
            for (ga, ra) in g.iter_mut().zip(&row) {
                *ga += gi * ra;
            }
            // Lower triangle only (mirrored by the caller), as slices so the compiler
            // vectorises the inner loop.
            for a in 0..d {
                let ha = hi * row[a];
                for (hb, rb) in h[a * d..a * d + a + 1].iter_mut().zip(&row[..=a]) {
                    *hb += ha * rb;
                }
            }
        }
        (g, h)
    };
    let parts = super::blocks_in_order(blocks, block);
    let mut g = vec![0.0; d];
    let mut h = vec![0.0; d * d];
    for (pg, ph) in parts {
        for (a, b) in g.iter_mut().zip(&pg) {
            *a += b;
        }
        for (a, b) in h.iter_mut().zip(&ph) {
            *a += b;
        }
    }
    (g, h)
}

/// Solves `A x = b` for a symmetric positive definite `A` (row-major, overwritten by its
/// Cholesky factor). `None` when `A` is not positive definite.
fn solve(a: &mut [f64], b: &[f64], d: usize) -> Option<Vec<f64>> {
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return None;
        }
        let l = s.sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    let mut x = b.to_vec();
    for i in 0..d {
        for k in 0..i {
            x[i] -= a[i * d + k] * x[k];
        }
        x[i] /= a[i * d + i];
    }
    for i in (0..d).rev() {
        for k in i + 1..d {
            x[i] -= a[k * d + i] * x[k];
        }
        x[i] /= a[i * d + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn data(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut z, mut y) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let a: f64 = rng.random_range(-2.0..2.0);
            let b: f64 = rng.random_range(-2.0..2.0);
            z.extend([a, b]);
            y.push(u8::from(rng.random_bool(sigmoid(-0.5 + 1.5 * a))));
        }
        (z, y)
    }

    /// Recovers known coefficients, and the gradient is zero at the answer.
    #[test]
    fn recovers_the_coefficients_it_was_simulated_with() {
        let (z, y) = data(20_000, 1);
        let m = fit(&z, 2, &y, &[], 1e-6).unwrap();
        assert!((m.coef[0] - 1.5).abs() < 0.1, "{m:?}");
        assert!(m.coef[1].abs() < 0.1, "{m:?}");
        assert!((m.intercept + 0.5).abs() < 0.1, "{m:?}");
    }

    /// A warm start changes the road, not the destination: started from a fit on most of the
    /// rows, the fit on all of them lands where a cold start does, in fewer iterations.
    #[test]
    fn a_warm_start_reaches_the_same_fit_sooner() {
        let (z, y) = data(20_000, 3);
        let cold = fit(&z, 2, &y, &[], 0.5).unwrap();
        let part = fit(&z[..30_000], 2, &y[..15_000], &[], 0.5).unwrap();
        let mut start = part.coef.clone();
        start.push(part.intercept);
        let warm = fit_from(&z, 2, &y, &[], 0.5, Some(&start)).unwrap();
        for (a, b) in cold.coef.iter().zip(&warm.coef) {
            assert!((a - b).abs() < 1e-6, "{cold:?} vs {warm:?}");
        }
        assert!((cold.intercept - warm.intercept).abs() < 1e-6);
        assert!(warm.iterations < cold.iterations, "{warm:?} vs {cold:?}");
    }

    /// A weight of 2 is the same as the row twice; a weight of 0, as the row absent.
    #[test]
    fn a_weight_is_a_row_count() {
        let (z, y) = data(500, 2);
        let mut w = vec![1.0; 500];
        w[..100].iter_mut().for_each(|v| *v = 2.0);
        w[400..].iter_mut().for_each(|v| *v = 0.0);
        let weighted = fit(&z, 2, &y, &w, 1.0).unwrap();
        let mut z2 = z[..400 * 2].to_vec();
        let mut y2 = y[..400].to_vec();
        z2.extend_from_slice(&z[..100 * 2]);
        y2.extend_from_slice(&y[..100]);
        let copied = fit(&z2, 2, &y2, &[], 1.0).unwrap();
        for (a, b) in weighted.coef.iter().zip(&copied.coef) {
            assert!((a - b).abs() < 1e-6, "{weighted:?} vs {copied:?}");
        }
        assert!((weighted.intercept - copied.intercept).abs() < 1e-6);
    }

    /// The penalty shrinks the coefficients towards zero.
    #[test]
    fn a_larger_penalty_shrinks_the_coefficients() {
        let (z, y) = data(2_000, 3);
        let loose = fit(&z, 2, &y, &[], 0.1).unwrap();
        let tight = fit(&z, 2, &y, &[], 500.0).unwrap();
        assert!(tight.coef[0].abs() < loose.coef[0].abs() * 0.8);
    }
}
