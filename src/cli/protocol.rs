//! `kbi-advice protocol check|show`: validate protocol files, and explain one on a day — its
//! purposes and deliveries, each field with its source, and whether each flow is allowed that
//! day and, if not, why (`protocols.md` section 1). `serve` and `premium-list` load the same
//! files with the same code ([`load_dir`], `kbi_protocol`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use kbi_protocol::{Protocol, ProtocolSet, PurposeWindow, Refusal};

use super::exit;

#[derive(Debug, Subcommand)]
pub enum ProtocolCommand {
    /// Validate protocol files (exit 0 when every file is valid and no two share an id, 1
    /// otherwise, naming the file and the key).
    Check(CheckArgs),
    /// Print one protocol: its purposes and deliveries, each field with its source, and whether
    /// each flow is allowed on a day and, if not, why.
    Show(ShowArgs),
    /// Generate a secret key: `--pseudonym FILE` writes the agency's pseudonym key (32 random
    /// bytes, mode 0600, never overwriting a file), for exports with identity "pseudonym".
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the pseudonym key. Keep it with the agency: it never leaves, and every
    /// pseudonym of every delivery depends on it (losing it breaks comparisons over time).
    #[arg(long, value_name = "FILE", required = true)]
    pub pseudonym: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Protocol files (TOML, `config/protocols/*.toml`).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The protocol file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The day to judge the flows on (YYYY-MM-DD); default: today (local time, as the doors).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub on: Option<NaiveDate>,
}

pub fn run(command: ProtocolCommand) -> anyhow::Result<u8> {
    match command {
        ProtocolCommand::Check(args) => check(&args),
        ProtocolCommand::Show(args) => show(&args),
        ProtocolCommand::Keygen(args) => keygen(&args),
    }
}

fn keygen(args: &KeygenArgs) -> anyhow::Result<u8> {
    let key = kbi_export::identity::PseudonymKey::generate(&args.pseudonym)?;
    println!(
        "pseudonym key written to {} (mode 0600; keep it with the agency, it never leaves)",
        args.pseudonym.display()
    );
    println!(
        "fingerprint (named in every manifest): {}",
        key.fingerprint()
    );
    Ok(exit::OK)
}

