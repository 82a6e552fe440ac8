//! The district registry: the 229 시군구 that receive referral lists.
//!
//! The registry ships inside the binary (`data/districts.csv`, a copy of the shared registry), so
//! Lantern runs anywhere without `../shared`. Operators can point `registry.file` at a newer copy
//! when districts merge or split; codes are then checked against that file instead.

use std::collections::BTreeMap;
use std::path::Path;

/// The registry compiled into the binary.
pub const EMBEDDED_DISTRICTS_CSV: &str = include_str!("../../../data/districts.csv");

/// What sort of local government a district is. Referral capacity defaults by kind, because a
/// metropolitan 자치구 has far more caseworkers than a rural 군.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DistrictKind {
    /// 자치구 of a metropolitan city.
    AutonomousGu,
    /// 시.
    City,
    /// 군.
    County,
}

impl DistrictKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "autonomous_gu" => Some(DistrictKind::AutonomousGu),
            "city" => Some(DistrictKind::City),
            "county" => Some(DistrictKind::County),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DistrictKind::AutonomousGu => "autonomous_gu",
            DistrictKind::City => "city",
            DistrictKind::County => "county",
        }
    }
}

/// One district.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct District {
    /// Five-digit 시군구 code.
    pub code: String,
    /// 시도 name, in Korean.
    pub sido: String,
    /// 시군구 name, in Korean.
    pub name: String,
    pub kind: DistrictKind,
}

/// Why a registry file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read district registry {path}: {source}; check `registry.file` in the configuration")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("district registry {origin}, line {line}: {message}")]
    Row {
        origin: String,
        line: u64,
        message: String,
    },
    #[error("district registry {origin} has no districts")]
    Empty { origin: String },
}

/// The set of known districts, keyed by code.
#[derive(Debug, Clone)]
pub struct Registry {
    districts: BTreeMap<String, District>,
}

impl Registry {
    /// The registry shipped in the binary.
    pub fn embedded() -> Registry {
        // The embedded file is checked by a unit test, so this cannot fail in a released build.
        Registry::from_csv(EMBEDDED_DISTRICTS_CSV, "embedded data/districts.csv")
            .expect("embedded district registry is valid (checked by tests)")
    }

    /// Loads a registry file with the columns `district_code,sido,name,kind`.
    pub fn from_file(path: &Path) -> Result<Registry, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Registry::from_csv(&text, &path.display().to_string())
    }

    /// Parses registry CSV text; `origin` names it in errors.
    pub fn from_csv(text: &str, origin: &str) -> Result<Registry, RegistryError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let row_err = |line: u64, message: String| RegistryError::Row {
            origin: origin.to_string(),
            line,
            message,
        };
        let headers = reader
            .headers()
            .map_err(|e| row_err(1, e.to_string()))?
            .clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == name)
                .ok_or_else(|| row_err(1, format!("missing column `{name}`")))
        };
        let (c_code, c_sido, c_name, c_kind) = (
            col("district_code")?,
            col("sido")?,
            col("name")?,
            col("kind")?,
        );
        let mut districts = BTreeMap::new();
        for (i, row) in reader.records().enumerate() {
            let line = i as u64 + 2;
            let row = row.map_err(|e| row_err(line, e.to_string()))?;
            let code = row.get(c_code).unwrap_or_default().to_string();
            if code.len() != 5 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(row_err(
                    line,
                    format!("district_code `{code}` is not 5 digits"),
                ));
            }
            let kind_s = row.get(c_kind).unwrap_or_default();
            let kind = DistrictKind::parse(kind_s).ok_or_else(|| {
                row_err(
                    line,
                    format!("kind `{kind_s}` is not one of autonomous_gu, city, county"),
                )
            })?;
            let district = District {
                code: code.clone(),
                sido: row.get(c_sido).unwrap_or_default().to_string(),
                name: row.get(c_name).unwrap_or_default().to_string(),
                kind,
            };
            if districts.insert(code.clone(), district).is_some() {
                return Err(row_err(
                    line,
                    format!("district_code `{code}` appears twice"),
                ));
            }
        }
        if districts.is_empty() {
            return Err(RegistryError::Empty {
                origin: origin.to_string(),
            });
        }
        Ok(Registry { districts })
    }

    pub fn contains(&self, code: &str) -> bool {
        self.districts.contains_key(code)
    }

    pub fn get(&self, code: &str) -> Option<&District> {
        self.districts.get(code)
    }

    /// All districts, ordered by code.
    pub fn iter(&self) -> impl Iterator<Item = &District> {
        self.districts.values()
    }

    pub fn len(&self) -> usize {
        self.districts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.districts.is_empty()
    }
}

