//! One test per rule of `rules.md`, named after it. Each builds a one-person snapshot through the
//! real reader and asks through the real `advise`, so the compiled index is exercised too.

use std::sync::Arc;

use kbi_core::domain::{CompiledSnapshot, Question, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::load_bytes;

const PERSON: &str = "85073003328";

fn snapshot_with(rules: RuleSet, events: &str) -> CompiledSnapshot {
    let text = format!(
        "{{\"kbi_snapshot\": {{\"format\": 1, \"snapshot_id\": \"t\", \"extracted_at\": \"2026-11-01T02:00:00Z\", \"persons\": 1}}}}\n\
         {{\"insz\": \"{PERSON}\", \"events\": [{events}]}}\n"
    );
    load_bytes(text.into_bytes(), Arc::new(rules), &Silent).expect("test snapshot loads")
}

fn snapshot(events: &str) -> CompiledSnapshot {
    snapshot_with(RuleSet::shipped(), events)
}

/// The answer in one word: `-` not subject, `OK` subject and compliant, `NOK:<reason>`,
/// or `E<code>`.
fn ask(snapshot: &CompiledSnapshot, date: &str) -> String {
    let question = Question::parse(PERSON, Some(date), None).expect("valid question");
    match snapshot.advise(&question) {
        Ok(a) if !a.subject => {
            assert!(
                a.compliant && a.reason.is_none(),
                "not subject is always OK, no reason"
            );
            "-".into()
        }
        Ok(a) if a.compliant => "OK".into(),
        Ok(a) => format!("NOK:{}", a.reason.expect("NOK has a reason").code()),
        Err(r) => format!("E{}", r.code.as_str()),
    }
}

fn ev(date: &str, kind: &str) -> String {
    format!(r#"{{"date": "{date}", "type": "{kind}"}}"#)
}

fn start(date: &str, region: &str) -> String {
    format!(r#"{{"date": "{date}", "type": "OBLIGATION_START", "region": "{region}"}}"#)
}

fn with_obligation(date: &str, kind: &str, obligation: &str) -> String {
    format!(r#"{{"date": "{date}", "type": "{kind}", "obligation": "{obligation}"}}"#)
}

fn extension(date: &str, obligation: &str, until: &str) -> String {
    format!(
        r#"{{"date": "{date}", "type": "DEADLINE_EXTENSION", "obligation": "{obligation}", "until": "{until}"}}"#
    )
}

fn join(events: &[String]) -> String {
    events.join(", ")
}

/// A rule file with every deadline switched on, for rule-3 tests the shipped rules do not reach.
fn all_deadlines() -> RuleSet {
    RuleSet::from_toml(
        r#"
        version = "test-all-deadlines"
        [[regime]]
        id = "VL-TEST"
        region = "VL"
        valid_from = "2014-01-01"
        registration_months = 3
        employment_service_days = 60
        contract_months = 6
        certificate_months = 18
        "#,
    )
    .unwrap()
}

// --- Obligation periods -------------------------------------------------------------------

#[test]
fn period_opens_at_obligation_start() {
    let s = snapshot(&start("2022-04-04", "VL"));
    assert_eq!(ask(&s, "2022-04-03"), "-");
    assert_eq!(ask(&s, "2022-04-04"), "OK");
}

#[test]
fn period_ends_exclusive_at_obligation_end() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        ev("2022-05-01", "REGISTRATION"),
        r#"{"date": "2022-09-01", "type": "OBLIGATION_END", "cause": "NATURALISED"}"#.into(),
    ]));
    assert_eq!(ask(&s, "2022-08-31"), "OK");
    assert_eq!(ask(&s, "2022-09-01"), "-");
}

#[test]
fn period_ends_at_exemption() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        r#"{"date": "2022-06-01", "type": "EXEMPTION", "cause": "AGE"}"#.into(),
    ]));
    assert_eq!(ask(&s, "2022-05-31"), "OK");
    assert_eq!(ask(&s, "2022-06-01"), "-");
    assert_eq!(
        ask(&s, "2023-01-01"),
        "-",
        "no deadline runs after the period"
    );
}

#[test]
fn period_ends_at_next_obligation_start() {
    // The second start opens a new period with its own registration deadline.
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        start("2022-06-01", "VL"),
    ]));
    assert_eq!(
        ask(&s, "2022-07-05"),
        "OK",
        "old deadline 07-04 belongs to the ended period"
    );
    assert_eq!(ask(&s, "2022-09-01"), "OK");
    assert_eq!(ask(&s, "2022-09-02"), "NOK:NIET_AANGEMELD");
}

