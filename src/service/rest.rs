//! The REST door: one question per `GET`, up to `rest_batch_max_questions` per batch `POST`.
//! Same core and same JSON as `kbi-advice check` (`api::json`); errors are RFC 9457 problem
//! documents with the catalogue code.

use std::borrow::Cow;
use std::fmt;
use std::time::Instant;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use chrono::{NaiveDate, Utc};
use tracing::Instrument;

use super::body::{discard_body, read_body, BodyError};
use super::caller::{admit_rest, Denied};
use super::state::AppState;
use crate::api::json::{AnswerJson, Problem, SourceJson};
use crate::audit::{AuditOutcome, AuditRecord};
use crate::domain::{Advice, CompiledSnapshot, ErrorCode, Insz, Question, Reference};
use crate::telemetry::metrics::{Door, Outcome};
use crate::trust::Operation;

/// Headers every response carries.
pub const REQUEST_ID: &str = "x-request-id";
/// The server reference of the answer (the audit log's key for it).
pub const REFERTE: &str = "x-referte";

/// `?date=` or `?premium_year=` of the single-question door.
#[derive(Debug, Default, Deserialize)]
struct SingleQuery {
    date: Option<String>,
    premium_year: Option<String>,
}

/// `GET /v1/integration-obligation/{insz}`.
pub async fn single(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let started = Instant::now();
    let referte = state.references.next();
    let span = tracing::info_span!("request", door = "rest", referte = %referte);
    let (status, body, content_type) = answer_single(&state, &request, &referte)
        .instrument(span)
        .await;
    let response = respond(&request, &referte, status, body, content_type);
    state.metrics.observe_request(
        Door::Rest,
        Outcome::from_status(status.as_u16()),
        started.elapsed(),
    );
    response
}

