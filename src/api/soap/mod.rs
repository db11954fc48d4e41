//! The SOAP door (MAGDA conventions): `GeefAdviesInburgeringsplicht` 01.00.0000.
//!
//! CONTRACT (fixed so that the SOAP codec and the HTTP server can be built side by side):
//! the server calls [`respond`] with the raw request body and gets back the HTTP status, the
//! rendered body and one [`QuestionRecord`] per question (for the audit log and metrics), and
//! serves [`wsdl_document`] at `?wsdl`. Everything SOAP-specific stays behind these two
//! functions.
//!
//! Inside: [`parse`] reads the body in one streaming pass (hostile input → Fault), this module
//! judges the values (request-level and question-level Uitzonderingen) and asks the core, and
//! [`render`] writes the reply into one buffer. `docs/soap.md` documents the choices.
//!
//! Order of judgement, first match wins: a Fault for anything structural
//! ([`parse::FaultReason`]); then request-level Uitzonderingen: 30012 (context), the caller's
//! authorisation hook ([`respond_checked`], 30010), 30011 (too many questions), 30020 (no
//! snapshot); then each question on its own: 30012 (its Referte), 30001, 30002, 30003, 30004.

pub mod parse;
pub mod render;
mod time;
pub mod wsdl;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::domain::{Advice, CompiledSnapshot, ErrorCode, Insz, Question};
use parse::{RawContext, RawQuestion, Value};
use render::{Ontvanger, ReplyHead, XmlOut};

/// Bounds on what a request may make the parser do (`security-and-audit.md`).
#[derive(Debug, Clone)]
pub struct XmlLimits {
    /// Deepest element nesting accepted (32).
    pub max_depth: usize,
    /// Most elements accepted in one body.
    pub max_elements: usize,
    /// Most `Vraag` per request (1,000); more gives request-level Uitzondering 30011.
    pub max_questions: usize,
    /// Most attributes on one element, namespace declarations included.
    pub max_attributes: usize,
    /// Most namespace declarations (`xmlns`, `xmlns:p`) on one element.
    pub max_namespace_declarations: usize,
    /// Most namespace declarations in scope at once (on an element and its ancestors).
    pub max_namespaces_in_scope: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_depth: 32,
            max_elements: 50_000,
            max_questions: 1_000,
            max_attributes: 64,
            max_namespace_declarations: 32,
            max_namespaces_in_scope: 64,
        }
    }
}

/// What the server knows of the call.
#[derive(Debug, Clone, Copy)]
pub struct SoapCall<'a> {
    /// The snapshot to answer from; `None` while none is loaded (30020).
    pub snapshot: Option<&'a CompiledSnapshot>,
    /// Bounds on the parse and on the number of questions.
    pub limits: &'a XmlLimits,
    /// This reply's unique server reference (1–36 characters), also sent as a header.
    pub server_referte: &'a str,
    /// This service's own `Afzender/Identificatie` in replies.
    pub service_identificatie: &'a str,
}

/// The outcome of one `Vraag`, for the audit log and metrics (never rendered as such).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionRecord {
    /// The question's `Referte`.
    pub referte: String,
    /// The INSZ if it parsed.
    pub insz: Option<Insz>,
    /// The advice, or the code of the question's Uitzondering.
    pub outcome: Result<Advice, ErrorCode>,
    /// Whether the INSZ was in the snapshot, when the question reached the index.
    pub found: Option<bool>,
}

/// The caller's context as sent (echoed in `Ontvanger`; audited).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerContext {
    /// `Afzender/Identificatie` (empty when absent; at most [`parse::MAX_VALUE_BYTES`] kept).
    pub identificatie: String,
    /// `Afzender/Referte` (empty when absent).
    pub referte: String,
    /// `Afzender/Hoedanigheid` (empty when absent).
    pub hoedanigheid: String,
    /// `Afzender/Gebruiker`, when sent.
    pub gebruiker: Option<String>,
}

/// A rendered SOAP response.
#[derive(Debug, Clone)]
pub struct SoapResponse {
    /// 200 for replies (also those with Uitzonderingen), 500 for SOAP Faults.
    pub http_status: u16,
    /// The SOAP envelope (UTF-8, `text/xml`).
    pub body: Vec<u8>,
    /// The caller's context, when the envelope got that far.
    pub caller: Option<CallerContext>,
    /// One record per `Vraag` that was judged, in order; empty for Faults and for request-level
    /// Uitzonderingen (then no question was answered).
    pub questions: Vec<QuestionRecord>,
}

/// Parses, answers and renders one SOAP request. Never panics on any input.
pub fn respond(body: &[u8], call: &SoapCall<'_>) -> SoapResponse {
    respond_at(body, call, Utc::now())
}