#[test]
fn events_are_attributed_to_the_period_they_fall_in() {
    // A registration in the first period does not serve the second one.
    let s = snapshot(&join(&[
        start("2019-05-01", "VL"),
        ev("2019-06-01", "REGISTRATION"),
        r#"{"date": "2020-02-01", "type": "OBLIGATION_END", "cause": "MOVED"}"#.into(),
        start("2023-01-10", "VL"),
    ]));
    assert_eq!(ask(&s, "2019-12-01"), "OK");
    assert_eq!(ask(&s, "2023-04-10"), "OK");
    assert_eq!(ask(&s, "2023-04-11"), "NOK:NIET_AANGEMELD");
}

#[test]
fn events_before_the_first_start_belong_to_the_first_period() {
    let s = snapshot(&join(&[
        ev("2021-01-10", "REGISTRATION"),
        start("2021-03-01", "VL"),
    ]));
    assert_eq!(ask(&s, "2022-01-01"), "OK");
}

#[test]
fn events_between_periods_belong_to_no_period() {
    // Documented reading: only events before the *first* start are carried into a period.
    let s = snapshot(&join(&[
        start("2019-05-01", "VL"),
        ev("2019-06-01", "REGISTRATION"),
        r#"{"date": "2020-02-01", "type": "OBLIGATION_END", "cause": "MOVED"}"#.into(),
        ev("2022-12-01", "REGISTRATION"),
        start("2023-01-10", "VL"),
    ]));
    assert_eq!(ask(&s, "2023-04-11"), "NOK:NIET_AANGEMELD");
}

#[test]
fn an_event_dated_d_is_in_effect_on_d() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        with_obligation("2022-05-10", "INFRINGEMENT", "ATTENDANCE"),
    ]));
    assert_eq!(ask(&s, "2022-05-09"), "OK");
    assert_eq!(ask(&s, "2022-05-10"), "NOK:ONVOLDOENDE_AANWEZIG");
}

#[test]
fn same_day_events_apply_in_table_order() {
    // Listed in reverse: the reader must sort. START first, so the same-day infringement
    // belongs to the new period; END last, so the period ending that day is empty.
    let s = snapshot(&join(&[
        with_obligation("2022-04-04", "INFRINGEMENT", "CONTRACT"),
        start("2022-04-04", "VL"),
    ]));
    assert_eq!(ask(&s, "2022-04-04"), "NOK:GEEN_CONTRACT");

    let s = snapshot(&join(&[
        r#"{"date": "2022-04-04", "type": "OBLIGATION_END", "cause": "OTHER"}"#.into(),
        start("2022-04-04", "VL"),
    ]));
    assert_eq!(
        ask(&s, "2022-04-04"),
        "-",
        "start then end on one day: an empty period"
    );
    assert_eq!(ask(&s, "2022-12-01"), "-");
}

// --- Subject ------------------------------------------------------------------------------

#[test]
fn subject_when_a_period_contains_the_date() {
    let s = snapshot(&start("2024-03-01", "VL"));
    assert_eq!(ask(&s, "2024-02-29"), "-");
    assert_eq!(ask(&s, "2024-03-01"), "OK");
}

#[test]
fn not_subject_when_never_obligated() {
    let s = snapshot(&join(&[
        ev("2021-05-02", "REGISTRATION"),
        ev("2021-06-02", "CERTIFICATE"),
    ]));
    assert_eq!(ask(&s, "2024-01-01"), "-");
}

#[test]
fn not_subject_when_insz_not_in_snapshot() {
    let s = snapshot(&start("2022-04-04", "VL"));
    let q = Question::parse("80010110005", Some("2023-01-01"), None).unwrap();
    let a = s.advise(&q).unwrap();
    assert!(!a.subject && a.compliant && a.reason.is_none() && !a.found);
    assert_eq!(a.result(), "OK");
}

// --- Rule 1: fulfilled --------------------------------------------------------------------

#[test]
fn rule1_fulfilled_by_certificate() {
    let s = snapshot(&join(&[
        start("2021-03-15", "VL"),
        ev("2021-05-01", "CERTIFICATE"),
    ]));
    assert_eq!(
        ask(&s, "2023-01-01"),
        "OK",
        "fulfilled before the registration deadline mattered"
    );
}

