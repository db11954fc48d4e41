//! The rule set: dated regimes per region with their deadline settings (`config/rules.toml`).
//!
//! A change of law is a change of this file, reviewed like code. Every answer echoes the file's
//! `version` as `rule_set`, so an answer can be traced to the rules that produced it.

use chrono::NaiveDate;
use serde::Deserialize;

use super::day::parse_date;
use super::event::{EventKind, Region};
use super::facts::Facts;

/// The rules shipped with the program (`config/rules.toml`), used when no other file is named.
pub(crate) const SHIPPED_RULES: &str = include_str!("../../../../config/rules.toml");

/// One regime: the deadlines that apply to obligation periods starting while it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regime {
    pub id: String,
    pub region: Region,
    pub valid_from: NaiveDate,
    /// Last day (inclusive) on which a period may start under this regime.
    pub valid_until: Option<NaiveDate>,
    /// Register within this many calendar months of the period start.
    pub registration_months: Option<u32>,
    /// Register with VDAB/Actiris within this many days of the period's first contract.
    pub employment_service_days: Option<u32>,
    /// Sign the contract within this many calendar months of the period start.
    pub contract_months: Option<u32>,
    /// Obtain the certificate within this many calendar months of the period start.
    pub certificate_months: Option<u32>,
}

/// A deadline setting of a regime, with the act that meets the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineSetting {
    Registration,
    EmploymentService,
    Contract,
    Certificate,
}

impl DeadlineSetting {
    pub const ALL: [DeadlineSetting; 4] = [
        DeadlineSetting::Registration,
        DeadlineSetting::EmploymentService,
        DeadlineSetting::Contract,
        DeadlineSetting::Certificate,
    ];

    /// The setting's key in `config/rules.toml`.
    pub fn key(self) -> &'static str {
        match self {
            DeadlineSetting::Registration => "registration_months",
            DeadlineSetting::EmploymentService => "employment_service_days",
            DeadlineSetting::Contract => "contract_months",
            DeadlineSetting::Certificate => "certificate_months",
        }
    }

    /// The act whose absence would make the deadline missed (`rules.md`, rule 3).
    pub fn act(self) -> EventKind {
        match self {
            DeadlineSetting::Registration => EventKind::Registration,
            DeadlineSetting::EmploymentService => EventKind::EmploymentServiceRegistration,
            DeadlineSetting::Contract => EventKind::ContractSigned,
            DeadlineSetting::Certificate => EventKind::Certificate,
        }
    }

    /// The regime's value for this setting (absent = not derived).
    pub fn value(self, regime: &Regime) -> Option<u32> {
        match self {
            DeadlineSetting::Registration => regime.registration_months,
            DeadlineSetting::EmploymentService => regime.employment_service_days,
            DeadlineSetting::Contract => regime.contract_months,
            DeadlineSetting::Certificate => regime.certificate_months,
        }
    }

    fn slot(self, regime: &mut Regime) -> &mut Option<u32> {
        match self {
            DeadlineSetting::Registration => &mut regime.registration_months,
            DeadlineSetting::EmploymentService => &mut regime.employment_service_days,
            DeadlineSetting::Contract => &mut regime.contract_months,
            DeadlineSetting::Certificate => &mut regime.certificate_months,
        }
    }
}

impl Regime {
    /// The deadline settings this regime sets whose act `facts` does not record: `rules.md`
    /// derives no missed deadline from them (a NOK needs a fact, not the register's silence).
    pub fn deadlines_left_out(&self, facts: Facts) -> Vec<DeadlineSetting> {
        DeadlineSetting::ALL
            .into_iter()
            .filter(|d| d.value(self).is_some() && !facts.records(d.act()))
            .collect()
    }

    fn covers(&self, region: Region, start: NaiveDate) -> bool {
        self.region == region
            && self.valid_from <= start
            && self.valid_until.is_none_or(|until| start <= until)
    }
}

/// The validated rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    pub version: String,
    pub max_days_after_extract: u32,
    pub regimes: Vec<Regime>,
    earliest: NaiveDate,
}

