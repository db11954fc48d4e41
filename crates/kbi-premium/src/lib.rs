//! The yearly reduced-premium list (`premium-list.md`): every INSZ whose answer for premium year P
//! is `NOK`, encrypted with age to the recipients, described by a signed manifest, recorded in an
//! append-only export register, at most once a premium year unless forced with a reason.
//!
//! An export runs in two steps so that everything that can be refused without the snapshot is
//! refused before a long load: [`ExportRequest::prepare`] (arguments, output directory, register
//! lock, once-a-year rule), then [`PreparedExport::run`] on the loaded snapshot.
//!
//! Ordering, so that a failure anywhere leaves no partial output and no false register entry:
//! 1. the list is streamed through the age encryptor into a temporary file in the output
//!    directory; the manifest and signature go to temporary files too; all are `fsync`ed;
//! 2. the three are renamed to their final names (list, manifest, signature last) and the
//!    directory is `fsync`ed; a drop guard removes the ones already renamed if anything after
//!    the first rename fails (or panics) before the export is recorded;
//! 3. only then is the export appended to the register; if that fails, the guard removes the
//!    three files again, so a delivery that is not in the register does not exist.
//!
//! A crash between 2 and 3 (power loss) leaves complete files without a register entry; the next
//! export for that year then stops on the existing files (refused without `--force`), so the
//! operator sees it. The opposite order would record deliveries that never happened.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, SecondsFormat, Utc};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use kbi_core::domain::advice::premium_reference_date;
use kbi_core::domain::{CompiledSnapshot, ErrorCode, Status};
use kbi_core::io::Progress;

pub mod deliver;
pub mod list;
pub mod manifest;
pub mod recipients;
pub mod register;
pub mod verify;

// The signing key lives in its own crate, `kbi_signing` (the audit checkpoints use it too,
// without depending on the premium list), named by its own name.

use deliver::{
    check_out_dir, persist, remove_dead_temporaries, temp_in, write_temp, HashingWriter, Placed,
};
use list::{ListSummary, ListWriter};
use manifest::{ListBasis, ListHashes, Manifest, Program};
use register::{Earlier, Register, RegisterEntry, RegisterLock};

/// `kbi-reduced-premium-P.csv.age`
pub fn list_file_name(premium_year: i32) -> String {
    format!("kbi-reduced-premium-{premium_year}.csv.age")
}

/// `kbi-reduced-premium-P.manifest.json`
pub fn manifest_file_name(premium_year: i32) -> String {
    format!("kbi-reduced-premium-{premium_year}.manifest.json")
}

/// `kbi-reduced-premium-P.manifest.json.sig`
pub fn signature_file_name(premium_year: i32) -> String {
    format!("kbi-reduced-premium-{premium_year}.manifest.json.sig")
}

/// The default register: `export-register.jsonl` in the output directory.
pub const DEFAULT_REGISTER: &str = "export-register.jsonl";

/// The id of the delivery, in a protocol file's `[[files]]`, that the yearly list is
/// (`protocols.md`, `premium-list.md`: "Under its protocol").
pub const PROTOCOL_FILE: &str = "reduced-premium";

/// Whether a repeated export for the same premium year is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Force {
    No,
    /// Allowed, for the recorded reason (never blank).
    Yes {
        reason: String,
    },
}

impl Force {
    /// From `--force` and `--reason`: forcing needs a non-blank reason; a reason needs forcing.
    pub fn new(force: bool, reason: Option<&str>) -> Result<Force, PremiumError> {
        match (force, reason.map(str::trim)) {
            (false, None) => Ok(Force::No),
            (false, Some(_)) => Err(PremiumError::ReasonWithoutForce),
            (true, Some(reason)) if !reason.is_empty() => Ok(Force::Yes {
                reason: reason.to_string(),
            }),
            (true, _) => Err(PremiumError::ForceWithoutReason),
        }
    }
}

/// A step at which a test can make the export fail, to prove that nothing is left behind.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPoint {
    /// After the encrypted list is written to its temporary file.
    AfterList,
    /// After the first of the three renames.
    AfterFirstRename,
    /// Instead of appending to the register, after all renames.
    RegisterAppend,
}

