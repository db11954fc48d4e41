//! `kbi-advice audit verify|search|keygen`: check the audit chain (against the signed
//! checkpoints); answer "who consulted my data?"; make a checkpoint signing key.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};

use super::exit;
use kbi_audit::{AuditOutcome, AuditRecord};
use kbi_core::domain::Insz;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of audit files, and the chain against the signed checkpoints, and
    /// report the first altered, missing, reordered or malformed record (exit 0 when whole, 1 at
    /// the first problem, 2 when it cannot run).
    Verify(VerifyArgs),
    /// List the records about one INSZ: who consulted the person's data, and when (exit 1 when
    /// some lines about the INSZ could not be read).
    Search(SearchArgs),
    /// Make an Ed25519 key pair for the audit checkpoints (set `audit.checkpoint_key` to the
    /// private one; give the public one to whoever verifies).
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write NAME.pem (private, mode 0600) and NAME.pub.pem (public).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// File name stem.
    #[arg(long, default_value = "kbi-audit-checkpoint")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Audit segments (audit-YYYY-MM-DD[.N].jsonl), in any order: they are checked in chain
    /// order (day, then part).
    #[arg(
        value_name = "FILES",
        required_unless_present = "dir",
        conflicts_with = "dir"
    )]
    pub files: Vec<PathBuf>,
    /// Check every audit file of this directory instead, against its checkpoints
    /// (`DIR/audit.checkpoints`, signed by the key in `DIR/checkpoint-key.pub.pem`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Checkpoint file to check against (e.g. a copy kept off the host); default with `--dir`:
    /// the one in the directory.
    #[arg(long, value_name = "FILE")]
    pub checkpoints: Option<PathBuf>,
    /// Public key (PEM) the checkpoints must be signed with, pinned: every checkpoint must
    /// verify under it (or another `--public-key`, across a key rotation), and at least one
    /// must. Default: `checkpoint-key.pub.pem` beside the checkpoint file, not pinned (a
    /// checkpoint of another key is skipped). Pin it when the directory itself is in doubt.
    #[arg(long, value_name = "FILE")]
    pub public_key: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SearchFormat {
    /// One audit record (JSON) per line.
    Json,
    /// An aligned table for people.
    Table,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The person's INSZ (11 digits; spaces, dots and dashes allowed).
    #[arg(long)]
    pub insz: String,
    /// First day (UTC, YYYY-MM-DD) to include.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<NaiveDate>,
    /// Last day (UTC, YYYY-MM-DD) to include.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<NaiveDate>,
    /// Audit directory: reads the files of the period.
    #[arg(long, value_name = "DIR", conflicts_with = "files")]
    pub dir: Option<PathBuf>,
    /// Audit files to read instead of a directory.
    #[arg(value_name = "FILES", required_unless_present = "dir")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: SearchFormat,
}

pub fn run(command: AuditCommand) -> anyhow::Result<u8> {
    match command {
        AuditCommand::Verify(args) => run_verify(args),
        AuditCommand::Search(args) => run_search(args),
        AuditCommand::Keygen(args) => run_keygen(args),
    }
}

fn run_keygen(args: KeygenArgs) -> anyhow::Result<u8> {
    let files = kbi_signing::generate_key_pair(&args.out_dir, &args.name)?;
    println!(
        "private key (audit.checkpoint_key; readable by the service only, mode 0600): {}",
        files.private.display()
    );
    println!(
        "public key (for `audit verify --public-key`): {}",
        files.public.display()
    );
    println!(
        "public key SHA-256 (DER SubjectPublicKeyInfo): {}",
        files.fingerprint
    );
    Ok(exit::OK)
}

