//! The SOAP codec through `respond` (parse, judge, render chained), without a server: the public table,
//! hostile input, ordering, request- and question-level Uitzonderingen, and schema validity.

use std::sync::{Arc, OnceLock};

use crate::support::*;
use chrono::{TimeZone, Utc};
use kbi_core::domain::magda::Sender;
use kbi_core::domain::{CompiledSnapshot, ErrorCode, Insz, Question, ReasonCode, RuleSet, Unbound};
use kbi_core::io::Silent;
use kbi_core::snapshot::load_path;
use kbi_wire::json::AnswerJson;
use kbi_wire::soap::{
    judge, render, render_answers, respond, respond_at, wsdl_document, Caller, Reply, SoapCall,
    SoapResponse, Source, XmlLimits,
};
use proptest::prelude::*;

const SERVER_REFERTE: &str = "0b7d6c1e-3f8a-4c55-9a0e-5d2c7f9e1a42";
const SERVICE: &str = "kbi-advice.test";

fn snapshot() -> &'static CompiledSnapshot {
    static SNAPSHOT: OnceLock<CompiledSnapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        load_path(
            &public_snapshot_path(),
            Arc::new(RuleSet::shipped()),
            &Silent,
        )
        .expect("public snapshot loads")
    })
}

fn limits() -> &'static XmlLimits {
    static LIMITS: OnceLock<XmlLimits> = OnceLock::new();
    LIMITS.get_or_init(XmlLimits::default)
}

fn call() -> SoapCall<'static> {
    SoapCall {
        snapshot: Some(snapshot()),
        limits: limits(),
        server_referte: SERVER_REFERTE,
        service_identificatie: SERVICE,
    }
}

fn ask(body: &str) -> SoapResponse {
    respond(body.as_bytes(), &call())
}

/// A reply (200) and its Repliek.
fn ask_reply(body: &str) -> (SoapResponse, El) {
    let response = ask(body);
    assert_eq!(
        response.http_status,
        200,
        "expected a reply, got {}",
        String::from_utf8_lossy(&response.body)
    );
    let repliek = repliek(&response.body);
    (response, repliek)
}

fn antwoorden(repliek: &El) -> Vec<El> {
    repliek
        .at("Antwoorden")
        .expect("Antwoorden")
        .all("Antwoord")
        .cloned()
        .collect()
}

#[test]
fn answers_rendered_from_the_request_are_the_bytes_of_the_reply() {
    // The server renders its answers from the request's borrowed values
    // (`render_answers`); they are the bytes `render` gives for `Reply::answers`, with the same
    // echo rule (a value the schema would not allow, here a Referte of 40 characters, is left
    // out by both).
    let body = request(&[
        Q::date("q-1", "82030310494", "2023-01-01"),
        Q::year("q-2", "00000000000", "2024"),
    ]);
    let envelope = kbi_wire::soap::parse(body.as_bytes(), limits(), None).expect("an envelope");
    let verdicts = judge(&envelope, snapshot(), &Unbound);
    let source = Source::of(snapshot());
    let now = Utc::now();
    let responder = call().responder();
    let too_long = Caller {
        referte: "r".repeat(40).into(),
        ..envelope.caller.clone()
    };
    for (caller, echoed) in [
        (
            envelope.caller.clone(),
            &["Identificatie", "Referte", "Hoedanigheid"][..],
        ),
        (too_long, &["Identificatie", "Hoedanigheid"][..]),
    ] {
        let rendered = render_answers(&caller, &verdicts, &source, &responder, now);
        let reply = Reply::answers(caller, verdicts.clone(), Arc::new(source.clone()));
        assert_eq!(rendered, render(&reply, &responder, now));
        let repliek = repliek(&rendered);
        let ontvanger = repliek.at("Context/Bericht/Ontvanger").unwrap();
        assert_eq!(ontvanger.names(), echoed);
    }
}

// ---------------------------------------------------------------------------------------------
// The public table

#[test]
fn every_public_case_answered_through_soap_equals_the_table() {
    let rows = public_rows();
    let questions: Vec<Q> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| Q::date(&format!("row-{i}"), &row.insz, &row.date))
        .collect();
    let (response, repliek) = ask_reply(&request(&questions));
    let answers = antwoorden(&repliek);
    assert_eq!(answers.len(), rows.len());
    assert_eq!(response.questions.len(), rows.len());
    for (i, (row, antwoord)) in rows.iter().zip(&answers).enumerate() {
        assert_eq!(
            antwoord.text_at("Referte"),
            Some(format!("row-{i}").as_str())
        );
        assert_eq!(
            answered_row(antwoord),
            expected_row(row),
            "row {i}: {} on {}",
            row.insz,
            row.date
        );
        let record = &response.questions[i];
        assert_eq!(record.referte, Some(format!("row-{i}")));
        match &record.outcome {
            Ok(advice) => assert_eq!(advice.result(), row.result),
            Err(code) => assert_eq!(code.as_str(), row.error),
        }
    }
}

