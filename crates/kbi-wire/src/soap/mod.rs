//! The SOAP door's wire format (MAGDA conventions): `GeefAdviesInburgeringsplicht` 01.00.0000.
//!
//! Three steps, each a plain function, as the server's door calls them:
//! - [`parse`] reads the body in one streaming pass ([`parse::parse_until`]) and checks the
//!   request context: the [`Envelope`] (the caller's context and the questions as sent), or the
//!   [`Reply`] that ends the request there (a Fault for anything structural, request-level
//!   Uitzondering 30012 for the context);
//! - [`judge`] answers each question against a snapshot into a door-neutral [`Verdict`]
//!   (question-level Uitzonderingen 30012 for its Referte, 30001, 30002, 30003, 30004);
//! - [`render`] writes a [`Reply`] into one buffer.
//!
//! [`parse_admit_judge`] is the one path through the first two for the server and for the codec
//! alone: parse, the door's admission (the server: 30010, 30011, 30013), the snapshot (30020),
//! judge; the server then writes the audit log (30021): refusals are decided before anything
//! is judged. [`respond`] chains it with [`render`] without a server (tests, benches, fuzzing).
//! `docs/soap.md` documents the choices.

pub mod fast;
pub mod parse;
pub mod render;
mod time;
pub mod wsdl;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use kbi_core::domain::magda::Sender;
pub use kbi_core::domain::magda::{
    MAX_GEBRUIKER, MAX_HOEDANIGHEID, MAX_IDENTIFICATIE, MAX_REFERTE,
};
use kbi_core::domain::{
    Admission, AdmittedCaller, CompiledSnapshot, ErrorCode, Insz, Question, Unbound, Verdict,
};
pub use parse::Road;
use parse::{RawContext, RawQuestion, Value};
use render::{Ontvanger, ReplyHead, XmlOut};

/// The largest body the server reads and judges on the network thread that received it when the
/// fast reader takes it ([`parse_fast`]: the canonical shape, whose cost is that of its
/// questions); a larger body, or one of more than [`HARDENED_INLINE_MAX_BYTES`] that the fast
/// reader defers, goes to the compute pool within the request's time budget. The hop to another
/// thread and back costs two context switches (`load-tests/ctxsw.py`), more than the whole parse
/// of a small body on a machine whose cores are all busy. Measured: `docs/soap.md`, "Inline or
/// compute pool", and `cargo bench --bench soap -- soap_inline_bound`.
pub const INLINE_MAX_BYTES: usize = 16 * 1024;

/// The largest body the hardened parser reads on the network thread. Every limit of
/// [`XmlLimits`] makes its parse linear, but an unusual body costs several times a canonical one
/// per byte (4,000 empty header elements in 16 KiB: ≈ 3.5 M instructions), so only bodies this
/// small, whose worst case stays well under a millisecond, are read inline whatever they hold.
pub const HARDENED_INLINE_MAX_BYTES: usize = 4 * 1024;

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

/// What the server knows of the call, for [`respond`].
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

/// A request whose envelope and context are valid: who asks, and what. The questions' values
/// borrow from the body when the fast reader read it (`'b`); [`Envelope::into_owned`] for one
/// that must outlive the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'b> {
    /// The caller's context (every value present and within its MAGDA length), borrowed from
    /// the body when the fast reader read it: lent to the admission step, the audit records
    /// ([`Caller::to_sender`], only when they are written) and the reply's `Ontvanger`.
    pub caller: Caller<'b>,
    /// The first [`XmlLimits::max_questions`] questions, in document order.
    pub questions: Vec<RawQuestion<'b>>,
    /// How many `Vraag` the request held (may exceed `questions.len()`: then 30011).
    pub question_count: usize,
}

impl Envelope<'_> {
    /// The same envelope, owning its values (a request read on a compute thread is handed back
    /// to the network thread without its body).
    pub fn into_owned(self) -> Envelope<'static> {
        Envelope {
            caller: self.caller.into_owned(),
            questions: self
                .questions
                .into_iter()
                .map(RawQuestion::into_owned)
                .collect(),
            question_count: self.question_count,
        }
    }
}

