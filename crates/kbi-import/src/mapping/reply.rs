//! The reply around the dossiers: section 2 (only GeefDossierKBI 01.00), M22 (Uitzonderingen)
//! and the dossier part of M23, for one reply. Pure like the rows of [`super`]: a reply in, the
//! steps it gives out, in the order a reader meets them. The steps that need the whole run (a
//! second dossier for one INSZ, whether anything is still written after an ERROR, the
//! employment-service list) are the import's fold (`crate::fold`), which applies these steps in
//! file and reply order.

use kbi_core::domain::event::Event;
use kbi_core::domain::Insz;

use super::{map_dossier, unlisted, Severity};
use crate::codes::Codes;
use crate::dossier::{Dossier, Reply, Uitzondering};

/// What one reply gives, step by step.
#[derive(Debug)]
pub enum Step {
    /// An ERROR: the row, our element path, the message (no value of the person).
    Error {
        row: &'static str,
        path: String,
        message: String,
    },
    /// A WARN, counted per row and message.
    Warn { row: &'static str, message: String },
    /// A reply or answer with Uitzondering FOUT 30001: not in the register.
    NotFound,
    /// A dossier is read (the findings of its mapping follow, then its [`Step::Person`]).
    Dossier,
    /// The person of the dossier just read, when it has a valid INSZ.
    Person(Person),
}

/// One mapped dossier with a valid INSZ.
#[derive(Debug)]
pub struct Person {
    pub insz: Insz,
    /// No ERROR in the dossier's own mapping.
    pub ok: bool,
    /// Sorted by date (M23).
    pub events: Vec<Event>,
    /// The dossier itself, when it was read in profile mode (an export needs more than the
    /// events) and its own mapping had no ERROR; `None` in an import, which keeps only the
    /// events.
    pub dossier: Option<Box<Dossier>>,
}

#[derive(Debug, Clone, Copy)]
enum Exceptions {
    None,
    NotFound,
    Failed,
}

/// Judges one reply (§2, M22) and maps its dossiers (M1–M21), handing each step to `out`.
pub fn judge_reply(reply: Reply, codes: &Codes, out: &mut dyn FnMut(Step)) {
    // Section 2: only GeefDossierKBI 01.00.
    let naam_ok = matches!(&reply.naam, Some(Some(n)) if n == "GeefDossierKBI");
    let versie_ok = matches!(&reply.versie, Some(Some(v)) if v.starts_with("01.00"));
    if !reply.namespace_ok || !naam_ok || !versie_ok {
        let message = if !naam_ok {
            format!(
                "a reply of another service: Context/Naam {}",
                unlisted(
                    &reply.naam.clone().flatten(),
                    "services read: GeefDossierKBI"
                )
            )
        } else if !versie_ok {
            format!(
                "a reply of another version: Context/Versie {}; another version needs its own mapping",
                unlisted(&reply.versie.clone().flatten(), "versions read: 01.00")
            )
        } else {
            "the reply element is not in the GeefDossierKBI 01.00 namespace".to_string()
        };
        out(Step::Error {
            row: "§2",
            path: "Repliek/Context".into(),
            message,
        });
        return;
    }
    // M22: reply-level exceptions.
    let reply_state = exceptions(&reply.uitzonderingen, "Repliek/Uitzonderingen", out);
    if reply.antwoorden.is_empty() {
        match reply_state {
            Exceptions::NotFound => out(Step::NotFound),
            Exceptions::Failed => {}
            Exceptions::None => out(Step::Error {
                row: "M22",
                path: "Repliek".into(),
                message:
                    "a reply with neither a dossier nor an Uitzondering: the dossier is unknown"
                        .into(),
            }),
        }
        return;
    }
    for (i, antwoord) in reply.antwoorden.into_iter().enumerate() {
        let base = format!("Repliek/Antwoorden/Antwoord[{}]", i + 1);
        let state = exceptions(
            &antwoord.uitzonderingen,
            &format!("{base}/Uitzonderingen"),
            out,
        );
        let not_found =
            matches!(reply_state, Exceptions::NotFound) || matches!(state, Exceptions::NotFound);
        let failed =
            matches!(reply_state, Exceptions::Failed) || matches!(state, Exceptions::Failed);
        match (antwoord.dossier, not_found) {
            (Some(_), true) => out(Step::Error {
                row: "M22",
                path: base,
                message: "Uitzondering 30001 (no data found) together with a dossier".into(),
            }),
            (None, true) => out(Step::NotFound),
            (None, false) => {
                if !failed {
                    out(Step::Error {
                        row: "M22",
                        path: base,
                        message: "an Antwoord with neither a dossier nor an Uitzondering: the dossier is unknown".into(),
                    });
                }
            }
            (Some(_), false) if failed => {}
            (Some(dossier), false) => {
                out(Step::Dossier);
                let mapped = map_dossier(&dossier, codes);
                let mut ok = true;
                for f in mapped.findings {
                    match f.severity {
                        Severity::Error => {
                            ok = false;
                            out(Step::Error {
                                row: f.row,
                                path: format!("KBIDossier/{}", f.path),
                                message: f.message,
                            });
                        }
                        Severity::Warn => out(Step::Warn {
                            row: f.row,
                            message: f.message,
                        }),
                    }
                }
                if let Some(insz) = mapped.insz {
                    // A dossier with an ERROR is never handed on: the export only needs to
                    // know it was there (M23).
                    let dossier = (ok && dossier.profile.is_some()).then(|| Box::new(dossier));
                    out(Step::Person(Person {
                        insz,
                        ok,
                        events: mapped.events,
                        dossier,
                    }));
                }
            }
        }
    }
}

/// Judges a list of Uitzonderingen (M22).
fn exceptions(list: &[Uitzondering], path: &str, out: &mut dyn FnMut(Step)) -> Exceptions {
    let mut state = Exceptions::None;
    for (i, u) in list.iter().enumerate() {
        let here = format!("{path}/Uitzondering[{}]", i + 1);
        let ident = u.identificatie.clone().flatten();
        match u.type_.clone().flatten().as_deref() {
            Some("FOUT") => {
                if ident.as_deref() == Some("30001") {
                    if !matches!(state, Exceptions::Failed) {
                        state = Exceptions::NotFound;
                    }
                } else {
                    state = Exceptions::Failed;
                    out(Step::Error {
                        row: "M22",
                        path: here,
                        message: format!(
                            "Uitzondering FOUT, Identificatie {}: the dossier is unknown; ask again before importing (never read as \"no dossier\")",
                            unlisted(&ident, "FOUTs read as an answer: 30001")
                        ),
                    });
                }
            }
            Some(kind @ ("WAARSCHUWING" | "INFORMATIE")) => out(Step::Warn {
                row: "M22",
                message: format!(
                    "Uitzondering {kind}, Identificatie {}: logged, the dossier is read",
                    unlisted(&ident, "reviewed Identificaties (there is none)")
                ),
            }),
            _ => {
                state = Exceptions::Failed;
                out(Step::Error {
                    row: "M22",
                    path: format!("{here}/Type"),
                    message: format!(
                        "Uitzondering of unknown type {}: the dossier is unknown",
                        unlisted(
                            &u.type_.clone().flatten(),
                            "types FOUT, WAARSCHUWING, INFORMATIE"
                        )
                    ),
                });
            }
        }
    }
    state
}
