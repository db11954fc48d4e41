//! The closed set of reasons for a NOK advice, and the error codes of the interface catalogue.

use super::event::Obligation;

/// Why a subject person does not comply. Declaration order is the table order of `rules.md`,
/// used to break ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReasonCode {
    NietAangemeld,
    GeenContract,
    OnvoldoendeAanwezig,
    NietIngeschrevenArbeidsbemiddeling,
    DoelstellingenNietBehaald,
    BrusselsAttestOntbreekt,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 6] = [
        ReasonCode::NietAangemeld,
        ReasonCode::GeenContract,
        ReasonCode::OnvoldoendeAanwezig,
        ReasonCode::NietIngeschrevenArbeidsbemiddeling,
        ReasonCode::DoelstellingenNietBehaald,
        ReasonCode::BrusselsAttestOntbreekt,
    ];

    /// The reason for a breach of `obligation` (one reason per obligation).
    pub(crate) fn for_obligation(obligation: Obligation) -> Self {
        match obligation {
            Obligation::Registration => ReasonCode::NietAangemeld,
            Obligation::Contract => ReasonCode::GeenContract,
            Obligation::Attendance => ReasonCode::OnvoldoendeAanwezig,
            Obligation::EmploymentService => ReasonCode::NietIngeschrevenArbeidsbemiddeling,
            Obligation::Certificate => ReasonCode::DoelstellingenNietBehaald,
            Obligation::BrusselsAttestation => ReasonCode::BrusselsAttestOntbreekt,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            ReasonCode::NietAangemeld => "NIET_AANGEMELD",
            ReasonCode::GeenContract => "GEEN_CONTRACT",
            ReasonCode::OnvoldoendeAanwezig => "ONVOLDOENDE_AANWEZIG",
            ReasonCode::NietIngeschrevenArbeidsbemiddeling => {
                "NIET_INGESCHREVEN_ARBEIDSBEMIDDELING"
            }
            ReasonCode::DoelstellingenNietBehaald => "DOELSTELLINGEN_NIET_BEHAALD",
            ReasonCode::BrusselsAttestOntbreekt => "BRUSSELS_ATTEST_ONTBREEKT",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == text)
    }

    /// Dutch description (the only one the SOAP door carries).
    pub fn nl(self) -> &'static str {
        match self {
            ReasonCode::NietAangemeld => {
                "Niet tijdig aangemeld bij een agentschap Integratie en Inburgering"
            }
            ReasonCode::GeenContract => "Inburgeringscontract niet ondertekend",
            ReasonCode::OnvoldoendeAanwezig => "Onvoldoende aanwezig in het inburgeringstraject",
            ReasonCode::NietIngeschrevenArbeidsbemiddeling => {
                "Niet tijdig ingeschreven bij VDAB of Actiris"
            }
            ReasonCode::DoelstellingenNietBehaald => {
                "Doelstellingen van het inburgeringstraject niet tijdig behaald"
            }
            ReasonCode::BrusselsAttestOntbreekt => {
                "Attest van het Brussels inburgeringstraject niet voorgelegd"
            }
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            ReasonCode::NietAangemeld => "Did not register with an integration agency in time",
            ReasonCode::GeenContract => "Integration contract not signed",
            ReasonCode::OnvoldoendeAanwezig => {
                "Insufficient attendance in the integration programme"
            }
            ReasonCode::NietIngeschrevenArbeidsbemiddeling => {
                "Not registered with VDAB or Actiris in time"
            }
            ReasonCode::DoelstellingenNietBehaald => {
                "Objectives of the integration programme not reached in time"
            }
            ReasonCode::BrusselsAttestOntbreekt => "Brussels integration attestation not submitted",
        }
    }
}

