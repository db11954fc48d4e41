//! The JSON shapes of the answer and of errors. `kbi-advice check` prints [`AnswerJson`]; the
//! REST door writes the same bytes without building it (`rest::AnswerWriter`, compared with
//! `serde_json` of `AnswerJson` by a unit test), so both print the same for the same question.

use std::borrow::Cow;

use serde::Serialize;

use kbi_core::domain::compiled::answer_time;
use kbi_core::domain::day::iso_date_bytes;
use kbi_core::domain::{Advice, CompiledSnapshot, ErrorCode, SnapshotMeta};

/// The minimal answer of `interfaces.md`. `reason` is present only for NOK.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct AnswerJson<'a> {
    pub insz: String,
    pub reference_date: String,
    pub subject: bool,
    pub compliant: bool,
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReasonJson>,
    pub source: SourceJson<'a>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ReasonJson {
    pub code: &'static str,
    pub nl: &'static str,
    pub en: &'static str,
}

/// What the answer rests on.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SourceJson<'a> {
    pub snapshot_id: &'a str,
    pub extracted_at: Cow<'a, str>,
    pub rule_set: &'a str,
}

impl<'a> SourceJson<'a> {
    pub fn new(meta: &'a SnapshotMeta, rule_set: &'a str) -> Self {
        SourceJson {
            snapshot_id: &meta.snapshot_id,
            extracted_at: Cow::Owned(answer_time(&meta.extracted_at)),
            rule_set,
        }
    }

    /// The source of `snapshot`'s answers, all of it borrowed: the doors' way, with the
    /// extraction time the snapshot formatted once when it was compiled.
    pub fn of(snapshot: &'a CompiledSnapshot) -> Self {
        SourceJson {
            snapshot_id: &snapshot.meta.snapshot_id,
            extracted_at: Cow::Borrowed(&snapshot.extracted_at_text),
            rule_set: &snapshot.rules.version,
        }
    }
}

impl<'a> AnswerJson<'a> {
    pub fn new(advice: &Advice, meta: &'a SnapshotMeta, rule_set: &'a str) -> Self {
        Self::with_source(advice, SourceJson::new(meta, rule_set))
    }

    /// The answer with an already formatted source.
    pub(crate) fn with_source(advice: &Advice, source: SourceJson<'a>) -> Self {
        AnswerJson {
            insz: advice.insz.to_string(),
            // `YYYY-MM-DD`, chrono's `Display`, without its formatting machinery per answer.
            reference_date: iso_date_bytes(advice.reference_date)
                .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
                .unwrap_or_else(|| advice.reference_date.to_string()),
            subject: advice.subject,
            compliant: advice.compliant,
            result: advice.result(),
            // Only a NOK carries a reason (data minimisation).
            reason: advice
                .reason
                .filter(|_| !advice.is_ok())
                .map(|r| ReasonJson {
                    code: r.code(),
                    nl: r.nl(),
                    en: r.en(),
                }),
            source,
        }
    }
}

/// An RFC 9457 problem document with the catalogue code.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
}

impl Problem {
    /// The problem for a catalogue code; `detail` must never contain an INSZ.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:kbi-advice:problem:{}", code.as_str()),
            title: code.title_en().to_string(),
            status: http_status(code),
            detail: detail.into(),
            code: code.as_str().to_string(),
        }
    }

    pub fn from_code(code: ErrorCode) -> Self {
        Problem::new(code, code.diagnose_nl())
    }
}

/// The HTTP status REST uses for a catalogue code.
pub fn http_status(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::InvalidInsz
        | ErrorCode::InvalidReferenceDate
        | ErrorCode::SnapshotTooOld
        | ErrorCode::NoRuleSet
        | ErrorCode::TooManyQuestions
        | ErrorCode::InvalidContext => 400,
        ErrorCode::NotAuthorised | ErrorCode::OutsideProtocol => 403,
        ErrorCode::RateLimited => 429,
        ErrorCode::NotReady | ErrorCode::AuditUnavailable => 503,
    }
}
