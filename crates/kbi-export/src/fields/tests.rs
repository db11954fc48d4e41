//! One group of tests per catalogue field (`protocols.md` section 3), over dossiers written
//! here: present, absent, several candidates, `99` date parts, after the reference date (not
//! counted), ties. Dossiers are built as the reader fills them (trimmed texts, `Some(None)` for
//! an over-long value).

use kbi_import::dossier::{
    Aanmelding, Beheerder, Contract, Document, Doelgroep, Onderdeel, Periode,
};
use proptest::prelude::*;

use super::*;

const BANDS: [u32; 6] = [18, 25, 35, 45, 55, 65];
const REFERENCE: &str = "2024-06-30";

type Derive = fn(&Dossier, &Context, &mut dyn FnMut(&'static str)) -> String;

/// The shipped code lists, made at each call and never freed (a few kB; tests only), since a
/// `static` cell in a floor is refused (tests/it/layering.rs).
fn codes() -> &'static Codes {
    Box::leak(Box::new(Codes::shipped()))
}

fn regions() -> &'static Regions {
    Box::leak(Box::new(Regions::shipped()))
}

fn day(text: &str) -> NaiveDate {
    kbi_core::domain::day::parse_date(text).unwrap()
}

fn ctx_on(reference: &str) -> Context<'static> {
    Context {
        reference: day(reference),
        age_bands: &BANDS,
        codes: codes(),
        regions: regions(),
    }
}

/// An element with this text.
fn t(text: &str) -> Option<Text> {
    Some(Some(text.to_owned()))
}

/// An element whose text was longer than the reader keeps.
fn too_long() -> Option<Text> {
    Some(None)
}

/// The cell and the WARNs of one derivation on [`REFERENCE`].
fn run(derive: Derive, dossier: &Dossier) -> (String, Vec<&'static str>) {
    run_on(derive, dossier, REFERENCE)
}

fn run_on(derive: Derive, dossier: &Dossier, reference: &str) -> (String, Vec<&'static str>) {
    let mut warnings = Vec::new();
    let cell = derive(dossier, &ctx_on(reference), &mut |w| warnings.push(w));
    (cell, warnings)
}

/// The cell alone.
fn cell(derive: Derive, dossier: &Dossier) -> String {
    run(derive, dossier).0
}

fn with_profile(fill: impl FnOnce(&mut Profile)) -> Dossier {
    let mut profile = Profile::default();
    fill(&mut profile);
    Dossier {
        profile: Some(Box::new(profile)),
        ..Dossier::default()
    }
}

fn born(date: &str) -> Dossier {
    with_profile(|p| p.geboortedatum = t(date))
}

// ---------------------------------------------------------------------------------------------
// value, header_name

#[test]
fn value_covers_every_catalogue_field() {
    // One dossier in which every field has a value of its own, so that a field dispatched to
    // another field's derivation shows.
    let mut d = with_profile(|p| {
        p.geboortedatum = t("1985-03-10");
        p.geslacht = t("2");
        p.hoogst_behaald_nt2 = t("B1");
        p.nt2_cursussen = vec![periode(Some("2021-01-04"), Some("2021-06-30"))];
        p.diploma_toeleidingen = vec![toeleiding(Some("2021-01-10"), Some("GD"))];
    });
    d.doelgroep = Some(doelgroep("JA", "PLICHT", Some("2020-01-15")));
    d.aanmelding = Some(Aanmelding {
        type_: t("EA"),
        datum: t("2020-02-01"),
    });
    d.contracten = vec![contract("2020-03-01")];
    d.documenten = vec![certificate(None, Some("2024-09-01"))]; // after the reference date
    d.trajecten = vec![Traject {
        type_: t("TT_IB_VP"),
        beheerder: Some(beheerder(Some("2020-03-01"), Some("40101"))),
        onderdelen: vec![plo(Some("NVO"), Some("R07"), Some("2020-05-05"))],
        ..Traject::default()
    }];
    let expected = [
        (CatalogueField::Insz, ""),
        (CatalogueField::Pseudonym, ""),
        (CatalogueField::AgeCategory, "35-44"),
        (CatalogueField::Sex, "V"),
        (CatalogueField::TargetGroup, "PLICHT"),
        (CatalogueField::TargetGroupSince, "2020-01-15"),
        (CatalogueField::RegistrationDate, "2020-02-01"),
        (CatalogueField::ContractDate, "2020-03-01"),
        (CatalogueField::ContractSigned, "ja"),
        (CatalogueField::CertificateObtained, "nee"),
        (CatalogueField::TrajectoryType, "TT_IB_VP"),
        (CatalogueField::KbiOffice, "40101"),
        (CatalogueField::KbiRegion, "Gent"),
        (CatalogueField::PloDecision, "NVO"),
        (CatalogueField::PloDecisionReason, "R07"),
        (CatalogueField::HighestNt2Level, "B1"),
        (CatalogueField::LastNt2ActivityDate, "2021-06-30"),
        (CatalogueField::DiplomaEquivalenceReferral, "2021-01-10"),
        (CatalogueField::DiplomaEquivalenceResult, "GD"),
    ];
    assert_eq!(
        expected.map(|(f, _)| f),
        CatalogueField::ALL,
        "the table names every field, in catalogue order"
    );
    let ctx = ctx_on(REFERENCE);
    for (field, want) in expected {
        let mut warnings = Vec::new();
        let got = value(field, &d, &ctx, &mut |w| warnings.push(w));
        assert_eq!(got, want, "{}", field.name());
        assert!(warnings.is_empty(), "{}: {warnings:?}", field.name());
    }
    // Every field other than identity is empty or `nee` on an empty dossier: nothing guessed.
    for field in CatalogueField::ALL {
        let got = value(field, &Dossier::default(), &ctx, &mut |_| {});
        assert!(
            got.is_empty() || got == "nee",
            "{} on an empty dossier: {got:?}",
            field.name()
        );
    }
}