/// A rule file that cannot be used, with the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rules file is not valid TOML for a rule set: {0}")]
    Syntax(String),
    #[error("rules: `version` must be a non-empty string of at most 64 printable characters")]
    Version,
    #[error("rules: at least one [[regime]] is required")]
    NoRegimes,
    #[error("rules: regime #{index}: {message}")]
    Regime { index: usize, message: String },
    #[error("rules: regimes #{first} and #{second} overlap for region {region}")]
    Overlap {
        first: usize,
        second: usize,
        region: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    version: String,
    #[serde(default = "default_max_days")]
    max_days_after_extract: u32,
    #[serde(default, rename = "regime")]
    regimes: Vec<RegimeFile>,
}

fn default_max_days() -> u32 {
    31
}

// Unknown keys are refused: a misspelt `registraton_months` must not silently switch a
// deadline off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegimeFile {
    id: String,
    region: String,
    valid_from: String,
    valid_until: Option<String>,
    registration_months: Option<u32>,
    employment_service_days: Option<u32>,
    contract_months: Option<u32>,
    certificate_months: Option<u32>,
}

impl RuleSet {
    /// The shipped rules. They are validated by a unit test, so this cannot fail in a release.
    pub fn shipped() -> RuleSet {
        RuleSet::from_toml(SHIPPED_RULES).expect("shipped config/rules.toml is valid")
    }

    /// Parses and validates a rule file.
    pub fn from_toml(text: &str) -> Result<RuleSet, RulesError> {
        let file: RuleFile = crate::redact::toml(text).map_err(RulesError::Syntax)?;
        let version = file.version.trim().to_string();
        if version.is_empty() || version.len() > 64 || version.chars().any(|c| c.is_control()) {
            return Err(RulesError::Version);
        }
        if file.regimes.is_empty() {
            return Err(RulesError::NoRegimes);
        }
        let mut regimes = Vec::with_capacity(file.regimes.len());
        for (i, r) in file.regimes.into_iter().enumerate() {
            let index = i + 1;
            let bad = |message: String| RulesError::Regime { index, message };
            if r.id.trim().is_empty() {
                return Err(bad("`id` must not be empty".into()));
            }
            let region =
                Region::parse(&r.region).ok_or_else(|| bad("`region` must be VL or BXL".into()))?;
            let valid_from =
                parse_date(&r.valid_from).map_err(|e| bad(format!("`valid_from`: {e}")))?;
            let valid_until = r
                .valid_until
                .as_deref()
                .map(parse_date)
                .transpose()
                .map_err(|e| bad(format!("`valid_until`: {e}")))?;
            if valid_until.is_some_and(|until| until < valid_from) {
                return Err(bad("`valid_until` is before `valid_from`".into()));
            }
            for (name, value) in [
                ("registration_months", r.registration_months),
                ("contract_months", r.contract_months),
                ("certificate_months", r.certificate_months),
            ] {
                if value == Some(0) || value.is_some_and(|m| m > 1200) {
                    return Err(bad(format!("`{name}` must be between 1 and 1200")));
                }
            }
            if r.employment_service_days.is_some_and(|d| d > 36_500) {
                return Err(bad("`employment_service_days` must be at most 36500".into()));
            }
            if let Some(other) = regimes.iter().position(|other: &Regime| other.id == r.id) {
                return Err(bad(format!("`id` is the same as regime #{}'s", other + 1)));
            }
            regimes.push(Regime {
                id: r.id,
                region,
                valid_from,
                valid_until,
                registration_months: r.registration_months,
                employment_service_days: r.employment_service_days,
                contract_months: r.contract_months,
                certificate_months: r.certificate_months,
            });
        }
        for (i, a) in regimes.iter().enumerate() {
            for (j, b) in regimes.iter().enumerate().skip(i + 1) {
                let a_end = a.valid_until.unwrap_or(NaiveDate::MAX);
                let b_end = b.valid_until.unwrap_or(NaiveDate::MAX);
                if a.region == b.region && a.valid_from <= b_end && b.valid_from <= a_end {
                    return Err(RulesError::Overlap {
                        first: i + 1,
                        second: j + 1,
                        region: a.region.code(),
                    });
                }
            }
        }
        let earliest = regimes
            .iter()
            .map(|r| r.valid_from)
            .min()
            .unwrap_or(NaiveDate::MAX);
        Ok(RuleSet {
            version,
            max_days_after_extract: file.max_days_after_extract,
            regimes,
            earliest,
        })
    }

    /// The regime that judges a period of `region` starting on `start`: the one in force on the
    /// period's start date (the law of 1 March 2022 changed duties only for those obligated from
    /// that day on).
    pub fn regime_for(&self, region: Region, start: NaiveDate) -> Option<&Regime> {
        self.regimes.iter().find(|r| r.covers(region, start))
    }