#[test]
fn rule1_fulfilled_by_effort_declaration() {
    let s = snapshot(&join(&[
        start("2021-03-15", "VL"),
        with_obligation("2021-09-01", "INFRINGEMENT", "ATTENDANCE"),
        ev("2022-01-01", "EFFORT_DECLARATION"),
    ]));
    assert_eq!(ask(&s, "2021-12-31"), "NOK:ONVOLDOENDE_AANWEZIG");
    assert_eq!(ask(&s, "2022-01-01"), "OK");
}

#[test]
fn rule1_brussels_attestation_fulfils_only_in_brussels() {
    let bxl = snapshot(&join(&[
        start("2022-09-01", "BXL"),
        with_obligation("2023-03-01", "INFRINGEMENT", "BRUSSELS_ATTESTATION"),
        ev("2023-10-01", "BRUSSELS_ATTESTATION"),
    ]));
    assert_eq!(ask(&bxl, "2023-09-30"), "NOK:BRUSSELS_ATTEST_ONTBREEKT");
    assert_eq!(ask(&bxl, "2023-10-01"), "OK");

    let vl = snapshot(&join(&[
        start("2022-09-01", "VL"),
        ev("2022-10-01", "REGISTRATION"),
        with_obligation("2023-03-01", "INFRINGEMENT", "ATTENDANCE"),
        ev("2023-10-01", "BRUSSELS_ATTESTATION"),
    ]));
    assert_eq!(ask(&vl, "2023-10-01"), "NOK:ONVOLDOENDE_AANWEZIG");
}

#[test]
fn rule1_fulfilment_outweighs_earlier_breaches() {
    // Same-day infringement and certificate: the certificate applies later and wins.
    let s = snapshot(&join(&[
        start("2021-03-15", "VL"),
        ev("2022-05-05", "CERTIFICATE"),
        with_obligation("2022-05-05", "INFRINGEMENT", "ATTENDANCE"),
        with_obligation("2022-06-05", "INFRINGEMENT", "CONTRACT"),
    ]));
    assert_eq!(ask(&s, "2022-05-05"), "OK");
    assert_eq!(
        ask(&s, "2022-07-01"),
        "OK",
        "even a later breach does not undo fulfilment"
    );
}

#[test]
fn rule1_fulfilment_of_another_period_does_not_count() {
    let s = snapshot(&join(&[
        start("2019-05-01", "VL"),
        ev("2019-09-01", "CERTIFICATE"),
        r#"{"date": "2020-02-01", "type": "OBLIGATION_END", "cause": "MOVED"}"#.into(),
        start("2023-01-10", "VL"),
    ]));
    assert_eq!(ask(&s, "2023-06-01"), "NOK:NIET_AANGEMELD");
}

// --- Rule 2: established breach -----------------------------------------------------------

#[test]
fn rule2_open_infringement_gives_the_reason_of_the_breached_obligation() {
    for (obligation, reason) in [
        ("REGISTRATION", "NIET_AANGEMELD"),
        ("CONTRACT", "GEEN_CONTRACT"),
        ("ATTENDANCE", "ONVOLDOENDE_AANWEZIG"),
        ("EMPLOYMENT_SERVICE", "NIET_INGESCHREVEN_ARBEIDSBEMIDDELING"),
        ("CERTIFICATE", "DOELSTELLINGEN_NIET_BEHAALD"),
        ("BRUSSELS_ATTESTATION", "BRUSSELS_ATTEST_ONTBREEKT"),
    ] {
        let s = snapshot(&join(&[
            start("2021-03-15", "VL"),
            ev("2021-04-01", "REGISTRATION"),
            with_obligation("2021-09-01", "INFRINGEMENT", obligation),
        ]));
        assert_eq!(ask(&s, "2021-08-31"), "OK", "{obligation}");
        assert_eq!(
            ask(&s, "2021-09-01"),
            format!("NOK:{reason}"),
            "{obligation}"
        );
    }
}