type Reply = (StatusCode, Vec<u8>, &'static str);

async fn answer_single(state: &AppState, request: &HttpRequest, referte: &str) -> Reply {
    let client = match admit_rest(state, request, Operation::Single) {
        Ok(client) => client,
        Err(denied) => return refused(state, denied),
    };
    let Some(snapshot) = state.store.current() else {
        state.metrics.record_request_error(ErrorCode::NotReady);
        return problem(Problem::from_code(ErrorCode::NotReady));
    };
    // Read from the match directly: no extractor that could answer with its own error format.
    let insz = request.match_info().query("insz");
    // A repeated or undecodable parameter is a malformed reference (30002), checked after the
    // INSZ as in every door.
    let judged = match serde_urlencoded::from_str::<SingleQuery>(request.query_string()) {
        Ok(query) => judge(
            &snapshot,
            Loose::Text(Cow::Borrowed(insz)),
            query
                .date
                .map_or(Loose::Absent, |d| Loose::Text(Cow::Owned(d))),
            query
                .premium_year
                .map_or(Loose::Absent, |y| Loose::Text(Cow::Owned(y))),
        ),
        Err(_) => judge(
            &snapshot,
            Loose::Text(Cow::Borrowed(insz)),
            Loose::Other,
            Loose::Absent,
        ),
    };
    let judged = [judged];
    if let Err(reply) = audit(state, &client.id, referte, &snapshot, &judged).await {
        return reply;
    }
    let [judged] = judged;
    state.metrics.record_question(&judged.outcome);
    match judged.outcome {
        Ok(advice) => {
            let json = AnswerJson::new(&advice, &snapshot.meta, &snapshot.rules.version);
            (
                StatusCode::OK,
                serde_json::to_vec(&json).unwrap_or_default(),
                "application/json",
            )
        }
        Err(code) => problem(Problem::from_code(code)),
    }
}

/// A caller not admitted: 401 (not identified), 403 (not allowed) or 429 (rate limit).
fn refused(state: &AppState, denied: Denied) -> Reply {
    state.metrics.record_request_error(denied.code());
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
    problem_with_status(problem, status)
}

/// One question as judged, with what the audit log needs.
struct Judged {
    insz: Option<Insz>,
    reference_date: Option<NaiveDate>,
    found: Option<bool>,
    outcome: Result<Advice, ErrorCode>,
}

/// Writes the audit records of `judged` durably; a failure refuses the whole answer (30021).
async fn audit(
    state: &AppState,
    client_id: &str,
    referte: &str,
    snapshot: &CompiledSnapshot,
    judged: &[Judged],
) -> Result<(), Reply> {
    let Some(log) = &state.audit else {
        return Ok(());
    };
    let now = Utc::now();
    let records = judged
        .iter()
        .map(|j| {
            AuditRecord::new(
                now,
                referte,
                client_id,
                None,
                None,
                j.insz,
                j.reference_date,
                AuditOutcome::of(&j.outcome),
                j.found,
                Some(snapshot.meta.snapshot_id.clone()),
                Some(snapshot.rules.version.clone()),
            )
        })
        .collect();
    match log.append(records).await {
        Ok(_) => Ok(()),
        Err(error) => {
            tracing::error!(%error, "audit log unavailable: answer refused with 30021");
            state
                .metrics
                .record_request_error(ErrorCode::AuditUnavailable);
            Err(problem(Problem::from_code(ErrorCode::AuditUnavailable)))
        }
    }
}

/// `POST /v1/integration-obligation:batch`.
pub async fn batch(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let referte = state.references.next();
    let span = tracing::info_span!("request", door = "rest_batch", referte = %referte);
    let (status, body, content_type) = async {
        let client = match admit_rest(&state, &request, Operation::Batch) {
            Ok(client) => client,
            Err(denied) => {
                discard_body(&request, payload, &state.limits.body).await;
                return refused(&state, denied);
            }
        };
        if !is_json(&request) {
            discard_body(&request, payload, &state.limits.body).await;
            return unsupported_media_type();
        }
        match read_body(&request, payload, &state.limits.body).await {
            Ok(body) => answer_batch(&state, &client.id, &referte, body.freeze()).await,
            Err(BodyError::TooLarge) => too_large(state.limits.body.bytes),
            Err(BodyError::TimedOut) => {
                let mut problem = Problem::new(
                    ErrorCode::InvalidContext,
                    "the request body did not arrive in time (server.body_timeout_ms, \
                     server.body_min_bytes_per_second)",
                );
                problem.status = 408;
                problem_with_status(problem, StatusCode::REQUEST_TIMEOUT)
            }
            Err(BodyError::Broken) => problem(Problem::new(
                ErrorCode::InvalidContext,
                "the request body could not be read",
            )),
        }
    }
    .instrument(span)
    .await;
    let response = respond(&request, &referte, status, body, content_type);
    state.metrics.observe_request(
        Door::RestBatch,
        Outcome::from_status(status.as_u16()),
        started.elapsed(),
    );
    response
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
fn unsupported_media_type() -> Reply {
    let mut problem = Problem::new(
        ErrorCode::InvalidContext,
        "the batch body must be JSON: send Content-Type: application/json",
    );
    problem.status = 415;
    problem_with_status(problem, StatusCode::UNSUPPORTED_MEDIA_TYPE)
}

/// A body over the limit: 413 with the catalogue's "too many questions" code, the only one that
/// says "you sent too much".
pub fn too_large(limit: usize) -> Reply {
    let mut problem = Problem::new(
        ErrorCode::TooManyQuestions,
        format!("the request body is larger than the limit of {limit} bytes"),
    );
    problem.status = 413;
    problem_with_status(problem, StatusCode::PAYLOAD_TOO_LARGE)
}

/// The batch body: `{"questions": [...]}`. Other members are ignored.
#[derive(Deserialize)]
struct BatchRequest<'a> {
    #[serde(borrow)]
    questions: Option<Vec<ObjectOnly<BatchQuestion<'a>>>>,
}

/// A value that must be a JSON object: serde's derived structs would also take an array
/// (members by position), which the documented shape does not allow.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

/// One question of a batch. Every member is read loosely, so that a member of the wrong type
/// fails only its own question (with 30001 or 30002), never the batch.
#[derive(Deserialize)]
struct BatchQuestion<'a> {
    #[serde(borrow, default)]
    insz: Loose<'a>,
    #[serde(borrow, default)]
    date: Loose<'a>,
    #[serde(borrow, default)]
    premium_year: Loose<'a>,
}