    /// Position of a regime in `regimes`, for compact references.
    pub(crate) fn regime_index(&self, region: Region, start: NaiveDate) -> Option<usize> {
        self.regimes.iter().position(|r| r.covers(region, start))
    }

    /// The first day any regime is in force; earlier reference dates get error 30004.
    pub fn earliest_valid_from(&self) -> NaiveDate {
        self.earliest
    }

    /// The rules as they judge a snapshot whose source records only `facts`: every deadline
    /// whose act the source does not record is switched off (`rules.md`, rule 3). Regimes,
    /// their order, the version and the extract margin are unchanged, so answers still echo
    /// the same `rule_set` and regime indexes still match.
    pub fn judged_with(&self, facts: Facts) -> RuleSet {
        let mut rules = self.clone();
        for regime in &mut rules.regimes {
            for setting in regime.deadlines_left_out(facts) {
                *setting.slot(regime) = None;
            }
        }
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_are_valid() {
        let rules = RuleSet::shipped();
        assert_eq!(rules.max_days_after_extract, 31);
        assert_eq!(
            rules.earliest_valid_from(),
            parse_date("2014-01-01").unwrap()
        );
        let vl = |d: &str| {
            rules
                .regime_for(Region::Flanders, parse_date(d).unwrap())
                .map(|r| r.id.as_str())
        };
        assert_eq!(vl("2022-02-28"), Some("VL-2014"));
        assert_eq!(vl("2022-03-01"), Some("VL-2022"));
        assert_eq!(vl("2013-12-31"), None);
        let bxl = |d: &str| {
            rules
                .regime_for(Region::Brussels, parse_date(d).unwrap())
                .map(|r| r.id.as_str())
        };
        assert_eq!(bxl("2022-05-31"), None);
        assert_eq!(bxl("2022-06-01"), Some("BXL-2022"));
    }

    #[test]
    fn deadlines_whose_act_is_not_recorded_are_left_out() {
        let rules = RuleSet::shipped();
        let without_vdab = Facts::from_names(
            crate::domain::event::EVENT_TYPES
                .into_iter()
                .filter(|t| *t != "EMPLOYMENT_SERVICE_REGISTRATION"),
        )
        .unwrap();
        let vl2022 = |r: &RuleSet| r.regimes.iter().find(|g| g.id == "VL-2022").cloned();
        let regime = vl2022(&rules).unwrap();
        assert_eq!(
            regime.deadlines_left_out(without_vdab),
            [DeadlineSetting::EmploymentService]
        );
        assert!(regime.deadlines_left_out(Facts::ALL).is_empty());
        let judged = rules.judged_with(without_vdab);
        let judged_regime = vl2022(&judged).unwrap();
        assert_eq!(judged_regime.employment_service_days, None);
        assert_eq!(judged_regime.registration_months, Some(3));
        assert_eq!(judged.version, rules.version);
        assert_eq!(rules.judged_with(Facts::ALL), rules);
    }

    #[test]
    fn misspelt_setting_is_refused() {
        let text = SHIPPED_RULES.replacen("registration_months", "registraton_months", 1);
        let err = RuleSet::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("registraton_months"), "{err}");
    }

    #[test]
    fn overlapping_regimes_are_refused() {
        let text = r#"
            version = "t"
            [[regime]]
            id = "A"
            region = "VL"
            valid_from = "2014-01-01"
            [[regime]]
            id = "B"
            region = "VL"
            valid_from = "2020-01-01"
        "#;
        assert!(matches!(
            RuleSet::from_toml(text),
            Err(RulesError::Overlap { .. })
        ));
    }

    #[test]
    fn bad_region_and_dates_name_the_regime() {
        let text = "version = \"t\"\n[[regime]]\nid = \"A\"\nregion = \"WAL\"\nvalid_from = \"2014-01-01\"\n";
        let err = RuleSet::from_toml(text).unwrap_err().to_string();
        assert!(err.contains("regime #1") && err.contains("region"), "{err}");
        let text = "version = \"t\"\n[[regime]]\nid = \"A\"\nregion = \"VL\"\nvalid_from = \"2014-1-01\"\n";
        let err = RuleSet::from_toml(text).unwrap_err().to_string();
        assert!(err.contains("valid_from"), "{err}");
    }
}
