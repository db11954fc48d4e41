//! `protocols.md` section 1: one test per refusal of the loader, each naming the key's path;
//! section 2: `allows` and its order of reasons; a property that `allows` is monotone in time.

use chrono::NaiveDate;
use kbi_core::domain::Reference;
use kbi_protocol::{Binding, LoadError, Protocol, ProtocolSet, Refusal, SetError};
use proptest::prelude::*;

const BASE: &str = r#"
id = "test-protocol"
title = "A protocol for the tests"
sender = "Agentschap Integratie en Inburgering"
recipient = "Somebody"
legal_basis = ["a decree, art. 1"]
term = { from = 2021-10-01 }
retention_years = 5

[[questions]]
purpose = "care-budget"
asks = "date"
reference_dates = { from = 2022-01-01 }

[[questions]]
purpose = "reduced-premium"
asks = "premium_year"
premium_years = { from = 2022 }

[[files]]
id = "reduced-premium"
period = "yearly"
population = ["answer-nok"]
fields = ["insz"]
identity = "insz"
encryption = "recipients"
"#;

const MONITORING: &str = r#"
[[files]]
id = "monitoring"
period = "six-monthly"
population = ["subject", "contract-since:2022-03-01"]
fields = ["pseudonym", "age_category", "sex", "target_group", "kbi_region",
          "join:vdab.outflow_to_work", "join:profile.oldest_nationality"]
identity = "pseudonym"
encryption = "recipients"
age_bands = [18, 25, 35, 45, 55, 65]
special_categories = ["join:profile.oldest_nationality"]
min_group = 5
quasi_identifiers = ["age_category", "sex", "kbi_region", "join:profile.oldest_nationality"]

[[files.joins]]
name = "vdab"
key = "insz"
columns = ["first_registration", "outflow_to_work"]
returned_from = "reduced-premium"
[[files.joins]]
name = "profile"
key = "insz"
columns = ["education_level", "oldest_nationality"]
"#;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn load(text: &str) -> Result<Protocol, LoadError> {
    Protocol::from_toml(text)
}

/// The file refused, with `key` in its message.
fn refused_at(text: &str, key: &str) -> String {
    let error = load(text).expect_err("the file must be refused");
    let message = error.to_string();
    assert!(
        message.contains(key),
        "the refusal must name `{key}`: {message}"
    );
    message
}

#[test]
fn the_base_file_and_the_monitoring_entry_load() {
    let protocol = load(&format!("{BASE}{MONITORING}")).unwrap();
    assert_eq!(&*protocol.id, "test-protocol");
    assert_eq!(protocol.questions.len(), 2);
    assert_eq!(protocol.files.len(), 2);
    assert_eq!(protocol.files[1].fields.len(), 7);
}

#[test]
fn the_shipped_files_load() {
    let set = ProtocolSet::shipped().unwrap();
    assert_eq!(
        set.ids(),
        [
            "agii-abb-3de-pijler",
            "agii-gemeente",
            "agii-vdab-3de-pijler",
            "agii-vsb",
            "demo"
        ]
    );
    // The annulment is written but commented out: the protocol is as signed.
    assert!(set.get("agii-vsb").unwrap().ended.is_none());
}

/// The compiled-in copy is the directory: a file added to `config/protocols/` and not to
/// `SHIPPED` (or the other way round) would make `serve` with an empty `protocols.dir` differ from
/// `serve` pointed at the directory.
#[test]
fn the_compiled_in_files_are_the_shipped_directory() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/protocols");
    let mut on_disk: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    on_disk.sort();
    let compiled: Vec<(String, String)> = kbi_protocol::SHIPPED
        .iter()
        .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
        .collect();
    assert_eq!(compiled, on_disk);
}