/// The caller's `Afzender` values as the request holds them: borrowed from the body on the fast
/// road, so that a request whose records are not written allocates nothing for them. The
/// audit records and the codec's [`SoapResponse`] take a [`Sender`] ([`Caller::to_sender`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller<'b> {
    /// `Afzender/Identificatie` (empty when absent).
    pub identificatie: Cow<'b, str>,
    /// `Afzender/Referte` (empty when absent).
    pub referte: Cow<'b, str>,
    /// `Afzender/Hoedanigheid` (empty when absent).
    pub hoedanigheid: Cow<'b, str>,
    /// `Afzender/Gebruiker`, when sent.
    pub gebruiker: Option<Cow<'b, str>>,
}

impl Caller<'_> {
    /// The same values, owned, as the audit records keep them.
    pub fn to_sender(&self) -> Sender {
        Sender {
            identificatie: self.identificatie.clone().into_owned(),
            referte: self.referte.clone().into_owned(),
            hoedanigheid: self.hoedanigheid.clone().into_owned(),
            gebruiker: self.gebruiker.clone().map(Cow::into_owned),
        }
    }

    /// The same values, owning their text (for a request that must outlive its body).
    pub fn into_owned(self) -> Caller<'static> {
        Caller {
            identificatie: Cow::Owned(self.identificatie.into_owned()),
            referte: Cow::Owned(self.referte.into_owned()),
            hoedanigheid: Cow::Owned(self.hoedanigheid.into_owned()),
            gebruiker: self.gebruiker.map(|g| Cow::Owned(g.into_owned())),
        }
    }

    /// The values echoed in `Ontvanger`: only the valid ones (the rule of [`Recipient`]).
    fn as_ontvanger(&self) -> Ontvanger<'_> {
        Ontvanger {
            identificatie: checked(&self.identificatie, MAX_IDENTIFICATIE),
            referte: checked(&self.referte, MAX_REFERTE),
            hoedanigheid: checked(&self.hoedanigheid, MAX_HOEDANIGHEID),
        }
    }
}

/// What the snapshot an answer rests on says of itself: its `Bron` element (`SnapshotId`,
/// `Extractiedatum`, `Regelset`), encoded once and copied as bytes into every `Advies`. Shared:
/// the server encodes it once per snapshot, not per reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    bron: Vec<u8>,
}

impl Source {
    pub fn of(snapshot: &CompiledSnapshot) -> Source {
        Source {
            bron: render::bron(
                &snapshot.meta.snapshot_id,
                &snapshot.extracted_at_text,
                &snapshot.rules.version,
            ),
        }
    }
}

/// The caller's context values echoed in `Ontvanger`: only those that are valid, so the reply
/// stays within the schema whatever was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipient {
    pub identificatie: Option<String>,
    pub referte: Option<String>,
    pub hoedanigheid: Option<String>,
}

impl Recipient {
    /// The values [`Caller::as_ontvanger`] echoes (the one echo rule), owned by the reply.
    fn of(caller: &Caller<'_>) -> Recipient {
        let ontvanger = caller.as_ontvanger();
        Recipient {
            identificatie: ontvanger.identificatie.map(str::to_owned),
            referte: ontvanger.referte.map(str::to_owned),
            hoedanigheid: ontvanger.hoedanigheid.map(str::to_owned),
        }
    }

    fn as_ontvanger(&self) -> Ontvanger<'_> {
        Ontvanger {
            identificatie: self.identificatie.as_deref(),
            referte: self.referte.as_deref(),
            hoedanigheid: self.hoedanigheid.as_deref(),
        }
    }
}

/// What is sent back, before it is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A SOAP 1.1 Fault (HTTP 500): `faultcode` (`soap:Client`, `soap:Server`, …) and a message
    /// that never holds request data.
    Fault {
        faultcode: &'static str,
        faultstring: String,
    },
    /// A reply (HTTP 200) with one request-level Uitzondering: no question was answered.
    Refused {
        recipient: Recipient,
        code: ErrorCode,
        diagnose: String,
    },
    /// A reply (HTTP 200) with one `Antwoord` per question, in order.
    Answers {
        recipient: Recipient,
        verdicts: Vec<Verdict>,
        /// Shared: the server keeps one per snapshot (and a refusal does not carry its size).
        source: Arc<Source>,
    },
}

impl Reply {
    /// A `soap:Client` Fault for requests the server refuses before parsing, such as a body over
    /// the size limit. `message` must not contain request data.
    pub fn client_fault(message: impl Into<String>) -> Reply {
        Reply::Fault {
            faultcode: "soap:Client",
            faultstring: message.into(),
        }
    }

