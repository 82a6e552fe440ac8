//! The latent crisis process of one household, and the signals agencies would send about it.
//!
//! Each household has a baseline risk (household type, age, disability, district deprivation and
//! an individual term) and a monthly strain that decays and jumps on shocks (job loss, illness,
//! bereavement). Risk `z = baseline + strain`; the household is in crisis while `z` is above
//! [`CRISIS_THRESHOLD`]. What agencies see is a noisy shadow of `z`:
//! - bills go unpaid more often as `z` rises, and stay unpaid longer, so months overdue trend
//!   upward in a crisis and fall back after it; utilities cut service after three months;
//! - well-off households sometimes miss one bill and pay it the next month (one-off arrears);
//! - council reports are rare, far likelier in a crisis, and more urgent the deeper it is;
//! - benefits lapse or are refused more often in a crisis;
//! - a few households move away without re-registering, so their later bills arrive under
//!   another district (the Suwon failure of 2022).
//!
//! Agencies report arrears monthly, on their own day of the next month; councils within days;
//! benefit systems within a few weeks. `reported_on` carries those lags.

use chrono::{Datelike, Days, Months, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Normal};

use super::population::{pick, SimDistrict};
use crate::contract::{
    AgeBand, Concern, CouncilReport, Gap, Household, HouseholdType, Program, ReporterRole,
    ServiceGap, Signal, SignalBody, Utility, UtilityArrears, Vocab,
};
use crate::registry::DistrictKind;

/// A household is in crisis while its risk is above this.
pub const CRISIS_THRESHOLD: f64 = 2.2;

/// The simulated months: calendar months ending with the month of `end`.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// First day of the first month.
    pub start: NaiveDate,
    pub months: u32,
    /// The simulation's "today": nothing is observed or reported after it.
    pub end: NaiveDate,
}

impl Timeline {
    pub fn new(end: NaiveDate, months: u32) -> Timeline {
        let last_month = end.with_day(1).expect("day 1 exists");
        let start = last_month
            .checked_sub_months(Months::new(months.saturating_sub(1)))
            .expect("simulation start is a valid date");
        Timeline { start, months, end }
    }

    pub fn month_start(&self, m: u32) -> NaiveDate {
        self.start + Months::new(m)
    }

    /// The last day of month `m`, or `end` if that comes first.
    pub fn month_end(&self, m: u32) -> NaiveDate {
        let last = self.month_start(m + 1) - Days::new(1);
        last.min(self.end)
    }
}

/// What the simulation of one household produced.
#[derive(Debug, Default)]
pub struct HouseholdRun {
    /// Valid signals, in the order they happened.
    pub signals: Vec<Signal>,
    /// In crisis at the end of each month.
    pub crisis: Vec<bool>,
}

/// The agency that reports a utility, and the day of the month it sends its batch.
fn utility_source(u: Utility) -> (&'static str, u32) {
    match u {
        Utility::Electricity => ("kepco", 8),
        Utility::Water => ("waterworks", 12),
        Utility::Gas => ("citygas", 10),
        Utility::Telecom => ("kait", 15),
        Utility::HealthInsurance => ("nhis", 20),
        Utility::HousingFee => ("kapt", 18),
        Utility::Rent => ("lh", 5),
        Utility::PensionLoan => ("nps", 22),
        Utility::Credit => ("kcredit", 25),
    }
}

