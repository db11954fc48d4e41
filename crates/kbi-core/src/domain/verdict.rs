//! One judged question, whatever door it came through: what was asked, whether the person was
//! found, and the advice or the refusal. Both doors judge into it; the audit record and the
//! metrics read it; each door's wire format renders it.

use chrono::NaiveDate;

use std::sync::Arc;

use super::{Advice, ErrorCode, Insz, Reference};

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
    /// The purpose of the caller's protocol the question was asked under (`protocols.md` §2),
    /// when its form was read and the door binds callers to protocols.
    pub purpose: Option<Arc<str>>,
    /// Why the protocol refused it (30005): the texts of the `Diagnose` / `detail`.
    pub protocol_refusal: Option<Box<RefusalText>>,
}

/// Why a question lies outside the caller's protocol, in the doors' two languages. Names the
/// protocol, the purpose and the limit, never the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalText {
    /// English: REST `detail`.
    pub en: String,
    /// Dutch: SOAP `Diagnose`.
    pub nl: String,
}

/// The door's check of a question against the caller's protocol, between reading the reference
/// (30002) and the snapshot's own checks (30003, 30004): `protocols.md` section 2's order. The
/// binary implements it over `kbi_protocol::Binding`; [`Unbound`] admits everything (the codec
/// on its own, `check`, the fuzzers).
pub trait Admission {
    /// The purpose a question about `reference` serves, or why it is refused (30005).
    fn admit(&self, reference: Reference) -> Result<Option<Arc<str>>, ProtocolRefusal>;
}

/// A question refused by the caller's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolRefusal {
    /// The purpose its form would have served, when the protocol has one.
    pub purpose: Option<Arc<str>>,
    pub text: Box<RefusalText>,
}

/// No protocol binding: every question is admitted, without a purpose.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unbound;

impl Admission for Unbound {
    #[inline]
    fn admit(&self, _reference: Reference) -> Result<Option<Arc<str>>, ProtocolRefusal> {
        Ok(None)
    }
}

/// What a door's admission step gives for a caller it let in: the per-question check
/// ([`Admission`]) its questions are judged under, worked out once per request (the day, the
/// purposes open that day). The SOAP path (`kbi_wire::soap::parse_admit_judge`) judges with it
/// right after admission; [`Unbound`] is the codec's own, without a caller.
pub trait AdmittedCaller {
    /// The check for this request's questions.
    fn admission(&self) -> impl Admission + '_;
}

impl AdmittedCaller for Unbound {
    fn admission(&self) -> impl Admission + '_ {
        Unbound
    }
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
            purpose: None,
            protocol_refusal: None,
        }
    }

    /// A question answered with `advice`.
    /// A question its caller's protocol refused (30005), its reference date kept for the audit.
    pub fn outside_protocol(
        referte: Option<String>,
        insz: Insz,
        reference: Reference,
        refusal: ProtocolRefusal,
    ) -> Verdict {
        Verdict {
            reference_date: Some(reference.date()),
            purpose: refusal.purpose,
            protocol_refusal: Some(refusal.text),
            ..Verdict::refused(referte, Some(insz), ErrorCode::OutsideProtocol)
        }
    }

    /// The same verdict, recorded under `purpose`.
    #[inline]
    pub fn under(mut self, purpose: Option<Arc<str>>) -> Verdict {
        self.purpose = purpose;
        self
    }

    pub fn advised(referte: Option<String>, advice: Advice) -> Verdict {
        Verdict {
            referte,
            insz: Some(advice.insz),
            reference_date: Some(advice.reference_date),
            found: Some(advice.found),
            outcome: Ok(advice),
            purpose: None,
            protocol_refusal: None,
        }
    }
}
