//! The fairness audit: for each protected or regional group, who is selected, how often a
//! selection is right, and how many crises are missed, each as a ratio to a reference group with
//! a 95% interval.
//!
//! The same table is made in two places:
//!
//! - **the back-test** ([`audit_observed`]): on evaluated referrals with their outcomes, the
//!   rates are counts (a selection is right when the visit confirmed a crisis), with Wilson
//!   intervals;
//! - **every night's list** ([`audit_expected`]): tonight's outcomes are not known, so
//!   precision and the false-negative rate are *expected* from the model's calibrated
//!   probabilities, with the spread the outcomes would have if the calibration holds
//!   (normal approximation of a sum of Bernoullis). The selection rate is a count.
//!
//! **How a ratio is judged.** The reference group of an attribute is its largest known group.
//! A group whose rate rests on fewer than `min_group` households (or expected crises) is marked
//! `too_small` and not ratioed: a ratio of 50 referrals is mostly noise. Otherwise the ratio is
//! `within` the band (0.8–1.25 by default), a `breach` when its whole interval lies outside the
//! band, and `uncertain` when it is outside but its interval reaches into the band. Only
//! breaches are flagged: the promotion gate and the night's summary act on them.
//!
//! Selection rates are reported, never judged: they differ legitimately where need differs
//! (elderly singles are in crisis far more often).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::FairnessSettings;
use crate::registry::{DistrictKind, Registry};

/// z for a two-sided 95% interval.
const Z: f64 = 1.959_963_984_540_054;

/// The attributes audited, in report order.
pub const ATTRIBUTES: [&str; 4] = [
    "household_type",
    "head_age_band",
    "disability",
    "region_kind",
];

/// A 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// How a group's ratio to the reference group reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    /// The group the others are compared with.
    Reference,
    /// The ratio lies in the band.
    Within,
    /// The ratio lies outside the band but its interval reaches into it: not enough evidence.
    Uncertain,
    /// The whole interval lies outside the band.
    Breach,
    /// Too few households (or crises) to judge; no ratio given.
    TooSmall,
}

impl Judgement {
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Reference => "reference",
            Judgement::Within => "within",
            Judgement::Uncertain => "uncertain",
            Judgement::Breach => "breach",
            Judgement::TooSmall => "too_small",
        }
    }
}

/// One rate of one group, with its ratio to the reference group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// `NaN` when the denominator is zero.
    pub value: f64,
    /// What the rate is out of: households, selections, or (expected) crises.
    pub denominator: f64,
    pub interval: Option<Interval>,
    /// This rate over the reference group's, unless either is too small to judge.
    pub ratio: Option<f64>,
    pub ratio_interval: Option<Interval>,
    pub judgement: Judgement,
    /// The variance of `value`, for the ratio's interval.
    #[serde(skip)]
    variance: f64,
}

impl Rate {
    /// A rate known only by its ratio and judgement (no counts behind it): for reports built
    /// by hand, such as the gate's tests.
    pub fn judged(ratio: Option<f64>, judgement: Judgement) -> Rate {
        Rate {
            value: f64::NAN,
            denominator: 0.0,
            interval: None,
            ratio,
            ratio_interval: ratio.map(|r| Interval { low: r, high: r }),
            judgement,
            variance: f64::NAN,
        }
    }
}

/// One group's row of the fairness audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    pub attribute: String,
    pub group: String,
    /// Households (back-test: evaluated referrals) in the group.
    pub households: usize,
    /// Selected / households. Reported, never judged against the band.
    pub selection_rate: Rate,
    /// Confirmed (or expected) crises / selected.
    pub precision: Rate,
    /// Missed (or expected missed) crises / all (or expected) crises.
    pub false_negative_rate: Rate,
    /// Whether a judged rate (precision, false-negative rate) is a breach.
    pub breach: bool,
}

impl GroupRow {
    /// The judged rates, by name.
    pub fn judged(&self) -> [(&'static str, &Rate); 2] {
        [
            ("precision", &self.precision),
            ("false-negative rate", &self.false_negative_rate),
        ]
    }
}

/// One household (or evaluated referral) as the audit sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// The group of each of [`ATTRIBUTES`], in order.
    pub groups: Groups,
    pub selected: bool,
    /// The outcome (0 or 1) in the back-test; the calibrated probability on a night.
    pub crisis: f64,
}

