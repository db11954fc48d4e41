//! Who is in a delivery (`protocols.md` section 4): every filter of the file's `population`
//! must hold (AND).
//!
//! `subject` and `answer-nok` are judged by the doors' own code: the person's events (as the
//! import maps them) replayed by `kbi_core::domain::History`, compiled into the timeline the
//! snapshot index keeps (`timeline::compile_into`), and read on the reference date with
//! `timeline::status_on` — what `CompiledSnapshot::advise` reads for a question. The rule set
//! is the one a dossier import's snapshot is judged with (`RuleSet::judged_with` the dossier
//! facts), so no NOK is derived from what the register does not record.

use chrono::NaiveDate;
use kbi_core::domain::event::{Event, EventKind};
use kbi_core::domain::timeline::{compile_into, status_on, Transition};
use kbi_core::domain::{Facts, History, RuleSet, Status};
use kbi_protocol::Population;

/// Judges persons on one reference date with one rule set.
#[derive(Debug, Clone)]
pub struct Judge {
    rules: RuleSet,
    reference: NaiveDate,
    transitions: Vec<Transition>,
}

/// What the doors would answer for a person on the reference date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    NotSubject,
    Compliant,
    Nok,
    /// 30004: no regime covers the person's period; neither subject-and-judged nor NOK.
    NoRegime,
}

impl Judge {
    /// `rules` as loaded (`config/rules.toml` or `--rules`); `facts`: what the source records
    /// (a dossier import's `facts`).
    pub fn new(rules: &RuleSet, facts: Facts, reference: NaiveDate) -> Judge {
        Judge {
            rules: rules.judged_with(facts),
            reference,
            transitions: Vec::new(),
        }
    }

    /// The rule set judged with (after `judged_with`).
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn reference(&self) -> NaiveDate {
        self.reference
    }

    /// The answer of the doors for these events on the reference date.
    pub fn answer(&mut self, events: Vec<Event>) -> Answer {
        self.transitions.clear();
        compile_into(
            &History::new(events, &self.rules),
            &self.rules,
            &mut self.transitions,
        );
        match status_on(&self.transitions, self.reference) {
            Status::NotSubject => Answer::NotSubject,
            Status::Compliant => Answer::Compliant,
            Status::NonCompliant(_) => Answer::Nok,
            Status::NoRegime => Answer::NoRegime,
        }
    }
}

/// Whether the filters need the rules' answer (`subject`, `answer-nok`).
pub fn needs_answer(filters: &[Population]) -> bool {
    filters
        .iter()
        .any(|f| matches!(f, Population::Subject | Population::AnswerNok))
}

/// Whether one filter holds. `answer` is the doors' answer (only read for `subject` and
/// `answer-nok`); `in_join` tells whether the INSZ is in join file NAME.
pub fn holds(
    filter: &Population,
    answer: Option<Answer>,
    events: &[Event],
    reference: NaiveDate,
    in_join: &dyn Fn(&str) -> bool,
) -> bool {
    match filter {
        Population::All => true,
        // Subject as the doors answer it: OK or NOK. A person whose period no regime covers is
        // refused with 30004 at the doors, so no answer says they are subject.
        Population::Subject => matches!(answer, Some(Answer::Compliant | Answer::Nok)),
        Population::AnswerNok => answer == Some(Answer::Nok),
        // A contract registered on or after the day, and not after the reference date (a
        // contract dated later did not exist on the day the delivery describes).
        Population::ContractSince(since) => events.iter().any(|e| {
            matches!(e.kind, EventKind::ContractSigned) && e.date >= *since && e.date <= reference
        }),
        Population::InJoin(name) => in_join(name),
    }
}

/// Whether every filter holds.
pub fn all_hold(
    filters: &[Population],
    answer: Option<Answer>,
    events: &[Event],
    reference: NaiveDate,
    in_join: &dyn Fn(&str) -> bool,
) -> bool {
    filters
        .iter()
        .all(|f| holds(f, answer, events, reference, in_join))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbi_core::domain::event::Region;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn ev(date: &str, kind: EventKind) -> Event {
        Event {
            date: d(date),
            kind,
        }
    }

    fn facts() -> Facts {
        Facts::from_names(kbi_import::mapping::dossier_facts()).unwrap()
    }

    /// Subject from 2022-01-10 in Flanders, nothing done: NOK once the registration deadline
    /// has passed.
    fn late_person() -> Vec<Event> {
        vec![ev(
            "2022-01-10",
            EventKind::ObligationStart {
                region: Region::Flanders,
            },
        )]
    }

    #[test]
    fn the_answer_is_the_doors_answer_from_the_compiled_timeline() {
        let rules = RuleSet::shipped();
        let mut early = Judge::new(&rules, facts(), d("2022-01-11"));
        let mut late = Judge::new(&rules, facts(), d("2025-01-01"));
        let mut before = Judge::new(&rules, facts(), d("2022-01-01"));
        assert_eq!(early.answer(late_person()), Answer::Compliant);
        assert_eq!(late.answer(late_person()), Answer::Nok);
        assert_eq!(before.answer(late_person()), Answer::NotSubject);
        // The same as the reference replay.
        let history = History::new(late_person(), late.rules());
        assert!(matches!(
            history.status_on(late.rules(), d("2025-01-01")),
            Status::NonCompliant(_)
        ));
    }

    #[test]
    fn subject_and_answer_nok_follow_the_answer() {
        let none = |_: &str| false;
        let day = d("2025-01-01");
        for (answer, subject, nok) in [
            (Answer::NotSubject, false, false),
            (Answer::Compliant, true, false),
            (Answer::Nok, true, true),
            (Answer::NoRegime, false, false),
        ] {
            assert_eq!(
                holds(&Population::Subject, Some(answer), &[], day, &none),
                subject,
                "{answer:?}"
            );
            assert_eq!(
                holds(&Population::AnswerNok, Some(answer), &[], day, &none),
                nok,
                "{answer:?}"
            );
        }
    }

    #[test]
    fn contract_since_counts_contracts_from_the_day_until_the_reference_date() {
        let none = |_: &str| false;
        let filter = Population::ContractSince(d("2022-03-01"));
        let on = |date: &str| vec![ev(date, EventKind::ContractSigned)];
        let reference = d("2024-06-30");
        assert!(holds(&filter, None, &on("2022-03-01"), reference, &none));
        assert!(!holds(&filter, None, &on("2022-02-28"), reference, &none));
        assert!(!holds(&filter, None, &on("2024-07-01"), reference, &none));
        assert!(!holds(
            &filter,
            None,
            &[ev("2023-01-01", EventKind::Registration)],
            reference,
            &none
        ));
    }

    #[test]
    fn filters_are_anded_and_in_join_asks_the_join() {
        let reference = d("2024-06-30");
        let events = vec![ev("2023-01-01", EventKind::ContractSigned)];
        let in_residents = |name: &str| name == "residents";
        let filters = vec![
            Population::InJoin("residents".into()),
            Population::ContractSince(d("2022-03-01")),
        ];
        assert!(all_hold(&filters, None, &events, reference, &in_residents));
        assert!(!all_hold(&filters, None, &[], reference, &in_residents));
        let other = vec![Population::InJoin("other".into())];
        assert!(!all_hold(&other, None, &events, reference, &in_residents));
        assert!(all_hold(
            &[Population::All],
            None,
            &[],
            reference,
            &in_residents
        ));
        assert!(needs_answer(&[Population::All, Population::AnswerNok]));
        assert!(!needs_answer(&filters));
    }
}