/// The text of one protocol file, read as every configuration file is (regular file, size cap).
fn read(path: &Path) -> anyhow::Result<String> {
    kbi_core::io::read_config_text(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Every `*.toml` of `dir`, in name order, validated as one set (an invalid file or a duplicate
/// id refuses the set). `None`: the shipped protocols (`config/protocols/`, compiled in).
pub fn load_dir(dir: Option<&Path>) -> anyhow::Result<ProtocolSet> {
    let Some(dir) = dir else {
        return ProtocolSet::shipped().context("the shipped protocols (config/protocols/)");
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("protocols.dir: cannot read {}", dir.display()))?
    {
        let path = entry
            .with_context(|| format!("protocols.dir: cannot read {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            names.push(path);
        }
    }
    names.sort();
    let mut sources = Vec::with_capacity(names.len());
    for path in names {
        sources.push((path.display().to_string(), read(&path)?));
    }
    ProtocolSet::from_sources(sources).with_context(|| format!("protocols.dir {}", dir.display()))
}

fn check(args: &CheckArgs) -> anyhow::Result<u8> {
    let mut sources = Vec::new();
    let mut failed = false;
    for path in &args.files {
        let name = path.display().to_string();
        match read(path) {
            Ok(text) => match Protocol::from_toml(&text) {
                Ok(protocol) => {
                    println!("{name}: ok (protocol {})", protocol.id);
                    sources.push((name, text));
                }
                Err(error) => {
                    println!("{name}: refused: {error}");
                    failed = true;
                }
            },
            Err(error) => {
                println!("{name}: {error:#}");
                failed = true;
            }
        }
    }
    // Two valid files with the same id are refused together, as `serve` would.
    if !failed && sources.len() > 1 {
        if let Err(error) = ProtocolSet::from_sources(sources) {
            println!("refused: {error}");
            failed = true;
        }
    }
    Ok(if failed { exit::REFUSED } else { exit::OK })
}

fn show(args: &ShowArgs) -> anyhow::Result<u8> {
    let text = read(&args.file)?;
    let protocol = match Protocol::from_toml(&text) {
        Ok(protocol) => protocol,
        Err(error) => {
            println!("{}: refused: {error}", args.file.display());
            return Ok(exit::REFUSED);
        }
    };
    let on = args.on.unwrap_or_else(today);
    print!("{}", describe(&protocol, on));
    Ok(exit::OK)
}

/// The day a question is asked: the local calendar day (the protocol's dates are Belgian days).
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

fn verdict(result: Result<(), Refusal>) -> String {
    match result {
        Ok(()) => "allowed".to_owned(),
        Err(refusal) => format!("REFUSED: {refusal}"),
    }
}

/// What `protocol show` prints.
pub fn describe(protocol: &Protocol, on: NaiveDate) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "protocol {}: {}", protocol.id, protocol.title);
    if let Some(signed) = protocol.signed_on {
        let _ = writeln!(out, "  signed on      {signed}");
    }
    let _ = writeln!(out, "  sender         {}", protocol.sender);
    let _ = writeln!(out, "  recipient      {}", protocol.recipient);
    for basis in &protocol.legal_basis {
        let _ = writeln!(out, "  legal basis    {basis}");
    }
    let _ = writeln!(out, "  term           {}", protocol.term);
    if let Some(years) = protocol.retention_years {
        let _ = writeln!(out, "  retention      {years} years");
    }
    match &protocol.ended {
        Some(ended) => {
            let _ = writeln!(out, "  ended          on {}: {}", ended.on, ended.reason);
        }
        None => {
            let _ = writeln!(out, "  ended          no");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "on {on}:");
    let _ = writeln!(out, "  protocol: {}", verdict(protocol.in_force(on)));
    for purpose in &protocol.questions {
        let window = match purpose.window {
            PurposeWindow::Any => "every reference date".to_owned(),
            PurposeWindow::Dates(w) => format!("reference dates {w}"),
            PurposeWindow::PremiumYears(w) => format!("premium years {w}"),
        };
        let _ = writeln!(
            out,
            "  question {} (asks {}, {window}){}",
            purpose.name,
            purpose.asks.as_str(),
            purpose
                .ended
                .as_ref()
                .map(|e| format!(", ended on {}: {}", e.on, e.reason))
                .unwrap_or_default()
        );
        // Whether the purpose is open that day; the window is then checked per question.
        let open = protocol.in_force(on).and_then(|()| match &purpose.ended {
            Some(ended) if ended.applies(on) => Err(Refusal::PurposeEnded {
                protocol: protocol.id.clone(),
                purpose: purpose.name.clone(),
                on: ended.on,
                reason: ended.reason.clone(),
            }),
            _ => Ok(()),
        });
        let _ = writeln!(
            out,
            "    {}",
            match open {
                Ok(()) => format!("allowed for {window}"),
                Err(refusal) => format!("REFUSED: {refusal}"),
            }
        );
    }
    for file in &protocol.files {
        let _ = writeln!(
            out,
            "  file {} ({}, identity {}, encryption {})",
            file.id,
            file.period.as_str(),
            file.identity.as_str(),
            file.encryption.as_str()
        );
        let governing = protocol.purpose(&file.id);
        let open = protocol.in_force(on).and_then(|()| match governing {
            Some(p) => match &p.ended {
                Some(ended) if ended.applies(on) => Err(Refusal::PurposeEnded {
                    protocol: protocol.id.clone(),
                    purpose: p.name.clone(),
                    on: ended.on,
                    reason: ended.reason.clone(),
                }),
                _ => Ok(()),
            },
            None => Ok(()),
        });
        let _ = writeln!(out, "    {}", verdict(open));
        let population: Vec<String> = file.population.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(out, "    population   {}", population.join(" AND "));
        if !file.age_bands.is_empty() {
            let _ = writeln!(out, "    age bands    {:?}", file.age_bands);
        }
        if let Some(k) = file.min_group {
            let quasi: Vec<String> = file
                .quasi_identifiers
                .iter()
                .map(|f| f.to_string())
                .collect();
            let _ = writeln!(out, "    min group    {k} over {}", quasi.join(", "));
        }
        let _ = writeln!(out, "    fields (in this order; nothing else leaves):");
        for field in &file.fields {
            let special = if file.special_categories.contains(field) {
                "  [special category, GDPR art. 9]"
            } else {
                ""
            };
            let name = field.to_string();
            let _ = writeln!(out, "      {name:<32} ← {}{special}", field.source());
        }
        for join in &file.joins {
            let _ = writeln!(
                out,
                "    join {} on insz: {}{}",
                join.name,
                if join.columns.is_empty() {
                    // A join of the key alone (protocols.md section 4): a list an `in-join:`
                    // filter selects on.
                    "no columns (the list an in-join: filter selects on)".to_owned()
                } else {
                    join.columns.join(", ")
                },
                join.returned_from
                    .as_ref()
                    .map(|f| format!(" (only whom file {f} sent)"))
                    .unwrap_or_default()
            );
        }
    }
    out
}