/// [`respond`] with the reply's `Tijdstip` taken from `now` (tests and benches: stable bytes).
pub fn respond_at(body: &[u8], call: &SoapCall<'_>, now: DateTime<Utc>) -> SoapResponse {
    answer(body, call, now, &|_| Ok(()), None)
}

/// [`respond`] with an authorisation hook: `authorise` sees the validated caller context before
/// any question is answered, and an `Err(code)` (30010 for a sender that does not belong to the
/// client, 30013 for a rate limit) becomes the request-level Uitzondering of the reply.
pub fn respond_checked(
    body: &[u8],
    call: &SoapCall<'_>,
    authorise: &dyn Fn(&CallerContext) -> Result<(), ErrorCode>,
) -> SoapResponse {
    answer(body, call, Utc::now(), authorise, None)
}

/// [`respond_checked`] within a time budget: past `deadline` the parse stops and the reply is a
/// `soap:Server` Fault (the server's budget ran out; nothing was answered).
pub fn respond_checked_until(
    body: &[u8],
    call: &SoapCall<'_>,
    authorise: &dyn Fn(&CallerContext) -> Result<(), ErrorCode>,
    deadline: std::time::Instant,
) -> SoapResponse {
    answer(body, call, Utc::now(), authorise, Some(deadline))
}

/// A reply (HTTP 200) with only a request-level Uitzondering `code`, for refusals the server
/// decides after [`respond`] (30021 when the audit log cannot be written, 30010, 30013). The
/// caller's valid context values are echoed in `Ontvanger`; `questions` is empty.
pub fn refuse_request(
    caller: Option<&CallerContext>,
    code: ErrorCode,
    call: &SoapCall<'_>,
) -> SoapResponse {
    let ontvanger = caller.map_or_else(Ontvanger::default, |caller| Ontvanger {
        identificatie: checked(&caller.identificatie, MAX_IDENTIFICATIE),
        referte: checked(&caller.referte, MAX_REFERTE),
        hoedanigheid: checked(&caller.hoedanigheid, MAX_HOEDANIGHEID),
    });
    request_level(
        &head(call, Utc::now(), ontvanger),
        caller.cloned(),
        code,
        code.diagnose_nl(),
    )
}

/// The WSDL with its `soap:address` set to `endpoint` (the URL the caller used).
pub fn wsdl_document(endpoint: &str) -> String {
    wsdl::document(endpoint)
}

/// A SOAP 1.1 `Client` Fault (HTTP 500) for requests the server refuses before parsing, such as
/// a body over the size limit. `message` must not contain request data.
pub fn client_fault(message: &str) -> SoapResponse {
    SoapResponse {
        http_status: 500,
        body: render::fault("soap:Client", message),
        caller: None,
        questions: Vec::new(),
    }
}

/// A SOAP 1.1 `Server` Fault (HTTP 500): the server could not process the request (its time
/// budget ran out); the message may be fine and may be sent again. `message` must not contain
/// request data.
pub fn server_fault(message: &str) -> SoapResponse {
    SoapResponse {
        http_status: 500,
        body: render::fault("soap:Server", message),
        caller: None,
        questions: Vec::new(),
    }
}

/// Longest `Referte` (sender's and question's), as MAGDA fixes it.
pub const MAX_REFERTE: usize = 36;
/// Longest `Afzender/Identificatie` accepted.
pub const MAX_IDENTIFICATIE: usize = 128;
/// Longest `Afzender/Hoedanigheid` accepted.
pub const MAX_HOEDANIGHEID: usize = 32;
/// Longest `Afzender/Gebruiker` accepted.
pub const MAX_GEBRUIKER: usize = 128;

fn answer(
    body: &[u8],
    call: &SoapCall<'_>,
    now: DateTime<Utc>,
    authorise: &dyn Fn(&CallerContext) -> Result<(), ErrorCode>,
    deadline: Option<std::time::Instant>,
) -> SoapResponse {
    let request = match parse::parse_until(body, call.limits, deadline) {
        Ok(request) => request,
        Err(reason) => {
            return SoapResponse {
                http_status: 500,
                body: render::fault(reason.faultcode(), &reason.to_string()),
                caller: None,
                questions: Vec::new(),
            }
        }
    };
    let context = &request.context;
    let caller = caller_context(context);
    let head = head(call, now, ontvanger(context));

    if let Err(detail) = check_context(context) {
        let diagnose = format!("{}: {detail}", ErrorCode::InvalidContext.diagnose_nl());
        return request_level(&head, Some(caller), ErrorCode::InvalidContext, &diagnose);
    }
    if let Err(code) = authorise(&caller) {
        return request_level(&head, Some(caller), code, code.diagnose_nl());
    }
    if request.question_count > call.limits.max_questions {
        let code = ErrorCode::TooManyQuestions;
        let diagnose = format!(
            "{} (maximum {})",
            code.diagnose_nl(),
            call.limits.max_questions
        );
        return request_level(&head, Some(caller), code, &diagnose);
    }
    let Some(snapshot) = call.snapshot else {
        let code = ErrorCode::NotReady;
        return request_level(&head, Some(caller), code, code.diagnose_nl());
    };

    let bron = render::bron(
        &snapshot.meta.snapshot_id,
        &snapshot.meta.extracted_at,
        &snapshot.rules.version,
    );
    let mut out = XmlOut::for_answers(request.questions.len());
    render::begin_reply(&mut out, &head);
    render::begin_answers(&mut out);
    let mut records = Vec::with_capacity(request.questions.len());
    for raw in &request.questions {
        records.push(answer_question(&mut out, raw, snapshot, &bron));
    }
    render::end_answers(&mut out);
    render::end_reply(&mut out);
    SoapResponse {
        http_status: 200,
        body: out.into_bytes(),
        caller: Some(caller),
        questions: records,
    }
}