#[test]
fn rule2_closed_by_infringement_closed_on_or_after_it() {
    let s = snapshot(&join(&[
        start("2021-03-15", "VL"),
        ev("2021-04-01", "REGISTRATION"),
        with_obligation("2021-09-01", "INFRINGEMENT", "CONTRACT"),
        with_obligation("2021-12-01", "INFRINGEMENT_CLOSED", "CONTRACT"),
    ]));
    assert_eq!(ask(&s, "2021-11-30"), "NOK:GEEN_CONTRACT");
    assert_eq!(ask(&s, "2021-12-01"), "OK");

    let same_day = snapshot(&join(&[
        start("2021-03-15", "VL"),
        ev("2021-04-01", "REGISTRATION"),
        with_obligation("2021-09-01", "INFRINGEMENT_CLOSED", "ATTENDANCE"),
        with_obligation("2021-09-01", "INFRINGEMENT", "ATTENDANCE"),
    ]));
    assert_eq!(
        ask(&same_day, "2021-09-01"),
        "OK",
        "a same-day closure applies after it"
    );
}

#[test]
fn rule2_closure_of_another_obligation_or_before_the_breach_does_not_close() {
    let s = snapshot(&join(&[
        start("2021-03-15", "VL"),
        ev("2021-04-01", "REGISTRATION"),
        with_obligation("2021-08-01", "INFRINGEMENT_CLOSED", "CONTRACT"),
        with_obligation("2021-09-01", "INFRINGEMENT", "CONTRACT"),
        with_obligation("2021-10-01", "INFRINGEMENT_CLOSED", "ATTENDANCE"),
    ]));
    assert_eq!(ask(&s, "2021-11-01"), "NOK:GEEN_CONTRACT");
}

#[test]
fn rule2_remedied_by_the_act_it_was_about_dated_after_it() {
    for (obligation, act) in [
        ("REGISTRATION", "REGISTRATION"),
        ("CONTRACT", "CONTRACT_SIGNED"),
        ("EMPLOYMENT_SERVICE", "EMPLOYMENT_SERVICE_REGISTRATION"),
    ] {
        let s = snapshot(&join(&[
            start("2021-03-15", "VL"),
            ev("2021-04-01", "REGISTRATION"),
            with_obligation("2021-09-01", "INFRINGEMENT", obligation),
            ev("2021-10-05", act),
        ]));
        assert_eq!(
            ask(&s, "2021-10-04"),
            "NOK:".to_string() + reason_of(obligation)
        );
        assert_eq!(
            ask(&s, "2021-10-05"),
            "OK",
            "{obligation} remedied by {act}"
        );
    }
}

fn reason_of(obligation: &str) -> &'static str {
    match obligation {
        "REGISTRATION" => "NIET_AANGEMELD",
        "CONTRACT" => "GEEN_CONTRACT",
        _ => "NIET_INGESCHREVEN_ARBEIDSBEMIDDELING",
    }
}

#[test]
fn rule2_act_on_the_day_of_the_breach_remedies_it_whatever_the_order() {
    // "dated on or after it": the same day counts, although the act comes earlier in the day
    // order and may be listed before or after the breach.
    for (breach, act) in [
        ("REGISTRATION", "REGISTRATION"),
        ("CONTRACT", "CONTRACT_SIGNED"),
        ("EMPLOYMENT_SERVICE", "EMPLOYMENT_SERVICE_REGISTRATION"),
    ] {
        for act_first in [false, true] {
            let mut events = vec![
                start("2022-03-15", "VL"),
                ev("2022-04-01", "REGISTRATION"),
                ev("2022-04-20", "CONTRACT_SIGNED"),
                ev("2022-05-02", "EMPLOYMENT_SERVICE_REGISTRATION"),
            ];
            let (b, a) = (
                with_obligation("2022-09-01", "INFRINGEMENT", breach),
                ev("2022-09-01", act),
            );
            if act_first {
                events.extend([a, b]);
            } else {
                events.extend([b, a]);
            }
            let s = snapshot(&join(&events));
            assert_eq!(ask(&s, "2022-08-31"), "OK", "{breach} before the breach");
            assert_eq!(
                ask(&s, "2022-09-01"),
                "OK",
                "{breach} remedied the same day"
            );
            assert_eq!(ask(&s, "2022-12-01"), "OK", "{breach} stays remedied");
        }
    }
}

#[test]
fn rule2_act_before_the_breach_does_not_remedy_it() {
    let s = snapshot(&join(&[
        start("2021-03-15", "VL"),
        ev("2021-04-01", "REGISTRATION"),
        ev("2021-08-31", "CONTRACT_SIGNED"),
        with_obligation("2021-09-01", "INFRINGEMENT", "CONTRACT"),
    ]));
    assert_eq!(ask(&s, "2021-12-01"), "NOK:GEEN_CONTRACT");
}

