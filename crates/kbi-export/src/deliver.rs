//! Encrypting, signing and registering a delivery (`protocols.md` section 6), with the yearly
//! list's own pieces (`kbi_premium::deliver`, `kbi_premium::register`, `kbi_signing`): the same
//! temporary files, rename guard, register and key format.
//!
//! Order, as the yearly list: the encrypted file, manifest and signature are written to
//! temporary files and `fsync`ed; they are renamed into place (data, manifest, signature last);
//! the passphrase file, if any, is written; the register line is appended last. Until it is,
//! a guard removes whatever was put in place, so a delivery not in the register does not exist.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use ed25519_dalek::SigningKey;
use kbi_core::domain::Reference;
use kbi_premium::deliver::{
    check_out_dir, persist, remove_dead_temporaries, sync_dir, temp_in, write_temp, HashingWriter,
    Placed,
};
use kbi_premium::register::{Earlier, Register, RegisterError, RegisterLock};
use kbi_premium::Force;
use kbi_protocol::{Encryption, FileSpec, Period, Protocol};
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, RegisterEntry};
use crate::select::Selected;

/// The period key of a delivery whose reference date is `reference`: the calendar year
/// (`2026`), the half-year (`2026-H2`), the month (`2026-12`), or none for on-demand.
pub fn period_key(period: Period, reference: NaiveDate) -> Option<String> {
    let year = reference.year();
    match period {
        Period::Yearly => Some(format!("{year}")),
        Period::SixMonthly => Some(format!(
            "{year}-H{}",
            if reference.month() <= 6 { 1 } else { 2 }
        )),
        Period::Monthly => Some(format!("{year}-{:02}", reference.month())),
        Period::OnDemand => None,
    }
}

/// The stem of the delivery's files: `<protocol>-<file>-<period key>`, or for an on-demand
/// delivery `<protocol>-<file>-<generation time, YYYYMMDDTHHMMSSZ>`.
pub fn file_stem(protocol: &str, file: &str, period: Option<&str>, now: DateTime<Utc>) -> String {
    match period {
        Some(key) => format!("{protocol}-{file}-{key}"),
        None => format!("{protocol}-{file}-{}", now.format("%Y%m%dT%H%M%SZ")),
    }
}

/// Why a delivery was refused or failed. Never carries an INSZ, a key or a passphrase.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(
        "{refusal}{}",
        if *forced { " (--force does not change this: without a legal basis there is nothing to force)" } else { "" }
    )]
    NotAllowed { refusal: String, forced: bool },
    #[error("no recipient: file {file} is encrypted to recipients: give --recipient age1… (or the protocol's recipients_file)")]
    NoRecipients { file: String },
    #[error("file {file} is encrypted with a passphrase (the protocol says so): give --passphrase-out FILE, not --recipient")]
    RecipientsForPassphrase { file: String },
    #[error("file {file} is encrypted to recipients (the protocol says so): --passphrase-out is not for it")]
    PassphraseForRecipients { file: String },
    #[error("--passphrase-out {path}: {why}")]
    PassphraseOut { path: PathBuf, why: String },
    #[error("no operator name: give --operator NAME (default: $USER)")]
    NoOperator,
    #[error("output directory {path}: {why}")]
    OutDir { path: PathBuf, why: String },
    #[error("the directory of the export register {path} does not exist")]
    RegisterDir { path: PathBuf },
    #[error(
        "file {file} of protocol {protocol} was already delivered for period {period} ({earlier}, \
         see {register}); the protocol allows one delivery a period: repeat only with --force \
         --reason \"…\""
    )]
    AlreadyDelivered {
        protocol: String,
        file: String,
        period: String,
        earlier: String,
        register: PathBuf,
    },
    #[error(
        "{} already exist(s) but the register has no delivery for it: check, then move them \
         away or repeat with --force --reason \"…\"",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    FilesExist { paths: Vec<PathBuf> },
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
    #[error("cannot write {what} in {dir}: {error}")]
    Write {
        what: String,
        dir: PathBuf,
        error: io::Error,
    },
}