    /// A `soap:Server` Fault: the server could not process the request (its time budget ran
    /// out); the message may be fine and may be sent again. `message` must not contain request
    /// data.
    pub fn server_fault(message: impl Into<String>) -> Reply {
        Reply::Fault {
            faultcode: "soap:Server",
            faultstring: message.into(),
        }
    }

    /// The request-level Uitzondering `code` (with its catalogue diagnosis) for `caller`, whose
    /// valid values are echoed in `Ontvanger`.
    pub fn refused(caller: &Caller<'_>, code: ErrorCode) -> Reply {
        Reply::refused_because(caller, code, code.diagnose_nl().to_owned())
    }

    /// 30011: more than `max` questions.
    pub fn too_many_questions(caller: &Caller<'_>, max: usize) -> Reply {
        let code = ErrorCode::TooManyQuestions;
        let diagnose = format!("{} (maximum {max})", code.diagnose_nl());
        Reply::refused_because(caller, code, diagnose)
    }

    fn refused_because(caller: &Caller<'_>, code: ErrorCode, diagnose: String) -> Reply {
        Reply::Refused {
            recipient: Recipient::of(caller),
            code,
            diagnose,
        }
    }

    /// The answers to the questions of `caller`'s request (its valid values echoed in
    /// `Ontvanger`).
    pub fn answers(caller: Caller<'_>, verdicts: Vec<Verdict>, source: Arc<Source>) -> Reply {
        Reply::Answers {
            recipient: Recipient::of(&caller),
            verdicts,
            source,
        }
    }

    /// 200 for replies (also those with Uitzonderingen), 500 for SOAP Faults.
    pub fn http_status(&self) -> u16 {
        match self {
            Reply::Fault { .. } => 500,
            Reply::Refused { .. } | Reply::Answers { .. } => 200,
        }
    }

    /// The judged questions (empty for Faults and request-level Uitzonderingen).
    pub fn verdicts(&self) -> &[Verdict] {
        match self {
            Reply::Answers { verdicts, .. } => verdicts,
            Reply::Fault { .. } | Reply::Refused { .. } => &[],
        }
    }
}

/// Step 1: the body's envelope, or the reply that ends the request here: a Fault for anything
/// structural ([`parse::FaultReason`], including a parse past `deadline`), request-level
/// Uitzondering 30012 for an invalid context. Never panics on any input.
pub fn parse<'b>(
    body: &'b [u8],
    limits: &XmlLimits,
    deadline: Option<Instant>,
) -> Result<Envelope<'b>, Reply> {
    parse_on_road(body, limits, deadline).0
}

/// [`parse`], and which reader read the body (for `kbi_soap_fast_path_total`).
pub fn parse_on_road<'b>(
    body: &'b [u8],
    limits: &XmlLimits,
    deadline: Option<Instant>,
) -> (Result<Envelope<'b>, Reply>, Road) {
    let (request, road) = parse::parse_until(body, limits, deadline);
    let parsed = request
        .map_err(|reason| Reply::Fault {
            faultcode: reason.faultcode(),
            faultstring: reason.to_string(),
        })
        .and_then(envelope);
    (parsed, road)
}

/// [`parse`] if the fast reader takes the body ([`Road::Fast`]), else `None`: the caller then
/// hands the body to [`parse_admit_judge`] (the server: on the compute pool), whose parse defers
/// it again. For the server's choice of thread ([`INLINE_MAX_BYTES`]).
pub fn parse_fast<'b>(body: &'b [u8], limits: &XmlLimits) -> Option<Result<Envelope<'b>, Reply>> {
    fast::read(body, limits).map(envelope)
}

/// The request's context checked (30012), and the envelope of a valid one.
fn envelope(request: parse::RawRequest<'_>) -> Result<Envelope<'_>, Reply> {
    if let Err(detail) = check_context(&request.context) {
        let code = ErrorCode::InvalidContext;
        return Err(Reply::Refused {
            // The same echo rule as every other reply's (a value cut at MAX_VALUE_BYTES has more
            // characters than any MAGDA maximum, so it is never echoed).
            recipient: Recipient::of(&caller_context(request.context)),
            code,
            diagnose: format!("{}: {detail}", code.diagnose_nl()),
        });
    }
    Ok(Envelope {
        caller: caller_context(request.context),
        questions: request.questions,
        question_count: request.question_count,
    })
}

/// Step 2: each question of `envelope` judged against `snapshot`, in order, under the caller's
/// protocol: `admission` checks each question after its INSZ and reference were read and before
/// the snapshot's own checks (`protocols.md` §2: 30001, 30002, 30005, 30003, 30004).
pub fn judge(
    envelope: &Envelope<'_>,
    snapshot: &CompiledSnapshot,
    admission: &impl Admission,
) -> Vec<Verdict> {
    envelope
        .questions
        .iter()
        .map(|question| judge_question(question, snapshot, admission))
        .collect()
}

/// Who answers: this service's `Afzender` in every reply.
#[derive(Debug, Clone, Copy)]
pub struct Responder<'a> {
    /// This service's own `Afzender/Identificatie`.
    pub service_identificatie: &'a str,
    /// This reply's unique server reference (1–36 characters), also sent as a header.
    pub server_referte: &'a str,
}

