//! The mapping of `kbi-import.md` section 3: one parsed dossier → one person's events, with the
//! WARNs and ERRORs of each row. Pure: no I/O, no XML; the rows are tested one by one.
//!
//! Messages name our element paths (relative to `KBIDossier`, `[i]` 1-based) and, for codes of
//! the reviewed lists, the code; never an INSZ, a name, a date of the person or a free text.

use chrono::NaiveDate;

use super::codes::Codes;
use super::dossier::{Dossier, Periode, Text};
use kbi_core::domain::day::{next_day, parse_date};
use kbi_core::domain::event::{EndCause, Event, EventKind, ExemptionCause, Obligation, Region};
use kbi_core::domain::Insz;

/// The open end of a deferral without `Einde` (decision A5).
pub(crate) const OPEN_END: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Severity {
    #[serde(rename = "ERROR")]
    Error,
    #[serde(rename = "WARN")]
    Warn,
}

/// One finding of the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// The row of the mapping table (`M1`…`M23`).
    pub row: &'static str,
    /// Element path below `KBIDossier`.
    pub path: String,
    pub message: String,
}

/// What one dossier gives.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// `None` when `Personalia/INSZ` is missing or invalid (an ERROR is among the findings).
    pub insz: Option<Insz>,
    /// Sorted by date (stable: same-day events keep the mapping's order).
    pub events: Vec<Event>,
    pub findings: Vec<Finding>,
}

impl Mapped {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    fn error(&mut self, row: &'static str, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Error,
            row,
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, row: &'static str, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Warn,
            row,
            path: path.into(),
            message: message.into(),
        });
    }

    fn event(&mut self, date: NaiveDate, kind: EventKind) {
        self.events.push(Event { date, kind });
    }
}

/// A value that failed its code list, or has none, described without its text (issue 24, item
/// 4: only a value that passed its reviewed list is quoted). Any element can carry an INSZ, a
/// birth date or a name where a code was expected, and a short value is no proof that it is
/// harmless, so a failing value is told by its length only; the operator finds it in the reply
/// (file, reply number and element path are in the message).
pub(crate) fn unlisted(text: &Text, list: &str) -> String {
    let what = match text {
        Some(t) if t.is_empty() => "empty".to_string(),
        Some(t) => match t.chars().count() {
            1 => "1 character".to_string(),
            n => format!("{n} characters"),
        },
        None => "longer than the reader keeps".to_string(),
    };
    format!("(value not shown: {what}, not on the list of {list})")
}

/// A value that passed its code list: a reviewed code of the register, safe to quote.
pub(crate) fn listed_code(code: &str) -> String {
    format!("{code:?}")
}

/// The snapshot's name of an exemption cause.
pub(crate) fn exemption_cause_code(cause: ExemptionCause) -> &'static str {
    match cause {
        ExemptionCause::Medical => "MEDICAL",
        ExemptionCause::Age => "AGE",
        ExemptionCause::Diploma => "DIPLOMA",
        ExemptionCause::Other => "OTHER",
    }
}

/// Reads a date of the dossier (`DatumType` or `Datum2_0Type`) as M21 does: a real calendar
/// date `YYYY-MM-DD`, or why it is unusable (`99`/`00` parts, impossible date, not a date),
/// without quoting it. Public so that an export reads the profile's dates with this same code
/// (`protocols.md` section 3).
pub fn date_of(text: &Text) -> Result<NaiveDate, &'static str> {
    let Some(t) = text else {
        return Err("is not a date (value too long)");
    };
    parse_date(t).map_err(|_| {
        let b = t.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if shaped && (matches!(&t[5..7], "00" | "99") || matches!(&t[8..10], "00" | "99")) {
            "is unusable: unknown month or day (00/99)"
        } else if shaped {
            "is not a real calendar date"
        } else {
            "is not a date (YYYY-MM-DD)"
        }
    })
}

/// Reads a date that an event needs: absent → `Ok(None)`; unusable → ERROR M21 and `Err`.
fn mapped_date(out: &mut Mapped, text: &Option<Text>, path: &str) -> Result<Option<NaiveDate>, ()> {
    match text {
        None => Ok(None),
        Some(t) => match date_of(t) {
            Ok(d) => Ok(Some(d)),
            Err(why) => {
                out.error("M21", path, format!("date {why}; no event"));
                Err(())
            }
        },
    }
}

fn is(text: &Option<Text>, value: &str) -> bool {
    matches!(text, Some(Some(t)) if t == value)
}