/// The three deliveries of issue 22 read as the specification describes them (sections 3–7).
#[test]
fn the_shipped_deliveries_read_as_the_issue_describes() {
    use kbi_protocol::{CatalogueField, Encryption, Field, Identity, Period, Population};
    let set = ProtocolSet::shipped().unwrap();

    let vdab = set.get("agii-vdab-3de-pijler").unwrap();
    let request = vdab.file("request").unwrap();
    assert_eq!(request.period, Period::SixMonthly);
    assert_eq!(
        request.population,
        [
            Population::Subject,
            Population::ContractSince(day("2022-03-01"))
        ]
    );
    assert_eq!(request.fields, [Field::Catalogue(CatalogueField::Insz)]);
    assert_eq!(request.identity, Identity::Insz);
    let monitoring = vdab.file("monitoring").unwrap();
    assert_eq!(monitoring.identity, Identity::Removed);
    assert_eq!(monitoring.population, request.population);
    let vdab_join = monitoring.joins.iter().find(|j| j.name == "vdab").unwrap();
    assert_eq!(vdab_join.returned_from.as_deref(), Some("request"));
    assert_eq!(vdab_join.columns.len(), 6);
    for column in &vdab_join.columns {
        let field = Field::Join {
            name: "vdab".into(),
            column: column.clone(),
        };
        assert!(monitoring.fields.contains(&field), "{field}");
    }
    assert!(monitoring.min_group.is_some());

    let abb = set.get("agii-abb-3de-pijler").unwrap();
    let abb_monitoring = abb.file("monitoring").unwrap();
    assert_eq!(abb.retention_years, Some(5));
    assert_eq!(abb_monitoring.identity, Identity::Pseudonym);
    // The same file plus `last_nt2_activity_date`, with a pseudonym in front.
    let mut expected = vec![Field::Catalogue(CatalogueField::Pseudonym)];
    expected.extend(monitoring.fields.iter().cloned());
    expected.insert(
        expected
            .iter()
            .position(|f| *f == Field::Catalogue(CatalogueField::HighestNt2Level))
            .unwrap()
            + 1,
        Field::Catalogue(CatalogueField::LastNt2ActivityDate),
    );
    assert_eq!(abb_monitoring.fields, expected);

    let gemeente = set.get("agii-gemeente").unwrap();
    let residents = gemeente.file("residents").unwrap();
    assert_eq!(
        residents.population,
        [Population::InJoin("population".into())]
    );
    assert_eq!(residents.encryption, Encryption::Passphrase);
    assert_eq!(residents.identity, Identity::Insz);
    assert_eq!(
        residents.fields,
        [
            Field::Catalogue(CatalogueField::Insz),
            Field::Catalogue(CatalogueField::ContractSigned),
            Field::Catalogue(CatalogueField::CertificateObtained),
        ]
    );
}

#[test]
fn a_join_of_the_key_alone_serves_an_in_join_filter() {
    let residents = r#"
[[files]]
id = "residents"
period = "on-demand"
population = ["in-join:population"]
fields = ["insz", "contract_signed"]
identity = "insz"
encryption = "passphrase"
[[files.joins]]
name = "population"
key = "insz"
columns = []
"#;
    let protocol = load(&format!("{BASE}{residents}")).unwrap();
    assert!(protocol.file("residents").unwrap().joins[0]
        .columns
        .is_empty());
    // Without the filter the same join adds nothing: refused.
    let unused = residents.replace(r#"["in-join:population"]"#, r#"["all"]"#);
    refused_at(&format!("{BASE}{unused}"), "files[1].joins[0].columns");
}

#[test]
fn the_shipped_annulment_block_when_uncommented_ends_the_protocol() {
    let text = include_str!("../../../config/protocols/agii-vsb.toml")
        .replace("# ended = { on = 2023-07-20", "ended = { on = 2023-07-20");
    let protocol = load(&text).unwrap();
    let ended = protocol.ended.as_ref().expect("the block is now active");
    assert_eq!(ended.on, day("2023-07-20"));
    assert!(ended.reason.contains("112/2023"));
    let refusal = protocol
        .allows(
            "care-budget",
            day("2026-12-01"),
            Reference::Date(day("2024-01-01")),
        )
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::ProtocolEnded { .. }),
        "{refusal:?}"
    );
}