impl<'a> SoapCall<'a> {
    pub fn responder(&self) -> Responder<'a> {
        Responder {
            service_identificatie: self.service_identificatie,
            server_referte: self.server_referte,
        }
    }
}

/// Step 3: the reply as bytes (UTF-8, `text/xml`), with `now` as its `Tijdstip`.
pub fn render(reply: &Reply, responder: &Responder<'_>, now: DateTime<Utc>) -> Vec<u8> {
    match reply {
        Reply::Fault {
            faultcode,
            faultstring,
        } => render::fault(faultcode, faultstring),
        Reply::Refused {
            recipient,
            code,
            diagnose,
        } => {
            let mut out = XmlOut::for_answers(0);
            render::begin_reply(&mut out, &head(responder, now, recipient.as_ontvanger()));
            render::uitzonderingen(&mut out, *code, diagnose);
            render::end_reply(&mut out);
            out.into_bytes()
        }
        Reply::Answers {
            recipient,
            verdicts,
            source,
        } => answers_bytes(recipient.as_ontvanger(), verdicts, source, responder, now),
    }
}

/// [`render`] of `Reply::answers(caller, verdicts, source)`, the same bytes, without making
/// the reply: the caller's values are echoed from where they are (the server's answers, whose
/// request borrows from its body).
pub fn render_answers(
    caller: &Caller<'_>,
    verdicts: &[Verdict],
    source: &Source,
    responder: &Responder<'_>,
    now: DateTime<Utc>,
) -> Vec<u8> {
    answers_bytes(caller.as_ontvanger(), verdicts, source, responder, now)
}

fn answers_bytes(
    ontvanger: Ontvanger<'_>,
    verdicts: &[Verdict],
    source: &Source,
    responder: &Responder<'_>,
    now: DateTime<Utc>,
) -> Vec<u8> {
    let bron = &source.bron;
    let mut out = XmlOut::for_answers(verdicts.len());
    render::begin_reply(&mut out, &head(responder, now, ontvanger));
    render::begin_answers(&mut out);
    for verdict in verdicts {
        render_answer(&mut out, verdict, bron);
    }
    render::end_answers(&mut out);
    render::end_reply(&mut out);
    out.into_bytes()
}

/// A request parsed, admitted and judged ([`parse_admit_judge`]).
#[derive(Debug)]
pub struct Judged<'b, A, S> {
    pub envelope: Envelope<'b>,
    /// What the door's admission gave (the server: the admitted client).
    pub admitted: A,
    /// The snapshot the verdicts rest on.
    pub snapshot: S,
    /// One per question, in order.
    pub verdicts: Vec<Verdict>,
    /// Which reader read the body.
    pub road: Road,
}

/// A request that ended before it was judged: the reply, and the caller's context when the
/// request got as far as a valid context.
#[derive(Debug)]
pub struct Refused {
    pub reply: Reply,
    pub caller: Option<Sender>,
    /// Which reader read the body.
    pub road: Road,
}

/// The one path of a SOAP request, for the server's door and for the codec without a server
/// ([`respond_at`]): [`parse`] (until `deadline`), then the door's admission step `admit` (the
/// server: caller, operation, number of questions, rate; the codec: the number of questions),
/// then the snapshot in use, read only after admission (none: 30020), then [`judge`] with the
/// admitted caller's per-question check ([`AdmittedCaller::admission`]: its protocol, 30005).
/// The audit log and [`render`] follow in the door. Every refusal of the request as a whole is
/// decided before anything is judged.
pub fn parse_admit_judge<'b, A, S>(
    body: &'b [u8],
    limits: &XmlLimits,
    deadline: Option<Instant>,
    admit: impl FnOnce(&Envelope<'b>) -> Result<A, Reply>,
    snapshot: impl FnOnce() -> Option<S>,
) -> Result<Judged<'b, A, S>, Box<Refused>>
where
    A: AdmittedCaller,
    S: std::ops::Deref<Target = CompiledSnapshot>,
{
    let (parsed, road) = parse_on_road(body, limits, deadline);
    admit_judge(parsed, road, admit, snapshot)
}

