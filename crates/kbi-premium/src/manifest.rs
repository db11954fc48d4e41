//! The manifest: what the list is, what it rests on, and the hashes that bind it to the encrypted
//! file. The signature covers its exact bytes, so it is written once and never re-serialised.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The `format` value of every manifest.
pub const FORMAT: &str = "kbi-reduced-premium-list";
/// The manifest and list format this program writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The bytes a manifest is written and signed as: pretty JSON and a final newline (the yearly
/// list's and every export's; the signature covers exactly these).
pub fn signed_bytes<T: Serialize>(manifest: &T) -> Vec<u8> {
    // Serialising a struct of strings, integers and options cannot fail.
    let mut bytes = serde_json::to_vec_pretty(manifest).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Reads a manifest of `kind` (named in the error) and refuses another `format` than `format`
/// or a `format_version` other than `version`; `id` gives a parsed manifest's two.
pub fn parse_versioned<T: DeserializeOwned>(
    bytes: &[u8],
    kind: &str,
    (format, version): (&str, u32),
    id: fn(&T) -> (&str, u32),
) -> Result<T, String> {
    let manifest: T = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not a valid {kind}: {}",
            kbi_core::redact::json::<T>(bytes, &e)
        )
    })?;
    let (found_format, found_version) = id(&manifest);
    if found_format != format {
        return Err(format!(
            "format is \"{found_format}\", expected \"{format}\""
        ));
    }
    if found_version != version {
        return Err(format!(
            "format_version {found_version} is not known to this program (it reads {version})"
        ));
    }
    Ok(manifest)
}

/// The program that made the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub name: String,
    pub version: String,
}

impl Program {
    /// This build.
    pub fn this() -> Program {
        Program {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// What a list is and what it rests on: the fields the manifest and the export register's line
/// share, flattened into both (`#[serde(flatten)]`), so their JSON is what it was field by field
/// (pinned by the tests here and in `register.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListBasis {
    pub premium_year: i32,
    /// 1 January of `premium_year − 1`, `YYYY-MM-DD`.
    pub reference_date: String,
    pub snapshot_id: String,
    /// RFC 3339, UTC.
    pub extracted_at: String,
    /// The rule set's version.
    pub rule_set: String,
    /// Number of INSZ in the list.
    pub count: u64,
}

/// The hashes that bind the list's two forms, shared (flattened) like [`ListBasis`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListHashes {
    /// SHA-256 (hex) of the plaintext CSV.
    pub plaintext_sha256: String,
    /// SHA-256 (hex) of the encrypted file, exactly as written.
    pub ciphertext_sha256: String,
}

/// `kbi-reduced-premium-P.manifest.json`. Field order is the order written (the flattened
/// groups in place).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`]; a reader refuses a version it does not know.
    pub format_version: u32,
    /// The protocol the list is delivered under (absent in lists made before protocols).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(flatten)]
    pub basis: ListBasis,
    /// Persons in the snapshot (the list is drawn from these).
    pub persons_in_snapshot: u64,
    /// Persons whose question is refused with 30004 (no regime covers their period): they answer
    /// neither OK nor NOK, so they are not in the list. Normally 0.
    pub persons_without_rule_set: u64,
    /// File name of the encrypted list, in the same directory.
    pub list_file: String,
    /// How long the recipient may keep the list, from the protocol (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_years: Option<u32>,
    #[serde(flatten)]
    pub hashes: ListHashes,
    /// The age recipients the list is encrypted to.
    pub recipients: Vec<String>,
    /// SHA-256 (hex) of the DER SubjectPublicKeyInfo of the key that signs this manifest.
    pub signing_key_sha256: String,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub program: Program,
}

impl Manifest {
    /// The bytes written and signed: pretty JSON and a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        signed_bytes(self)
    }

    /// Reads a manifest; refuses another format or an unknown version.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        parse_versioned(
            bytes,
            "manifest",
            (FORMAT, FORMAT_VERSION),
            |m: &Manifest| (m.format.as_str(), m.format_version),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact bytes a manifest is written (and signed) as: field order, pretty JSON, final
    /// newline. A change here breaks every signature already given out.
    const PINNED: &str = r#"{
  "format": "kbi-reduced-premium-list",
  "format_version": 1,
  "premium_year": 2027,
  "reference_date": "2026-01-01",
  "snapshot_id": "snap-1",
  "extracted_at": "2026-01-14T02:00:00Z",
  "rule_set": "rules-1",
  "count": 3,
  "persons_in_snapshot": 10,
  "persons_without_rule_set": 1,
  "list_file": "kbi-reduced-premium-2027.csv.age",
  "plaintext_sha256": "aa",
  "ciphertext_sha256": "bb",
  "recipients": [
    "age1x"
  ],
  "signing_key_sha256": "cc",
  "generated_at": "2026-01-15T09:00:00Z",
  "program": {
    "name": "kbi-premium",
    "version": "0.1.0"
  }
}
"#;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            protocol: None,
            basis: ListBasis {
                premium_year: 2027,
                reference_date: "2026-01-01".into(),
                snapshot_id: "snap-1".into(),
                extracted_at: "2026-01-14T02:00:00Z".into(),
                rule_set: "rules-1".into(),
                count: 3,
            },
            persons_in_snapshot: 10,
            persons_without_rule_set: 1,
            list_file: "kbi-reduced-premium-2027.csv.age".into(),
            retention_years: None,
            hashes: ListHashes {
                plaintext_sha256: "aa".into(),
                ciphertext_sha256: "bb".into(),
            },
            recipients: vec!["age1x".into()],
            signing_key_sha256: "cc".into(),
            generated_at: "2026-01-15T09:00:00Z".into(),
            program: Program {
                name: "kbi-premium".into(),
                version: "0.1.0".into(),
            },
        }
    }

    #[test]
    fn a_list_under_a_protocol_names_it_and_its_retention() {
        let mut manifest = sample();
        manifest.protocol = Some("agii-vsb".into());
        manifest.retention_years = Some(5);
        let text = String::from_utf8(manifest.to_bytes()).unwrap();
        let expected = PINNED
            .replace(
                "\"format_version\": 1,\n",
                "\"format_version\": 1,\n  \"protocol\": \"agii-vsb\",\n",
            )
            .replace(
                "\"list_file\": \"kbi-reduced-premium-2027.csv.age\",\n",
                "\"list_file\": \"kbi-reduced-premium-2027.csv.age\",\n  \"retention_years\": 5,\n",
            );
        assert_eq!(text, expected);
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), manifest);
    }

    #[test]
    fn a_manifest_is_written_as_the_pinned_bytes_and_read_back() {
        let bytes = sample().to_bytes();
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), PINNED);
        assert_eq!(Manifest::parse(&bytes).unwrap(), sample());
    }
}
