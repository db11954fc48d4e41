//! The dated facts of a person's integration file, as the KBI snapshot records them.

use chrono::NaiveDate;

/// The region whose legislation governs an obligation period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Region {
    /// Flanders: decree of 7 June 2013 on the Flemish integration policy.
    #[serde(rename = "VL")]
    Flanders,
    /// Brussels-Capital: ordinance of 11 May 2017 (COCOM) on the integration pathway.
    #[serde(rename = "BXL")]
    Brussels,
}

impl Region {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "VL" => Some(Region::Flanders),
            "BXL" => Some(Region::Brussels),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Region::Flanders => "VL",
            Region::Brussels => "BXL",
        }
    }
}

/// An obligation that can be breached (the `obligation` field of infringements and extensions).
///
/// The declaration order is the tie-break order of `rules.md` (the reason-code table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Obligation {
    Registration,
    Contract,
    Attendance,
    EmploymentService,
    Certificate,
    BrusselsAttestation,
}

impl Obligation {
    pub const ALL: [Obligation; 6] = [
        Obligation::Registration,
        Obligation::Contract,
        Obligation::Attendance,
        Obligation::EmploymentService,
        Obligation::Certificate,
        Obligation::BrusselsAttestation,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.code() == text)
    }

    pub fn code(self) -> &'static str {
        match self {
            Obligation::Registration => "REGISTRATION",
            Obligation::Contract => "CONTRACT",
            Obligation::Attendance => "ATTENDANCE",
            Obligation::EmploymentService => "EMPLOYMENT_SERVICE",
            Obligation::Certificate => "CERTIFICATE",
            Obligation::BrusselsAttestation => "BRUSSELS_ATTESTATION",
        }
    }
}

/// Why an obligation ended (`OBLIGATION_END`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    Moved,
    Naturalised,
    Deceased,
    Other,
}

impl EndCause {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "MOVED" => Some(EndCause::Moved),
            "NATURALISED" => Some(EndCause::Naturalised),
            "DECEASED" => Some(EndCause::Deceased),
            "OTHER" => Some(EndCause::Other),
            _ => None,
        }
    }
}

/// Why a person was exempted (`EXEMPTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExemptionCause {
    Medical,
    Age,
    Diploma,
    Other,
}

impl ExemptionCause {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "MEDICAL" => Some(ExemptionCause::Medical),
            "AGE" => Some(ExemptionCause::Age),
            "DIPLOMA" => Some(ExemptionCause::Diploma),
            "OTHER" => Some(ExemptionCause::Other),
            _ => None,
        }
    }
}

/// The snapshot's event type names, in the same-day application order of `rules.md`
/// ([`EventKind::same_day_rank`] indexes this table).
pub const EVENT_TYPES: [&str; 13] = [
    "OBLIGATION_START",
    "REGISTRATION",
    "CONTRACT_SIGNED",
    "EMPLOYMENT_SERVICE_REGISTRATION",
    "DEADLINE_EXTENSION",
    "INFRINGEMENT",
    "FINE",
    "INFRINGEMENT_CLOSED",
    "CERTIFICATE",
    "EFFORT_DECLARATION",
    "BRUSSELS_ATTESTATION",
    "EXEMPTION",
    "OBLIGATION_END",
];

/// What happened. The declaration order is the same-day application order of `rules.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ObligationStart {
        region: Region,
    },
    Registration,
    ContractSigned,
    EmploymentServiceRegistration,
    DeadlineExtension {
        obligation: Obligation,
        until: NaiveDate,
    },
    Infringement {
        obligation: Obligation,
    },
    Fine,
    InfringementClosed {
        obligation: Obligation,
    },
    Certificate,
    EffortDeclaration,
    BrusselsAttestation,
    Exemption {
        cause: Option<ExemptionCause>,
    },
    ObligationEnd {
        cause: Option<EndCause>,
    },
}

impl EventKind {
    /// Rank in the same-day application order, which is also the index of this kind's name in
    /// [`EVENT_TYPES`] (the import counts event types by it).
    pub fn same_day_rank(&self) -> u8 {
        match self {
            EventKind::ObligationStart { .. } => 0,
            EventKind::Registration => 1,
            EventKind::ContractSigned => 2,
            EventKind::EmploymentServiceRegistration => 3,
            EventKind::DeadlineExtension { .. } => 4,
            EventKind::Infringement { .. } => 5,
            EventKind::Fine => 6,
            EventKind::InfringementClosed { .. } => 7,
            EventKind::Certificate => 8,
            EventKind::EffortDeclaration => 9,
            EventKind::BrusselsAttestation => 10,
            EventKind::Exemption { .. } => 11,
            EventKind::ObligationEnd { .. } => 12,
        }
    }

    /// The snapshot's name for this type.
    pub fn type_name(&self) -> &'static str {
        EVENT_TYPES[usize::from(self.same_day_rank())]
    }

    /// Ends an open obligation period.
    pub fn closes_period(&self) -> bool {
        matches!(
            self,
            EventKind::Exemption { .. } | EventKind::ObligationEnd { .. }
        )
    }
}

/// One dated fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub date: NaiveDate,
    pub kind: EventKind,
}

/// Puts a person's events in application order: by date, then by the same-day order of
/// `rules.md`; events of the same type on the same day keep their order in the file.
pub(crate) fn sort_events(events: &mut [Event]) {
    events.sort_by_key(|e| (e.date, e.kind.same_day_rank()));
}
