//! One test per row of the mapping table (M1–M23) and per decision (A1–A15) of `kbi-import.md`,
//! each with a small dossier written for it. Dossiers are read through the streaming reader
//! (as the import does) and mapped; where a decision is about the answer, the mapped events
//! are loaded as a snapshot and asked.

use std::sync::Arc;

use chrono::NaiveDate;

use super::*;
use crate::codes::Codes;
use crate::dossier::Dossier;
use crate::xml::{ReplyReader, Tally};
use kbi_core::domain::{Question, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::load_bytes;

const INSZ: &str = "88021412358";

/// Reads one `KBIDossier` written as XML (its content).
fn read(inner: &str) -> (Dossier, Tally) {
    let xml = format!(
        r#"<web:GeefDossierKBIResponse xmlns:web="http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be"><Repliek><Context><Naam>GeefDossierKBI</Naam><Versie>01.00.0000</Versie></Context><Antwoorden><Antwoord><Inhoud><KBIDossier>{inner}</KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>"#
    );
    let mut reader = ReplyReader::new(xml.as_bytes());
    let reply = reader.next_reply().expect("well-formed").expect("a reply");
    let dossier = reply.antwoorden[0].dossier.clone().expect("a dossier");
    (dossier, reader.tally)
}

fn map(inner: &str) -> Mapped {
    let (dossier, _) = read(&format!(
        "<Personalia><INSZ>{INSZ}</INSZ></Personalia>{inner}"
    ));
    map_dossier(&dossier, &Codes::shipped())
}

fn d(text: &str) -> NaiveDate {
    parse_date(text).unwrap()
}

/// The events as `(date, type, detail)` for short assertions.
fn events(m: &Mapped) -> Vec<(String, &'static str, String)> {
    m.events
        .iter()
        .map(|e| {
            let detail = match e.kind {
                EventKind::ObligationStart { region } => region.code().to_string(),
                EventKind::DeadlineExtension { obligation, until } => {
                    format!("{} until {until}", obligation.code())
                }
                EventKind::Infringement { obligation }
                | EventKind::InfringementClosed { obligation } => obligation.code().to_string(),
                EventKind::Exemption { cause: Some(c) } => exemption_cause_code(c).to_string(),
                EventKind::ObligationEnd { cause: Some(c) } => format!("{c:?}"),
                _ => String::new(),
            };
            (e.date.to_string(), e.kind.type_name(), detail)
        })
        .collect()
}

fn ev(date: &str, kind: &'static str, detail: &str) -> (String, &'static str, String) {
    (date.to_string(), kind, detail.to_string())
}

fn errors(m: &Mapped) -> Vec<(&'static str, String)> {
    m.findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| (f.row, f.path.clone()))
        .collect()
}

fn warns(m: &Mapped) -> Vec<(&'static str, String)> {
    m.findings
        .iter()
        .filter(|f| f.severity == Severity::Warn)
        .map(|f| (f.row, f.path.clone()))
        .collect()
}

fn err(row: &'static str, path: &str) -> (&'static str, String) {
    (row, path.to_string())
}

const PLICHT: &str = "<Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2022-04-04</Begin></Periode></Doelgroep>";

/// Answers from the mapped events under the shipped rules (header `facts` as the import
/// writes them, extraction 2026-11-01).
fn answer(m: &Mapped, date: &str) -> String {
    assert!(!m.has_errors(), "{:?}", m.findings);
    let mut text = crate::header_line(
        "t",
        "2026-11-01T02:00:00Z".parse().unwrap(),
        1,
        &crate::mapping::dossier_facts(),
        serde_json::json!([]),
    )
    .into_bytes();
    crate::write_person_line(&mut text, m.insz.unwrap(), &m.events);
    let snapshot = load_bytes(text, Arc::new(RuleSet::shipped()), &Silent).unwrap();
    let advice = snapshot
        .advise(&Question::parse(INSZ, Some(date), None).unwrap())
        .unwrap();
    match (advice.subject, advice.reason) {
        (false, _) => "not subject".into(),
        (true, None) => "OK".into(),
        (true, Some(r)) => format!("NOK {}", r.code()),
    }
}

// ---------- rows ----------

#[test]
fn m1_insz() {
    let (dossier, _) = read("<Personalia><Naam>x</Naam></Personalia>");
    let m = map_dossier(&dossier, &Codes::shipped());
    assert_eq!(errors(&m), [err("M1", "Personalia/INSZ")]);
    assert!(m.insz.is_none());
    for bad in [
        "88021412359",
        "8802141235",
        "88.02.14-123.58",
        "88021412358 x",
    ] {
        let (dossier, _) = read(&format!("<Personalia><INSZ>{bad}</INSZ></Personalia>"));
        let m = map_dossier(&dossier, &Codes::shipped());
        assert_eq!(errors(&m), [err("M1", "Personalia/INSZ")], "{bad}");
        assert!(m.findings.iter().all(|f| !f.message.contains("8802141")));
    }
    let m = map("");
    assert_eq!(m.insz.map(|i| i.to_string()).as_deref(), Some(INSZ));
    assert!(m.findings.is_empty());
}

