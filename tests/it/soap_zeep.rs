//! A standard SOAP client, Python zeep, builds itself from the served `?wsdl` with no hand edits
//! and no hand-written XML, asks the demo questions, and gets what `kbi-advice check` says.
//!
//! Needs `scripts/setup/python-zeep.sh` (zeep in `target/test-venv`).
//!
//! `zeep_client_built_from_the_wsdl_agrees_with_check` serves the codec through a minimal
//! in-test HTTP/1.1 loop around [`respond`] and [`wsdl_document`], so it proves the WSDL and the
//! codec without the service.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use crate::support::manifest_dir;
use crate::support::zeep::{ask, assert_same, check, demo_cases};
use kbi_core::domain::{CompiledSnapshot, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::load_path;
use kbi_wire::soap::{respond, wsdl_document, SoapCall, XmlLimits};

const PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";

fn demo_snapshot() -> PathBuf {
    manifest_dir().join("data/demo-snapshot.jsonl")
}

/// Serves `?wsdl` and SOAP POSTs on a free loopback port, one connection at a time, for as long
/// as the test process lives.
fn serve_codec(snapshot: CompiledSnapshot) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("free loopback port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let limits = XmlLimits::default();
        for stream in listener.incoming().flatten() {
            let call = SoapCall {
                snapshot: Some(&snapshot),
                limits: &limits,
                server_referte: "00000000-0000-4000-8000-000000000001",
                service_identificatie: "kbi-advice.test",
            };
            let _ = handle(stream, port, &call);
        }
    });
    port
}

fn handle(stream: TcpStream, port: u16, call: &SoapCall<'_>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (status, content) = if request_line.starts_with("GET ") && request_line.contains("?wsdl") {
        let endpoint = format!("http://127.0.0.1:{port}{PATH}");
        (200, wsdl_document(&endpoint).into_bytes())
    } else {
        let response = respond(&body, call);
        (response.http_status, response.body)
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    )?;
    stream.write_all(&content)?;
    stream.flush()
}

#[test]
fn zeep_client_built_from_the_wsdl_agrees_with_check() {
    let snapshot = load_path(&demo_snapshot(), Arc::new(RuleSet::shipped()), &Silent).unwrap();
    let port = serve_codec(snapshot);
    let cases = demo_cases();
    let reply = ask(&format!("http://127.0.0.1:{port}{PATH}?wsdl"), &cases);
    assert_eq!(reply["ontvanger"], "zeep-0001");
    let rows = reply["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), cases.len());
    for (case, row) in cases.iter().zip(rows) {
        assert_eq!(row["referte"], case.referte.as_str());
        let expected = check(
            &demo_snapshot(),
            &case.insz,
            case.date.as_deref(),
            case.year.as_deref(),
        );
        assert_same(row, &expected, &case.referte);
    }
    // The cases are not all alike: the comparison can tell answers apart.
    let results: std::collections::BTreeSet<String> =
        rows.iter().map(|r| r["result"].to_string()).collect();
    assert!(
        results.len() >= 3,
        "OK, NOK and an error expected: {results:?}"
    );
}

/// The same through the real service (`kbi-advice serve` on the demo snapshot).
#[test]
fn zeep_client_against_the_real_service_agrees_with_check() {
    let server = crate::support::server::start(&demo_snapshot());
    let cases = demo_cases();
    let reply = ask(&server.url(&format!("{PATH}?wsdl")), &cases);
    let rows = reply["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), cases.len());
    for (case, row) in cases.iter().zip(rows) {
        assert_eq!(row["referte"], case.referte.as_str());
        let expected = check(
            &demo_snapshot(),
            &case.insz,
            case.date.as_deref(),
            case.year.as_deref(),
        );
        assert_same(row, &expected, &case.referte);
    }
}