fn listed(text: &Option<Text>, list: &[String]) -> bool {
    matches!(text, Some(Some(t)) if list.iter().any(|c| c == t))
}

/// Maps one dossier (rows M1–M17, M19, M21).
pub(crate) fn map_dossier(dossier: &Dossier, codes: &Codes) -> Mapped {
    let mut out = Mapped::default();
    insz(dossier, &mut out);
    doelgroep(dossier, codes, &mut out);
    aanmelding(dossier, codes, &mut out);
    contracten(dossier, &mut out);
    uitstellen(dossier, &mut out);
    trajecten(dossier, codes, &mut out);
    documenten(dossier, codes, &mut out);
    inbreuken(dossier, codes, &mut out);
    noted(dossier, &mut out);
    // M23: sorted by date for readability; the reader applies the same-day order itself.
    out.events.sort_by_key(|e| e.date);
    out
}

/// M1.
fn insz(d: &Dossier, out: &mut Mapped) {
    match &d.insz {
        None => out.error("M1", "Personalia/INSZ", "missing: the dossier has no INSZ"),
        Some(None) => out.error("M1", "Personalia/INSZ", "invalid INSZ: too long"),
        Some(Some(text)) => {
            if text.len() != 11 || !text.bytes().all(|b| b.is_ascii_digit()) {
                out.error("M1", "Personalia/INSZ", "invalid INSZ: not 11 digits");
            } else {
                match Insz::parse(text) {
                    Ok(insz) => out.insz = Some(insz),
                    Err(e) => out.error("M1", "Personalia/INSZ", format!("invalid INSZ: {e}")),
                }
            }
        }
    }
}

/// M2–M5, A9, A13.
fn doelgroep(d: &Dossier, codes: &Codes, out: &mut Mapped) {
    let Some(g) = &d.doelgroep else {
        return; // M2: never subject
    };
    let mut valid = true;
    match &g.code {
        None => {
            out.error(
                "M2",
                "Doelgroep/Code",
                "missing: cannot tell whether the person is obligated",
            );
            valid = false;
        }
        Some(c) if !listed(&g.code, &codes.doelgroep_codes) => {
            out.error(
                "M2",
                "Doelgroep/Code",
                format!(
                    "unknown code {}",
                    unlisted(c, "[doelgroep] codes in kbi-codes.toml")
                ),
            );
            valid = false;
        }
        _ => {}
    }
    if let Some(t) = &g.type_ {
        if !listed(&g.type_, &codes.doelgroep_types) {
            out.error(
                "M2",
                "Doelgroep/Type",
                format!(
                    "unknown type {}",
                    unlisted(t, "[doelgroep] types in kbi-codes.toml")
                ),
            );
            valid = false;
        }
    }
    if !valid {
        return;
    }
    let code_is_obligated = is(&g.code, &codes.obligated_code);
    if code_is_obligated && g.type_.is_none() {
        out.error(
            "M2",
            "Doelgroep/Type",
            "missing with Code JA: cannot tell whether the person is obligated",
        );
        return;
    }
    let obligated = code_is_obligated && listed(&g.type_, &codes.obligated_types);
    if listed(&g.code, &codes.undecided)
        || (code_is_obligated && listed(&g.type_, &codes.undecided))
    {
        out.warn(
            "M2",
            "Doelgroep",
            "target group to be determined (NADER_TE_BEPALEN): not obligated",
        );
    }
    if g.reden_geen_doelgroep {
        out.warn(
            "M19",
            "Doelgroep/RedenGeenDoelgroep",
            "reason for not being in the target group: informative, no event",
        );
    }
    let periode = g.periode.clone().unwrap_or_default();
    let exemption_cause = |out: &mut Mapped| {
        let text = g.reden_vrijstelling.clone().flatten();
        match text.as_ref().and_then(|t| codes.exemption_causes.get(t)) {
            Some(cause) => *cause,
            None => {
                out.warn(
                    "M5",
                    "Doelgroep/RedenVrijstellingVanDeVerplichting",
                    format!(
                        "exemption code {}, cause {}",
                        unlisted(&text, "[vrijstelling.causes] in kbi-codes.toml"),
                        exemption_cause_code(codes.default_exemption)
                    ),
                );
                codes.default_exemption
            }
        }
    };
    if obligated {
        // M3
        let begin = mapped_date(out, &periode.begin, "Doelgroep/Periode/Begin");
        match begin {
            Ok(Some(date)) => out.event(
                date,
                EventKind::ObligationStart {
                    region: Region::Flanders, // A7
                },
            ),
            Ok(None) | Err(()) => {
                out.error(
                    "M3",
                    "Doelgroep",
                    "obligated (Code JA, Type PLICHT/RECHT_PLICHT) without a usable Periode/Begin: no start",
                );
                return;
            }
        }
        // M5 (A4: Einde is the last day inside)
        match mapped_date(out, &periode.einde, "Doelgroep/Periode/Einde") {
            Ok(Some(einde)) => {
                let date = next_day(einde);
                if g.reden_vrijstelling.is_some() {
                    let cause = exemption_cause(out);
                    out.event(date, EventKind::Exemption { cause: Some(cause) });
                } else {
                    out.event(
                        date,
                        EventKind::ObligationEnd {
                            cause: Some(EndCause::Other),
                        },
                    );
                }
            }
            Ok(None) => {
                if g.reden_vrijstelling.is_some() {
                    out.warn(
                        "M5",
                        "Doelgroep/RedenVrijstellingVanDeVerplichting",
                        "exemption reason on an obligated period without Einde: no end event",
                    );
                }
            }
            Err(()) => {}
        }
    } else if g.reden_vrijstelling.is_some() {
        // M4, A13
        match mapped_date(out, &periode.begin, "Doelgroep/Periode/Begin") {
            Ok(Some(date)) => {
                let cause = exemption_cause(out);
                out.event(date, EventKind::Exemption { cause: Some(cause) });
            }
            Ok(None) => out.warn(
                "M4",
                "Doelgroep/RedenVrijstellingVanDeVerplichting",
                "exemption reason without Periode/Begin: no event",
            ),
            Err(()) => {}
        }
    }
}

