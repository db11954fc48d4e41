//! `snapshot generate --format kbi-dossier-01.00`: synthetic persons written as GeefDossierKBI
//! 01.00 replies in batch files, for tests and benchmarks.
//!
//! The persons are drawn in a dossier-expressible way (decided here, documented in
//! `docs/kbi-import.md`): at most one Flemish period (no Brussels, no second period), at most one
//! registration, contracts, deferrals of registration and of signing, breaches of types 1, 2 and
//! 5 (registration, contract, attendance) with their rectification, certificates (programme
//! decision or certificate document), and an end (cause OTHER) or an exemption (cause OTHER).
//! Never an employment-service registration, fine, declaration of effort or Brussels
//! attestation: the register does not hold them. Each person's events are drawn first; the
//! dossier is written from the events (the inverse of the mapping), and the same events are
//! written as `expected.jsonl`, the snapshot an import of the replies must answer like.

use std::io::{self, Write};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::mapping::OPEN_END;
use super::xml::RESPONSE_NS;
use kbi_core::domain::event::{EndCause, Event, EventKind, ExemptionCause, Obligation, Region};
use kbi_core::domain::Insz;
use kbi_core::snapshot::generate::{distinct_numbers, make_insz};

/// What to generate.
#[derive(Debug, Clone)]
pub struct DossierOptions {
    pub persons: u64,
    pub seed: u64,
    pub extracted_at: DateTime<Utc>,
    pub snapshot_id: Option<String>,
    /// Replies per batch file.
    pub per_file: u64,
}

/// One generated person: the reply and what an import must make of it.
#[derive(Debug, Clone)]
pub struct GeneratedPerson {
    pub insz: Insz,
    /// `None`: not in the register (the reply is Uitzondering 30001, no person line).
    pub events: Option<Vec<Event>>,
    /// How the dossier says "not obligated" when there is no start (`JA`/`RECHT`, `NEE`, …).
    pub not_obligated: (&'static str, Option<&'static str>),
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn days(rng: &mut ChaCha8Rng, from: u64, to: u64) -> Days {
    Days::new(rng.gen_range(from..to))
}

fn random_insz(rng: &mut ChaCha8Rng) -> Insz {
    let birth = date(1940, 1, 1) + Days::new(rng.gen_range(0..25_200));
    let mut month = birth.month();
    if rng.gen_bool(0.03) {
        month += 40;
    }
    make_insz(birth.year(), month, birth.day(), rng.gen_range(1..998))
}

/// The persons, in ascending INSZ order (deterministic per seed).
pub fn persons(options: &DossierOptions) -> Vec<GeneratedPerson> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let wanted = options.persons as usize;
    let numbers = distinct_numbers(wanted, &[], || random_insz(&mut rng).value());
    let extracted = options.extracted_at.date_naive();
    numbers
        .into_iter()
        .filter_map(|n| Insz::from_digits(n).ok())
        .map(|insz| person(insz, &mut rng, extracted))
        .collect()
}

