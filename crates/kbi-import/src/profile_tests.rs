//! Profile mode of the reader (an export, issue 22): what it reads into the model, and that it
//! changes nothing an import can see (tally, M19 counts, refusals, bounds).

use crate::dossier::*;
use crate::xml::{Located, ReplyReader, Tally, XmlError, MAX_VALUE_BYTES};

const INSZ: &str = "88021412358";

fn reply(inner: &str) -> String {
    format!(
        r#"<web:GeefDossierKBIResponse xmlns:web="http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be"><Repliek><Context><Naam>GeefDossierKBI</Naam><Versie>01.00.0000</Versie></Context><Antwoorden><Antwoord><Inhoud><KBIDossier>{inner}</KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>"#
    )
}

/// Reads one reply's dossier in the given mode.
fn read(inner: &str, profile: bool) -> Result<(Dossier, Tally), Located> {
    let xml = reply(inner);
    let mut reader = if profile {
        ReplyReader::with_profile(xml.as_bytes())
    } else {
        ReplyReader::new(xml.as_bytes())
    };
    let reply = reader.next_reply()?.expect("a reply");
    let dossier = reply.antwoorden[0].dossier.clone().expect("a dossier");
    Ok((dossier, reader.tally))
}

fn t(s: &str) -> Option<Text> {
    Some(Some(s.to_string()))
}

/// Every profile element of `protocols.md` section 3, among elements an import reads and
/// elements both skip (names, contact persons, course centres, attributes, stray parts).
pub(crate) fn full_profile() -> String {
    format!(
        "<Personalia><INSZ>{INSZ}</INSZ><Naam><Achternamen><Achternaam>Geheim</Achternaam></Achternamen></Naam>\
         <Geboortedatum> 1988-99-14 </Geboortedatum><Geslacht Beschrijving=\"Vrouwelijk\"><Code>2</Code><Omschrijving>V</Omschrijving></Geslacht>\
         <AangemaaktDoor><KbiNummer>99999</KbiNummer></AangemaaktDoor></Personalia>\
         <Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2022-04-04</Begin></Periode></Doelgroep>\
         <Aanmelding><Type>EA</Type><DatumAanmelding>2022-05-02</DatumAanmelding></Aanmelding>\
         <Trajecten>\
           <Traject><Type>TT_IBVP</Type><Beheerder><Periode><Begin>2022-05-02</Begin><Einde>2023-01-01</Einde></Periode>\
             <KBIVestiging><KboNummer>0123456789</KboNummer><KbiNummer>20101</KbiNummer></KBIVestiging>\
             <ContactPersoon><Naam><Achternamen><Achternaam>Trajectbegeleider</Achternaam></Achternamen></Naam></ContactPersoon></Beheerder>\
             <Status><Code>OP</Code></Status>\
             <TrajectOnderdelen>\
               <TrajectOnderdeel><Type>TO_OB_PLO</Type><Periode><Begin>2022-06-01</Begin></Periode><Status><Code>TO_STA_31</Code></Status>\
                 <Besluit><Code>VO</Code><Reden KorteNaam=\"ok\" Naam=\"Voldoende\">R01</Reden><DatumToekenning>2023-02-03</DatumToekenning></Besluit></TrajectOnderdeel>\
               <TrajectOnderdeel><Type>TO_A1</Type></TrajectOnderdeel>\
             </TrajectOnderdelen></Traject>\
           <Traject><Type>TT_NT2</Type></Traject>\
         </Trajecten>\
         <VormingsActiviteiten><NT2Cursussen>\
           <NT2Cursus><ID>c1</ID><Centrum><DavinciInstellingsNummer>123</DavinciInstellingsNummer></Centrum><Periode><Begin>2022-09-01</Begin><Einde>2023-01-31</Einde></Periode><Status>INGESCHREVEN</Status></NT2Cursus>\
           <NT2Cursus><ID>c2</ID></NT2Cursus>\
           <NT2Cursus><Periode><Begin>2023-02-01</Begin></Periode></NT2Cursus>\
         </NT2Cursussen><PLOCursussen><PLOCursus><Naam>x</Naam></PLOCursus></PLOCursussen></VormingsActiviteiten>\
         <Talenkennis><Talen><Taal><Code>nl</Code></Taal></Talen><BehaaldNT2Niveau><HoogstBehaald Naam=\"B1\">B1</HoogstBehaald><RecentstBehaald>A2</RecentstBehaald></BehaaldNT2Niveau></Talenkennis>\
         <ToeleidingenDiplomaGelijkschakeling><ToeleidingDiplomaGelijkschakeling><StartDatum>2023-03-01</StartDatum><Status>GD</Status><DiplomaNaam>Master</DiplomaNaam></ToeleidingDiplomaGelijkschakeling>\
           <ToeleidingDiplomaGelijkschakeling><Status>BZ</Status></ToeleidingDiplomaGelijkschakeling></ToeleidingenDiplomaGelijkschakeling>\
         <Wooncode/>"
    )
}

