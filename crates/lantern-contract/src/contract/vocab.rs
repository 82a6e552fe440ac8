//! The closed value sets of the contract (SPEC §1–§3), one enum each.
//!
//! Each enum spells its values exactly as the contract does, both in `as_str` (used by the
//! validator and the lake) and through serde (used when writing JSON). A unit test checks that
//! the two spellings agree, so they cannot drift apart.

use serde::{Deserialize, Serialize};

/// A closed set of string values.
pub trait Vocab: Copy + Sized + 'static {
    /// Every value, in contract order.
    const ALL: &'static [Self];
    /// The contract's spelling.
    fn as_str(self) -> &'static str;
    /// The value with this spelling, if any.
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
    /// The spellings joined for an error message: `a, b, c`.
    fn expected() -> String {
        Self::ALL
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Which of the three signal families a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    UtilityArrears,
    CouncilReport,
    ServiceGap,
}

impl Vocab for SignalKind {
    const ALL: &'static [Self] = &[
        SignalKind::UtilityArrears,
        SignalKind::CouncilReport,
        SignalKind::ServiceGap,
    ];
    fn as_str(self) -> &'static str {
        match self {
            SignalKind::UtilityArrears => "utility_arrears",
            SignalKind::CouncilReport => "council_report",
            SignalKind::ServiceGap => "service_gap",
        }
    }
}

impl SignalKind {
    /// The default Kafka topic for this kind (configurable in `[topics]`).
    pub fn default_topic(self) -> &'static str {
        match self {
            SignalKind::UtilityArrears => "signals.utility-arrears",
            SignalKind::CouncilReport => "signals.council-reports",
            SignalKind::ServiceGap => "signals.service-gaps",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Utility {
    Electricity,
    Water,
    Gas,
    Telecom,
    HealthInsurance,
    HousingFee,
    Rent,
    PensionLoan,
    Credit,
}

impl Vocab for Utility {
    const ALL: &'static [Self] = &[
        Utility::Electricity,
        Utility::Water,
        Utility::Gas,
        Utility::Telecom,
        Utility::HealthInsurance,
        Utility::HousingFee,
        Utility::Rent,
        Utility::PensionLoan,
        Utility::Credit,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Utility::Electricity => "electricity",
            Utility::Water => "water",
            Utility::Gas => "gas",
            Utility::Telecom => "telecom",
            Utility::HealthInsurance => "health_insurance",
            Utility::HousingFee => "housing_fee",
            Utility::Rent => "rent",
            Utility::PensionLoan => "pension_loan",
            Utility::Credit => "credit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReporterRole {
    CouncilMember,
    HonoraryWelfareOfficer,
    VillageHead,
    Neighbor,
    Landlord,
    PostalWorker,
    UtilityReader,
    Other,
}

impl Vocab for ReporterRole {
    const ALL: &'static [Self] = &[
        ReporterRole::CouncilMember,
        ReporterRole::HonoraryWelfareOfficer,
        ReporterRole::VillageHead,
        ReporterRole::Neighbor,
        ReporterRole::Landlord,
        ReporterRole::PostalWorker,
        ReporterRole::UtilityReader,
        ReporterRole::Other,
    ];
    fn as_str(self) -> &'static str {
        match self {
            ReporterRole::CouncilMember => "council_member",
            ReporterRole::HonoraryWelfareOfficer => "honorary_welfare_officer",
            ReporterRole::VillageHead => "village_head",
            ReporterRole::Neighbor => "neighbor",
            ReporterRole::Landlord => "landlord",
            ReporterRole::PostalWorker => "postal_worker",
            ReporterRole::UtilityReader => "utility_reader",
            ReporterRole::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concern {
    Isolation,
    Food,
    Housing,
    Health,
    MentalHealth,
    Addiction,
    Debt,
    ChildCare,
    ElderCare,
    DisabilityCare,
    SuicideRisk,
    Unemployment,
}

impl Vocab for Concern {
    const ALL: &'static [Self] = &[
        Concern::Isolation,
        Concern::Food,
        Concern::Housing,
        Concern::Health,
        Concern::MentalHealth,
        Concern::Addiction,
        Concern::Debt,
        Concern::ChildCare,
        Concern::ElderCare,
        Concern::DisabilityCare,
        Concern::SuicideRisk,
        Concern::Unemployment,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Concern::Isolation => "isolation",
            Concern::Food => "food",
            Concern::Housing => "housing",
            Concern::Health => "health",
            Concern::MentalHealth => "mental_health",
            Concern::Addiction => "addiction",
            Concern::Debt => "debt",
            Concern::ChildCare => "child_care",
            Concern::ElderCare => "elder_care",
            Concern::DisabilityCare => "disability_care",
            Concern::SuicideRisk => "suicide_risk",
            Concern::Unemployment => "unemployment",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    BasicLivelihood,
    EmergencyWelfare,
    HousingBenefit,
    BasicPension,
    DisabilityPension,
    ChildAllowance,
    EnergyVoucher,
    MedicalAid,
    Other,
}

impl Vocab for Program {
    const ALL: &'static [Self] = &[
        Program::BasicLivelihood,
        Program::EmergencyWelfare,
        Program::HousingBenefit,
        Program::BasicPension,
        Program::DisabilityPension,
        Program::ChildAllowance,
        Program::EnergyVoucher,
        Program::MedicalAid,
        Program::Other,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Program::BasicLivelihood => "basic_livelihood",
            Program::EmergencyWelfare => "emergency_welfare",
            Program::HousingBenefit => "housing_benefit",
            Program::BasicPension => "basic_pension",
            Program::DisabilityPension => "disability_pension",
            Program::ChildAllowance => "child_allowance",
            Program::EnergyVoucher => "energy_voucher",
            Program::MedicalAid => "medical_aid",
            Program::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gap {
    BenefitTerminated,
    ApplicationRejected,
    EligibleNotEnrolled,
    ServiceEnded,
    ContactFailed,
}

impl Vocab for Gap {
    const ALL: &'static [Self] = &[
        Gap::BenefitTerminated,
        Gap::ApplicationRejected,
        Gap::EligibleNotEnrolled,
        Gap::ServiceEnded,
        Gap::ContactFailed,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Gap::BenefitTerminated => "benefit_terminated",
            Gap::ApplicationRejected => "application_rejected",
            Gap::EligibleNotEnrolled => "eligible_not_enrolled",
            Gap::ServiceEnded => "service_ended",
            Gap::ContactFailed => "contact_failed",
        }
    }
}

/// The result of a caseworker's visit (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Supported,
    DeclinedSupport,
    NoCrisis,
    Unreachable,
    Moved,
}

impl Vocab for Outcome {
    const ALL: &'static [Self] = &[
        Outcome::Supported,
        Outcome::DeclinedSupport,
        Outcome::NoCrisis,
        Outcome::Unreachable,
        Outcome::Moved,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Supported => "supported",
            Outcome::DeclinedSupport => "declined_support",
            Outcome::NoCrisis => "no_crisis",
            Outcome::Unreachable => "unreachable",
            Outcome::Moved => "moved",
        }
    }
}