#[test]
fn header_names() {
    assert_eq!(
        header_name(&Field::Catalogue(CatalogueField::KbiRegion)),
        "kbi_region"
    );
    assert_eq!(
        header_name(&Field::parse("join:vdab.outflow_to_work").unwrap()),
        "vdab.outflow_to_work"
    );
}

// ---------------------------------------------------------------------------------------------
// age_category

#[test]
fn age_category_bands_on_the_reference_date() {
    let cases = [
        ("2010-01-01", "<18"),
        ("2006-07-01", "<18"),   // 18 tomorrow
        ("2006-06-30", "18-24"), // 18 today
        ("2000-01-01", "18-24"),
        ("1999-06-30", "25-34"),
        ("1985-03-10", "35-44"),
        ("1980-01-01", "35-44"),
        ("1975-01-01", "45-54"),
        ("1965-01-01", "55-64"),
        ("1959-07-01", "55-64"),
        ("1959-06-30", "65+"),
        ("1930-01-01", "65+"),
    ];
    for (birth, band) in cases {
        assert_eq!(cell(age_category, &born(birth)), band, "{birth}");
    }
}

#[test]
fn age_category_absent_or_unusable_is_empty() {
    assert_eq!(cell(age_category, &Dossier::default()), "");
    assert_eq!(cell(age_category, &with_profile(|_| {})), "");
    for birth in [
        "1980-99-99",
        "1980-06-99",
        "1980-00-00",
        "1980-02-31",
        "10-06-1980",
        "",
    ] {
        assert_eq!(cell(age_category, &born(birth)), "", "{birth}");
    }
    assert_eq!(
        cell(
            age_category,
            &with_profile(|p| p.geboortedatum = too_long())
        ),
        ""
    );
}

#[test]
fn age_category_born_after_the_reference_date_or_impossibly_long_ago_is_empty() {
    assert_eq!(cell(age_category, &born("2024-07-01")), "");
    assert_eq!(cell(age_category, &born("9999-01-01")), "");
    assert_eq!(cell(age_category, &born("1800-01-01")), "");
    assert_eq!(cell(age_category, &born("2024-06-30")), "<18"); // born that day: age 0
}

#[test]
fn age_category_leap_day_birthday_counts_from_the_first_of_march() {
    let d = born("2004-02-29");
    assert_eq!(run_on(age_category, &d, "2022-02-28").0, "<18");
    assert_eq!(run_on(age_category, &d, "2022-03-01").0, "18-24");
}

#[test]
fn age_category_follows_the_file_entrys_bands() {
    let d = born("1990-01-01");
    let bands = [30, 40];
    let ctx = Context {
        age_bands: &bands,
        ..ctx_on(REFERENCE)
    };
    assert_eq!(age_category(&d, &ctx, &mut |_| {}), "30-39");
    let none: [u32; 0] = [];
    let ctx = Context {
        age_bands: &none,
        ..ctx_on(REFERENCE)
    };
    let mut warnings = Vec::new();
    assert_eq!(age_category(&d, &ctx, &mut |w| warnings.push(w)), "");
    assert_eq!(warnings.len(), 1);
}

proptest! {
    #[test]
    fn age_category_band_contains_the_age(age in 0u32..120) {
        let label = band(age, &BANDS);
        let inside = if let Some(upper) = label.strip_prefix('<') {
            age < upper.parse::<u32>().unwrap()
        } else if let Some(lower) = label.strip_suffix('+') {
            age >= lower.parse::<u32>().unwrap() && age >= *BANDS.last().unwrap()
        } else {
            let (lo, hi) = label.split_once('-').unwrap();
            (lo.parse::<u32>().unwrap()..=hi.parse::<u32>().unwrap()).contains(&age)
        };
        prop_assert!(inside, "{} in {}", age, label);
    }
}

// ---------------------------------------------------------------------------------------------
// sex

#[test]
fn sex_codes() {
    let of = |code: Option<Text>| cell(sex, &with_profile(|p| p.geslacht = code));
    assert_eq!(of(t("1")), "M");
    assert_eq!(of(t("2")), "V");
    assert_eq!(of(t("0")), "");
    assert_eq!(of(t("9")), "");
    assert_eq!(of(t("M")), "");
    assert_eq!(of(t("")), "");
    assert_eq!(of(too_long()), "");
    assert_eq!(of(None), "");
    assert_eq!(cell(sex, &Dossier::default()), "");
}

// ---------------------------------------------------------------------------------------------
// target_group, target_group_since

fn doelgroep(code: &str, type_: &str, begin: Option<&str>) -> Doelgroep {
    Doelgroep {
        code: t(code),
        type_: t(type_),
        periode: begin.map(|b| Periode {
            begin: t(b),
            einde: None,
        }),
        ..Doelgroep::default()
    }
}

fn in_group(g: Doelgroep) -> Dossier {
    Dossier {
        doelgroep: Some(g),
        ..Dossier::default()
    }
}

#[test]
fn target_group_is_the_type_when_code_is_ja() {
    for type_ in ["PLICHT", "RECHT", "RECHT_PLICHT", "MINDERJARIG"] {
        let d = in_group(doelgroep("JA", type_, Some("2020-01-15")));
        assert_eq!(cell(target_group, &d), type_);
    }
    for code in ["NEE", "NADER_TE_BEPALEN", ""] {
        let d = in_group(doelgroep(code, "PLICHT", Some("2020-01-15")));
        assert_eq!(cell(target_group, &d), "", "{code}");
    }
    assert_eq!(cell(target_group, &Dossier::default()), "");
    let mut g = doelgroep("JA", "PLICHT", None);
    g.type_ = None;
    assert_eq!(cell(target_group, &in_group(g)), "");
}

#[test]
fn target_group_unlisted_type_is_not_written() {
    let (got, warnings) = run(
        target_group,
        &in_group(doelgroep("JA", "Jan Janssens", Some("2020-01-15"))),
    );
    assert_eq!(got, "");
    assert_eq!(warnings.len(), 1);
    assert!(!warnings[0].contains("Janssens"));
}