/// [`parse_admit_judge`] after the parse: for a body already read (by [`parse_fast`]: `road`
/// is then [`Road::Fast`]).
pub fn admit_judge<'b, A, S>(
    parsed: Result<Envelope<'b>, Reply>,
    road: Road,
    admit: impl FnOnce(&Envelope<'b>) -> Result<A, Reply>,
    snapshot: impl FnOnce() -> Option<S>,
) -> Result<Judged<'b, A, S>, Box<Refused>>
where
    A: AdmittedCaller,
    S: std::ops::Deref<Target = CompiledSnapshot>,
{
    // Boxed: the refusal carries a reply and a context, and is the rare path.
    let envelope = parsed.map_err(|reply| {
        Box::new(Refused {
            reply,
            caller: None,
            road,
        })
    })?;
    let refused = |reply: Reply, envelope: Envelope<'b>| {
        Box::new(Refused {
            reply,
            caller: Some(envelope.caller.to_sender()),
            road,
        })
    };
    let admitted = match admit(&envelope) {
        Ok(admitted) => admitted,
        Err(reply) => return Err(refused(reply, envelope)),
    };
    let Some(snapshot) = snapshot() else {
        let reply = Reply::refused(&envelope.caller, ErrorCode::NotReady);
        return Err(refused(reply, envelope));
    };
    let verdicts = judge(&envelope, &snapshot, &admitted.admission());
    Ok(Judged {
        envelope,
        admitted,
        snapshot,
        verdicts,
        road,
    })
}

/// 30011: more `Vraag` than [`XmlLimits::max_questions`]; part of every door's admission.
pub fn check_question_count(envelope: &Envelope<'_>, limits: &XmlLimits) -> Result<(), Reply> {
    if envelope.question_count > limits.max_questions {
        return Err(Reply::too_many_questions(
            &envelope.caller,
            limits.max_questions,
        ));
    }
    Ok(())
}

/// What [`respond`] gives: the rendered reply, and what the server would audit and count.
#[derive(Debug, Clone)]
pub struct SoapResponse {
    /// 200 for replies (also those with Uitzonderingen), 500 for SOAP Faults.
    pub http_status: u16,
    /// The SOAP envelope (UTF-8, `text/xml`).
    pub body: Vec<u8>,
    /// The caller's context, when the request's context was valid.
    pub caller: Option<Sender>,
    /// One verdict per `Vraag`, in order; empty for Faults and request-level Uitzonderingen.
    pub questions: Vec<Verdict>,
}

/// The codec on its own, without a server: [`parse_admit_judge`] (admission = the number of
/// questions, 30011) and [`render`] of one request, with `now` as the reply's `Tijdstip`. The
/// server's door goes through the same [`parse_admit_judge`] with its own admission, then the
/// audit log; tests, benches and the fuzzer use this.
pub fn respond_at(body: &[u8], call: &SoapCall<'_>, now: DateTime<Utc>) -> SoapResponse {
    // Without a server there is no caller to admit: only the number of questions is checked, and
    // no protocol binds the questions (`Unbound`).
    let admit =
        |envelope: &Envelope<'_>| check_question_count(envelope, call.limits).map(|()| Unbound);
    let (reply, caller) = match parse_admit_judge(body, call.limits, None, admit, || call.snapshot)
    {
        Ok(judged) => {
            let source = Arc::new(Source::of(judged.snapshot));
            let caller = judged.envelope.caller.to_sender();
            let reply = Reply::answers(judged.envelope.caller, judged.verdicts, source);
            (reply, Some(caller))
        }
        Err(refused) => {
            let Refused { reply, caller, .. } = *refused;
            (reply, caller)
        }
    };
    SoapResponse {
        http_status: reply.http_status(),
        body: render(&reply, &call.responder(), now),
        caller,
        questions: match reply {
            Reply::Answers { verdicts, .. } => verdicts,
            Reply::Fault { .. } | Reply::Refused { .. } => Vec::new(),
        },
    }
}

