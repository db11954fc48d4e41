//! The client registry (`config/clients.toml`): who may call, with which sender identities and
//! capacities, which operations, and how often.
//!
//! Identity comes from the TLS client certificate (by SHA-256 fingerprint, or by subject: the
//! certificate has been verified against the client CA bundle, so a subject is only as good as
//! that CA's issuing policy — prefer fingerprints when the CA is shared). In the development
//! profile (plain HTTP on loopback) there is no certificate and the caller is identified by the
//! SOAP `Afzender/Identificatie` ([`ClientRegistry::identify_by_afzender`]) or the REST
//! `X-Client-Id` header ([`ClientRegistry::identify_by_id`]). Either way the caller is then
//! checked against the same entry ([`Client::authorise`]).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::cert::{self, Attribute};
use kbi_core::domain::ErrorCode;

/// An operation a client may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// One question: REST `GET /v1/integration-obligation/{insz}`, or a SOAP request with exactly
    /// one `Vraag`.
    Single,
    /// Several questions in one request: REST `POST /v1/integration-obligation:batch` (whatever
    /// the number of questions in it), or a SOAP request with more than one `Vraag`.
    Batch,
}

impl Operation {
    /// The operation of a SOAP request with `questions` `Vraag` elements.
    pub fn for_soap(questions: usize) -> Operation {
        if questions > 1 {
            Operation::Batch
        } else {
            Operation::Single
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Operation::Single => "single",
            Operation::Batch => "batch",
        }
    }
}

/// A client's rate limit: a token bucket refilled at `requests_per_second`, holding at most
/// `burst` tokens; one request (single or batch) takes one token.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_second: f64,
    pub burst: u32,
}

/// One caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// The client id (OVO code, KBO number or a short name): audit `client_id` and the `client`
    /// metrics label.
    pub id: String,
    /// SHA-256 fingerprints of its certificates (several during a renewal).
    pub fingerprints: Vec<[u8; 32]>,
    /// Certificate subjects that identify it (each a sorted attribute set).
    pub subjects: Vec<Vec<Attribute>>,
    /// SOAP `Afzender/Identificatie` values it may send.
    pub afzenders: Vec<String>,
    /// `Afzender/Hoedanigheid` codes it may act in.
    pub hoedanigheden: Vec<String>,
    /// Operations it may call.
    pub operations: Vec<Operation>,
    /// Its rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// The id of the protocol its questions are answered under (`config/protocols/`,
    /// `protocols.md` §2); the binary checks it exists.
    pub protocol: String,
    /// The purposes of that protocol it may use; `None`: all of them.
    pub purposes: Option<Vec<String>>,
}

impl Client {
    /// Whether `operation` is allowed.
    pub fn may(&self, operation: Operation) -> bool {
        self.operations.contains(&operation)
    }

    /// Whether this client may send as `afzender` in capacity `hoedanigheid` and call
    /// `operation`. SOAP passes the `Afzender` values; REST, which has no sender block, passes
    /// `None` for both (then only the operation is checked). Any refusal is 30010.
    pub fn authorise(
        &self,
        afzender: Option<&str>,
        hoedanigheid: Option<&str>,
        operation: Operation,
    ) -> Result<(), ErrorCode> {
        let sender_ok = afzender.is_none_or(|a| self.afzenders.iter().any(|x| x == a));
        let capacity_ok = hoedanigheid.is_none_or(|h| self.hoedanigheden.iter().any(|x| x == h));
        if sender_ok && capacity_ok && self.may(operation) {
            Ok(())
        } else {
            Err(ErrorCode::NotAuthorised)
        }
    }
}

