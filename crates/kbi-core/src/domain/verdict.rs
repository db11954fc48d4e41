//! One judged question, whatever door it came through: what was asked, whether the person was
//! found, and the advice or the refusal. Both doors judge into it; the audit record and the
//! metrics read it; each door's wire format renders it.

use chrono::NaiveDate;

use super::{Advice, ErrorCode, Insz};

/// A question as judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The caller's own reference for this question (SOAP `Vraag/Referte`), when it sent a valid
    /// one; REST questions have none.
    pub referte: Option<String>,
    /// The INSZ asked about, when the text sent was a valid one.
    pub insz: Option<Insz>,
    /// The reference date the question was judged on, when the door records one.
    pub reference_date: Option<NaiveDate>,
    /// Whether the INSZ was in the snapshot; `None` when the question never reached the index.
    pub found: Option<bool>,
    /// The advice, or the catalogue code that refused this question.
    pub outcome: Result<Advice, ErrorCode>,
}

impl Verdict {
    /// A question refused before it reached the snapshot.
    pub fn refused(referte: Option<String>, insz: Option<Insz>, code: ErrorCode) -> Verdict {
        Verdict {
            referte,
            insz,
            reference_date: None,
            found: None,
            outcome: Err(code),
        }
    }

    /// A question answered with `advice`.
    pub fn advised(referte: Option<String>, advice: Advice) -> Verdict {
        Verdict {
            referte,
            insz: Some(advice.insz),
            reference_date: Some(advice.reference_date),
            found: Some(advice.found),
            outcome: Ok(advice),
        }
    }
}