#[test]
fn m2_not_obligated_or_unknown_codes() {
    assert!(map("").events.is_empty());
    for (code, ty) in [
        ("NEE", ""),
        ("JA", "<Type>RECHT</Type>"),
        ("JA", "<Type>MINDERJARIG</Type>"),
        ("JA", "<Type>GEEN</Type>"),
        ("NADER_TE_BEPALEN", ""),
    ] {
        let m = map(&format!("<Doelgroep><Code>{code}</Code>{ty}<Periode><Begin>2022-04-04</Begin></Periode></Doelgroep>"));
        assert!(m.events.is_empty(), "{code} {ty}");
        assert!(!m.has_errors(), "{code} {ty}");
    }
    let m = map("<Doelgroep><Code>NADER_TE_BEPALEN</Code></Doelgroep>");
    assert_eq!(warns(&m), [err("M2", "Doelgroep")]);
    let m = map("<Doelgroep><Code>MISSCHIEN</Code></Doelgroep>");
    assert_eq!(errors(&m), [err("M2", "Doelgroep/Code")]);
    let m = map("<Doelgroep><Code>JA</Code><Type>HALF</Type></Doelgroep>");
    assert_eq!(errors(&m), [err("M2", "Doelgroep/Type")]);
    // The other rows still apply to a person never subject.
    let m = map("<Doelgroep><Code>NEE</Code></Doelgroep><Aanmelding><DatumAanmelding>2020-01-06</DatumAanmelding></Aanmelding>");
    assert_eq!(events(&m), [ev("2020-01-06", "REGISTRATION", "")]);
}

#[test]
fn m3_obligation_start() {
    let m = map(PLICHT);
    assert_eq!(events(&m), [ev("2022-04-04", "OBLIGATION_START", "VL")]);
    let m = map("<Doelgroep><Code>JA</Code><Type>PLICHT</Type></Doelgroep>");
    assert_eq!(errors(&m), [err("M3", "Doelgroep")]);
    assert!(m.events.is_empty());
}

#[test]
fn m4_exemption_of_a_person_not_obligated() {
    let m = map("<Doelgroep><Code>JA</Code><Type>RECHT</Type><Periode><Begin>2021-03-01</Begin></Periode><RedenVrijstellingVanDeVerplichting>01</RedenVrijstellingVanDeVerplichting></Doelgroep>");
    assert_eq!(events(&m), [ev("2021-03-01", "EXEMPTION", "OTHER")]);
    let m = map("<Doelgroep><Code>NEE</Code><RedenVrijstellingVanDeVerplichting>01</RedenVrijstellingVanDeVerplichting></Doelgroep>");
    assert!(m.events.is_empty());
    assert_eq!(
        warns(&m),
        [err("M4", "Doelgroep/RedenVrijstellingVanDeVerplichting")]
    );
}

#[test]
fn m5_end_of_the_period() {
    let m = map("<Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2022-04-04</Begin><Einde>2024-06-30</Einde></Periode></Doelgroep>");
    assert_eq!(
        events(&m),
        [
            ev("2022-04-04", "OBLIGATION_START", "VL"),
            ev("2024-07-01", "OBLIGATION_END", "Other")
        ]
    );
    let m = map("<Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2022-04-04</Begin><Einde>2024-12-31</Einde></Periode><RedenVrijstellingVanDeVerplichting>07</RedenVrijstellingVanDeVerplichting></Doelgroep>");
    assert_eq!(events(&m)[1], ev("2025-01-01", "EXEMPTION", "OTHER"));
    assert_eq!(
        warns(&m),
        [err("M5", "Doelgroep/RedenVrijstellingVanDeVerplichting")]
    );
    // Issue 24, item 4: a value that failed its list is described, never quoted.
    assert_eq!(
        m.findings[0].message,
        "exemption code (value not shown: 2 characters, not on the list of [vrijstelling.causes] in kbi-codes.toml), cause OTHER"
    );
    assert!(!m.findings[0].message.contains("07"));
    // Obligated with a reason but no Einde: WARN, no end event.
    let m = map("<Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2022-04-04</Begin></Periode><RedenVrijstellingVanDeVerplichting>07</RedenVrijstellingVanDeVerplichting></Doelgroep>");
    assert_eq!(events(&m).len(), 1);
    assert_eq!(
        warns(&m),
        [err("M5", "Doelgroep/RedenVrijstellingVanDeVerplichting")]
    );
}

