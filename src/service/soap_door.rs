//! The SOAP door over HTTP: `POST` answers through [`crate::api::soap::respond`], `GET ?wsdl`
//! serves the WSDL with the address the caller used. Everything SOAP-specific is in `api::soap`.

use std::time::Instant;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::body::{read_body, BodyError};
use super::rest::{request_id, REFERTE, REQUEST_ID};
use super::state::AppState;
use crate::api::soap::{self, SoapCall, SoapResponse};

/// The operation's path.
pub const PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";

const TEXT_XML: &str = "text/xml; charset=utf-8";

/// `POST /soap/GeefAdviesInburgeringsplicht-01.00`.
pub async fn post(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let referte = state.references.next();
    let response = match read_body(&request, payload, state.limits.body_bytes).await {
        Ok(body) => {
            let snapshot = state.store.current();
            let call = SoapCall {
                snapshot: snapshot.as_deref(),
                limits: &state.limits.xml,
                server_referte: &referte,
                service_identificatie: &state.service_identificatie,
            };
            soap::respond(&body, &call)
        }
        Err(BodyError::TooLarge) => soap::client_fault(&format!(
            "the request body is larger than the limit of {} bytes",
            state.limits.body_bytes
        )),
        Err(BodyError::Broken) => soap::client_fault("the request body could not be read"),
    };
    state
        .metrics
        .record_soap(&response, None, started.elapsed());
    reply(&request, &referte, response)
}

fn reply(request: &HttpRequest, referte: &str, response: SoapResponse) -> HttpResponse {
    let status =
        StatusCode::from_u16(response.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(TEXT_XML)))
        .insert_header((REFERTE, referte.to_owned()))
        .insert_header(("cache-control", "no-store"))
        .insert_header((REQUEST_ID, request_id(request, referte)));
    builder.body(response.body)
}

/// `GET /soap/GeefAdviesInburgeringsplicht-01.00?wsdl`: the WSDL, its `soap:address` set to the
/// URL the caller used (so a client behind a proxy or on another port calls the right place).
pub async fn get(request: HttpRequest) -> HttpResponse {
    let query = request.query_string();
    if !query.eq_ignore_ascii_case("wsdl") {
        return HttpResponse::MethodNotAllowed()
            .insert_header(("allow", "POST"))
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("POST a SOAP request here, or GET ?wsdl for the WSDL\n");
    }
    let info = request.connection_info();
    let endpoint = format!("{}://{}{PATH}", info.scheme(), info.host());
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, TEXT_XML))
        .body(soap::wsdl_document(&endpoint))
}
