//! A snapshot compiled under a rule set, and what it answers: the index, the rules, the meta of
//! the extraction, and `advise` (30003, 30004, not-found = not subject). Built by the snapshot
//! reader ([`crate::snapshot::reader`]), shared immutable (an `Arc`) by the doors, `check` and
//! the premium list.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::advice::{Advice, Question, Refusal};
use super::decision::Status;
use super::facts::Facts;
use super::index::PersonIndex;
use super::reason::ErrorCode;
use super::rules::RuleSet;

/// What the answer rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub snapshot_id: String,
    pub extracted_at: DateTime<Utc>,
    pub persons: u64,
    /// The event types the snapshot's source records at all (header `facts`; absent = all).
    pub facts: Facts,
    /// Where the facts came from (header `sources`, compact JSON), informative only: shown by
    /// `snapshot validate` and `--explain`, never in answers.
    pub sources: Option<String>,
}

/// A snapshot compiled under a rule set: everything needed to answer, immutable once built.
#[derive(Debug)]
pub struct CompiledSnapshot {
    pub meta: SnapshotMeta,
    pub rules: Arc<RuleSet>,
    pub index: PersonIndex,
    /// `meta.extracted_at` as every answer gives it ([`answer_time`]): formatted once, when
    /// the snapshot is compiled, not once per answer.
    pub extracted_at_text: String,
}

/// An instant as the answers of every door give it: `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds).
pub fn answer_time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl CompiledSnapshot {
    /// Why no question on `date` can be answered from this snapshot, whoever it is about
    /// (30003, 30004); `None` when the date is answerable. [`CompiledSnapshot::advise`] and the
    /// yearly premium list both start with this check, so they refuse the same dates.
    pub fn refusal_on(&self, date: NaiveDate) -> Option<ErrorCode> {
        // The snapshot speaks for at most `max_days_after_extract` days after its extraction.
        let extracted = self.meta.extracted_at.date_naive();
        if (date - extracted).num_days() > i64::from(self.rules.max_days_after_extract) {
            return Some(ErrorCode::SnapshotTooOld);
        }
        if date < self.rules.earliest_valid_from() {
            return Some(ErrorCode::NoRuleSet);
        }
        None
    }

    /// Answers one checked question.
    pub fn advise(&self, question: &Question) -> Result<Advice, Refusal> {
        let date = question.reference.date();
        if let Some(code) = self.refusal_on(date) {
            return Err(Refusal { code, found: None });
        }
        let timeline = self.index.lookup(question.insz);
        let found = timeline.is_some();
        // An INSZ that is not in the snapshot gets exactly the answer of a person not subject.
        let status = timeline.map_or(Status::NotSubject, |t| t.status_on(date));
        let (subject, compliant, reason) = match status {
            Status::NotSubject => (false, true, None),
            Status::Compliant => (true, true, None),
            Status::NonCompliant(reason) => (true, false, Some(reason)),
            Status::NoRegime => {
                return Err(Refusal {
                    code: ErrorCode::NoRuleSet,
                    found: Some(found),
                })
            }
        };
        Ok(Advice {
            insz: question.insz,
            reference_date: date,
            subject,
            compliant,
            reason,
            found,
        })
    }
}
