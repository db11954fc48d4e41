//! A validated protocol file.

use std::sync::Arc;

use chrono::NaiveDate;

use crate::catalogue::Field;

/// A span of days, `until` included; no `until`: open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateWindow {
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
}

impl DateWindow {
    pub fn contains(&self, day: NaiveDate) -> bool {
        day >= self.from && self.until.is_none_or(|until| day <= until)
    }
}

impl std::fmt::Display for DateWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.until {
            Some(until) => write!(f, "from {} until {}", self.from, until),
            None => write!(f, "from {}", self.from),
        }
    }
}

/// A span of premium years, `until` included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearWindow {
    pub from: i32,
    pub until: Option<i32>,
}

impl YearWindow {
    pub fn contains(&self, year: i32) -> bool {
        year >= self.from && self.until.is_none_or(|until| year <= until)
    }
}

impl std::fmt::Display for YearWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.until {
            Some(until) => write!(f, "from {} until {}", self.from, until),
            None => write!(f, "from {}", self.from),
        }
    }
}

/// An end by law: from `on` (included) nothing flows, whatever the other dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub on: NaiveDate,
    pub reason: String,
}

impl Ended {
    pub fn applies(&self, day: NaiveDate) -> bool {
        day >= self.on
    }
}

/// How a question gives its reference: REST `?date=` / SOAP `Referentiedatum`, or REST
/// `?premium_year=` / SOAP `Premiejaar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Asks {
    Date,
    PremiumYear,
}

impl Asks {
    pub fn as_str(self) -> &'static str {
        match self {
            Asks::Date => "date",
            Asks::PremiumYear => "premium_year",
        }
    }
}

/// Which references a purpose covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurposeWindow {
    /// No window in the file: every reference date (the development protocol).
    Any,
    Dates(DateWindow),
    PremiumYears(YearWindow),
}

impl PurposeWindow {
    /// Whether `reference` lies inside the window: a reference date for a date window, a
    /// premium year for a premium-year window (a date that is a 1 January stands for the premium
    /// year after it, as `premium-list --date` gives it; a premium year for a date window is
    /// judged by its reference date).
    #[inline]
    pub fn admits(&self, reference: kbi_core::domain::Reference) -> bool {
        use kbi_core::domain::Reference;
        match (self, reference) {
            (PurposeWindow::Any, _) => true,
            (PurposeWindow::Dates(window), Reference::Date(day)) => window.contains(day),
            (PurposeWindow::PremiumYears(window), Reference::PremiumYear(year)) => {
                window.contains(year)
            }
            (PurposeWindow::PremiumYears(window), Reference::Date(day)) => {
                kbi_core::domain::advice::premium_year_of(day).is_some_and(|y| window.contains(y))
            }
            (PurposeWindow::Dates(window), Reference::PremiumYear(_)) => {
                window.contains(reference.date())
            }
        }
    }
}

/// A `[[questions]]` entry: a purpose served by the doors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    /// Its name (`[a-z0-9-]`): audit `purpose`, metrics label.
    pub name: Arc<str>,
    pub asks: Asks,
    pub window: PurposeWindow,
    pub ended: Option<Ended>,
}

/// `period` of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Period {
    Yearly,
    SixMonthly,
    Monthly,
    OnDemand,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Yearly => "yearly",
            Period::SixMonthly => "six-monthly",
            Period::Monthly => "monthly",
            Period::OnDemand => "on-demand",
        }
    }
}

/// `identity` of a delivery (section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    Insz,
    Removed,
    Pseudonym,
}

impl Identity {
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::Insz => "insz",
            Identity::Removed => "removed",
            Identity::Pseudonym => "pseudonym",
        }
    }
}

/// `encryption` of a delivery (section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    Recipients,
    Passphrase,
}

impl Encryption {
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Recipients => "recipients",
            Encryption::Passphrase => "passphrase",
        }
    }
}

/// One population filter (section 4); a delivery's filters must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Population {
    All,
    Subject,
    AnswerNok,
    ContractSince(NaiveDate),
    InJoin(String),
}

impl std::fmt::Display for Population {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Population::All => f.write_str("all"),
            Population::Subject => f.write_str("subject"),
            Population::AnswerNok => f.write_str("answer-nok"),
            Population::ContractSince(day) => write!(f, "contract-since:{day}"),
            Population::InJoin(name) => write!(f, "in-join:{name}"),
        }
    }
}

/// A `[[files.joins]]` entry: a file another body returns, joined on the INSZ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub name: String,
    pub columns: Vec<String>,
    /// The delivery of this protocol whose population the joined file may only contain.
    pub returned_from: Option<String>,
}

/// A `[[files]]` entry: a delivery written by `kbi-advice export` (sections 3–6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub id: String,
    pub period: Period,
    pub population: Vec<Population>,
    /// In this order; nothing else leaves.
    pub fields: Vec<Field>,
    pub identity: Identity,
    pub encryption: Encryption,
    pub age_bands: Vec<u32>,
    pub special_categories: Vec<Field>,
    pub min_group: Option<u32>,
    pub quasi_identifiers: Vec<Field>,
    pub recipients_file: Option<String>,
    pub joins: Vec<Join>,
}

/// A protocol file, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub id: Arc<str>,
    pub title: String,
    pub signed_on: Option<NaiveDate>,
    pub sender: String,
    pub recipient: String,
    pub legal_basis: Vec<String>,
    pub term: DateWindow,
    pub retention_years: Option<u32>,
    pub ended: Option<Ended>,
    pub questions: Vec<Purpose>,
    pub files: Vec<FileSpec>,
}

impl Protocol {
    /// The purpose named `name`.
    pub fn purpose(&self, name: &str) -> Option<&Purpose> {
        self.questions.iter().find(|p| &*p.name == name)
    }

    /// The purpose a question of form `asks` serves (at most one: two with the same `asks` are
    /// refused at load).
    pub fn purpose_for(&self, asks: Asks) -> Option<&Purpose> {
        self.questions.iter().find(|p| p.asks == asks)
    }

    /// The delivery `id`.
    pub fn file(&self, id: &str) -> Option<&FileSpec> {
        self.files.iter().find(|f| f.id == id)
    }
}
