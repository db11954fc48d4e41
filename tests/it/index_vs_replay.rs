//! Property: the compiled index answers exactly as a straightforward replay of the events, for
//! any history and any date.

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use kbi_core::domain::event::{EndCause, ExemptionCause};
use kbi_core::domain::timeline::{compile_into, status_on, Transition};
use kbi_core::domain::{Event, EventKind, History, Insz, Obligation, Question, Region, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::generate::{default_extracted_at, generate, GenerateOptions};
use kbi_core::snapshot::load_bytes;
use kbi_core::snapshot::person::parse_person;
use proptest::prelude::*;

fn base() -> NaiveDate {
    NaiveDate::from_ymd_opt(2013, 10, 1).unwrap()
}

fn day(offset: u16) -> NaiveDate {
    base() + Days::new(u64::from(offset))
}

fn obligation() -> impl Strategy<Value = Obligation> {
    prop::sample::select(Obligation::ALL.to_vec())
}

/// Events over about twelve years, with coarse dates so that same-day collisions are common.
fn event() -> impl Strategy<Value = Event> {
    let date = (0u16..150).prop_map(|d| day(d * 30));
    let kind = prop_oneof![
        3 => prop::bool::ANY.prop_map(|bxl| EventKind::ObligationStart {
            region: if bxl { Region::Brussels } else { Region::Flanders }
        }),
        2 => Just(EventKind::Registration),
        2 => Just(EventKind::ContractSigned),
        2 => Just(EventKind::EmploymentServiceRegistration),
        1 => (obligation(), 0u16..150).prop_map(|(obligation, until)| {
            EventKind::DeadlineExtension { obligation, until: day(until * 30 + 7) }
        }),
        2 => obligation().prop_map(|obligation| EventKind::Infringement { obligation }),
        1 => Just(EventKind::Fine),
        2 => obligation().prop_map(|obligation| EventKind::InfringementClosed { obligation }),
        1 => Just(EventKind::Certificate),
        1 => Just(EventKind::EffortDeclaration),
        1 => Just(EventKind::BrusselsAttestation),
        1 => Just(EventKind::Exemption { cause: Some(ExemptionCause::Medical) }),
        1 => Just(EventKind::ObligationEnd { cause: Some(EndCause::Moved) }),
    ];
    (date, kind).prop_map(|(date, kind)| Event { date, kind })
}

fn rule_sets() -> Vec<RuleSet> {
    vec![
        RuleSet::shipped(),
        RuleSet::from_toml(
            r#"
            version = "all-deadlines"
            [[regime]]
            id = "VL-A"
            region = "VL"
            valid_from = "2014-01-01"
            valid_until = "2019-12-31"
            registration_months = 3
            contract_months = 6
            certificate_months = 18
            [[regime]]
            id = "VL-B"
            region = "VL"
            valid_from = "2020-01-01"
            registration_months = 2
            employment_service_days = 30
            [[regime]]
            id = "BXL-A"
            region = "BXL"
            valid_from = "2016-01-01"
            registration_months = 6
            certificate_months = 18
            "#,
        )
        .unwrap(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn compiled_timeline_equals_replay(
        events in prop::collection::vec(event(), 0..14),
        probes in prop::collection::vec(0u16..4600, 40),
    ) {
        for rules in rule_sets() {
            let history = History::new(events.clone(), &rules);
            let mut transitions: Vec<Transition> = Vec::new();
            compile_into(&history, &rules, &mut transitions);
            // Probe every change date, the day before it, and random days.
            let mut dates: Vec<NaiveDate> = probes.iter().map(|&p| day(p)).collect();
            for d in history.change_dates(&rules) {
                dates.push(d);
                dates.extend(d.pred_opt());
            }
            for date in dates {
                prop_assert_eq!(
                    status_on(&transitions, date),
                    history.status_on(&rules, date),
                    "rules {} on {}", rules.version, date
                );
            }
            // The timeline is minimal: no two consecutive entries with the same status.
            for pair in transitions.windows(2) {
                prop_assert!(pair[0].day() < pair[1].day());
                prop_assert_ne!(pair[0].status(), pair[1].status());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// The same law over whole generated snapshots, through the real reader and `advise`.
    #[test]
    fn generated_snapshot_index_equals_replay(seed in 0u64..10_000, dates in prop::collection::vec(0u16..4600, 12)) {
        let options = GenerateOptions {
            persons: 2_000,
            seed,
            extracted_at: default_extracted_at(),
            snapshot_id: None,
            with_examples: seed % 2 == 0,
        };
        let mut text = Vec::new();
        generate(&options, &mut text).unwrap();
        let rules = Arc::new(RuleSet::shipped());
        let snapshot = load_bytes(text.clone(), rules.clone(), &Silent).unwrap();
        prop_assert_eq!(snapshot.index.len(), 2_000);
        let text = String::from_utf8(text).unwrap();
        for line in text.lines().skip(1) {
            let person = parse_person(line.as_bytes()).unwrap();
            let history = History::new(person.events.clone(), &rules);
            for &offset in &dates {
                let date = day(offset);
                let question = Question {
                    insz: person.insz,
                    reference: kbi_core::domain::Reference::Date(date),
                };
                let from_index = snapshot.advise(&question);
                let replayed = history.status_on(&rules, date);
                match (from_index, replayed) {
                    (Ok(a), kbi_core::domain::Status::NotSubject) => prop_assert!(!a.subject && a.compliant),
                    (Ok(a), kbi_core::domain::Status::Compliant) => prop_assert!(a.subject && a.compliant),
                    (Ok(a), kbi_core::domain::Status::NonCompliant(r)) => {
                        prop_assert!(a.subject && !a.compliant);
                        prop_assert_eq!(a.reason, Some(r));
                    }
                    (Err(r), kbi_core::domain::Status::NoRegime) => prop_assert_eq!(r.code.as_str(), "30004"),
                    (Err(r), _) if date < rules.earliest_valid_from() => prop_assert_eq!(r.code.as_str(), "30004"),
                    (other, replay) => prop_assert!(false, "index {:?} vs replay {:?}", other, replay),
                }
            }
            prop_assert!(snapshot.index.lookup(person.insz).is_some());
        }
        let absent = Insz::parse("97081812768").unwrap();
        if snapshot.index.lookup(absent).is_none() {
            let q = Question { insz: absent, reference: kbi_core::domain::Reference::Date(day(3000)) };
            let a = snapshot.advise(&q).unwrap();
            prop_assert!(!a.subject && !a.found);
        }
    }
}