/// Nightly referral capacity: how many households a district's caseworkers can take on per
/// night.
///
/// The default comes from today's national volume: about 200,000 people flagged per two-month
/// round is about 3,300 a night. Spread by kind (a 자치구 or 시 has roughly two to three times
/// the welfare staff of a 군) that is 18 + 18 + 8 per night for the 69 + 78 + 82 districts,
/// 3,302 a night in all. Configuration overrides both the per-kind figures and any single
/// district.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Capacities {
    pub autonomous_gu: u32,
    pub city: u32,
    pub county: u32,
    /// Per-district overrides, keyed by district code.
    #[serde(default)]
    pub districts: BTreeMap<String, u32>,
}

impl Default for Capacities {
    fn default() -> Self {
        Capacities {
            autonomous_gu: 18,
            city: 18,
            county: 8,
            districts: BTreeMap::new(),
        }
    }
}

impl Capacities {
    /// A district's nightly capacity multiplied by `scale` (screen.capacity_scale), at least 1;
    /// 0 for a code not in the registry.
    pub fn scaled(&self, registry: &Registry, code: &str, scale: f64) -> u32 {
        registry
            .get(code)
            .map(|d| ((self.for_district(d) as f64 * scale).round() as u32).max(1))
            .unwrap_or(0)
    }

    /// The nightly capacity of one district.
    pub fn for_district(&self, district: &District) -> u32 {
        if let Some(&c) = self.districts.get(&district.code) {
            return c;
        }
        match district.kind {
            DistrictKind::AutonomousGu => self.autonomous_gu,
            DistrictKind::City => self.city,
            DistrictKind::County => self.county,
        }
    }

    /// Overrides that name a district the registry does not know: almost always a typo, so
    /// configuration loading refuses them.
    pub fn unknown_overrides<'a>(&'a self, registry: &'a Registry) -> Vec<&'a str> {
        self.districts
            .keys()
            .filter(|c| !registry.contains(c))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_registry_has_the_229_real_districts() {
        let r = Registry::embedded();
        assert_eq!(r.len(), 229);
        assert_eq!(r.get("11110").unwrap().name, "종로구");
        assert_eq!(
            r.iter()
                .filter(|d| d.kind == DistrictKind::AutonomousGu)
                .count(),
            69
        );
        assert!(!r.contains("99999"));
    }

    #[test]
    fn embedded_registry_matches_the_shared_registry_when_present() {
        let shared =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/districts.csv");
        if let Ok(text) = std::fs::read_to_string(shared) {
            assert_eq!(
                text, EMBEDDED_DISTRICTS_CSV,
                "data/districts.csv is out of date"
            );
        }
    }

    #[test]
    fn bad_registry_rows_name_the_line() {
        let err = Registry::from_csv(
            "district_code,sido,name,kind\n11110,서울,종로구,autonomous_gu\n1111,x,y,city\n",
            "t.csv",
        )
        .unwrap_err();
        assert!(err.to_string().contains("t.csv, line 3"), "{err}");
        let err = Registry::from_csv("district_code,sido,name,kind\n11110,a,b,town\n", "t.csv")
            .unwrap_err();
        assert!(err.to_string().contains("kind `town`"), "{err}");
    }

    #[test]
    fn capacity_defaults_by_kind_and_overrides_per_district() {
        let r = Registry::embedded();
        let mut caps = Capacities::default();
        let total: u32 = r.iter().map(|d| caps.for_district(d)).sum();
        assert_eq!(total, 69 * 18 + 78 * 18 + 82 * 8);
        caps.districts.insert("11110".into(), 40);
        caps.districts.insert("00000".into(), 1);
        assert_eq!(caps.for_district(r.get("11110").unwrap()), 40);
        assert_eq!(caps.unknown_overrides(&r), vec!["00000"]);
    }
}
