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
use super::caller::{admit_soap, may_ask, Denied, PeerClient};
use super::guard::OverBudget;
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
    state: &web::Data<AppState>,
    request: &HttpRequest,
    payload: web::Payload,
    referte: &str,
) -> (SoapResponse, Option<ErrorCode>) {
    let body = match read_body(request, payload, &state.limits.body).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            let message = format!(
                "the request body is larger than the limit of {} bytes",
                state.limits.body.bytes
            );
            return (soap::client_fault(&message), None);
        }
        Err(BodyError::TimedOut) => {
            return (
                soap::client_fault(
                    "the request body did not arrive in time (server.body_timeout_ms, \
                     server.body_min_bytes_per_second)",
                ),
                None,
            )
        }
        Err(BodyError::Broken) => {
            return (
                soap::client_fault("the request body could not be read"),
                None,
            )
        }
    };
    let snapshot = state.store.current();
    let peer = request.conn_data::<PeerClient>().cloned();
    // Parsing and judging run on a compute thread within the request's time budget: a
    // pathological body can cost a compute thread at most the budget, never a network thread.
    let work = {
        let state = state.clone();
        let snapshot = snapshot.clone();
        let referte = referte.to_owned();
        move |deadline| {
            let call = SoapCall {
                snapshot: snapshot.as_deref(),
                limits: &state.limits.xml,
                server_referte: &referte,
                service_identificatie: &state.service_identificatie,
            };
            // The hook runs once the context is valid, before any question is answered.
            let admitted: Cell<Option<&Client>> = Cell::new(None);
            let response = soap::respond_checked_until(
                &body,
                &call,
                &|caller| {
                    let client = admit_soap(
                        &state,
                        peer.as_ref(),
                        &caller.identificatie,
                        &caller.hoedanigheid,
                    )
                    .map_err(Denied::code)?;
                    admitted.set(Some(client));
                    Ok(())
                },
                deadline,
            );
            (response, admitted.get().map(|client| client.id.clone()))
        }
    };
    let (response, admitted) = match state.compute.run(Instant::now(), work).await {
        Ok(done) => done,
        Err(OverBudget) => {
            let message = format!(
                "the request could not be processed within the time budget of {} ms",
                state.compute.budget.as_millis()
            );
            return (soap::server_fault(&message), None);
        }
    };
    let client = admitted.and_then(|id| state.registry.identify_by_id(&id));
    let call = SoapCall {
        snapshot: snapshot.as_deref(),
        limits: &state.limits.xml,
        server_referte: referte,
        service_identificatie: &state.service_identificatie,
    };
    let (Some(client), Some(caller)) = (client, response.caller.as_ref()) else {
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

/// `GET /soap/GeefAdviesInburgeringsplicht-01.00?wsdl`: the WSDL, its `soap:address` set to
/// [`endpoint`].
pub async fn get(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let query = request.query_string();
    if !query.eq_ignore_ascii_case("wsdl") {
        return HttpResponse::MethodNotAllowed()
            .insert_header(("allow", "POST"))
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("POST a SOAP request here, or GET ?wsdl for the WSDL\n");
    }
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, TEXT_XML))
        .body(soap::wsdl_document(&endpoint(&request, &state)))
}

/// The operation's address for the WSDL: `server.public_url` when configured; else what the
/// caller used: the connection's scheme and the `Host` header, or the `Forwarded` /
/// `X-Forwarded-Host` / `X-Forwarded-Proto` headers when (and only when) the peer is one of
/// `server.trusted_proxies`. Anybody else's forwarding headers would let a caller point the
/// WSDL (and clients generated from it) at a host of its choosing.
pub fn endpoint(request: &HttpRequest, state: &AppState) -> String {
    if let Some(base) = &state.public_url {
        return format!("{base}{PATH}");
    }
    let trusted = request
        .peer_addr()
        .is_some_and(|peer| state.trusted_proxies.contains(&peer.ip()));
    if trusted {
        let info = request.connection_info();
        return format!("{}://{}{PATH}", info.scheme(), info.host());
    }
    let scheme = if state.development { "http" } else { "https" };
    let host = request
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .filter(|h| is_host(h))
        .map_or_else(|| request.app_config().host().to_owned(), str::to_owned);
    format!("{scheme}://{host}{PATH}")
}

/// A `Host` value fit for a URL: host name or address and optional port, nothing else.
fn is_host(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}