/// Judges, answers and renders one `Vraag`; the returned record is for the audit log.
fn answer_question(
    out: &mut XmlOut,
    raw: &RawQuestion,
    snapshot: &CompiledSnapshot,
    bron: &[u8],
) -> QuestionRecord {
    // A truncated value was longer than any valid one: it stands in as a text that no parser
    // accepts, so the usual code (30001/30002) follows.
    fn arg(value: &Option<Value>) -> Option<&str> {
        value.as_ref().map(|v| {
            if v.truncated {
                "\u{0}"
            } else {
                v.text.as_str()
            }
        })
    }
    let insz_text = arg(&raw.insz).unwrap_or("");
    let referte = raw.referte.as_ref().and_then(|r| r.within(MAX_REFERTE));
    let Some(referte) = referte else {
        // The Referte is how the caller files the answer; without a valid one the question is
        // not answered, but it keeps its place so the others still line up.
        let code = ErrorCode::InvalidContext;
        let diagnose = format!(
            "{}: Referte van de vraag ontbreekt of is langer dan {MAX_REFERTE} tekens",
            code.diagnose_nl()
        );
        render::answer_error(out, None, code, &diagnose);
        return QuestionRecord {
            referte: String::new(),
            insz: Insz::parse(insz_text).ok(),
            outcome: Err(code),
            found: None,
        };
    };
    let outcome = Question::parse(insz_text, arg(&raw.referentiedatum), arg(&raw.premiejaar))
        .map_err(|code| (code, None))
        .and_then(|question| {
            snapshot
                .advise(&question)
                .map_err(|refusal| (refusal.code, refusal.found))
        });
    match outcome {
        Ok(advice) => {
            render::answer_advice(out, Some(referte), &advice, bron);
            QuestionRecord {
                referte: referte.to_string(),
                insz: Some(advice.insz),
                outcome: Ok(advice),
                found: Some(advice.found),
            }
        }
        Err((code, found)) => {
            render::answer_error(out, Some(referte), code, code.diagnose_nl());
            QuestionRecord {
                referte: referte.to_string(),
                insz: Insz::parse(insz_text).ok(),
                outcome: Err(code),
                found,
            }
        }
    }
}

/// A reply whose only content is one request-level Uitzondering.
fn request_level(
    head: &ReplyHead<'_>,
    caller: Option<CallerContext>,
    code: ErrorCode,
    diagnose: &str,
) -> SoapResponse {
    let mut out = XmlOut::for_answers(0);
    render::begin_reply(&mut out, head);
    render::uitzonderingen(&mut out, code, diagnose);
    render::end_reply(&mut out);
    SoapResponse {
        http_status: 200,
        body: out.into_bytes(),
        caller,
        questions: Vec::new(),
    }
}

fn head<'a>(call: &SoapCall<'a>, now: DateTime<Utc>, ontvanger: Ontvanger<'a>) -> ReplyHead<'a> {
    // The schema requires both; the server is meant to pass valid ones, but a reply must stay
    // valid even if it does not.
    let service_identificatie =
        checked(call.service_identificatie, MAX_IDENTIFICATIE).unwrap_or("kbi-advice");
    let server_referte = checked(call.server_referte, MAX_REFERTE).unwrap_or("-");
    ReplyHead {
        now,
        service_identificatie,
        server_referte,
        ontvanger,
    }
}

fn checked(text: &str, max_chars: usize) -> Option<&str> {
    let chars = text.chars().count();
    (chars >= 1 && chars <= max_chars).then_some(text)
}

