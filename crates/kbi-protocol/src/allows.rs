//! `allows`: whether a question may be answered under a protocol on a day (`protocols.md`
//! section 2). Pure and cheap — a few date comparisons — since every question at the doors asks.

use std::sync::Arc;

use chrono::NaiveDate;
use kbi_core::domain::Reference;

use crate::model::{Asks, Ended, FileSpec, Protocol, PurposeWindow};

/// Why a flow is refused (code 30005 at the doors). Names the protocol, the purpose and the
/// limit, never the person: nothing here holds an INSZ or the reference asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The day lies outside the protocol's `term`.
    OutsideTerm { protocol: Arc<str>, term: String },
    /// The protocol `ended`.
    ProtocolEnded {
        protocol: Arc<str>,
        on: NaiveDate,
        reason: String,
    },
    /// The protocol has no purpose for this form of question.
    NoPurpose { protocol: Arc<str>, asks: Asks },
    /// No purpose of this name in the protocol.
    UnknownPurpose { protocol: Arc<str>, purpose: String },
    /// The purpose is in the protocol, but the client's `purposes` do not include it.
    NotForClient {
        protocol: Arc<str>,
        purpose: Arc<str>,
    },
    /// The purpose `ended`.
    PurposeEnded {
        protocol: Arc<str>,
        purpose: Arc<str>,
        on: NaiveDate,
        reason: String,
    },
    /// The reference date or premium year lies outside the purpose's window.
    OutsideWindow {
        protocol: Arc<str>,
        purpose: Arc<str>,
        window: String,
    },
    /// No delivery of this id in the protocol.
    NoFile { protocol: Arc<str>, file: String },
}

impl Refusal {
    /// The purpose the refusal is about, when one was identified.
    pub fn purpose(&self) -> Option<&Arc<str>> {
        match self {
            Refusal::NotForClient { purpose, .. }
            | Refusal::PurposeEnded { purpose, .. }
            | Refusal::OutsideWindow { purpose, .. } => Some(purpose),
            _ => None,
        }
    }

    /// The text in Dutch, for the SOAP `Diagnose`.
    pub fn diagnose_nl(&self) -> String {
        match self {
            Refusal::OutsideTerm { protocol, term } => format!(
                "protocol {protocol} is niet van kracht op deze dag (looptijd {})",
                term.replace("from", "vanaf").replace("until", "tot en met")
            ),
            Refusal::ProtocolEnded {
                protocol,
                on,
                reason,
            } => format!("protocol {protocol} is beëindigd op {on}: {reason}"),
            Refusal::NoPurpose { protocol, asks } => format!(
                "protocol {protocol} dekt geen vraag met {}",
                match asks {
                    Asks::Date => "Referentiedatum",
                    Asks::PremiumYear => "Premiejaar",
                }
            ),
            Refusal::UnknownPurpose { protocol, purpose } => {
                format!("protocol {protocol} kent het doel {purpose} niet")
            }
            Refusal::NotForClient { protocol, purpose } => format!(
                "doel {purpose} van protocol {protocol} is niet toegestaan aan deze afnemer"
            ),
            Refusal::PurposeEnded {
                protocol,
                purpose,
                on,
                reason,
            } => format!("doel {purpose} van protocol {protocol} is beëindigd op {on}: {reason}"),
            Refusal::OutsideWindow {
                protocol,
                purpose,
                window,
            } => format!(
                "doel {purpose} van protocol {protocol} dekt enkel {}",
                window
                    .replace("reference dates", "referentiedata")
                    .replace("premium years", "premiejaren")
                    .replace("from", "vanaf")
                    .replace("until", "tot en met")
            ),
            Refusal::NoFile { protocol, file } => {
                format!("protocol {protocol} kent geen levering {file}")
            }
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OutsideTerm { protocol, term } => {
                write!(
                    f,
                    "protocol {protocol} is not in force on this day (term {term})"
                )
            }
            Refusal::ProtocolEnded {
                protocol,
                on,
                reason,
            } => write!(f, "protocol {protocol} ended on {on}: {reason}"),
            Refusal::NoPurpose { protocol, asks } => write!(
                f,
                "protocol {protocol} has no purpose for a question by {}",
                asks.as_str()
            ),
            Refusal::UnknownPurpose { protocol, purpose } => {
                write!(f, "protocol {protocol} has no purpose {purpose}")
            }
            Refusal::NotForClient { protocol, purpose } => write!(
                f,
                "purpose {purpose} of protocol {protocol} is not allowed to this client"
            ),
            Refusal::PurposeEnded {
                protocol,
                purpose,
                on,
                reason,
            } => write!(
                f,
                "purpose {purpose} of protocol {protocol} ended on {on}: {reason}"
            ),
            Refusal::OutsideWindow {
                protocol,
                purpose,
                window,
            } => write!(
                f,
                "purpose {purpose} of protocol {protocol} covers only {window}"
            ),
            Refusal::NoFile { protocol, file } => {
                write!(f, "protocol {protocol} has no delivery {file}")
            }
        }
    }
}

fn ended_on(ended: &Option<Ended>, day: NaiveDate) -> Option<&Ended> {
    ended.as_ref().filter(|e| e.applies(day))
}

impl Protocol {
    /// Whether anything at all may flow under this protocol on `asked_on`: inside its `term`
    /// and not `ended`. An `ended` wins over every other date (the protocol ends by law).
    pub fn in_force(&self, asked_on: NaiveDate) -> Result<(), Refusal> {
        if let Some(ended) = ended_on(&self.ended, asked_on) {
            return Err(Refusal::ProtocolEnded {
                protocol: self.id.clone(),
                on: ended.on,
                reason: ended.reason.clone(),
            });
        }
        if !self.term.contains(asked_on) {
            return Err(Refusal::OutsideTerm {
                protocol: self.id.clone(),
                term: self.term.to_string(),
            });
        }
        Ok(())
    }