/// A household's group for each of [`ATTRIBUTES`]: contract spellings, so `'static` (a
/// screened household costs no allocation for its groups, which matters at 23 million).
pub type Groups = [&'static str; 4];

/// The four groups of a household: household type, age band, disability (`yes`, `no`,
/// `unknown`) and the kind of its district (`autonomous_gu`, `city`, `county`, `unknown`).
/// A spelling outside the contract's vocabulary (an edited features.sql) counts as `unknown`.
pub fn groups(
    household_type: Option<&str>,
    head_age_band: Option<&str>,
    disability: Option<bool>,
    district: Option<&str>,
    registry: &Registry,
) -> Groups {
    use lantern_contract::contract::{AgeBand, HouseholdType, Vocab};
    let kind = district
        .and_then(|d| registry.get(d))
        .map(|d| d.kind.as_str())
        .unwrap_or("unknown");
    [
        household_type
            .and_then(HouseholdType::parse)
            .map(HouseholdType::as_str)
            .unwrap_or("unknown"),
        head_age_band
            .and_then(AgeBand::parse)
            .map(AgeBand::as_str)
            .unwrap_or("unknown"),
        match disability {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        },
        kind,
    ]
}

/// A district kind's label in the reports.
pub fn kind_label(kind: DistrictKind) -> &'static str {
    match kind {
        DistrictKind::AutonomousGu => "자치구",
        DistrictKind::City => "시",
        DistrictKind::County => "군",
    }
}

/// The audit on evaluated referrals with known outcomes (`crisis` is 0 or 1).
pub fn audit_observed(members: &[Member], settings: &FairnessSettings) -> Vec<GroupRow> {
    audit(members, settings, Kind::Observed)
}

/// The audit on a night's screened households, precision and false negatives expected from
/// the calibrated probabilities in `crisis`.
pub fn audit_expected(members: &[Member], settings: &FairnessSettings) -> Vec<GroupRow> {
    audit(members, settings, Kind::Expected)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Observed,
    Expected,
}

fn audit(members: &[Member], settings: &FairnessSettings, kind: Kind) -> Vec<GroupRow> {
    let mut out = Vec::new();
    for (a, attribute) in ATTRIBUTES.iter().enumerate() {
        let mut by_group: BTreeMap<&str, Vec<&Member>> = BTreeMap::new();
        for m in members {
            by_group.entry(m.groups[a]).or_default().push(m);
        }
        let mut rows: Vec<GroupRow> = by_group
            .into_iter()
            .map(|(group, ms)| GroupRow {
                attribute: attribute.to_string(),
                group: group.to_string(),
                households: ms.len(),
                selection_rate: count_rate(
                    ms.iter().filter(|m| m.selected).count() as f64,
                    ms.len() as f64,
                ),
                precision: precision(&ms, kind),
                false_negative_rate: false_negative_rate(&ms, kind),
                breach: false,
            })
            .collect();
        // The reference: the largest known group.
        let reference = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.group != "unknown")
            .max_by(|(i, a), (j, b)| a.households.cmp(&b.households).then(j.cmp(i)))
            .map(|(i, _)| i);
        let Some(reference) = reference else {
            out.extend(rows);
            continue;
        };
        let base = rows[reference].clone();
        for (i, row) in rows.iter_mut().enumerate() {
            let is_reference = i == reference;
            judge(
                &mut row.selection_rate,
                &base.selection_rate,
                is_reference,
                settings,
            );
            judge(&mut row.precision, &base.precision, is_reference, settings);
            judge(
                &mut row.false_negative_rate,
                &base.false_negative_rate,
                is_reference,
                settings,
            );
            row.breach = row
                .judged()
                .iter()
                .any(|(_, r)| r.judgement == Judgement::Breach);
        }
        out.extend(rows);
    }
    out
}

