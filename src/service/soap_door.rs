//! The SOAP door over HTTP: `POST` answers a `GeefAdviesInburgeringsplicht` request, `GET ?wsdl`
//! serves the WSDL with the address the caller used. The wire format is `kbi_wire::soap`.
//!
//! One pipeline, as the REST door's: parse → admit → snapshot → judge, each question under the
//! caller's protocol (`soap::parse_admit_judge` within the request's time budget, inline for small
//! or canonical bodies and on a compute thread for the rest; the admission step is [`admit`]) →
//! audit ([`door::audit`]) → render → count. Every refusal of the request (caller, operation,
//! number of questions, rate, no snapshot) is decided before anything is judged.

use std::sync::{Arc, Weak};
use std::time::Instant;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use arc_swap::ArcSwapOption;
use chrono::Utc;

use super::body::{read_body, BodyError};
use super::caller::{admit_soap, rate_limit, Admitted, Denied, PeerClient};
use super::door::{self, Answer};
use super::guard::OverBudget;
use super::state::AppState;
use crate::telemetry::metrics::{Door, Metrics, Outcome};
use kbi_core::domain::{CompiledSnapshot, ErrorCode};
use kbi_trust::Operation;
use kbi_wire::soap::{self, Envelope, Reply, Responder, Source};

/// The operation's path.
pub const PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";

const TEXT_XML: &str = "text/xml; charset=utf-8";

/// `POST /soap/GeefAdviesInburgeringsplicht-01.00`.
pub async fn post(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (request, state) = (&request, &state);
    door::open(request, state, Door::Soap, move |referte| async move {
        answer(state, request, payload, &referte).await
    })
    .await
}

async fn answer(
    state: &web::Data<AppState>,
    request: &HttpRequest,
    payload: web::Payload,
    referte: &str,
) -> Answer {
    // The body outlives the request's envelope, whose values borrow from it.
    let body = read_body(request, payload, &state.limits.body).await;
    let responder = Responder {
        service_identificatie: &state.service_identificatie,
        server_referte: referte,
    };
    let reply = match &body {
        Ok(body) => match parse_admit_judge(state, request, body).await {
            Ok(judged) => match audit(state, referte, judged).await {
                // The answers are rendered from the request as it is, its values borrowed from
                // the body (`soap::render_answers`: the bytes of `Reply::answers`, rendered).
                Ok(Answered {
                    caller,
                    verdicts,
                    source,
                }) => {
                    let body =
                        soap::render_answers(&caller, &verdicts, &source, &responder, Utc::now());
                    return Answer {
                        status: StatusCode::OK,
                        content_type: TEXT_XML,
                        body,
                        outcome: count_answers(&state.metrics, &verdicts),
                    };
                }
                Err(refusal) => refusal,
            },
            Err(refusal) => refusal,
        },
        Err(error) => body_refused(state, *error),
    };
    let body = soap::render(&reply, &responder, Utc::now());
    let outcome = count(&state.metrics, &reply);
    Answer {
        status: StatusCode::from_u16(reply.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        content_type: TEXT_XML,
        body,
        outcome,
    }
}

/// A request admitted (its client and protocol binding, for the audit records) and judged; its
/// questions may borrow from the body (`'b`).
type Judged<'b> = soap::Judged<'b, Admitted, Arc<CompiledSnapshot>>;

/// [`soap::parse_admit_judge`] (the one SOAP path, shared with the codec alone) within the
/// request's time budget. On this network thread when that is bounded by construction: a body
/// of at most [`soap::HARDENED_INLINE_MAX_BYTES`] whatever it holds, or one of at most
/// [`soap::INLINE_MAX_BYTES`] that the fast reader takes (the hop to another thread costs more
/// than either; `docs/soap.md`, "Inline or compute pool"). Anything else on a compute thread,
/// so that a large or unusual body can cost a compute thread at most the budget, never a network
/// thread. The snapshot in use is read after admission.
async fn parse_admit_judge<'b>(
    state: &web::Data<AppState>,
    request: &HttpRequest,
    body: &'b web::Bytes,
) -> Result<Judged<'b>, Reply> {
    let peer = request.conn_data::<PeerClient>().cloned();
    let admit_here = |envelope: &Envelope<'_>| admit(state, peer.as_ref(), envelope);
    let snapshot_here = || state.store.current();
    // Counts which reader read the body (kbi_soap_fast_path_total).
    let counted = |result: Result<Judged<'b>, Box<soap::Refused>>| {
        let road = match &result {
            Ok(judged) => judged.road,
            Err(refused) => refused.road,
        };
        state.metrics.record_soap_road(road);
        result.map_err(|refused| refused.reply)
    };
    // The fast reader first, without a deadline (it reads at most INLINE_MAX_BYTES, linearly,
    // and stops at the first byte it does not expect): a body it takes needs no clock at all.
    if body.len() <= soap::INLINE_MAX_BYTES {
        if let Some(parsed) = soap::parse_fast(body, &state.limits.xml) {
            return counted(soap::admit_judge(
                parsed,
                soap::Road::Fast,
                admit_here,
                snapshot_here,
            ));
        }
    }
    if body.len() <= soap::HARDENED_INLINE_MAX_BYTES {
        // The same deadline as on the pool: the hardened parser still stops itself at the budget.
        let deadline = Instant::now() + state.compute.budget;
        return counted(soap::parse_admit_judge(
            body,
            &state.limits.xml,
            Some(deadline),
            admit_here,
            snapshot_here,
        ));
    }
    let work = {
        let state = state.clone();
        // The pool gets its own handle on the body (shared, not copied), and hands back an
        // envelope that owns its values.
        let body = body.clone();
        move |deadline| {
            soap::parse_admit_judge(
                &body,
                &state.limits.xml,
                Some(deadline),
                |envelope| admit(&state, peer.as_ref(), envelope),
                || state.store.current(),
            )
            .map(|judged| soap::Judged {
                envelope: judged.envelope.into_owned(),
                ..judged
            })
        }
    };
    // A body whose parse ran past the budget is not counted: which reader would have finished
    // it is not known.
    match state.compute.run(Instant::now(), work).await {
        Ok(judged) => counted(judged),
        Err(OverBudget) => Err(Reply::server_fault(format!(
            "the request could not be processed within the time budget of {} ms",
            state.compute.budget.as_millis()
        ))),
    }
}