/// [`respond_at`] now.
pub fn respond(body: &[u8], call: &SoapCall<'_>) -> SoapResponse {
    respond_at(body, call, Utc::now())
}

/// The WSDL with its `soap:address` set to `endpoint` (the URL the caller used).
pub fn wsdl_document(endpoint: &str) -> String {
    wsdl::document(endpoint)
}

/// One `Vraag` judged.
fn judge_question(
    raw: &RawQuestion<'_>,
    snapshot: &CompiledSnapshot,
    admission: &impl Admission,
) -> Verdict {
    // A truncated value was longer than any valid one: it stands in as a text that no parser
    // accepts, so the usual code (30001/30002) follows.
    fn arg<'v>(value: &'v Option<Value<'_>>) -> Option<&'v str> {
        value
            .as_ref()
            .map(|v| if v.truncated { "\u{0}" } else { &*v.text })
    }
    let insz_text = arg(&raw.insz).unwrap_or("");
    let Some(referte) = raw.referte.as_ref().and_then(|r| r.within(MAX_REFERTE)) else {
        // The Referte is how the caller files the answer; without a valid one the question is
        // not answered, but it keeps its place so the others still line up.
        return Verdict::refused(None, Insz::parse(insz_text).ok(), ErrorCode::InvalidContext);
    };
    let referte = Some(referte.to_owned());
    let question = match Question::parse(insz_text, arg(&raw.referentiedatum), arg(&raw.premiejaar))
    {
        Ok(question) => question,
        Err(code) => return Verdict::refused(referte, Insz::parse(insz_text).ok(), code),
    };
    let purpose = match admission.admit(question.reference) {
        Ok(purpose) => purpose,
        Err(refusal) => {
            return Verdict::outside_protocol(referte, question.insz, question.reference, refusal)
        }
    };
    match snapshot.advise(&question) {
        Ok(advice) => Verdict::advised(referte, advice).under(purpose),
        // The SOAP audit record has no reference date for a refused question.
        Err(refusal) => Verdict {
            found: refusal.found,
            purpose,
            ..Verdict::refused(referte, Some(question.insz), refusal.code)
        },
    }
}

/// One `Antwoord`: the advice, or the question's Uitzondering.
fn render_answer(out: &mut XmlOut, verdict: &Verdict, bron: &[u8]) {
    let referte = verdict.referte.as_deref();
    match (&verdict.outcome, referte) {
        (Ok(advice), _) => render::answer_advice(out, referte, advice, bron),
        (Err(code), Some(_)) => match &verdict.protocol_refusal {
            Some(text) => render::answer_error(out, referte, *code, &text.nl),
            None => render::answer_error(out, referte, *code, code.diagnose_nl()),
        },
        // Only a question without a valid Referte is refused without one (see `judge_question`).
        (Err(code), None) => {
            let diagnose = format!(
                "{}: Referte van de vraag ontbreekt of is langer dan {MAX_REFERTE} tekens",
                code.diagnose_nl()
            );
            render::answer_error(out, None, *code, &diagnose);
        }
    }
}

fn head<'a>(
    responder: &Responder<'a>,
    now: DateTime<Utc>,
    ontvanger: Ontvanger<'a>,
) -> ReplyHead<'a> {
    // The schema requires both; the server is meant to pass valid ones, but a reply must stay
    // valid even if it does not.
    let service_identificatie =
        checked(responder.service_identificatie, MAX_IDENTIFICATIE).unwrap_or("kbi-advice");
    let server_referte = checked(responder.server_referte, MAX_REFERTE).unwrap_or("-");
    ReplyHead {
        now,
        service_identificatie,
        server_referte,
        ontvanger,
    }
}

fn checked(text: &str, max_chars: usize) -> Option<&str> {
    within_chars(text, max_chars).then_some(text)
}

/// Whether `text` has 1 to `max_chars` characters. A text has at most as many characters as
/// bytes, so only one longer than `max_chars` bytes is counted.
fn within_chars(text: &str, max_chars: usize) -> bool {
    !text.is_empty() && (text.len() <= max_chars || text.chars().count() <= max_chars)
}

