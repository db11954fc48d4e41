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
//!
//! Each dossier also carries a profile (issue 22: what an export reads, `protocols.md` section
//! 3) drawn with a mix like the register's: birth date (some with `99` parts, a few absent),
//! sex (a few absent), integration trajectories managed by KBI offices (sometimes a second
//! one, sometimes an NT2 trajectory beside it, sometimes without a manager's start),
//! programme parts with a PLO decision, the NT2 level reached, NT2 courses and diploma
//! equivalence referrals. The profile is drawn from its own generator seeded by the seed and the
//! INSZ: the persons' events, hence `expected.jsonl`, are those drawn without it. An import
//! does not read the profile (it only counts it as ignored, and the programme parts' decisions
//! and the NT2 level as M19 WARNs).

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
    /// What only an export reads (`None` with `events`).
    pub profile: Option<GeneratedProfile>,
}

/// KBI offices (`Beheerder/KBIVestiging/KbiNummer`) drawn from: the numbers listed in the
/// shipped `config/kbi-regions.toml`, so every generated office has a region.
pub const OFFICES: [&str; 13] = [
    "10001", "10101", "10201", "20101", "20102", "20201", "30101", "30201", "40101", "40201",
    "40301", "70101", "70201",
];

/// A generated profile, as written in the reply (dates as written, `99` parts included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedProfile {
    /// `Personalia/Geboortedatum`.
    pub geboortedatum: Option<String>,
    /// `Personalia/Geslacht/Code` (`1`, `2`).
    pub geslacht: Option<&'static str>,
    /// Every `Traject`, in the order written; the first is the integration trajectory that
    /// carries the certificate decision (when the events have one).
    pub trajecten: Vec<GeneratedTraject>,
    /// `Talenkennis/BehaaldNT2Niveau/HoogstBehaald`.
    pub hoogst_behaald_nt2: Option<&'static str>,
    /// `NT2Cursus/Periode`: `None` for a course without `Periode`, else begin and end.
    pub nt2_cursussen: Vec<Option<(NaiveDate, Option<NaiveDate>)>>,
    /// `ToeleidingDiplomaGelijkschakeling`: `StartDatum`, `Status`.
    pub toeleidingen: Vec<(Option<NaiveDate>, &'static str)>,
}

/// A generated `Traject`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedTraject {
    pub type_: &'static str,
    /// The trajectory that carries the certificate decision (`Besluit` `JA_IB`) when the
    /// person's events have a certificate not by document.
    pub decision: bool,
    /// `Beheerder` present.
    pub beheerder: bool,
    /// `Beheerder/Periode/Begin`.
    pub beheerder_begin: Option<NaiveDate>,
    /// `Beheerder/KBIVestiging/KbiNummer`.
    pub kbi_nummer: Option<&'static str>,
    /// `TrajectOnderdeel`s: type and, for a decision, code, reason and date.
    pub onderdelen: Vec<GeneratedOnderdeel>,
}

/// A generated `TrajectOnderdeel`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedOnderdeel {
    pub type_: &'static str,
    /// `Besluit`: `Code`, `Reden`, `DatumToekenning`.
    pub besluit: Option<(&'static str, &'static str, Option<NaiveDate>)>,
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
        .map(|insz| {
            let mut p = person(insz, &mut rng, extracted);
            // Its own stream: the events drawn above do not depend on the profile.
            let mut profile_rng = ChaCha8Rng::seed_from_u64(
                options.seed ^ insz.value().wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            p.profile = p
                .events
                .as_deref()
                .map(|events| profile(events, &mut profile_rng));
            p
        })
        .collect()
}

/// Picks from `(weight, value)` pairs.
fn weighted<T: Copy>(rng: &mut ChaCha8Rng, choices: &[(u32, T)]) -> T {
    let total: u32 = choices.iter().map(|c| c.0).sum();
    let mut roll = rng.gen_range(0..total);
    for &(w, v) in choices {
        if roll < w {
            return v;
        }
        roll -= w;
    }
    choices[choices.len() - 1].1
}

fn office(rng: &mut ChaCha8Rng) -> &'static str {
    OFFICES[rng.gen_range(0..OFFICES.len())]
}