#[test]
fn every_profile_element_is_read_into_the_model() {
    let (d, _) = read(&full_profile(), true).unwrap();
    let p = d
        .profile
        .as_deref()
        .expect("profile mode fills the profile");
    assert_eq!(
        p,
        &Profile {
            geboortedatum: t("1988-99-14"),
            geslacht: t("2"),
            hoogst_behaald_nt2: t("B1"),
            nt2_cursussen: vec![
                Periode {
                    begin: t("2022-09-01"),
                    einde: t("2023-01-31"),
                },
                Periode::default(),
                Periode {
                    begin: t("2023-02-01"),
                    einde: None,
                },
            ],
            diploma_toeleidingen: vec![
                Toeleiding {
                    start_datum: t("2023-03-01"),
                    status: t("GD"),
                },
                Toeleiding {
                    start_datum: None,
                    status: t("BZ"),
                },
            ],
        }
    );
    assert_eq!(d.trajecten.len(), 2);
    assert_eq!(
        d.trajecten[0].beheerder,
        Some(Beheerder {
            begin: t("2022-05-02"),
            kbi_nummer: t("20101"),
        })
    );
    assert_eq!(
        d.trajecten[0].onderdelen,
        vec![
            Onderdeel {
                type_: t("TO_OB_PLO"),
                besluit: Some(OnderdeelBesluit {
                    code: t("VO"),
                    reden: t("R01"),
                    datum_toekenning: t("2023-02-03"),
                }),
            },
            Onderdeel {
                type_: t("TO_A1"),
                besluit: None,
            },
        ]
    );
    assert_eq!(d.trajecten[1].beheerder, None);
    assert!(d.trajecten[1].onderdelen.is_empty());
    // Names, contact persons, course ids: never kept, in either mode.
    let kept = format!("{d:?}");
    for secret in [
        "Geheim",
        "Trajectbegeleider",
        "Master",
        "c1",
        "0123456789",
        "99999",
    ] {
        assert!(!kept.contains(secret), "{secret} kept");
    }
}

#[test]
fn an_import_keeps_no_profile_and_both_modes_agree_on_everything_else() {
    let (import, import_tally) = read(&full_profile(), false).unwrap();
    let (mut export, export_tally) = read(&full_profile(), true).unwrap();
    assert_eq!(import.profile, None);
    assert!(import
        .trajecten
        .iter()
        .all(|t| t.beheerder.is_none() && t.onderdelen.is_empty()));
    assert!(!format!("{import:?}").contains("1988-99-14"));
    // The same M20 tally, unknown elements and M19 counts.
    assert_eq!(import_tally.ignored, export_tally.ignored);
    assert_eq!(import_tally.unknown, export_tally.unknown);
    // Every child of a TrajectOnderdeel is counted (Type, Periode, Status, Besluit; Type):
    // the import's count, kept as it is in both modes.
    assert_eq!(import.noted.onderdeel_besluiten, 5);
    assert_eq!(import.noted, export.noted);
    assert_eq!(import.noted.nt2_niveau, 1);
    // Without its profile parts, the export's dossier is the import's.
    export.profile = None;
    for traject in &mut export.trajecten {
        traject.beheerder = None;
        traject.onderdelen.clear();
    }
    assert_eq!(import, export);
}