/// An invalid registry. Names the file position or the setting.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    #[error("cannot read {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    /// TOML syntax, an unknown or missing setting, or a wrong type (the message has the line).
    #[error("clients registry: {0}")]
    Parse(String),
    /// A setting with a value that is not allowed.
    #[error("clients registry: {setting}: {detail}")]
    Invalid { setting: String, detail: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    client: Vec<ClientToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientToml {
    id: String,
    #[serde(default)]
    certificate_fingerprints: Vec<String>,
    #[serde(default)]
    certificate_subjects: Vec<String>,
    afzenders: Vec<String>,
    hoedanigheden: Vec<String>,
    operations: Vec<Operation>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
    // Optional in the syntax only, so that a registry written before protocols existed gets
    // a message that says what to do (`validate`), not serde's "missing field".
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    purposes: Option<Vec<String>>,
}

/// All configured clients, indexed for the lookups of every request.
#[derive(Debug, Clone)]
pub struct ClientRegistry {
    clients: Vec<Client>,
    by_id: HashMap<String, usize>,
    by_fingerprint: HashMap<[u8; 32], usize>,
    by_subject: HashMap<Vec<Attribute>, usize>,
    by_afzender: HashMap<String, usize>,
}

/// Longest client id (it is a metrics label).
pub const MAX_CLIENT_ID: usize = 64;

impl ClientRegistry {
    /// The development registry shipped in `config/clients.toml`: client `demo`
    /// (`demo.kbi-advice`, capacity `9999`, every operation).
    pub fn shipped() -> Result<ClientRegistry, ClientsError> {
        ClientRegistry::from_toml(include_str!("../../../config/clients.toml"))
    }

    /// Reads and validates a registry file.
    pub fn from_file(path: &Path) -> Result<ClientRegistry, ClientsError> {
        let text = kbi_core::io::read_config_text(path).map_err(|cause| ClientsError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        ClientRegistry::from_toml(&text)
    }

    /// Parses and validates a registry.
    pub fn from_toml(text: &str) -> Result<ClientRegistry, ClientsError> {
        let file: FileToml = kbi_core::redact::toml(text).map_err(ClientsError::Parse)?;
        if file.client.is_empty() {
            return Err(invalid("client", "no [[client]] is defined"));
        }
        let mut clients = Vec::with_capacity(file.client.len());
        for (i, raw) in file.client.into_iter().enumerate() {
            clients.push(validate(i, raw)?);
        }
        let registry = ClientRegistry::build(clients);
        registry.check_unique()?;
        Ok(registry)
    }

    fn build(clients: Vec<Client>) -> ClientRegistry {
        let mut registry = ClientRegistry {
            by_id: HashMap::new(),
            by_fingerprint: HashMap::new(),
            by_subject: HashMap::new(),
            by_afzender: HashMap::new(),
            clients,
        };
        for (i, client) in registry.clients.iter().enumerate() {
            registry.by_id.entry(client.id.clone()).or_insert(i);
            for fp in &client.fingerprints {
                registry.by_fingerprint.entry(*fp).or_insert(i);
            }
            for subject in &client.subjects {
                registry.by_subject.entry(subject.clone()).or_insert(i);
            }
            for afzender in &client.afzenders {
                registry.by_afzender.entry(afzender.clone()).or_insert(i);
            }
        }
        registry
    }

    /// Each id, fingerprint, subject and afzender must point to one client only: otherwise who
    /// is calling would depend on file order.
    fn check_unique(&self) -> Result<(), ClientsError> {
        for (i, client) in self.clients.iter().enumerate() {
            let setting = |name: &str| format!("client[{i}].{name}");
            if self.by_id[&client.id] != i {
                return Err(invalid(&setting("id"), "id used by another client"));
            }
            if client
                .fingerprints
                .iter()
                .any(|f| self.by_fingerprint[f] != i)
            {
                return Err(invalid(
                    &setting("certificate_fingerprints"),
                    "fingerprint already belongs to another client",
                ));
            }
            if client.subjects.iter().any(|s| self.by_subject[s] != i) {
                return Err(invalid(
                    &setting("certificate_subjects"),
                    "subject already belongs to another client",
                ));
            }
            if client.afzenders.iter().any(|a| self.by_afzender[a] != i) {
                return Err(invalid(
                    &setting("afzenders"),
                    "an Afzender already belongs to another client",
                ));
            }
        }
        Ok(())
    }

    /// Every client, in file order.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// The client ids (for the `client` metrics label set).
    pub fn ids(&self) -> Vec<&str> {
        self.clients.iter().map(|c| c.id.as_str()).collect()
    }

    /// The client of a verified TLS client certificate (DER): by fingerprint, else by subject.
    pub fn identify_by_certificate(&self, der: &[u8]) -> Option<&Client> {
        if let Some(&i) = self.by_fingerprint.get(&cert::fingerprint(der)) {
            return Some(&self.clients[i]);
        }
        if self.by_subject.is_empty() {
            return None;
        }
        let mut subject = cert::subject(der)?;
        subject.sort();
        self.by_subject.get(&subject).map(|&i| &self.clients[i])
    }

    /// The client with this id (development profile: REST `X-Client-Id`).
    pub fn identify_by_id(&self, id: &str) -> Option<&Client> {
        self.by_id.get(id).map(|&i| &self.clients[i])
    }

    /// The client that owns this SOAP `Afzender/Identificatie` (development profile).
    pub fn identify_by_afzender(&self, identificatie: &str) -> Option<&Client> {
        self.by_afzender
            .get(identificatie)
            .map(|&i| &self.clients[i])
    }

    /// [`Client::authorise`] (30010 on refusal).
    pub fn authorise(
        &self,
        client: &Client,
        afzender: Option<&str>,
        hoedanigheid: Option<&str>,
        operation: Operation,
    ) -> Result<(), ErrorCode> {
        client.authorise(afzender, hoedanigheid, operation)
    }
}

fn invalid(setting: &str, detail: &str) -> ClientsError {
    ClientsError::Invalid {
        setting: setting.to_owned(),
        detail: detail.to_owned(),
    }
}

fn validate(i: usize, raw: ClientToml) -> Result<Client, ClientsError> {
    let id = raw.id.trim().to_owned();
    // Messages name the setting by position, never by a value from the file.
    let setting = |name: &str| format!("client[{i}].{name}");
    if id.is_empty()
        || id.len() > MAX_CLIENT_ID
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            &format!("client[{i}].id"),
            &format!("must be 1–{MAX_CLIENT_ID} characters of A–Z, a–z, 0–9, `.`, `_`, `-`"),
        ));
    }
    let mut fingerprints = Vec::new();
    for (j, text) in raw.certificate_fingerprints.iter().enumerate() {
        let fp = cert::parse_fingerprint(text).ok_or_else(|| {
            invalid(
                &setting(&format!("certificate_fingerprints[{j}]")),
                "must be a SHA-256 fingerprint: 64 hex digits, `:` separators allowed",
            )
        })?;
        fingerprints.push(fp);
    }
    let mut subjects = Vec::new();
    for (j, text) in raw.certificate_subjects.iter().enumerate() {
        let subject = cert::parse_subject(text)
            .map_err(|e| invalid(&setting(&format!("certificate_subjects[{j}]")), &e))?;
        subjects.push(subject);
    }
    if raw.afzenders.is_empty() {
        return Err(invalid(
            &setting("afzenders"),
            "list at least one Afzender/Identificatie",
        ));
    }
    for (j, a) in raw.afzenders.iter().enumerate() {
        let len = a.chars().count();
        if len == 0 || len > kbi_core::domain::magda::MAX_IDENTIFICATIE || a.trim() != a {
            return Err(invalid(
                &setting(&format!("afzenders[{j}]")),
                "must be 1–128 characters without surrounding spaces",
            ));
        }
    }
    if raw.hoedanigheden.is_empty() {
        return Err(invalid(
            &setting("hoedanigheden"),
            "list at least one Hoedanigheid code",
        ));
    }
    for (j, h) in raw.hoedanigheden.iter().enumerate() {
        let len = h.chars().count();
        if len == 0 || len > kbi_core::domain::magda::MAX_HOEDANIGHEID || h.trim() != h {
            return Err(invalid(
                &setting(&format!("hoedanigheden[{j}]")),
                "must be 1–32 characters without surrounding spaces",
            ));
        }
    }
    if raw.operations.is_empty() {
        return Err(invalid(
            &setting("operations"),
            "list at least one of \"single\", \"batch\"",
        ));
    }
    if let Some(limit) = raw.rate_limit {
        if !(limit.requests_per_second.is_finite() && limit.requests_per_second > 0.0) {
            return Err(invalid(
                &setting("rate_limit.requests_per_second"),
                "must be a number above 0",
            ));
        }
        if limit.burst == 0 {
            return Err(invalid(&setting("rate_limit.burst"), "must be at least 1"));
        }
    }
    let Some(protocol) = raw.protocol else {
        // The client id is configuration, not personal data: naming it tells the operator
        // which entry to complete.
        return Err(invalid(
            &format!("client[{i}] ({id}).protocol"),
            "missing: since protocols became configuration every client names the protocol its \
             questions are answered under (protocol = \"ID\" of a file in config/protocols/, \
             optionally purposes = [...]); see docs/protocols.md",
        ));
    };
    if !is_protocol_id(&protocol) {
        return Err(invalid(
            &setting("protocol"),
            "must be a protocol id: 1–40 characters of a–z, 0–9 and `-`",
        ));
    }
    if let Some(purposes) = &raw.purposes {
        if purposes.is_empty() {
            return Err(invalid(
                &setting("purposes"),
                "list at least one purpose, or leave `purposes` out for all of the protocol's",
            ));
        }
        for (j, purpose) in purposes.iter().enumerate() {
            if !is_protocol_id(purpose) {
                return Err(invalid(
                    &setting(&format!("purposes[{j}]")),
                    "must be a purpose name: 1–40 characters of a–z, 0–9 and `-`",
                ));
            }
        }
    }
    let mut operations = raw.operations;
    operations.dedup();
    Ok(Client {
        id,
        fingerprints,
        subjects,
        afzenders: raw.afzenders,
        hoedanigheden: raw.hoedanigheden,
        operations,
        rate_limit: raw.rate_limit,
        protocol,
        purposes: raw.purposes,
    })
}