fn person(insz: Insz, rng: &mut ChaCha8Rng, extracted: NaiveDate) -> GeneratedPerson {
    let roll = rng.gen_range(0..100);
    let mut events = Vec::new();
    let ev = |events: &mut Vec<Event>, date: NaiveDate, kind: EventKind| {
        events.push(Event { date, kind })
    };
    let not_obligated = [
        ("JA", Some("RECHT")),
        ("JA", Some("MINDERJARIG")),
        ("NEE", None),
        ("JA", Some("GEEN")),
    ][rng.gen_range(0..4)];
    if roll < 5 {
        return GeneratedPerson {
            insz,
            events: None,
            not_obligated,
        };
    }
    let earliest = date(2014, 1, 1);
    let span = (extracted - earliest).num_days().max(62) as u64;
    if roll < 35 {
        // In the register, never obligated: entitled, minor, not in the target group.
        if rng.gen_bool(0.6) {
            let r = earliest + days(rng, 0, span - 30);
            ev(&mut events, r, EventKind::Registration);
            if rng.gen_bool(0.4) {
                ev(&mut events, r + days(rng, 5, 60), EventKind::ContractSigned);
            }
        }
    } else {
        let start = earliest + days(rng, 0, span - 30);
        ev(
            &mut events,
            start,
            EventKind::ObligationStart {
                region: Region::Flanders,
            },
        );
        let registered = if rng.gen_bool(0.05) {
            Some(start - days(rng, 1, 60))
        } else if rng.gen_bool(0.85) {
            Some(start + days(rng, 0, 130))
        } else {
            None
        };
        if let Some(r) = registered {
            ev(&mut events, r, EventKind::Registration);
            if rng.gen_bool(0.85) {
                let c = r.max(start) + days(rng, 0, 60);
                ev(&mut events, c, EventKind::ContractSigned);
                if rng.gen_bool(0.05) {
                    ev(
                        &mut events,
                        c + days(rng, 100, 400),
                        EventKind::ContractSigned,
                    );
                }
            }
        }
        if rng.gen_bool(0.06) {
            let obligation = if rng.gen_bool(0.6) {
                Obligation::Registration
            } else {
                Obligation::Contract
            };
            let begin = start + days(rng, 10, 80);
            let until = if rng.gen_bool(0.3) {
                OPEN_END
            } else {
                begin + days(rng, 30, 300)
            };
            ev(
                &mut events,
                begin,
                EventKind::DeadlineExtension { obligation, until },
            );
        }
        if rng.gen_bool(0.12) {
            let obligation = [
                Obligation::Registration,
                Obligation::Contract,
                Obligation::Attendance,
            ][rng.gen_range(0..3)];
            let at = start + days(rng, 90, 900);
            ev(&mut events, at, EventKind::Infringement { obligation });
            if rng.gen_bool(0.4) {
                ev(
                    &mut events,
                    at + days(rng, 0, 200),
                    EventKind::InfringementClosed { obligation },
                );
            }
        }
        if rng.gen_bool(0.5) {
            ev(
                &mut events,
                start + days(rng, 270, 1000),
                EventKind::Certificate,
            );
        }
        let ending = rng.gen_range(0..100);
        let at = start + days(rng, 30, 1200);
        if ending < 4 {
            ev(
                &mut events,
                at,
                EventKind::Exemption {
                    cause: Some(ExemptionCause::Other),
                },
            );
        } else if ending < 8 {
            ev(
                &mut events,
                at,
                EventKind::ObligationEnd {
                    cause: Some(EndCause::Other),
                },
            );
        }
    }
    events.retain(|e| e.date <= extracted);
    // The breach's close is written on the breach: without its breach (after the extraction)
    // it cannot be, and an end without its start neither.
    let has_breach = |o: Obligation, events: &[Event]| {
        events
            .iter()
            .any(|e| e.kind == EventKind::Infringement { obligation: o })
    };
    let snapshot = events.clone();
    events.retain(|e| match e.kind {
        EventKind::InfringementClosed { obligation } => has_breach(obligation, &snapshot),
        _ => true,
    });
    events.sort_by_key(|e| e.date);
    GeneratedPerson {
        insz,
        events: Some(events),
        not_obligated,
    }
}

/// Appends `YYYY-MM-DD`.
fn push_date(out: &mut String, d: NaiveDate) {
    use std::fmt::Write as _;
    let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
}

fn context(out: &mut String, number: u64) {
    out.push_str("<Context><Naam>GeefDossierKBI</Naam><Versie>01.00.0000</Versie><Bericht><Type>ANTWOORD</Type><Tijdstip><Datum>2026-11-01</Datum><Tijd>02:00:00.000</Tijd></Tijdstip><Afzender><Identificatie>vip.vlaanderen.be</Identificatie><Naam>MagdaGateway</Naam><Referte>generated</Referte></Afzender><Ontvanger><Identificatie>kbi-advice.generated</Identificatie><Referte>");
    use std::fmt::Write as _;
    let _ = write!(out, "q{number}");
    out.push_str("</Referte><Hoedanigheid>3003</Hoedanigheid></Ontvanger></Bericht></Context>");
}