#[test]
fn an_unknown_key_is_refused_with_its_path() {
    refused_at(
        &BASE.replace("asks = \"date\"", "asks = \"date\"\nwhy = 1"),
        "questions[0]",
    );
    let message = refused_at(
        &BASE.replace("retention_years", "retention_yeras"),
        "retention_yeras",
    );
    assert!(message.contains("line"), "{message}");
}

#[test]
fn an_unknown_key_in_a_file_entry_is_refused_with_its_path() {
    refused_at(
        &BASE.replace(
            "encryption = \"recipients\"",
            "encryption = \"recipients\"\ncolour = \"red\"",
        ),
        "files[0]",
    );
}

#[test]
fn a_purpose_used_twice_is_refused() {
    refused_at(
        &BASE.replace("purpose = \"reduced-premium\"", "purpose = \"care-budget\""),
        "questions[1].purpose",
    );
}

#[test]
fn two_questions_with_the_same_asks_are_refused() {
    let text = BASE.replace(
        "purpose = \"reduced-premium\"\nasks = \"premium_year\"\npremium_years = { from = 2022 }",
        "purpose = \"other\"\nasks = \"date\"",
    );
    refused_at(&text, "questions[1].asks");
}

#[test]
fn a_file_id_used_twice_is_refused() {
    let text = format!("{BASE}{}", &BASE[BASE.find("[[files]]").unwrap()..]);
    refused_at(&text, "files[1].id");
}

#[test]
fn an_inverted_term_is_refused() {
    refused_at(
        &BASE.replace(
            "term = { from = 2021-10-01 }",
            "term = { from = 2021-10-01, until = 2021-09-30 }",
        ),
        "term.until",
    );
}

#[test]
fn an_inverted_reference_window_is_refused() {
    refused_at(
        &BASE.replace(
            "reference_dates = { from = 2022-01-01 }",
            "reference_dates = { from = 2022-01-01, until = 2021-01-01 }",
        ),
        "questions[0].reference_dates.until",
    );
}

#[test]
fn an_inverted_premium_year_window_is_refused() {
    refused_at(
        &BASE.replace(
            "premium_years = { from = 2022 }",
            "premium_years = { from = 2022, until = 2020 }",
        ),
        "questions[1].premium_years.until",
    );
}

#[test]
fn an_unknown_field_is_refused() {
    refused_at(
        &BASE.replace("fields = [\"insz\"]", "fields = [\"insz\", \"shoe_size\"]"),
        "files[0].fields[1]",
    );
}

#[test]
fn a_field_listed_twice_is_refused() {
    refused_at(
        &BASE.replace(
            "fields = [\"insz\"]",
            "fields = [\"insz\", \"sex\", \"insz\"]",
        ),
        "files[0].fields[2]",
    );
}

#[test]
fn an_unknown_population_is_refused() {
    refused_at(
        &BASE.replace(
            "population = [\"answer-nok\"]",
            "population = [\"everyone\"]",
        ),
        "files[0].population[0]",
    );
}

#[test]
fn a_join_field_without_its_join_is_refused() {
    refused_at(
        &BASE.replace(
            "fields = [\"insz\"]",
            "fields = [\"insz\", \"join:vdab.x\"]",
        ),
        "files[0].fields[1]",
    );
}

#[test]
fn a_join_column_not_declared_is_refused() {
    let text = format!("{BASE}{MONITORING}")
        .replace("\"join:vdab.outflow_to_work\"", "\"join:vdab.salary\"");
    refused_at(&text, "files[1].fields[5]");
}

#[test]
fn an_undeclared_special_category_is_refused() {
    let text = format!("{BASE}{MONITORING}").replace(
        "special_categories = [\"join:profile.oldest_nationality\"]\n",
        "",
    );
    refused_at(&text, "files[1].fields[6]");
}

