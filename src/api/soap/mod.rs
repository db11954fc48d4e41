//! The SOAP door (MAGDA conventions): `GeefAdviesInburgeringsplicht` 01.00.0000.
//!
//! CONTRACT (fixed so that the SOAP codec and the HTTP server can be built side by side):
//! the server calls [`respond`] with the raw request body and gets back the HTTP status, the
//! rendered body and one [`QuestionRecord`] per question (for the audit log and metrics), and
//! serves [`wsdl_document`] at `?wsdl`. Everything SOAP-specific stays behind these two
//! functions.
//!
//! (Placeholder bodies until the codec lands; see issue 3.)

use crate::domain::{Advice, CompiledSnapshot, ErrorCode, Insz};

/// Bounds on what a request may make the parser do (`security-and-audit.md`).
#[derive(Debug, Clone)]
pub struct XmlLimits {
    /// Deepest element nesting accepted (32).
    pub max_depth: usize,
    /// Most elements accepted in one body.
    pub max_elements: usize,
    /// Most `Vraag` per request (1,000); more gives request-level Uitzondering 30011.
    pub max_questions: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits {
            max_depth: 32,
            max_elements: 50_000,
            max_questions: 1_000,
        }
    }
}

/// What the server knows of the call.
#[derive(Debug, Clone, Copy)]
pub struct SoapCall<'a> {
    /// The snapshot to answer from; `None` while none is loaded (30020).
    pub snapshot: Option<&'a CompiledSnapshot>,
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
    pub outcome: Result<Advice, ErrorCode>,
    /// Whether the INSZ was in the snapshot, when the question reached the index.
    pub found: Option<bool>,
}

/// The caller's context as sent (echoed in `Ontvanger`; audited).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerContext {
    pub identificatie: String,
    pub referte: String,
    pub hoedanigheid: String,
    pub gebruiker: Option<String>,
}

/// A rendered SOAP response.
#[derive(Debug, Clone)]
pub struct SoapResponse {
    /// 200 for replies (also those with Uitzonderingen), 500 for SOAP Faults.
    pub http_status: u16,
    pub body: Vec<u8>,
    /// The caller's context, when the envelope got that far.
    pub caller: Option<CallerContext>,
    pub questions: Vec<QuestionRecord>,
}

/// Parses, answers and renders one SOAP request. Never panics on any input.
pub fn respond(_body: &[u8], _call: &SoapCall<'_>) -> SoapResponse {
    SoapResponse {
        http_status: 500,
        body: b"<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>SOAP door not built yet</faultstring></soap:Fault></soap:Body></soap:Envelope>".to_vec(),
        caller: None,
        questions: Vec::new(),
    }
}

/// The WSDL with its `soap:address` set to `endpoint` (the URL the caller used).
pub fn wsdl_document(_endpoint: &str) -> String {
    String::new()
}

/// A SOAP 1.1 `Client` Fault (HTTP 500) for requests the server refuses before parsing, such as
/// a body over the size limit. `message` must not contain request data.
pub fn client_fault(message: &str) -> SoapResponse {
    let _ = message;
    respond(b"", &SoapCall {
        snapshot: None,
        limits: &XmlLimits::default(),
        server_referte: "",
        service_identificatie: "",
    })
}