/// `[a-z0-9-]{1,40}`, the form of protocol ids and purposes (`kbi_protocol::is_id`, which this
/// floor does not depend on).
fn is_protocol_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 40
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry written before protocols existed is refused with a message that names the
    /// client and points to the documentation.
    #[test]
    fn a_client_without_protocol_is_refused_naming_it() {
        let error = ClientRegistry::from_toml(
            r#"
[[client]]
id = "zorgkas-a"
afzenders = ["zorgkas-a.be"]
hoedanigheden = ["1234"]
operations = ["single"]
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("zorgkas-a"), "{error}");
        assert!(error.contains("protocol"), "{error}");
        assert!(error.contains("docs/protocols.md"), "{error}");
    }

    #[test]
    fn purposes_narrow_a_client() {
        let registry = ClientRegistry::from_toml(
            r#"
[[client]]
id = "zorgkas-a"
afzenders = ["zorgkas-a.be"]
hoedanigheden = ["1234"]
operations = ["single"]
protocol = "agii-vsb"
purposes = ["reduced-premium"]
"#,
        )
        .unwrap();
        let client = &registry.clients()[0];
        assert_eq!(client.protocol, "agii-vsb");
        assert_eq!(
            client.purposes.as_deref(),
            Some(&["reduced-premium".to_owned()][..])
        );
        assert!(ClientRegistry::from_toml(
            "[[client]]\nid = \"a\"\nafzenders = [\"a\"]\nhoedanigheden = [\"1\"]\n\
             operations = [\"single\"]\nprotocol = \"agii-vsb\"\npurposes = []\n"
        )
        .is_err());
    }

    const TWO: &str = r#"
