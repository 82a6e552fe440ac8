//! Ranking and probability metrics over scored, labelled rows.

/// Area under the ROC curve: the chance that a random positive outranks a random negative
/// (ties count half). `NaN` without both classes.
pub fn roc_auc(score: &[f64], y: &[u8]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let pos = y.iter().filter(|&&v| v == 1).count() as f64;
    let neg = y.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    // Sum of positive ranks, with tied scores sharing their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if y[k] == 1 {
                rank_sum += avg;
            }
        }
        i = j + 1;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Area under the precision-recall curve (average precision). `NaN` without positives.
pub fn pr_auc(score: &[f64], y: &[u8]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let pos = y.iter().filter(|&&v| v == 1).count() as f64;
    if pos == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut ap) = (0.0, 0.0);
    for (k, &i) in idx.iter().enumerate() {
        if y[i] == 1 {
            tp += 1.0;
            ap += tp / (k + 1) as f64;
        }
    }
    ap / pos
}

/// Mean squared error of probabilities.
pub fn brier(p: &[f64], y: &[u8]) -> f64 {
    if p.is_empty() {
        return f64::NAN;
    }
    p.iter()
        .zip(y)
        .map(|(&p, &y)| (p - y as f64).powi(2))
        .sum::<f64>()
        / p.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_inverted_rankings() {
        let y = [0, 0, 1, 1];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &y), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &y), 0.0);
        assert_eq!(pr_auc(&[0.1, 0.2, 0.8, 0.9], &y), 1.0);
    }

    #[test]
    fn ties_count_half() {
        assert_eq!(roc_auc(&[0.5, 0.5], &[0, 1]), 0.5);
    }

    #[test]
    fn average_precision_of_a_known_ranking() {
        // Positives at ranks 1 and 3: (1/1 + 2/3) / 2.
        let ap = pr_auc(&[0.9, 0.8, 0.7, 0.6], &[1, 0, 1, 0]);
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn brier_of_certain_answers() {
        assert_eq!(brier(&[1.0, 0.0], &[1, 0]), 0.0);
        assert_eq!(brier(&[0.0, 1.0], &[1, 0]), 1.0);
    }
}