/// Writes one reply for `person` (the inverse of the mapping).
pub(crate) fn write_reply(out: &mut String, person: &GeneratedPerson, number: u64) {
    out.push_str("<web:GeefDossierKBIResponse xmlns:web=\"");
    out.push_str(RESPONSE_NS);
    out.push_str("\"><Repliek>");
    context(out, number);
    let Some(events) = &person.events else {
        out.push_str("<Uitzonderingen><Uitzondering><Identificatie>30001</Identificatie><Oorsprong>MAGDA</Oorsprong><Type>FOUT</Type><Diagnose>Geen gegevens gevonden voor de vraag</Diagnose></Uitzondering></Uitzonderingen></Repliek></web:GeefDossierKBIResponse>\n");
        return;
    };
    out.push_str(
        "<Antwoorden><Antwoord><Referte>generated</Referte><Inhoud><KBIDossier><Personalia><INSZ>",
    );
    out.push_str(&person.insz.to_string());
    out.push_str("</INSZ><Naam><Achternamen><Achternaam>Voorbeeld</Achternaam></Achternamen><Voornamen><Voornaam>Synthetisch</Voornaam></Voornamen></Naam><Geslacht><Code>2</Code></Geslacht></Personalia>");
    // Doelgroep: the period, its end or exemption.
    let start = events.iter().find_map(|e| match e.kind {
        EventKind::ObligationStart { .. } => Some(e.date),
        _ => None,
    });
    let end = events.iter().find(|e| e.kind.closes_period());
    match start {
        Some(begin) => {
            out.push_str("<Doelgroep><Code>JA</Code><Type>PLICHT</Type><SubType>VOL_PROG</SubType><Periode><Begin>");
            push_date(out, begin);
            out.push_str("</Begin>");
            if let Some(e) = end {
                out.push_str("<Einde>");
                push_date(out, e.date.pred_opt().unwrap_or(e.date));
                out.push_str("</Einde>");
            }
            out.push_str("</Periode>");
            if matches!(end.map(|e| e.kind), Some(EventKind::Exemption { .. })) {
                out.push_str("<RedenVrijstellingVanDeVerplichting Naam=\"Vrijstelling\">01</RedenVrijstellingVanDeVerplichting>");
            }
            out.push_str("</Doelgroep>");
        }
        None => {
            let (code, ty) = person.not_obligated;
            out.push_str("<Doelgroep><Code>");
            out.push_str(code);
            out.push_str("</Code>");
            if let Some(ty) = ty {
                out.push_str("<Type>");
                out.push_str(ty);
                out.push_str("</Type>");
            }
            out.push_str("<Periode><Begin>2015-01-01</Begin></Periode></Doelgroep>");
        }
    }
    let contracts: Vec<NaiveDate> = events
        .iter()
        .filter(|e| e.kind == EventKind::ContractSigned)
        .map(|e| e.date)
        .collect();
    if !contracts.is_empty() {
        out.push_str("<Contracten>");
        for c in contracts {
            out.push_str("<Contract><DatumRegistratie>");
            push_date(out, c);
            out.push_str("</DatumRegistratie><Type>ICO13G</Type><OnderdeelMO>true</OnderdeelMO><OnderdeelNT2>true</OnderdeelNT2><OnderdeelLO>false</OnderdeelLO></Contract>");
        }
        out.push_str("</Contracten>");
    }
    deferrals(
        out,
        events,
        Obligation::Contract,
        "UitstellenVanOndertekening",
        "UitstelVanOndertekening",
    );
    if let Some(r) = events.iter().find(|e| e.kind == EventKind::Registration) {
        out.push_str("<Aanmelding><Type>EA</Type><DatumAanmelding>");
        push_date(out, r.date);
        out.push_str(
            "</DatumAanmelding><Reden Naam=\"Eigen werving onthaalbureau\">13</Reden></Aanmelding>",
        );
    }
    deferrals(
        out,
        events,
        Obligation::Registration,
        "UitstellenVanAanmelding",
        "UitstelVanAanmelding",
    );
    // Certificates: alternately a programme decision and a certificate document.
    let certificates: Vec<NaiveDate> = events
        .iter()
        .filter(|e| e.kind == EventKind::Certificate)
        .map(|e| e.date)
        .collect();
    let by_document = person.insz.value() % 2 == 0;
    out.push_str("<Trajecten><Traject><Type>TT_IBVP</Type><Status><Code>OP</Code><Periode><Begin>2015-01-01</Begin></Periode></Status>");
    if !by_document {
        if let Some(c) = certificates.first() {
            out.push_str("<Besluit><Code>JA_IB</Code><DatumToekenning>");
            push_date(out, *c);
            out.push_str("</DatumToekenning></Besluit>");
        }
    }
    out.push_str("</Traject></Trajecten>");
    if by_document && !certificates.is_empty() {
        out.push_str("<BehaaldeAttesten>");
        for c in &certificates {
            out.push_str("<Document><Soort>ATTEST</Soort><Type>AI023</Type><DatumAanmaak>");
            push_date(out, *c);
            out.push_str("</DatumAanmaak><DatumOndertekening>");
            push_date(out, *c);
            out.push_str("</DatumOndertekening></Document>");
        }
        out.push_str("</BehaaldeAttesten>");
    }
    let breaches: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Infringement { .. }))
        .collect();
    if !breaches.is_empty() {
        out.push_str("<Inbreuken>");
        for b in breaches {
            let EventKind::Infringement { obligation } = b.kind else {
                continue;
            };
            let code = match obligation {
                Obligation::Registration => "1",
                Obligation::Contract => "2",
                _ => "5",
            };
            out.push_str("<Inbreuk><Type>");
            out.push_str(code);
            out.push_str(
                "</Type><SanctionerendeOverheid>HH</SanctionerendeOverheid><DatumVaststelling>",
            );
            push_date(out, b.date);
            out.push_str("</DatumVaststelling><Motivering>synthetisch</Motivering>");
            let close = events.iter().find(|e| {
                e.kind == EventKind::InfringementClosed { obligation } && e.date >= b.date
            });
            match close {
                Some(c) => {
                    out.push_str("<RechtzettingsFormulier><DatumOndertekening>");
                    push_date(out, c.date);
                    out.push_str("</DatumOndertekening></RechtzettingsFormulier>");
                }
                None => out.push_str("<RechtzettingsFormulier/>"),
            }
            out.push_str("</Inbreuk>");
        }
        out.push_str("</Inbreuken>");
    }
    out.push_str("<Wooncode><MoetVoldoenAanInburgeringsBereidheid>false</MoetVoldoenAanInburgeringsBereidheid><MoetVoldoenAanTaalBereidheid>false</MoetVoldoenAanTaalBereidheid><OpvolgingDoor>Onthaalbureau</OpvolgingDoor></Wooncode>");
    out.push_str(
        "</KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>\n",
    );
}