/// M6.
fn aanmelding(d: &Dossier, codes: &Codes, out: &mut Mapped) {
    let Some(a) = &d.aanmelding else { return };
    if let Some(t) = &a.type_ {
        if !listed(&a.type_, &codes.aanmelding_types) {
            out.warn(
                "M6",
                "Aanmelding/Type",
                format!(
                    "registration type {}; mapped all the same",
                    unlisted(t, "[aanmelding] types in kbi-codes.toml")
                ),
            );
        }
    }
    match mapped_date(out, &a.datum, "Aanmelding/DatumAanmelding") {
        Ok(Some(date)) => out.event(date, EventKind::Registration),
        Ok(None) => out.error(
            "M6",
            "Aanmelding/DatumAanmelding",
            "missing: a registration without a date gives no event",
        ),
        Err(()) => {}
    }
}

/// M7, M8, A1.
fn contracten(d: &Dossier, out: &mut Mapped) {
    for (i, c) in d.contracten.iter().enumerate() {
        let base = format!("Contracten/Contract[{}]", i + 1);
        let path = format!("{base}/DatumRegistratie");
        match mapped_date(out, &c.datum_registratie, &path) {
            Ok(Some(date)) => out.event(date, EventKind::ContractSigned),
            Ok(None) => out.error(
                "M7",
                path,
                "missing: a contract without a date gives no event",
            ),
            Err(()) => {}
        }
        for _ in 0..c.addenda {
            out.warn(
                "M8",
                format!("{base}/Addenda/Addendum"),
                "contract addendum: not a new signature, no event",
            );
        }
        for _ in 0..c.opschortingen {
            out.warn(
                "M8",
                format!("{base}/Opschortingen/Opschorting"),
                "contract suspension: not modelled by the rules, no event",
            );
        }
    }
}

/// M9, M10, A5.
fn uitstellen(d: &Dossier, out: &mut Mapped) {
    let groups = [
        (
            "M9",
            "UitstellenVanAanmelding/UitstelVanAanmelding",
            &d.uitstellen_van_aanmelding,
            Obligation::Registration,
        ),
        (
            "M10",
            "UitstellenVanOndertekening/UitstelVanOndertekening",
            &d.uitstellen_van_ondertekening,
            Obligation::Contract,
        ),
    ];
    for (row, name, list, obligation) in groups {
        for (i, u) in list.iter().enumerate() {
            let base = format!("{name}[{}]", i + 1);
            let periode: Periode = u.periode.clone().unwrap_or_default();
            let begin = mapped_date(out, &periode.begin, &format!("{base}/Periode/Begin"));
            let einde = mapped_date(out, &periode.einde, &format!("{base}/Periode/Einde"));
            let (Ok(begin), Ok(einde)) = (begin, einde) else {
                continue;
            };
            let Some(begin) = begin else {
                out.error(
                    row,
                    format!("{base}/Periode"),
                    "deferral without Periode/Begin: no event",
                );
                continue;
            };
            let until = match einde {
                Some(e) => e,
                None => {
                    out.warn(
                        row,
                        format!("{base}/Periode"),
                        "open-ended deferral: until 9999-12-31",
                    );
                    OPEN_END
                }
            };
            out.event(begin, EventKind::DeadlineExtension { obligation, until });
        }
    }
}