/// `k / n` of observed counts, with its Wilson interval.
fn count_rate(k: f64, n: f64) -> Rate {
    if n <= 0.0 {
        return empty(n);
    }
    let p = k / n;
    Rate {
        value: p,
        denominator: n,
        interval: Some(wilson(k, n)),
        ratio: None,
        ratio_interval: None,
        judgement: Judgement::TooSmall,
        variance: p * (1.0 - p) / n,
    }
}

fn empty(n: f64) -> Rate {
    Rate {
        value: f64::NAN,
        denominator: n.max(0.0),
        interval: None,
        ratio: None,
        ratio_interval: None,
        judgement: Judgement::TooSmall,
        variance: f64::NAN,
    }
}

/// A rate expected from probabilities: `sum / n`, its variance, a normal interval.
fn expected_rate(value: f64, variance: f64, denominator: f64) -> Rate {
    if denominator <= 0.0 || !value.is_finite() {
        return empty(denominator);
    }
    let sd = variance.max(0.0).sqrt();
    Rate {
        value,
        denominator,
        interval: Some(Interval {
            low: (value - Z * sd).max(0.0),
            high: (value + Z * sd).min(1.0),
        }),
        ratio: None,
        ratio_interval: None,
        judgement: Judgement::TooSmall,
        variance,
    }
}

fn precision(ms: &[&Member], kind: Kind) -> Rate {
    let selected: Vec<f64> = ms.iter().filter(|m| m.selected).map(|m| m.crisis).collect();
    let n = selected.len() as f64;
    match kind {
        Kind::Observed => count_rate(selected.iter().sum(), n),
        Kind::Expected => {
            let value = selected.iter().sum::<f64>() / n;
            let variance = selected.iter().map(|p| p * (1.0 - p)).sum::<f64>() / (n * n);
            expected_rate(value, variance, n)
        }
    }
}

/// Missed / all crises. Expected: with H the crises among the selected and M among the rest
/// (independent sums of Bernoullis), F = M / (H + M), variance by the delta method.
fn false_negative_rate(ms: &[&Member], kind: Kind) -> Rate {
    let (mut h, mut m, mut var_h, mut var_m) = (0.0, 0.0, 0.0, 0.0);
    for x in ms {
        let v = x.crisis * (1.0 - x.crisis);
        if x.selected {
            h += x.crisis;
            var_h += v;
        } else {
            m += x.crisis;
            var_m += v;
        }
    }
    let total = h + m;
    match kind {
        Kind::Observed => count_rate(m, total),
        Kind::Expected => {
            if total <= 0.0 {
                return empty(total);
            }
            let variance = (h * h * var_m + m * m * var_h) / total.powi(4);
            expected_rate(m / total, variance, total)
        }
    }
}

/// The Wilson score interval of `k` successes in `n`.
pub fn wilson(k: f64, n: f64) -> Interval {
    let p = k / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    // At 0 or n successes the bound is exactly 0 or 1 (rounding would leave it a hair off).
    Interval {
        low: if k <= 0.0 {
            0.0
        } else {
            (centre - half).max(0.0)
        },
        high: if k >= n {
            1.0
        } else {
            (centre + half).min(1.0)
        },
    }
}

/// Sets `rate`'s ratio to `base` and its judgement. The ratio's interval is log-normal:
/// var(ln r) = var(a)/a² + var(b)/b², with a zero rate replaced by half a count (the usual
/// continuity correction) so that a group where nothing was right still gets an interval.
fn judge(rate: &mut Rate, base: &Rate, is_reference: bool, s: &FairnessSettings) {
    let min = s.min_group as f64;
    if rate.denominator < min || base.denominator < min || !rate.value.is_finite() {
        rate.judgement = Judgement::TooSmall;
        return;
    }
    if is_reference {
        rate.ratio = Some(1.0);
        rate.judgement = Judgement::Reference;
        return;
    }
    if !(base.value > 0.0) {
        rate.judgement = Judgement::TooSmall;
        return;
    }
    let floor = |r: &Rate| r.value.max(0.5 / r.denominator);
    let (a, b) = (floor(rate), floor(base));
    let var_a = if rate.value > 0.0 {
        rate.variance
    } else {
        a * (1.0 - a) / rate.denominator
    };
    let var_log = var_a / (a * a) + base.variance / (b * b);
    let ratio = rate.value / base.value;
    let centre = (a / b).ln();
    let half = Z * var_log.max(0.0).sqrt();
    let interval = Interval {
        low: (centre - half).exp(),
        high: (centre + half).exp(),
    };
    rate.ratio = Some(ratio);
    rate.ratio_interval = Some(interval);
    rate.judgement = if (s.band_low..=s.band_high).contains(&ratio) {
        Judgement::Within
    } else if interval.high < s.band_low || interval.low > s.band_high {
        Judgement::Breach
    } else {
        Judgement::Uncertain
    };
}