#[test]
fn m6_registration() {
    let m = map(
        "<Aanmelding><Type>HA</Type><DatumAanmelding>2022-10-17</DatumAanmelding></Aanmelding>",
    );
    assert_eq!(events(&m), [ev("2022-10-17", "REGISTRATION", "")]);
    assert!(m.findings.is_empty());
    let m = map(
        "<Aanmelding><Type>XA</Type><DatumAanmelding>2022-10-17</DatumAanmelding></Aanmelding>",
    );
    assert_eq!(events(&m).len(), 1);
    assert_eq!(warns(&m), [err("M6", "Aanmelding/Type")]);
    let m = map(
        "<Aanmelding><Type>EA</Type><DatumAanmelding>2022-13-17</DatumAanmelding></Aanmelding>",
    );
    assert!(m.events.is_empty());
    assert_eq!(errors(&m), [err("M21", "Aanmelding/DatumAanmelding")]);
    let m = map("<Aanmelding><Type>EA</Type></Aanmelding>");
    assert_eq!(errors(&m), [err("M6", "Aanmelding/DatumAanmelding")]);
}

#[test]
fn m7_contracts() {
    let m = map("<Contracten><Contract><DatumRegistratie>2022-11-07</DatumRegistratie></Contract><Contract><DatumRegistratie>2023-02-01</DatumRegistratie></Contract><Contract><Type>IC07G</Type></Contract></Contracten>");
    assert_eq!(
        events(&m),
        [
            ev("2022-11-07", "CONTRACT_SIGNED", ""),
            ev("2023-02-01", "CONTRACT_SIGNED", "")
        ]
    );
    assert_eq!(
        errors(&m),
        [err("M7", "Contracten/Contract[3]/DatumRegistratie")]
    );
}

#[test]
fn m8_addenda_and_suspensions() {
    let m = map("<Contracten><Contract><DatumRegistratie>2022-11-07</DatumRegistratie><Addenda><Addendum><DatumRegistratie>2023-01-01</DatumRegistratie></Addendum><Addendum/></Addenda><Opschortingen><Opschorting><Periode><Begin>2023-01-01</Begin></Periode></Opschorting></Opschortingen></Contract></Contracten>");
    assert_eq!(events(&m).len(), 1);
    assert_eq!(
        warns(&m),
        [
            err("M8", "Contracten/Contract[1]/Addenda/Addendum"),
            err("M8", "Contracten/Contract[1]/Addenda/Addendum"),
            err("M8", "Contracten/Contract[1]/Opschortingen/Opschorting"),
        ]
    );
}

#[test]
fn m9_deferral_of_registration() {
    let m = map("<UitstellenVanAanmelding><UitstelVanAanmelding><Periode><Begin>2022-06-20</Begin><Einde>2022-10-31</Einde></Periode><Reden>ZIEKTE</Reden></UitstelVanAanmelding><UitstelVanAanmelding><Periode><Begin>2023-01-02</Begin></Periode></UitstelVanAanmelding></UitstellenVanAanmelding>");
    assert_eq!(
        events(&m),
        [
            ev(
                "2022-06-20",
                "DEADLINE_EXTENSION",
                "REGISTRATION until 2022-10-31"
            ),
            ev(
                "2023-01-02",
                "DEADLINE_EXTENSION",
                "REGISTRATION until 9999-12-31"
            ),
        ]
    );
    assert_eq!(
        warns(&m),
        [err(
            "M9",
            "UitstellenVanAanmelding/UitstelVanAanmelding[2]/Periode"
        )]
    );
    let m = map("<UitstellenVanAanmelding><UitstelVanAanmelding><Periode><Begin>2022-06-20</Begin><Einde>2022-99-31</Einde></Periode></UitstelVanAanmelding><UitstelVanAanmelding><Reden>X</Reden></UitstelVanAanmelding></UitstellenVanAanmelding>");
    assert!(m.events.is_empty());
    assert_eq!(
        errors(&m),
        [
            err(
                "M21",
                "UitstellenVanAanmelding/UitstelVanAanmelding[1]/Periode/Einde"
            ),
            err(
                "M9",
                "UitstellenVanAanmelding/UitstelVanAanmelding[2]/Periode"
            ),
        ]
    );
}

#[test]
fn m10_deferral_of_signing() {
    let m = map("<UitstellenVanOndertekening><UitstelVanOndertekening><Periode><Begin>2022-06-20</Begin></Periode><Reden>BIJSTAND_ZIEK_FAMILIELID</Reden></UitstelVanOndertekening></UitstellenVanOndertekening>");
    assert_eq!(
        events(&m),
        [ev(
            "2022-06-20",
            "DEADLINE_EXTENSION",
            "CONTRACT until 9999-12-31"
        )]
    );
    assert_eq!(warns(&m)[0].0, "M10");
    let m = map("<UitstellenVanOndertekening><UitstelVanOndertekening><Periode><Begin>2022-00-20</Begin></Periode></UitstelVanOndertekening></UitstellenVanOndertekening>");
    assert_eq!(
        errors(&m),
        [err(
            "M21",
            "UitstellenVanOndertekening/UitstelVanOndertekening[1]/Periode/Begin"
        )]
    );
}

