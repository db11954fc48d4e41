//! `kbi-advice premium-list`: export the yearly reduced-premium list (encrypted, signed, recorded,
//! once a premium year), `premium-list verify` a delivered list, `premium-list keygen` the signing
//! key pair. The work is in [`kbi_premium`]; this file reads arguments and prints.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand};

use super::exit;
use crate::service::settings::load_rules;
use crate::snapshot::SnapshotSource;
use kbi_core::domain::advice::{parse_premium_year, premium_year_of};
use kbi_core::domain::day::parse_date;
use kbi_core::io::Console;
use kbi_core::snapshot::reader::ReadLimits;
use kbi_premium::{recipients, verify, ExportRequest, Force, UnderProtocol};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PremiumListArgs {
    #[command(subcommand)]
    pub command: Option<PremiumCommand>,
    // Boxed: the export's arguments are large and `Command` holds every subcommand's arguments.
    #[command(flatten)]
    pub export: Box<ExportArgs>,
}

#[derive(Debug, Subcommand)]
pub enum PremiumCommand {
    /// Check a delivered list: signature, encrypted file hash, and with --identity the list
    /// itself (decrypted in memory).
    Verify(VerifyArgs),
    /// Generate the Ed25519 signing key pair (PKCS#8 PEM private key, PEM public key).
    Keygen(KeygenArgs),
}

/// Export the list of premium year P.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("when").required(true).args(["premium_year", "date"])))]
pub struct ExportArgs {
    /// Snapshot file (JSON Lines, optionally .gz or .zst), or redis://HOST[:PORT][/DB][?prefix=P]
    /// for the version currently published in Redis.
    #[arg(long, value_name = "FILE|redis://…", required = true)]
    pub snapshot: Option<SnapshotSource>,
    /// Premium year P: the list holds who is subject and not compliant on 1 January of P − 1.
    #[arg(long, value_name = "P")]
    pub premium_year: Option<String>,
    /// The reference date instead of the premium year; must be a 1 January (premium year =
    /// its year + 1).
    #[arg(long, value_name = "YYYY-01-01")]
    pub date: Option<String>,
    /// An age X25519 public key (age1…) to encrypt to; repeat for several recipients.
    #[arg(long = "recipient", value_name = "age1…")]
    pub recipients: Vec<String>,
    /// A file of age public keys, one a line (`#` comments), as `age -R` reads.
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
    /// The Ed25519 signing key (PKCS#8 PEM; `premium-list keygen` makes one).
    #[arg(long, value_name = "PEM", required = true)]
    pub signing_key: Option<PathBuf>,
    /// Output directory (must exist).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// The export register (default: OUT/export-register.jsonl).
    #[arg(long, value_name = "FILE")]
    pub register: Option<PathBuf>,
    /// Export again although the register holds an export for this premium year.
    #[arg(long)]
    pub force: bool,
    /// Why the export is repeated (required with --force; recorded in the register).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Who exports (recorded in the register).
    #[arg(long, value_name = "NAME", env = "USER")]
    pub operator: Option<String>,
    /// Rules file (default: the shipped config/rules.toml).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// The protocol the list is delivered under: its `reduced-premium` file must be in force on
    /// the day of the export, for this premium year (docs/protocols.md). --force does not
    /// override it.
    #[arg(long, value_name = "ID", default_value = "agii-vsb")]
    pub protocol: String,
    /// Directory of the protocol files (default: the shipped config/protocols/), as
    /// `protocols.dir` of `serve`.
    #[arg(long, value_name = "DIR", env = "KBI_ADVICE__PROTOCOLS__DIR")]
    pub protocols_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The directory holding the list, the manifest and the signature.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The premium year of the list.
    #[arg(long, value_name = "P")]
    pub premium_year: String,
    /// The agency's public key (PEM SubjectPublicKeyInfo, -----BEGIN PUBLIC KEY-----).
    #[arg(long, value_name = "PEM")]
    pub public_key: PathBuf,
    /// An age identity file (AGE-SECRET-KEY-1…): also decrypt (in memory) and check the list.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write NAME.pem (private, mode 0600) and NAME.pub.pem (public).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// File name stem.
    #[arg(long, default_value = "kbi-premium-signing")]
    pub name: String,
}