#[test]
fn age_category_without_age_bands_is_refused() {
    let text = format!("{BASE}{MONITORING}").replace("age_bands = [18, 25, 35, 45, 55, 65]\n", "");
    refused_at(&text, "files[1].age_bands");
}

#[test]
fn insz_in_a_pseudonymised_file_is_refused() {
    let text =
        format!("{BASE}{MONITORING}").replace("fields = [\"pseudonym\"", "fields = [\"insz\"");
    refused_at(&text, "files[1].fields");
}

#[test]
fn a_join_returned_from_an_unknown_file_is_refused() {
    let text = format!("{BASE}{MONITORING}").replace(
        "returned_from = \"reduced-premium\"",
        "returned_from = \"request\"",
    );
    refused_at(&text, "files[1].joins[0].returned_from");
}

#[test]
fn a_bad_id_is_refused() {
    refused_at(
        &BASE.replace("id = \"test-protocol\"", "id = \"Test Protocol\""),
        "`id`",
    );
}

#[test]
fn a_date_with_a_time_is_refused() {
    refused_at(
        &BASE.replace(
            "term = { from = 2021-10-01 }",
            "term = { from = 2021-10-01T10:00:00 }",
        ),
        "term.from",
    );
}

#[test]
fn an_ended_without_reason_is_refused() {
    refused_at(
        &BASE.replace(
            "retention_years = 5",
            "retention_years = 5\nended = { on = 2023-07-20, reason = \" \" }",
        ),
        "ended.reason",
    );
}

#[test]
fn a_window_of_the_wrong_kind_is_refused() {
    refused_at(
        &BASE.replace(
            "reference_dates = { from = 2022-01-01 }",
            "premium_years = { from = 2022 }",
        ),
        "questions[0].premium_years",
    );
}

#[test]
fn two_files_with_the_same_id_are_refused() {
    let error = ProtocolSet::from_sources([
        ("a.toml".to_owned(), BASE.to_owned()),
        ("b.toml".to_owned(), BASE.to_owned()),
    ])
    .unwrap_err();
    assert!(matches!(error, SetError::DuplicateId { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("a.toml") && message.contains("b.toml"),
        "{message}"
    );
}

#[test]
fn an_invalid_file_in_a_set_names_the_file() {
    let error = ProtocolSet::from_sources([
        ("good.toml".to_owned(), BASE.to_owned()),
        ("bad.toml".to_owned(), BASE.replace("term", "terms")),
    ])
    .unwrap_err();
    assert!(error.to_string().contains("bad.toml"), "{error}");
}

// --- allows (section 2) -------------------------------------------------------------------

#[test]
fn allows_inside_the_term_and_the_window() {
    let p = load(BASE).unwrap();
    p.allows(
        "care-budget",
        day("2026-12-01"),
        Reference::Date(day("2024-05-01")),
    )
    .unwrap();
    p.allows(
        "reduced-premium",
        day("2026-12-01"),
        Reference::PremiumYear(2024),
    )
    .unwrap();
}

#[test]
fn refuses_before_the_term() {
    let p = load(BASE).unwrap();
    let refusal = p
        .allows(
            "care-budget",
            day("2021-09-30"),
            Reference::Date(day("2022-05-01")),
        )
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::OutsideTerm { .. }),
        "{refusal:?}"
    );
    assert!(refusal.to_string().contains("test-protocol"));
}

#[test]
fn refuses_after_the_term_until() {
    let p = load(&BASE.replace(
        "term = { from = 2021-10-01 }",
        "term = { from = 2021-10-01, until = 2025-12-31 }",
    ))
    .unwrap();
    p.allows(
        "care-budget",
        day("2025-12-31"),
        Reference::Date(day("2022-05-01")),
    )
    .unwrap();
    let refusal = p
        .allows(
            "care-budget",
            day("2026-01-01"),
            Reference::Date(day("2022-05-01")),
        )
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::OutsideTerm { .. }),
        "{refusal:?}"
    );
}