/// The groups with a breach, as `attribute group` (e.g. `household_type single`): what the
/// night's log, summary and audit record name.
pub fn breaches(rows: &[GroupRow]) -> Vec<String> {
    rows.iter()
        .filter(|g| g.breach)
        .map(|g| format!("{} {}", g.attribute, g.group))
        .collect()
}

/// A rate for a table cell: `31.2% [28.0–34.5%] ×0.92 [0.81–1.05]`, the ratio left out where
/// it is not judged, `n/a` where there is nothing to rate.
pub fn cell(rate: &Rate) -> String {
    if !rate.value.is_finite() {
        return match rate.ratio {
            Some(r) => format!("×{r:.2}"),
            None => "n/a".into(),
        };
    }
    let mut s = format!("{:.1}%", rate.value * 100.0);
    if let Some(i) = rate.interval {
        s.push_str(&format!(" [{:.1}–{:.1}%]", i.low * 100.0, i.high * 100.0));
    }
    match (rate.judgement, rate.ratio, rate.ratio_interval) {
        (Judgement::Reference, _, _) => s.push_str(" (reference)"),
        (Judgement::TooSmall, _, _) => s.push_str(" (too small to judge)"),
        (_, Some(r), Some(i)) => s.push_str(&format!(" ×{r:.2} [{:.2}–{:.2}]", i.low, i.high)),
        _ => {}
    }
    s
}

/// What a row says at a glance: `BREACH` (a judged ratio's interval lies outside the band),
/// `uncertain` (outside the band, interval reaching into it), or empty.
pub fn flag(row: &GroupRow) -> &'static str {
    if row.breach {
        "BREACH"
    } else if row
        .judged()
        .iter()
        .any(|(_, r)| r.judgement == Judgement::Uncertain)
    {
        "uncertain"
    } else {
        ""
    }
}

/// A fairness table as rows of cells: attribute, group, households, selection rate, precision,
/// false-negative rate, flag.
pub fn table_rows(rows: &[GroupRow]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|g| {
            vec![
                g.attribute.clone(),
                g.group.clone(),
                g.households.to_string(),
                cell(&g.selection_rate),
                cell(&g.precision),
                cell(&g.false_negative_rate),
                flag(g).to_string(),
            ]
        })
        .collect()
}