#[test]
fn each_public_case_alone_gives_the_same_answer_as_in_the_batch() {
    for row in public_rows() {
        let (_, repliek) = ask_reply(&request(&[Q::date("alone", &row.insz, &row.date)]));
        let answers = antwoorden(&repliek);
        assert_eq!(answers.len(), 1);
        assert_eq!(answered_row(&answers[0]), expected_row(&row), "{row:?}");
    }
}

/// SOAP and the JSON door agree field for field, because they call the same core.
#[test]
fn soap_answers_agree_with_the_json_answer_field_by_field() {
    let snapshot = snapshot();
    for row in public_rows().iter().filter(|r| r.error.is_empty()) {
        let question = Question::parse(&row.insz, Some(&row.date), None).unwrap();
        let advice = snapshot.advise(&question).unwrap();
        let json = AnswerJson::new(&advice, &snapshot.meta, &snapshot.rules.version);
        let (_, repliek) = ask_reply(&request(&[Q::date("q", &row.insz, &row.date)]));
        let advies = antwoorden(&repliek)[0].at("Inhoud/Advies").unwrap().clone();
        assert_eq!(advies.text_at("INSZ"), Some(json.insz.as_str()));
        assert_eq!(
            advies.text_at("Referentiedatum"),
            Some(json.reference_date.as_str())
        );
        assert_eq!(
            advies.text_at("ValtOnderInburgeringsplicht"),
            Some(json.subject.to_string().as_str())
        );
        assert_eq!(
            advies.text_at("VoldoetAanInburgeringsplicht"),
            Some(json.compliant.to_string().as_str())
        );
        assert_eq!(advies.text_at("Resultaat"), Some(json.result));
        assert_eq!(
            advies.text_at("Reden/Code"),
            json.reason.as_ref().map(|r| r.code)
        );
        assert_eq!(
            advies.text_at("Reden/Omschrijving"),
            json.reason.as_ref().map(|r| r.nl)
        );
        assert_eq!(
            advies.text_at("Bron/SnapshotId"),
            Some(json.source.snapshot_id)
        );
        assert_eq!(
            advies.text_at("Bron/Extractiedatum"),
            Some(json.source.extracted_at.as_ref())
        );
        assert_eq!(advies.text_at("Bron/Regelset"), Some(json.source.rule_set));
    }
}

#[test]
fn advies_children_come_in_schema_order_and_reden_only_when_nok() {
    let (_, repliek) = ask_reply(&request(&[
        Q::date("ok", "82030310494", "2023-01-01"),
        Q::date("nok", "83040410690", "2023-01-01"),
    ]));
    let answers = antwoorden(&repliek);
    let ok = answers[0].at("Inhoud/Advies").unwrap();
    let nok = answers[1].at("Inhoud/Advies").unwrap();
    let base = [
        "INSZ",
        "Referentiedatum",
        "ValtOnderInburgeringsplicht",
        "VoldoetAanInburgeringsplicht",
        "Resultaat",
    ];
    assert_eq!(ok.names(), [&base[..], &["Bron"]].concat());
    assert_eq!(nok.names(), [&base[..], &["Reden", "Bron"]].concat());
    assert_eq!(
        nok.text_at("Reden/Omschrijving"),
        Some(ReasonCode::NietAangemeld.nl())
    );
    assert_eq!(
        ok.text_at("Bron/Extractiedatum"),
        Some("2026-11-01T02:00:00Z")
    );
    assert_eq!(ok.text_at("Bron/SnapshotId"), Some("public-1"));
}

#[test]
fn a_premium_year_asks_about_first_january_of_the_year_before() {
    let (_, repliek) = ask_reply(&request(&[Q::year("p", "83040410690", "2024")]));
    let advies = antwoorden(&repliek)[0].at("Inhoud/Advies").unwrap().clone();
    assert_eq!(advies.text_at("Referentiedatum"), Some("2023-01-01"));
    assert_eq!(advies.text_at("Resultaat"), Some("NOK"));
    assert_eq!(advies.text_at("Reden/Code"), Some("NIET_AANGEMELD"));
}

#[test]
fn an_insz_with_separators_is_answered_normalised_and_one_not_in_the_snapshot_as_not_subject() {
    let (response, repliek) = ask_reply(&request(&[Q::date("f", "85.07.30-033.28", "2024-01-01")]));
    let advies = antwoorden(&repliek)[0].at("Inhoud/Advies").unwrap().clone();
    assert_eq!(advies.text_at("INSZ"), Some("85073003328"));
    assert_eq!(advies.text_at("ValtOnderInburgeringsplicht"), Some("false"));
    assert_eq!(advies.text_at("VoldoetAanInburgeringsplicht"), Some("true"));
    assert_eq!(advies.text_at("Resultaat"), Some("OK"));
    // Only the audit record knows the difference.
    assert_eq!(response.questions[0].found, Some(false));
    assert_eq!(
        response.questions[0].insz,
        Some(Insz::parse("85073003328").unwrap())
    );
}