/// The exception catalogue of `interfaces.md`. SOAP carries the number as `Identificatie`,
/// REST as the problem document's `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// INSZ malformed or check digits wrong.
    InvalidInsz,
    /// Reference date or premium year missing, malformed, or both given.
    InvalidReferenceDate,
    /// Reference date too far past the snapshot's extraction.
    SnapshotTooOld,
    /// No rule set in force for the reference date (or for the period that contains it).
    NoRuleSet,
    /// The caller's protocol does not cover this question on this day (`protocols.md` §2).
    OutsideProtocol,
    /// Sender unknown or not authorised.
    NotAuthorised,
    /// Too many questions in one request.
    TooManyQuestions,
    /// Request context invalid.
    InvalidContext,
    /// Rate limit exceeded.
    RateLimited,
    /// No snapshot loaded.
    NotReady,
    /// The answer cannot be audited, so it is not given.
    AuditUnavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::InvalidInsz,
        ErrorCode::InvalidReferenceDate,
        ErrorCode::SnapshotTooOld,
        ErrorCode::NoRuleSet,
        ErrorCode::OutsideProtocol,
        ErrorCode::NotAuthorised,
        ErrorCode::TooManyQuestions,
        ErrorCode::InvalidContext,
        ErrorCode::RateLimited,
        ErrorCode::NotReady,
        ErrorCode::AuditUnavailable,
    ];

    pub fn number(self) -> u16 {
        match self {
            ErrorCode::InvalidInsz => 30001,
            ErrorCode::InvalidReferenceDate => 30002,
            ErrorCode::SnapshotTooOld => 30003,
            ErrorCode::NoRuleSet => 30004,
            ErrorCode::OutsideProtocol => 30005,
            ErrorCode::NotAuthorised => 30010,
            ErrorCode::TooManyQuestions => 30011,
            ErrorCode::InvalidContext => 30012,
            ErrorCode::RateLimited => 30013,
            ErrorCode::NotReady => 30020,
            ErrorCode::AuditUnavailable => 30021,
        }
    }

    /// The code as text, as both doors carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInsz => "30001",
            ErrorCode::InvalidReferenceDate => "30002",
            ErrorCode::SnapshotTooOld => "30003",
            ErrorCode::NoRuleSet => "30004",
            ErrorCode::OutsideProtocol => "30005",
            ErrorCode::NotAuthorised => "30010",
            ErrorCode::TooManyQuestions => "30011",
            ErrorCode::InvalidContext => "30012",
            ErrorCode::RateLimited => "30013",
            ErrorCode::NotReady => "30020",
            ErrorCode::AuditUnavailable => "30021",
        }
    }

    /// Generic Dutch diagnosis; never contains the INSZ.
    pub fn diagnose_nl(self) -> &'static str {
        match self {
            ErrorCode::InvalidInsz => "INSZ is ongeldig (vorm of controlegetal)",
            ErrorCode::InvalidReferenceDate => {
                "Referentiedatum of premiejaar ontbreekt, is ongeldig, of beide zijn opgegeven"
            }
            ErrorCode::SnapshotTooOld => {
                "Referentiedatum ligt te ver na de extractiedatum van de gegevens"
            }
            ErrorCode::NoRuleSet => "Geen regelset van kracht voor de referentiedatum",
            ErrorCode::OutsideProtocol => {
                "Het protocol van de afnemer dekt deze vraag niet op deze dag"
            }
            ErrorCode::NotAuthorised => "Afzender onbekend of niet gemachtigd voor deze vraag",
            ErrorCode::TooManyQuestions => "Te veel vragen in een verzoek",
            ErrorCode::InvalidContext => "Context van het verzoek is ongeldig",
            ErrorCode::RateLimited => "Maximaal aantal verzoeken van deze afzender overschreden",
            ErrorCode::NotReady => "Dienst niet beschikbaar: geen gegevens geladen",
            ErrorCode::AuditUnavailable => {
                "Het antwoord kan niet gelogd worden en wordt daarom niet gegeven"
            }
        }
    }

    /// Short English title (problem+json `title`).
    pub fn title_en(self) -> &'static str {
        match self {
            ErrorCode::InvalidInsz => "Invalid INSZ",
            ErrorCode::InvalidReferenceDate => "Invalid reference date or premium year",
            ErrorCode::SnapshotTooOld => "Reference date too far after the snapshot extraction",
            ErrorCode::NoRuleSet => "No rule set in force for the reference date",
            ErrorCode::OutsideProtocol => "Question not covered by the caller's protocol",
            ErrorCode::NotAuthorised => "Caller not authorised",
            ErrorCode::TooManyQuestions => "Too many questions in one request",
            ErrorCode::InvalidContext => "Invalid request context",
            ErrorCode::RateLimited => "Rate limit exceeded",
            ErrorCode::NotReady => "Service not ready",
            ErrorCode::AuditUnavailable => "Answer cannot be audited",
        }
    }
}