/// The protocol a list is delivered under (`premium-list.md`, "Under its protocol"): named in
/// the manifest and the register line, so the list and `export --file reduced-premium` of the
/// same protocol are one delivery for the once-a-year rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderProtocol {
    pub id: String,
    pub retention_years: Option<u32>,
}

impl UnderProtocol {
    /// The period key of the list of `premium_year` as a protocol export names it: the calendar
    /// year of its reference date (1 January of P − 1).
    pub fn period(premium_year: i32) -> String {
        (premium_year - 1).to_string()
    }
}

/// What to export and where.
#[derive(Debug)]
pub struct ExportRequest {
    pub premium_year: i32,
    /// The protocol it is delivered under (`None`: a list without one, as before protocols).
    pub protocol: Option<UnderProtocol>,
    pub recipients: Vec<age::x25519::Recipient>,
    pub signing_key: SigningKey,
    pub out_dir: PathBuf,
    /// The export register (by default [`DEFAULT_REGISTER`] in `out_dir`).
    pub register: PathBuf,
    pub operator: String,
    pub force: Force,
    /// Test hook only; always `None` in the program.
    #[doc(hidden)]
    pub fail_point: Option<FailPoint>,
}

/// Why an export was refused or failed. Never carries an INSZ.
#[derive(Debug, thiserror::Error)]
pub enum PremiumError {
    #[error("no recipient: give at least one --recipient age1… or a --recipients-file")]
    NoRecipients,
    #[error("no operator name: give --operator NAME (default: $USER)")]
    NoOperator,
    #[error(
        "--force needs --reason \"…\" with a non-empty reason (it is recorded in the register)"
    )]
    ForceWithoutReason,
    #[error("--reason is only for a repeated export with --force")]
    ReasonWithoutForce,
    #[error("output directory {path}: {why}")]
    OutDir { path: PathBuf, why: String },
    #[error("the directory of the export register {path} does not exist")]
    RegisterDir { path: PathBuf },
    #[error(
        "premium year {premium_year} was already exported ({earlier}, see {register}); the \
         protocol allows one delivery a year: repeat only with --force --reason \"…\""
    )]
    AlreadyExported {
        premium_year: i32,
        earlier: String,
        register: PathBuf,
    },
    #[error(
        "{} already exist(s) but the register has no export for this premium year (an export \
         interrupted after writing, or another register?): check, then move them away or repeat \
         with --force --reason \"…\"",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    FilesExist { paths: Vec<PathBuf> },
    #[error(transparent)]
    Register(#[from] register::RegisterError),
    #[error(
        "the snapshot cannot answer for the reference date {date} (error {}: {}); no list is made",
        code.as_str(),
        code.title_en()
    )]
    CannotAnswer {
        date: chrono::NaiveDate,
        code: ErrorCode,
    },
    #[error("cannot encrypt the list: {0}")]
    Encrypt(String),
    #[error("cannot write {what} in {dir}: {error}")]
    Write {
        what: String,
        dir: PathBuf,
        error: io::Error,
    },
    #[error("injected failure at {0:?} (test)")]
    Injected(FailPoint),
}

/// An export whose refusable checks passed; holds the register lock until dropped.
#[derive(Debug)]
pub struct PreparedExport {
    request: ExportRequest,
    earlier: Vec<Earlier>,
    _lock: RegisterLock,
    leftovers: Leftovers,
}

/// What a killed export left and this one removed, to tell the operator.
#[derive(Debug, Clone, Default)]
pub struct Leftovers {
    /// The stale lock's content (`pid N on HOST since T`), when one was taken over.
    pub stale_lock: Option<String>,
    /// Temporary files of exports whose process no longer runs.
    pub temporary_files: Vec<PathBuf>,
}

/// A finished export.
#[derive(Debug, Clone)]
pub struct Exported {
    pub manifest: Manifest,
    /// The list, the manifest and the signature, in the output directory.
    pub files: [PathBuf; 3],
    pub register_entry: RegisterEntry,
    /// Walking the index, encrypting and hashing the list, writing and `fsync`ing it.
    pub list_time: Duration,
    /// Manifest, signature, renames and the register append.
    pub seal_time: Duration,
}