/// The caller's values, taken from the context as they are (borrowed from the body on the fast
/// road, owned when the hardened parser read them): nothing copied.
fn caller_context(context: RawContext<'_>) -> Caller<'_> {
    fn text(value: Option<Value<'_>>) -> Cow<'_, str> {
        value.map_or(Cow::Borrowed(""), |v| v.text)
    }
    Caller {
        identificatie: text(context.identificatie),
        referte: text(context.referte),
        hoedanigheid: text(context.hoedanigheid),
        gebruiker: context.gebruiker.map(|v| v.text),
    }
}

/// The request context rules (30012); the error is the Dutch detail appended to the diagnosis.
fn check_context(context: &RawContext<'_>) -> Result<(), &'static str> {
    let is = |value: &Option<Value<'_>>, expected: &str| {
        value
            .as_ref()
            .is_some_and(|v| !v.truncated && v.text == expected)
    };
    let present =
        |value: &Option<Value<'_>>, max| value.as_ref().and_then(|v| v.within(max)).is_some();
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
        if gebruiker.truncated
            || gebruiker.text.len() > MAX_GEBRUIKER
                && gebruiker.text.chars().count() > MAX_GEBRUIKER
        {
            return Err("Afzender/Gebruiker is langer dan 128 tekens");
        }
    }
    Ok(())
}

/// Whether `text` matches `pattern`, where `9` stands for any ASCII digit.
fn shaped(text: &str, pattern: &str) -> bool {
    // Every digit read as `9`, then one comparison with the pattern (a digit where the pattern
    // has another character differs from it all the same).
    text.len() == pattern.len()
        && text
            .bytes()
            .map(|t| if t.is_ascii_digit() { b'9' } else { t })
            .eq(pattern.bytes())
}

/// The number the ASCII digits of `text[range]` spell (the caller checked they are digits).
fn digits(text: &str, range: std::ops::Range<usize>) -> u32 {
    text.as_bytes()[range]
        .iter()
        .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

/// `Datum`: YYYY-MM-DD, an existing day. Read digit by digit (chrono's format parser cost more
/// than the rest of the context check), with chrono's calendar: the same days as
/// `NaiveDate::parse_from_str(text, "%Y-%m-%d")` on this shape.
fn valid_datum(text: &str) -> bool {
    shaped(text, "9999-99-99")
        && NaiveDate::from_ymd_opt(
            digits(text, 0..4) as i32,
            digits(text, 5..7),
            digits(text, 8..10),
        )
        .is_some()
}

/// `Tijd`: HH:mm:ss.SSS, an existing time of day. The common case digit by digit; a second of
/// 60 (which chrono reads as a leap second) is left to chrono, so the answer is always
/// `NaiveTime::parse_from_str(text, "%H:%M:%S%.3f")`'s.
fn valid_tijd(text: &str) -> bool {
    if !shaped(text, "99:99:99.999") {
        return false;
    }
    let (hour, minute, second) = (digits(text, 0..2), digits(text, 3..5), digits(text, 6..8));
    if second == 60 {
        return NaiveTime::parse_from_str(text, "%H:%M:%S%.3f").is_ok();
    }
    hour < 24 && minute < 60 && second < 60
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
    fn datum_and_tijd_agree_with_chrono_on_every_shape() {
        for year in [0, 1, 1900, 2000, 2024, 2026, 9999] {
            for month in 0..=13 {
                for day in 0..=32 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    let chrono = NaiveDate::parse_from_str(&text, "%Y-%m-%d").is_ok();
                    assert_eq!(valid_datum(&text), chrono, "{text}");
                }
            }
        }
        for hour in 0..=25 {
            for minute in [0, 1, 59, 60, 61, 99] {
                for second in [0, 1, 59, 60, 61, 99] {
                    for millis in [0, 999] {
                        let text = format!("{hour:02}:{minute:02}:{second:02}.{millis:03}");
                        let chrono = NaiveTime::parse_from_str(&text, "%H:%M:%S%.3f").is_ok();
                        assert_eq!(valid_tijd(&text), chrono, "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn client_fault_is_a_soap_client_fault_with_escaped_text() {
        let reply = Reply::client_fault("body larger than 1 MiB & refused");
        assert_eq!(reply.http_status(), 500);
        let responder = Responder {
            service_identificatie: "kbi-advice",
            server_referte: "r",
        };
        let body = String::from_utf8(render(&reply, &responder, Utc::now())).unwrap();
        assert!(body.contains("<faultcode>soap:Client</faultcode>"));
        assert!(body.contains("<faultstring>body larger than 1 MiB &amp; refused</faultstring>"));
    }
}
