//! `kbi-advice export`: a delivery under a protocol file (`protocols.md` sections 3–7) —
//! dossiers read with the import's hardened reader, the population selected by the doors' rules,
//! the protocol's fields derived, partners' files joined, the identity kept, removed or
//! pseudonymised, small cells suppressed, the file encrypted, signed and registered. `export
//! verify` checks a delivery. The work is in [`kbi_export`]; this file reads arguments and
//! prints.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use age::secrecy::{ExposeSecret, SecretString};
use anyhow::Context;
use clap::{Args, Subcommand};
use kbi_core::io::Console;
use kbi_export::deliver::{DeliveryRequest, Sealing};
use kbi_export::identity::PseudonymKey;
use kbi_export::regions::Regions;
use kbi_export::ExportError;
use kbi_import::codes::Codes;
use kbi_premium::{recipients, Force};
use kbi_protocol::{Encryption, Protocol};
use serde::Serialize;

use super::exit;
use crate::service::settings::load_rules;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub command: Option<ExportCommand>,
    // Boxed: the delivery's arguments are large and `Command` holds every subcommand's.
    #[command(flatten)]
    pub delivery: Box<DeliveryArgs>,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Check a delivery: the manifest's signature, the encrypted file's hash, and with
    /// --identity (or --passphrase-file) the decrypted file's hash and row count.
    Verify(VerifyArgs),
}

/// Deliver one file of a protocol.
#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// The protocol file (TOML), or the id of a protocol in --protocols-dir (default: the
    /// shipped config/protocols/).
    #[arg(long, value_name = "FILE|ID", required = true)]
    pub protocol: Option<String>,
    /// The delivery: the id of a [[files]] entry of the protocol.
    #[arg(long = "file", value_name = "ID", required = true)]
    pub file: Option<String>,
    /// GeefDossierKBI 01.00 replies: files or directories, as `snapshot import` reads them.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
    /// The day the delivery describes (YYYY-MM-DD); default: today. Its period is the
    /// delivery's period (2026, 2026-H2, 2026-12).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub reference_date: Option<String>,
    /// For the yearly list (`--file reduced-premium`): premium year P, i.e. the reference date
    /// 1 January of P − 1, as `premium-list --premium-year P`.
    #[arg(long, value_name = "P", conflicts_with = "reference_date")]
    pub premium_year: Option<String>,
    /// A partner's file for a join the protocol declares: NAME=FILE (CSV, or age-encrypted CSV
    /// decrypted in memory with --identity). Repeat for each join.
    #[arg(long = "join", value_name = "NAME=FILE")]
    pub joins: Vec<String>,
    /// The agency's age identity file (AGE-SECRET-KEY-1…), to decrypt encrypted join files.
    #[arg(long, value_name = "KEYFILE")]
    pub identity: Option<PathBuf>,
    /// The agency's pseudonym key (32 bytes; `protocol keygen --pseudonym FILE` makes one), for
    /// a file with identity "pseudonym".
    #[arg(long, value_name = "FILE")]
    pub pseudonym_key: Option<PathBuf>,
    /// An age X25519 public key (age1…) to encrypt to; repeat for several recipients.
    #[arg(
        long = "recipient",
        value_name = "age1…",
        conflicts_with = "passphrase_out"
    )]
    pub recipients: Vec<String>,
    /// A file of age public keys, one a line (`#` comments), as `age -R` reads.
    #[arg(
        long = "recipients-file",
        value_name = "FILE",
        conflicts_with = "passphrase_out"
    )]
    pub recipients_files: Vec<PathBuf>,
    /// For a file encrypted with a passphrase: write the generated passphrase here (mode 0600,
    /// never overwritten), to hand over by another channel. Without it the passphrase is
    /// printed once, on a terminal only.
    #[arg(long, value_name = "FILE")]
    pub passphrase_out: Option<PathBuf>,
    /// The Ed25519 signing key (PKCS#8 PEM; `premium-list keygen` makes one).
    #[arg(long, value_name = "PEM", required = true)]
    pub signing_key: Option<PathBuf>,
    /// Output directory (must exist).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// The export register (default: OUT/export-register.jsonl), the yearly list's.
    #[arg(long, value_name = "FILE")]
    pub register: Option<PathBuf>,
    /// Deliver again although the register holds a delivery of this file in this period.
    #[arg(long)]
    pub force: bool,
    /// Why the delivery is repeated (required with --force; recorded in the register).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Also write the report (counts, joins, warnings, the reading's ERRORs; never an INSZ) as
    /// JSON to this file.
    #[arg(long, value_name = "JSON")]
    pub report: Option<PathBuf>,
    /// Who delivers (recorded in the register).
    #[arg(long, value_name = "NAME", env = "USER")]
    pub operator: Option<String>,
    /// Rules file (default: the shipped config/rules.toml).
    #[arg(long, value_name = "TOML")]
    pub rules: Option<PathBuf>,
    /// Code lists replacing the shipped config/kbi-codes.toml.
    #[arg(long, value_name = "TOML")]
    pub codes: Option<PathBuf>,
    /// Office → region list replacing the shipped config/kbi-regions.toml.
    #[arg(long, value_name = "TOML")]
    pub regions: Option<PathBuf>,
    /// Directory of the protocol files when --protocol is an id.
    #[arg(long, value_name = "DIR", env = "KBI_ADVICE__PROTOCOLS__DIR")]
    pub protocols_dir: Option<PathBuf>,
    /// Input files read at once (default: the number of cores, at most 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Option<u16>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The delivery's manifest (`….manifest.json`; its signature is `….manifest.json.sig`
    /// beside it, the encrypted file is the one it names, in the same directory).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// The agency's public key (PEM SubjectPublicKeyInfo, -----BEGIN PUBLIC KEY-----).
    #[arg(long, value_name = "PEM")]
    pub public_key: PathBuf,
    /// An age identity file: also decrypt (in memory) and check the file.
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_file")]
    pub identity: Option<PathBuf>,
    /// The passphrase file of a passphrase delivery: also decrypt and check the file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> anyhow::Result<u8> {
    match args.command {
        Some(ExportCommand::Verify(args)) => run_verify(args),
        None => run_export(*args.delivery),
    }
}

