//! The closed field catalogue of `protocols.md` section 3: a protocol names these fields only.
//! Each carries its source, so `protocol show` can say where every value comes from.

/// A field of the catalogue, other than a join column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CatalogueField {
    Insz,
    Pseudonym,
    AgeCategory,
    Sex,
    TargetGroup,
    TargetGroupSince,
    RegistrationDate,
    ContractDate,
    ContractSigned,
    CertificateObtained,
    TrajectoryType,
    KbiOffice,
    KbiRegion,
    PloDecision,
    PloDecisionReason,
    HighestNt2Level,
    LastNt2ActivityDate,
    DiplomaEquivalenceReferral,
    DiplomaEquivalenceResult,
}

impl CatalogueField {
    /// Every field, in the order of the catalogue.
    pub const ALL: [CatalogueField; 19] = [
        CatalogueField::Insz,
        CatalogueField::Pseudonym,
        CatalogueField::AgeCategory,
        CatalogueField::Sex,
        CatalogueField::TargetGroup,
        CatalogueField::TargetGroupSince,
        CatalogueField::RegistrationDate,
        CatalogueField::ContractDate,
        CatalogueField::ContractSigned,
        CatalogueField::CertificateObtained,
        CatalogueField::TrajectoryType,
        CatalogueField::KbiOffice,
        CatalogueField::KbiRegion,
        CatalogueField::PloDecision,
        CatalogueField::PloDecisionReason,
        CatalogueField::HighestNt2Level,
        CatalogueField::LastNt2ActivityDate,
        CatalogueField::DiplomaEquivalenceReferral,
        CatalogueField::DiplomaEquivalenceResult,
    ];

    /// Its name in a protocol file.
    pub fn name(self) -> &'static str {
        match self {
            CatalogueField::Insz => "insz",
            CatalogueField::Pseudonym => "pseudonym",
            CatalogueField::AgeCategory => "age_category",
            CatalogueField::Sex => "sex",
            CatalogueField::TargetGroup => "target_group",
            CatalogueField::TargetGroupSince => "target_group_since",
            CatalogueField::RegistrationDate => "registration_date",
            CatalogueField::ContractDate => "contract_date",
            CatalogueField::ContractSigned => "contract_signed",
            CatalogueField::CertificateObtained => "certificate_obtained",
            CatalogueField::TrajectoryType => "trajectory_type",
            CatalogueField::KbiOffice => "kbi_office",
            CatalogueField::KbiRegion => "kbi_region",
            CatalogueField::PloDecision => "plo_decision",
            CatalogueField::PloDecisionReason => "plo_decision_reason",
            CatalogueField::HighestNt2Level => "highest_nt2_level",
            CatalogueField::LastNt2ActivityDate => "last_nt2_activity_date",
            CatalogueField::DiplomaEquivalenceReferral => "diploma_equivalence_referral",
            CatalogueField::DiplomaEquivalenceResult => "diploma_equivalence_result",
        }
    }

    /// Where its value comes from (dossier path or derivation), as section 3 says.
    pub fn source(self) -> &'static str {
        match self {
            CatalogueField::Insz => "Personalia/INSZ",
            CatalogueField::Pseudonym => "HMAC-SHA-256(pseudonym key, INSZ), first 16 bytes, hex",
            CatalogueField::AgeCategory => {
                "Personalia/Geboortedatum on the reference date, banded by age_bands"
            }
            CatalogueField::Sex => "Personalia/Geslacht/Code (1 → M, 2 → V)",
            CatalogueField::TargetGroup => "Doelgroep/Type when Doelgroep/Code is JA",
            CatalogueField::TargetGroupSince => "Doelgroep/Periode/Begin",
            CatalogueField::RegistrationDate => "Aanmelding/DatumAanmelding",
            CatalogueField::ContractDate => "earliest Contracten/Contract/DatumRegistratie",
            CatalogueField::ContractSigned => {
                "Contracten/Contract/DatumRegistratie on or before the reference date (ja/nee)"
            }
            CatalogueField::CertificateObtained => {
                "BehaaldeAttesten/Document as row M13 of kbi-import.md, on or before the reference date (ja/nee)"
            }
            CatalogueField::TrajectoryType => {
                "Trajecten/Traject/Type of the latest integration trajectory"
            }
            CatalogueField::KbiOffice => "Beheerder/KBIVestiging/KbiNummer of that trajectory",
            CatalogueField::KbiRegion => "kbi_office through config/kbi-regions.toml",
            CatalogueField::PloDecision => "latest TO_OB_PLO Besluit/Code",
            CatalogueField::PloDecisionReason => "latest TO_OB_PLO Besluit/Reden",
            CatalogueField::HighestNt2Level => "Talenkennis/BehaaldNT2Niveau/HoogstBehaald",
            CatalogueField::LastNt2ActivityDate => {
                "VormingsActiviteiten/NT2Cursussen/NT2Cursus/Periode, latest end (or begin)"
            }
            CatalogueField::DiplomaEquivalenceReferral => {
                "latest ToeleidingDiplomaGelijkschakeling/StartDatum"
            }
            CatalogueField::DiplomaEquivalenceResult => {
                "latest ToeleidingDiplomaGelijkschakeling/Status"
            }
        }
    }

    pub fn from_name(name: &str) -> Option<CatalogueField> {
        CatalogueField::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A field of a delivery: from the catalogue, or a column of a declared join.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Catalogue(CatalogueField),
    /// `join:NAME.COLUMN`.
    Join {
        name: String,
        column: String,
    },
}

impl Field {
    /// Reads `join:NAME.COLUMN` or a catalogue name; the join's declaration is checked by the
    /// loader.
    pub fn parse(text: &str) -> Option<Field> {
        if let Some(rest) = text.strip_prefix("join:") {
            let (name, column) = rest.split_once('.')?;
            if name.is_empty() || column.is_empty() {
                return None;
            }
            return Some(Field::Join {
                name: name.to_owned(),
                column: column.to_owned(),
            });
        }
        CatalogueField::from_name(text).map(Field::Catalogue)
    }

    /// Whether this field is a special category of personal data (GDPR art. 9). Of the
    /// catalogue's sources only a join column can be one, and the one section 3 names is a
    /// nationality: a column whose name says `nationality` is held to be one and must be declared
    /// in `special_categories`. (A decision where the spec is silent: docs/protocols.md.)
    pub fn is_special_category(&self) -> bool {
        matches!(self, Field::Join { column, .. } if column.contains("nationality"))
    }

    /// Where the value comes from.
    pub fn source(&self) -> String {
        match self {
            Field::Catalogue(field) => field.source().to_owned(),
            Field::Join { name, column } => format!("column `{column}` of join file `{name}`"),
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Catalogue(field) => f.write_str(field.name()),
            Field::Join { name, column } => write!(f, "join:{name}.{column}"),
        }
    }
}