/// The profile of a person in the register, drawn around its events.
fn profile(events: &[Event], rng: &mut ChaCha8Rng) -> GeneratedProfile {
    let first = |kind: EventKind| events.iter().find(|e| e.kind == kind).map(|e| e.date);
    let start = events.iter().find_map(|e| match e.kind {
        EventKind::ObligationStart { .. } => Some(e.date),
        _ => None,
    });
    let registration = first(EventKind::Registration);
    let contract = first(EventKind::ContractSigned);
    let base = registration
        .or(start)
        .unwrap_or_else(|| date(2015, 1, 1) + days(rng, 0, 3000));

    // Birth date 1950–2008; some with unknown parts (`Datum` admits `99`), a few absent.
    let geboortedatum = (!rng.gen_bool(0.01)).then(|| {
        let born = date(1950, 1, 1) + days(rng, 0, 21_550);
        match rng.gen_range(0..100) {
            0..=3 => format!("{:04}-{:02}-99", born.year(), born.month()),
            4..=5 => format!("{:04}-99-99", born.year()),
            _ => format!("{:04}-{:02}-{:02}", born.year(), born.month(), born.day()),
        }
    });
    let geslacht = weighted(rng, &[(48, Some("1")), (49, Some("2")), (3, None)]);

    // The integration trajectory (the first, with the certificate decision, if any).
    let main_type = weighted(
        rng,
        &[
            (80, "TT_IBVP"),
            (12, "TT_IBRH"),
            (5, "TT_IBGD"),
            (3, "TT_IB-18"),
        ],
    );
    let mut main = GeneratedTraject {
        type_: main_type,
        decision: true,
        ..GeneratedTraject::default()
    };
    if rng.gen_bool(0.94) {
        main.beheerder = true;
        main.beheerder_begin = rng.gen_bool(0.95).then(|| base + days(rng, 0, 30));
        main.kbi_nummer = rng.gen_bool(0.98).then(|| office(rng));
    }
    if let Some(c) = contract {
        if rng.gen_bool(0.45) {
            main.onderdelen.push(GeneratedOnderdeel {
                type_: "TO_OB_MO",
                besluit: None,
            });
            let decisions = if rng.gen_bool(0.1) { 2 } else { 1 };
            for _ in 0..decisions {
                let (code, reden) = weighted(
                    rng,
                    &[
                        (60, ("VO", "VOLDAAN")),
                        (25, ("NVO", "ONVOLDOENDE_AANWEZIG")),
                        (15, ("NVT", "VRIJGESTELD")),
                    ],
                );
                let at = rng.gen_bool(0.94).then(|| c + days(rng, 60, 500));
                main.onderdelen.push(GeneratedOnderdeel {
                    type_: "TO_OB_PLO",
                    besluit: Some((code, reden, at)),
                });
            }
            if rng.gen_bool(0.15) {
                main.onderdelen.push(GeneratedOnderdeel {
                    type_: "TO_OB_PLO",
                    besluit: None,
                });
            }
        }
    }
    let mut trajecten = vec![main.clone()];
    // Written first or not: "latest" is by the manager's start, never by the order written.
    // A later integration trajectory at another office (moved), written before or after.
    if rng.gen_bool(0.15) {
        let later = GeneratedTraject {
            type_: "TT_IBVP",
            decision: false,
            beheerder: true,
            beheerder_begin: main
                .beheerder_begin
                .unwrap_or(base)
                .checked_add_days(days(rng, 60, 900)),
            kbi_nummer: Some(office(rng)),
            onderdelen: Vec::new(),
        };
        if rng.gen_bool(0.5) {
            trajecten.insert(0, later);
        } else {
            trajecten.push(later);
        }
    }
    // An NT2 trajectory beside it (never the integration trajectory of an export).
    if rng.gen_bool(0.25) {
        trajecten.push(GeneratedTraject {
            type_: "TT_NT2",
            decision: false,
            beheerder: true,
            beheerder_begin: Some(base + days(rng, 10, 400)),
            kbi_nummer: Some(office(rng)),
            onderdelen: vec![GeneratedOnderdeel {
                type_: "TO_A1",
                besluit: None,
            }],
        });
    }

    let hoogst_behaald_nt2 = rng.gen_bool(0.35).then(|| {
        weighted(
            rng,
            &[
                (25, "A1"),
                (35, "A2"),
                (25, "B1"),
                (10, "B2"),
                (4, "C1"),
                (1, "C2"),
            ],
        )
    });
    let mut nt2_cursussen = Vec::new();
    if rng.gen_bool(0.4) {
        let mut begin = base + days(rng, 14, 90);
        for _ in 0..rng.gen_range(1..=3) {
            if rng.gen_bool(0.03) {
                nt2_cursussen.push(None);
                continue;
            }
            let end = begin + days(rng, 80, 160);
            nt2_cursussen.push(Some((begin, (!rng.gen_bool(0.15)).then_some(end))));
            begin = end + days(rng, 7, 120);
        }
    }
    let mut toeleidingen = Vec::new();
    if rng.gen_bool(0.1) {
        for _ in 0..if rng.gen_bool(0.2) { 2 } else { 1 } {
            let at = (!rng.gen_bool(0.05)).then(|| base + days(rng, 0, 400));
            let status = weighted(rng, &[(50, "BZ"), (30, "GD"), (20, "AN")]);
            toeleidingen.push((at, status));
        }
    }
    GeneratedProfile {
        geboortedatum,
        geslacht,
        trajecten,
        hoogst_behaald_nt2,
        nt2_cursussen,
        toeleidingen,
    }
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
            profile: None,
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
        profile: None,
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
    let profile = person.profile.clone().unwrap_or_default();
    out.push_str("</INSZ><Naam><Achternamen><Achternaam>Voorbeeld</Achternaam></Achternamen><Voornamen><Voornaam>Synthetisch</Voornaam></Voornamen></Naam>");
    if let Some(born) = &profile.geboortedatum {
        out.push_str("<Geboortedatum>");
        out.push_str(born);
        out.push_str("</Geboortedatum>");
    }
    if let Some(code) = profile.geslacht {
        let name = if code == "1" {
            "Mannelijk"
        } else {
            "Vrouwelijk"
        };
        out.push_str("<Geslacht Beschrijving=\"");
        out.push_str(name);
        out.push_str("\"><Code>");
        out.push_str(code);
        out.push_str("</Code></Geslacht>");
    }
    out.push_str("</Personalia>");
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
    let main = [GeneratedTraject {
        type_: "TT_IBVP",
        decision: true,
        ..GeneratedTraject::default()
    }];
    let trajecten = if profile.trajecten.is_empty() {
        &main[..]
    } else {
        &profile.trajecten[..]
    };
    out.push_str("<Trajecten>");
    for t in trajecten {
        out.push_str("<Traject><Type>");
        out.push_str(t.type_);
        out.push_str("</Type>");
        if t.beheerder {
            out.push_str("<Beheerder>");
            if let Some(b) = t.beheerder_begin {
                out.push_str("<Periode><Begin>");
                push_date(out, b);
                out.push_str("</Begin></Periode>");
            }
            if let Some(k) = t.kbi_nummer {
                out.push_str("<KBIVestiging><KboNummer>0262371539</KboNummer><KbiNummer>");
                out.push_str(k);
                out.push_str("</KbiNummer></KBIVestiging>");
            }
            out.push_str("<ContactPersoon><Naam><Achternamen><Achternaam>Begeleider</Achternaam></Achternamen></Naam></ContactPersoon></Beheerder>");
        }
        out.push_str(
            "<Status><Code>OP</Code><Periode><Begin>2015-01-01</Begin></Periode></Status>",
        );
        if t.decision && !by_document {
            if let Some(c) = certificates.first() {
                out.push_str("<Besluit><Code>JA_IB</Code><DatumToekenning>");
                push_date(out, *c);
                out.push_str("</DatumToekenning></Besluit>");
            }
        }
        if !t.onderdelen.is_empty() {
            out.push_str("<TrajectOnderdelen>");
            for o in &t.onderdelen {
                out.push_str("<TrajectOnderdeel><Type>");
                out.push_str(o.type_);
                out.push_str("</Type><Status><Code>TO_STA_31</Code></Status>");
                if let Some((code, reden, at)) = o.besluit {
                    out.push_str("<Besluit><Code>");
                    out.push_str(code);
                    out.push_str("</Code><Reden Naam=\"synthetisch\">");
                    out.push_str(reden);
                    out.push_str("</Reden>");
                    if let Some(at) = at {
                        out.push_str("<DatumToekenning>");
                        push_date(out, at);
                        out.push_str("</DatumToekenning>");
                    }
                    out.push_str("</Besluit>");
                }
                out.push_str("</TrajectOnderdeel>");
            }
            out.push_str("</TrajectOnderdelen>");
        }
        out.push_str("</Traject>");
    }
    out.push_str("</Trajecten>");
    if !profile.nt2_cursussen.is_empty() {
        out.push_str("<VormingsActiviteiten><NT2Cursussen>");
        for (i, c) in profile.nt2_cursussen.iter().enumerate() {
            use std::fmt::Write as _;
            // No long digit run in an identifier (nothing INSZ-shaped).
            let n = number * 8 + i as u64;
            let _ = write!(
                out,
                "<NT2Cursus><ID>6f1c2d3e-{:04x}-4{:03x}-8abc-abcdefabcdef</ID>",
                (n >> 12) & 0xffff,
                n & 0xfff
            );
            if let Some((begin, end)) = c {
                out.push_str("<Periode><Begin>");
                push_date(out, *begin);
                out.push_str("</Begin>");
                if let Some(end) = end {
                    out.push_str("<Einde>");
                    push_date(out, *end);
                    out.push_str("</Einde>");
                }
                out.push_str("</Periode>");
            }
            out.push_str("<Status>INGESCHREVEN</Status></NT2Cursus>");
        }
        out.push_str("</NT2Cursussen></VormingsActiviteiten>");
    }
    if !profile.toeleidingen.is_empty() {
        out.push_str("<ToeleidingenDiplomaGelijkschakeling>");
        for (at, status) in &profile.toeleidingen {
            out.push_str("<ToeleidingDiplomaGelijkschakeling>");
            if let Some(at) = at {
                out.push_str("<StartDatum>");
                push_date(out, *at);
                out.push_str("</StartDatum>");
            }
            out.push_str("<Status>");
            out.push_str(status);
            out.push_str("</Status><DiplomaNaam>synthetisch</DiplomaNaam></ToeleidingDiplomaGelijkschakeling>");
        }
        out.push_str("</ToeleidingenDiplomaGelijkschakeling>");
    }
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
    if let Some(level) = profile.hoogst_behaald_nt2 {
        out.push_str("<Talenkennis><BehaaldNT2Niveau><HoogstBehaald>");
        out.push_str(level);
        out.push_str("</HoogstBehaald><RecentstBehaald>");
        out.push_str(level);
        out.push_str("</RecentstBehaald></BehaaldNT2Niveau></Talenkennis>");
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