#[test]
fn an_ended_protocol_refuses_from_that_day_with_its_reason() {
    let p = load(&BASE.replace(
        "retention_years = 5",
        "retention_years = 5\nended = { on = 2023-07-20, reason = \"arrest 112/2023\" }",
    ))
    .unwrap();
    p.allows(
        "care-budget",
        day("2023-07-19"),
        Reference::Date(day("2022-05-01")),
    )
    .unwrap();
    let refusal = p
        .allows(
            "care-budget",
            day("2023-07-20"),
            Reference::Date(day("2022-05-01")),
        )
        .unwrap_err();
    assert!(refusal.to_string().contains("arrest 112/2023"), "{refusal}");
    assert!(refusal.diagnose_nl().contains("arrest 112/2023"));
}

#[test]
fn an_ended_purpose_refuses_only_that_purpose() {
    let p = load(&BASE.replace(
        "reference_dates = { from = 2022-01-01 }",
        "reference_dates = { from = 2022-01-01 }\nended = { on = 2023-07-20, reason = \"arrest\" }",
    ))
    .unwrap();
    let refusal = p
        .allows(
            "care-budget",
            day("2024-01-01"),
            Reference::Date(day("2022-05-01")),
        )
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::PurposeEnded { .. }),
        "{refusal:?}"
    );
    p.allows(
        "reduced-premium",
        day("2024-01-01"),
        Reference::PremiumYear(2024),
    )
    .unwrap();
}

#[test]
fn refuses_a_reference_outside_the_window() {
    let p = load(BASE).unwrap();
    let refusal = p
        .allows(
            "care-budget",
            day("2026-01-01"),
            Reference::Date(day("2021-12-31")),
        )
        .unwrap_err();
    assert!(refusal.to_string().contains("from 2022-01-01"), "{refusal}");
    let refusal = p
        .allows(
            "reduced-premium",
            day("2026-01-01"),
            Reference::PremiumYear(2021),
        )
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::OutsideWindow { .. }),
        "{refusal:?}"
    );
}

#[test]
fn refuses_an_unknown_purpose() {
    let p = load(BASE).unwrap();
    let refusal = p
        .allows(
            "research",
            day("2026-01-01"),
            Reference::Date(day("2024-01-01")),
        )
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::UnknownPurpose { .. }),
        "{refusal:?}"
    );
}

#[test]
fn a_client_narrowed_to_reduced_premium_may_not_ask_by_date() {
    let binding = Binding {
        protocol: std::sync::Arc::new(load(BASE).unwrap()),
        purposes: Some(vec!["reduced-premium".into()]),
    };
    let refusal = binding
        .admit(day("2026-01-01"), Reference::Date(day("2024-01-01")))
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::NotForClient { .. }),
        "{refusal:?}"
    );
    assert_eq!(
        &**binding
            .admit(day("2026-01-01"), Reference::PremiumYear(2024))
            .unwrap(),
        "reduced-premium"
    );
}

#[test]
fn the_protocol_end_is_checked_before_the_purpose() {
    // Section 2's order: the protocol (term, ended) first, then the purpose, then the window.
    let p = load(&BASE.replace(
        "retention_years = 5",
        "retention_years = 5\nended = { on = 2023-07-20, reason = \"r\" }",
    ))
    .unwrap();
    let refusal = p
        .allows(
            "research",
            day("2024-01-01"),
            Reference::Date(day("2020-01-01")),
        )
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::ProtocolEnded { .. }),
        "{refusal:?}"
    );
}