/// The door's admission step, in this order: who calls, as which sender and capacity, and
/// whether it may ask this many questions at once ([`admit_soap`], 30010); no more questions
/// than the limit (30011); the rate limit (30013), so that a refused request takes no token.
/// The admitted caller's protocol then binds each question as it is judged (30005, in
/// `soap::parse_admit_judge`).
fn admit(
    state: &AppState,
    peer: Option<&PeerClient>,
    envelope: &Envelope<'_>,
) -> Result<Admitted, Reply> {
    let caller = &envelope.caller;
    let refuse = |denied: Denied| Reply::refused(caller, denied.code());
    let operation = Operation::for_soap(envelope.question_count);
    let client = admit_soap(
        state,
        peer,
        &caller.identificatie,
        &caller.hoedanigheid,
        operation,
    )
    .map_err(refuse)?;
    soap::check_question_count(envelope, &state.limits.xml)?;
    rate_limit(state, &client).map_err(refuse)?;
    Ok(client)
}

/// A request answered: what its reply is rendered from.
struct Answered<'b> {
    caller: soap::Caller<'b>,
    verdicts: Vec<kbi_core::domain::Verdict>,
    source: Arc<Source>,
}

/// Writes the audit records of the verdicts durably ([`door::audit`]), then gives the answers;
/// a failure refuses the whole request (30021) and nothing judged is sent.
async fn audit<'b>(
    state: &AppState,
    referte: &str,
    judged: Judged<'b>,
) -> Result<Answered<'b>, Reply> {
    let soap::Judged {
        admitted: client,
        envelope,
        snapshot,
        verdicts,
        ..
    } = judged;
    // The caller's context goes into the audit records as parsed (one type, `Sender`), owned
    // only when records are written.
    let caller = &envelope.caller;
    let sender = state.audit.is_some().then(|| caller.to_sender());
    let written = door::audit(
        state,
        referte,
        &client,
        sender.as_ref(),
        &snapshot,
        &verdicts,
    );
    if written.await.is_err() {
        return Err(Reply::refused(caller, ErrorCode::AuditUnavailable));
    }
    Ok(Answered {
        caller: envelope.caller,
        verdicts,
        source: state.soap_source.of(&snapshot),
    })
}

/// The encoded `Bron` of the snapshot in use, made once per snapshot instead of once per reply
/// (the fixed part of every `Advies`, as the snapshot's `extracted_at_text` is for the JSON
/// door). One per server; a reload gives a new snapshot, whose `Bron` replaces this one at its
/// first answer.
#[derive(Default)]
pub struct SourceCache(ArcSwapOption<CachedSource>);

struct CachedSource {
    /// Which snapshot: a weak reference keeps its allocation (so its address is not reused by
    /// another while this is kept) without keeping the snapshot itself alive after a reload.
    snapshot: Weak<CompiledSnapshot>,
    source: Arc<Source>,
}

impl SourceCache {
    /// The `Bron` of `snapshot`, encoded now if it is not the one kept.
    pub fn of(&self, snapshot: &Arc<CompiledSnapshot>) -> Arc<Source> {
        if let Some(cached) = &*self.0.load() {
            if std::ptr::eq(cached.snapshot.as_ptr(), Arc::as_ptr(snapshot)) {
                return Arc::clone(&cached.source);
            }
        }
        let source = Arc::new(Source::of(snapshot));
        self.0.store(Some(Arc::new(CachedSource {
            snapshot: Arc::downgrade(snapshot),
            source: Arc::clone(&source),
        })));
        source
    }
}

/// Counts what the reply says: its questions, or the request-level error; returns the
/// request's outcome.
fn count(metrics: &Metrics, reply: &Reply) -> Outcome {
    match reply {
        // Every Fault is counted as the caller's, the time budget's `soap:Server` included (as
        // the SOAP door always has).
        Reply::Fault { .. } => Outcome::ClientError,
        Reply::Refused { code, .. } => {
            metrics.record_request_error(*code);
            Outcome::for_error(*code)
        }
        Reply::Answers { verdicts, .. } => count_answers(metrics, verdicts),
    }
}

/// Answers, counted: every question's outcome. The door renders its answers without a
/// [`Reply`]; a `Reply::Answers` in [`count`] counts the same way.
fn count_answers(metrics: &Metrics, verdicts: &[kbi_core::domain::Verdict]) -> Outcome {
    metrics.record_questions(verdicts);
    Outcome::Ok
}

/// A body that could not be read: a `soap:Client` Fault.
fn body_refused(state: &AppState, error: BodyError) -> Reply {
    match error {
        BodyError::TooLarge => Reply::client_fault(format!(
            "the request body is larger than the limit of {} bytes",
            state.limits.body.bytes
        )),
        BodyError::TimedOut => Reply::client_fault(
            "the request body did not arrive in time (server.body_timeout_ms, \
             server.body_min_bytes_per_second)",
        ),
        BodyError::Broken => Reply::client_fault("the request body could not be read"),
    }
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
