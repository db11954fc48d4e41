//! What every door does around its own pipeline, written once: a server reference, a tracing
//! span, a timer, the response with the headers every answer carries, the request count, and
//! the audit step ([`audit`]).

use std::future::Future;
use std::time::Instant;

use actix_web::http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use tracing::Instrument;

use super::caller::Admitted;
use super::state::AppState;
use crate::telemetry::metrics::{Door, Outcome};
use kbi_audit::{AuditError, RequestCtx};
use kbi_core::domain::magda::Sender;
use kbi_core::domain::{CompiledSnapshot, Verdict};

/// The caller's request id, echoed (or the server reference when it sent none).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The server reference of the answer (the audit log's key for it).
pub const REFERTE: HeaderName = HeaderName::from_static("x-referte");
/// Personal data: no cache on the way may keep it.
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// What a door answers, before the common headers.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The request's outcome for `kbi_requests_total`.
    pub outcome: Outcome,
}

/// Opens a request on `door`: a new server reference, the span `request{door, referte}` around
/// `answer` (which gets the reference), then the response with the standard headers, and the
/// request counted with its latency.
pub async fn open<F, Fut>(
    request: &HttpRequest,
    state: &AppState,
    door: Door,
    answer: F,
) -> HttpResponse
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Answer>,
{
    let started = Instant::now();
    let referte = state.references.next();
    let span = tracing::info_span!("request", door = door.label(), referte = %referte);
    let answer = answer(referte.clone()).instrument(span).await;
    let outcome = answer.outcome;
    let response = respond(request, referte, answer);
    state
        .metrics
        .observe_request(door, outcome, started.elapsed());
    response
}

/// The response with the headers every answer carries.
/// Header names and values are typed constants: a name given as text would be parsed (and a
/// name actix does not know copied) on every response.
fn respond(request: &HttpRequest, referte: String, answer: Answer) -> HttpResponse {
    // One header value of the reference, shared (not copied) when it is also the request id.
    let referte = HeaderValue::try_from(referte).unwrap_or(HeaderValue::from_static("-"));
    let mut response = HttpResponse::build(answer.status);
    response
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(answer.content_type)))
        .insert_header((REQUEST_ID, request_id(request, &referte)))
        .insert_header((REFERTE, referte))
        .insert_header((CACHE_CONTROL, NO_STORE));
    if answer.status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((RETRY_AFTER, HeaderValue::from_static("5")));
    }
    response.body(answer.body)
}

/// The caller's `X-Request-Id` when it is a sane token (1–128 visible ASCII characters), else
/// the server reference.
pub fn request_id(request: &HttpRequest, referte: &HeaderValue) -> HeaderValue {
    request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .unwrap_or(referte)
        .clone()
}

/// The audit step of every door: the records of `verdicts` (one per question), with the caller's
/// client and protocol, written durably before any answer leaves. Nothing to write when the
/// request judged no question, or when the audit log is off (development profile). On failure (logged here) the door refuses the whole
/// request with 30021 in its own format.
pub async fn audit(
    state: &AppState,
    referte: &str,
    caller: &Admitted,
    sender: Option<&Sender>,
    snapshot: &CompiledSnapshot,
    verdicts: &[Verdict],
) -> Result<(), AuditError> {
    let Some(log) = &state.audit else {
        return Ok(());
    };
    if verdicts.is_empty() {
        return Ok(());
    }
    let ctx = RequestCtx {
        time: chrono::Utc::now(),
        server_reference: referte,
        client_id: &caller.client().id,
        protocol: Some(&caller.binding().protocol.id),
        sender,
        snapshot_id: Some(&snapshot.meta.snapshot_id),
        rule_set: Some(&snapshot.rules.version),
    };
    match log.append_verdicts(&ctx, verdicts).await {
        Ok(_) => Ok(()),
        Err(error) => {
            tracing::error!(%error, "audit log unavailable: answer refused with 30021");
            Err(error)
        }
    }
}
