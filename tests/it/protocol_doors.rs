//! `protocols.md` section 2 through the real binary: every question is asked under its caller's
//! protocol; a question the protocol does not cover on that day is refused with 30005 (SOAP
//! Uitzondering per question, REST 403 problem+json, per question in a batch), in the order of
//! checks of section 2; a reload (POST /admin/snapshot/reload, SIGHUP) reloads protocols and
//! clients, and an invalid file keeps the ones in use. No INSZ in any refusal, log or metric.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::server::{find_insz, refused_start, start_with, Server};
use crate::support::{parse_xml, request_with, Q};
use serde_json::Value;

const SOAP_PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";
/// NOK on 2026-01-01 in the demo snapshot (README table).
const NOK: &str = "90011510383";
/// OK on 2026-01-01.
const OK: &str = "90011510185";

/// A protocol like agii-vsb whose `care-budget` purpose ended yesterday (`ended` = true).
fn ended_protocol(ended: bool) -> String {
    let yesterday = chrono::Local::now().date_naive() - chrono::Duration::days(1);
    let ended = if ended {
        format!(
            "ended = {{ on = {yesterday}, reason = \"Grondwettelijk Hof, arrest 112/2023\" }}\n"
        )
    } else {
        String::new()
    };
    format!(
        r#"id = "vsb-test"
title = "VSB test protocol"
sender = "Agentschap Integratie en Inburgering"
recipient = "VSB"
legal_basis = ["a decree"]
term = {{ from = 2021-10-01 }}

[[questions]]
purpose = "care-budget"
asks = "date"
reference_dates = {{ from = 2022-01-01 }}
{ended}
[[questions]]
purpose = "reduced-premium"
asks = "premium_year"
premium_years = {{ from = 2022 }}
"#
    )
}

const REGISTRY: &str = r#"
[[client]]
id = "demo"
afzenders = ["demo.kbi-advice"]
hoedanigheden = ["9999"]
operations = ["single", "batch"]
protocol = "demo"

[[client]]
id = "vsb"
afzenders = ["vsb.test"]
hoedanigheden = ["9999"]
operations = ["single", "batch"]
protocol = "vsb-test"

[[client]]
id = "premie"
afzenders = ["premie.test"]
hoedanigheden = ["9999"]
operations = ["single", "batch"]
protocol = "agii-vsb"
purposes = ["reduced-premium"]
"#;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(ended: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("protocols")).unwrap();
        for name in ["demo.toml", "agii-vsb.toml"] {
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("config/protocols")
                    .join(name),
                dir.path().join("protocols").join(name),
            )
            .unwrap();
        }
        let setup = Setup { dir };
        setup.write_vsb(ended);
        std::fs::write(setup.registry(), REGISTRY).unwrap();
        setup
    }

    fn protocols(&self) -> PathBuf {
        self.dir.path().join("protocols")
    }

    fn registry(&self) -> PathBuf {
        self.dir.path().join("clients.toml")
    }

    fn write_vsb(&self, ended: bool) {
        std::fs::write(
            self.protocols().join("vsb-test.toml"),
            ended_protocol(ended),
        )
        .unwrap();
    }

    fn start(&self) -> Server {
        let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo-snapshot.jsonl");
        start_with(
            &snapshot,
            &[],
            &[
                (
                    "KBI_ADVICE__PROTOCOLS__DIR",
                    self.protocols().to_str().unwrap(),
                ),
                (
                    "KBI_ADVICE__CLIENTS__REGISTRY",
                    self.registry().to_str().unwrap(),
                ),
            ],
        )
    }
}