fn deferrals(out: &mut String, events: &[Event], wanted: Obligation, group: &str, item: &str) {
    let list: Vec<(NaiveDate, NaiveDate)> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::DeadlineExtension { obligation, until } if obligation == wanted => {
                Some((e.date, until))
            }
            _ => None,
        })
        .collect();
    if list.is_empty() {
        return;
    }
    out.push('<');
    out.push_str(group);
    out.push('>');
    for (begin, until) in list {
        out.push('<');
        out.push_str(item);
        out.push_str("><Periode><Begin>");
        push_date(out, begin);
        out.push_str("</Begin>");
        if until != OPEN_END {
            out.push_str("<Einde>");
            push_date(out, until);
            out.push_str("</Einde>");
        }
        out.push_str("</Periode><Reden Naam=\"Ziekte\">ZIEKTE</Reden></");
        out.push_str(item);
        out.push('>');
    }
    out.push_str("</");
    out.push_str(group);
    out.push('>');
}

/// Writes the batch files `batch-NNNNN.xml` and `expected.jsonl` (the same persons as a snapshot)
/// into `dir`; returns the number of files.
pub fn write_dossiers(options: &DossierOptions, dir: &std::path::Path) -> io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let persons = persons(options);
    let per_file = options.per_file.max(1) as usize;
    let mut text = String::with_capacity(1 << 20);
    let mut files = 0u64;
    for (chunk_number, chunk) in persons.chunks(per_file).enumerate() {
        files += 1;
        let path = dir.join(format!("batch-{:05}.xml", chunk_number + 1));
        let mut file = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        file.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Batch>\n")?;
        for (i, person) in chunk.iter().enumerate() {
            text.clear();
            write_reply(&mut text, person, (chunk_number * per_file + i) as u64 + 1);
            file.write_all(text.as_bytes())?;
        }
        file.write_all(b"</Batch>\n")?;
        file.flush()?;
    }
    let mut expected =
        io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("expected.jsonl"))?);
    write_expected(options, &persons, &mut expected)?;
    expected.flush()?;
    Ok(files)
}

/// The persons as a snapshot with the header an import writes (`facts` of a dossier import).
pub(crate) fn write_expected(
    options: &DossierOptions,
    persons: &[GeneratedPerson],
    out: &mut dyn Write,
) -> io::Result<()> {
    let in_register = persons.iter().filter(|p| p.events.is_some()).count() as u64;
    let id = options.snapshot_id.clone().unwrap_or_else(|| {
        format!(
            "generated-dossiers-seed{}-{}",
            options.seed, options.persons
        )
    });
    out.write_all(
        super::header_line(
            &id,
            options.extracted_at,
            in_register,
            &super::mapping::dossier_facts(),
            serde_json::json!([{"kind": "generated", "seed": options.seed}]),
        )
        .as_bytes(),
    )?;
    let mut line = Vec::with_capacity(1024);
    for p in persons {
        if let Some(events) = &p.events {
            line.clear();
            super::write_person_line(&mut line, p.insz, events);
            out.write_all(&line)?;
        }
    }
    Ok(())
}