// ---------------------------------------------------------------------------------------------
// Several questions

#[test]
fn one_bad_question_never_fails_the_others_and_answers_keep_the_order() {
    let questions = vec![
        Q::date("a-ok", "82030310494", "2023-01-01"),
        Q::date("b-bad-insz", "85073003329", "2024-01-01"),
        Q::date("c-nok", "94031512859", "2025-01-01"),
        Q {
            referte: None,
            ..Q::date("", "82030310494", "2023-01-01")
        },
        Q::year("e-year", "82030310494", "2024"),
        Q {
            year: Some("2024".into()),
            ..Q::date("f-both", "82030310494", "2023-01-01")
        },
        Q {
            insz: None,
            ..Q::date("g-no-insz", "", "2023-01-01")
        },
        Q {
            date: None,
            ..Q::date("h-no-date", "82030310494", "")
        },
        Q::date("i-too-old", "80010110005", "2013-12-31"),
        Q::date("j-future", "80010110005", "2026-12-03"),
        Q::date(&"k".repeat(37), "82030310494", "2023-01-01"),
        Q::date("l-bad-date", "82030310494", "2023-02-30"),
        Q::year("m-bad-year", "82030310494", "24"),
    ];
    let (response, repliek) = ask_reply(&request(&questions));
    let answers = antwoorden(&repliek);
    assert_eq!(answers.len(), questions.len());
    let summary: Vec<(Option<&str>, String)> = answers
        .iter()
        .map(|a| {
            let outcome = match a.text_at("Uitzonderingen/Uitzondering/Identificatie") {
                Some(code) => code.to_string(),
                None => a.text_at("Inhoud/Advies/Resultaat").unwrap().to_string(),
            };
            (a.text_at("Referte"), outcome)
        })
        .collect();
    let expected: Vec<(Option<&str>, String)> = vec![
        (Some("a-ok"), "OK".into()),
        (Some("b-bad-insz"), "30001".into()),
        (Some("c-nok"), "NOK".into()),
        (None, "30012".into()),
        (Some("e-year"), "OK".into()),
        (Some("f-both"), "30002".into()),
        (Some("g-no-insz"), "30001".into()),
        (Some("h-no-date"), "30002".into()),
        (Some("i-too-old"), "30004".into()),
        (Some("j-future"), "30003".into()),
        (None, "30012".into()),
        (Some("l-bad-date"), "30002".into()),
        (Some("m-bad-year"), "30002".into()),
    ];
    assert_eq!(summary, expected);

    // One audit record per question, in order.
    let records: Vec<(&str, Result<&str, &str>)> = response
        .questions
        .iter()
        .map(|r| {
            (
                r.referte.as_deref().unwrap_or(""),
                r.outcome
                    .as_ref()
                    .map(|a| a.result())
                    .map_err(|c| c.as_str()),
            )
        })
        .collect();
    assert_eq!(records[0], ("a-ok", Ok("OK")));
    assert_eq!(records[1], ("b-bad-insz", Err("30001")));
    assert_eq!(records[3], ("", Err("30012")));
    assert_eq!(records.len(), questions.len());
    // A question without a valid Referte still records the INSZ for the audit log.
    assert_eq!(
        response.questions[3].insz,
        Some(Insz::parse("82030310494").unwrap())
    );
    assert_eq!(response.questions[1].insz, None);
}

#[test]
fn question_uitzondering_has_the_magda_fields_in_order_and_a_dutch_diagnosis() {
    let (_, repliek) = ask_reply(&request(&[Q::date("x", "85073003329", "2024-01-01")]));
    let uitzondering = antwoorden(&repliek)[0]
        .at("Uitzonderingen/Uitzondering")
        .unwrap()
        .clone();
    assert_eq!(
        uitzondering.names(),
        ["Identificatie", "Oorsprong", "Type", "Diagnose"]
    );
    assert_eq!(uitzondering.text_at("Identificatie"), Some("30001"));
    assert_eq!(uitzondering.text_at("Oorsprong"), Some("KBI-ADVICE"));
    assert_eq!(uitzondering.text_at("Type"), Some("FOUT"));
    assert_eq!(
        uitzondering.text_at("Diagnose"),
        Some(ErrorCode::InvalidInsz.diagnose_nl())
    );
}

