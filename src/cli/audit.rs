//! `kbi-advice audit verify|search`: check the audit chain; answer "who consulted my data?".

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Subcommand, ValueEnum};

use super::exit;
use crate::audit::{self, AuditOutcome, AuditRecord};
use crate::domain::Insz;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of audit files and report the first altered, missing, reordered or
    /// malformed record (exit 0 when whole, 1 at the first problem, 2 when it cannot run).
    Verify(VerifyArgs),
    /// List the records about one INSZ: who consulted the person's data, and when (exit 1 when
    /// some lines about the INSZ could not be read).
    Search(SearchArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Audit files (audit-YYYY-MM-DD.jsonl), in any order: they are checked in date order.
    #[arg(
        value_name = "FILES",
        required_unless_present = "dir",
        conflicts_with = "dir"
    )]
    pub files: Vec<PathBuf>,
    /// Check every audit file of this directory instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
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
    }
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<u8> {
    let files = match &args.dir {
        Some(dir) => audit::files_in(dir, None, None)?,
        None => args.files,
    };
    if files.is_empty() {
        anyhow::bail!("no audit files to verify");
    }
    let report = audit::verify(&files);
    let mut out = std::io::stdout().lock();
    match &report.problem {
        None => {
            writeln!(
                out,
                "OK: {} records in {} file(s), seq {}..{}",
                report.records,
                report.files.len(),
                report.first_seq.unwrap_or(0),
                report.last_seq.unwrap_or(0),
            )?;
            if let Some(hash) = &report.last_hash {
                writeln!(out, "last record hash: {hash}")?;
            }
            if report.records > 0 && !report.starts_at_genesis() {
                writeln!(
                    out,
                    "note: the files do not start at the first record of the log; the chain \
                     was checked from seq {} on",
                    report.first_seq.unwrap_or(0)
                )?;
            }
            Ok(exit::OK)
        }
        Some(problem) => {
            writeln!(out, "FAILED: {problem}")?;
            writeln!(
                out,
                "{} record(s) chained correctly before this point",
                report.records
            )?;
            Ok(exit::REFUSED)
        }
    }
}

fn run_search(args: SearchArgs) -> anyhow::Result<u8> {
    // The error names the rule, not the text typed.
    let insz = Insz::parse(&args.insz).context("--insz is not a valid INSZ")?;
    if let (Some(from), Some(to)) = (args.from, args.to) {
        anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    }
    let files = match &args.dir {
        Some(dir) => audit::files_in(dir, args.from, args.to)?,
        None => args.files,
    };
    let result = audit::search(&files, insz, args.from, args.to)?;
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
        "sender",
        "hoedanigheid",
        "gebruiker",
        "server_reference",
        "question_referte",
        "reference_date",
        "outcome",
    ];
    let rows: Vec<[String; 9]> = records
        .iter()
        .map(|r| {
            let sender = r.sender.as_ref();
            [
                r.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                r.client_id.clone(),
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