impl ExportRequest {
    /// Everything that can be refused before the snapshot is loaded: recipients, operator,
    /// output directory (exists, is writable), register directory, the lock, the once-a-year
    /// rule and files left in the way.
    pub fn prepare(self) -> Result<PreparedExport, PremiumError> {
        if self.recipients.is_empty() {
            return Err(PremiumError::NoRecipients);
        }
        if self.operator.trim().is_empty() {
            return Err(PremiumError::NoOperator);
        }
        check_out_dir(&self.out_dir).map_err(|why| PremiumError::OutDir {
            path: self.out_dir.clone(),
            why,
        })?;
        let register = Register::new(&self.register);
        let register_dir = register::parent_of(&self.register);
        if !register_dir.is_dir() {
            return Err(PremiumError::RegisterDir {
                path: self.register.clone(),
            });
        }
        let lock = register.lock()?;
        // Under the lock no other export of this register runs; temporary files are removed
        // only when their name proves them an export's of a process on this host that is gone.
        let leftovers = Leftovers {
            stale_lock: lock.reclaimed().map(str::to_string),
            temporary_files: remove_dead_temporaries(&self.out_dir),
        };
        let earlier = register.exports_of(
            self.premium_year,
            self.protocol
                .as_ref()
                .map(|p| (p.id.as_str(), PROTOCOL_FILE)),
        )?;
        if self.force == Force::No {
            if let Some(first) = earlier.first() {
                return Err(PremiumError::AlreadyExported {
                    premium_year: self.premium_year,
                    earlier: format!(
                        "{} time(s), first on {} by {}",
                        earlier.len(),
                        first.time,
                        first.operator
                    ),
                    register: self.register.clone(),
                });
            }
            let existing: Vec<PathBuf> = final_names(&self.out_dir, self.premium_year)
                .into_iter()
                .filter(|p| p.exists())
                .collect();
            if !existing.is_empty() {
                return Err(PremiumError::FilesExist { paths: existing });
            }
        }
        Ok(PreparedExport {
            request: self,
            earlier,
            _lock: lock,
            leftovers,
        })
    }
}

fn final_names(dir: &Path, year: i32) -> [PathBuf; 3] {
    [
        dir.join(list_file_name(year)),
        dir.join(manifest_file_name(year)),
        dir.join(signature_file_name(year)),
    ]
}

impl PreparedExport {
    /// What a killed export had left and was removed before this one (to report).
    pub fn leftovers(&self) -> &Leftovers {
        &self.leftovers
    }

    /// Earlier exports of this premium year (non-empty only for a forced export).
    pub fn earlier(&self) -> &[Earlier] {
        &self.earlier
    }

    /// Draws up, encrypts, signs and records the list. On error nothing is left in the output
    /// directory and the register is unchanged.
    pub fn run(
        self,
        snapshot: &CompiledSnapshot,
        progress: &dyn Progress,
    ) -> Result<Exported, PremiumError> {
        let request = &self.request;
        let year = request.premium_year;
        let date = premium_reference_date(year);
        if let Some(code) = snapshot.refusal_on(date) {
            return Err(PremiumError::CannotAnswer { date, code });
        }
        let dir = &request.out_dir;

        // 1. The encrypted list, into a temporary file.
        let started = Instant::now();
        let list = self.write_list(snapshot, date, progress)?;
        let list_time = started.elapsed();
        self.fail_at(FailPoint::AfterList)?;

        // 2. Manifest and signature, into temporary files.
        let started = Instant::now();
        let sealed = self.seal(snapshot, date, &list)?;

        // 3. Renames: list, manifest, signature last (a set without signature does not verify).
        //    From here on the guard removes what was put in place unless step 4 commits it.
        let finals = final_names(dir, year);
        let mut placed = Placed::new(dir);
        let temps = [list.file, sealed.manifest_file, sealed.signature_file];
        for (i, (temp, target)) in temps.into_iter().zip(finals.iter()).enumerate() {
            if i == 1 {
                self.fail_at(FailPoint::AfterFirstRename)?;
            }
            // The temporary files not yet renamed are removed when dropped.
            persist(temp, target, matches!(request.force, Force::Yes { .. }))
                .map_err(write_error(dir, &target_name(target)))?;
            placed.push(target.clone());
        }
        register::sync_dir(dir).map_err(write_error(dir, "the directory entries"))?;

        // 4. The register, only for a complete set of files; then the files are kept.
        let entry = self.register_entry(&sealed.manifest, &sealed.manifest_bytes);
        self.fail_at(FailPoint::RegisterAppend)?;
        Register::new(&request.register).append(&entry)?;
        placed.commit();
        let seal_time = started.elapsed();
        Ok(Exported {
            manifest: sealed.manifest,
            files: finals,
            register_entry: entry,
            list_time,
            seal_time,
        })
    }