/// The checkpoints to check against: given, or the directory's own when they exist.
fn anchors(args: &VerifyArgs) -> anyhow::Result<Option<kbi_audit::Anchors>> {
    let pinned = !args.public_key.is_empty();
    let file = match (&args.checkpoints, &args.dir) {
        (Some(file), _) => file.clone(),
        (None, Some(dir)) => dir.join(kbi_audit::CHECKPOINT_FILE),
        // A pinned key with nothing to check it against must not pass as checked.
        (None, None) if pinned => {
            anyhow::bail!("--public-key needs the checkpoints: give --checkpoints or --dir")
        }
        (None, None) => return Ok(None),
    };
    if !pinned && args.checkpoints.is_none() && !file.exists() {
        return Ok(None);
    }
    let anchors = if pinned {
        kbi_audit::Anchors::pinned(&file, &args.public_key)
    } else {
        let key =
            kbi_audit::checkpoint::default_public_key(file.parent().unwrap_or(Path::new(".")));
        kbi_audit::Anchors::load(&file, &key)
    }
    .with_context(|| format!("cannot check the checkpoints of {}", file.display()))?;
    Ok(Some(anchors))
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<u8> {
    let anchors = anchors(&args)?;
    let files = match &args.dir {
        Some(dir) => kbi_audit::files_in(dir, None, None)?,
        None => args.files,
    };
    if files.is_empty() {
        anyhow::bail!("no audit files to verify");
    }
    let report = kbi_audit::verify_anchored(&files, anchors.as_ref());
    let mut out = std::io::stdout().lock();
    match &report.problem {
        None => {
            writeln!(
                out,
                "OK: intact, {} records in {} file(s), seq {}..{}",
                report.records,
                report.files.len(),
                report.first_seq.unwrap_or(0),
                report.last_seq.unwrap_or(0),
            )?;
            if let Some(hash) = &report.last_hash {
                writeln!(out, "last record hash: {hash}")?;
            }
            if report.preallocated_bytes > 0 {
                writeln!(
                    out,
                    "preallocated space follows: {} zero bytes after the last record (room for \
                     records to come, not a torn record)",
                    report.preallocated_bytes
                )?;
            }
            for (first, last) in &report.skipped {
                writeln!(
                    out,
                    "note: seq {first}..{last} set aside by the writer (records never \
                     acknowledged: a torn tail, see the .torn-* files, or a failed write); the \
                     chain runs on across them"
                )?;
            }
            if report.records > 0 && !report.starts_at_genesis() {
                writeln!(
                    out,
                    "note: the files do not start at the first record of the log; the chain \
                     was checked from seq {} on",
                    report.first_seq.unwrap_or(0)
                )?;
            }
            write_checkpoints(&mut out, &report)?;
            Ok(exit::OK)
        }
        Some(problem) => {
            writeln!(out, "FAILED: {problem}")?;
            writeln!(
                out,
                "{} record(s) chained correctly before this point",
                report.records
            )?;
            write_checkpoints(&mut out, &report)?;
            Ok(exit::REFUSED)
        }
    }
}

fn write_checkpoints(out: &mut impl Write, report: &kbi_audit::Report) -> std::io::Result<()> {
    let Some(checkpoints) = &report.checkpoints else {
        return writeln!(
            out,
            "checkpoints: not checked (none given or found): the end of the chain is not \
             anchored, records cut off the end would not show"
        );
    };
    let keys = checkpoints.keys.join(", ");
    let pinned = if checkpoints.pinned {
        "pinned key"
    } else {
        "key beside the log, not pinned:"
    };
    writeln!(
        out,
        "checkpoints: {} checked in {}, {} signed by {pinned} {keys}",
        checkpoints.checked,
        checkpoints.file.display(),
        checkpoints.valid,
    )?;
    if let Some(latest) = &checkpoints.latest {
        writeln!(
            out,
            "latest: seq {} at {}; {} record(s) after it not yet anchored",
            latest.seq, latest.time, checkpoints.unanchored
        )?;
    }
    if checkpoints.format_1 > 0 {
        writeln!(
            out,
            "note: {} checkpoint(s) in the old format v1: signed, but their key field was not \
             covered by the signature",
            checkpoints.format_1
        )?;
    }
    if checkpoints.other_key > 0 {
        writeln!(
            out,
            "note: {} checkpoint(s) name another key and were not checked (pin the keys with \
             --public-key to check them)",
            checkpoints.other_key
        )?;
    }
    Ok(())
}

fn run_search(args: SearchArgs) -> anyhow::Result<u8> {
    // The error names the rule, not the text typed.
    let insz = Insz::parse(&args.insz).context("--insz is not a valid INSZ")?;
    if let (Some(from), Some(to)) = (args.from, args.to) {
        anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    }
    let files = match &args.dir {
        Some(dir) => kbi_audit::files_in(dir, args.from, args.to)?,
        None => args.files,
    };
    let result = kbi_audit::search(&files, insz, args.from, args.to)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        SearchFormat::Json => {
            for record in &result.records {
                serde_json::to_writer(&mut out, record)?;
                writeln!(out)?;
            }
        }
        SearchFormat::Table => write_table(&mut out, &result.records)?,
    }
    for (file, line) in &result.unreadable {
        eprintln!(
            "kbi-advice: warning: {} line {line} mentions the INSZ but is not a valid record \
             (run `kbi-advice audit verify`)",
            file.display()
        );
    }
    Ok(if result.unreadable.is_empty() {
        exit::OK
    } else {
        exit::REFUSED
    })
}

fn write_table(out: &mut impl Write, records: &[AuditRecord]) -> std::io::Result<()> {
    let header = [
        "time",
        "client",
        "protocol",
        "purpose",
        "sender",
        "hoedanigheid",
        "gebruiker",
        "server_reference",
        "question_referte",
        "reference_date",
        "outcome",
    ];
    let rows: Vec<[String; 11]> = records
        .iter()
        .map(|r| {
            let sender = r.sender.as_ref();
            [
                r.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                r.client_id.clone(),
                // Records written before protocols have neither.
                r.protocol.clone().unwrap_or_else(|| "-".into()),
                r.purpose.clone().unwrap_or_else(|| "-".into()),
                sender.map_or("-".into(), |s| s.identificatie.clone()),
                sender.map_or("-".into(), |s| s.hoedanigheid.clone()),
                sender
                    .and_then(|s| s.gebruiker.clone())
                    .unwrap_or_else(|| "-".into()),
                r.server_reference.clone(),
                r.question_referte.clone().unwrap_or_else(|| "-".into()),
                r.reference_date.map_or("-".into(), |d| d.to_string()),
                match r.outcome {
                    AuditOutcome::Ok => "OK".into(),
                    AuditOutcome::Nok(reason) => format!("NOK {}", reason.code()),
                    AuditOutcome::Error(code) => format!("ERROR {}", code.as_str()),
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
        }
        writeln!(out, "{text}")
    };
    line(out, &header)?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    writeln!(out, "{} record(s)", rows.len())
}