/// Whether `file` of `protocol` may be delivered on `today` for `reference`: the protocol in
/// force today and on the reference date (its term, not `ended`), the file in it, and the
/// reference inside the window of the purpose that governs the file (`Protocol::allows_file`).
/// `--force` never changes this.
pub fn allowed<'p>(
    protocol: &'p Protocol,
    file: &str,
    today: NaiveDate,
    reference: NaiveDate,
    forced: bool,
) -> Result<&'p FileSpec, DeliverError> {
    let refuse = |refusal: String| DeliverError::NotAllowed { refusal, forced };
    let spec = protocol
        .allows_file(file, today, Reference::Date(reference))
        .map_err(|r| refuse(format!("delivery refused on {today}: {r}")))?;
    // The data must describe a day the protocol covers too.
    protocol.in_force(reference).map_err(|r| {
        refuse(format!(
            "reference date {reference} refused: {r} (the reference date must lie in the \
             protocol's term, before any end)"
        ))
    })?;
    if reference > today {
        return Err(refuse(format!(
            "reference date {reference} is after today ({today}): a delivery describes the \
             register as it stood"
        )));
    }
    Ok(spec)
}

/// How the file is encrypted.
pub enum Sealing {
    /// age X25519 recipients.
    Recipients(Vec<age::x25519::Recipient>),
    /// age scrypt with a generated passphrase, written to `out` (mode 0600) or, when `out` is
    /// `None`, handed back to print once.
    Passphrase { out: Option<PathBuf> },
}

/// What to deliver and where.
pub struct DeliveryRequest {
    pub protocol: String,
    pub file: String,
    pub period: Period,
    pub reference: NaiveDate,
    pub retention_years: Option<u32>,
    pub sealing: Sealing,
    pub signing_key: SigningKey,
    pub out_dir: PathBuf,
    /// The export register (by default `export-register.jsonl` in `out_dir`).
    pub register: PathBuf,
    pub operator: String,
    pub force: Force,
}

/// A delivery whose refusable checks passed; holds the register lock until dropped.
pub struct PreparedDelivery {
    request: DeliveryRequest,
    period_key: Option<String>,
    stem: String,
    now: DateTime<Utc>,
    earlier: Vec<Earlier>,
    _lock: RegisterLock,
    /// The stale lock taken over, and the temporary files of killed deliveries removed.
    pub stale_lock: Option<String>,
    pub removed_temporaries: Vec<PathBuf>,
}

/// What a finished delivery wrote.
#[derive(Debug)]
pub struct Delivered {
    pub manifest: Manifest,
    /// Data, manifest, signature.
    pub files: [PathBuf; 3],
    pub register_entry: RegisterEntry,
    /// The generated passphrase, when it was not written to a file (print it once).
    pub passphrase: Option<SecretString>,
    pub passphrase_file: Option<PathBuf>,
}

/// The manifest's fields that the engine knows and the delivery does not.
pub struct Basis {
    pub population: Vec<String>,
    pub fields: Vec<String>,
    pub identity: String,
    pub pseudonym_key_fingerprint: Option<String>,
    pub suppression: Option<crate::manifest::Suppression>,
    pub source: crate::manifest::Source,
    pub joins: Vec<crate::manifest::JoinSource>,
    pub rule_set: Option<String>,
}