/// The protocol named by `--protocol`: a file when such a file exists, else an id among the
/// protocols of `--protocols-dir` (the shipped ones by default). Also the directory a relative
/// `recipients_file` is read from.
fn load_protocol(args: &DeliveryArgs, named: &str) -> anyhow::Result<(Protocol, PathBuf)> {
    let path = Path::new(named);
    if path.is_file() {
        let text = kbi_core::io::read_config_text(path)
            .with_context(|| format!("cannot read protocol file {}", path.display()))?;
        let protocol = Protocol::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("protocol file {}: {e}", path.display()))?;
        let dir = kbi_premium::register::parent_of(path).to_path_buf();
        return Ok((protocol, dir));
    }
    let dir = args
        .protocols_dir
        .as_deref()
        .filter(|dir| !dir.as_os_str().is_empty());
    let protocols = super::protocol::load_dir(dir)?;
    let Some(protocol) = protocols.get(named) else {
        anyhow::bail!(
            "--protocol {named}: no such file, and no protocol with that id (known: {}); see \
             docs/protocols.md",
            protocols.ids().join(", ")
        );
    };
    Ok((
        (**protocol).clone(),
        dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    ))
}

fn parse_joins(texts: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    texts
        .iter()
        .map(|text| {
            let Some((name, path)) = text.split_once('=') else {
                anyhow::bail!("--join {text:?}: give NAME=FILE (the join's name in the protocol)");
            };
            if name.is_empty() || path.is_empty() {
                anyhow::bail!("--join {text:?}: give NAME=FILE (the join's name in the protocol)");
            }
            Ok((name.to_owned(), PathBuf::from(path)))
        })
        .collect()
}

/// What `--report` writes. Counts, never an INSZ or a pseudonym.
#[derive(Debug, Serialize)]
struct ExportReport<'a> {
    ok: bool,
    protocol: &'a str,
    file: &'a str,
    reference_date: String,
    period: Option<String>,
    /// Dossiers accepted by the reader.
    read: u64,
    in_population: u64,
    no_regime: u64,
    rows: u64,
    suppressed_rows: u64,
    suppressed_cells: u64,
    joins: &'a [kbi_export::select::JoinUse],
    /// WARNs of the field derivations, by text, with counts.
    warnings: &'a std::collections::BTreeMap<&'static str, u64>,
    files: Vec<String>,
    /// What reading the dossiers reported (the import's report: counts, WARNs, ERRORs).
    dossiers: &'a kbi_import::Report,
    seconds: f64,
}

/// What `--report` writes when the export was refused for the dossiers' ERRORs.
#[derive(Debug, Serialize)]
struct RefusedReport<'a> {
    ok: bool,
    protocol: &'a str,
    file: &'a str,
    error: String,
    dossiers: Option<&'a kbi_import::Report>,
}

fn write_report(path: &Path, report: &impl Serialize) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report)?;
    std::fs::write(path, json).with_context(|| format!("cannot write report {}", path.display()))
}