fn caller_context(context: &RawContext) -> CallerContext {
    let text = |value: &Option<Value>| value.as_ref().map_or_else(String::new, |v| v.text.clone());
    CallerContext {
        identificatie: text(&context.identificatie),
        referte: text(&context.referte),
        hoedanigheid: text(&context.hoedanigheid),
        gebruiker: context.gebruiker.as_ref().map(|v| v.text.clone()),
    }
}

/// The caller's values echoed in `Ontvanger`: only those that are valid, so the reply stays
/// within the schema whatever was sent.
fn ontvanger(context: &RawContext) -> Ontvanger<'_> {
    fn valid(value: &Option<Value>, max: usize) -> Option<&str> {
        value.as_ref().and_then(|v| v.within(max))
    }
    Ontvanger {
        identificatie: valid(&context.identificatie, MAX_IDENTIFICATIE),
        referte: valid(&context.referte, MAX_REFERTE),
        hoedanigheid: valid(&context.hoedanigheid, MAX_HOEDANIGHEID),
    }
}

/// The request context rules (30012); the error is the Dutch detail appended to the diagnosis.
fn check_context(context: &RawContext) -> Result<(), &'static str> {
    let is = |value: &Option<Value>, expected: &str| {
        value
            .as_ref()
            .is_some_and(|v| !v.truncated && v.text == expected)
    };
    let present = |value: &Option<Value>, max| value.as_ref().and_then(|v| v.within(max)).is_some();
    if !is(&context.naam, render::NAAM) {
        return Err("Naam moet GeefAdviesInburgeringsplicht zijn");
    }
    if !is(&context.versie, render::VERSIE) {
        return Err("Versie moet 01.00.0000 zijn");
    }
    if !context.bericht {
        return Err("Bericht ontbreekt");
    }
    if !is(&context.bericht_type, "VRAAG") {
        return Err("Bericht/Type moet VRAAG zijn");
    }
    let datum_ok = context.datum.as_ref().is_some_and(|v| valid_datum(&v.text));
    let tijd_ok = context.tijd.as_ref().is_some_and(|v| valid_tijd(&v.text));
    if !context.tijdstip || !datum_ok || !tijd_ok {
        return Err(
            "Bericht/Tijdstip ontbreekt of is ongeldig (Datum JJJJ-MM-DD, Tijd UU:mm:ss.SSS)",
        );
    }
    if !context.afzender {
        return Err("Bericht/Afzender ontbreekt");
    }
    if !present(&context.identificatie, MAX_IDENTIFICATIE) {
        return Err("Afzender/Identificatie ontbreekt of is langer dan 128 tekens");
    }
    if !present(&context.referte, MAX_REFERTE) {
        return Err("Afzender/Referte ontbreekt of is langer dan 36 tekens");
    }
    if !present(&context.hoedanigheid, MAX_HOEDANIGHEID) {
        return Err("Afzender/Hoedanigheid ontbreekt of is langer dan 32 tekens");
    }
    if let Some(gebruiker) = &context.gebruiker {
        if gebruiker.truncated || gebruiker.text.chars().count() > MAX_GEBRUIKER {
            return Err("Afzender/Gebruiker is langer dan 128 tekens");
        }
    }
    Ok(())
}

/// Whether `text` matches `pattern`, where `9` stands for any ASCII digit.
fn shaped(text: &str, pattern: &str) -> bool {
    text.len() == pattern.len()
        && text.bytes().zip(pattern.bytes()).all(|(t, p)| match p {
            b'9' => t.is_ascii_digit(),
            p => t == p,
        })
}

/// `Datum`: YYYY-MM-DD, an existing day.
fn valid_datum(text: &str) -> bool {
    shaped(text, "9999-99-99") && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// `Tijd`: HH:mm:ss.SSS, an existing time of day.
fn valid_tijd(text: &str) -> bool {
    shaped(text, "99:99:99.999") && NaiveTime::parse_from_str(text, "%H:%M:%S%.3f").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datum_and_tijd_are_strict() {
        assert!(valid_datum("2026-01-31"));
        assert!(!valid_datum("2026-02-30"));
        assert!(!valid_datum("2026-1-31"));
        assert!(!valid_datum("2026-01-31Z"));
        assert!(valid_tijd("23:59:59.999"));
        assert!(!valid_tijd("24:00:00.000"));
        assert!(!valid_tijd("12:00:00"));
        assert!(!valid_tijd("12:00:00.1234"));
    }

    #[test]
    fn client_fault_is_a_soap_client_fault_with_escaped_text() {
        let response = client_fault("body larger than 1 MiB & refused");
        assert_eq!(response.http_status, 500);
        let body = String::from_utf8(response.body).unwrap();
        assert!(body.contains("<faultcode>soap:Client</faultcode>"));
        assert!(body.contains("<faultstring>body larger than 1 MiB &amp; refused</faultstring>"));
    }
}