    /// The injected failure at `point`, if the request names it (tests only).
    fn fail_at(&self, point: FailPoint) -> Result<(), PremiumError> {
        if self.request.fail_point == Some(point) {
            Err(PremiumError::Injected(point))
        } else {
            Ok(())
        }
    }

    /// Step 1: the NOK list, streamed through the age encryptor into a temporary file in the
    /// output directory and `fsync`ed; the plaintext only ever exists in a 64 KiB buffer.
    fn write_list(
        &self,
        snapshot: &CompiledSnapshot,
        date: NaiveDate,
        progress: &dyn Progress,
    ) -> Result<ListFile, PremiumError> {
        let request = &self.request;
        let dir = &request.out_dir;
        let mut file = temp_in(dir, &list_file_name(request.premium_year))
            .map_err(write_error(dir, "a temporary file"))?;
        let encryptor = age::Encryptor::with_recipients(
            request.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| PremiumError::Encrypt(e.to_string()))?;
        let list_error = write_error(dir, "the encrypted list");
        let (summary, without_rule_set, ciphertext_sha256) = {
            let sink = HashingWriter::new(BufWriter::with_capacity(256 * 1024, file.as_file_mut()));
            let stream = encryptor.wrap_output(sink).map_err(&list_error)?;
            let (stream, summary, without) =
                write_nok_list(snapshot, date, stream, progress).map_err(&list_error)?;
            let sink = stream.finish().map_err(&list_error)?;
            let (buffered, sha) = sink.finish();
            buffered
                .into_inner()
                .map_err(|e| list_error(e.into_error()))?;
            (summary, without, sha)
        };
        file.as_file().sync_all().map_err(&list_error)?;
        Ok(ListFile {
            file,
            summary,
            without_rule_set,
            ciphertext_sha256,
        })
    }

    /// Step 2: the manifest describing the list, and its signature, each in a temporary file.
    fn seal(
        &self,
        snapshot: &CompiledSnapshot,
        date: NaiveDate,
        list: &ListFile,
    ) -> Result<Sealed, PremiumError> {
        let request = &self.request;
        let year = request.premium_year;
        let dir = &request.out_dir;
        let meta = &snapshot.meta;
        let rfc3339 = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let manifest = Manifest {
            format: manifest::FORMAT.to_string(),
            format_version: manifest::FORMAT_VERSION,
            protocol: request.protocol.as_ref().map(|p| p.id.clone()),
            basis: ListBasis {
                premium_year: year,
                reference_date: date.to_string(),
                snapshot_id: meta.snapshot_id.clone(),
                extracted_at: rfc3339(meta.extracted_at),
                rule_set: snapshot.rules.version.clone(),
                count: list.summary.count,
            },
            persons_in_snapshot: snapshot.index.len() as u64,
            persons_without_rule_set: list.without_rule_set,
            list_file: list_file_name(year),
            retention_years: request.protocol.as_ref().and_then(|p| p.retention_years),
            hashes: ListHashes {
                plaintext_sha256: list.summary.sha256.clone(),
                ciphertext_sha256: list.ciphertext_sha256.clone(),
            },
            recipients: request.recipients.iter().map(|r| r.to_string()).collect(),
            signing_key_sha256: kbi_signing::key_fingerprint(&request.signing_key.verifying_key()),
            generated_at: rfc3339(Utc::now()),
            program: Program::this(),
        };
        let manifest_bytes = manifest.to_bytes();
        let signature = kbi_signing::sign(&request.signing_key, &manifest_bytes);
        let manifest_file = write_temp(dir, &manifest_file_name(year), &manifest_bytes)
            .map_err(write_error(dir, "the manifest"))?;
        let signature_file = write_temp(dir, &signature_file_name(year), &signature)
            .map_err(write_error(dir, "the signature"))?;
        Ok(Sealed {
            manifest,
            manifest_bytes,
            manifest_file,
            signature_file,
        })
    }

