//! Who lives where: districts sized like real ones, and households drawn from Korea's published
//! composition.
//!
//! Facts the draws follow (Statistics Korea, 2023 census-based estimates): about 22.7 million
//! households; 35% are one person, about a third of those aged 65 or more; single-parent
//! households about 6.5%; registered disability in about 5% of households, more among the old.
//! A metropolitan 자치구 holds about 150,000 households, a 시 anywhere from 30,000 to 500,000,
//! a 군 about 25,000.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::contract::{AgeBand, Household, HouseholdType};
use crate::registry::{DistrictKind, Registry};

/// Korea's household count, the scale the simulator's district sizes are drawn at.
pub const NATIONAL_HOUSEHOLDS: f64 = 22_700_000.0;

/// A district as the simulator sees it: its code, how many households it gets, its dongs.
#[derive(Debug, Clone)]
pub struct SimDistrict {
    pub code: String,
    pub sido: String,
    pub kind: DistrictKind,
    /// The district's households in the simulated population.
    pub households: u64,
    /// Number of 읍면동 (dong codes `<code><101 + 3i>00`).
    pub dongs: u32,
    /// A district-level shift of crisis risk (deprivation), drawn once.
    pub deprivation: f64,
}

/// Draws district sizes at national scale, then shares `total` households out in proportion
/// (largest remainder, so the counts add up exactly and do not depend on float summation
/// order).
pub fn districts(registry: &Registry, total: u64, rng: &mut ChaCha8Rng) -> Vec<SimDistrict> {
    let mut drawn: Vec<(SimDistrict, f64)> = registry
        .iter()
        .map(|d| {
            // Lognormal spread around the kind's typical size.
            let (typical, spread) = match d.kind {
                DistrictKind::AutonomousGu => (150_000.0, 0.45),
                DistrictKind::City => (110_000.0, 0.8),
                DistrictKind::County => (24_000.0, 0.35),
            };
            let z: f64 = Normal::new(0.0, spread)
                .expect("positive spread")
                .sample(rng);
            let size = (typical * z.exp()).clamp(8_000.0, 520_000.0);
            let deprivation = match d.kind {
                DistrictKind::AutonomousGu => 0.0,
                DistrictKind::City => 0.05,
                DistrictKind::County => 0.2,
            } + Normal::new(0.0, 0.12).expect("positive spread").sample(rng);
            let dongs = ((size / 9_000.0).round() as u32).clamp(5, 45);
            (
                SimDistrict {
                    code: d.code.clone(),
                    sido: d.sido.clone(),
                    kind: d.kind,
                    households: 0,
                    dongs,
                    deprivation,
                },
                size,
            )
        })
        .collect();
    let sum: f64 = drawn.iter().map(|(_, s)| s).sum();
    let mut assigned = 0u64;
    let mut remainders: Vec<(usize, f64)> = Vec::with_capacity(drawn.len());
    for (i, (d, size)) in drawn.iter_mut().enumerate() {
        let exact = *size / sum * total as f64;
        d.households = exact.floor() as u64;
        assigned += d.households;
        remainders.push((i, exact - exact.floor()));
    }
    // Largest remainders first; ties by index, so the result is fully determined.
    remainders.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for (i, _) in remainders.iter().take((total - assigned) as usize) {
        drawn[*i].0.households += 1;
    }
    drawn.into_iter().map(|(d, _)| d).collect()
}

/// The dong code of dong number `i` of a district.
pub fn dong_code(district: &str, i: u32) -> String {
    format!("{district}{:03}00", 101 + 3 * i)
}

/// Draws one household's reference attributes.
pub fn household(id: String, district: &SimDistrict, rng: &mut ChaCha8Rng) -> Household {
    // Counties are older: more elderly single households, fewer young singles.
    let elderly_share = match district.kind {
        DistrictKind::County => 0.19,
        _ => 0.09,
    };
    let household_type = pick(
        rng,
        &[
            (HouseholdType::Single, 0.345 - elderly_share),
            (HouseholdType::ElderlySingle, elderly_share),
            (HouseholdType::SingleParent, 0.065),
            (HouseholdType::Couple, 0.21),
            (HouseholdType::Family, 0.30),
            (HouseholdType::Other, 0.08),
        ],
    );
    let head_age_band = match household_type {
        HouseholdType::ElderlySingle => AgeBand::Over65,
        HouseholdType::Single => pick(
            rng,
            &[
                (AgeBand::Under20, 0.04),
                (AgeBand::From20To39, 0.52),
                (AgeBand::From40To64, 0.44),
            ],
        ),
        HouseholdType::SingleParent => pick(
            rng,
            &[
                (AgeBand::From20To39, 0.35),
                (AgeBand::From40To64, 0.6),
                (AgeBand::Over65, 0.05),
            ],
        ),
        HouseholdType::Couple => pick(
            rng,
            &[
                (AgeBand::From20To39, 0.2),
                (AgeBand::From40To64, 0.4),
                (AgeBand::Over65, 0.4),
            ],
        ),
        HouseholdType::Family => pick(
            rng,
            &[
                (AgeBand::From20To39, 0.25),
                (AgeBand::From40To64, 0.62),
                (AgeBand::Over65, 0.13),
            ],
        ),
        HouseholdType::Other => pick(
            rng,
            &[
                (AgeBand::Under20, 0.02),
                (AgeBand::From20To39, 0.3),
                (AgeBand::From40To64, 0.45),
                (AgeBand::Over65, 0.23),
            ],
        ),
    };
    let members = match household_type {
        HouseholdType::Single | HouseholdType::ElderlySingle => 1,
        HouseholdType::Couple => 2,
        HouseholdType::SingleParent => rng.random_range(2..=4),
        HouseholdType::Family => rng.random_range(3..=6),
        HouseholdType::Other => rng.random_range(2..=5),
    };
    let disability_p = if head_age_band == AgeBand::Over65 {
        0.09
    } else {
        0.035
    };
    let disability = rng.random_bool(disability_p);
    let dong = rng.random_range(0..district.dongs);
    Household {
        household_id: id,
        district_code: district.code.clone(),
        dong_code: Some(dong_code(&district.code, dong)),
        members,
        head_age_band,
        household_type,
        disability,
    }
}

/// Picks from weighted choices (weights need not sum to one).
pub fn pick<T: Copy>(rng: &mut ChaCha8Rng, choices: &[(T, f64)]) -> T {
    let total: f64 = choices.iter().map(|c| c.1).sum();
    let mut x = rng.random::<f64>() * total;
    for &(v, w) in choices {
        if x < w {
            return v;
        }
        x -= w;
    }
    choices[choices.len() - 1].0
}