#[test]
fn rule2_attendance_and_certificate_breaches_close_only_by_closure_or_fulfilment() {
    let s = snapshot(&join(&[
        start("2021-03-15", "VL"),
        ev("2021-04-01", "REGISTRATION"),
        ev("2021-04-20", "CONTRACT_SIGNED"),
        with_obligation("2022-01-10", "INFRINGEMENT", "ATTENDANCE"),
        ev("2022-02-01", "CONTRACT_SIGNED"),
        ev("2022-02-01", "REGISTRATION"),
        r#"{"date": "2022-02-01", "type": "FINE", "amount_eur": 150}"#.into(),
    ]));
    assert_eq!(ask(&s, "2022-06-01"), "NOK:ONVOLDOENDE_AANWEZIG");
}

#[test]
fn rule2_the_breach_established_first_decides() {
    let s = snapshot(&join(&[
        start("2021-03-15", "VL"),
        ev("2021-04-01", "REGISTRATION"),
        with_obligation("2022-03-01", "INFRINGEMENT", "CERTIFICATE"),
        with_obligation("2022-01-10", "INFRINGEMENT", "ATTENDANCE"),
    ]));
    assert_eq!(ask(&s, "2022-06-01"), "NOK:ONVOLDOENDE_AANWEZIG");
}

#[test]
fn rule2_ties_break_in_table_order() {
    let s = snapshot(&join(&[
        start("2021-03-15", "VL"),
        ev("2021-04-01", "REGISTRATION"),
        with_obligation("2022-01-10", "INFRINGEMENT", "CERTIFICATE"),
        with_obligation("2022-01-10", "INFRINGEMENT", "EMPLOYMENT_SERVICE"),
        with_obligation("2022-01-10", "INFRINGEMENT", "CONTRACT"),
    ]));
    assert_eq!(ask(&s, "2022-06-01"), "NOK:GEEN_CONTRACT");
}

#[test]
fn rule2_an_open_breach_outranks_a_missed_deadline() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        with_obligation("2022-10-01", "INFRINGEMENT", "ATTENDANCE"),
    ]));
    assert_eq!(ask(&s, "2022-09-01"), "NOK:NIET_AANGEMELD");
    assert_eq!(ask(&s, "2022-10-01"), "NOK:ONVOLDOENDE_AANWEZIG");
}

// --- Rule 3: missed deadline --------------------------------------------------------------

#[test]
fn rule3_registration_deadline_is_start_plus_calendar_months() {
    let s = snapshot(&start("2022-04-04", "VL"));
    assert_eq!(
        ask(&s, "2022-07-04"),
        "OK",
        "the deadline day itself is still in time"
    );
    assert_eq!(ask(&s, "2022-07-05"), "NOK:NIET_AANGEMELD");
}

#[test]
fn rule3_calendar_months_clamp_to_the_month_end() {
    let s = snapshot(&start("2022-11-30", "VL"));
    assert_eq!(ask(&s, "2023-02-28"), "OK");
    assert_eq!(ask(&s, "2023-03-01"), "NOK:NIET_AANGEMELD");
    let leap = snapshot(&start("2023-11-30", "VL"));
    assert_eq!(ask(&leap, "2024-02-29"), "OK");
    assert_eq!(ask(&leap, "2024-03-01"), "NOK:NIET_AANGEMELD");
}

#[test]
fn rule3_a_late_act_ends_the_missed_deadline() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        ev("2022-09-01", "REGISTRATION"),
    ]));
    assert_eq!(ask(&s, "2022-08-31"), "NOK:NIET_AANGEMELD");
    assert_eq!(ask(&s, "2022-09-01"), "OK");
}

#[test]
fn rule3_employment_service_deadline_runs_from_the_first_contract() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        ev("2022-04-20", "REGISTRATION"),
        ev("2022-05-02", "CONTRACT_SIGNED"),
        ev("2022-06-15", "CONTRACT_SIGNED"),
    ]));
    assert_eq!(ask(&s, "2022-07-01"), "OK");
    assert_eq!(
        ask(&s, "2022-07-02"),
        "NOK:NIET_INGESCHREVEN_ARBEIDSBEMIDDELING"
    );
}

#[test]
fn rule3_no_employment_service_deadline_without_a_contract() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        ev("2022-04-20", "REGISTRATION"),
    ]));
    assert_eq!(ask(&s, "2024-01-01"), "OK");
}

