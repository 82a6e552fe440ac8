//! Back-test reports for people and machines: `backtest.json`, `summary.md` (the table printed
//! at the end of the run) and `report.html` (the same, with charts, for a browser).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::backtest::BacktestReport;

fn f(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{x:.3}")
    }
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{:.1}%", x * 100.0)
    }
}

/// The readable summary table (markdown, which also reads well in a terminal).
pub fn summary(r: &BacktestReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Back-test up to {} ({} folds, horizon {} days)\n",
        r.data_until,
        r.folds.len(),
        r.horizon_days
    );
    for skip in &r.skipped {
        let _ = writeln!(
            s,
            "Fold before {} skipped: {}\n",
            skip.train_before, skip.reason
        );
    }
    if let Some(slice) = &r.exploration {
        let n = slice.values().next().map(|m| m.referrals).unwrap_or(0);
        let _ = writeln!(
            s,
            "Exploration slice: {n} evaluated referrals were drawn at random below the cut; PR-AUC there: {}\n",
            slice
                .iter()
                .map(|(k, m)| format!("{k} {:.3}", m.pr_auc))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(s, "## All folds pooled\n");
    let _ = writeln!(
        s,
        "| model | referrals | confirmed | precision@capacity | recall@capacity | precision@top 20% | ROC-AUC | PR-AUC | Brier | lift over rule |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for row in pooled_rows(r) {
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    let _ = writeln!(s, "\n## Per fold\n");
    let _ = writeln!(s, "| trained before | evaluated until | train labels | model | precision@capacity | ROC-AUC | PR-AUC | Brier |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for row in fold_rows(r) {
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    let _ = writeln!(
        s,
        "\n## Fairness audit (top-capacity selection, all folds)\n"
    );
    let _ = writeln!(
        s,
        "Ratios to each attribute's largest group with 95% intervals; BREACH: the whole interval \
         of a precision or false-negative-rate ratio lies outside the band. Selection rates are \
         reported, not judged.\n"
    );
    let _ = writeln!(
        s,
        "| model | {} |",
        crate::fairness::TABLE_HEADER.join(" | ")
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for row in fairness_rows(r) {
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    let _ = writeln!(s, "\n## What these numbers can and cannot claim\n");
    for c in &r.caveats {
        let _ = writeln!(s, "- {c}");
    }
    s
}

/// The pooled table's rows, formatted (the summary and the page show the same cells).
fn pooled_rows(r: &BacktestReport) -> Vec<Vec<String>> {
    r.pooled
        .iter()
        .map(|(name, m)| {
            vec![
                name.clone(),
                m.referrals.to_string(),
                m.confirmed.to_string(),
                pct(m.precision_at_capacity),
                pct(m.recall_at_capacity),
                pct(m.precision_at_top_fifth),
                f(m.roc_auc),
                f(m.pr_auc),
                f(m.brier),
                f(m.lift_over_rule),
            ]
        })
        .collect()
}

/// The per-fold table's rows.
fn fold_rows(r: &BacktestReport) -> Vec<Vec<String>> {
    r.folds
        .iter()
        .flat_map(|fold| {
            fold.models.iter().map(move |(name, m)| {
                vec![
                    fold.train_before.to_string(),
                    fold.evaluate_until.to_string(),
                    fold.train_labels.to_string(),
                    name.clone(),
                    pct(m.precision_at_capacity),
                    f(m.roc_auc),
                    f(m.pr_auc),
                    f(m.brier),
                ]
            })
        })
        .collect()
}

/// The fairness table's rows: the model, then [`crate::fairness::table_rows`].
fn fairness_rows(r: &BacktestReport) -> Vec<Vec<String>> {
    r.fairness
        .iter()
        .flat_map(|(name, rows)| {
            crate::fairness::table_rows(rows)
                .into_iter()
                .map(move |cells| std::iter::once(name.clone()).chain(cells).collect())
        })
        .collect()
}

/// The colours of the reliability lines, one per model.
const COLOURS: [&str; 3] = ["#1b6ca8", "#d1495b", "#66a182"];

/// The report page, rendered from the report itself (not from its Markdown): charts as
/// numbers for the template, tables as rows of formatted cells.
pub fn html(r: &BacktestReport) -> Result<String, crate::templates::TemplateError> {
    type Get = fn(&super::backtest::Metrics) -> f64;
    let charts: [(&str, Get); 3] = [
        ("precision at capacity", |m| m.precision_at_capacity),
        ("PR-AUC", |m| m.pr_auc),
        ("ROC-AUC", |m| m.roc_auc),
    ];
    let bars: Vec<serde_json::Value> = charts
        .iter()
        .map(|(label, get)| {
            let bars: Vec<serde_json::Value> = r
                .pooled
                .iter()
                .enumerate()
                .map(|(i, (name, m))| {
                    let v = get(m);
                    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
                    serde_json::json!({
                        "name": name,
                        "y": 22.0 + 26.0 * i as f64,
                        "width": (v * 2800.0).round() / 10.0,
                        "value": format!("{v:.3}"),
                    })
                })
                .collect();
            serde_json::json!({
                "label": label,
                "height": 26.0 * r.pooled.len() as f64 + 24.0,
                "bars": bars,
            })
        })
        .collect();
    // The reliability chart: 320 px square plotting area right of a 40 px margin.
    let reliability: Vec<serde_json::Value> = r
        .reliability
        .iter()
        .enumerate()
        .map(|(i, (name, bins))| {
            let points: Vec<String> = bins
                .iter()
                .map(|b| {
                    format!(
                        "{:.1},{:.1}",
                        40.0 + b.mean_predicted * 320.0,
                        320.0 * (1.0 - b.observed_rate)
                    )
                })
                .collect();
            serde_json::json!({"name": name, "colour": COLOURS[i % COLOURS.len()], "points": points.join(" ")})
        })
        .collect();
    let (pooled, folds_table, fairness) = (pooled_rows(r), fold_rows(r), fairness_rows(r));
    crate::templates::render(
        "report.html",
        serde_json::json!({
            "data_until": r.data_until.to_string(),
            "horizon_days": r.horizon_days,
            "folds": r.folds.len(),
            "bars": bars,
            "reliability": reliability,
            "pooled": pooled,
            "folds_table": folds_table,
            "fairness": fairness,
            "fairness_header": crate::fairness::TABLE_HEADER,
            "caveats": r.caveats,
        }),
    )
}

/// Writes the three files under `<data.dir>/reports/backtest-<time>/` and returns the folder.
pub fn write(data_dir: &Path, r: &BacktestReport) -> std::io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let dir = data_dir.join("reports").join(format!("backtest-{stamp}"));
    std::fs::create_dir_all(&dir)?;
    let json = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("backtest.json"), json)?;
    std::fs::write(dir.join("summary.md"), summary(r))?;
    std::fs::write(
        dir.join("report.html"),
        html(r).map_err(std::io::Error::other)?,
    )?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::backtest::Metrics;

    /// Issue 10.4: the report page is built from the data, not by re-parsing its Markdown: a
    /// `|` in a cell no longer splits it, and markup in a value stays text.
    #[test]
    fn the_report_page_keeps_a_pipe_in_a_cell_and_escapes_markup() {
        let m = Metrics {
            referrals: 10,
            confirmed: 5,
            precision_at_capacity: 0.5,
            recall_at_capacity: 0.4,
            precision_at_top_fifth: 0.6,
            roc_auc: 0.7,
            pr_auc: 0.5,
            brier: 0.2,
            lift_over_rule: 1.1,
        };
        let members: Vec<crate::fairness::Member> = (0..3)
            .map(|i| crate::fairness::Member {
                groups: [
                    "single|parent".into(),
                    "40-64".into(),
                    "no".into(),
                    "city".into(),
                ],
                selected: i == 0,
                crisis: 1.0,
            })
            .collect();
        let rows = crate::fairness::audit_observed(&members, &Default::default());
        let row = rows[0].clone();
        let r = BacktestReport {
            generated_at: "now".into(),
            data_until: chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            horizon_days: 60,
            folds: vec![],
            pooled: [("trees@1".to_string(), m)].into_iter().collect(),
            reliability: Default::default(),
            fairness: [("trees@1".to_string(), vec![row])].into_iter().collect(),
            versus_current: None,
            exploration: None,
            skipped: vec![],
            caveats: vec!["labels <exist> only for visited households".into()],
        };
        let page = html(&r).unwrap();
        assert!(page.contains("<td>single|parent</td>"), "{page}");
        assert!(page.contains("labels &lt;exist&gt; only"));
        assert!(page.contains("<svg") && page.contains("trees@1"));
    }
}