#[test]
fn no_diagnosis_or_fault_ever_contains_the_insz_asked() {
    let inszs = [
        "85073003329",
        "90011510185",
        "8507300332",
        "85.07.30-033.28",
    ];
    let mut bodies = Vec::new();
    for insz in inszs {
        // Each of these is refused, for the INSZ or for something else.
        bodies.push(request(&[Q::date("q", insz, "2013-01-01")]));
        bodies.push(request(&[Q::date("q", insz, "not a date")]));
        bodies.push(
            request(&[Q::date("q", insz, "2024-01-01")])
                .replace("<Criteria>", "<Criteria><Criteria/>"),
        );
        bodies.push(request_with(
            &CONTEXT.replace("01.00.0000", "02.00.0000"),
            &[Q::date("q", insz, "2024-01-01")],
        ));
    }
    for body in bodies {
        let response = ask(&body);
        let text = String::from_utf8(response.body.clone()).unwrap();
        let envelope = parse_xml(&response.body);
        let mut texts = Vec::new();
        collect(&envelope, &["Diagnose", "faultstring"], &mut texts);
        assert!(!texts.is_empty(), "no diagnosis in {text}");
        for t in texts {
            for insz in inszs {
                assert!(!t.contains(insz), "INSZ in {t:?}");
            }
            assert!(!t.contains("85073003"), "INSZ digits in {t:?}");
        }
    }
}

fn collect(el: &El, names: &[&str], out: &mut Vec<String>) {
    if names.contains(&el.name.as_str()) {
        out.push(el.text.clone());
    }
    for child in &el.children {
        collect(child, names, out);
    }
}

// ---------------------------------------------------------------------------------------------
// Request-level Uitzonderingen

fn request_uitzondering(body: &str) -> (SoapResponse, El, String) {
    let (response, repliek) = ask_reply(body);
    assert!(
        repliek.child("Antwoorden").is_none(),
        "a refused request has no Antwoorden"
    );
    assert!(response.questions.is_empty());
    let code = repliek
        .text_at("Uitzonderingen/Uitzondering/Identificatie")
        .expect("request-level Uitzondering")
        .to_string();
    (response, repliek, code)
}

#[test]
fn an_invalid_context_is_refused_with_30012_naming_the_field() {
    let q = [Q::date("q", "82030310494", "2023-01-01")];
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong Naam",
            CONTEXT.replace("<Naam>GeefAdviesInburgeringsplicht<", "<Naam>GeefPersoon<"),
            "Naam",
        ),
        (
            "missing Naam",
            CONTEXT.replace("<Naam>GeefAdviesInburgeringsplicht</Naam>", ""),
            "Naam",
        ),
        (
            "wrong Versie",
            CONTEXT.replace("01.00.0000", "01.01.0000"),
            "Versie",
        ),
        (
            "Type not VRAAG",
            CONTEXT.replace("<Type>VRAAG</Type>", "<Type>ANTWOORD</Type>"),
            "Type",
        ),
        (
            "missing Bericht",
            CONTEXT.replace(
                &CONTEXT[CONTEXT.find("<Bericht>").unwrap()..CONTEXT.find("</Context>").unwrap()],
                "",
            ),
            "Bericht",
        ),
        (
            "missing Tijdstip",
            CONTEXT.replace(
                "<Tijdstip><Datum>2026-11-02</Datum><Tijd>09:15:00.000</Tijd></Tijdstip>",
                "",
            ),
            "Tijdstip",
        ),
        (
            "bad Tijd",
            CONTEXT.replace("09:15:00.000", "09:15"),
            "Tijdstip",
        ),
        (
            "bad Datum",
            CONTEXT.replace("2026-11-02", "02/11/2026"),
            "Tijdstip",
        ),
        (
            "impossible Datum",
            CONTEXT.replace("2026-11-02", "2026-02-30"),
            "Tijdstip",
        ),
        (
            "missing sender Referte",
            CONTEXT.replace("<Referte>req-0001</Referte>", ""),
            "Referte",
        ),
        (
            "empty sender Referte",
            CONTEXT.replace("<Referte>req-0001</Referte>", "<Referte/>"),
            "Referte",
        ),
        (
            "sender Referte of 37",
            CONTEXT.replace("req-0001", &"r".repeat(37)),
            "Referte",
        ),
        (
            "missing Identificatie",
            CONTEXT.replace("<Identificatie>demo.kbi-advice</Identificatie>", ""),
            "Identificatie",
        ),
        (
            "missing Hoedanigheid",
            CONTEXT.replace("<Hoedanigheid>9999</Hoedanigheid>", ""),
            "Hoedanigheid",
        ),
        (
            "Gebruiker too long",
            CONTEXT.replace("tester", &"g".repeat(129)),
            "Gebruiker",
        ),
    ];
    for (name, context, field) in cases {
        let (response, repliek, code) = request_uitzondering(&request_with(&context, &q));
        assert_eq!(code, "30012", "{name}");
        let diagnose = repliek
            .text_at("Uitzonderingen/Uitzondering/Diagnose")
            .unwrap();
        assert!(
            diagnose.starts_with(ErrorCode::InvalidContext.diagnose_nl()),
            "{name}: {diagnose}"
        );
        assert!(
            diagnose.contains(field),
            "{name}: {diagnose} should name {field}"
        );
        // A request-level refusal: nothing was judged, so nothing is audited.
        assert!(response.questions.is_empty(), "{name}");
    }
}