/// A JSON value as a question member: text, a whole number, absent/null, or anything else.
#[derive(Debug, Default)]
enum Loose<'a> {
    #[default]
    Absent,
    Text(Cow<'a, str>),
    Integer(i64),
    Other,
}

impl Loose<'_> {
    /// The member as text for the core's parser; `Err` when its type can never be valid.
    fn text(&self, integer_allowed: bool) -> Result<Option<Cow<'_, str>>, ()> {
        match self {
            Loose::Absent => Ok(None),
            Loose::Text(text) => Ok(Some(Cow::Borrowed(text))),
            Loose::Integer(n) if integer_allowed => Ok(Some(Cow::Owned(n.to_string()))),
            Loose::Integer(_) | Loose::Other => Err(()),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor;
        impl<'de> Visitor<'de> for LooseVisitor {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Loose::Integer(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Loose::Other, Loose::Integer))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Absent)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Absent)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
        }
        deserializer.deserialize_any(LooseVisitor)
    }
}

/// One item of `answers`: the answer, or the problem of that question alone.
#[derive(Serialize)]
#[serde(untagged)]
enum BatchItem<'a> {
    Answer(AnswerJson<'a>),
    Error { error: Problem },
}

#[derive(Serialize)]
struct BatchResponse<'a> {
    answers: Vec<BatchItem<'a>>,
}

/// Decodes a batch body into its questions, checking the count against `max`.
fn parse_batch(body: &[u8], max: usize) -> Result<Vec<BatchQuestion<'_>>, Problem> {
    let parsed: BatchRequest = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        // The parser's own message may quote the body (an INSZ): only its position is given.
        Err(error) => {
            let what = if error.is_syntax() || error.is_eof() {
                "the body is not valid JSON"
            } else {
                "the body is not a JSON object of the form {\"questions\": [...]}"
            };
            return Err(Problem::new(
                ErrorCode::InvalidContext,
                format!("{what} (line {}, column {})", error.line(), error.column()),
            ));
        }
    };
    let Some(questions) = parsed.questions else {
        return Err(Problem::new(
            ErrorCode::InvalidContext,
            "the body has no `questions` array",
        ));
    };
    if questions.is_empty() {
        return Err(Problem::new(
            ErrorCode::InvalidContext,
            format!("`questions` must hold 1 to {max} questions"),
        ));
    }
    if questions.len() > max {
        return Err(Problem::new(
            ErrorCode::TooManyQuestions,
            format!("{} questions in one batch; at most {max}", questions.len()),
        ));
    }
    Ok(questions.into_iter().map(|ObjectOnly(q)| q).collect())
}

/// The REST batch door short of HTTP, the audit log and metrics: decodes `body` and judges its
/// questions against `snapshot`. For the fuzzer (`fuzz/fuzz_targets/rest_batch.rs`).
pub fn judge_batch_body(
    snapshot: &CompiledSnapshot,
    body: &[u8],
    max_questions: usize,
) -> Result<Vec<Result<crate::domain::Advice, ErrorCode>>, Problem> {
    let questions = parse_batch(body, max_questions)?;
    Ok(questions
        .into_iter()
        .map(|q| judge(snapshot, q.insz, q.date, q.premium_year).outcome)
        .collect())
}

async fn answer_batch(
    state: &web::Data<AppState>,
    client_id: &str,
    referte: &str,
    body: web::Bytes,
) -> Reply {
    // Parsing and judging run on a compute thread within the request's time budget.
    let work = {
        let state = state.clone();
        move |_deadline| judge_batch(&state, &body)
    };
    let (snapshot, judged) = match state.compute.run(Instant::now(), work).await {
        Ok(Ok(judged)) => judged,
        Ok(Err(reply)) => return reply,
        Err(super::guard::OverBudget) => {
            let mut problem = Problem::new(
                ErrorCode::NotReady,
                format!(
                    "the request could not be processed within the time budget of {} ms; \
                     retry later",
                    state.compute.budget.as_millis()
                ),
            );
            problem.status = 503;
            return problem_with_status(problem, StatusCode::SERVICE_UNAVAILABLE);
        }
    };
    if let Err(reply) = audit(state, client_id, referte, &snapshot, &judged).await {
        return reply;
    }
    let source = SourceJson::new(&snapshot.meta, &snapshot.rules.version);
    let answers = judged
        .iter()
        .map(|judged| {
            state.metrics.record_question(&judged.outcome);
            match &judged.outcome {
                Ok(advice) => BatchItem::Answer(AnswerJson::with_source(advice, source.borrowed())),
                Err(code) => BatchItem::Error {
                    error: Problem::from_code(*code),
                },
            }
        })
        .collect();
    let body = serde_json::to_vec(&BatchResponse { answers }).unwrap_or_default();
    (StatusCode::OK, body, "application/json")
}