impl DeliveryRequest {
    /// Everything refusable before the dossiers are read: the sealing, operator, output
    /// directory, register lock, the once-a-period rule and files in the way.
    pub fn prepare(self, encryption: Encryption) -> Result<PreparedDelivery, DeliverError> {
        match (&self.sealing, encryption) {
            (Sealing::Recipients(r), Encryption::Recipients) if r.is_empty() => {
                return Err(DeliverError::NoRecipients {
                    file: self.file.clone(),
                })
            }
            (Sealing::Recipients(_), Encryption::Passphrase) => {
                return Err(DeliverError::RecipientsForPassphrase {
                    file: self.file.clone(),
                })
            }
            (Sealing::Passphrase { .. }, Encryption::Recipients) => {
                return Err(DeliverError::PassphraseForRecipients {
                    file: self.file.clone(),
                })
            }
            (Sealing::Passphrase { out: Some(path) }, _) => {
                let refuse = |why: &str| DeliverError::PassphraseOut {
                    path: path.clone(),
                    why: why.to_owned(),
                };
                if path.symlink_metadata().is_ok() {
                    return Err(refuse(
                        "already exists (a passphrase file is never overwritten)",
                    ));
                }
                let parent = kbi_premium::register::parent_of(path);
                if !parent.is_dir() {
                    return Err(refuse("its directory does not exist"));
                }
            }
            _ => {}
        }
        if self.operator.trim().is_empty() {
            return Err(DeliverError::NoOperator);
        }
        check_out_dir(&self.out_dir).map_err(|why| DeliverError::OutDir {
            path: self.out_dir.clone(),
            why,
        })?;
        let register = Register::new(&self.register);
        if !kbi_premium::register::parent_of(&self.register).is_dir() {
            return Err(DeliverError::RegisterDir {
                path: self.register.clone(),
            });
        }
        let lock = register.lock()?;
        let stale_lock = lock.reclaimed().map(str::to_owned);
        let removed_temporaries = remove_dead_temporaries(&self.out_dir);
        let now = Utc::now();
        let period_key = period_key(self.period, self.reference);
        let stem = file_stem(&self.protocol, &self.file, period_key.as_deref(), now);
        let earlier = match &period_key {
            Some(key) => register.deliveries_of(&self.protocol, &self.file, key)?,
            None => Vec::new(),
        };
        if self.force == Force::No {
            if let (Some(first), Some(key)) = (earlier.first(), &period_key) {
                return Err(DeliverError::AlreadyDelivered {
                    protocol: self.protocol.clone(),
                    file: self.file.clone(),
                    period: key.clone(),
                    earlier: format!(
                        "{} time(s), first on {} by {}",
                        earlier.len(),
                        first.time,
                        first.operator
                    ),
                    register: self.register.clone(),
                });
            }
            let existing: Vec<PathBuf> = final_names(&self.out_dir, &stem)
                .into_iter()
                .filter(|p| p.exists())
                .collect();
            if !existing.is_empty() {
                return Err(DeliverError::FilesExist { paths: existing });
            }
        }
        Ok(PreparedDelivery {
            request: self,
            period_key,
            stem,
            now,
            earlier,
            _lock: lock,
            stale_lock,
            removed_temporaries,
        })
    }
}

/// `STEM.csv.age`, `STEM.manifest.json`, `STEM.manifest.json.sig`.
pub fn final_names(dir: &Path, stem: &str) -> [PathBuf; 3] {
    [
        dir.join(format!("{stem}.csv.age")),
        dir.join(format!("{stem}.manifest.json")),
        dir.join(format!("{stem}.manifest.json.sig")),
    ]
}

/// A passphrase of 30 characters from a 32-letter alphabet without look-alikes (150 bits), in
/// six groups of five, to be read out or texted.
pub fn generate_passphrase() -> SecretString {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789-";
    let mut rng = rand::rngs::OsRng;
    let mut text = String::with_capacity(35);
    for group in 0..6 {
        if group > 0 {
            text.push('-');
        }
        for _ in 0..5 {
            // 31 letters and digits (the dash is only a separator): rejection keeps it uniform.
            let letter = loop {
                let byte = rand::RngCore::next_u32(&mut rng) as u8 & 31;
                if byte < 31 {
                    break ALPHABET[byte as usize];
                }
            };
            text.push(letter as char);
        }
    }
    SecretString::from(text)
}

impl PreparedDelivery {
    /// Earlier deliveries of this period (non-empty only when forced).
    pub fn earlier(&self) -> &[Earlier] {
        &self.earlier
    }

    pub fn period_key(&self) -> Option<&str> {
        self.period_key.as_deref()
    }

    /// The data file's name.
    pub fn data_file_name(&self) -> String {
        format!("{}.csv.age", self.stem)
    }