#[test]
fn target_group_starting_after_the_reference_date_is_not_counted() {
    let d = in_group(doelgroep("JA", "PLICHT", Some("2024-07-01")));
    assert_eq!(cell(target_group, &d), "");
    assert_eq!(cell(target_group_since, &d), "");
    assert_eq!(run_on(target_group, &d, "2024-07-01").0, "PLICHT");
    assert_eq!(run_on(target_group_since, &d, "2024-07-01").0, "2024-07-01");
    // a Begin with `99` parts or none at all cannot be judged: the type stays
    let d = in_group(doelgroep("JA", "PLICHT", Some("2024-99-99")));
    assert_eq!(cell(target_group, &d), "PLICHT");
    assert_eq!(cell(target_group_since, &d), "");
    assert_eq!(
        cell(target_group, &in_group(doelgroep("JA", "PLICHT", None))),
        "PLICHT"
    );
}

#[test]
fn target_group_since_is_periode_begin() {
    let d = in_group(doelgroep("JA", "PLICHT", Some("2020-01-15")));
    assert_eq!(cell(target_group_since, &d), "2020-01-15");
    // written whatever the Code, as section 3 says
    let d = in_group(doelgroep("NEE", "GEEN", Some("2019-05-01")));
    assert_eq!(cell(target_group_since, &d), "2019-05-01");
    assert_eq!(
        cell(
            target_group_since,
            &in_group(doelgroep("JA", "PLICHT", None))
        ),
        ""
    );
    assert_eq!(cell(target_group_since, &Dossier::default()), "");
}

#[test]
fn target_group_since_with_99_parts_is_empty() {
    for begin in ["2020-99-99", "2020-05-99", "2020-99-15", "2020-00-00"] {
        let d = in_group(doelgroep("JA", "PLICHT", Some(begin)));
        assert_eq!(cell(target_group_since, &d), "", "{begin}");
    }
}

// ---------------------------------------------------------------------------------------------
// registration_date

fn registered(datum: Option<Text>) -> Dossier {
    Dossier {
        aanmelding: Some(Aanmelding {
            type_: t("EA"),
            datum,
        }),
        ..Dossier::default()
    }
}

#[test]
fn registration_date_present_absent_unusable_later() {
    assert_eq!(
        cell(registration_date, &registered(t("2021-09-13"))),
        "2021-09-13"
    );
    assert_eq!(
        cell(registration_date, &registered(t(REFERENCE))),
        REFERENCE
    );
    assert_eq!(cell(registration_date, &registered(None)), "");
    assert_eq!(cell(registration_date, &Dossier::default()), "");
    assert_eq!(cell(registration_date, &registered(t("2021-09-99"))), "");
    assert_eq!(cell(registration_date, &registered(too_long())), "");
    assert_eq!(cell(registration_date, &registered(t("2024-07-01"))), "");
}

// ---------------------------------------------------------------------------------------------
// contract_date, contract_signed

fn contract(datum: &str) -> Contract {
    Contract {
        datum_registratie: t(datum),
        ..Contract::default()
    }
}

fn with_contracts(dates: &[&str]) -> Dossier {
    Dossier {
        contracten: dates.iter().map(|d| contract(d)).collect(),
        ..Dossier::default()
    }
}

#[test]
fn contract_date_is_the_earliest_counted() {
    let d = with_contracts(&["2022-05-02", "2021-11-30", "2023-01-01"]);
    assert_eq!(cell(contract_date, &d), "2021-11-30");
    assert_eq!(cell(contract_signed, &d), "ja");
    assert_eq!(cell(contract_date, &with_contracts(&[])), "");
    assert_eq!(cell(contract_signed, &with_contracts(&[])), "nee");
    // two on the same day
    let d = with_contracts(&["2022-05-02", "2022-05-02"]);
    assert_eq!(cell(contract_date, &d), "2022-05-02");
}

#[test]
fn contract_after_the_reference_date_is_not_counted() {
    let d = with_contracts(&["2024-07-01"]);
    assert_eq!(cell(contract_date, &d), "");
    assert_eq!(cell(contract_signed, &d), "nee");
    assert_eq!(run_on(contract_signed, &d, "2024-07-01").0, "ja");
    let d = with_contracts(&["2024-07-01", "2024-06-30"]);
    assert_eq!(cell(contract_date, &d), "2024-06-30");
    assert_eq!(cell(contract_signed, &d), "ja");
}

#[test]
fn contract_with_an_unusable_date_is_not_counted() {
    let d = with_contracts(&["2022-99-99", "2022-02-30"]);
    assert_eq!(cell(contract_date, &d), "");
    assert_eq!(cell(contract_signed, &d), "nee");
    let mut d = with_contracts(&["2023-03-03"]);
    d.contracten.push(Contract::default()); // no DatumRegistratie
    assert_eq!(cell(contract_date, &d), "2023-03-03");
}