/// M11, M12, A3.
fn trajecten(d: &Dossier, codes: &Codes, out: &mut Mapped) {
    for (i, t) in d.trajecten.iter().enumerate() {
        let Some(b) = &t.besluit else { continue };
        let base = format!("Trajecten/Traject[{}]/Besluit", i + 1);
        if listed(&b.code, &codes.certificate_decisions) {
            let is_integration = matches!(&t.type_, Some(Some(ty)) if ty.starts_with(&codes.integration_type_prefix));
            if !is_integration {
                out.warn(
                    "M11",
                    format!("Trajecten/Traject[{}]/Type", i + 1),
                    format!(
                        "certificate decision on a programme of type {}: mapped all the same",
                        unlisted(
                            &t.type_.clone().flatten(),
                            "types starting with [traject] integration_type_prefix in kbi-codes.toml"
                        )
                    ),
                );
            }
            let path = format!("{base}/DatumToekenning");
            match mapped_date(out, &b.datum_toekenning, &path) {
                Ok(Some(date)) => out.event(date, EventKind::Certificate),
                Ok(None) => out.error(
                    "M11",
                    path,
                    "missing: a certificate decision without a date gives no event",
                ),
                Err(()) => {}
            }
        } else if listed(&b.code, &codes.no_certificate_decisions) {
            out.warn(
                "M12",
                format!("{base}/Code"),
                format!(
                    "programme ended without certificate ({}): no event",
                    listed_code(b.code.clone().flatten().as_deref().unwrap_or_default())
                ),
            );
        } else if let Some(c) = &b.code {
            out.error(
                "M12",
                format!("{base}/Code"),
                format!(
                    "unknown decision code {}",
                    unlisted(c, "[traject] decisions in kbi-codes.toml")
                ),
            );
        } else {
            out.warn(
                "M12",
                format!("{base}/Code"),
                "decision without a code: no event",
            );
        }
    }
}

/// Row M13 alone: the dates of the certificates in `BehaaldeAttesten/Document`, read exactly as
/// the import reads them (same code lists, `DatumOndertekening` else `DatumAanmaak`); a document
/// the import refuses or skips gives no date. The export's `certificate_obtained`
/// (`protocols.md` section 3) is this, so the two can never disagree.
pub fn certificate_document_dates(dossier: &Dossier, codes: &Codes) -> Vec<NaiveDate> {
    let mut out = Mapped::default();
    documenten(dossier, codes, &mut out);
    out.events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Certificate))
        .map(|e| e.date)
        .collect()
}

/// M13, A3, A15.
fn documenten(d: &Dossier, codes: &Codes, out: &mut Mapped) {
    for (i, doc) in d.documenten.iter().enumerate() {
        let base = format!("BehaaldeAttesten/Document[{}]", i + 1);
        if let Some(s) = &doc.soort {
            if !listed(&doc.soort, &codes.document_soorten) {
                out.error(
                    "M13",
                    format!("{base}/Soort"),
                    format!(
                        "unknown document kind {}",
                        unlisted(s, "[document] soorten in kbi-codes.toml")
                    ),
                );
                continue;
            }
        }
        if !listed(&doc.type_, &codes.certificate_documents) {
            let shown = unlisted(
                &doc.type_.clone().flatten(),
                "[document] certificate_types in kbi-codes.toml",
            );
            out.error(
                "M13",
                format!("{base}/Type"),
                if doc.type_.is_none() {
                    "missing: cannot tell which certificate".to_string()
                } else {
                    format!("unknown document type {shown}")
                },
            );
            continue;
        }
        let signed = mapped_date(
            out,
            &doc.datum_ondertekening,
            &format!("{base}/DatumOndertekening"),
        );
        let made = mapped_date(out, &doc.datum_aanmaak, &format!("{base}/DatumAanmaak"));
        match (signed, made) {
            (Ok(Some(date)), _) => out.event(date, EventKind::Certificate),
            (Ok(None), Ok(Some(date))) => out.event(date, EventKind::Certificate),
            (Ok(None), Ok(None)) => out.error(
                "M13",
                base,
                "certificate without DatumOndertekening or DatumAanmaak: no event",
            ),
            _ => {}
        }
    }
}