    /// Encrypts, signs, places and records `selected`. On error nothing is left and the
    /// register is unchanged.
    pub fn run(self, selected: &Selected, basis: Basis) -> Result<Delivered, DeliverError> {
        let request = &self.request;
        let dir = &request.out_dir;
        let finals = final_names(dir, &self.stem);

        // 1. The encrypted CSV into a temporary file.
        let (encryptor, recipients, passphrase) = match &request.sealing {
            Sealing::Recipients(list) => (
                age::Encryptor::with_recipients(list.iter().map(|r| r as &dyn age::Recipient))
                    .map_err(|e| DeliverError::Encrypt(e.to_string()))?,
                list.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                None,
            ),
            Sealing::Passphrase { .. } => {
                let passphrase = generate_passphrase();
                (
                    age::Encryptor::with_user_passphrase(passphrase.clone()),
                    Vec::new(),
                    Some(passphrase),
                )
            }
        };
        let data_name = self.data_file_name();
        let data_error = write_error(dir, "the encrypted file");
        let mut data = temp_in(dir, &data_name).map_err(write_error(dir, "a temporary file"))?;
        let (plaintext_sha256, ciphertext_sha256) = {
            let sink = HashingWriter::new(BufWriter::with_capacity(256 * 1024, data.as_file_mut()));
            let stream = encryptor.wrap_output(sink).map_err(&data_error)?;
            let plain = HashingWriter::new(stream);
            let plain = selected.write_csv(plain).map_err(&data_error)?;
            let (stream, plaintext_sha256) = plain.finish();
            let sink = stream.finish().map_err(&data_error)?;
            let (buffered, ciphertext_sha256) = sink.finish();
            buffered
                .into_inner()
                .map_err(|e| data_error(e.into_error()))?;
            (plaintext_sha256, ciphertext_sha256)
        };
        data.as_file().sync_all().map_err(&data_error)?;

        // 2. Manifest and signature.
        let rfc3339 = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let manifest = Manifest {
            format: crate::manifest::FORMAT.to_owned(),
            format_version: crate::manifest::FORMAT_VERSION,
            protocol: request.protocol.clone(),
            file: request.file.clone(),
            period: request.period.as_str().to_owned(),
            period_key: self.period_key.clone(),
            reference_date: request.reference.to_string(),
            population: basis.population,
            fields: basis.fields,
            header: selected.header.clone(),
            identity: basis.identity,
            pseudonym_key_fingerprint: basis.pseudonym_key_fingerprint,
            suppression: basis.suppression,
            rows: selected.len() as u64,
            data_file: data_name.clone(),
            plaintext_sha256,
            ciphertext_sha256,
            encryption: match request.sealing {
                Sealing::Recipients(_) => "recipients",
                Sealing::Passphrase { .. } => "passphrase",
            }
            .to_owned(),
            recipients,
            retention_years: request.retention_years,
            source: basis.source,
            joins: basis.joins,
            rule_set: basis.rule_set,
            signing_key_sha256: kbi_signing::key_fingerprint(&request.signing_key.verifying_key()),
            generated_at: rfc3339(self.now),
            program: kbi_premium::manifest::Program {
                name: "kbi-advice".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
        };
        let manifest_bytes = manifest.to_bytes();
        let signature = kbi_signing::sign(&request.signing_key, &manifest_bytes);
        let manifest_name = format!("{}.manifest.json", self.stem);
        let manifest_file = write_temp(dir, &manifest_name, &manifest_bytes)
            .map_err(write_error(dir, "the manifest"))?;
        let signature_file = write_temp(dir, &format!("{manifest_name}.sig"), &signature)
            .map_err(write_error(dir, "the signature"))?;

        // 3. Renames (data, manifest, signature last), then the passphrase file; the guard
        //    removes them all unless step 4 commits.
        let overwrite = matches!(request.force, Force::Yes { .. });
        let mut placed = Placed::new(dir);
        for (temp, target) in [data, manifest_file, signature_file]
            .into_iter()
            .zip(finals.iter())
        {
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            persist(temp, target, overwrite).map_err(write_error(dir, &name))?;
            placed.push(target.clone());
        }
        sync_dir(dir).map_err(write_error(dir, "the directory entries"))?;
        let mut passphrase_file = None;
        let mut printed = None;
        if let (Some(passphrase), Sealing::Passphrase { out }) = (passphrase, &request.sealing) {
            match out {
                Some(path) => {
                    write_private(path, passphrase.expose_secret().as_bytes()).map_err(
                        |error| DeliverError::PassphraseOut {
                            path: path.clone(),
                            why: error.to_string(),
                        },
                    )?;
                    placed.push(path.clone());
                    passphrase_file = Some(path.clone());
                }
                None => printed = Some(passphrase),
            }
        }

        // 4. The register, last.
        let entry = RegisterEntry {
            time: manifest.generated_at.clone(),
            protocol: request.protocol.clone(),
            file: request.file.clone(),
            period: self.period_key.clone(),
            reference_date: manifest.reference_date.clone(),
            rows: manifest.rows,
            plaintext_sha256: manifest.plaintext_sha256.clone(),
            ciphertext_sha256: manifest.ciphertext_sha256.clone(),
            manifest_sha256: hex::encode(Sha256::digest(&manifest_bytes)),
            data_file: data_name,
            out_dir: std::fs::canonicalize(dir)
                .unwrap_or_else(|_| dir.clone())
                .display()
                .to_string(),
            operator: request.operator.trim().to_owned(),
            forced: overwrite,
            reason: match &request.force {
                Force::Yes { reason } => Some(reason.clone()),
                Force::No => None,
            },
            program_version: manifest.program.version.clone(),
        };
        Register::new(&request.register).append_line(&entry)?;
        placed.commit();
        Ok(Delivered {
            manifest,
            files: finals,
            register_entry: entry,
            passphrase: printed,
            passphrase_file,
        })
    }
}

/// Writes a new file readable by its owner only (0600), refusing to replace one; `fsync`ed.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    sync_dir(kbi_premium::register::parent_of(path))
}