#[test]
fn the_yearly_list_is_a_delivery_of_its_protocol() {
    let p = load(BASE).unwrap();
    p.allows_file(
        "reduced-premium",
        day("2026-12-01"),
        Reference::PremiumYear(2026),
    )
    .unwrap();
    let refusal = p
        .allows_file(
            "reduced-premium",
            day("2026-12-01"),
            Reference::PremiumYear(2021),
        )
        .unwrap_err();
    assert!(
        matches!(refusal, Refusal::OutsideWindow { .. }),
        "{refusal:?}"
    );
    let refusal = p
        .allows_file(
            "monitoring",
            day("2026-12-01"),
            Reference::PremiumYear(2026),
        )
        .unwrap_err();
    assert!(matches!(refusal, Refusal::NoFile { .. }), "{refusal:?}");
}

fn arb_day() -> impl Strategy<Value = NaiveDate> {
    (0i64..20_000).prop_map(|n| day("1990-01-01") + chrono::Duration::days(n))
}

proptest! {
    /// For a protocol with a term [from, until] and a purpose window [wfrom, wuntil]: a question
    /// asked inside the term about a date inside the window is allowed, one outside either is
    /// refused. Hence monotone: moving a day from inside to outside never allows more.
    #[test]
    fn allows_is_monotone_in_time_for_a_window(
        a in arb_day(), b in arb_day(), c in arb_day(), d in arb_day(),
        asked in arb_day(), reference in arb_day(),
    ) {
        let (from, until) = (a.min(b), a.max(b));
        let (wfrom, wuntil) = (c.min(d), c.max(d));
        let text = BASE
            .replace("term = { from = 2021-10-01 }", &format!("term = {{ from = {from}, until = {until} }}"))
            .replace("reference_dates = { from = 2022-01-01 }", &format!("reference_dates = {{ from = {wfrom}, until = {wuntil} }}"));
        let p = load(&text).unwrap();
        let inside = (from..=until).contains(&asked) && (wfrom..=wuntil).contains(&reference);
        let allowed = p.allows("care-budget", asked, Reference::Date(reference)).is_ok();
        prop_assert_eq!(allowed, inside);
    }

    /// The doors' fast path (the purpose open that day, then its window) answers exactly as
    /// the full check, for every day, reference and client narrowing.
    #[test]
    fn the_open_purpose_and_its_window_agree_with_admit(
        asked in arb_day(), reference in arb_day(), year in 2015i32..2030,
        ended in proptest::option::of(arb_day()), narrow in proptest::bool::ANY,
    ) {
        let mut text = BASE.replace(
            "term = { from = 2021-10-01 }",
            "term = { from = 2021-10-01, until = 2040-01-01 }",
        );
        if let Some(on) = ended {
            text = text.replace(
                "reference_dates = { from = 2022-01-01 }",
                &format!("reference_dates = {{ from = 2022-01-01 }}\nended = {{ on = {on}, reason = \"r\" }}"),
            );
        }
        let binding = Binding {
            protocol: std::sync::Arc::new(load(&text).unwrap()),
            purposes: narrow.then(|| vec!["reduced-premium".into()]),
        };
        for (reference, asks) in [
            (Reference::Date(reference), kbi_protocol::Asks::Date),
            (Reference::PremiumYear(year), kbi_protocol::Asks::PremiumYear),
        ] {
            let fast = binding
                .open_purpose(asked, asks)
                .is_some_and(|p| p.window.admits(reference));
            prop_assert_eq!(fast, binding.admit(asked, reference).is_ok());
        }
    }

    /// The same for an `ended`: allowed before its day, refused on it and every day after.
    #[test]
    fn ended_refuses_every_day_from_its_day_on(on in arb_day(), asked in arb_day()) {
        let text = BASE
            .replace("term = { from = 2021-10-01 }", "term = { from = 1900-01-01 }")
            .replace("reference_dates = { from = 2022-01-01 }", "")
            .replace("retention_years = 5", &format!("retention_years = 5\nended = {{ on = {on}, reason = \"r\" }}"));
        let p = load(&text).unwrap();
        let allowed = p.allows("care-budget", asked, Reference::Date(day("2024-01-01"))).is_ok();
        prop_assert_eq!(allowed, asked < on);
    }
}