#[test]
fn m11_certificate_decision() {
    let m = map("<Trajecten><Traject><Type>TT_NT2</Type></Traject><Traject><Type>TT_IBVP</Type><Besluit><Code>JA_IB</Code><DatumToekenning>2024-03-15</DatumToekenning></Besluit></Traject></Trajecten>");
    assert_eq!(events(&m), [ev("2024-03-15", "CERTIFICATE", "")]);
    assert!(m.findings.is_empty());
    let m = map("<Trajecten><Traject><Type>TT_NT2</Type><Besluit><Code>JA_IB</Code><DatumToekenning>2024-03-15</DatumToekenning></Besluit></Traject></Trajecten>");
    assert_eq!(events(&m).len(), 1);
    assert_eq!(warns(&m), [err("M11", "Trajecten/Traject[1]/Type")]);
    // generiek:DatumType admits impossible dates.
    let m = map("<Trajecten><Traject><Type>TT_IBVP</Type><Besluit><Code>JA_IB</Code><DatumToekenning>2017-02-31</DatumToekenning></Besluit></Traject></Trajecten>");
    assert_eq!(
        errors(&m),
        [err("M21", "Trajecten/Traject[1]/Besluit/DatumToekenning")]
    );
}

#[test]
fn m12_decision_without_certificate() {
    for code in ["NEE", "NEE_ANALFA"] {
        let m = map(&format!("<Trajecten><Traject><Type>TT_IBVP</Type><Besluit><Code>{code}</Code><DatumToekenning>2020-01-15</DatumToekenning></Besluit></Traject></Trajecten>"));
        assert!(m.events.is_empty());
        assert_eq!(warns(&m), [err("M12", "Trajecten/Traject[1]/Besluit/Code")]);
    }
    let m =
        map("<Trajecten><Traject><Besluit><Code>MISSCHIEN</Code></Besluit></Traject></Trajecten>");
    assert_eq!(
        errors(&m),
        [err("M12", "Trajecten/Traject[1]/Besluit/Code")]
    );
}

#[test]
fn m13_certificate_documents() {
    let m = map("<BehaaldeAttesten><Document><Soort>ATTEST</Soort><Type>AI023</Type><DatumAanmaak>2023-06-01</DatumAanmaak><DatumOndertekening>2023-06-05</DatumOndertekening></Document><Document><Type>AI023</Type><DatumAanmaak>2023-07-01</DatumAanmaak></Document></BehaaldeAttesten>");
    assert_eq!(
        events(&m),
        [
            ev("2023-06-05", "CERTIFICATE", ""),
            ev("2023-07-01", "CERTIFICATE", "")
        ]
    );
    let m = map("<BehaaldeAttesten><Document><Soort>BRIEF</Soort><Type>AI023</Type><DatumAanmaak>2023-06-01</DatumAanmaak></Document><Document><Type>AI099</Type><DatumAanmaak>2023-06-01</DatumAanmaak></Document><Document><Type>AI023</Type></Document></BehaaldeAttesten>");
    assert!(m.events.is_empty());
    assert_eq!(
        errors(&m),
        [
            err("M13", "BehaaldeAttesten/Document[1]/Soort"),
            err("M13", "BehaaldeAttesten/Document[2]/Type"),
            err("M13", "BehaaldeAttesten/Document[3]"),
        ]
    );
}

#[test]
fn m13_alone_gives_the_same_certificate_dates() {
    // The export's `certificate_obtained` reads documents through this function only.
    let (dossier, _) = read("<BehaaldeAttesten><Document><Soort>ATTEST</Soort><Type>AI023</Type><DatumAanmaak>2023-06-01</DatumAanmaak><DatumOndertekening>2023-06-05</DatumOndertekening></Document><Document><Soort>BRIEF</Soort><Type>AI023</Type><DatumAanmaak>2023-06-02</DatumAanmaak></Document><Document><Type>AEVC05</Type><DatumAanmaak>2023-07-01</DatumAanmaak></Document><Document><Type>AI023</Type><DatumOndertekening>2023-99-01</DatumOndertekening><DatumAanmaak>2023-08-01</DatumAanmaak></Document></BehaaldeAttesten><Trajecten><Traject><Type>TT_IB_X</Type><Besluit><Code>JA_IB</Code><DatumToekenning>2023-09-01</DatumToekenning></Besluit></Traject></Trajecten>");
    assert_eq!(
        certificate_document_dates(&dossier, &Codes::shipped()),
        [d("2023-06-05"), d("2023-07-01")]
    );
}

#[test]
fn m14_infringements_and_their_obligation() {
    let types = [
        ("1", "REGISTRATION"),
        ("2", "CONTRACT"),
        ("3", "CONTRACT"),
        ("4", "CONTRACT"),
        ("5", "ATTENDANCE"),
    ];
    for (code, obligation) in types {
        let m = map(&format!("<Inbreuken><Inbreuk><Type>{code}</Type><SanctionerendeOverheid>HH</SanctionerendeOverheid><DatumVaststelling>2023-05-10</DatumVaststelling><DatumIngebrekestellingVerzonden>2023-05-11</DatumIngebrekestellingVerzonden><Motivering>vrije tekst</Motivering></Inbreuk></Inbreuken>"));
        assert_eq!(events(&m), [ev("2023-05-10", "INFRINGEMENT", obligation)]);
        assert!(m.findings.is_empty());
    }
    let m = map("<Inbreuken><Inbreuk><Type>1</Type></Inbreuk></Inbreuken>");
    assert_eq!(errors(&m), [err("M14", "Inbreuken/Inbreuk[1]")]);
}