fn write_error(dir: &Path, what: &str) -> impl Fn(io::Error) -> DeliverError {
    let dir = dir.to_path_buf();
    let what = what.to_owned();
    move |error| DeliverError::Write {
        what: what.clone(),
        dir: dir.clone(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn period_keys_follow_the_reference_date() {
        assert_eq!(
            period_key(Period::Yearly, d("2026-12-31")).as_deref(),
            Some("2026")
        );
        assert_eq!(
            period_key(Period::SixMonthly, d("2026-06-30")).as_deref(),
            Some("2026-H1")
        );
        assert_eq!(
            period_key(Period::SixMonthly, d("2026-07-01")).as_deref(),
            Some("2026-H2")
        );
        assert_eq!(
            period_key(Period::Monthly, d("2026-02-01")).as_deref(),
            Some("2026-02")
        );
        assert_eq!(period_key(Period::OnDemand, d("2026-02-01")), None);
    }

    #[test]
    fn file_stems_name_protocol_file_and_period() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T10:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            file_stem("agii-vdab-3de-pijler", "request", Some("2026-H2"), now),
            "agii-vdab-3de-pijler-request-2026-H2"
        );
        assert_eq!(file_stem("p", "f", None, now), "p-f-20261203T101500Z");
    }

    #[test]
    fn passphrases_are_long_random_and_textable() {
        let a = generate_passphrase();
        let b = generate_passphrase();
        let text = a.expose_secret();
        assert_eq!(text.len(), 35);
        assert_eq!(text.split('-').count(), 6);
        assert!(text
            .split('-')
            .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_alphanumeric())));
        assert_ne!(text, b.expose_secret());
    }

    const PROTOCOL: &str = r#"
id = "p"
title = "t"
sender = "s"
recipient = "r"
legal_basis = ["b"]
term = { from = 2022-01-01, until = 2027-12-31 }
ended = { on = 2027-06-01, reason = "arrest" }