impl Outcome {
    /// The training label: `Some(true)` for a confirmed crisis (support given or declined),
    /// `Some(false)` for no crisis, `None` when nobody could tell (unreachable, moved).
    pub fn label(self) -> Option<bool> {
        match self {
            Outcome::Supported | Outcome::DeclinedSupport => Some(true),
            Outcome::NoCrisis => Some(false),
            Outcome::Unreachable | Outcome::Moved => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AgeBand {
    #[serde(rename = "0-19")]
    Under20,
    #[serde(rename = "20-39")]
    From20To39,
    #[serde(rename = "40-64")]
    From40To64,
    #[serde(rename = "65+")]
    Over65,
}

impl Vocab for AgeBand {
    const ALL: &'static [Self] = &[
        AgeBand::Under20,
        AgeBand::From20To39,
        AgeBand::From40To64,
        AgeBand::Over65,
    ];
    fn as_str(self) -> &'static str {
        match self {
            AgeBand::Under20 => "0-19",
            AgeBand::From20To39 => "20-39",
            AgeBand::From40To64 => "40-64",
            AgeBand::Over65 => "65+",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HouseholdType {
    Single,
    ElderlySingle,
    SingleParent,
    Couple,
    Family,
    Other,
}

impl Vocab for HouseholdType {
    const ALL: &'static [Self] = &[
        HouseholdType::Single,
        HouseholdType::ElderlySingle,
        HouseholdType::SingleParent,
        HouseholdType::Couple,
        HouseholdType::Family,
        HouseholdType::Other,
    ];
    fn as_str(self) -> &'static str {
        match self {
            HouseholdType::Single => "single",
            HouseholdType::ElderlySingle => "elderly_single",
            HouseholdType::SingleParent => "single_parent",
            HouseholdType::Couple => "couple",
            HouseholdType::Family => "family",
            HouseholdType::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_and_as_str_agree<T: Vocab + Serialize + for<'de> Deserialize<'de> + PartialEq>() {
        for &v in T::ALL {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json, serde_json::Value::String(v.as_str().to_string()));
            let back: T = serde_json::from_value(json).unwrap();
            assert!(back == v);
            assert!(T::parse(v.as_str()) == Some(v));
        }
        assert!(T::parse("not-a-value").is_none());
    }

    #[test]
    fn spellings_agree_between_serde_and_validator() {
        serde_and_as_str_agree::<SignalKind>();
        serde_and_as_str_agree::<Utility>();
        serde_and_as_str_agree::<ReporterRole>();
        serde_and_as_str_agree::<Concern>();
        serde_and_as_str_agree::<Program>();
        serde_and_as_str_agree::<Gap>();
        serde_and_as_str_agree::<Outcome>();
        serde_and_as_str_agree::<AgeBand>();
        serde_and_as_str_agree::<HouseholdType>();
    }

    #[test]
    fn value_sets_have_the_contract_sizes() {
        assert_eq!(Utility::ALL.len(), 9);
        assert_eq!(ReporterRole::ALL.len(), 8);
        assert_eq!(Concern::ALL.len(), 12);
        assert_eq!(Program::ALL.len(), 9);
        assert_eq!(Gap::ALL.len(), 5);
        assert_eq!(Outcome::ALL.len(), 5);
    }

    #[test]
    fn labels_follow_spec_section_3() {
        assert_eq!(Outcome::Supported.label(), Some(true));
        assert_eq!(Outcome::DeclinedSupport.label(), Some(true));
        assert_eq!(Outcome::NoCrisis.label(), Some(false));
        assert_eq!(Outcome::Unreachable.label(), None);
        assert_eq!(Outcome::Moved.label(), None);
    }
}
