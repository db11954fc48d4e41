//! An error never quotes a value from its input (issue 14, failure 6): an INSZ planted in every
//! place a parser can complain about — snapshot lines and header (through a real reload),
//! rules.toml, clients.toml, the service's settings (environment and configuration file), the
//! REST batch body and a SOAP body — appears in no error body and no log line. Every server
//! started here also has its whole debug-level output scraped for an INSZ when it stops
//! (`crate::support::server::Server`'s `Drop`).

use std::path::Path;
use std::time::Duration;

use crate::support::server::{find_insz, start, Server};

/// A valid INSZ (check digits right) that is in the demo snapshot.
const INSZ: &str = "90011510383";

fn assert_clean(text: &str, what: &str) {
    assert!(
        !text.contains(INSZ) && find_insz(text).is_none(),
        "{what}: an INSZ in the error:\n{text}"
    );
}

fn reload(server: &Server) -> (u16, String) {
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .post(server.ops_url("/admin/snapshot/reload"))
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn header(format: &str, extracted_at: &str, persons: &str) -> String {
    format!(
        r#"{{"kbi_snapshot": {{"format": {format}, "snapshot_id": "t", "extracted_at": {extracted_at}, "persons": {persons}}}}}"#
    )
}

#[test]
fn snapshot_errors_in_the_reload_answer_and_the_log_never_quote_an_insz() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    crate::support::write_demo_snapshot_as(&path, "old");
    let server = start(&path);
    let good = header("1", r#""2026-11-01T02:00:00Z""#, "1");
    let person = |event: &str| format!(r#"{{"insz": "80010110005", "events": [{event}]}}"#);
    let cases: Vec<(&str, String)> = vec![
        (
            "insz as a number",
            format!("{good}\n{{\"insz\": {INSZ}, \"events\": []}}\n"),
        ),
        (
            "insz with a bad check",
            format!(
                "{good}\n{{\"insz\": \"{}\", \"events\": []}}\n",
                &INSZ[..10]
            ),
        ),
        (
            "insz as the date",
            format!(
                "{good}\n{}\n",
                person(&format!(r#"{{"date": "{INSZ}", "type": "REGISTRATION"}}"#))
            ),
        ),
        (
            "insz as a date number",
            format!(
                "{good}\n{}\n",
                person(&format!(r#"{{"date": {INSZ}, "type": "REGISTRATION"}}"#))
            ),
        ),
        (
            "insz as the type",
            format!(
                "{good}\n{}\n",
                person(&format!(r#"{{"date": "2024-01-01", "type": "{INSZ}"}}"#))
            ),
        ),
        (
            "insz as the region",
            format!(
                "{good}\n{}\n",
                person(&format!(
                    r#"{{"date": "2024-01-01", "type": "OBLIGATION_START", "region": "{INSZ}"}}"#
                ))
            ),
        ),
        (
            "insz as the cause",
            format!(
                "{good}\n{}\n",
                person(&format!(
                    r#"{{"date": "2024-01-01", "type": "EXEMPTION", "cause": "{INSZ}"}}"#
                ))
            ),
        ),
        (
            "insz as the obligation",
            format!(
                "{good}\n{}\n",
                person(&format!(
                    r#"{{"date": "2024-01-01", "type": "INFRINGEMENT", "obligation": "{INSZ}"}}"#
                ))
            ),
        ),
        (
            "insz as until",
            format!(
                "{good}\n{}\n",
                person(&format!(
                    r#"{{"date": "2024-01-01", "type": "DEADLINE_EXTENSION", "obligation": "REGISTRATION", "until": "{INSZ}"}}"#
                ))
            ),
        ),
        (
            "insz as a key with a broken value",
            format!("{good}\n{{\"insz\": \"80010110005\", \"{INSZ}\": [}}\n"),
        ),
        (
            "insz as the format",
            format!("{}\n", header(INSZ, r#""2026-11-01T02:00:00Z""#, "0")),
        ),
        (
            "insz as extracted_at",
            format!("{}\n", header("1", &format!("\"{INSZ}\""), "0")),
        ),
        (
            "insz as extracted_at number",
            format!("{}\n", header("1", INSZ, "0")),
        ),
        (
            "insz in a too large person count",
            format!(
                "{}\n",
                header("1", r#""2026-11-01T02:00:00Z""#, &format!("{INSZ}0"))
            ),
        ),
        (
            "insz as the person count (more lines declared)",
            format!("{}\n", header("1", r#""2026-11-01T02:00:00Z""#, "90011510"))
                .replace("90011510", INSZ),
        ),
    ];
    for (what, text) in cases {
        std::fs::write(&path, text).unwrap();
        let (status, body) = reload(&server);
        assert_eq!(status, 422, "{what}: {body}");
        assert!(body.contains("line "), "{what}: {body}");
        assert_clean(&body, what);
    }
    // The log is scraped for an INSZ when `server` drops; the refusals were logged at warn.
    assert!(server.log().contains("snapshot not loaded"));
}

/// Runs `kbi-advice serve` expecting it to refuse to start; its output.
fn refused_start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    crate::support::server::refused_start(dir, args, envs, Duration::from_secs(30))
}

#[test]
fn rules_clients_and_settings_errors_never_quote_an_insz() {
    let dir = tempfile::tempdir().unwrap();
    let shipped_rules = std::fs::read_to_string("config/rules.toml").unwrap();
    let rules_cases = [
        (
            "max_days as a string",
            shipped_rules.replace(
                "max_days_after_extract = 31",
                &format!("max_days_after_extract = \"{INSZ}\""),
            ),
        ),
        (
            "region",
            shipped_rules.replacen("region = \"VL\"", &format!("region = \"{INSZ}\""), 1),
        ),
        (
            "valid_from",
            shipped_rules.replacen(
                "valid_from = \"2014-01-01\"",
                &format!("valid_from = \"{INSZ}\""),
                1,
            ),
        ),
        (
            "duplicate ids",
            shipped_rules
                .replace("id = \"VL-2014\"", &format!("id = \"{INSZ}\""))
                .replace("id = \"VL-2022\"", &format!("id = \"{INSZ}\"")),
        ),
        (
            "overlapping regimes",
            shipped_rules
                .replace("id = \"VL-2014\"", &format!("id = \"{INSZ}\""))
                .replace(
                    "valid_until = \"2022-02-28\"",
                    "valid_until = \"2023-02-28\"",
                ),
        ),
        ("an unknown key", format!("{shipped_rules}\n{INSZ} = 1\n")),
        ("broken syntax", format!("{shipped_rules}\nx = [{INSZ}\n")),
    ];
    for (what, text) in rules_cases {
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap();
        let error = refused_start(dir.path(), &[], &[("KBI_ADVICE__SNAPSHOT__RULES", path)]);
        assert!(error.contains("rules"), "{what}: {error}");
        assert_clean(&error, &format!("rules.toml, {what}"));
    }

    let shipped_clients = std::fs::read_to_string("config/clients.toml").unwrap();
    let clients_cases = [
        (
            "id",
            shipped_clients.replace("id = \"demo\"", &format!("id = \"{INSZ} x\"")),
        ),
        (
            "duplicate id",
            format!(
                "{}\n{}",
                shipped_clients.replace("id = \"demo\"", &format!("id = \"{INSZ}\"")),
                shipped_clients
                    .replace("id = \"demo\"", &format!("id = \"{INSZ}\""))
                    .replace("demo.kbi-advice", "other")
            ),
        ),
        (
            "hoedanigheid as a number",
            shipped_clients.replace("[\"9999\"]", &format!("[{INSZ}]")),
        ),
        (
            "operation",
            shipped_clients.replace("\"batch\"]", &format!("\"{INSZ}\"]")),
        ),
        (
            "certificate subject",
            shipped_clients.replace(
                "operations =",
                &format!("certificate_subjects = [\"X{INSZ}=x\", \"{INSZ}=\"]\noperations ="),
            ),
        ),
    ];
    for (what, text) in clients_cases {
        let path = dir.path().join("clients.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap();
        let error = refused_start(dir.path(), &[], &[("KBI_ADVICE__CLIENTS__REGISTRY", path)]);
        assert!(error.contains("client"), "{what}: {error}");
        assert_clean(&error, &format!("clients.toml, {what}"));
    }

    let settings_cases: [(&str, &str); 4] = [
        ("KBI_ADVICE__SERVER__WORKERS", "x90011510383"),
        ("KBI_ADVICE__SNAPSHOT__MAX_LINE_BYTES", "-90011510383"),
        ("KBI_ADVICE__SNAPSHOT__MAX_AGE_SECONDS", "90011510383 s"),
        ("KBI_ADVICE__LOG__FORMAT", INSZ),
    ];
    for (name, value) in settings_cases {
        let error = refused_start(dir.path(), &[], &[(name, value)]);
        assert_clean(&error, name);
    }
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("[server]\nworkers = [{INSZ}\n")).unwrap();
    let error = refused_start(dir.path(), &["--config", config.to_str().unwrap()], &[]);
    assert!(error.contains("line 3, column"), "{error}");
    assert_clean(&error, "configuration file syntax");
    std::fs::write(&config, format!("[server]\nworkers = \"{INSZ}\"\n")).unwrap();
    let error = refused_start(dir.path(), &["--config", config.to_str().unwrap()], &[]);
    assert!(error.contains("server.workers"), "{error}");
    assert_clean(&error, "configuration file type");
}

#[test]
fn rest_and_soap_refusals_never_quote_an_insz() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    crate::support::write_demo_snapshot_as(&path, "demo");
    let server = start(&path);
    let client = crate::support::http();
    for body in [
        format!(r#"{{"questions": {INSZ}}}"#),
        format!(r#"{{"questions": [{{"insz": "{INSZ}"}}], {INSZ}}}"#),
        format!(r#"{{"questions": ["{INSZ}"]}}"#),
        format!(r#"{{"questions": [{{"insz": "{INSZ}", "date": "2026-01-01"}}]"#),
        format!(r#"[{INSZ}]"#),
    ] {
        let response = client
            .post(server.url("/v1/integration-obligation:batch"))
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        assert!(status >= 400, "{body}: {status} {text}");
        assert_clean(&text, &body);
    }
    let valid = crate::support::valid();
    for body in [
        format!("<{INSZ}/>"),
        valid.replace(
            "</soapenv:Envelope>",
            &format!("<x{INSZ}/></soapenv:Envelope>"),
        ),
        valid.replace("<Vragen>", &format!("<Vragen><a{INSZ}>")),
        valid.replace("<Vragen>", &format!("<Vragen>&e{INSZ};")),
    ] {
        let response = client
            .post(server.url("/soap/GeefAdviesInburgeringsplicht-01.00"))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body.clone())
            .send()
            .unwrap();
        let text = response.text().unwrap();
        assert!(text.contains("Fault"), "{body}: {text}");
        assert_clean(&text, &body);
    }
}

/// Protocol files (`docs/protocols.md`): an INSZ planted in the values a loader refuses appears
/// neither in `protocol check` nor in a refused start; the refusal names the key's path.
#[test]
fn protocol_file_errors_never_quote_an_insz() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string("config/protocols/agii-vsb.toml").unwrap();
    let cases = [
        (
            "a date of the wrong type",
            shipped.replace(
                "term = { from = 2021-10-01 }",
                &format!("term = {{ from = {INSZ} }}"),
            ),
            "term.from",
        ),
        (
            "a population filter",
            shipped.replace(
                "population = [\"answer-nok\"]",
                &format!("population = [\"contract-since:{INSZ}\"]"),
            ),
            "files[0].population[0]",
        ),
        (
            "a field",
            shipped.replace(
                "fields = [\"insz\"]",
                &format!("fields = [\"insz\", \"{INSZ}\"]"),
            ),
            "files[0].fields[1]",
        ),
        (
            "an unknown key with the value",
            shipped.replace(
                "retention_years = 5",
                &format!("retention_years = 5\nnote = \"{INSZ}\""),
            ),
            "note",
        ),
        (
            "a premium year",
            shipped.replace(
                "premium_years = { from = 2022 }",
                &format!("premium_years = {{ from = {INSZ} }}"),
            ),
            "premium_years",
        ),
    ];
    for (what, text, key) in cases {
        let path = dir.path().join("protocols").join("bad.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
            .args(["protocol", "check"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{what}: accepted");
        let mut shown = String::from_utf8_lossy(&output.stdout).into_owned();
        shown.push_str(&String::from_utf8_lossy(&output.stderr));
        assert_clean(&shown, what);
        assert!(
            shown.contains(key),
            "{what}: the refusal names `{key}`: {shown}"
        );
        let started = refused_start(
            dir.path(),
            &[],
            &[(
                "KBI_ADVICE__PROTOCOLS__DIR",
                path.parent().unwrap().to_str().unwrap(),
            )],
        );
        assert_clean(&started, what);
        assert!(
            started.contains(key),
            "{what}: the start names `{key}`: {started}"
        );
    }
}