#[test]
fn rule3_deadlines_only_where_the_regime_enables_them() {
    // VL-2014 has no employment-service deadline; BXL-2022 has no deadline at all.
    let vl2014 = snapshot(&join(&[
        start("2021-06-01", "VL"),
        ev("2021-06-15", "REGISTRATION"),
        ev("2021-07-01", "CONTRACT_SIGNED"),
    ]));
    assert_eq!(ask(&vl2014, "2023-01-01"), "OK");
    let bxl = snapshot(&start("2022-09-01", "BXL"));
    assert_eq!(ask(&bxl, "2025-01-01"), "OK");
}

#[test]
fn rule3_the_regime_in_force_on_the_period_start_judges() {
    // Started on the last day of VL-2014: no employment-service deadline, even in 2023.
    let s = snapshot(&join(&[
        start("2022-02-28", "VL"),
        ev("2022-03-10", "REGISTRATION"),
        ev("2022-03-20", "CONTRACT_SIGNED"),
    ]));
    assert_eq!(ask(&s, "2023-01-01"), "OK");
    let s = snapshot(&join(&[
        start("2022-03-01", "VL"),
        ev("2022-03-10", "REGISTRATION"),
        ev("2022-03-20", "CONTRACT_SIGNED"),
    ]));
    assert_eq!(
        ask(&s, "2023-01-01"),
        "NOK:NIET_INGESCHREVEN_ARBEIDSBEMIDDELING"
    );
}

#[test]
fn rule3_deadline_extension_moves_the_deadline_to_its_until_date() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        extension("2022-06-20", "REGISTRATION", "2022-10-31"),
    ]));
    assert_eq!(ask(&s, "2022-10-31"), "OK");
    assert_eq!(ask(&s, "2022-11-01"), "NOK:NIET_AANGEMELD");
}

#[test]
fn rule3_an_extension_only_moves_a_deadline_later() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        extension("2022-05-01", "REGISTRATION", "2022-05-15"),
    ]));
    assert_eq!(ask(&s, "2022-07-04"), "OK");
    assert_eq!(ask(&s, "2022-07-05"), "NOK:NIET_AANGEMELD");
}

#[test]
fn rule3_an_extension_applies_from_its_own_date() {
    // Granted after the deadline had passed: NOK until it is granted, OK after.
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        extension("2022-08-15", "REGISTRATION", "2022-10-31"),
    ]));
    assert_eq!(ask(&s, "2022-08-14"), "NOK:NIET_AANGEMELD");
    assert_eq!(ask(&s, "2022-08-15"), "OK");
}

#[test]
fn rule3_an_extension_for_another_obligation_does_not_apply() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        extension("2022-05-01", "EMPLOYMENT_SERVICE", "2022-12-31"),
    ]));
    assert_eq!(ask(&s, "2022-07-05"), "NOK:NIET_AANGEMELD");
}

#[test]
fn rule3_contract_and_certificate_deadlines_when_the_regime_sets_them() {
    let s = snapshot_with(
        all_deadlines(),
        &join(&[start("2020-01-15", "VL"), ev("2020-02-01", "REGISTRATION")]),
    );
    assert_eq!(ask(&s, "2020-07-15"), "OK");
    assert_eq!(ask(&s, "2020-07-16"), "NOK:GEEN_CONTRACT");
    let s = snapshot_with(
        all_deadlines(),
        &join(&[
            start("2020-01-15", "VL"),
            ev("2020-02-01", "REGISTRATION"),
            ev("2020-03-01", "CONTRACT_SIGNED"),
            ev("2020-03-10", "EMPLOYMENT_SERVICE_REGISTRATION"),
        ]),
    );
    assert_eq!(ask(&s, "2021-07-15"), "OK");
    assert_eq!(ask(&s, "2021-07-16"), "NOK:DOELSTELLINGEN_NIET_BEHAALD");
}

#[test]
fn rule3_the_earliest_missed_deadline_decides() {
    // Contract deadline 2020-07-15 passes before the employment deadline (contract + 60 days).
    let s = snapshot_with(
        all_deadlines(),
        &join(&[
            start("2020-01-15", "VL"),
            ev("2020-02-01", "REGISTRATION"),
            ev("2020-08-01", "CONTRACT_SIGNED"),
        ]),
    );
    assert_eq!(ask(&s, "2020-07-20"), "NOK:GEEN_CONTRACT");
    assert_eq!(ask(&s, "2020-09-30"), "OK");
    assert_eq!(
        ask(&s, "2020-10-01"),
        "NOK:NIET_INGESCHREVEN_ARBEIDSBEMIDDELING"
    );
    // Registration (04-15) missed earlier than the contract (07-15).
    let s = snapshot_with(all_deadlines(), &start("2020-01-15", "VL"));
    assert_eq!(ask(&s, "2020-08-01"), "NOK:NIET_AANGEMELD");
}