[[client]]
id = "zorgkas-a"
certificate_fingerprints = ["AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB"]
afzenders = ["zorgkas-a.be"]
hoedanigheden = ["1234", "1235"]
operations = ["single"]
protocol = "demo"
rate_limit = { requests_per_second = 10, burst = 20 }

[[client]]
id = "ovo000123"
certificate_subjects = ["CN=kbi.ovo000123, O=Agentschap"]
afzenders = ["ovo000123", "ovo000123.test"]
hoedanigheden = ["2000"]
operations = ["single", "batch"]
protocol = "demo"
"#;

    #[test]
    fn shipped_registry_has_the_demo_client() {
        let registry =
            ClientRegistry::from_toml(include_str!("../../../config/clients.toml")).unwrap();
        assert_eq!(registry.ids(), ["demo"]);
        let demo = registry.identify_by_afzender("demo.kbi-advice").unwrap();
        assert_eq!(demo.id, "demo");
        assert!(registry.identify_by_id("demo").is_some());
        for op in [Operation::Single, Operation::Batch] {
            assert_eq!(
                demo.authorise(Some("demo.kbi-advice"), Some("9999"), op),
                Ok(())
            );
        }
        assert_eq!(ClientRegistry::shipped().unwrap().ids(), ["demo"]);
    }

    #[test]
    fn authorisation_checks_sender_capacity_and_operation() {
        let registry = ClientRegistry::from_toml(TWO).unwrap();
        let a = registry.identify_by_id("zorgkas-a").unwrap();
        assert_eq!(
            a.authorise(Some("zorgkas-a.be"), Some("1235"), Operation::Single),
            Ok(())
        );
        let refused = Err(ErrorCode::NotAuthorised);
        // Another client's sender: identity comes from the certificate, not from the body.
        assert_eq!(
            a.authorise(Some("ovo000123"), Some("1234"), Operation::Single),
            refused
        );
        assert_eq!(
            a.authorise(Some("zorgkas-a.be"), Some("9999"), Operation::Single),
            refused
        );
        assert_eq!(
            a.authorise(Some("zorgkas-a.be"), Some("1234"), Operation::Batch),
            refused
        );
        // REST: no sender block, only the operation counts.
        assert_eq!(a.authorise(None, None, Operation::Single), Ok(()));
        assert_eq!(a.authorise(None, None, Operation::Batch), refused);
        assert_eq!(
            a.rate_limit,
            Some(RateLimit {
                requests_per_second: 10.0,
                burst: 20
            })
        );
    }

    #[test]
    fn soap_with_several_questions_is_a_batch() {
        assert_eq!(Operation::for_soap(1), Operation::Single);
        assert_eq!(Operation::for_soap(2), Operation::Batch);
    }

    fn error(text: &str) -> String {
        ClientRegistry::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_setting() {
        let e = error(&TWO.replace("rate_limit =", "rate_limt ="));
        assert!(e.contains("unknown field") && e.contains("line "), "{e}");
        // The value is not repeated (it could be anything, an INSZ included), its place is.
        let e = error(&TWO.replace("\"single\"]", "\"singel\"]"));
        assert!(!e.contains("singel"), "{e}");
        assert!(e.contains("client[0].operations"), "{e}");
        let e = error(&TWO.replace("AB:AB:AB:AB:AB:AB:AB:AB:AB:AB", "AB:"));
        assert!(e.contains("client[0].certificate_fingerprints[0]"), "{e}");
        let e = error(&TWO.replace("burst = 20", "burst = 0"));
        assert!(e.contains("client[0].rate_limit.burst"), "{e}");
        let e = error(&TWO.replace("requests_per_second = 10", "requests_per_second = 0"));
        assert!(e.contains("rate_limit.requests_per_second"), "{e}");
        let e = error(&TWO.replace("CN=kbi", "XX=kbi"));
        assert!(e.contains("certificate_subjects[0]"), "{e}");
        let e = error(&TWO.replace("hoedanigheden = [\"2000\"]", "hoedanigheden = []"));
        assert!(e.contains("client[1].hoedanigheden"), "{e}");
        let e = error(&TWO.replace("\"ovo000123.test\"", "\"zorgkas-a.be\""));
        assert!(
            e.contains("afzenders") && e.contains("another client"),
            "{e}"
        );
        let e = error(&TWO.replace("id = \"ovo000123\"", "id = \"zorgkas-a\""));
        assert!(
            e.contains("client[1].id") && !e.contains("zorgkas-a"),
            "{e}"
        );
        let e = error(&TWO.replace("id = \"ovo000123\"", "id = \"ovo 123\""));
        assert!(e.contains("client[1].id"), "{e}");
        let e = error("");
        assert!(e.contains("no [[client]]"), "{e}");
    }
}