#[test]
fn the_sender_is_echoed_in_ontvanger_and_the_service_is_the_afzender() {
    let (response, repliek) = ask_reply(&request(&[Q::date("q", "82030310494", "2023-01-01")]));
    let bericht = repliek.at("Context/Bericht").unwrap();
    assert_eq!(
        repliek.text_at("Context/Naam"),
        Some("GeefAdviesInburgeringsplicht")
    );
    assert_eq!(repliek.text_at("Context/Versie"), Some("01.00.0000"));
    assert_eq!(bericht.text_at("Type"), Some("ANTWOORD"));
    assert_eq!(bericht.text_at("Afzender/Identificatie"), Some(SERVICE));
    assert_eq!(bericht.text_at("Afzender/Referte"), Some(SERVER_REFERTE));
    assert_eq!(
        bericht.text_at("Ontvanger/Identificatie"),
        Some("demo.kbi-advice")
    );
    assert_eq!(bericht.text_at("Ontvanger/Referte"), Some("req-0001"));
    assert_eq!(bericht.text_at("Ontvanger/Hoedanigheid"), Some("9999"));
    assert_eq!(
        response.caller,
        Some(Sender {
            identificatie: "demo.kbi-advice".into(),
            referte: "req-0001".into(),
            hoedanigheid: "9999".into(),
            gebruiker: Some("tester".into()),
        })
    );
}

#[test]
fn the_reply_time_is_brussels_time_in_magda_format() {
    let body = request(&[Q::date("q", "82030310494", "2023-01-01")]);
    let now =
        Utc.with_ymd_and_hms(2026, 7, 1, 22, 30, 5).unwrap() + chrono::Duration::milliseconds(42);
    let response = respond_at(body.as_bytes(), &call(), now);
    let repliek = repliek(&response.body);
    assert_eq!(
        repliek.text_at("Context/Bericht/Tijdstip/Datum"),
        Some("2026-07-02")
    );
    assert_eq!(
        repliek.text_at("Context/Bericht/Tijdstip/Tijd"),
        Some("00:30:05.042")
    );
}

#[test]
fn an_echoed_value_with_markup_is_escaped() {
    let context = CONTEXT.replace("req-0001", "a&amp;b&lt;c&gt;\"d'");
    let body = request_with(&context, &[Q::date("QREF", "82030310494", "2023-01-01")])
        .replace("QREF", "x&amp;<![CDATA[<y>]]>");
    let (_, repliek) = ask_reply(&body);
    assert_eq!(
        repliek.text_at("Context/Bericht/Ontvanger/Referte"),
        Some("a&b<c>\"d'")
    );
    assert_eq!(antwoorden(&repliek)[0].text_at("Referte"), Some("x&<y>"));
}

#[test]
fn more_questions_than_the_limit_is_30011_for_the_whole_request() {
    let questions: Vec<Q> = (0..1001)
        .map(|i| Q::date(&format!("q{i}"), "82030310494", "2023-01-01"))
        .collect();
    let (_, _, code) = request_uitzondering(&request(&questions));
    assert_eq!(code, "30011");
    // Exactly at the limit is fine.
    let (response, repliek) = ask_reply(&request(&questions[..1000]));
    assert_eq!(antwoorden(&repliek).len(), 1000);
    assert_eq!(response.questions.len(), 1000);
}

#[test]
fn without_a_snapshot_the_request_is_refused_with_30020() {
    let body = request(&[Q::date("q", "82030310494", "2023-01-01")]);
    let call = SoapCall {
        snapshot: None,
        ..call()
    };
    let response = respond(body.as_bytes(), &call);
    assert_eq!(response.http_status, 200);
    let repliek = repliek(&response.body);
    assert_eq!(
        repliek.text_at("Uitzonderingen/Uitzondering/Identificatie"),
        Some("30020")
    );
    assert!(repliek.child("Antwoorden").is_none());
}

