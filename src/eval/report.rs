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
    let _ = writeln!(s, "## All folds pooled\n");
    let _ = writeln!(
        s,
        "| model | referrals | confirmed | precision@capacity | recall@capacity | precision@top 20% | ROC-AUC | PR-AUC | Brier | lift over rule |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for (name, m) in &r.pooled {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.referrals,
            m.confirmed,
            pct(m.precision_at_capacity),
            pct(m.recall_at_capacity),
            pct(m.precision_at_top_fifth),
            f(m.roc_auc),
            f(m.pr_auc),
            f(m.brier),
            f(m.lift_over_rule)
        );
    }
    let _ = writeln!(s, "\n## Per fold\n");
    let _ = writeln!(s, "| trained before | evaluated until | train labels | model | precision@capacity | ROC-AUC | PR-AUC | Brier |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for fold in &r.folds {
        for (name, m) in &fold.models {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {name} | {} | {} | {} | {} |",
                fold.train_before,
                fold.evaluate_until,
                fold.train_labels,
                pct(m.precision_at_capacity),
                f(m.roc_auc),
                f(m.pr_auc),
                f(m.brier)
            );
        }
    }
    let _ = writeln!(
        s,
        "\n## Fairness audit (top-capacity selection, all folds)\n"
    );
    let _ = writeln!(s, "| model | attribute | group | referrals | selection rate (ratio) | precision (ratio) | false-negative rate (ratio) |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for (name, rows) in &r.fairness {
        for g in rows {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} ({}) | {} ({}) | {} ({}) |",
                g.attribute,
                g.group,
                g.referrals,
                pct(g.selection_rate),
                f(g.selection_rate_ratio),
                pct(g.precision),
                f(g.precision_ratio),
                pct(g.false_negative_rate),
                f(g.false_negative_rate_ratio)
            );
        }
    }
    let _ = writeln!(s, "\n## What these numbers can and cannot claim\n");
    for c in &r.caveats {
        let _ = writeln!(s, "- {c}");
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A reliability chart: predicted against observed per bin, one polyline per model.
fn reliability_svg(r: &BacktestReport) -> String {
    let (w, h, pad) = (360.0, 360.0, 40.0);
    let colours = ["#1b6ca8", "#d1495b", "#66a182"];
    let mut s = format!(
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"reliability\">\
         <rect x=\"{pad}\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\
         <line x1=\"{pad}\" y1=\"{}\" x2=\"{w}\" y2=\"0\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>",
        w - pad,
        h - pad,
        h - pad
    );
    let x = |p: f64| pad + p * (w - pad);
    let y = |p: f64| (h - pad) * (1.0 - p);
    for (i, (name, bins)) in r.reliability.iter().enumerate() {
        let c = colours[i % colours.len()];
        let pts: Vec<String> = bins
            .iter()
            .map(|b| format!("{:.1},{:.1}", x(b.mean_predicted), y(b.observed_rate)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\" font-size=\"12\">{}</text>",
            pad + 8.0,
            16.0 + 14.0 * i as f64,
            esc(name)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\">predicted probability</text>\
         <text x=\"4\" y=\"{}\" font-size=\"12\" transform=\"rotate(-90 12 {})\">confirmed share</text></svg>",
        pad + 90.0,
        h - 10.0,
        h / 2.0,
        h / 2.0
    );
    s
}

/// Horizontal bars of one pooled metric per model.
fn bars_svg(r: &BacktestReport, label: &str, get: fn(&super::backtest::Metrics) -> f64) -> String {
    let n = r.pooled.len() as f64;
    let (w, row) = (420.0, 26.0);
    let mut s = format!(
        "<svg width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        row * n + 24.0,
        esc(label)
    );
    let _ = write!(
        s,
        "<text x=\"0\" y=\"14\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        esc(label)
    );
    for (i, (name, m)) in r.pooled.iter().enumerate() {
        let v = get(m);
        let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        let yy = 22.0 + row * i as f64;
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"80\" y=\"{}\" width=\"{:.1}\" height=\"16\" fill=\"#1b6ca8\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{:.3}</text>",
            yy + 12.0,
            esc(name),
            yy,
            v * 280.0,
            86.0 + v * 280.0,
            yy + 12.0,
            v
        );
    }
    s.push_str("</svg>");
    s
}

pub fn html(r: &BacktestReport) -> String {
    let mut s = String::from(
        "<!doctype html><html lang=\"ko\"><head><meta charset=\"utf-8\"><title>Lantern back-test</title>\
         <style>body{font-family:system-ui,'Noto Sans KR',sans-serif;margin:2rem;max-width:70rem}\
         table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}\
         th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.charts{display:flex;gap:2rem;flex-wrap:wrap}</style>\
         </head><body>",
    );
    let _ = write!(s, "<h1>Back-test up to {}</h1>", r.data_until);
    s.push_str("<div class=\"charts\">");
    s.push_str(&bars_svg(r, "precision at capacity", |m| {
        m.precision_at_capacity
    }));
    s.push_str(&bars_svg(r, "PR-AUC", |m| m.pr_auc));
    s.push_str(&bars_svg(r, "ROC-AUC", |m| m.roc_auc));
    s.push_str("</div><h2>Calibration</h2>");
    s.push_str(&reliability_svg(r));
    // The tables, from the markdown summary.
    let mut in_table = false;
    for line in summary(r).lines() {
        if let Some(t) = line.strip_prefix("## ") {
            if in_table {
                s.push_str("</table>");
                in_table = false;
            }
            let _ = write!(s, "<h2>{}</h2>", esc(t));
        } else if line.starts_with("|---") {
            continue;
        } else if let Some(row) = line.strip_prefix('|') {
            let cells: Vec<&str> = row
                .trim_end_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                s.push_str("<table>");
                in_table = true;
            }
            s.push_str("<tr>");
            for c in cells {
                let _ = write!(s, "<{tag}>{}</{tag}>", esc(c));
            }
            s.push_str("</tr>");
        } else {
            if in_table {
                s.push_str("</table>");
                in_table = false;
            }
            if let Some(item) = line.strip_prefix("- ") {
                let _ = write!(s, "<p>• {}</p>", esc(item));
            }
        }
    }
    if in_table {
        s.push_str("</table>");
    }
    s.push_str("</body></html>\n");
    s
}

/// Writes the three files under `<data.dir>/reports/backtest-<time>/` and returns the folder.
pub fn write(data_dir: &Path, r: &BacktestReport) -> std::io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let dir = data_dir.join("reports").join(format!("backtest-{stamp}"));
    std::fs::create_dir_all(&dir)?;
    let json = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("backtest.json"), json)?;
    std::fs::write(dir.join("summary.md"), summary(r))?;
    std::fs::write(dir.join("report.html"), html(r))?;
    Ok(dir)
}