pub fn run(args: PremiumListArgs) -> anyhow::Result<u8> {
    match args.command {
        Some(PremiumCommand::Verify(args)) => run_verify(args),
        Some(PremiumCommand::Keygen(args)) => run_keygen(args),
        None => run_export(*args.export),
    }
}

/// The premium year from `--premium-year P` or `--date YYYY-01-01`.
fn premium_year(args: &ExportArgs) -> anyhow::Result<i32> {
    match (&args.premium_year, &args.date) {
        (Some(year), _) => parse_premium_year(year.trim()).map_err(|_| {
            anyhow::anyhow!("--premium-year {year:?} is not a four-digit year after 1000")
        }),
        (None, Some(date)) => {
            let day = parse_date(date.trim())
                .map_err(|_| anyhow::anyhow!("--date {date:?} is not a date YYYY-MM-DD"))?;
            premium_year_of(day).ok_or_else(|| {
                anyhow::anyhow!(
                    "--date {day} is not a 1 January: the reduced-premium list is drawn up on \
                     1 January of the year before the premium year (give --date {}-01-01, or \
                     --premium-year {})",
                    day.format("%Y"),
                    day.format("%Y").to_string().parse::<i32>().unwrap_or(0) + 1
                )
            })
        }
        (None, None) => anyhow::bail!("give --premium-year P or --date YYYY-01-01"),
    }
}

/// The list is the `reduced-premium` delivery of its protocol (premium-list.md, "Under its
/// protocol"): refused outside the protocol's term, after an `ended`, or for a premium year
/// outside the window, whatever `--force` says: without a legal basis there is nothing to force.
fn under_protocol(args: &ExportArgs, year: i32) -> anyhow::Result<UnderProtocol> {
    let dir = args
        .protocols_dir
        .as_deref()
        .filter(|dir| !dir.as_os_str().is_empty());
    let protocols = super::protocol::load_dir(dir)?;
    let Some(protocol) = protocols.get(&args.protocol) else {
        anyhow::bail!(
            "--protocol {}: no such protocol (known: {}); see docs/protocols.md",
            args.protocol,
            protocols.ids().join(", ")
        );
    };
    let today = super::protocol::today();
    match protocol.allows_file(
        kbi_premium::PROTOCOL_FILE,
        today,
        kbi_core::domain::Reference::PremiumYear(year),
    ) {
        Ok(file) if file.period == kbi_protocol::Period::Yearly => Ok(UnderProtocol {
            id: protocol.id.to_string(),
            retention_years: protocol.retention_years,
        }),
        Ok(file) => anyhow::bail!(
            "protocol {}: its {} file is delivered {}, not yearly: the premium list is yearly",
            protocol.id,
            file.id,
            file.period.as_str()
        ),
        Err(refusal) => anyhow::bail!(
            "premium list {year} refused on {today}: {refusal}{}",
            if args.force {
                " (--force does not change this: without a legal basis there is nothing to force)"
            } else {
                ""
            }
        ),
    }
}

