//! The REST door: one question per `GET`, up to `rest_batch_max_questions` per batch `POST`.
//! Same core and same JSON as `kbi-advice check` (`kbi_wire::json`, `kbi_wire::rest`); errors are
//! RFC 9457 problem documents with the catalogue code.
//!
//! Each door is one pipeline inside [`door::open`]: parse → admit → snapshot → judge (each
//! question under the caller's protocol, 30005) → audit ([`door::audit`]) → render → count. The
//! batch admits its caller before it reads the body: a caller that may not call does not get to
//! make the server read one.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::body::{discard_body, read_body, BodyError};
use super::caller::{admit_rest, Admitted, Denied};
use super::door::{self, Answer};
use super::guard::OverBudget;
use super::state::AppState;
use crate::telemetry::metrics::{Door, Outcome};
use kbi_core::domain::{AdmittedCaller, CompiledSnapshot, ErrorCode, Verdict};
use kbi_trust::Operation;
use kbi_wire::json::Problem;
use kbi_wire::rest::{self, RestQuestion};

const JSON: &str = "application/json";
const PROBLEM_JSON: &str = "application/problem+json";

/// The path of the single question, up to its `/{insz}`.
pub const SINGLE_PREFIX: &str = "/v1/integration-obligation";

/// `GET /v1/integration-obligation/{insz}`: every request under [`SINGLE_PREFIX`] (a static
/// prefix, matched without a regular expression). What the resource pattern `/{insz}` did is
/// done here: a path with other than one non-empty segment after the prefix is not found (404),
/// another method than `GET` is not allowed (405 with `Allow: GET`, as actix answers).
pub async fn single(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // The unprocessed rest of the path as actix decoded it for matching, as `{insz}` was.
    let Some(insz) = one_segment(request.match_info().unprocessed()) else {
        return super::not_found().await;
    };
    if request.method() != Method::GET {
        return HttpResponse::MethodNotAllowed()
            .insert_header((ALLOW, HeaderValue::from_static("GET")))
            .finish();
    }
    let (request, state) = (&request, &state);
    door::open(request, state, Door::Rest, move |referte| async move {
        answer_single(state, request, insz, &referte).await
    })
    .await
}

/// `segment` of `/segment`: non-empty and without `/` (actix's `{name}` is `[^/]+`).
fn one_segment(rest: &str) -> Option<&str> {
    rest.strip_prefix('/')
        .filter(|segment| !segment.is_empty() && !segment.contains('/'))
}

async fn answer_single(
    state: &AppState,
    request: &HttpRequest,
    insz: &str,
    referte: &str,
) -> Answer {
    let question = rest::single_question(insz, request.query_string());
    let client = match admit_rest(state, request, Operation::Single) {
        Ok(client) => client,
        Err(denied) => return refused(state, denied),
    };
    let Some(snapshot) = state.store.current() else {
        return request_error(state, ErrorCode::NotReady, None);
    };
    let verdicts = [rest::judge(&snapshot, &question, &client.admission())];
    if let Err(refusal) = audit(state, &client, referte, &snapshot, &verdicts).await {
        return refusal;
    }
    let [verdict] = &verdicts;
    let answer = match rest::render_single(verdict, &snapshot) {
        Ok(body) => json(StatusCode::OK, body),
        Err(problem) => problem_answer(problem),
    };
    state.metrics.record_questions(&verdicts);
    answer
}

/// `POST /v1/integration-obligation:batch`.
pub async fn batch(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (request, state) = (&request, &state);
    door::open(request, state, Door::RestBatch, move |referte| async move {
        answer_batch(state, request, payload, &referte).await
    })
    .await
}

async fn answer_batch(
    state: &web::Data<AppState>,
    request: &HttpRequest,
    payload: web::Payload,
    referte: &str,
) -> Answer {
    let client = match admit_rest(state, request, Operation::Batch) {
        Ok(client) => client,
        Err(denied) => {
            discard_body(request, payload, &state.limits.body).await;
            return refused(state, denied);
        }
    };
    if !is_json(request) {
        discard_body(request, payload, &state.limits.body).await;
        return unsupported_media_type();
    }
    let body = match read_body(request, payload, &state.limits.body).await {
        Ok(body) => body,
        Err(error) => return body_refused(state, error),
    };
    // Parsing and judging run on a compute thread within the request's time budget.
    let work = {
        let state = state.clone();
        let client = client.clone();
        move |_deadline| parse_and_judge(&state, &client, &body)
    };
    let (snapshot, verdicts) = match state.compute.run(Instant::now(), work).await {
        Ok(Ok(judged)) => judged,
        Ok(Err(refusal)) => return refusal,
        Err(OverBudget) => return over_budget(state),
    };
    if let Err(refusal) = audit(state, &client, referte, &snapshot, &verdicts).await {
        return refusal;
    }
    let answer = json(StatusCode::OK, rest::render_batch(&verdicts, &snapshot));
    state.metrics.record_questions(&verdicts);
    answer
}

