//! The SOAP door over HTTP: `POST` answers through [`crate::api::soap::respond`], `GET ?wsdl`
//! serves the WSDL with the address the caller used. Everything SOAP-specific is in `api::soap`.

use std::time::Instant;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use std::cell::Cell;

use chrono::Utc;
use tracing::Instrument;

use super::body::{read_body, BodyError};
use super::caller::{admit_soap, may_ask, Denied};
use super::rest::{request_id, REFERTE, REQUEST_ID};
use super::state::AppState;
use crate::api::soap::{self, SoapCall, SoapResponse};
use crate::audit::AuditRecord;
use crate::domain::ErrorCode;
use crate::trust::Client;

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
    let span = tracing::info_span!("request", door = "soap", referte = %referte);
    let (response, server_code) = answer(&state, &request, payload, &referte)
        .instrument(span)
        .await;
    state
        .metrics
        .record_soap(&response, server_code, started.elapsed());
    reply(&request, &referte, response)
}

/// The reply, and the code of a refusal the server decided itself (for the metrics).
async fn answer(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
    referte: &str,
) -> (SoapResponse, Option<ErrorCode>) {
    let body = match read_body(request, payload, state.limits.body_bytes).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            let message = format!(
                "the request body is larger than the limit of {} bytes",
                state.limits.body_bytes
            );
            return (soap::client_fault(&message), None);
        }
        Err(BodyError::Broken) => {
            return (
                soap::client_fault("the request body could not be read"),
                None,
            )
        }
    };
    let snapshot = state.store.current();
    let call = SoapCall {
        snapshot: snapshot.as_deref(),
        limits: &state.limits.xml,
        server_referte: referte,
        service_identificatie: &state.service_identificatie,
    };
    // The hook runs once the context is valid, before any question is answered.
    let admitted: Cell<Option<&Client>> = Cell::new(None);
    let response = soap::respond_checked(&body, &call, &|caller| {
        let client = admit_soap(state, request, &caller.identificatie, &caller.hoedanigheid)
            .map_err(Denied::code)?;
        admitted.set(Some(client));
        Ok(())
    });
    let (Some(client), Some(caller)) = (admitted.get(), response.caller.as_ref()) else {
        // A Fault or a request-level Uitzondering: no question was answered, nothing to audit.
        return (response, None);
    };
    if response.questions.is_empty() {
        return (response, None);
    }
    if !may_ask(client, response.questions.len()) {
        let code = ErrorCode::NotAuthorised;
        return (soap::refuse_request(Some(caller), code, &call), Some(code));
    }
    if let Some(log) = &state.audit {
        let now = Utc::now();
        let (snapshot_id, rule_set) = snapshot
            .as_deref()
            .map(|s| (s.meta.snapshot_id.as_str(), s.rules.version.as_str()))
            .unzip();
        let records = response
            .questions
            .iter()
            .map(|question| {
                AuditRecord::from_soap(
                    now,
                    referte,
                    &client.id,
                    caller,
                    question,
                    snapshot_id,
                    rule_set,
                )
            })
            .collect();
        if let Err(error) = log.append(records).await {
            tracing::error!(%error, "audit log unavailable: answer refused with 30021");
            let code = ErrorCode::AuditUnavailable;
            return (soap::refuse_request(Some(caller), code, &call), Some(code));
        }
    }
    (response, None)
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