#[test]
fn m15_infringement_of_unknown_meaning() {
    for code in ["6", "7", "8", "9", "x"] {
        let m = map(&format!("<Inbreuken><Inbreuk><Type>{code}</Type><DatumVaststelling>2023-05-10</DatumVaststelling></Inbreuk></Inbreuken>"));
        assert!(m.events.is_empty());
        assert_eq!(
            errors(&m),
            [err("M15", "Inbreuken/Inbreuk[1]/Type")],
            "{code}"
        );
    }
    let m = map("<Inbreuken><Inbreuk><DatumVaststelling>2023-05-10</DatumVaststelling></Inbreuk></Inbreuken>");
    assert_eq!(errors(&m), [err("M15", "Inbreuken/Inbreuk[1]/Type")]);
}

#[test]
fn m16_rectification_closes_the_breach() {
    let m = map("<Inbreuken><Inbreuk><Type>5</Type><DatumVaststelling>2023-05-10</DatumVaststelling><RechtzettingsFormulier><DatumAanmaak>2023-05-12</DatumAanmaak><DatumOndertekening>2023-05-24</DatumOndertekening></RechtzettingsFormulier></Inbreuk></Inbreuken>");
    assert_eq!(
        events(&m),
        [
            ev("2023-05-10", "INFRINGEMENT", "ATTENDANCE"),
            ev("2023-05-24", "INFRINGEMENT_CLOSED", "ATTENDANCE")
        ]
    );
    let m = map("<Inbreuken><Inbreuk><Type>1</Type><DatumVaststelling>2023-05-10</DatumVaststelling><RechtzettingsFormulier><DatumOndertekening>2023-05-01</DatumOndertekening></RechtzettingsFormulier></Inbreuk></Inbreuken>");
    assert_eq!(
        events(&m),
        [ev("2023-05-10", "INFRINGEMENT", "REGISTRATION")]
    );
    assert_eq!(
        warns(&m),
        [err(
            "M16",
            "Inbreuken/Inbreuk[1]/RechtzettingsFormulier/DatumOndertekening"
        )]
    );
}

#[test]
fn m17_unsigned_rectification_leaves_the_breach_open() {
    let m = map("<Inbreuken><Inbreuk><Type>5</Type><DatumVaststelling>2023-05-10</DatumVaststelling><RechtzettingsFormulier/></Inbreuk><Inbreuk><Type>5</Type><DatumVaststelling>2023-06-10</DatumVaststelling><RechtzettingsFormulier><DatumAanmaak>2023-06-12</DatumAanmaak></RechtzettingsFormulier></Inbreuk></Inbreuken>");
    assert_eq!(events(&m).len(), 2);
    assert!(events(&m).iter().all(|e| e.1 == "INFRINGEMENT"));
    assert_eq!(
        warns(&m),
        [err("M17", "Inbreuken/Inbreuk[2]/RechtzettingsFormulier")]
    );
}

/// Everything a dossier can say at once.
const FULL: &str = "<Doelgroep><Code>JA</Code><Type>RECHT_PLICHT</Type><Periode><Begin>2022-04-04</Begin><Einde>2025-06-30</Einde></Periode></Doelgroep><Aanmelding><Type>EA</Type><DatumAanmelding>2022-05-02</DatumAanmelding></Aanmelding><Contracten><Contract><DatumRegistratie>2022-06-01</DatumRegistratie></Contract></Contracten><UitstellenVanAanmelding><UitstelVanAanmelding><Periode><Begin>2022-04-20</Begin></Periode></UitstelVanAanmelding></UitstellenVanAanmelding><UitstellenVanOndertekening><UitstelVanOndertekening><Periode><Begin>2022-05-20</Begin><Einde>2022-06-20</Einde></Periode></UitstelVanOndertekening></UitstellenVanOndertekening><Trajecten><Traject><Type>TT_IBVP</Type><Besluit><Code>JA_EVC</Code><DatumToekenning>2024-01-10</DatumToekenning></Besluit></Traject></Trajecten><BehaaldeAttesten><Document><Soort>ATTEST</Soort><Type>AEVC05</Type><DatumOndertekening>2024-01-11</DatumOndertekening></Document></BehaaldeAttesten><Inbreuken><Inbreuk><Type>1</Type><DatumVaststelling>2022-05-01</DatumVaststelling><RechtzettingsFormulier><DatumOndertekening>2022-05-02</DatumOndertekening></RechtzettingsFormulier></Inbreuk><Inbreuk><Type>2</Type><DatumIngebrekestellingVerzonden>2022-05-30</DatumIngebrekestellingVerzonden></Inbreuk><Inbreuk><Type>5</Type><DatumVaststelling>2023-01-01</DatumVaststelling></Inbreuk></Inbreuken>";

