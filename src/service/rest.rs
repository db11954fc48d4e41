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

use super::body::{read_body, BodyError};
use super::state::AppState;
use crate::api::json::{AnswerJson, Problem};
use crate::domain::{CompiledSnapshot, ErrorCode, Question};
use crate::telemetry::metrics::{Door, Outcome};

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
    // Read from the match directly: no extractor that could answer with its own error format.
    let insz = request.match_info().query("insz");
    let (status, body, content_type) = answer_single(&state, &request, insz);
    let response = respond(&request, &referte, status, body, content_type);
    state.metrics.observe_request(
        Door::Rest,
        Outcome::from_status(status.as_u16()),
        started.elapsed(),
    );
    response
}

fn answer_single(
    state: &AppState,
    request: &HttpRequest,
    insz: &str,
) -> (StatusCode, Vec<u8>, &'static str) {
    let Some(snapshot) = state.store.current() else {
        state.metrics.record_request_error(ErrorCode::NotReady);
        return problem(Problem::from_code(ErrorCode::NotReady));
    };
    // A repeated or undecodable parameter is a malformed reference (30002), checked after the
    // INSZ as in every door.
    let query = serde_urlencoded::from_str::<SingleQuery>(request.query_string());
    let outcome = match &query {
        Ok(query) => Question::parse(insz, query.date.as_deref(), query.premium_year.as_deref()),
        Err(_) => Question::parse(insz, Some(""), None),
    }
    .and_then(|question| snapshot.advise(&question).map_err(|refusal| refusal.code));
    state.metrics.record_question(&outcome);
    match outcome {
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

/// `POST /v1/integration-obligation:batch`.
pub async fn batch(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let referte = state.references.next();
    let (status, body, content_type) =
        match read_body(&request, payload, state.limits.body_bytes).await {
            Ok(body) => answer_batch(&state, &body),
            Err(BodyError::TooLarge) => too_large(state.limits.body_bytes),
            Err(BodyError::Broken) => problem(Problem::new(
                ErrorCode::InvalidContext,
                "the request body could not be read",
            )),
        };
    let response = respond(&request, &referte, status, body, content_type);
    state.metrics.observe_request(
        Door::RestBatch,
        Outcome::from_status(status.as_u16()),
        started.elapsed(),
    );
    response
}

/// A body over the limit: 413 with the catalogue's "too many questions" code, the only one that
/// says "you sent too much".
pub fn too_large(limit: usize) -> (StatusCode, Vec<u8>, &'static str) {
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

fn answer_batch(state: &AppState, body: &[u8]) -> (StatusCode, Vec<u8>, &'static str) {
    let parsed: BatchRequest = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        // The parser's own message may quote the body (an INSZ): only its position is given.
        Err(error) => {
            let what = if error.is_syntax() || error.is_eof() {
                "the body is not valid JSON"
            } else {
                "the body is not a JSON object of the form {\"questions\": [...]}"
            };
            return problem(Problem::new(
                ErrorCode::InvalidContext,
                format!("{what} (line {}, column {})", error.line(), error.column()),
            ));
        }
    };
    let Some(questions) = parsed.questions else {
        return problem(Problem::new(
            ErrorCode::InvalidContext,
            "the body has no `questions` array",
        ));
    };
    let max = state.limits.rest_batch_questions;
    if questions.is_empty() {
        return problem(Problem::new(
            ErrorCode::InvalidContext,
            format!("`questions` must hold 1 to {max} questions"),
        ));
    }
    if questions.len() > max {
        state
            .metrics
            .record_request_error(ErrorCode::TooManyQuestions);
        return problem(Problem::new(
            ErrorCode::TooManyQuestions,
            format!("{} questions in one batch; at most {max}", questions.len()),
        ));
    }
    let Some(snapshot) = state.store.current() else {
        state.metrics.record_request_error(ErrorCode::NotReady);
        return problem(Problem::from_code(ErrorCode::NotReady));
    };
    let answers = questions
        .iter()
        .map(|question| {
            let outcome = judge(&snapshot, &question.0);
            state.metrics.record_question(&outcome);
            match outcome {
                Ok(advice) => BatchItem::Answer(AnswerJson::new(
                    &advice,
                    &snapshot.meta,
                    &snapshot.rules.version,
                )),
                Err(code) => BatchItem::Error {
                    error: Problem::from_code(code),
                },
            }
        })
        .collect();
    let body = serde_json::to_vec(&BatchResponse { answers }).unwrap_or_default();
    (StatusCode::OK, body, "application/json")
}

/// One batch question, in the order of every door: 30001, 30002, then the snapshot's own.
fn judge(
    snapshot: &CompiledSnapshot,
    question: &BatchQuestion<'_>,
) -> Result<crate::domain::Advice, ErrorCode> {
    let insz = match question.insz.text(false) {
        Ok(Some(insz)) => insz,
        _ => return Err(ErrorCode::InvalidInsz),
    };
    let (Ok(date), Ok(year)) = (question.date.text(false), question.premium_year.text(true)) else {
        crate::domain::Insz::parse(&insz).map_err(|_| ErrorCode::InvalidInsz)?;
        return Err(ErrorCode::InvalidReferenceDate);
    };
    let question = Question::parse(&insz, date.as_deref(), year.as_deref())?;
    snapshot.advise(&question).map_err(|refusal| refusal.code)
}

pub fn problem(problem: Problem) -> (StatusCode, Vec<u8>, &'static str) {
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
