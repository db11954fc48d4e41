//! KBI office → region (`config/kbi-regions.toml`, reviewed configuration), for the field
//! `kbi_region` of `protocols.md` section 3.
//!
//! The list is the agency's to review: the shipped file is embedded ([`Regions::shipped`]); an
//! operator's file replaces it whole ([`Regions::from_toml`], the CLI reads the file). Offices
//! are compared as the text `KbiNummer` holds (trimmed), so `01234` and `1234` are two offices:
//! a number written differently in the register and the list must show up as "not listed", not
//! be matched by a guess.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// The shipped list.
const SHIPPED: &str = include_str!("../../../config/kbi-regions.toml");

/// Longest office number or region name accepted (they end up in cells and WARN counts).
const MAX_LEN: usize = 64;

/// Longest office number accepted.
const MAX_OFFICE: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    regions: Vec<String>,
    offices: BTreeMap<String, String>,
}

/// The reviewed office → region list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    version: String,
    offices: BTreeMap<String, String>,
}

impl Regions {
    /// The shipped list (`config/kbi-regions.toml`, embedded).
    pub fn shipped() -> Regions {
        Regions::from_toml(SHIPPED).expect("the shipped config/kbi-regions.toml is valid")
    }

    /// Reads a list. Refused, naming the key: unknown keys, an office listed twice (TOML itself
    /// refuses a duplicate key), an office number that is not 1 to 10 digits, a region not
    /// declared in `regions`, a region declared twice, an empty `version`.
    pub fn from_toml(text: &str) -> Result<Regions, String> {
        let file: File =
            toml::from_str(text).map_err(|e| format!("not a valid region list: {e}"))?;
        let version = file.version.trim();
        if version.is_empty() || version.len() > MAX_LEN {
            return Err("version: must be 1 to 64 characters".to_owned());
        }
        let mut declared = BTreeSet::new();
        for (i, region) in file.regions.iter().enumerate() {
            if region.trim().is_empty()
                || region.trim() != region
                || region.len() > MAX_LEN
                || region.chars().any(char::is_control)
            {
                return Err(format!(
                    "regions[{i}]: a region name is 1 to {MAX_LEN} characters, trimmed, without control characters"
                ));
            }
            if !declared.insert(region.as_str()) {
                return Err(format!("regions[{i}]: region {region:?} is listed twice"));
            }
        }
        for (office, region) in &file.offices {
            // At most 10 digits: `kbi_office` never writes 11 digits in a row (an INSZ).
            if office.is_empty()
                || office.len() > MAX_OFFICE
                || !office.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!(
                    "offices.{office:?}: an office number (KbiNummer) is 1 to {MAX_OFFICE} digits"
                ));
            }
            if !declared.contains(region.as_str()) {
                return Err(format!(
                    "offices.{office}: region {region:?} is not one of `regions`"
                ));
            }
        }
        Ok(Regions {
            version: version.to_owned(),
            offices: file.offices,
        })
    }

    /// The region of an office (`KbiNummer` as written in the dossier), if listed.
    pub fn region(&self, office: &str) -> Option<&str> {
        self.offices.get(office.trim()).map(String::as_str)
    }

    /// The list's `version` (for a report or manifest: which reviewed list was used).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every listed office and its region, by office number.
    pub fn offices(&self) -> impl Iterator<Item = (&str, &str)> {
        self.offices.iter().map(|(o, r)| (o.as_str(), r.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
version = "test-1"
regions = ["Gent", "Limburg"]
[offices]
"40101" = "Gent"
"70101" = "Limburg"
"#;

    #[test]
    fn shipped_list_loads_and_maps_its_offices() {
        let regions = Regions::shipped();
        assert_eq!(regions.region("20201"), Some("Mechelen"));
        assert_eq!(regions.region("40101"), Some("Gent"));
        assert_eq!(regions.region("99999"), None);
        assert!(regions.offices().count() >= 12);
        assert!(!regions.version().is_empty());
    }

    #[test]
    fn shipped_offices_are_the_numbers_the_generator_uses() {
        // /work/notes/regions-numbers.txt was handed to the synthetic-dossier generator: every
        // shipped office is five digits, so the two stay in step by this shape at least.
        for (office, _) in Regions::shipped().offices() {
            assert_eq!(office.len(), 5, "{office}");
        }
    }

    #[test]
    fn a_small_list_maps_exactly() {
        let regions = Regions::from_toml(SMALL).unwrap();
        assert_eq!(regions.region("40101"), Some("Gent"));
        assert_eq!(regions.region(" 70101 "), Some("Limburg"));
        // compared as text: leading zeros make another office
        assert_eq!(regions.region("040101"), None);
        assert_eq!(regions.region(""), None);
    }

    #[test]
    fn a_duplicate_office_is_refused_naming_it() {
        let text = format!("{SMALL}\"40101\" = \"Limburg\"\n");
        let err = Regions::from_toml(&text).unwrap_err();
        assert!(err.contains("40101"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_refused_naming_it() {
        let text = SMALL.replace("version", "owner = \"x\"\nversion");
        let err = Regions::from_toml(&text).unwrap_err();
        assert!(err.contains("owner"), "{err}");
    }

    #[test]
    fn a_region_not_declared_is_refused_naming_the_office() {
        let text = SMALL.replace("\"70101\" = \"Limburg\"", "\"70101\" = \"Limbrug\"");
        let err = Regions::from_toml(&text).unwrap_err();
        assert!(
            err.contains("offices.70101") && err.contains("Limbrug"),
            "{err}"
        );
    }

    #[test]
    fn a_region_declared_twice_is_refused() {
        let text = SMALL.replace(
            "[\"Gent\", \"Limburg\"]",
            "[\"Gent\", \"Gent\", \"Limburg\"]",
        );
        let err = Regions::from_toml(&text).unwrap_err();
        assert!(err.contains("regions[1]"), "{err}");
    }

    #[test]
    fn an_office_that_is_not_digits_is_refused() {
        let text = SMALL.replace("\"40101\" = \"Gent\"", "\"Gent-1\" = \"Gent\"");
        let err = Regions::from_toml(&text).unwrap_err();
        assert!(err.contains("Gent-1"), "{err}");
        let text = SMALL.replace("\"40101\" = \"Gent\"", "\"40101000000\" = \"Gent\"");
        let err = Regions::from_toml(&text).unwrap_err();
        assert!(err.contains("40101000000"), "{err}");
    }

    #[test]
    fn a_missing_section_is_refused() {
        let err = Regions::from_toml("version = \"x\"\nregions = []\n").unwrap_err();
        assert!(err.contains("offices"), "{err}");
    }
}
