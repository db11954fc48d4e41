//! The event types a snapshot's source records at all (the header's `facts`).
//!
//! A register that never records a kind of fact cannot show that someone did it, so the rules
//! must not read its silence as "not done": `rules.md` derives a missed deadline only when the
//! source records the act that meets it (see [`super::rules::RuleSet::judged_with`]).

use std::fmt;

use super::event::{EventKind, EVENT_TYPES};

/// A set of event types, one bit per type in the same-day order of `rules.md`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Facts(u16);

/// Why a `facts` list was refused. Type names are a closed set, so quoting a known one is safe;
/// an unknown one is described by its position only (it is input text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    #[error("`facts` entry {position} is not an event type of the snapshot format")]
    Unknown { position: usize },
    #[error("`facts` names {name} twice")]
    Twice { name: &'static str },
}

impl Facts {
    /// Every type: a snapshot whose header has no `facts`.
    pub const ALL: Facts = Facts((1 << EVENT_TYPES.len()) - 1);
    /// No type at all.
    pub(crate) const NONE: Facts = Facts(0);

    /// The set named by a header's `facts` list; unknown or repeated names are refused.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Facts, FactsError> {
        let mut facts = Facts::NONE;
        for (i, name) in names.into_iter().enumerate() {
            let rank = EVENT_TYPES
                .iter()
                .position(|t| *t == name)
                .ok_or(FactsError::Unknown { position: i + 1 })?;
            if facts.0 & (1 << rank) != 0 {
                return Err(FactsError::Twice {
                    name: EVENT_TYPES[rank],
                });
            }
            facts.0 |= 1 << rank;
        }
        Ok(facts)
    }

    /// The set holding the types of these event kinds.
    pub fn of_kinds(kinds: impl IntoIterator<Item = EventKind>) -> Facts {
        kinds
            .into_iter()
            .fold(Facts::NONE, |facts, kind| facts.with(kind))
    }

    /// This set and the type of `kind`.
    pub fn with(self, kind: EventKind) -> Facts {
        Facts(self.0 | 1 << kind.same_day_rank())
    }

    /// Whether the source records events of the type of `kind`.
    pub fn records(self, kind: EventKind) -> bool {
        self.0 & (1 << kind.same_day_rank()) != 0
    }

    /// Whether every type is recorded (a header without `facts`).
    pub fn is_all(self) -> bool {
        self == Facts::ALL
    }

    /// The type names in the set, in the same-day order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        EVENT_TYPES
            .iter()
            .enumerate()
            .filter(move |(rank, _)| self.0 & (1 << rank) != 0)
            .map(|(_, name)| *name)
    }
}

impl Default for Facts {
    fn default() -> Self {
        Facts::ALL
    }
}

impl fmt::Debug for Facts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl fmt::Display for Facts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("every event type");
        }
        let names: Vec<_> = self.names().collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_all_is_every_type() {
        assert_eq!(Facts::from_names(EVENT_TYPES).unwrap(), Facts::ALL);
        let some = Facts::from_names(["CERTIFICATE", "OBLIGATION_START"]).unwrap();
        assert_eq!(
            some.names().collect::<Vec<_>>(),
            ["OBLIGATION_START", "CERTIFICATE"]
        );
        assert!(some.records(EventKind::Certificate));
        assert!(!some.records(EventKind::Registration));
        assert!(!some.is_all());
    }

    #[test]
    fn unknown_and_repeated_names_are_refused_without_quoting_input() {
        let err = Facts::from_names(["REGISTRATION", "40010122213"]).unwrap_err();
        assert_eq!(err, FactsError::Unknown { position: 2 });
        assert!(!err.to_string().contains("40010122213"));
        assert_eq!(
            Facts::from_names(["FINE", "FINE"]).unwrap_err(),
            FactsError::Twice { name: "FINE" }
        );
    }
}