/// The batch's questions judged against the snapshot in use, or the reply refusing the batch.
#[allow(clippy::type_complexity)]
fn judge_batch(
    state: &AppState,
    body: &[u8],
) -> Result<(std::sync::Arc<CompiledSnapshot>, Vec<Judged>), Reply> {
    let questions = match parse_batch(body, state.limits.rest_batch_questions) {
        Ok(questions) => questions,
        Err(refused) => {
            if refused.code == ErrorCode::TooManyQuestions.as_str() {
                state
                    .metrics
                    .record_request_error(ErrorCode::TooManyQuestions);
            }
            return Err(problem(refused));
        }
    };
    let Some(snapshot) = state.store.current() else {
        state.metrics.record_request_error(ErrorCode::NotReady);
        return Err(problem(Problem::from_code(ErrorCode::NotReady)));
    };
    let judged: Vec<Judged> = questions
        .into_iter()
        .map(|q| judge(&snapshot, q.insz, q.date, q.premium_year))
        .collect();
    Ok((snapshot, judged))
}

/// One question, in the order of every door: 30001, 30002, then the snapshot's own.
fn judge(
    snapshot: &CompiledSnapshot,
    insz: Loose<'_>,
    date: Loose<'_>,
    premium_year: Loose<'_>,
) -> Judged {
    let refused = |insz, code| Judged {
        insz,
        reference_date: None,
        found: None,
        outcome: Err(code),
    };
    let parsed = match insz.text(false) {
        Ok(Some(text)) => Insz::parse(&text).ok(),
        _ => None,
    };
    let Some(insz) = parsed else {
        return refused(None, ErrorCode::InvalidInsz);
    };
    let (Ok(date), Ok(year)) = (date.text(false), premium_year.text(true)) else {
        return refused(Some(insz), ErrorCode::InvalidReferenceDate);
    };
    let reference = match Reference::parse(date.as_deref(), year.as_deref()) {
        Ok(reference) => reference,
        Err(code) => return refused(Some(insz), code),
    };
    let question = Question { insz, reference };
    match snapshot.advise(&question) {
        Ok(advice) => Judged {
            insz: Some(insz),
            reference_date: Some(advice.reference_date),
            found: Some(advice.found),
            outcome: Ok(advice),
        },
        Err(refusal) => Judged {
            insz: Some(insz),
            reference_date: Some(reference.date()),
            found: refusal.found,
            outcome: Err(refusal.code),
        },
    }
}

pub fn problem(problem: Problem) -> Reply {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    problem_with_status(problem, status)
}

fn problem_with_status(
    problem: Problem,
    status: StatusCode,
) -> (StatusCode, Vec<u8>, &'static str) {
    (
        status,
        serde_json::to_vec(&problem).unwrap_or_default(),
        "application/problem+json",
    )
}

/// The response with the headers every REST response carries.
pub fn respond(
    request: &HttpRequest,
    referte: &str,
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((REQUEST_ID, request_id(request, referte)))
        .insert_header((REFERTE, referte.to_owned()))
        // Personal data: no cache on the way may keep it.
        .insert_header(("cache-control", "no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header(("retry-after", "5"));
    }
    response.body(body)
}

/// The caller's `X-Request-Id` when it is a sane token (1–128 visible ASCII characters), else
/// the server reference.
pub fn request_id(request: &HttpRequest, referte: &str) -> HeaderValue {
    request
        .headers()
        .get(REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_str(referte).unwrap_or(HeaderValue::from_static("-")))
}
