//! The code lists of a GeefDossierKBI 01.00 dossier as reviewed configuration
//! (`config/kbi-codes.toml`, embedded; `--codes FILE` replaces it).

use std::collections::BTreeMap;

use serde::Deserialize;

use kbi_core::domain::event::{ExemptionCause, Obligation};

/// The shipped code lists.
pub(crate) const SHIPPED: &str = include_str!("../../../config/kbi-codes.toml");

/// Why a code list file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CodesError {
    #[error("not a valid code list file: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("[inbreuk.types] maps type {code:?} to {value:?}, which is not an obligation (REGISTRATION, CONTRACT, ATTENDANCE, EMPLOYMENT_SERVICE, CERTIFICATE)")]
    Obligation { code: String, value: String },
    #[error("[vrijstelling] cause {value:?} is not one of MEDICAL, AGE, DIPLOMA, OTHER")]
    Cause { value: String },
    #[error("[doelgroep] obligated_code and obligated_types must be listed in codes and types")]
    Obligated,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    doelgroep: DoelgroepFile,
    aanmelding: AanmeldingFile,
    traject: TrajectFile,
    document: DocumentFile,
    inbreuk: InbreukFile,
    vrijstelling: VrijstellingFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoelgroepFile {
    codes: Vec<String>,
    types: Vec<String>,
    obligated_code: String,
    obligated_types: Vec<String>,
    undecided: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AanmeldingFile {
    types: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrajectFile {
    certificate_decisions: Vec<String>,
    no_certificate_decisions: Vec<String>,
    integration_type_prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentFile {
    soorten: Vec<String>,
    certificate_types: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InbreukFile {
    types: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VrijstellingFile {
    default_cause: String,
    #[serde(default)]
    causes: BTreeMap<String, String>,
}

/// The code lists, checked.
#[derive(Debug, Clone)]
pub struct Codes {
    pub version: String,
    pub doelgroep_codes: Vec<String>,
    pub doelgroep_types: Vec<String>,
    pub obligated_code: String,
    pub obligated_types: Vec<String>,
    pub undecided: Vec<String>,
    pub aanmelding_types: Vec<String>,
    pub certificate_decisions: Vec<String>,
    pub no_certificate_decisions: Vec<String>,
    pub integration_type_prefix: String,
    pub document_soorten: Vec<String>,
    pub certificate_documents: Vec<String>,
    pub inbreuk_types: BTreeMap<String, Obligation>,
    pub default_exemption: ExemptionCause,
    pub exemption_causes: BTreeMap<String, ExemptionCause>,
}

impl Codes {
    /// The shipped lists (`config/kbi-codes.toml`).
    pub fn shipped() -> Codes {
        Codes::from_toml(SHIPPED).expect("the shipped config/kbi-codes.toml is valid")
    }

    pub fn from_toml(text: &str) -> Result<Codes, CodesError> {
        let file: File = toml::from_str(text)?;
        let cause = |value: &String| {
            ExemptionCause::parse(value).ok_or_else(|| CodesError::Cause {
                value: value.clone(),
            })
        };
        let mut inbreuk_types = BTreeMap::new();
        for (code, value) in &file.inbreuk.types {
            let obligation = Obligation::parse(value)
                .filter(|o| *o != Obligation::BrusselsAttestation)
                .ok_or_else(|| CodesError::Obligation {
                    code: code.clone(),
                    value: value.clone(),
                })?;
            inbreuk_types.insert(code.clone(), obligation);
        }
        let mut exemption_causes = BTreeMap::new();
        for (code, value) in &file.vrijstelling.causes {
            exemption_causes.insert(code.clone(), cause(value)?);
        }
        let d = file.doelgroep;
        if !d.codes.contains(&d.obligated_code)
            || !d.obligated_types.iter().all(|t| d.types.contains(t))
        {
            return Err(CodesError::Obligated);
        }
        Ok(Codes {
            version: file.version,
            doelgroep_codes: d.codes,
            doelgroep_types: d.types,
            obligated_code: d.obligated_code,
            obligated_types: d.obligated_types,
            undecided: d.undecided,
            aanmelding_types: file.aanmelding.types,
            certificate_decisions: file.traject.certificate_decisions,
            no_certificate_decisions: file.traject.no_certificate_decisions,
            integration_type_prefix: file.traject.integration_type_prefix,
            document_soorten: file.document.soorten,
            certificate_documents: file.document.certificate_types,
            inbreuk_types,
            default_exemption: cause(&file.vrijstelling.default_cause)?,
            exemption_causes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_lists_load() {
        let codes = Codes::shipped();
        assert_eq!(codes.inbreuk_types.len(), 5);
        assert_eq!(codes.inbreuk_types["5"], Obligation::Attendance);
        assert!(!codes.inbreuk_types.contains_key("7"));
    }

    #[test]
    fn a_bad_obligation_is_refused() {
        let text = SHIPPED.replace("\"5\" = \"ATTENDANCE\"", "\"5\" = \"PRESENCE\"");
        assert!(matches!(
            Codes::from_toml(&text),
            Err(CodesError::Obligation { .. })
        ));
    }
}