    /// The register line of this export (step 4).
    fn register_entry(&self, manifest: &Manifest, manifest_bytes: &[u8]) -> RegisterEntry {
        let request = &self.request;
        let dir = &request.out_dir;
        RegisterEntry {
            time: manifest.generated_at.clone(),
            basis: ListBasis {
                premium_year: request.premium_year,
                ..manifest.basis.clone()
            },
            hashes: manifest.hashes.clone(),
            manifest_sha256: hex::encode(Sha256::digest(manifest_bytes)),
            protocol: request.protocol.as_ref().map(|p| p.id.clone()),
            file: request.protocol.as_ref().map(|_| PROTOCOL_FILE.to_string()),
            period: request
                .protocol
                .as_ref()
                .map(|_| UnderProtocol::period(request.premium_year)),
            out_dir: std::fs::canonicalize(dir)
                .unwrap_or_else(|_| dir.clone())
                .display()
                .to_string(),
            operator: request.operator.trim().to_string(),
            forced: matches!(request.force, Force::Yes { .. }),
            reason: match &request.force {
                Force::Yes { reason } => Some(reason.clone()),
                Force::No => None,
            },
            program_version: manifest.program.version.clone(),
        }
    }
}

/// Step 1's result: the encrypted list in its temporary file, and what the manifest says of it.
struct ListFile {
    file: NamedTempFile,
    summary: ListSummary,
    without_rule_set: u64,
    ciphertext_sha256: String,
}

/// Step 2's result.
struct Sealed {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    manifest_file: NamedTempFile,
    signature_file: NamedTempFile,
}

/// The error of writing `what` in the output directory `dir`.
fn write_error(dir: &Path, what: &str) -> impl Fn(io::Error) -> PremiumError {
    let dir = dir.to_path_buf();
    let what = what.to_string();
    move |error| PremiumError::Write {
        what: what.clone(),
        dir: dir.clone(),
        error,
    }
}

fn target_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How many persons are walked between two progress reports.
const PROGRESS_STEP: u64 = 1 << 16;

/// Walks the index in INSZ order and writes every person whose answer on `date` is `NOK` into
/// `out`. The caller has checked [`CompiledSnapshot::refusal_on`]; past that check `advise`
/// answers `NOK` exactly for [`Status::NonCompliant`] (a person absent from the index is not
/// subject, and [`Status::NoRegime`] is refused with 30004), which is what is selected here.
/// Returns the writer, the list's summary, and the number of persons refused with 30004.
pub(crate) fn write_nok_list<W: Write>(
    snapshot: &CompiledSnapshot,
    date: chrono::NaiveDate,
    out: W,
    progress: &dyn Progress,
) -> io::Result<(W, ListSummary, u64)> {
    let index = &snapshot.index;
    progress.start("premium list", index.len() as u64);
    let mut list = ListWriter::new(out);
    let mut without_rule_set = 0u64;
    let mut walked = 0u64;
    for (insz, timeline) in index.iter() {
        match timeline.status_on(date) {
            Status::NonCompliant(_) => list.push(insz)?,
            Status::NoRegime => without_rule_set += 1,
            Status::NotSubject | Status::Compliant => {}
        }
        walked += 1;
        if walked % PROGRESS_STEP == 0 {
            progress.advance(PROGRESS_STEP);
        }
    }
    progress.advance(walked % PROGRESS_STEP);
    progress.finish();
    let (out, summary) = list.finish()?;
    Ok((out, summary, without_rule_set))
}
