//! A person's compiled timeline: the dates on which the status changes, packed in `u32`s.
//!
//! Compiling runs the replay of [`super::decision`] once per change date when a snapshot loads;
//! answering a question is then a search over a handful of entries.

use chrono::NaiveDate;

use super::day::day_number;
use super::decision::{History, Status};
use super::reason::ReasonCode;
use super::rules::RuleSet;

/// One status change: `day_number << 4 | status code`. Four bits hold the nine statuses and the
/// remaining 28 bits any day number of a four-digit year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Transition(u32);

const STATUS_BITS: u32 = 4;

impl Transition {
    pub fn new(date: NaiveDate, status: Status) -> Self {
        Transition(day_number(date) << STATUS_BITS | u32::from(status_code(status)))
    }

    pub fn from_raw(raw: u32) -> Self {
        Transition(raw)
    }

    pub fn raw(self) -> u32 {
        self.0
    }

    pub fn day(self) -> u32 {
        self.0 >> STATUS_BITS
    }

    pub fn status(self) -> Status {
        status_from_code((self.0 & ((1 << STATUS_BITS) - 1)) as u8)
    }
}

fn status_code(status: Status) -> u8 {
    match status {
        Status::NotSubject => 0,
        Status::Compliant => 1,
        Status::NoRegime => 2,
        Status::NonCompliant(reason) => 3 + reason as u8,
    }
}

fn status_from_code(code: u8) -> Status {
    match code {
        1 => Status::Compliant,
        2 => Status::NoRegime,
        3..=8 => Status::NonCompliant(ReasonCode::ALL[usize::from(code - 3)]),
        // 0, and any code this program never writes, reads as "no period": but codes only come
        // from `Transition::new`, so the fallback is never taken.
        _ => Status::NotSubject,
    }
}

/// Appends the status changes of `history` to `out` (nothing for a person never obligated).
pub fn compile_into(history: &History, rules: &RuleSet, out: &mut Vec<Transition>) {
    if history.periods().is_empty() {
        return;
    }
    let mut current = Status::NotSubject;
    for date in history.change_dates(rules) {
        let status = history.status_on(rules, date);
        if status != current {
            out.push(Transition::new(date, status));
            current = status;
        }
    }
}

/// The status on `date` from a compiled timeline.
pub fn status_on(transitions: &[Transition], date: NaiveDate) -> Status {
    let day = day_number(date);
    // Timelines hold a handful of entries: a linear scan from the end beats a binary search.
    transitions
        .iter()
        .rev()
        .find(|t| t.day() <= day)
        .map_or(Status::NotSubject, |t| t.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_every_status() {
        let date = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        let statuses = [Status::NotSubject, Status::Compliant, Status::NoRegime]
            .into_iter()
            .chain(ReasonCode::ALL.map(Status::NonCompliant));
        for status in statuses {
            let t = Transition::new(date, status);
            assert_eq!(t.status(), status);
            assert_eq!(t.day(), day_number(date));
        }
    }
}