fn run_export(args: ExportArgs) -> anyhow::Result<u8> {
    let total = Instant::now();
    // Everything that can be refused is refused before the snapshot is loaded.
    let year = premium_year(&args)?;
    let protocol = under_protocol(&args, year)?;
    let (Some(source), Some(key_path), Some(out)) = (&args.snapshot, &args.signing_key, &args.out)
    else {
        anyhow::bail!("--snapshot, --signing-key and --out are required");
    };
    let force = Force::new(args.force, args.reason.as_deref())?;
    let rules = load_rules(args.rules.as_ref())?;
    let files: Vec<&std::path::Path> = args.recipients_files.iter().map(|p| p.as_path()).collect();
    let recipients = recipients::collect(&args.recipients, &files)?;
    let signing_key = kbi_signing::read_signing_key(key_path)?;
    let request = ExportRequest {
        premium_year: year,
        protocol: Some(protocol),
        recipients,
        signing_key,
        out_dir: out.clone(),
        register: args
            .register
            .clone()
            .unwrap_or_else(|| out.join(kbi_premium::DEFAULT_REGISTER)),
        operator: args.operator.clone().unwrap_or_default(),
        force,
        fail_point: None,
    };
    let prepared = request.prepare()?;
    let leftovers = prepared.leftovers();
    if let Some(holder) = &leftovers.stale_lock {
        eprintln!(
            "note: took over the register lock of a killed export ({holder}): that process no \
             longer runs on this host"
        );
    }
    for path in &leftovers.temporary_files {
        eprintln!(
            "note: removed {}, a temporary file of a killed export",
            path.display()
        );
    }
    if let Some(first) = prepared.earlier().first() {
        eprintln!(
            "warning: premium year {year} was already exported ({} time(s), first on {} by {}); \
             exporting again because of --force",
            prepared.earlier().len(),
            first.time,
            first.operator
        );
    }

    let loading = Instant::now();
    let snapshot = source
        .load(rules, ReadLimits::default(), &Console::new())
        .with_context(|| format!("loading snapshot {source}"))?;
    let load_time = loading.elapsed();
    let exporting = Instant::now();
    let exported = prepared.run(&snapshot, &Console::new())?;
    let export_time = exporting.elapsed();

    let m = &exported.manifest;
    println!(
        "premium list {year} (reference date {}): {} INSZ of {} persons, snapshot {}, rules {}",
        m.basis.reference_date,
        m.basis.count,
        m.persons_in_snapshot,
        m.basis.snapshot_id,
        m.basis.rule_set
    );
    for file in &exported.files {
        println!("  wrote {}", file.display());
    }
    println!(
        "  recorded in {} (operator {}{})",
        args.register
            .clone()
            .unwrap_or_else(|| out.join(kbi_premium::DEFAULT_REGISTER))
            .display(),
        exported.register_entry.operator,
        if exported.register_entry.forced {
            ", forced"
        } else {
            ""
        }
    );
    if m.persons_without_rule_set > 0 {
        eprintln!(
            "warning: {} person(s) answer 30004 (no regime covers their period) on {}: they are \
             neither OK nor NOK and are not in the list",
            m.persons_without_rule_set, m.basis.reference_date
        );
    }
    eprintln!(
        "timings: load {:.3} s, export {:.3} s (list: walk + encrypt + fsync {:.3} s; manifest, \
         signature, renames, register {:.3} s), total {:.3} s",
        load_time.as_secs_f64(),
        export_time.as_secs_f64(),
        exported.list_time.as_secs_f64(),
        exported.seal_time.as_secs_f64(),
        total.elapsed().as_secs_f64()
    );
    Ok(exit::OK)
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<u8> {
    let year = parse_premium_year(args.premium_year.trim()).map_err(|_| {
        anyhow::anyhow!(
            "--premium-year {:?} is not a four-digit year after 1000",
            args.premium_year
        )
    })?;
    let public_key = kbi_signing::read_public_key(&args.public_key)?;
    let identities = match &args.identity {
        Some(path) => Some(verify::read_identities(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    match verify::verify(&args.dir, year, &public_key, identities.as_deref()) {
        Ok(report) => {
            let m = &report.manifest;
            println!(
                "OK: premium list {year} (reference date {}, snapshot {}, rules {}): signature \
                 valid, encrypted file matches the manifest{}",
                m.basis.reference_date,
                m.basis.snapshot_id,
                m.basis.rule_set,
                if report.plaintext_checked {
                    format!(
                        ", decrypted list checked ({} INSZ, ascending, unique, valid, hash matches)",
                        m.basis.count
                    )
                } else {
                    " (list not decrypted: give --identity to check it too)".to_string()
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

fn run_keygen(args: KeygenArgs) -> anyhow::Result<u8> {
    let files = kbi_signing::generate_key_pair(&args.out_dir, &args.name)?;
    println!(
        "private key (keep it with the service, mode 0600): {}",
        files.private.display()
    );
    println!(
        "public key (give it to the recipients): {}",
        files.public.display()
    );
    println!(
        "public key SHA-256 (DER SubjectPublicKeyInfo): {}",
        files.fingerprint
    );
    Ok(exit::OK)
}