#[test]
fn a_refusal_decided_between_parse_and_judge_answers_nothing() {
    // The server's door admits the caller between `parse` and `judge`; its refusal is rendered
    // with the caller echoed and without any answer.
    let body = request(&[Q::date("q", "82030310494", "2023-01-01")]);
    let envelope =
        kbi_wire::soap::parse(body.as_bytes(), limits(), None).expect("a valid envelope");
    assert_eq!(envelope.caller.identificatie, "demo.kbi-advice");
    assert_eq!(envelope.question_count, 1);
    let refused = Reply::refused(&envelope.caller, ErrorCode::NotAuthorised);
    assert!(refused.verdicts().is_empty());
    assert_eq!(refused.http_status(), 200);
    let repliek = repliek(&render(&refused, &call().responder(), Utc::now()));
    assert_eq!(
        repliek.text_at("Uitzonderingen/Uitzondering/Identificatie"),
        Some("30010")
    );
    assert!(repliek.child("Antwoorden").is_none());
    // Admitted, the same envelope is judged.
    assert_eq!(judge(&envelope, snapshot(), &Unbound).len(), 1);
}

#[test]
fn a_request_level_refusal_echoes_only_the_valid_caller_values() {
    let caller = Caller {
        identificatie: "demo.kbi-advice".into(),
        referte: "r".repeat(40).into(),
        hoedanigheid: "9999".into(),
        gebruiker: None,
    };
    let refused = Reply::refused(&caller, ErrorCode::AuditUnavailable);
    assert_eq!(refused.http_status(), 200);
    let repliek = repliek(&render(&refused, &call().responder(), Utc::now()));
    assert_eq!(
        repliek.text_at("Uitzonderingen/Uitzondering/Identificatie"),
        Some("30021")
    );
    let ontvanger = repliek.at("Context/Bericht/Ontvanger").unwrap();
    // A value the schema would not allow is left out rather than echoed.
    assert_eq!(ontvanger.names(), ["Identificatie", "Hoedanigheid"]);
}

// ---------------------------------------------------------------------------------------------
// Tolerated variations