#[test]
fn rule3_ties_break_in_table_order() {
    // Registration and contract deadline on the same day: registration first in the table.
    let rules = RuleSet::from_toml(
        r#"
        version = "test-tie"
        [[regime]]
        id = "VL-TIE"
        region = "VL"
        valid_from = "2014-01-01"
        registration_months = 3
        contract_months = 3
        "#,
    )
    .unwrap();
    let s = snapshot_with(rules, &start("2020-01-15", "VL"));
    assert_eq!(ask(&s, "2020-04-16"), "NOK:NIET_AANGEMELD");
}

// --- Rule 4 and errors --------------------------------------------------------------------

#[test]
fn rule4_otherwise_compliant() {
    let s = snapshot(&join(&[
        start("2022-04-04", "VL"),
        ev("2022-05-30", "REGISTRATION"),
        ev("2022-06-13", "CONTRACT_SIGNED"),
        ev("2022-07-01", "EMPLOYMENT_SERVICE_REGISTRATION"),
    ]));
    assert_eq!(ask(&s, "2024-01-01"), "OK");
}

#[test]
fn error_30004_for_a_date_before_the_earliest_regime() {
    let s = snapshot(&ev("2013-05-01", "REGISTRATION"));
    assert_eq!(ask(&s, "2013-12-31"), "E30004");
    assert_eq!(ask(&s, "2014-01-01"), "-");
}

#[test]
fn error_30004_for_a_period_no_regime_covers() {
    // Brussels obligations before 1 June 2022 have no regime: the service cannot judge.
    let s = snapshot(&join(&[
        start("2021-01-10", "BXL"),
        r#"{"date": "2021-12-01", "type": "OBLIGATION_END", "cause": "MOVED"}"#.into(),
    ]));
    assert_eq!(ask(&s, "2021-01-09"), "-");
    assert_eq!(ask(&s, "2021-06-01"), "E30004");
    assert_eq!(ask(&s, "2021-12-01"), "-");
}

#[test]
fn error_30003_past_max_days_after_extract() {
    let s = snapshot(&start("2022-04-04", "VL"));
    assert_eq!(
        ask(&s, "2026-12-02"),
        "NOK:NIET_AANGEMELD",
        "31 days after extraction"
    );
    assert_eq!(ask(&s, "2026-12-03"), "E30003");
}

#[test]
fn premium_year_reference_is_1_january_of_the_year_before() {
    let s = snapshot(&start("2022-04-04", "VL"));
    let q = Question::parse(PERSON, None, Some("2024")).unwrap();
    let a = s.advise(&q).unwrap();
    assert_eq!(a.reference_date.to_string(), "2023-01-01");
    assert_eq!(a.result(), "NOK");
    assert_eq!(
        Question::parse(PERSON, Some("2023-01-01"), Some("2024"))
            .unwrap_err()
            .as_str(),
        "30002",
        "both a date and a premium year"
    );
    assert_eq!(
        Question::parse(PERSON, None, None).unwrap_err().as_str(),
        "30002"
    );
    assert_eq!(
        Question::parse(PERSON, None, Some("24"))
            .unwrap_err()
            .as_str(),
        "30002"
    );
    assert_eq!(
        Question::parse(PERSON, Some("2023-1-01"), None)
            .unwrap_err()
            .as_str(),
        "30002"
    );
    assert_eq!(
        Question::parse("85073003329", Some("bad"), None)
            .unwrap_err()
            .as_str(),
        "30001"
    );
}

// --- The header's `facts`: no NOK derived from a fact the source does not record -------------

