//! The SOAP door of the real service over HTTP: the public table, the WSDL, and hostile bodies
//! (each a Fault, and the process stays live after each).

use crate::support::server::{start, Server};
use crate::support::*;

const PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";

fn post(server: &Server, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let response = crate::support::http()
        .post(server.url(PATH))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .expect("the service answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, content_type, response.bytes().unwrap().to_vec())
}

#[test]
fn public_cases_over_http_soap_equal_the_table() {
    let server = start(&public_snapshot_path());
    let rows = public_rows();
    let questions: Vec<Q> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Q::date(&format!("row-{i}"), &r.insz, &r.date))
        .collect();
    let (status, content_type, body) = post(&server, request(&questions).into_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    let repliek = repliek(&body);
    let answers: Vec<&El> = repliek.at("Antwoorden").unwrap().all("Antwoord").collect();
    assert_eq!(answers.len(), rows.len());
    for (i, (row, antwoord)) in rows.iter().zip(answers).enumerate() {
        assert_eq!(
            antwoord.text_at("Referte"),
            Some(format!("row-{i}").as_str())
        );
        assert_eq!(answered_row(antwoord), expected_row(row), "{row:?}");
    }
}

#[test]
fn the_wsdl_is_served_with_the_address_used() {
    let server = start(&public_snapshot_path());
    let response = crate::support::get(server.url(&format!("{PATH}?wsdl"))).unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let wsdl = response.text().unwrap();
    assert!(
        wsdl.contains(&format!("location=\"{}\"", server.url(PATH))),
        "soap:address is not the URL used"
    );
    assert!(wsdl.contains("<xs:schema"), "schema not inlined");
}

#[test]
fn every_hostile_body_gets_a_fault_and_the_service_stays_live() {
    let mut server = start(&public_snapshot_path());
    let mut cases = hostile_cases();
    cases.push((
        "over the body size limit",
        valid()
            .replace(
                "<soapenv:Header/>",
                &format!(
                    "<soapenv:Header><!--{}--></soapenv:Header>",
                    "x".repeat(2 << 20)
                ),
            )
            .into_bytes(),
        "",
        "soap:Client",
    ));
    for (name, body, expected_text, expected_code) in cases {
        let (status, _, reply) = post(&server, body);
        assert_eq!(status, 500, "{name}: {}", String::from_utf8_lossy(&reply));
        let (faultcode, faultstring) = fault(&reply);
        assert_eq!(faultcode, expected_code, "{name}: {faultstring}");
        assert!(faultstring.contains(expected_text), "{name}: {faultstring}");
        assert!(
            !faultstring.contains("83040410690"),
            "{name}: fault echoes the INSZ"
        );
        assert!(server.live(), "{name}: the service is no longer live");
    }
    // And it still answers.
    let (status, _, body) = post(&server, valid().into_bytes());
    assert_eq!(status, 200);
    assert_eq!(
        repliek(&body).text_at("Antwoorden/Antwoord/Inhoud/Advies/Resultaat"),
        Some("NOK")
    );
}
