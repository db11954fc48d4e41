//! One person line of a snapshot: decoding, validation, and compilation into a timeline.

use std::borrow::Cow;

use serde::Deserialize;

use crate::domain::day::parse_date;
use crate::domain::event::{EndCause, Event, EventKind, ExemptionCause, Obligation, Region};
use crate::domain::timeline::{compile_into, Transition};
use crate::domain::{History, Insz, RuleSet};

#[derive(Deserialize)]
struct PersonLine<'a> {
    #[serde(borrow)]
    insz: Cow<'a, str>,
    #[serde(borrow)]
    events: Vec<RawEvent<'a>>,
}

/// An event as written; unknown fields are ignored, as the format allows.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    date: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    region: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    obligation: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    until: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    cause: Option<Cow<'a, str>>,
}

/// A decoded, validated person.
#[derive(Debug, Clone)]
pub struct Person {
    pub insz: Insz,
    pub events: Vec<Event>,
}

/// Decodes and validates one person line. The error text never contains the INSZ.
pub fn parse_person(line: &[u8]) -> Result<Person, String> {
    // serde's own message would quote the value at fault (an INSZ written as a number, say):
    // only the column, the field and a fixed description are reported; the caller adds the line.
    let raw: PersonLine = serde_json::from_slice(line).map_err(|e| {
        format!(
            "not a valid person record: {}",
            crate::redact::json::<PersonLine>(line, &e)
        )
    })?;
    let insz_text: &str = &raw.insz;
    if insz_text.len() != 11 || !insz_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("`insz` must be exactly 11 digits".into());
    }
    let insz = Insz::parse(insz_text).map_err(|e| format!("invalid `insz`: {e}"))?;
    let mut events = Vec::with_capacity(raw.events.len());
    for (i, event) in raw.events.iter().enumerate() {
        let event = parse_event(event).map_err(|e| format!("event {}: {e}", i + 1))?;
        events.push(event);
    }
    Ok(Person { insz, events })
}

fn parse_event(raw: &RawEvent<'_>) -> Result<Event, String> {
    let date = parse_date(&raw.date).map_err(|e| format!("`date`: {e}"))?;
    let obligation = || -> Result<Obligation, String> {
        let text = raw.obligation.as_deref().ok_or("missing `obligation`")?;
        Obligation::parse(text).ok_or_else(|| "unknown `obligation`".to_string())
    };
    let kind = match &*raw.kind {
        "OBLIGATION_START" => {
            let text = raw.region.as_deref().ok_or("missing `region`")?;
            let region = Region::parse(text).ok_or("unknown `region` (VL or BXL)")?;
            EventKind::ObligationStart { region }
        }
        "OBLIGATION_END" => EventKind::ObligationEnd {
            cause: match raw.cause.as_deref() {
                None => None,
                Some(text) => Some(EndCause::parse(text).ok_or("unknown `cause`")?),
            },
        },
        "EXEMPTION" => EventKind::Exemption {
            cause: match raw.cause.as_deref() {
                None => None,
                Some(text) => Some(ExemptionCause::parse(text).ok_or("unknown `cause`")?),
            },
        },
        "REGISTRATION" => EventKind::Registration,
        "CONTRACT_SIGNED" => EventKind::ContractSigned,
        "EMPLOYMENT_SERVICE_REGISTRATION" => EventKind::EmploymentServiceRegistration,
        "DEADLINE_EXTENSION" => {
            let obligation = obligation()?;
            let text = raw.until.as_deref().ok_or("missing `until`")?;
            let until = parse_date(text).map_err(|e| format!("`until`: {e}"))?;
            EventKind::DeadlineExtension { obligation, until }
        }
        "INFRINGEMENT" => EventKind::Infringement {
            obligation: obligation()?,
        },
        "INFRINGEMENT_CLOSED" => EventKind::InfringementClosed {
            obligation: obligation()?,
        },
        "FINE" => EventKind::Fine,
        "CERTIFICATE" => EventKind::Certificate,
        "EFFORT_DECLARATION" => EventKind::EffortDeclaration,
        "BRUSSELS_ATTESTATION" => EventKind::BrusselsAttestation,
        _ => return Err("unknown event `type`".into()),
    };
    Ok(Event { date, kind })
}

/// Compiles a person's events into status changes, appended to `out`.
pub(crate) fn compile_person(events: Vec<Event>, rules: &RuleSet, out: &mut Vec<Transition>) {
    // Most persons were never obligated: no period, no timeline, no work.
    if !events
        .iter()
        .any(|e| matches!(e.kind, EventKind::ObligationStart { .. }))
    {
        return;
    }
    compile_into(&History::new(events, rules), rules, out);
}