#[test]
fn m18_never_a_type_the_dossier_does_not_hold() {
    let m = map(FULL);
    assert!(!m.has_errors(), "{:?}", m.findings);
    assert_eq!(m.events.len(), 12);
    let facts = kbi_core::domain::Facts::from_names(crate::mapping::dossier_facts()).unwrap();
    assert!(!facts.records(EventKind::EmploymentServiceRegistration));
    for e in &m.events {
        assert!(facts.records(e.kind), "{e:?}");
        match e.kind {
            EventKind::ObligationStart { region } => assert_eq!(region, Region::Flanders),
            EventKind::ObligationEnd { cause } => assert_eq!(cause, Some(EndCause::Other)),
            EventKind::Exemption { cause } => assert_eq!(cause, Some(ExemptionCause::Other)),
            _ => {}
        }
    }
}

#[test]
fn m19_relevant_but_not_modelled() {
    let m = map("<Doelgroep><Code>NEE</Code><RedenGeenDoelgroep Naam=\"x\">01</RedenGeenDoelgroep></Doelgroep><Trajecten><Traject><Type>TT_IBVP</Type><TrajectOnderdelen><TrajectOnderdeel><Type>TO_A1</Type><Besluit><Code>NVO</Code></Besluit></TrajectOnderdeel></TrajectOnderdelen></Traject></Trajecten><VormingsActiviteiten><PLOCursussen><PLOCursus><Besluit>GESLAAGD</Besluit></PLOCursus></PLOCursussen></VormingsActiviteiten><Talenkennis><BehaaldNT2Niveau><HoogstBehaald>B1</HoogstBehaald></BehaaldNT2Niveau></Talenkennis>");
    assert!(m.events.is_empty());
    let rows: Vec<&str> = warns(&m).iter().map(|w| w.0).collect();
    assert_eq!(rows, ["M19"; 4]);
    // Empty: nothing to say.
    let m = map("<Talenkennis><BehaaldNT2Niveau/></Talenkennis>");
    assert!(m.findings.is_empty());
}

#[test]
fn m20_ignored_by_design_is_counted_and_never_kept() {
    let (dossier, tally) = read(&format!("<Personalia><INSZ>{INSZ}</INSZ><Naam><Achternamen><Achternaam>Geheim</Achternaam></Achternamen></Naam><Geboortedatum>1988-02-14</Geboortedatum><Geslacht><Code>2</Code></Geslacht></Personalia><Doelgroep><Code>JA</Code><Type>PLICHT</Type><SubType>VOL_PROG</SubType></Doelgroep><Inbreuken><Inbreuk><Type>1</Type><Motivering>vrije tekst</Motivering><FeitenRelaas/><DatumVaststelling>2022-01-01</DatumVaststelling><RechtzettingsFormulier/></Inbreuk></Inbreuken><Wooncode/><Gesprekken/><NieuwElement/>"));
    for group in [
        "Personalia/Naam",
        "Personalia/Geboortedatum",
        "Personalia/Geslacht",
        "Doelgroep/SubType",
        "Inbreuk/Motivering",
        "Inbreuk/FeitenRelaas",
        "Wooncode",
        "Gesprekken",
        "(empty elements)",
    ] {
        assert_eq!(
            tally.ignored.get(group),
            Some(&1),
            "{group}: {:?}",
            tally.ignored
        );
    }
    assert_eq!(tally.unknown.get("KBIDossier/NieuwElement"), Some(&1));
    let kept = format!("{dossier:?}");
    assert!(!kept.contains("Geheim") && !kept.contains("1988-02-14") && !kept.contains("vrije"));
}

#[test]
fn m21_unusable_dates() {
    for (date, why) in [
        ("2021-99-99", "unknown month or day"),
        ("2021-00-10", "unknown month or day"),
        ("2021-05-00", "unknown month or day"),
        ("2017-02-31", "not a real calendar date"),
        ("2021-1-1", "not a date"),
        ("1 mei 2021", "not a date"),
    ] {
        let m = map(&format!(
            "<Aanmelding><DatumAanmelding>{date}</DatumAanmelding></Aanmelding>"
        ));
        assert!(m.events.is_empty(), "{date}");
        assert_eq!(
            errors(&m),
            [err("M21", "Aanmelding/DatumAanmelding")],
            "{date}"
        );
        assert!(
            m.findings[0].message.contains(why),
            "{date}: {}",
            m.findings[0].message
        );
        assert!(!m.findings[0].message.contains(date));
    }
}

// M22 (Uitzonderingen) and the duplicate of M23 are judged by the import run over whole replies:
// tests/it/kbi_import.rs (`not_found_gives_no_person_line_…`, `throttled_or_other_fout_…`,
// `second_dossier_for_one_insz_is_refused`). The header `facts` and `sources`: ibid.