[[files]]
id = "f"
period = "six-monthly"
population = ["all"]
fields = ["insz"]
identity = "insz"
encryption = "recipients"
"#;

    #[test]
    fn outside_the_term_after_an_end_or_a_future_reference_is_refused_even_forced() {
        let protocol = Protocol::from_toml(PROTOCOL).unwrap();
        assert!(allowed(&protocol, "f", d("2026-12-03"), d("2026-06-30"), false).is_ok());
        let refused = |today: &str, reference: &str| {
            allowed(&protocol, "f", d(today), d(reference), true)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(refused("2027-06-01", "2026-06-30").contains("ended"));
        assert!(refused("2021-12-31", "2021-12-31").contains("not in force"));
        assert!(refused("2026-12-03", "2021-06-30").contains("reference date 2021-06-30"));
        assert!(refused("2026-12-03", "2026-12-04").contains("after today"));
        assert!(refused("2026-12-03", "2026-06-30").is_empty());
        assert!(refused("2027-06-01", "2026-06-30").contains("--force does not change this"));
        assert!(allowed(&protocol, "g", d("2026-12-03"), d("2026-06-30"), false).is_err());
    }

    /// A one-row selection of `file` of [`PROTOCOL`]-like text.
    fn one_row(protocol: &Protocol) -> Selected {
        use crate::select::{Person, Selection, SelectionSpec};
        let rules = kbi_core::domain::RuleSet::shipped();
        let codes = kbi_import::codes::Codes::shipped();
        let regions = crate::regions::Regions::shipped();
        let mut selection = Selection::new(
            SelectionSpec {
                protocol,
                file: protocol.file("f").unwrap(),
                reference: d("2026-06-30"),
                rules: &rules,
                facts: crate::dossier_facts(),
                codes: &codes,
                regions: &regions,
                pseudonym_key: None,
                joins: Vec::new(),
            },
            crate::table::Values::default(),
        )
        .unwrap();
        selection.push(Person {
            insz: kbi_core::domain::Insz::parse("85073003328").unwrap(),
            events: Vec::new(),
            dossier: Box::default(),
        });
        selection.finish().unwrap()
    }

    fn basis() -> Basis {
        Basis {
            population: vec!["all".into()],
            fields: vec!["insz".into()],
            identity: "insz".into(),
            pseudonym_key_fingerprint: None,
            suppression: None,
            source: crate::manifest::Source {
                format: "kbi-dossier-01.00".into(),
                files: 1,
                bytes: 1,
                dossiers: 1,
            },
            joins: Vec::new(),
            rule_set: None,
        }
    }

    fn request(dir: &Path, register: PathBuf, sealing: Sealing) -> DeliveryRequest {
        DeliveryRequest {
            protocol: "p".into(),
            file: "f".into(),
            period: Period::SixMonthly,
            reference: d("2026-06-30"),
            retention_years: Some(5),
            sealing,
            signing_key: SigningKey::from_bytes(&[3; 32]),
            out_dir: dir.to_path_buf(),
            register,
            operator: "tester".into(),
            force: Force::No,
        }
    }

    #[test]
    fn a_delivery_is_written_signed_registered_and_verifies() {
        let protocol = Protocol::from_toml(PROTOCOL).unwrap();
        let selected = one_row(&protocol);
        let dir = tempfile::tempdir().unwrap();
        let identity = age::x25519::Identity::generate();
        let register = dir.path().join("register.jsonl");
        let prepared = request(
            dir.path(),
            register.clone(),
            Sealing::Recipients(vec![identity.to_public()]),
        )
        .prepare(Encryption::Recipients)
        .unwrap();
        let delivered = prepared.run(&selected, basis()).unwrap();
        assert_eq!(delivered.manifest.rows, 1);
        assert_eq!(delivered.manifest.period_key.as_deref(), Some("2026-H1"));
        let identities: Vec<Box<dyn age::Identity>> = vec![Box::new(identity)];
        let verified = crate::verify::verify(
            &delivered.files[1],
            &SigningKey::from_bytes(&[3; 32]).verifying_key(),
            Some(&identities),
        )
        .unwrap();
        assert!(verified.plaintext_checked);
        let line = std::fs::read_to_string(&register).unwrap();
        assert!(line.contains("\"period\":\"2026-H1\""), "{line}");
        assert!(!line.contains("85073003328"));
        // Once a period.
        let again = request(
            dir.path(),
            register,
            Sealing::Recipients(vec![age::x25519::Identity::generate().to_public()]),
        )
        .prepare(Encryption::Recipients)
        .err()
        .unwrap();
        assert!(
            matches!(again, DeliverError::AlreadyDelivered { .. }),
            "{again}"
        );
    }

    #[test]
    fn a_failed_register_append_leaves_nothing_not_even_the_passphrase() {
        let protocol = Protocol::from_toml(PROTOCOL).unwrap();
        let selected = one_row(&protocol);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let register = dir.path().join("register.jsonl");
        let passphrase = dir.path().join("passphrase.txt");
        let prepared = request(
            &out,
            register.clone(),
            Sealing::Passphrase {
                out: Some(passphrase.clone()),
            },
        )
        .prepare(Encryption::Passphrase)
        .unwrap();
        // The register can no longer take a line (a directory by that name): the append, the
        // last step, fails after the files and the passphrase were put in place.
        std::fs::create_dir(&register).unwrap();
        let error = prepared.run(&selected, basis()).unwrap_err();
        assert!(matches!(error, DeliverError::Register(_)), "{error}");
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "nothing left in OUT"
        );
        assert!(
            !passphrase.exists(),
            "no passphrase for a delivery that does not exist"
        );
    }
}