/// M14–M17, A2, A10, A11.
fn inbreuken(d: &Dossier, codes: &Codes, out: &mut Mapped) {
    for (i, inb) in d.inbreuken.iter().enumerate() {
        let base = format!("Inbreuken/Inbreuk[{}]", i + 1);
        let obligation = match &inb.type_ {
            Some(Some(t)) => codes.inbreuk_types.get(t).copied(),
            _ => None,
        };
        let Some(obligation) = obligation else {
            out.error(
                "M15",
                format!("{base}/Type"),
                match &inb.type_ {
                    None => "missing: an established breach of unknown kind".to_string(),
                    Some(t) => format!(
                        "Inbreuk type {} has no known meaning: refused so that an established breach does not vanish",
                        unlisted(t, "[inbreuk.types] in kbi-codes.toml")
                    ),
                },
            );
            continue;
        };
        let established = mapped_date(
            out,
            &inb.datum_vaststelling,
            &format!("{base}/DatumVaststelling"),
        );
        let notice = mapped_date(
            out,
            &inb.datum_ingebrekestelling,
            &format!("{base}/DatumIngebrekestellingVerzonden"),
        );
        let date = match (established, notice) {
            (Ok(Some(d)), _) => d,
            (Ok(None), Ok(Some(d))) => {
                out.warn(
                    "M14",
                    format!("{base}/DatumIngebrekestellingVerzonden"),
                    "breach without DatumVaststelling: dated by the formal notice",
                );
                d
            }
            (Ok(None), Ok(None)) => {
                out.error(
                    "M14",
                    base,
                    "breach without DatumVaststelling or DatumIngebrekestellingVerzonden: no event",
                );
                continue;
            }
            _ => continue,
        };
        out.event(date, EventKind::Infringement { obligation });
        let Some(form) = &inb.rechtzetting else {
            continue;
        };
        let path = format!("{base}/RechtzettingsFormulier/DatumOndertekening");
        match mapped_date(out, &form.datum_ondertekening, &path) {
            Ok(Some(signed)) => {
                if signed < date {
                    // Written as an event it could close an earlier breach of the same
                    // obligation: left out, and said.
                    out.warn(
                        "M16",
                        path,
                        "rectification signed before the breach: the close does not apply, no event",
                    );
                } else {
                    out.event(signed, EventKind::InfringementClosed { obligation });
                }
            }
            Ok(None) => {
                if form.datum_aanmaak.is_some() {
                    out.warn(
                        "M17",
                        format!("{base}/RechtzettingsFormulier"),
                        "rectification form created but not signed: the breach stays open",
                    );
                }
            }
            Err(()) => {}
        }
    }
}

/// M19 for elements inside otherwise ignored groups.
fn noted(d: &Dossier, out: &mut Mapped) {
    let n = &d.noted;
    for _ in 0..n.onderdeel_besluiten {
        out.warn(
            "M19",
            "Trajecten/Traject/TrajectOnderdelen/TrajectOnderdeel/Besluit",
            "decision on a programme part: not a breach until the agency establishes one",
        );
    }
    for _ in 0..n.plo_besluiten {
        out.warn(
            "M19",
            "VormingsActiviteiten/PLOCursussen/PLOCursus/Besluit",
            "course result: not an obligation fact",
        );
    }
    for _ in 0..n.nt2_niveau {
        out.warn(
            "M19",
            "Talenkennis/BehaaldNT2Niveau",
            "Dutch level reached: not modelled by the rules",
        );
    }
}

pub mod reply;

/// One event of each type rows M3–M16 produce, in the order of the header's `facts` (M23): the
/// list is derived from [`EventKind`] so that a type renamed in the domain is renamed here too.
const PRODUCED: [EventKind; 9] = [
    EventKind::ObligationStart {
        region: Region::Flanders,
    },
    EventKind::ObligationEnd { cause: None },
    EventKind::Exemption { cause: None },
    EventKind::Registration,
    EventKind::ContractSigned,
    EventKind::DeadlineExtension {
        obligation: Obligation::Registration,
        until: OPEN_END,
    },
    EventKind::Infringement {
        obligation: Obligation::Registration,
    },
    EventKind::InfringementClosed {
        obligation: Obligation::Registration,
    },
    EventKind::Certificate,
];

/// The header's `facts` of a dossier import (M23), without the employment-service list's type.
pub fn dossier_facts() -> [&'static str; 9] {
    PRODUCED.map(|kind| kind.type_name())
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