proptest! {
    /// `contract_date` is filled exactly when `contract_signed` is `ja`.
    #[test]
    fn contract_date_filled_exactly_when_signed(days in proptest::collection::vec(0i64..4000, 0..5)) {
        let base = day("2015-01-01");
        let texts: Vec<String> = days
            .iter()
            .map(|n| (base + chrono::Days::new(*n as u64)).format("%Y-%m-%d").to_string())
            .collect();
        let d = with_contracts(&texts.iter().map(String::as_str).collect::<Vec<_>>());
        let date = cell(contract_date, &d);
        let signed = cell(contract_signed, &d);
        prop_assert_eq!(!date.is_empty(), signed == "ja");
        if !date.is_empty() {
            prop_assert!(date.as_str() <= REFERENCE);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// certificate_obtained

fn certificate(signed: Option<&str>, made: Option<&str>) -> Document {
    Document {
        soort: t("ATTEST"),
        type_: t("AI023"),
        datum_aanmaak: made.and_then(t),
        datum_ondertekening: signed.and_then(t),
    }
}

fn with_documents(documents: Vec<Document>) -> Dossier {
    Dossier {
        documenten: documents,
        ..Dossier::default()
    }
}

#[test]
fn certificate_obtained_reads_documents_as_m13() {
    let yes = with_documents(vec![certificate(Some("2023-06-05"), Some("2023-06-01"))]);
    assert_eq!(cell(certificate_obtained, &yes), "ja");
    // AEVC05, and a Document without Soort, count as certificates (table 3.3)
    let mut evc = certificate(None, Some("2023-06-01"));
    evc.type_ = t("AEVC05");
    evc.soort = None;
    assert_eq!(cell(certificate_obtained, &with_documents(vec![evc])), "ja");
    // another Soort or Type is no certificate
    let mut letter = certificate(None, Some("2023-06-01"));
    letter.soort = t("BRIEF");
    let mut other = certificate(None, Some("2023-06-01"));
    other.type_ = t("AI099");
    assert_eq!(
        cell(certificate_obtained, &with_documents(vec![letter, other])),
        "nee"
    );
    assert_eq!(cell(certificate_obtained, &Dossier::default()), "nee");
    // a certificate decision on a trajectory (M11) is not a document
    let d = Dossier {
        trajecten: vec![Traject {
            type_: t("TT_IB_VP"),
            besluit: Some(kbi_import::dossier::Besluit {
                code: t("JA_IB"),
                datum_toekenning: t("2023-01-01"),
            }),
            ..Traject::default()
        }],
        ..Dossier::default()
    };
    assert_eq!(cell(certificate_obtained, &d), "nee");
}

#[test]
fn certificate_obtained_is_dated_by_signature_else_creation() {
    // signed after the reference date, created before: the signature date is the date (M13)
    let d = with_documents(vec![certificate(Some("2024-07-02"), Some("2024-06-01"))]);
    assert_eq!(cell(certificate_obtained, &d), "nee");
    assert_eq!(run_on(certificate_obtained, &d, "2024-07-02").0, "ja");
    let d = with_documents(vec![certificate(None, Some("2024-06-30"))]);
    assert_eq!(cell(certificate_obtained, &d), "ja");
    // no usable date: no certificate
    let d = with_documents(vec![certificate(None, None)]);
    assert_eq!(cell(certificate_obtained, &d), "nee");
    let d = with_documents(vec![certificate(Some("2023-06-99"), Some("2023-06-01"))]);
    assert_eq!(cell(certificate_obtained, &d), "nee");
}

#[test]
fn certificate_obtained_with_several_documents() {
    let d = with_documents(vec![
        certificate(None, Some("2025-01-01")),
        certificate(Some("2024-06-30"), None),
    ]);
    assert_eq!(cell(certificate_obtained, &d), "ja");
    let d = with_documents(vec![
        certificate(None, Some("2025-01-01")),
        certificate(Some("2024-07-30"), None),
    ]);
    assert_eq!(cell(certificate_obtained, &d), "nee");
}

// ---------------------------------------------------------------------------------------------
// trajectory_type, kbi_office, kbi_region

fn beheerder(begin: Option<&str>, office: Option<&str>) -> Beheerder {
    Beheerder {
        begin: begin.and_then(t),
        kbi_nummer: office.and_then(t),
    }
}

fn trajectory(type_: &str, begin: Option<&str>, office: Option<&str>) -> Traject {
    Traject {
        type_: t(type_),
        beheerder: Some(beheerder(begin, office)),
        ..Traject::default()
    }
}

fn with_trajectories(trajecten: Vec<Traject>) -> Dossier {
    Dossier {
        trajecten,
        ..Dossier::default()
    }
}

/// (trajectory_type, kbi_office, kbi_region) and every WARN.
fn trajectory_cells(d: &Dossier) -> ([String; 3], Vec<&'static str>) {
    let (a, mut w) = run(trajectory_type, d);
    let (b, w2) = run(kbi_office, d);
    let (c, w3) = run(kbi_region, d);
    w.extend(w2);
    w.extend(w3);
    ([a, b, c], w)
}

fn cells3(a: &str, b: &str, c: &str) -> [String; 3] {
    [a.to_owned(), b.to_owned(), c.to_owned()]
}

#[test]
fn trajectory_present_and_absent() {
    let d = with_trajectories(vec![trajectory(
        "TT_IB_VP",
        Some("2022-02-01"),
        Some("20201"),
    )]);
    assert_eq!(
        trajectory_cells(&d),
        (cells3("TT_IB_VP", "20201", "Mechelen"), vec![])
    );
    assert_eq!(
        trajectory_cells(&Dossier::default()),
        (cells3("", "", ""), vec![])
    );
}

#[test]
fn trajectory_latest_integration_one_by_beheerder_begin() {
    let d = with_trajectories(vec![
        trajectory("TT_IB_VP", Some("2021-02-01"), Some("20101")),
        trajectory("TT_IB_NT2", Some("2023-02-01"), Some("40101")),
        trajectory("TT_IB_VP", Some("2022-02-01"), Some("70101")),
        // not integration trajectories: never candidates, however late
        trajectory("TT_NT2", Some("2024-01-01"), Some("30101")),
        trajectory("TT_LOOPBAAN", Some("2024-02-01"), Some("30201")),
    ]);
    assert_eq!(trajectory_cells(&d).0, cells3("TT_IB_NT2", "40101", "Gent"));
}

#[test]
fn trajectory_without_beheerder_begin_is_not_a_candidate() {
    let mut no_beheerder = trajectory("TT_IB_X", None, None);
    no_beheerder.beheerder = None;
    let d = with_trajectories(vec![
        trajectory("TT_IB_VP", Some("2021-02-01"), Some("20101")),
        trajectory("TT_IB_NT2", None, Some("40101")),
        no_beheerder,
    ]);
    assert_eq!(
        trajectory_cells(&d).0,
        cells3("TT_IB_VP", "20101", "Antwerpen")
    );
    let d = with_trajectories(vec![trajectory("TT_IB_NT2", None, Some("40101"))]);
    assert_eq!(trajectory_cells(&d).0, cells3("", "", ""));
}

#[test]
fn trajectory_with_99_parts_is_not_a_candidate() {
    let d = with_trajectories(vec![
        trajectory("TT_IB_VP", Some("2021-02-01"), Some("20101")),
        trajectory("TT_IB_NT2", Some("2023-99-99"), Some("40101")),
        trajectory("TT_IB_NT2", Some("2023-05-99"), Some("40201")),
    ]);
    assert_eq!(
        trajectory_cells(&d).0,
        cells3("TT_IB_VP", "20101", "Antwerpen")
    );
}

#[test]
fn trajectory_after_the_reference_date_is_not_counted() {
    let d = with_trajectories(vec![
        trajectory("TT_IB_VP", Some("2021-02-01"), Some("20101")),
        trajectory("TT_IB_NT2", Some("2024-07-01"), Some("40101")),
    ]);
    assert_eq!(
        trajectory_cells(&d).0,
        cells3("TT_IB_VP", "20101", "Antwerpen")
    );
    let on = |f: Derive| run_on(f, &d, "2024-07-01").0;
    assert_eq!(
        [on(trajectory_type), on(kbi_office), on(kbi_region)],
        cells3("TT_IB_NT2", "40101", "Gent")
    );
}

#[test]
fn trajectory_ties_give_what_they_agree_on() {
    // same type, same office: written
    let d = with_trajectories(vec![
        trajectory("TT_IB_VP", Some("2022-02-01"), Some("40101")),
        trajectory("TT_IB_VP", Some("2022-02-01"), Some("40101")),
    ]);
    assert_eq!(
        trajectory_cells(&d),
        (cells3("TT_IB_VP", "40101", "Gent"), vec![])
    );
    // same type, other offices: the type is certain, the office is not
    let d = with_trajectories(vec![
        trajectory("TT_IB_VP", Some("2022-02-01"), Some("40101")),
        trajectory("TT_IB_VP", Some("2022-02-01"), Some("20101")),
        trajectory("TT_IB_NT2", Some("2021-02-01"), Some("70101")),
    ]);
    let (cells, warnings) = trajectory_cells(&d);
    assert_eq!(cells, cells3("TT_IB_VP", "", ""));
    assert_eq!(
        warnings,
        ["kbi_office: integration trajectories on the same latest date disagree"]
    );
    // other types, one office
    let d = with_trajectories(vec![
        trajectory("TT_IB_VP", Some("2022-02-01"), Some("40101")),
        trajectory("TT_IB_NT2", Some("2022-02-01"), Some("40101")),
    ]);
    let (cells, warnings) = trajectory_cells(&d);
    assert_eq!(cells, cells3("", "40101", "Gent"));
    assert_eq!(warnings.len(), 1);
    // a tied one without an office disagrees with one that has it
    let d = with_trajectories(vec![
        trajectory("TT_IB_VP", Some("2022-02-01"), Some("40101")),
        trajectory("TT_IB_VP", Some("2022-02-01"), None),
    ]);
    assert_eq!(trajectory_cells(&d).0, cells3("TT_IB_VP", "", ""));
}

#[test]
fn kbi_office_not_in_the_list_warns_without_the_value() {
    let d = with_trajectories(vec![trajectory(
        "TT_IB_VP",
        Some("2022-02-01"),
        Some("99999"),
    )]);
    let (cells, warnings) = trajectory_cells(&d);
    assert_eq!(cells, cells3("TT_IB_VP", "99999", ""));
    assert_eq!(warnings, [WARN_OFFICE_NOT_LISTED]);
    assert!(!WARN_OFFICE_NOT_LISTED.contains("99999"));
}

#[test]
fn kbi_region_follows_the_given_list() {
    let d = with_trajectories(vec![trajectory(
        "TT_IB_VP",
        Some("2022-02-01"),
        Some("99999"),
    )]);
    let list = Regions::from_toml(
        "version = \"t\"\nregions = [\"Elders\"]\n[offices]\n\"99999\" = \"Elders\"\n",
    )
    .unwrap();
    let ctx = Context {
        regions: &list,
        ..ctx_on(REFERENCE)
    };
    assert_eq!(kbi_region(&d, &ctx, &mut |_| {}), "Elders");
}

#[test]
fn trajectory_codes_that_are_no_codes_are_not_written() {
    let d = with_trajectories(vec![trajectory(
        "TT_IB Jan Janssens woont in de Kerkstraat",
        Some("2022-02-01"),
        Some("Kerkstraat 1"),
    )]);
    let (cells, warnings) = trajectory_cells(&d);
    assert_eq!(cells, cells3("", "", ""));
    assert_eq!(warnings.len(), 2);
    assert!(warnings.iter().all(|w| !w.contains("Janssens")));
}

// ---------------------------------------------------------------------------------------------
// plo_decision, plo_decision_reason

fn plo(code: Option<&str>, reden: Option<&str>, date: Option<&str>) -> Onderdeel {
    Onderdeel {
        type_: t(PLO_PART_TYPE),
        besluit: Some(OnderdeelBesluit {
            code: code.and_then(t),
            reden: reden.and_then(t),
            datum_toekenning: date.and_then(t),
        }),
    }
}

fn with_parts(parts: Vec<Onderdeel>) -> Dossier {
    with_trajectories(vec![Traject {
        type_: t("TT_IB_VP"),
        onderdelen: parts,
        ..Traject::default()
    }])
}

fn plo_cells(d: &Dossier) -> (String, String) {
    (cell(plo_decision, d), cell(plo_decision_reason, d))
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn plo_decision_present_and_absent() {
    let d = with_parts(vec![plo(Some("VO"), Some("R01"), Some("2022-03-03"))]);
    assert_eq!(plo_cells(&d), pair("VO", "R01"));
    assert_eq!(plo_cells(&Dossier::default()), pair("", ""));
    // a PLO part without a Besluit, or a Besluit of another part: no candidate
    let other = Onderdeel {
        type_: t("TO_OB_MO"),
        ..plo(Some("NVO"), Some("R02"), Some("2023-03-03"))
    };
    let undecided = Onderdeel {
        type_: t(PLO_PART_TYPE),
        besluit: None,
    };
    assert_eq!(plo_cells(&with_parts(vec![other, undecided])), pair("", ""));
    // without a Reden
    let d = with_parts(vec![plo(Some("NVT"), None, Some("2022-03-03"))]);
    assert_eq!(plo_cells(&d), pair("NVT", ""));
}

#[test]
fn plo_decision_latest_of_several_across_trajectories() {
    let mut d = with_parts(vec![
        plo(Some("NVO"), Some("R02"), Some("2021-03-03")),
        plo(Some("VO"), Some("R01"), Some("2023-03-03")),
    ]);
    d.trajecten.push(Traject {
        type_: t("TT_IB_NT2"),
        onderdelen: vec![plo(Some("NVT"), Some("R03"), Some("2022-03-03"))],
        ..Traject::default()
    });
    assert_eq!(plo_cells(&d), pair("VO", "R01"));
}

#[test]
fn plo_decision_undated_counts_as_older_than_every_dated_one() {
    let d = with_parts(vec![
        plo(Some("VO"), Some("R01"), None),
        plo(Some("NVO"), Some("R02"), Some("2020-01-01")),
    ]);
    assert_eq!(plo_cells(&d), pair("NVO", "R02"));
    // alone, an undated decision is the latest
    let d = with_parts(vec![plo(Some("VO"), Some("R01"), None)]);
    assert_eq!(plo_cells(&d), pair("VO", "R01"));
}

#[test]
fn plo_decision_unusable_date_counts_as_undated() {
    let d = with_parts(vec![
        plo(Some("VO"), Some("R01"), Some("2023-02-31")),
        plo(Some("NVO"), Some("R02"), Some("2020-01-01")),
    ]);
    assert_eq!(plo_cells(&d), pair("NVO", "R02"));
    let d = with_parts(vec![plo(Some("VO"), Some("R01"), Some("2023-99-99"))]);
    assert_eq!(plo_cells(&d), pair("VO", "R01"));
}

#[test]
fn plo_decision_after_the_reference_date_is_not_counted() {
    let d = with_parts(vec![
        plo(Some("VO"), Some("R01"), Some("2024-07-01")),
        plo(Some("NVO"), Some("R02"), Some("2020-01-01")),
    ]);
    assert_eq!(plo_cells(&d), pair("NVO", "R02"));
    // only a later one: none (it is dated, and not yet)
    let d = with_parts(vec![plo(Some("VO"), Some("R01"), Some("2024-07-01"))]);
    assert_eq!(plo_cells(&d), pair("", ""));
    // an undated one is still a candidate when every dated one is later
    let d = with_parts(vec![
        plo(Some("VO"), Some("R01"), Some("2024-07-01")),
        plo(Some("NVT"), None, None),
    ]);
    assert_eq!(plo_cells(&d), pair("NVT", ""));
}

#[test]
fn plo_decision_ties_give_what_they_agree_on() {
    let d = with_parts(vec![
        plo(Some("NVO"), Some("R02"), Some("2022-03-03")),
        plo(Some("NVO"), Some("R05"), Some("2022-03-03")),
        plo(Some("VO"), Some("R01"), Some("2021-03-03")),
    ]);
    let (decision, w1) = run(plo_decision, &d);
    let (reason, w2) = run(plo_decision_reason, &d);
    assert_eq!((decision.as_str(), reason.as_str()), ("NVO", ""));
    assert!(w1.is_empty());
    assert_eq!(
        w2,
        ["plo_decision_reason: PLO decisions on the same latest date disagree"]
    );
    let d = with_parts(vec![
        plo(Some("NVO"), Some("R02"), None),
        plo(Some("VO"), Some("R02"), None),
    ]);
    assert_eq!(plo_cells(&d), pair("", "R02"));
}

// ---------------------------------------------------------------------------------------------
// highest_nt2_level

#[test]
fn highest_nt2_level_as_held() {
    let of = |code: Option<Text>| {
        run(
            highest_nt2_level,
            &with_profile(|p| p.hoogst_behaald_nt2 = code),
        )
    };
    for level in ["A1", "A2", "B1", "B2", "C1", "C2"] {
        assert_eq!(of(t(level)), (level.to_owned(), vec![]));
    }
    assert_eq!(of(None).0, "");
    assert_eq!(of(t("")).0, "");
    assert_eq!(cell(highest_nt2_level, &Dossier::default()), "");
    let (got, warnings) = of(t("niveau van een gesprek met meneer Peeters"));
    assert_eq!(got, "");
    assert_eq!(warnings.len(), 1);
    let (got, warnings) = of(too_long());
    assert_eq!(got, "");
    assert_eq!(warnings.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// last_nt2_activity_date

fn periode(begin: Option<&str>, einde: Option<&str>) -> Periode {
    Periode {
        begin: begin.and_then(t),
        einde: einde.and_then(t),
    }
}

fn courses(list: Vec<Periode>) -> Dossier {
    with_profile(|p| p.nt2_cursussen = list)
}

#[test]
fn last_nt2_activity_date_present_and_absent() {
    let d = courses(vec![periode(Some("2022-01-10"), Some("2022-06-24"))]);
    assert_eq!(cell(last_nt2_activity_date, &d), "2022-06-24");
    // no Einde: its Begin
    let d = courses(vec![periode(Some("2022-01-10"), None)]);
    assert_eq!(cell(last_nt2_activity_date, &d), "2022-01-10");
    assert_eq!(cell(last_nt2_activity_date, &courses(vec![])), "");
    assert_eq!(
        cell(last_nt2_activity_date, &courses(vec![Periode::default()])),
        ""
    );
    assert_eq!(cell(last_nt2_activity_date, &Dossier::default()), "");
}

#[test]
fn last_nt2_activity_date_latest_of_several() {
    let d = courses(vec![
        periode(Some("2021-01-10"), Some("2021-06-24")),
        periode(Some("2023-09-01"), None),
        periode(Some("2022-01-10"), Some("2023-06-24")),
        periode(Some("2023-09-01"), None), // the same day twice: one date
    ]);
    assert_eq!(cell(last_nt2_activity_date, &d), "2023-09-01");
}

#[test]
fn last_nt2_activity_date_with_99_parts() {
    // an unusable Einde: that course gives no date (its Begin would understate it)
    let d = courses(vec![
        periode(Some("2021-01-10"), Some("2021-06-24")),
        periode(Some("2023-01-10"), Some("2023-06-99")),
    ]);
    assert_eq!(cell(last_nt2_activity_date, &d), "2021-06-24");
    // no Einde and an unusable Begin: none
    let d = courses(vec![periode(Some("2023-99-99"), None)]);
    assert_eq!(cell(last_nt2_activity_date, &d), "");
}

#[test]
fn last_nt2_activity_date_after_the_reference_date_is_not_counted() {
    let d = courses(vec![
        periode(Some("2021-01-10"), Some("2021-06-24")),
        // still running on the reference date: its end is later, so not counted
        periode(Some("2024-01-08"), Some("2024-12-20")),
        periode(Some("2024-09-01"), None),
    ]);
    assert_eq!(cell(last_nt2_activity_date, &d), "2021-06-24");
    assert_eq!(
        run_on(last_nt2_activity_date, &d, "2024-12-31").0,
        "2024-12-20"
    );
    let d = courses(vec![periode(Some("2024-06-01"), Some(REFERENCE))]);
    assert_eq!(cell(last_nt2_activity_date, &d), REFERENCE);
}

// ---------------------------------------------------------------------------------------------
// diploma_equivalence_referral, diploma_equivalence_result

fn toeleiding(start: Option<&str>, status: Option<&str>) -> Toeleiding {
    Toeleiding {
        start_datum: start.and_then(t),
        status: status.and_then(t),
    }
}

fn referrals(list: Vec<Toeleiding>) -> Dossier {
    with_profile(|p| p.diploma_toeleidingen = list)
}

fn diploma_cells(d: &Dossier) -> (String, String) {
    (
        cell(diploma_equivalence_referral, d),
        cell(diploma_equivalence_result, d),
    )
}

#[test]
fn diploma_equivalence_present_and_absent() {
    let d = referrals(vec![toeleiding(Some("2022-04-04"), Some("BZ"))]);
    assert_eq!(diploma_cells(&d), pair("2022-04-04", "BZ"));
    let d = referrals(vec![toeleiding(Some("2022-04-04"), None)]);
    assert_eq!(diploma_cells(&d), pair("2022-04-04", ""));
    assert_eq!(diploma_cells(&referrals(vec![])), pair("", ""));
    assert_eq!(diploma_cells(&Dossier::default()), pair("", ""));
}

#[test]
fn diploma_equivalence_latest_of_several_by_start() {
    let d = referrals(vec![
        toeleiding(Some("2021-04-04"), Some("AN")),
        toeleiding(Some("2023-04-04"), Some("GD")),
        toeleiding(Some("2022-04-04"), Some("BZ")),
    ]);
    assert_eq!(diploma_cells(&d), pair("2023-04-04", "GD"));
}

#[test]
fn diploma_equivalence_without_usable_start_is_not_a_candidate() {
    let d = referrals(vec![
        toeleiding(Some("2021-04-04"), Some("AN")),
        toeleiding(None, Some("GD")),
        toeleiding(Some("2023-02-30"), Some("BZ")),
        toeleiding(Some("2023-99-99"), Some("BZ")),
    ]);
    assert_eq!(diploma_cells(&d), pair("2021-04-04", "AN"));
    let d = referrals(vec![toeleiding(None, Some("GD"))]);
    assert_eq!(diploma_cells(&d), pair("", ""));
}

#[test]
fn diploma_equivalence_after_the_reference_date_is_not_counted() {
    let d = referrals(vec![
        toeleiding(Some("2021-04-04"), Some("AN")),
        toeleiding(Some("2024-07-01"), Some("GD")),
    ]);
    assert_eq!(diploma_cells(&d), pair("2021-04-04", "AN"));
}

#[test]
fn diploma_equivalence_ties_give_what_they_agree_on() {
    let d = referrals(vec![
        toeleiding(Some("2023-04-04"), Some("GD")),
        toeleiding(Some("2023-04-04"), Some("GD")),
    ]);
    assert_eq!(diploma_cells(&d), pair("2023-04-04", "GD"));
    let d = referrals(vec![
        toeleiding(Some("2023-04-04"), Some("GD")),
        toeleiding(Some("2023-04-04"), Some("AN")),
    ]);
    let (result, warnings) = run(diploma_equivalence_result, &d);
    assert_eq!(cell(diploma_equivalence_referral, &d), "2023-04-04");
    assert_eq!(result, "");
    assert_eq!(warnings.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// shared readings

#[test]
fn latest_keeps_every_tied_candidate_in_order() {
    let d = |s: &str| Some(day(s));
    assert_eq!(
        latest([
            (d("2020-01-01"), 1),
            (d("2021-01-01"), 2),
            (d("2021-01-01"), 3)
        ]),
        [2, 3]
    );
    assert_eq!(latest([(None, 1), (d("2019-01-01"), 2), (None, 3)]), [2]);
    assert_eq!(latest([(None, 1), (None, 2)]), [1, 2]);
    assert!(latest::<u8>([]).is_empty());
}

#[test]
fn codes_are_trimmed_and_shaped() {
    let mut warnings = Vec::new();
    let mut w = |x| warnings.push(x);
    assert_eq!(code(&t("  TO_B1/2 "), &mut w, "x"), "TO_B1/2");
    assert_eq!(code(&t("A1.1"), &mut w, "x"), "A1.1");
    assert_eq!(code(&t("a b"), &mut w, "x"), "");
    assert_eq!(code(&t(&"A".repeat(33)), &mut w, "x"), "");
    // an INSZ (or any 11-digit number) in a code element is not a code
    assert_eq!(code(&t("88021412358"), &mut w, "x"), "");
    assert_eq!(code(&t("X88021412358"), &mut w, "x"), "");
    assert_eq!(code(&t("8802141235"), &mut w, "x"), "8802141235");
    assert_eq!(warnings.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// every field on arbitrary dossiers

/// An element as the reader may fill it: absent, over-long, a real date, a date with `99`
/// parts, an impossible date, a code, free text, an INSZ.
fn any_text() -> impl Strategy<Value = Option<Text>> {
    prop_oneof![
        Just(None),
        Just(too_long()),
        (0i64..6000).prop_map(|n| t(&(day("2010-01-01") + chrono::Days::new(n as u64))
            .format("%Y-%m-%d")
            .to_string())),
        Just(t("2022-99-99")),
        Just(t("2022-05-99")),
        Just(t("2023-02-31")),
        prop::sample::select(vec![
            "JA",
            "PLICHT",
            "1",
            "2",
            "TT_IB_VP",
            "TT_NT2",
            "TO_OB_PLO",
            "VO",
            "B1",
            "GD",
            "40101",
            "99999",
            "AI023",
            "ATTEST",
            ""
        ])
        .prop_map(t),
        Just(t("vrije tekst met een naam")),
        Just(t("88021412358")),
    ]
}

fn any_periode() -> impl Strategy<Value = Periode> {
    (any_text(), any_text()).prop_map(|(begin, einde)| Periode { begin, einde })
}

fn any_dossier() -> impl Strategy<Value = Dossier> {
    let profile = (
        any_text(),
        any_text(),
        any_text(),
        prop::collection::vec(any_periode(), 0..3),
        prop::collection::vec(
            (any_text(), any_text()).prop_map(|(start_datum, status)| Toeleiding {
                start_datum,
                status,
            }),
            0..3,
        ),
    )
        .prop_map(
            |(geboortedatum, geslacht, hoogst_behaald_nt2, nt2_cursussen, diploma_toeleidingen)| {
                Profile {
                    geboortedatum,
                    geslacht,
                    hoogst_behaald_nt2,
                    nt2_cursussen,
                    diploma_toeleidingen,
                }
            },
        );
    let part =
        (any_text(), any_text(), any_text(), any_text()).prop_map(|(type_, code, reden, datum)| {
            Onderdeel {
                type_,
                besluit: Some(OnderdeelBesluit {
                    code,
                    reden,
                    datum_toekenning: datum,
                }),
            }
        });
    let traject = (
        any_text(),
        any_text(),
        any_text(),
        prop::collection::vec(part, 0..3),
    )
        .prop_map(|(type_, begin, kbi_nummer, onderdelen)| Traject {
            type_,
            beheerder: Some(Beheerder { begin, kbi_nummer }),
            onderdelen,
            ..Traject::default()
        });
    let document = (any_text(), any_text(), any_text(), any_text()).prop_map(
        |(soort, type_, datum_aanmaak, datum_ondertekening)| Document {
            soort,
            type_,
            datum_aanmaak,
            datum_ondertekening,
        },
    );
    (
        proptest::option::of(profile),
        (any_text(), any_text(), proptest::option::of(any_periode())),
        any_text(),
        prop::collection::vec(any_text(), 0..3),
        prop::collection::vec(traject, 0..3),
        prop::collection::vec(document, 0..3),
    )
        .prop_map(
            |(profile, (code, type_, periode), aanmelding, contracts, trajecten, documenten)| {
                Dossier {
                    doelgroep: Some(Doelgroep {
                        code,
                        type_,
                        periode,
                        ..Doelgroep::default()
                    }),
                    aanmelding: Some(Aanmelding {
                        type_: t("EA"),
                        datum: aanmelding,
                    }),
                    contracten: contracts
                        .into_iter()
                        .map(|datum_registratie| Contract {
                            datum_registratie,
                            ..Contract::default()
                        })
                        .collect(),
                    trajecten,
                    documenten,
                    profile: profile.map(Box::new),
                    ..Dossier::default()
                }
            },
        )
}

proptest! {
    /// On any dossier: dates are real and not after the reference date, yes/no fields are
    /// `ja`/`nee`, the rest are reviewed values or code-shaped, free text and the INSZ never
    /// come out, and every WARN is one of the fixed texts.
    #[test]
    fn every_field_is_well_formed_on_any_dossier(d in any_dossier()) {
        let ctx = ctx_on(REFERENCE);
        for field in CatalogueField::ALL {
            let mut warnings = Vec::new();
            let got = value(field, &d, &ctx, &mut |w| warnings.push(w));
            prop_assert!(!got.contains("tekst") && !got.contains("88021412358"), "{}: {}", field.name(), got);
            if got.is_empty() {
                continue;
            }
            match field {
                CatalogueField::TargetGroupSince
                | CatalogueField::RegistrationDate
                | CatalogueField::ContractDate
                | CatalogueField::LastNt2ActivityDate
                | CatalogueField::DiplomaEquivalenceReferral => {
                    let date = kbi_core::domain::day::parse_date(&got);
                    prop_assert!(date.is_ok_and(|d| d <= ctx.reference), "{}: {}", field.name(), got);
                }
                CatalogueField::ContractSigned | CatalogueField::CertificateObtained => {
                    prop_assert!(got == "ja" || got == "nee");
                }
                CatalogueField::Sex => prop_assert!(got == "M" || got == "V"),
                CatalogueField::AgeCategory => prop_assert!(got.starts_with('<') || got.ends_with('+') || got.contains('-')),
                CatalogueField::KbiRegion => prop_assert!(regions().offices().any(|(_, r)| r == got)),
                CatalogueField::TargetGroup => prop_assert!(codes().doelgroep_types.contains(&got)),
                CatalogueField::Insz | CatalogueField::Pseudonym => prop_assert!(false, "identity is the engine's"),
                _ => prop_assert!(is_code(&got), "{}: {}", field.name(), got),
            }
            for w in warnings {
                prop_assert!(w.contains(field.name()) || w == WARN_OFFICE_NOT_LISTED, "{}", w);
            }
        }
    }
}
