//! The question and the minimal answer (`interfaces.md`); the compiled snapshot that answers it is
//! [`super::compiled`].

use chrono::{Datelike, NaiveDate};

use super::day::parse_date;
use super::insz::Insz;
use super::reason::{ErrorCode, ReasonCode};

/// How the caller gave the reference date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    Date(NaiveDate),
    /// Premium year P: the reference date is 1 January of P − 1.
    PremiumYear(i32),
}

impl Reference {
    /// Reads the two optional inputs; exactly one must be given and well formed (else 30002).
    /// Only ASCII whitespace around a value is ignored, as for the INSZ: a non-breaking or
    /// ideographic space (U+00A0, U+3000) is a malformed value, not padding.
    pub fn parse(date: Option<&str>, premium_year: Option<&str>) -> Result<Reference, ErrorCode> {
        match (date, premium_year) {
            (Some(date), None) => parse_date(date.trim_ascii())
                .map(Reference::Date)
                .map_err(|_| ErrorCode::InvalidReferenceDate),
            (None, Some(year)) => parse_premium_year(year.trim_ascii()).map(Reference::PremiumYear),
            _ => Err(ErrorCode::InvalidReferenceDate),
        }
    }

    pub fn date(self) -> NaiveDate {
        match self {
            Reference::Date(date) => date,
            Reference::PremiumYear(year) => premium_reference_date(year),
        }
    }
}

/// A four-digit premium year whose reference year (P − 1) is itself a four-digit year.
pub fn parse_premium_year(text: &str) -> Result<i32, ErrorCode> {
    if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ErrorCode::InvalidReferenceDate);
    }
    let year: i32 = text.parse().map_err(|_| ErrorCode::InvalidReferenceDate)?;
    if year <= 1000 {
        return Err(ErrorCode::InvalidReferenceDate);
    }
    Ok(year)
}

/// 1 January of the year before the premium year (premium 2024 → 2023-01-01).
pub fn premium_reference_date(premium_year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(premium_year - 1, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The premium year whose reference date is `date`, if `date` is a 1 January.
pub fn premium_year_of(date: NaiveDate) -> Option<i32> {
    (date.month() == 1 && date.day() == 1).then_some(date.year() + 1)
}

/// A checked question: the core never sees an unchecked string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    pub insz: Insz,
    pub reference: Reference,
}

impl Question {
    /// Validates the raw inputs in interface order: the INSZ first (30001), then the reference
    /// (30002).
    pub fn parse(
        insz: &str,
        date: Option<&str>,
        premium_year: Option<&str>,
    ) -> Result<Question, ErrorCode> {
        let insz = Insz::parse(insz).map_err(|_| ErrorCode::InvalidInsz)?;
        let reference = Reference::parse(date, premium_year)?;
        Ok(Question { insz, reference })
    }
}

/// The minimal answer. `found` is for the audit log only: it never leaves the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advice {
    pub insz: Insz,
    pub reference_date: NaiveDate,
    pub subject: bool,
    pub compliant: bool,
    pub reason: Option<ReasonCode>,
    pub found: bool,
}

impl Advice {
    /// `OK` = not subject, or subject and compliant; `NOK` = subject and not compliant.
    pub fn is_ok(&self) -> bool {
        !self.subject || self.compliant
    }

    pub fn result(&self) -> &'static str {
        if self.is_ok() {
            "OK"
        } else {
            "NOK"
        }
    }
}

/// A question that could not be answered: the code, and whether the INSZ was in the snapshot
/// (for the audit log; `None` when the question never reached the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub found: Option<bool>,
}