#[test]
fn m23_events_sorted_by_date_and_one_line() {
    let m = map(FULL);
    assert!(m.events.windows(2).all(|w| w[0].date <= w[1].date));
    let mut line = Vec::new();
    crate::write_person_line(&mut line, m.insz.unwrap(), &m.events);
    let person = kbi_core::snapshot::person::parse_person(line.trim_ascii_end()).unwrap();
    assert_eq!(person.events, m.events);
}

// ---------- decisions ----------

#[test]
fn a1_contract_signed_at_its_registration_in_kbi() {
    let m = map("<Contracten><Contract><DatumRegistratie>2022-11-07</DatumRegistratie><Type>ICO13G</Type></Contract></Contracten>");
    assert_eq!(m.events[0].date, d("2022-11-07"));
    assert_eq!(m.events[0].kind, EventKind::ContractSigned);
}

#[test]
fn a2_intake_and_investigation_breaches_are_contract_breaches_remedied_by_signing() {
    for code in ["2", "3", "4"] {
        let m = map(&format!("{PLICHT}<Aanmelding><DatumAanmelding>2022-05-02</DatumAanmelding></Aanmelding><Inbreuken><Inbreuk><Type>{code}</Type><DatumVaststelling>2022-09-01</DatumVaststelling></Inbreuk></Inbreuken><Contracten><Contract><DatumRegistratie>2022-10-03</DatumRegistratie></Contract></Contracten>"));
        assert_eq!(answer(&m, "2022-09-15"), "NOK GEEN_CONTRACT", "{code}");
        assert_eq!(answer(&m, "2022-10-03"), "OK", "{code}");
    }
}

#[test]
fn a3_evc_decisions_and_documents_are_certificates() {
    let m = map("<Trajecten><Traject><Type>TT_IBVP</Type><Besluit><Code>JA_EVC</Code><DatumToekenning>2024-01-10</DatumToekenning></Besluit></Traject></Trajecten><BehaaldeAttesten><Document><Type>AEVC05</Type><DatumAanmaak>2024-01-12</DatumAanmaak></Document></BehaaldeAttesten>");
    assert_eq!(
        events(&m),
        [
            ev("2024-01-10", "CERTIFICATE", ""),
            ev("2024-01-12", "CERTIFICATE", "")
        ]
    );
}

#[test]
fn a4_einde_is_the_last_day_inside() {
    let m = map("<Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2022-04-04</Begin><Einde>2022-06-30</Einde></Periode></Doelgroep><Aanmelding><DatumAanmelding>2022-04-10</DatumAanmelding></Aanmelding>");
    assert_eq!(answer(&m, "2022-06-30"), "OK");
    assert_eq!(answer(&m, "2022-07-01"), "not subject");
}

#[test]
fn a5_open_ended_deferral_holds_until_further_notice() {
    let m = map(&format!("{PLICHT}<UitstellenVanAanmelding><UitstelVanAanmelding><Periode><Begin>2022-05-01</Begin></Periode></UitstelVanAanmelding></UitstellenVanAanmelding>"));
    // The registration deadline (2022-07-04) is deferred: still OK two years on.
    assert_eq!(answer(&m, "2024-09-01"), "OK");
    let m = map(PLICHT);
    assert_eq!(
        answer(&m, "2024-09-01"),
        "NOK NIET_AANGEMELD",
        "the same person without the deferral"
    );
}

#[test]
fn a6_exemption_codes_give_other_unless_the_list_says() {
    let dossier = "<Doelgroep><Code>NEE</Code><Periode><Begin>2021-03-01</Begin></Periode><RedenVrijstellingVanDeVerplichting>07</RedenVrijstellingVanDeVerplichting></Doelgroep>";
    assert_eq!(
        events(&map(dossier)),
        [ev("2021-03-01", "EXEMPTION", "OTHER")]
    );
    let codes = Codes::from_toml(&crate::codes::SHIPPED.replace(
        "[vrijstelling.causes]",
        "[vrijstelling.causes]\n\"07\" = \"MEDICAL\"",
    ))
    .unwrap();
    let (parsed, _) = read(&format!(
        "<Personalia><INSZ>{INSZ}</INSZ></Personalia>{dossier}"
    ));
    let m = map_dossier(&parsed, &codes);
    assert_eq!(events(&m), [ev("2021-03-01", "EXEMPTION", "MEDICAL")]);
    assert!(m.findings.is_empty());
}

#[test]
fn a7_region_is_always_flanders() {
    let m = map("<Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2022-06-01</Begin></Periode></Doelgroep><Trajecten><Traject><Type>TT_IBBXL</Type></Traject></Trajecten>");
    assert_eq!(events(&m), [ev("2022-06-01", "OBLIGATION_START", "VL")]);
}