fn get(server: &Server, client: &str, path: &str) -> (u16, Value) {
    let response = reqwest::blocking::Client::new()
        .get(server.url(path))
        .header("x-client-id", client)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    assert!(
        find_insz(&text).is_none() || status == 200,
        "an INSZ in a refusal: {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

fn batch(server: &Server, client: &str, questions: Value) -> Value {
    let response = reqwest::blocking::Client::new()
        .post(server.url("/v1/integration-obligation:batch"))
        .header("x-client-id", client)
        .json(&serde_json::json!({ "questions": questions }))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().unwrap()
}

fn context(afzender: &str) -> String {
    crate::support::CONTEXT.replace("demo.kbi-advice", afzender)
}

/// The `(code, Diagnose)` of each `Antwoord`, `None` for an answer with `Advies`.
fn soap(server: &Server, afzender: &str, questions: &[Q]) -> Vec<Option<(String, String)>> {
    let body = request_with(&context(afzender), questions);
    let response = reqwest::blocking::Client::new()
        .post(server.url(SOAP_PATH))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().unwrap();
    let reply = parse_xml(text.as_bytes());
    let mut out = Vec::new();
    collect_answers(&reply, &mut out);
    for (_, diagnose) in out.iter().flatten() {
        assert!(
            find_insz(diagnose).is_none(),
            "an INSZ in a Diagnose: {diagnose}"
        );
    }
    out
}

fn collect_answers(el: &crate::support::El, out: &mut Vec<Option<(String, String)>>) {
    for child in &el.children {
        if child.name == "Antwoord" {
            out.push(child.child("Uitzonderingen").map(|u| {
                (
                    u.text_at("Uitzondering/Identificatie")
                        .unwrap_or("")
                        .to_owned(),
                    u.text_at("Uitzondering/Diagnose").unwrap_or("").to_owned(),
                )
            }));
        } else {
            collect_answers(child, out);
        }
    }
}

fn reload(server: &Server) -> Value {
    reqwest::blocking::Client::new()
        .post(server.ops_url("/admin/snapshot/reload"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn allowed_under_demo_refused_after_an_ended_purpose_allowed_again_after_a_reload() {
    let setup = Setup::new(true);
    let server = setup.start();
    let question = format!("/v1/integration-obligation/{NOK}?date=2026-01-01");

    // The demo protocol allows it.
    let (status, body) = get(&server, "demo", &question);
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("NOK")),
        "{body}"
    );

    // The same question under a protocol whose purpose ended yesterday: 30005, 403.
    let (status, body) = get(&server, "vsb", &question);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "30005");
    let detail = body["detail"].as_str().unwrap();
    for part in ["vsb-test", "care-budget", "ended", "112/2023"] {
        assert!(detail.contains(part), "detail names {part}: {detail}");
    }
    // SOAP: a per-question Uitzondering 30005 whose Diagnose names protocol and purpose.
    let answers = soap(&server, "vsb.test", &[Q::date("q1", NOK, "2026-01-01")]);
    let (code, diagnose) = answers[0].clone().expect("an Uitzondering");
    assert_eq!(code, "30005");
    assert!(
        diagnose.contains("vsb-test") && diagnose.contains("care-budget"),
        "{diagnose}"
    );
    assert!(diagnose.contains("112/2023"), "{diagnose}");

    // The other purpose of the same protocol is not ended.
    let (status, _) = get(
        &server,
        "vsb",
        &format!("/v1/integration-obligation/{OK}?premium_year=2027"),
    );
    assert_eq!(status, 200);

    // Remove the `ended` and reload: answered again, within one reload.
    setup.write_vsb(false);
    let reloaded = reload(&server);
    assert_eq!(reloaded["config"]["status"], "loaded", "{reloaded}");
    let (status, body) = get(&server, "vsb", &question);
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("NOK")),
        "{body}"
    );

    // And back, by SIGHUP this time.
    setup.write_vsb(true);
    // SAFETY: kill(2) on the child we started.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = get(&server, "vsb", &question);
        if status == 403 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the protocols"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.metric("kbi_config_reloads_total{outcome=\"ok\"}") >= 2.0);
    assert!(server.metric("kbi_errors_total{code=\"30005\"}") >= 3.0);
    let metrics = reqwest::blocking::get(server.ops_url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(find_insz(&metrics).is_none(), "an INSZ in /metrics");
    assert!(
        metrics.contains(
            "kbi_questions_total{purpose=\"care-budget\",reason=\"none\",result=\"ERROR\"}"
        ),
        "questions counted by purpose"
    );
    // The demo client keeps its answers throughout.
    let (status, _) = get(&server, "demo", &question);
    assert_eq!(status, 200);
}

#[test]
fn a_client_limited_to_reduced_premium_gets_30005_for_a_date_and_an_answer_for_a_premium_year() {
    let setup = Setup::new(false);
    let server = setup.start();
    let (status, body) = get(
        &server,
        "premie",
        &format!("/v1/integration-obligation/{NOK}?date=2026-01-01"),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("30005")),
        "{body}"
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("care-budget") && detail.contains("agii-vsb"),
        "{detail}"
    );
    assert!(detail.contains("not allowed to this client"), "{detail}");
    let (status, body) = get(
        &server,
        "premie",
        &format!("/v1/integration-obligation/{NOK}?premium_year=2027"),
    );
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("NOK")),
        "{body}"
    );

    // A batch mixing both answers each question on its own.
    let answers = batch(
        &server,
        "premie",
        serde_json::json!([
            {"insz": NOK, "premium_year": "2027"},
            {"insz": NOK, "date": "2026-01-01"},
            {"insz": OK, "premium_year": "2027"},
            {"insz": "12345678901", "date": "2026-01-01"},
        ]),
    );
    let answers = answers["answers"].as_array().unwrap();
    assert_eq!(answers[0]["result"], "NOK");
    assert_eq!(answers[1]["error"]["code"], "30005");
    assert_eq!(answers[1]["error"]["status"], 403);
    assert_eq!(answers[2]["result"], "OK");
    // An invalid INSZ is 30001 before the protocol is asked (section 2's order).
    assert_eq!(answers[3]["error"]["code"], "30001");

    // SOAP: the same, one Uitzondering for the date question only.
    let answers = soap(
        &server,
        "premie.test",
        &[Q::year("a", NOK, "2027"), Q::date("b", NOK, "2026-01-01")],
    );
    assert!(answers[0].is_none(), "{answers:?}");
    assert_eq!(answers[1].as_ref().unwrap().0, "30005");
}