/// The header of [`table_rows`].
pub const TABLE_HEADER: [&str; 7] = [
    "attribute",
    "group",
    "households",
    "selection rate [95%] ×ratio [95%]",
    "precision",
    "false-negative rate",
    "flag",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> FairnessSettings {
        FairnessSettings::default()
    }

    /// `n` members of `group` (household type), `selected` of them selected, `hits` of those in
    /// crisis, `missed` crises among the rest.
    fn members(
        group: &'static str,
        n: usize,
        selected: usize,
        hits: usize,
        missed: usize,
    ) -> Vec<Member> {
        (0..n)
            .map(|i| {
                let sel = i < selected;
                let crisis = if sel { i < hits } else { i < selected + missed };
                Member {
                    groups: [group, "40-64", "no", "city"],
                    selected: sel,
                    crisis: if crisis { 1.0 } else { 0.0 },
                }
            })
            .collect()
    }

    fn row<'a>(rows: &'a [GroupRow], group: &str) -> &'a GroupRow {
        rows.iter()
            .find(|r| r.attribute == "household_type" && r.group == group)
            .unwrap()
    }

    /// The Wilson interval matches a textbook value (8 of 20: 0.219–0.613) and stays inside
    /// 0–1 at the extremes.
    #[test]
    fn wilson_matches_the_textbook_and_stays_in_bounds() {
        let i = wilson(8.0, 20.0);
        assert!(
            (i.low - 0.2188).abs() < 1e-3 && (i.high - 0.6134).abs() < 1e-3,
            "{i:?}"
        );
        let zero = wilson(0.0, 10.0);
        assert_eq!(zero.low, 0.0);
        assert!(zero.high > 0.2 && zero.high < 0.35);
        assert_eq!(wilson(10.0, 10.0).high, 1.0);
    }

    /// A large gap on large groups is a breach; the same gap on groups just big enough to judge
    /// is uncertain (its interval reaches the band); a group under `min_group` is too small and
    /// gets no ratio; the largest group is the reference.
    #[test]
    fn a_ratio_is_a_breach_only_when_its_interval_clears_the_band() {
        let mut big = members("family", 4000, 2000, 1000, 500);
        big.extend(members("single", 2000, 1000, 300, 250));
        let rows = audit_observed(&big, &settings());
        assert_eq!(
            row(&rows, "family").precision.judgement,
            Judgement::Reference
        );
        let single = row(&rows, "single");
        assert!((single.precision.ratio.unwrap() - 0.6).abs() < 1e-9);
        assert_eq!(single.precision.judgement, Judgement::Breach);
        assert!(single.breach);

        let mut few = members("family", 80, 40, 20, 10);
        few.extend(members("single", 70, 35, 12, 9));
        let rows = audit_observed(&few, &settings());
        let single = row(&rows, "single");
        let ratio = single.precision.ratio.unwrap();
        assert!(ratio < 0.8, "{ratio}");
        assert_eq!(single.precision.judgement, Judgement::Uncertain);
        let ci = single.precision.ratio_interval.unwrap();
        assert!(ci.low < ratio && ratio < ci.high && ci.high > 0.8);
        assert!(!single.breach);

        let mut tiny = members("family", 500, 250, 100, 50);
        tiny.extend(members("single_parent", 20, 10, 1, 5));
        let rows = audit_observed(&tiny, &settings());
        let small = row(&rows, "single_parent");
        assert_eq!(small.precision.judgement, Judgement::TooSmall);
        assert_eq!(small.precision.ratio, None);
        assert!(!small.breach);
    }

    /// On a night, precision is the mean probability of the selected and the false-negative
    /// rate the expected missed share; both come with intervals that contain them.
    #[test]
    fn expected_rates_on_a_night_come_from_the_probabilities() {
        let ms: Vec<Member> = (0..200)
            .map(|i| Member {
                groups: ["family", "40-64", "no", "city"],
                selected: i < 50,
                crisis: if i < 50 { 0.6 } else { 0.1 },
            })
            .collect();
        let rows = audit_expected(&ms, &settings());
        let r = row(&rows, "family");
        assert!((r.precision.value - 0.6).abs() < 1e-12);
        // Expected crises: 30 selected, 15 missed.
        assert!((r.false_negative_rate.value - 15.0 / 45.0).abs() < 1e-12);
        for rate in [&r.precision, &r.false_negative_rate] {
            let i = rate.interval.unwrap();
            assert!(i.low < rate.value && rate.value < i.high, "{rate:?}");
        }
        assert!((r.selection_rate.value - 0.25).abs() < 1e-12);
    }

    /// The region kind comes from the registry, and households without a district or a
    /// reference record fall in `unknown`, which is never the reference group.
    #[test]
    fn groups_name_the_region_kind_and_unknowns() {
        let reg = Registry::embedded();
        let g = groups(Some("single"), None, Some(true), Some("11110"), &reg);
        assert_eq!(g, ["single", "unknown", "yes", "autonomous_gu"]);
        let g = groups(None, None, None, None, &reg);
        assert_eq!(g[3], "unknown");
        let mut ms = members("unknown", 5000, 100, 50, 10);
        ms.extend(members("family", 100, 50, 20, 10));
        let rows = audit_observed(&ms, &settings());
        assert_eq!(
            row(&rows, "family").precision.judgement,
            Judgement::Reference
        );
    }
}