#[test]
fn a8_one_period_and_one_registration_per_dossier() {
    let m = map(FULL);
    let starts = m
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ObligationStart { .. }))
        .count();
    let registrations = m
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Registration)
        .count();
    assert_eq!((starts, registrations), (1, 1));
    // A second Doelgroep is not 01.00: refused by the reader.
    let xml = format!("<web:GeefDossierKBIResponse xmlns:web=\"{}\"><Repliek><Antwoorden><Antwoord><Inhoud><KBIDossier>{PLICHT}{PLICHT}</KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>", crate::xml::RESPONSE_NS);
    let mut reader = ReplyReader::new(xml.as_bytes());
    assert!(matches!(
        reader.next_reply().unwrap_err().error,
        crate::xml::XmlError::Duplicated { .. }
    ));
}

#[test]
fn a9_recht_plicht_is_obligated() {
    let m = map("<Doelgroep><Code>JA</Code><Type>RECHT_PLICHT</Type><Periode><Begin>2022-04-04</Begin></Periode></Doelgroep>");
    assert_eq!(events(&m), [ev("2022-04-04", "OBLIGATION_START", "VL")]);
}

#[test]
fn a10_breach_dated_by_the_formal_notice() {
    let m = map("<Inbreuken><Inbreuk><Type>5</Type><DatumIngebrekestellingVerzonden>2023-05-11</DatumIngebrekestellingVerzonden></Inbreuk></Inbreuken>");
    assert_eq!(events(&m), [ev("2023-05-11", "INFRINGEMENT", "ATTENDANCE")]);
    assert_eq!(
        warns(&m),
        [err(
            "M14",
            "Inbreuken/Inbreuk[1]/DatumIngebrekestellingVerzonden"
        )]
    );
}

#[test]
fn a11_breach_and_remedy_on_the_same_day() {
    let m = map(&format!("{PLICHT}<Aanmelding><DatumAanmelding>2022-08-01</DatumAanmelding></Aanmelding><Inbreuken><Inbreuk><Type>1</Type><DatumVaststelling>2022-08-01</DatumVaststelling></Inbreuk></Inbreuken>"));
    assert_eq!(answer(&m, "2022-08-01"), "OK");
    assert_eq!(answer(&m, "2022-09-01"), "OK");
}

#[test]
fn a12_no_employment_service_registration_from_a_dossier() {
    let m = map(&format!("{PLICHT}<Aanmelding><DatumAanmelding>2022-05-02</DatumAanmelding></Aanmelding><Contracten><Contract><DatumRegistratie>2022-06-01</DatumRegistratie></Contract></Contracten>"));
    assert!(m
        .events
        .iter()
        .all(|e| e.kind != EventKind::EmploymentServiceRegistration));
    assert!(!crate::mapping::dossier_facts().contains(&"EMPLOYMENT_SERVICE_REGISTRATION"));
    // The header's facts leave the type out: no deadline for a fact the register never holds.
    assert_eq!(answer(&m, "2023-06-01"), "OK");
}

#[test]
fn a13_exemption_without_a_period() {
    let m = map("<Doelgroep><Code>NEE</Code><Periode><Begin>2016-03-01</Begin></Periode><RedenVrijstellingVanDeVerplichting>01</RedenVrijstellingVanDeVerplichting></Doelgroep>");
    assert_eq!(events(&m), [ev("2016-03-01", "EXEMPTION", "OTHER")]);
    assert_eq!(answer(&m, "2017-01-01"), "not subject");
}

#[test]
fn a14_in_the_register_but_never_obligated() {
    let m = map("<Doelgroep><Code>JA</Code><Type>RECHT</Type><Periode><Begin>2020-01-01</Begin></Periode></Doelgroep>");
    assert!(m.insz.is_some() && m.events.is_empty() && !m.has_errors());
    let mut line = Vec::new();
    crate::write_person_line(&mut line, m.insz.unwrap(), &m.events);
    assert_eq!(
        String::from_utf8(line).unwrap(),
        format!("{{\"insz\": \"{INSZ}\", \"events\": []}}\n")
    );
    assert_eq!(answer(&m, "2021-01-01"), "not subject");
}

#[test]
fn a15_certificate_before_registration() {
    let m = map(&format!("{PLICHT}<BehaaldeAttesten><Document><Type>AI023</Type><DatumOndertekening>2022-05-01</DatumOndertekening></Document></BehaaldeAttesten><Aanmelding><DatumAanmelding>2022-09-01</DatumAanmelding></Aanmelding>"));
    assert_eq!(events(&m)[1], ev("2022-05-01", "CERTIFICATE", ""));
    assert_eq!(
        answer(&m, "2022-08-01"),
        "OK",
        "fulfilment wins over the late registration"
    );
}

/// The header's `facts` (M23) are the names of the types the mapping emits, in the order the
/// spec lists them.
#[test]
fn dossier_facts_are_the_types_the_mapping_produces() {
    assert_eq!(
        crate::mapping::dossier_facts(),
        [
            "OBLIGATION_START",
            "OBLIGATION_END",
            "EXEMPTION",
            "REGISTRATION",
            "CONTRACT_SIGNED",
            "DEADLINE_EXTENSION",
            "INFRINGEMENT",
            "INFRINGEMENT_CLOSED",
            "CERTIFICATE",
        ]
    );
}