/// A one-person snapshot whose header lists `facts` (and an informative `sources`).
fn snapshot_recording(facts: &[&str], events: &str) -> Result<CompiledSnapshot, String> {
    let facts = serde_json::to_string(facts).expect("json");
    let text = format!(
        "{{\"kbi_snapshot\": {{\"format\": 1, \"snapshot_id\": \"t\", \"extracted_at\": \"2026-11-01T02:00:00Z\", \"persons\": 1, \
         \"facts\": {facts}, \"sources\": [{{\"kind\": \"kbi-dossier\", \"version\": \"01.00\", \"files\": 1, \"dossiers\": 1}}]}}}}\n\
         {{\"insz\": \"{PERSON}\", \"events\": [{events}]}}\n"
    );
    load_bytes(text.into_bytes(), Arc::new(RuleSet::shipped()), &Silent).map_err(|e| e.to_string())
}

/// What a KBI dossier import records without the employment services' list (kbi-import.md M23).
const KBI_FACTS: [&str; 9] = [
    "OBLIGATION_START",
    "OBLIGATION_END",
    "EXEMPTION",
    "REGISTRATION",
    "CONTRACT_SIGNED",
    "DEADLINE_EXTENSION",
    "INFRINGEMENT",
    "INFRINGEMENT_CLOSED",
    "CERTIFICATE",
];

#[test]
fn rule3_employment_service_deadline_only_when_the_source_records_registrations() {
    // VL-2022 period, contract on 2022-05-02, never registered with VDAB: the deadline is
    // 2022-07-01 (contract + 60 days).
    let events = join(&[
        start("2022-03-15", "VL"),
        ev("2022-04-01", "REGISTRATION"),
        ev("2022-05-02", "CONTRACT_SIGNED"),
    ]);
    let mut with_vdab = KBI_FACTS.to_vec();
    with_vdab.push("EMPLOYMENT_SERVICE_REGISTRATION");
    let recorded = snapshot_recording(&with_vdab, &events).expect("loads");
    assert_eq!(ask(&recorded, "2022-07-01"), "OK");
    assert_eq!(
        ask(&recorded, "2022-07-02"),
        "NOK:NIET_INGESCHREVEN_ARBEIDSBEMIDDELING"
    );
    let silent = snapshot_recording(&KBI_FACTS, &events).expect("loads");
    assert_eq!(ask(&silent, "2022-07-02"), "OK");
    assert_eq!(ask(&silent, "2026-11-01"), "OK");
    assert!(silent
        .meta
        .sources
        .as_deref()
        .unwrap()
        .contains("kbi-dossier"));
    assert_eq!(
        silent.meta.facts.names().collect::<Vec<_>>().len(),
        KBI_FACTS.len()
    );
}

#[test]
fn rule3_registration_deadline_needs_registrations_in_facts() {
    let events = start("2022-03-15", "VL");
    let recorded = snapshot_recording(&KBI_FACTS, &events).expect("loads");
    assert_eq!(ask(&recorded, "2022-06-16"), "NOK:NIET_AANGEMELD");
    let silent = snapshot_recording(&["OBLIGATION_START"], &events).expect("loads");
    assert_eq!(ask(&silent, "2022-06-16"), "OK");
}

#[test]
fn facts_an_established_breach_still_counts_whatever_facts_say() {
    // `facts` only stops NOKs derived from silence; a recorded breach is a fact.
    let events = join(&[
        start("2022-03-15", "VL"),
        with_obligation("2022-09-01", "INFRINGEMENT", "EMPLOYMENT_SERVICE"),
    ]);
    let s = snapshot_recording(&KBI_FACTS, &events).expect("loads");
    assert_eq!(
        ask(&s, "2022-09-02"),
        "NOK:NIET_INGESCHREVEN_ARBEIDSBEMIDDELING"
    );
}

#[test]
fn facts_an_event_of_a_type_outside_facts_refuses_the_file() {
    let events = join(&[
        start("2022-03-15", "VL"),
        ev("2022-05-02", "EMPLOYMENT_SERVICE_REGISTRATION"),
    ]);
    let err = snapshot_recording(&KBI_FACTS, &events).unwrap_err();
    assert!(
        err.contains("line 2")
            && err.contains("EMPLOYMENT_SERVICE_REGISTRATION")
            && err.contains("facts"),
        "{err}"
    );
    assert!(!err.contains(PERSON), "{err}");
}

#[test]
fn facts_unknown_or_repeated_types_refuse_the_header() {
    let err = snapshot_recording(&["OBLIGATION_START", "VDAB"], "").unwrap_err();
    assert!(err.contains("line 1") && err.contains("facts"), "{err}");
    let err = snapshot_recording(&["FINE", "FINE"], "").unwrap_err();
    assert!(err.contains("line 1") && err.contains("twice"), "{err}");
}
