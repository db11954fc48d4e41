//! The framework floor for `load-tests/run`: an actix-web server whose one handler does nothing
//! but return a constant body the size of a REST answer, with the same worker count and
//! keep-alive as `kbi-advice serve`. REST throughput is compared with this (target ≥ 0.85×).
//! A POST is read to its end (as the SOAP door must read a question before it can answer) and
//! answered with a constant body the size of a SOAP answer: the floor of the SOAP steps, so that
//! the SOAP p99 at a constant rate has a peer that sends and receives the same bytes.
//!
//! `cargo run --release --example floor -- 127.0.0.1:8181 [workers]`

use actix_web::{http::Method, web, App, HttpRequest, HttpResponse, HttpServer};

/// A REST answer's length (a NOK answer with its reason is about 380 bytes).
const BODY: &str = concat!(
    r#"{"insz":"90011510383","reference_date":"2026-01-01","subject":true,"compliant":false,"#,
    r#""result":"NOK","reason":{"code":"NIET_AANGEMELD","nl":"Niet tijdig aangemeld bij een "#,
    r#"agentschap Integratie en Inburgering","en":"Did not register with an integration agency "#,
    r#"in time"},"source":{"snapshot_id":"demo-2026-11-01","extracted_at":"2026-11-01T02:00:00Z","#,
    r#""rule_set":"kbi-rules-2022.2"}}"#
);

/// A SOAP answer's length (one `Antwoord`, NOK with its reason: about 1,250 bytes).
const SOAP_BODY: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#,
    r#"<geef:GeefAdviesInburgeringsplichtResponse "#,
    r#"xmlns:geef="urn:kbi-advice:soap:geefadviesinburgeringsplicht:v01_00"><Repliek><Context>"#,
    r#"<Naam>GeefAdviesInburgeringsplicht</Naam><Versie>01.00.0000</Versie><Bericht>"#,
    r#"<Type>ANTWOORD</Type><Tijdstip><Datum>2026-11-02</Datum><Tijd>09:15:00.000</Tijd>"#,
    r#"</Tijdstip><Afzender><Identificatie>kbi-advice</Identificatie>"#,
    r#"<Referte>floor-000000000000001a</Referte></Afzender><Ontvanger>"#,
    r#"<Identificatie>demo.kbi-advice</Identificatie><Referte>req-0001</Referte>"#,
    r#"<Hoedanigheid>9999</Hoedanigheid></Ontvanger></Bericht></Context><Antwoorden><Antwoord>"#,
    r#"<Referte>v1</Referte><Inhoud><Advies><INSZ>90011510383</INSZ>"#,
    r#"<Referentiedatum>2026-01-01</Referentiedatum>"#,
    r#"<ValtOnderInburgeringsplicht>true</ValtOnderInburgeringsplicht>"#,
    r#"<VoldoetAanInburgeringsplicht>false</VoldoetAanInburgeringsplicht>"#,
    r#"<Resultaat>NOK</Resultaat><Reden><Code>NIET_AANGEMELD</Code><Omschrijving>Niet tijdig "#,
    r#"aangemeld bij een agentschap Integratie en Inburgering</Omschrijving></Reden><Bron>"#,
    r#"<SnapshotId>load-100000</SnapshotId><Extractiedatum>2026-11-01T02:00:00Z</Extractiedatum>"#,
    r#"<Regelset>kbi-rules-2022.2</Regelset></Bron></Advies></Inhoud></Antwoord></Antwoorden>"#,
    r#"</Repliek></geef:GeefAdviesInburgeringsplichtResponse></soap:Body></soap:Envelope>"#
);

/// `_body`: the extractor reads a POST's body whole before the handler runs; its bytes are not
/// looked at.
async fn floor(request: HttpRequest, _body: web::Bytes) -> HttpResponse {
    if request.method() == Method::POST {
        return HttpResponse::Ok()
            .content_type("text/xml; charset=utf-8")
            .body(SOAP_BODY);
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(BODY)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8181".into());
    let workers: usize = args
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().default_service(web::to(floor)))
            .workers(workers)
            .bind(&listen)?
            .run()
            .await
    })
}