    /// Whether a question for `purpose`, asked on `asked_on` about `reference`, may be answered:
    /// the protocol in force, the purpose in it and not ended, the reference inside its window
    /// (a reference date for a purpose that asks `date`, a premium year for one that asks
    /// `premium_year`). The order of the reasons is section 2's.
    pub fn allows(
        &self,
        purpose: &str,
        asked_on: NaiveDate,
        reference: Reference,
    ) -> Result<(), Refusal> {
        self.in_force(asked_on)?;
        let Some(found) = self.purpose(purpose) else {
            return Err(Refusal::UnknownPurpose {
                protocol: self.id.clone(),
                purpose: purpose.to_owned(),
            });
        };
        if let Some(ended) = ended_on(&found.ended, asked_on) {
            return Err(Refusal::PurposeEnded {
                protocol: self.id.clone(),
                purpose: found.name.clone(),
                on: ended.on,
                reason: ended.reason.clone(),
            });
        }
        if found.window.admits(reference) {
            Ok(())
        } else {
            Err(Refusal::OutsideWindow {
                protocol: self.id.clone(),
                purpose: found.name.clone(),
                window: window_text(found.window),
            })
        }
    }

    /// Whether the delivery `file` may be written on `asked_on` for `reference`: the protocol in
    /// force, the file in it, and — when a purpose asks in the same form the delivery is made
    /// (the yearly list by premium year) — that purpose not ended and the reference inside its
    /// window. `--force` never overrides this: without a legal basis there is nothing to force.
    pub fn allows_file(
        &self,
        file: &str,
        asked_on: NaiveDate,
        reference: Reference,
    ) -> Result<&FileSpec, Refusal> {
        self.in_force(asked_on)?;
        let Some(spec) = self.file(file) else {
            return Err(Refusal::NoFile {
                protocol: self.id.clone(),
                file: file.to_owned(),
            });
        };
        let asks = match reference {
            Reference::Date(_) => Asks::Date,
            Reference::PremiumYear(_) => Asks::PremiumYear,
        };
        // A purpose of the same name governs its delivery (`reduced-premium`), else the one
        // that asks in the delivery's form.
        let purpose = self
            .purpose(file)
            .or_else(|| self.purpose_for(asks))
            .map(|p| p.name.clone());
        if let Some(purpose) = purpose {
            self.allows(&purpose, asked_on, reference)?;
        }
        Ok(spec)
    }
}

fn window_text(window: PurposeWindow) -> String {
    match window {
        PurposeWindow::Any => "every reference date".to_owned(),
        PurposeWindow::Dates(w) => format!("reference dates {w}"),
        PurposeWindow::PremiumYears(w) => format!("premium years {w}"),
    }
}

/// A client bound to its protocol (`protocol` and optional `purposes` in `clients.toml`).
#[derive(Debug, Clone)]
pub struct Binding {
    pub protocol: Arc<Protocol>,
    /// The purposes this client may use; `None`: every purpose of the protocol.
    pub purposes: Option<Vec<Arc<str>>>,
}

impl Binding {
    /// The purpose a question of `reference`'s form serves for this client, if it may be
    /// answered on `asked_on`; else why not. The order: protocol in force, purpose in the
    /// protocol, allowed to the client, not ended, reference inside the window.
    pub fn admit(&self, asked_on: NaiveDate, reference: Reference) -> Result<&Arc<str>, Refusal> {
        let protocol = &*self.protocol;
        protocol.in_force(asked_on)?;
        let asks = match reference {
            Reference::Date(_) => Asks::Date,
            Reference::PremiumYear(_) => Asks::PremiumYear,
        };
        let Some(purpose) = protocol.purpose_for(asks) else {
            return Err(Refusal::NoPurpose {
                protocol: protocol.id.clone(),
                asks,
            });
        };
        if let Some(allowed) = &self.purposes {
            if !allowed.contains(&purpose.name) {
                return Err(Refusal::NotForClient {
                    protocol: protocol.id.clone(),
                    purpose: purpose.name.clone(),
                });
            }
        }
        protocol.allows(&purpose.name, asked_on, reference)?;
        Ok(&purpose.name)
    }

    /// The purpose that questions of form `asks` serve for this client when it is open on
    /// `asked_on` (protocol in force, purpose in it, allowed to the client, not ended): then a
    /// question is allowed exactly when its reference lies in the purpose's window
    /// ([`PurposeWindow::admits`]), which the doors check per question after asking this once
    /// per request. `None`: every question of that form is refused ([`Binding::admit`] says why).
    pub fn open_purpose(&self, asked_on: NaiveDate, asks: Asks) -> Option<&crate::Purpose> {
        let protocol = &*self.protocol;
        protocol.in_force(asked_on).ok()?;
        let purpose = protocol.purpose_for(asks)?;
        if let Some(allowed) = &self.purposes {
            if !allowed.contains(&purpose.name) {
                return None;
            }
        }
        if purpose.ended.as_ref().is_some_and(|e| e.applies(asked_on)) {
            return None;
        }
        Some(purpose)
    }

    /// The purpose a question of this form would serve (for the audit record of a question
    /// refused before or after the protocol check), whether or not it is allowed.
    pub fn purpose_of(&self, reference: Reference) -> Option<&Arc<str>> {
        let asks = match reference {
            Reference::Date(_) => Asks::Date,
            Reference::PremiumYear(_) => Asks::PremiumYear,
        };
        self.protocol.purpose_for(asks).map(|p| &p.name)
    }
}