/// The batch's questions judged against the snapshot in use, or the answer refusing the batch.
fn parse_and_judge(
    state: &AppState,
    client: &Admitted,
    body: &[u8],
) -> Result<(Arc<CompiledSnapshot>, Vec<Verdict>), Answer> {
    let questions: Vec<RestQuestion> =
        match rest::parse_batch(body, state.limits.rest_batch_questions) {
            Ok(questions) => questions,
            // Of the malformed bodies only "too many questions" is a counted catalogue error.
            Err(refused) if refused.code == ErrorCode::TooManyQuestions.as_str() => {
                return Err(request_error(
                    state,
                    ErrorCode::TooManyQuestions,
                    Some(refused),
                ))
            }
            Err(refused) => return Err(problem_answer(refused)),
        };
    let Some(snapshot) = state.store.current() else {
        return Err(request_error(state, ErrorCode::NotReady, None));
    };
    // Each question on its own under the caller's protocol, like 30001 (protocols.md §2).
    let admission = client.admission();
    let verdicts = questions
        .iter()
        .map(|question| rest::judge(&snapshot, question, &admission))
        .collect();
    Ok((snapshot, verdicts))
}

/// Writes the audit records of `verdicts` durably ([`door::audit`]); a failure refuses the whole
/// answer (30021).
async fn audit(
    state: &AppState,
    client: &Admitted,
    referte: &str,
    snapshot: &CompiledSnapshot,
    verdicts: &[Verdict],
) -> Result<(), Answer> {
    door::audit(state, referte, client, None, snapshot, verdicts)
        .await
        .map_err(|_| request_error(state, ErrorCode::AuditUnavailable, None))
}

/// A caller not admitted: 401 (not identified), 403 (not allowed) or 429 (rate limit).
fn refused(state: &AppState, denied: Denied) -> Answer {
    let (status, detail) = match denied {
        Denied::Unknown(why) => (StatusCode::UNAUTHORIZED, why),
        Denied::NotAllowed => (
            StatusCode::FORBIDDEN,
            "this client may not call this operation",
        ),
        Denied::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "the rate limit of this client is exceeded; retry later",
        ),
    };
    let mut problem = Problem::new(denied.code(), detail);
    problem.status = status.as_u16();
    request_error(state, denied.code(), Some(problem))
}

/// A request refused as a whole with catalogue error `code`, counted in `kbi_errors_total`:
/// `problem`, or the catalogue's own problem document for `code`.
fn request_error(state: &AppState, code: ErrorCode, problem: Option<Problem>) -> Answer {
    state.metrics.record_request_error(code);
    problem_answer(problem.unwrap_or_else(|| Problem::from_code(code)))
}

/// A body that could not be read: 413 over the limit, 408 too slow, else 400.
fn body_refused(state: &AppState, error: BodyError) -> Answer {
    match error {
        BodyError::TooLarge => too_large(state.limits.body.bytes),
        BodyError::TimedOut => {
            let mut problem = Problem::new(
                ErrorCode::InvalidContext,
                "the request body did not arrive in time (server.body_timeout_ms, \
                 server.body_min_bytes_per_second)",
            );
            problem.status = 408;
            problem_answer(problem)
        }
        BodyError::Broken => problem_answer(Problem::new(
            ErrorCode::InvalidContext,
            "the request body could not be read",
        )),
    }
}

/// 503: parsing and judging did not finish within the time budget.
fn over_budget(state: &AppState) -> Answer {
    let mut problem = Problem::new(
        ErrorCode::NotReady,
        format!(
            "the request could not be processed within the time budget of {} ms; retry later",
            state.compute.budget.as_millis()
        ),
    );
    problem.status = 503;
    problem_answer(problem)
}

/// Whether the request says its body is JSON (`application/json`, parameters allowed, or any
/// `+json` type). Without a Content-Type, or with another one, the body is not read (415).
fn is_json(request: &HttpRequest) -> bool {
    let Some(value) = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(kind, suffix)| {
            kind.len() > "application/".len()
                && kind[.."application/".len()].eq_ignore_ascii_case("application/")
                && suffix.eq_ignore_ascii_case("json")
        })
}

/// 415: the batch takes JSON only.
fn unsupported_media_type() -> Answer {
    let mut problem = Problem::new(
        ErrorCode::InvalidContext,
        "the batch body must be JSON: send Content-Type: application/json",
    );
    problem.status = 415;
    problem_answer(problem)
}

/// A body over the limit: 413 with the catalogue's "too many questions" code, the only one that
/// says "you sent too much".
pub fn too_large(limit: usize) -> Answer {
    let mut problem = Problem::new(
        ErrorCode::TooManyQuestions,
        format!("the request body is larger than the limit of {limit} bytes"),
    );
    problem.status = 413;
    problem_answer(problem)
}

fn json(status: StatusCode, body: Vec<u8>) -> Answer {
    Answer {
        status,
        content_type: JSON,
        body,
        outcome: Outcome::from_status(status.as_u16()),
    }
}

/// A problem document with its own status.
fn problem_answer(problem: Problem) -> Answer {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    Answer {
        status,
        content_type: PROBLEM_JSON,
        body: serde_json::to_vec(&problem).unwrap_or_default(),
        outcome: Outcome::from_status(status.as_u16()),
    }
}