#[test]
fn prefixes_default_namespaces_comments_headers_cdata_and_bom_are_tolerated() {
    let inner = CONTEXT.to_string()
        + "<Vragen><!-- one --><Vraag><Referte><![CDATA[q-1]]></Referte><Inhoud><Criteria>\n  <INSZ>\n 83040410690 </INSZ>\n<Referentiedatum>2023-01-01</Referentiedatum></Criteria></Inhoud></Vraag></Vragen>";
    let variants = vec![
        format!(
            "\u{FEFF}<?xml version='1.0' encoding='utf-8'?><!-- hi --><S:Envelope xmlns:S=\"{SOAP_NS}\"><S:Header><w:Security xmlns:w=\"urn:x\" S:mustUnderstand=\"0\"><w:T>t</w:T></w:Security></S:Header><S:Body><ns2:GeefAdviesInburgeringsplicht xmlns:ns2=\"{TARGET_NS}\"><Verzoek>{inner}</Verzoek></ns2:GeefAdviesInburgeringsplicht></S:Body></S:Envelope>"
        ),
        format!(
            "<Envelope xmlns=\"{SOAP_NS}\"><Body><GeefAdviesInburgeringsplicht xmlns=\"{TARGET_NS}\"><Verzoek xmlns=\"\">{inner}</Verzoek></GeefAdviesInburgeringsplicht></Body></Envelope>"
        ),
        format!(
            "<soap:Envelope xmlns:soap=\"{SOAP_NS}\">\n\t<soap:Body>\n\t\t<g:GeefAdviesInburgeringsplicht xmlns:g=\"{TARGET_NS}\">\n<Verzoek>\n{inner}\n</Verzoek>\n</g:GeefAdviesInburgeringsplicht>\n</soap:Body>\n</soap:Envelope>\n\n<!-- trailing comment -->\n"
        ),
    ];
    for body in variants {
        let (_, repliek) = ask_reply(&body);
        let answers = antwoorden(&repliek);
        assert_eq!(answers[0].text_at("Referte"), Some("q-1"));
        assert_eq!(answers[0].text_at("Inhoud/Advies/Resultaat"), Some("NOK"));
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile and broken input: a Fault each

#[test]
fn hostile_and_broken_bodies_each_get_a_fault_that_echoes_nothing() {
    for (name, body, expected_text, expected_code) in hostile_cases() {
        let response = respond(&body, &call());
        assert_eq!(
            response.http_status,
            500,
            "{name}: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert!(response.questions.is_empty(), "{name}");
        assert!(response.caller.is_none(), "{name}");
        let (faultcode, faultstring) = fault(&response.body);
        assert_eq!(faultcode, expected_code, "{name}: {faultstring}");
        assert!(
            faultstring.contains(expected_text),
            "{name}: {faultstring:?} should say {expected_text:?}"
        );
        for secret in [
            "83040410690",
            "q-1",
            "lol",
            "passwd",
            "req-0001",
            "demo.kbi",
        ] {
            assert!(
                !faultstring.contains(secret),
                "{name}: fault echoes request data"
            );
        }
        assert!(faultstring.len() < 200, "{name}: keep fault strings short");
    }
}

#[test]
fn the_depth_and_element_limits_come_from_the_call() {
    let tight = XmlLimits {
        max_depth: 8,
        max_elements: 1000,
        max_questions: 1000,
        ..XmlLimits::default()
    };
    let call = SoapCall {
        limits: &tight,
        ..call()
    };
    // The valid request nests 9 deep (Envelope … INSZ) and has more than 20 elements.
    let (_, faultstring) = fault(&respond(valid().as_bytes(), &call).body);
    assert!(faultstring.contains("deeper than 8"), "{faultstring}");
    let roomy = XmlLimits {
        max_depth: 9,
        max_elements: 20,
        max_questions: 1000,
        ..XmlLimits::default()
    };
    let call = SoapCall {
        limits: &roomy,
        ..call
    };
    let (_, faultstring) = fault(&respond(valid().as_bytes(), &call).body);
    assert!(
        faultstring.contains("more than 20 elements"),
        "{faultstring}"
    );
}

// ---------------------------------------------------------------------------------------------
// Schema validity (xmllint; installed by scripts/setup/xmllint.sh)

#[test]
fn sample_request_and_every_kind_of_reply_validate_against_the_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let schema = envelope_schema(dir.path());
    let mut files = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    };

    let sample = request(&[
        Q::date("q-1", "83040410690", "2023-01-01"),
        Q::year("q-2", "82030310494", "2024"),
    ]);
    write("request.xml", sample.as_bytes());

    // Every public case, as one reply.
    let rows = public_rows();
    let questions: Vec<Q> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Q::date(&format!("row-{i}"), &r.insz, &r.date))
        .collect();
    let mut replies = vec![ask(&request(&questions))];
    // Every reason code in a NOK answer and question-level errors of every kind.
    replies.push(ask(&request(&[
        Q::date("a", "87080811474", "2022-07-02"),
        Q::date("b", "89101011866", "2022-06-01"),
        Q::date("c", "90111112062", "2021-10-01"),
        Q::date("d", "94031512859", "2025-01-01"),
        Q {
            referte: None,
            ..Q::date("", "82030310494", "2023-01-01")
        },
        Q::date(&"x".repeat(50), "82030310494", "2023-01-01"),
        Q::date("e", "x", "2023-01-01"),
    ])));
    // Request-level Uitzonderingen, with values that must not be echoed.
    replies.push(ask(&request_with(
        &CONTEXT
            .replace("req-0001", &"r".repeat(40))
            .replace("9999", ""),
        &[Q::date("q", "82030310494", "2023-01-01")],
    )));
    replies.push(ask(&request_with(
        &CONTEXT.replace("01.00.0000", "9"),
        &[Q::date("q", "82030310494", "2023-01-01")],
    )));
    replies.push(respond(
        sample.as_bytes(),
        &SoapCall {
            snapshot: None,
            ..call()
        },
    ));
    // A server passing empty identifiers still gets a valid reply.
    replies.push(respond(
        sample.as_bytes(),
        &SoapCall {
            server_referte: "",
            service_identificatie: "",
            ..call()
        },
    ));
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.http_status, 200);
        write(&format!("reply-{i}.xml"), &reply.body);
    }
    validate(&schema, &files).unwrap();

    // And the check itself can fail: a reply with an element out of order does not validate.
    let broken = String::from_utf8(replies[0].body.clone())
        .unwrap()
        .replacen("<Naam>", "<Versie>01.00.0000</Versie><Naam>", 1);
    let broken_path = dir.path().join("broken.xml");
    std::fs::write(&broken_path, broken).unwrap();
    assert!(validate(&schema, &[broken_path]).is_err());
}

#[test]
fn the_served_wsdl_is_well_formed_and_its_inlined_schema_is_a_valid_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let wsdl = wsdl_document("http://127.0.0.1:8080/soap/GeefAdviesInburgeringsplicht-01.00");
    let wsdl_path = dir.path().join("served.wsdl");
    std::fs::write(&wsdl_path, &wsdl).unwrap();
    let status = std::process::Command::new(xmllint())
        .arg("--noout")
        .arg(&wsdl_path)
        .status()
        .unwrap();
    assert!(status.success(), "served WSDL is not well-formed");
    // Cut the inlined schema out and use it as a schema: xmllint refuses an invalid XSD.
    let start = wsdl.find("<xs:schema").expect("schema inlined");
    let end = wsdl.find("</xs:schema>").expect("schema inlined") + "</xs:schema>".len();
    let xsd_path = dir.path().join("inlined.xsd");
    std::fs::write(&xsd_path, &wsdl[start..end]).unwrap();
    let sample = dir.path().join("wrapper.xml");
    std::fs::write(
        &sample,
        format!(
            "<g:GeefAdviesInburgeringsplicht xmlns:g=\"{TARGET_NS}\"><Verzoek>{CONTEXT}<Vragen><Vraag><Referte>q</Referte><Inhoud><Criteria><INSZ>83040410690</INSZ><Premiejaar>2024</Premiejaar></Criteria></Inhoud></Vraag></Vragen></Verzoek></g:GeefAdviesInburgeringsplicht>"
        ),
    )
    .unwrap();
    validate(&xsd_path, &[sample]).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Never a panic, always a Fault or a well-formed reply