#[test]
fn a_second_profile_value_is_unusable_not_refused() {
    // The schema allows one; an import skips these subtrees and accepts the file, so the
    // export does too, and guesses between neither value.
    let inner = format!(
        "<Personalia><INSZ>{INSZ}</INSZ><Geboortedatum>1988-02-14</Geboortedatum><Geboortedatum>1989-02-14</Geboortedatum>\
         <Geslacht><Code>1</Code><Code>2</Code></Geslacht></Personalia>\
         <Trajecten><Traject><Type>TT_IBVP</Type><Beheerder><KBIVestiging><KbiNummer>10001</KbiNummer></KBIVestiging></Beheerder>\
         <Beheerder><KBIVestiging><KbiNummer>10101</KbiNummer></KBIVestiging></Beheerder></Traject></Trajecten>\
         <Talenkennis><BehaaldNT2Niveau><HoogstBehaald>B1<x>y</x></HoogstBehaald></BehaaldNT2Niveau></Talenkennis>"
    );
    read(&inner, false).expect("an import accepts it");
    let (d, _) = read(&inner, true).expect("so does an export");
    let p = d.profile.unwrap();
    assert_eq!(p.geboortedatum, Some(None));
    assert_eq!(p.geslacht, Some(None));
    // An element inside a value: unusable as well (an import skips it whole).
    assert_eq!(p.hoogst_behaald_nt2, Some(None));
    assert_eq!(
        d.trajecten[0].beheerder.as_ref().unwrap().kbi_nummer,
        Some(None)
    );
}

#[test]
fn stray_text_in_profile_groups_is_as_harmless_as_in_an_import() {
    let inner = format!(
        "<Personalia><INSZ>{INSZ}</INSZ><Geslacht>tekst<Code>1</Code></Geslacht></Personalia>\
         <Trajecten><Traject><Beheerder>tekst<Periode>tekst<Begin>2022-01-01</Begin></Periode></Beheerder></Traject></Trajecten>"
    );
    read(&inner, false).unwrap();
    let (d, _) = read(&inner, true).unwrap();
    assert_eq!(d.profile.unwrap().geslacht, t("1"));
    assert_eq!(
        d.trajecten[0].beheerder.as_ref().unwrap().begin,
        t("2022-01-01")
    );
}

#[test]
fn hostile_profile_elements_meet_the_same_bounds() {
    // A value longer than kept: unusable, in profile mode as for every value read.
    let long = "9".repeat(MAX_VALUE_BYTES + 1);
    let inner = format!(
        "<Personalia><INSZ>{INSZ}</INSZ><Geboortedatum>{long}</Geboortedatum></Personalia>"
    );
    let (d, _) = read(&inner, true).unwrap();
    assert_eq!(d.profile.unwrap().geboortedatum, Some(None));
    assert!(!format!("{:?}", read(&inner, true).unwrap().0).contains(&long));
    // Depth: refused the same way in both modes, with the same path.
    let deep = format!(
        "<Personalia><INSZ>{INSZ}</INSZ><Geslacht><Code>{}{}</Code></Geslacht></Personalia>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    let (a, b) = (
        read(&deep, false).unwrap_err(),
        read(&deep, true).unwrap_err(),
    );
    assert_eq!(a.error, XmlError::TooDeep);
    assert_eq!(a, b);
    // Entities inside a profile value: refused in both modes.
    let entity =
        format!("<Personalia><INSZ>{INSZ}</INSZ><Geboortedatum>&e;</Geboortedatum></Personalia>");
    assert_eq!(read(&entity, true).unwrap_err().error, XmlError::Entity);
    assert_eq!(
        read(&entity, false).unwrap_err(),
        read(&entity, true).unwrap_err()
    );
    // Unquoted attribute on a profile element: not well-formed in both modes.
    let unquoted = format!("<Personalia><INSZ>{INSZ}</INSZ><Geslacht Beschrijving=V><Code>1</Code></Geslacht></Personalia>");
    let (a, b) = (
        read(&unquoted, false).unwrap_err(),
        read(&unquoted, true).unwrap_err(),
    );
    assert!(matches!(a.error, XmlError::NotWellFormed(_)), "{a:?}");
    assert_eq!(a, b);
    // More values than one reply may keep: refused in profile mode, where they are kept.
    let many: String = (0..crate::xml::MAX_KEPT_PER_REPLY)
        .map(|_| "<NT2Cursus><Periode><Begin>2022-01-01</Begin></Periode></NT2Cursus>")
        .collect();
    let inner = format!("<Personalia><INSZ>{INSZ}</INSZ></Personalia><VormingsActiviteiten><NT2Cursussen>{many}</NT2Cursussen></VormingsActiviteiten>");
    assert_eq!(read(&inner, true).unwrap_err().error, XmlError::TooManyKept);
}

#[test]
fn no_profile_node_is_checked_as_singular() {
    // `singular` lists the profile nodes itself (one set, for speed): keep it in step.
    use crate::xml::tests_support::{
        all_profile_nodes_are_not_singular, any_import_node_is_profile,
    };
    assert!(all_profile_nodes_are_not_singular());
    assert!(!any_import_node_is_profile());
}