/// (propensity shift, typical monthly bill in KRW) per utility.
fn utility_profile(u: Utility) -> (f64, f64) {
    match u {
        Utility::Electricity => (0.0, 45_000.0),
        Utility::Water => (-0.2, 18_000.0),
        Utility::Gas => (0.1, 55_000.0),
        Utility::Telecom => (0.4, 60_000.0),
        Utility::HealthInsurance => (0.5, 90_000.0),
        Utility::HousingFee => (0.1, 180_000.0),
        Utility::Rent => (0.3, 280_000.0),
        Utility::PensionLoan => (0.0, 150_000.0),
        Utility::Credit => (0.6, 400_000.0),
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The household's baseline risk.
fn baseline(hh: &Household, district: &SimDistrict, rng: &mut ChaCha8Rng) -> f64 {
    let by_type = match hh.household_type {
        HouseholdType::Single => 0.35,
        HouseholdType::ElderlySingle => 0.6,
        HouseholdType::SingleParent => 0.5,
        HouseholdType::Couple => -0.3,
        HouseholdType::Family => -0.2,
        HouseholdType::Other => 0.0,
    };
    let by_age = match hh.head_age_band {
        AgeBand::Under20 => 0.4,
        AgeBand::From20To39 => -0.15,
        AgeBand::From40To64 => 0.25,
        AgeBand::Over65 => 0.2,
    };
    let individual: f64 = Normal::new(0.0, 0.65).expect("positive sd").sample(rng);
    -0.6 + by_type
        + by_age
        + if hh.disability { 0.45 } else { 0.0 }
        + district.deprivation
        + individual
}

/// Emits signals for one household over the timeline. `other_district` gives a district code to
/// move to, for the few who move without re-registering. `next_id` yields event ids.
pub fn run_household(
    hh: &Household,
    district: &SimDistrict,
    timeline: &Timeline,
    rng: &mut ChaCha8Rng,
    other_district: &mut dyn FnMut(&mut ChaCha8Rng) -> String,
    next_id: &mut dyn FnMut() -> String,
) -> HouseholdRun {
    let base = baseline(hh, district, rng);
    let county = district.kind == DistrictKind::County;
    // Which bills this household has at all.
    let holds = |u: Utility, rng: &mut ChaCha8Rng| -> bool {
        let p = match u {
            Utility::Electricity | Utility::HealthInsurance => 1.0,
            Utility::Water => 0.97,
            Utility::Gas => {
                if county {
                    0.5
                } else {
                    0.78
                }
            }
            Utility::Telecom => 0.95,
            Utility::HousingFee => {
                if county {
                    0.2
                } else {
                    0.5
                }
            }
            Utility::Rent => 0.06 + 0.12 * sigmoid(3.0 * base),
            Utility::PensionLoan => 0.04,
            Utility::Credit => 0.3,
        };
        rng.random_bool(p)
    };
    let utilities: Vec<Utility> = Utility::ALL
        .iter()
        .copied()
        .filter(|&u| holds(u, rng))
        .collect();
    let mut overdue = vec![0u16; utilities.len()];
    let mut cut = vec![false; utilities.len()];
    let mut one_off = vec![false; utilities.len()];
    let mut amount = vec![0u64; utilities.len()];

    // Shocks: rarer for the well-off. The stationary strain starts near its mean.
    let shock_p = (0.028 * (0.6 * base).exp()).min(0.2);
    let shock_size = Exp::new(1.0 / 1.7).expect("positive rate");
    let noise = Normal::new(0.0, 0.25).expect("positive sd");
    let mut strain: f64 = shock_p * 1.7 / 0.15 + noise.sample(rng);

    // A few move away, unregistered, some time in the window; their bills follow them.
    let moves_at: Option<(u32, String)> = if rng.random_bool(0.012 + 0.02 * sigmoid(base)) {
        let m = rng.random_range(0..timeline.months.max(1));
        Some((m, other_district(rng)))
    } else {
        None
    };

    let mut run = HouseholdRun {
        signals: Vec::new(),
        crisis: Vec::with_capacity(timeline.months as usize),
    };
    for m in 0..timeline.months {
        if rng.random_bool(shock_p) {
            strain += shock_size.sample(rng);
        }
        strain = 0.86 * strain + noise.sample(rng);
        let z = base + strain;
        let in_crisis = z > CRISIS_THRESHOLD;
        run.crisis.push(in_crisis);

        let month_end = timeline.month_end(m);
        let (district_code, dong_code) = match &moves_at {
            Some((at, code)) if m >= *at => (code.clone(), None),
            _ => (hh.district_code.clone(), hh.dong_code.clone()),
        };
        let envelope = |source: &str,
                        observed_on: NaiveDate,
                        reported_on: NaiveDate,
                        body: SignalBody,
                        id: String| Signal {
            event_id: id,
            source: source.to_string(),
            household_id: hh.household_id.clone(),
            district_code: district_code.clone(),
            dong_code: dong_code.clone(),
            observed_on,
            reported_on: Some(reported_on),
            body,
        };

        // Bills: the status at month end, reported on the agency's day next month.
        for (i, &u) in utilities.iter().enumerate() {
            let (shift, bill) = utility_profile(u);
            let was = overdue[i];
            if was == 0 {
                if rng.random_bool(sigmoid(-5.6 + 1.5 * z + shift)) {
                    overdue[i] = 1;
                    one_off[i] = false;
                } else if rng.random_bool(0.0025) {
                    // Forgot to pay: paid next month whatever the risk.
                    overdue[i] = 1;
                    one_off[i] = true;
                }
            } else if one_off[i] || rng.random_bool(sigmoid(2.2 - 1.4 * z)) {
                overdue[i] = 0;
                cut[i] = false;
            } else {
                overdue[i] = (overdue[i] + 1).min(240);
            }
            let cuttable = matches!(
                u,
                Utility::Electricity | Utility::Water | Utility::Gas | Utility::Telecom
            );
            if cuttable && overdue[i] >= 3 && !cut[i] && rng.random_bool(0.35) {
                cut[i] = true;
            }
            if overdue[i] == 0 && was == 0 {
                continue;
            }
            let monthly = bill * (0.6 + 0.8 * rng.random::<f64>());
            amount[i] = if overdue[i] == 0 {
                0
            } else {
                amount[i] + monthly.round() as u64
            };
            let (source, day) = utility_source(u);
            let reported_on = timeline
                .month_start(m + 1)
                .with_day(day)
                .expect("reporting day exists in every month")
                + Days::new(rng.random_range(0..3));
            if reported_on > timeline.end {
                continue;
            }
            let body = SignalBody::UtilityArrears(UtilityArrears {
                utility: u,
                months_overdue: overdue[i],
                amount_krw: amount[i],
                service_cut: cut[i],
            });
            run.signals
                .push(envelope(source, month_end, reported_on, body, next_id()));
        }

        // Council reports: rare, telling, reported within days.
        let depth = sigmoid(2.5 * (z - CRISIS_THRESHOLD));
        if rng.random_bool(0.0004 + 0.05 * depth) {
            let observed_on = random_day(timeline, m, rng);
            let reported_on = observed_on
                + Days::new(pick(
                    rng,
                    &[(0, 0.4), (1, 0.3), (2, 0.15), (4, 0.1), (7, 0.05)],
                ));
            if reported_on <= timeline.end {
                let body = SignalBody::CouncilReport(council_report(hh, z, county, rng));
                run.signals.push(envelope(
                    "council",
                    observed_on,
                    reported_on,
                    body,
                    next_id(),
                ));
            }
        }

        // Benefit gaps.
        if rng.random_bool(0.0015 + 0.035 * depth) {
            let observed_on = random_day(timeline, m, rng);
            let reported_on = observed_on + Days::new(rng.random_range(1..30));
            if reported_on <= timeline.end {
                let (program, source) = program_for(hh, rng);
                let gap = if in_crisis {
                    pick(
                        rng,
                        &[
                            (Gap::BenefitTerminated, 0.3),
                            (Gap::ApplicationRejected, 0.2),
                            (Gap::EligibleNotEnrolled, 0.25),
                            (Gap::ServiceEnded, 0.1),
                            (Gap::ContactFailed, 0.15),
                        ],
                    )
                } else {
                    pick(
                        rng,
                        &[
                            (Gap::BenefitTerminated, 0.25),
                            (Gap::ApplicationRejected, 0.35),
                            (Gap::EligibleNotEnrolled, 0.1),
                            (Gap::ServiceEnded, 0.25),
                            (Gap::ContactFailed, 0.05),
                        ],
                    )
                };
                let body = SignalBody::ServiceGap(ServiceGap { program, gap });
                run.signals
                    .push(envelope(source, observed_on, reported_on, body, next_id()));
            }
        }
    }
    run
}

fn random_day(timeline: &Timeline, m: u32, rng: &mut ChaCha8Rng) -> NaiveDate {
    let first = timeline.month_start(m);
    let last = timeline.month_end(m);
    let span = (last - first).num_days().max(0) as u64;
    first + Days::new(rng.random_range(0..=span))
}

fn program_for(hh: &Household, rng: &mut ChaCha8Rng) -> (Program, &'static str) {
    let mut choices = vec![
        (Program::BasicLivelihood, 0.3),
        (Program::EmergencyWelfare, 0.1),
        (Program::HousingBenefit, 0.15),
        (Program::EnergyVoucher, 0.1),
        (Program::MedicalAid, 0.1),
        (Program::Other, 0.05),
    ];
    if hh.head_age_band == AgeBand::Over65 {
        choices.push((Program::BasicPension, 0.4));
    }
    if hh.disability {
        choices.push((Program::DisabilityPension, 0.4));
    }
    if hh.household_type == HouseholdType::SingleParent {
        choices.push((Program::ChildAllowance, 0.4));
    }
    let program = pick(rng, &choices);
    let source = match program {
        Program::BasicPension | Program::DisabilityPension => "nps",
        Program::EnergyVoucher => "kea",
        _ => "ssis",
    };
    (program, source)
}

const NOTES: &[&str] = &[
    "우편물이 계속 쌓여 있음",
    "며칠째 인기척이 없음",
    "끼니를 거르는 것으로 보임",
    "월세가 몇 달째 밀렸다고 함",
    "병원에 가지 못하고 있다고 함",
    "이웃과 연락을 끊고 지냄",
    "Neighbour says the lights have been off for a week",
];

fn council_report(hh: &Household, z: f64, county: bool, rng: &mut ChaCha8Rng) -> CouncilReport {
    let reporter_role = pick(
        rng,
        &[
            (ReporterRole::HonoraryWelfareOfficer, 0.25),
            (ReporterRole::CouncilMember, 0.2),
            (ReporterRole::Neighbor, 0.15),
            (ReporterRole::Landlord, 0.1),
            (ReporterRole::PostalWorker, 0.08),
            (ReporterRole::UtilityReader, 0.07),
            (ReporterRole::VillageHead, if county { 0.15 } else { 0.02 }),
            (ReporterRole::Other, 0.05),
        ],
    );
    let pool: &[Concern] = match hh.household_type {
        HouseholdType::ElderlySingle => &[
            Concern::Isolation,
            Concern::Health,
            Concern::ElderCare,
            Concern::Food,
        ],
        HouseholdType::Single => &[
            Concern::Isolation,
            Concern::Unemployment,
            Concern::Addiction,
            Concern::Debt,
            Concern::MentalHealth,
            Concern::SuicideRisk,
        ],
        HouseholdType::SingleParent => &[
            Concern::ChildCare,
            Concern::Food,
            Concern::Housing,
            Concern::Debt,
        ],
        _ => &[
            Concern::Debt,
            Concern::Housing,
            Concern::Health,
            Concern::Unemployment,
            Concern::Food,
        ],
    };
    let n = rng.random_range(1..=3usize).min(pool.len());
    let mut concerns: Vec<Concern> = Vec::with_capacity(n + 1);
    while concerns.len() < n {
        let c = pool[rng.random_range(0..pool.len())];
        if !concerns.contains(&c) {
            concerns.push(c);
        }
    }
    if hh.disability && rng.random_bool(0.5) && !concerns.contains(&Concern::DisabilityCare) {
        concerns.push(Concern::DisabilityCare);
    }
    let deep = z - CRISIS_THRESHOLD;
    let urgency = if deep > 1.2 && rng.random_bool(0.6) {
        3
    } else if (deep > 0.0 && rng.random_bool(0.5)) || rng.random_bool(0.1) {
        2
    } else {
        1
    };
    let note = rng
        .random_bool(0.5)
        .then(|| NOTES[rng.random_range(0..NOTES.len())].to_string());
    CouncilReport {
        reporter_role,
        concerns,
        urgency,
        note,
    }
}