fn check_any(body: &[u8]) -> Result<(), TestCaseError> {
    let response = respond(body, &call());
    prop_assert!(
        response.http_status == 200 || response.http_status == 500,
        "status {}",
        response.http_status
    );
    prop_assert!(well_formed(&response.body), "reply is not well-formed XML");
    if response.http_status == 200 {
        let repliek = repliek(&response.body);
        let answered = repliek
            .at("Antwoorden")
            .map_or(0, |a| a.all("Antwoord").count());
        prop_assert_eq!(answered, response.questions.len());
    } else {
        let (code, _) = fault(&response.body);
        prop_assert!(code.starts_with("soap:"));
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, &'static str),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let snippets = prop::sample::select(vec![
        "<",
        ">",
        "&",
        "&amp;",
        "&#0;",
        "&#x1F600;",
        "]]>",
        "<![CDATA[",
        "<!DOCTYPE x>",
        "<!--",
        "-->",
        "</Vraag>",
        "<Vraag>",
        "<Criteria>",
        "</Criteria>",
        "<INSZ>1</INSZ>",
        "xmlns=\"urn:x\"",
        "\u{0}",
        "\u{FFFF}",
        "é",
        "\"",
        "<?pi?>",
        "<Referte/>",
        "</soapenv:Body>",
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip(at, byte)),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), snippets).prop_map(|(at, s)| Mutation::Insert(at, s)),
        (any::<usize>(), 1usize..200).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
    ]
}

fn apply(mut body: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = body.len().max(1);
        match *m {
            Mutation::Flip(at, byte) => {
                if !body.is_empty() {
                    let at = at % body.len();
                    body[at] = byte;
                }
            }
            Mutation::Delete(at, len) => {
                let at = at % n;
                let end = (at + len).min(body.len());
                if at < end {
                    body.drain(at..end);
                }
            }
            Mutation::Insert(at, snippet) => {
                let at = (at % n).min(body.len());
                body.splice(at..at, snippet.bytes());
            }
            Mutation::Duplicate(at, len) => {
                let at = at % n;
                let end = (at + len).min(body.len());
                if at < end {
                    let piece = body[at..end].to_vec();
                    body.splice(end..end, piece);
                }
            }
        }
    }
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_any(&body)?;
    }

    #[test]
    fn random_text_starting_like_xml_never_panics(tail in "[<>&;a-zA-Z:=\"/ !\\-\\[\\]?#0-9]{0,400}") {
        check_any(format!("<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"{SOAP_NS}\">{tail}").as_bytes())?;
    }

    #[test]
    fn mutated_valid_requests_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        let body = apply(request(&[
            Q::date("q-1", "83040410690", "2023-01-01"),
            Q::year("q-2", "82030310494", "2024"),
        ]).into_bytes(), &mutations);
        check_any(&body)?;
    }
}

/// The public snapshot, loaded anew (its own allocation), under `snapshot_id`.
fn snapshot_named(snapshot_id: &str) -> Arc<CompiledSnapshot> {
    let mut snapshot = load_path(
        &public_snapshot_path(),
        Arc::new(RuleSet::shipped()),
        &Silent,
    )
    .expect("public snapshot loads");
    snapshot.meta.snapshot_id = snapshot_id.to_owned();
    Arc::new(snapshot)
}

/// The door's `Bron` is encoded once per snapshot (`soap_door::SourceCache`): the same shared
/// encoding for every answer from one snapshot, the same bytes as encoding it per reply, and a
/// new snapshot's own `Bron` after a reload — also when the old snapshot is gone and the new
/// one could have been allocated where it was.
#[test]
fn the_doors_bron_is_encoded_once_per_snapshot_and_follows_a_reload() {
    use kbi_advice::service::soap_door::SourceCache;
    use kbi_wire::soap::Source;

    let cache = SourceCache::default();
    let first = snapshot_named("first");
    let a = cache.of(&first);
    let b = cache.of(&first);
    assert!(Arc::ptr_eq(&a, &b), "encoded again for the same snapshot");
    assert_eq!(*a, Source::of(&first));

    let second = snapshot_named("second");
    let c = cache.of(&second);
    assert_eq!(*c, Source::of(&second));
    assert_ne!(*c, *a, "the old snapshot's Bron after a reload");

    drop((first, a, b));
    let third = snapshot_named("third");
    assert_eq!(*cache.of(&third), Source::of(&third));
    assert_eq!(*cache.of(&second), Source::of(&second));
}