fn run_export(args: DeliveryArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let (Some(named), Some(file_id), Some(key_path), Some(out)) =
        (&args.protocol, &args.file, &args.signing_key, &args.out)
    else {
        anyhow::bail!("--protocol, --file, --signing-key and --out are required");
    };
    let (protocol, protocol_dir) = load_protocol(&args, named)?;
    let today = super::protocol::today();
    let reference = match (&args.reference_date, &args.premium_year) {
        (Some(text), _) => kbi_core::domain::day::parse_date(text.trim())
            .map_err(|_| anyhow::anyhow!("--reference-date {text:?} is not a date YYYY-MM-DD"))?,
        (None, Some(year)) => kbi_core::domain::advice::parse_premium_year(year.trim())
            .map(kbi_core::domain::advice::premium_reference_date)
            .map_err(|_| {
                anyhow::anyhow!("--premium-year {year:?} is not a four-digit year after 1000")
            })?,
        (None, None) => today,
    };
    let force = Force::new(args.force, args.reason.as_deref())?;
    // Refusals that need nothing read come first, and --force never lifts them.
    let spec = match kbi_export::deliver::allowed(&protocol, file_id, today, reference, args.force)
    {
        Ok(spec) => spec,
        Err(error) => {
            eprintln!("kbi-advice: export refused: {error}");
            return Ok(exit::REFUSED);
        }
    };
    let sealing = match spec.encryption {
        Encryption::Recipients => {
            let mut files: Vec<PathBuf> = args.recipients_files.clone();
            if let Some(listed) = &spec.recipients_file {
                files.push(protocol_dir.join(listed));
            }
            let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
            Sealing::Recipients(recipients::collect(&args.recipients, &files)?)
        }
        Encryption::Passphrase => {
            if !args.recipients.is_empty() || !args.recipients_files.is_empty() {
                anyhow::bail!(
                    "file {file_id} is encrypted with a passphrase (the protocol says so): give \
                     --passphrase-out FILE, not --recipient"
                );
            }
            if args.passphrase_out.is_none() && !std::io::stdout().is_terminal() {
                anyhow::bail!(
                    "file {file_id} is encrypted with a generated passphrase: give \
                     --passphrase-out FILE (it is printed only on a terminal)"
                );
            }
            Sealing::Passphrase {
                out: args.passphrase_out.clone(),
            }
        }
    };
    if spec.encryption == Encryption::Recipients && args.passphrase_out.is_some() {
        anyhow::bail!(
            "file {file_id} is encrypted to recipients (the protocol says so): --passphrase-out is \
             not for it"
        );
    }
    let rules = load_rules(args.rules.as_ref())?;
    let codes = match &args.codes {
        Some(path) => {
            let text = kbi_core::io::read_config_text(path)
                .with_context(|| format!("cannot read code lists {}", path.display()))?;
            Codes::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Codes::shipped(),
    };
    let regions = match &args.regions {
        Some(path) => {
            let text = kbi_core::io::read_config_text(path)
                .with_context(|| format!("cannot read regions {}", path.display()))?;
            Regions::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("regions {}: {e}", path.display()))?
        }
        None => Regions::shipped(),
    };
    let joins = parse_joins(&args.joins)?;
    let identities = match &args.identity {
        Some(path) => Some(kbi_premium::verify::read_identities(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let pseudonym_key = match &args.pseudonym_key {
        Some(path) => Some(PseudonymKey::read(path)?),
        None => None,
    };
    let signing_key = kbi_signing::read_signing_key(key_path)?;
    let register = args
        .register
        .clone()
        .unwrap_or_else(|| out.join(kbi_premium::DEFAULT_REGISTER));
    let delivery = DeliveryRequest {
        protocol: protocol.id.to_string(),
        file: spec.id.clone(),
        period: spec.period,
        reference,
        retention_years: protocol.retention_years,
        sealing,
        signing_key,
        out_dir: out.clone(),
        register: register.clone(),
        operator: args.operator.clone().unwrap_or_default(),
        force,
    };
    let defaults = kbi_import::RunOptions::default();
    let source = kbi_export::Source {
        inputs: args.inputs.clone(),
        codes,
        regions,
        rules: (*rules).clone(),
        run: kbi_import::RunOptions {
            workers: args.workers.map_or(defaults.workers, usize::from),
            ..defaults
        },
    };
    let request = kbi_export::Request {
        protocol: &protocol,
        file: spec,
        reference,
        joins,
        identities: identities.as_deref(),
        pseudonym_key,
    };
    let outcome = kbi_export::export(
        &source,
        request,
        today,
        delivery,
        &Console::counting("bytes"),
    );
    let (collected, delivered) = match outcome {
        Ok(done) => done,
        Err(error) => {
            let dossiers = match &error {
                ExportError::Dossiers { report, .. } => {
                    eprint!("{}", report.render());
                    Some(&**report)
                }
                _ => None,
            };
            if let Some(path) = &args.report {
                write_report(
                    path,
                    &RefusedReport {
                        ok: false,
                        protocol: &protocol.id,
                        file: file_id,
                        error: error.to_string(),
                        dossiers,
                    },
                )?;
            }
            eprintln!("kbi-advice: export refused: {error}");
            return Ok(exit::REFUSED);
        }
    };
    let selected = &collected.selected;
    eprint!("{}", collected.report.render());
    let m = &delivered.manifest;
    println!(
        "export {} / {} (reference date {}, period {}): {} row(s) of {} dossier(s) read{}",
        m.protocol,
        m.file,
        m.reference_date,
        m.period_key.as_deref().unwrap_or("on-demand"),
        m.rows,
        selected.counts.dossiers,
        if selected.suppressed.cells > 0 {
            format!(
                ", {} cell(s) suppressed in {} row(s) (min_group)",
                selected.suppressed.cells, selected.suppressed.rows
            )
        } else {
            String::new()
        }
    );
    for join in &selected.joins {
        println!(
            "  join {}: {} row(s), {} in the delivery, {} not",
            join.name, join.rows, join.matched, join.unmatched
        );
    }
    for (text, count) in &selected.warnings {
        eprintln!("WARN {text}: {count} row(s)");
    }
    for file in &delivered.files {
        println!("  wrote {}", file.display());
    }
    if let Some(path) = &delivered.passphrase_file {
        println!(
            "  passphrase written to {} (mode 0600): hand it over by another channel than the file",
            path.display()
        );
    }
    if let Some(passphrase) = &delivered.passphrase {
        // Only reached on a terminal (checked before anything was read).
        println!(
            "  passphrase (shown once, hand it over by another channel): {}",
            passphrase.expose_secret()
        );
    }
    println!(
        "  recorded in {} (operator {}{})",
        register.display(),
        delivered.register_entry.operator,
        if delivered.register_entry.forced {
            ", forced"
        } else {
            ""
        }
    );
    if let Some(path) = &args.report {
        write_report(
            path,
            &ExportReport {
                ok: true,
                protocol: &m.protocol,
                file: &m.file,
                reference_date: m.reference_date.clone(),
                period: m.period_key.clone(),
                read: selected.counts.dossiers,
                in_population: selected.counts.in_population,
                no_regime: selected.counts.no_regime,
                rows: m.rows,
                suppressed_rows: selected.suppressed.rows,
                suppressed_cells: selected.suppressed.cells,
                joins: &selected.joins,
                warnings: &selected.warnings,
                files: delivered
                    .files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                dossiers: &collected.report,
                seconds: started.elapsed().as_secs_f64(),
            },
        )?;
    }
    Ok(exit::OK)
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<u8> {
    let public_key = kbi_signing::read_public_key(&args.public_key)?;
    let identities: Option<Vec<Box<dyn age::Identity>>> =
        match (&args.identity, &args.passphrase_file) {
            (Some(path), _) => {
                Some(kbi_premium::verify::read_identities(path).map_err(anyhow::Error::msg)?)
            }
            (None, Some(path)) => {
                let text = kbi_core::io::read_config_text(path)
                    .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
                let passphrase = SecretString::from(text.trim().to_owned());
                Some(vec![Box::new(age::scrypt::Identity::new(passphrase))])
            }
            (None, None) => None,
        };
    match kbi_export::verify::verify(&args.manifest, &public_key, identities.as_deref()) {
        Ok(verified) => {
            let m = &verified.manifest;
            println!(
                "OK: {} / {} (reference date {}, period {}): signature valid, encrypted file \
                 matches the manifest{}",
                m.protocol,
                m.file,
                m.reference_date,
                m.period_key.as_deref().unwrap_or("on-demand"),
                if verified.plaintext_checked {
                    format!(", decrypted file checked ({} rows, hash matches)", m.rows)
                } else {
                    " (not decrypted: give --identity or --passphrase-file to check it too)"
                        .to_owned()
                }
            );
            Ok(exit::OK)
        }
        Err(error) => {
            eprintln!("FAILED: {error}");
            Ok(exit::REFUSED)
        }
    }
}