#[test]
fn the_order_of_checks_is_30001_30002_30005_30003() {
    let setup = Setup::new(true);
    let server = setup.start();
    // A malformed date is 30002 even under an ended purpose.
    let (_, body) = get(
        &server,
        "vsb",
        &format!("/v1/integration-obligation/{NOK}?date=2026-13-01"),
    );
    assert_eq!(body["code"], "30002", "{body}");
    // A date after the snapshot's extraction (30003) under an ended purpose: 30005 first.
    let (_, body) = get(
        &server,
        "vsb",
        &format!("/v1/integration-obligation/{NOK}?date=2099-01-01"),
    );
    assert_eq!(body["code"], "30005", "{body}");
    // A reference date before the purpose's window: 30005 naming the window.
    let (_, body) = get(
        &server,
        "premie",
        &format!("/v1/integration-obligation/{NOK}?premium_year=2021"),
    );
    assert_eq!(body["code"], "30005", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("premium years from 2022"),
        "{body}"
    );
    // Under demo the same late date is the snapshot's own 30003.
    let (_, body) = get(
        &server,
        "demo",
        &format!("/v1/integration-obligation/{NOK}?date=2099-01-01"),
    );
    assert_eq!(body["code"], "30003", "{body}");
}

#[test]
fn an_invalid_protocol_file_on_reload_keeps_the_protocols_in_use() {
    let setup = Setup::new(false);
    let server = setup.start();
    std::fs::write(
        setup.protocols().join("broken.toml"),
        ended_protocol(false).replace("term = {", "terms = {"),
    )
    .unwrap();
    let reloaded = reload(&server);
    assert_eq!(reloaded["config"]["status"], "refused", "{reloaded}");
    assert!(
        reloaded["config"]["error"]
            .as_str()
            .unwrap()
            .contains("broken.toml"),
        "{reloaded}"
    );
    assert_eq!(
        server.metric("kbi_config_reloads_total{outcome=\"refused\"}"),
        1.0
    );
    // Readiness is about snapshots.
    let ready = reqwest::blocking::get(server.ops_url("/health/ready")).unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let (status, _) = get(
        &server,
        "vsb",
        &format!("/v1/integration-obligation/{NOK}?date=2026-01-01"),
    );
    assert_eq!(status, 200);
    assert!(
        server.log().contains("the ones in use stay"),
        "{}",
        server.log()
    );

    // A registry naming an unknown protocol on reload: refused too, clients kept.
    std::fs::remove_file(setup.protocols().join("broken.toml")).unwrap();
    std::fs::write(
        setup.registry(),
        REGISTRY.replace("\"vsb-test\"", "\"nope\""),
    )
    .unwrap();
    let reloaded = reload(&server);
    assert_eq!(reloaded["config"]["status"], "refused", "{reloaded}");
    let (status, _) = get(
        &server,
        "vsb",
        &format!("/v1/integration-obligation/{NOK}?date=2026-01-01"),
    );
    assert_eq!(status, 200);

    // A registry that adds a client on reload: the new client is served (clients are reloaded).
    std::fs::write(
        setup.registry(),
        format!(
            "{REGISTRY}\n[[client]]\nid = \"late\"\nafzenders = [\"late.test\"]\n\
             hoedanigheden = [\"9999\"]\noperations = [\"single\"]\nprotocol = \"demo\"\n"
        ),
    )
    .unwrap();
    let (status, _) = get(
        &server,
        "late",
        &format!("/v1/integration-obligation/{NOK}?date=2026-01-01"),
    );
    assert_eq!(status, 401, "not yet known");
    assert_eq!(reload(&server)["config"]["status"], "loaded");
    let (status, _) = get(
        &server,
        "late",
        &format!("/v1/integration-obligation/{NOK}?date=2026-01-01"),
    );
    assert_eq!(status, 200);
}

#[test]
fn start_up_refuses_unknown_protocols_purposes_and_a_registry_without_protocol() {
    let setup = Setup::new(false);
    let dir = tempfile::tempdir().unwrap();
    let protocols = setup.protocols();
    let cases = [
        (
            REGISTRY.replace("\"vsb-test\"", "\"nope\""),
            "protocol `nope`",
        ),
        (
            REGISTRY.replace(
                "purposes = [\"reduced-premium\"]",
                "purposes = [\"research\"]",
            ),
            "purpose `research`",
        ),
        (
            REGISTRY.replace("protocol = \"vsb-test\"\n", ""),
            "docs/protocols.md",
        ),
    ];
    for (registry, expected) in cases {
        let path = dir.path().join("clients.toml");
        std::fs::write(&path, registry).unwrap();
        let output = refused_start(
            dir.path(),
            &[],
            &[
                ("KBI_ADVICE__PROTOCOLS__DIR", protocols.to_str().unwrap()),
                ("KBI_ADVICE__CLIENTS__REGISTRY", path.to_str().unwrap()),
            ],
            Duration::from_secs(30),
        );
        assert!(output.contains(expected), "{expected}: {output}");
        assert!(
            output.contains("vsb") || output.contains("premie"),
            "names the client: {output}"
        );
    }
}
