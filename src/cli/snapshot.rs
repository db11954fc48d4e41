//! `kbi-advice snapshot validate|generate|publish`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::exit;
use crate::service::settings::load_rules;
use crate::snapshot::redis::{self as redis_store, PublishOptions, RedisTarget};
use crate::snapshot::source::Pinned;
use crate::snapshot::SnapshotSource;
use kbi_core::io::Console;
use kbi_core::snapshot::generate::{default_extracted_at, generate, GenerateOptions};
use kbi_core::snapshot::reader::ReadLimits;

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Read a snapshot completely, validate it and compile the index; report or refuse.
    Validate(ValidateArgs),
    /// Write a synthetic snapshot (deterministic per seed).
    Generate(GenerateArgs),
    /// Validate a snapshot file and publish it to Redis as the new current version.
    Publish(PublishArgs),
    /// Turn register replies (GeefDossierKBI 01.00 dossiers) into a snapshot; all or nothing.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The source format; only kbi-dossier-01.00 (GeefDossierKBI 01.00 replies).
    #[arg(long, value_name = "FORMAT")]
    pub from: String,
    /// Files or directories (recursively *.xml, *.xml.gz, *.xml.zst): bare replies, SOAP
    /// envelopes, or batch files with many replies.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// The snapshot to write (JSON Lines; a name ending in .gz or .zst is compressed). Written
    /// only when no ERROR was found (temporary file in the same directory, then renamed).
    #[arg(long)]
    pub out: PathBuf,
    /// Snapshot id written in the header.
    #[arg(long)]
    pub snapshot_id: String,
    /// Moment the register was read (RFC 3339), written in the header.
    #[arg(long)]
    pub extracted_at: String,
    /// The employment services' registrations: CSV `insz,date` with that header.
    #[arg(long, value_name = "CSV")]
    pub employment_service: Option<PathBuf>,
    /// Code lists replacing the shipped config/kbi-codes.toml.
    #[arg(long, value_name = "TOML")]
    pub codes: Option<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "JSON")]
    pub report: Option<PathBuf>,
    /// Input files read at once, one thread each (default: the number of cores, at most 4;
    /// more than 8 are used as 8). The snapshot and the report are the same for any number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Option<u16>,
    /// Refuse an input file that holds or decompresses to more than this many bytes
    /// (default 4 GiB: one million dossiers are about 1.7 GB of XML).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_decompressed_bytes: Option<u64>,
    /// Refuse a compressed input file that decompresses to more than this many times the bytes
    /// read from it, beyond its first 64 MiB (default 1000; real replies compress 10–30×).
    #[arg(long, value_name = "RATIO", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_decompression_ratio: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Snapshot file (JSON Lines, optionally .gz or .zst), or redis://HOST[:PORT][/DB][?prefix=P]
    /// for the version currently published in Redis.
    #[arg(value_name = "FILE|redis://…")]
    pub source: SnapshotSource,
    /// Rules file (default: the shipped config/rules.toml).
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The Redis server: redis://[:PASSWORD@]HOST[:PORT][/DB].
    #[arg(long, value_name = "URL")]
    pub redis: String,
    /// Key prefix (keys are PREFIX:snapshot:…).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Versions to keep, the new one included; older ones are deleted.
    #[arg(long, default_value_t = redis_store::DEFAULT_KEEP)]
    pub keep: usize,
    /// Compressed bytes per stored chunk.
    #[arg(long, default_value_t = redis_store::DEFAULT_CHUNK_BYTES, hide = true)]
    pub chunk_bytes: usize,
    /// Rules file to validate with (default: the shipped config/rules.toml).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Snapshot file (JSON Lines, optionally .gz or .zst).
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of persons.
    #[arg(long)]
    pub persons: u64,
    /// Random seed; the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output file ("-" for stdout). A name ending in .gz or .zst is compressed.
    #[arg(long)]
    pub out: PathBuf,
    /// Extraction moment written in the header (RFC 3339).
    #[arg(long)]
    pub extracted_at: Option<String>,
    /// Snapshot id written in the header (default: generated-seed<S>-<N>).
    #[arg(long)]
    pub snapshot_id: Option<String>,
    /// Include the README's showcase persons (as in data/demo-snapshot.jsonl; JSON Lines only).
    #[arg(long)]
    pub with_examples: bool,
    /// `jsonl` (a snapshot) or `kbi-dossier-01.00`: the persons as GeefDossierKBI replies in
    /// batch files `OUT/batch-NNNNN.xml` (OUT is a directory), with `OUT/expected.jsonl`, the
    /// same persons as a snapshot. Only dossier-expressible persons are drawn in that mode.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// Replies per batch file (kbi-dossier-01.00).
    #[arg(long, default_value_t = 10_000)]
    pub per_file: u64,
}

pub fn run(command: SnapshotCommand) -> anyhow::Result<u8> {
    match command {
        SnapshotCommand::Validate(args) => validate(args),
        SnapshotCommand::Generate(args) => generate_file(args),
        SnapshotCommand::Publish(args) => publish(args),
        SnapshotCommand::Import(args) => import(args),
    }
}

fn import(args: ImportArgs) -> anyhow::Result<u8> {
    use kbi_import::{codes::Codes, ImportOptions, FORMAT_NAME};
    if args.from != FORMAT_NAME {
        anyhow::bail!("--from must be {FORMAT_NAME} (the only source format this program imports)");
    }
    let extracted_at = chrono::DateTime::parse_from_rfc3339(&args.extracted_at)
        .context("--extracted-at must be an RFC 3339 timestamp")?
        .with_timezone(&chrono::Utc);
    let codes = match &args.codes {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read code lists {}", path.display()))?;
            Codes::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Codes::shipped(),
    };
    let options = ImportOptions {
        inputs: args.inputs,
        out: args.out,
        snapshot_id: args.snapshot_id,
        extracted_at,
        employment_service: args.employment_service,
        codes,
    };
    let workers = match args.workers {
        Some(n) => usize::from(n),
        None => kbi_import::default_workers(),
    };
    let default = kbi_import::FileLimits::default();
    let run = kbi_import::RunOptions {
        workers,
        limits: kbi_import::FileLimits {
            max_decompressed_bytes: args
                .max_decompressed_bytes
                .unwrap_or(default.max_decompressed_bytes),
            max_ratio: args.max_decompression_ratio.unwrap_or(default.max_ratio),
        },
        before_open: None,
    };
    let report = kbi_import::import_with(&options, &Console::counting("bytes"), &run)?;
    eprint!("{}", report.render());
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write report {}", path.display()))?;
    }
    Ok(if report.ok { exit::OK } else { exit::FAILED })
}

fn validate(args: ValidateArgs) -> anyhow::Result<u8> {
    let rules = load_rules(args.rules.as_ref())?;
    let started = Instant::now();
    let (snapshot, pinned) =
        args.source
            .load_pinned(rules, ReadLimits::default(), &Console::new())?;
    let meta = &snapshot.meta;
    let elapsed = started.elapsed();
    let persons = snapshot.index.len().max(1);
    println!(
        "valid: snapshot {} extracted {}, {} persons, {} status changes, loaded in {:.2?}",
        meta.snapshot_id,
        meta.extracted_at.format("%Y-%m-%dT%H:%M:%SZ"),
        snapshot.index.len(),
        snapshot.index.transition_count(),
        elapsed,
    );
    if let Pinned::Redis { target, version } = &pinned {
        println!("source: {target}, version {version}");
    }
    println!("facts: {}", meta.facts);
    if let Some(sources) = &meta.sources {
        println!("sources: {sources}");
    }
    for regime in &snapshot.rules.regimes {
        for setting in regime.deadlines_left_out(meta.facts) {
            println!(
                "deadline not derived: regime {} `{}` (the source does not record {})",
                regime.id,
                setting.key(),
                setting.act().type_name()
            );
        }
    }
    println!(
        "index: {} bytes ({:.1} bytes per person)",
        snapshot.index.heap_bytes(),
        snapshot.index.heap_bytes() as f64 / persons as f64
    );
    if let Some(memory) = process_memory() {
        println!(
            "process: resident {} bytes ({:.1} bytes per person), peak {} bytes",
            memory.resident,
            memory.resident as f64 / persons as f64,
            memory.peak
        );
    }
    Ok(exit::OK)
}

fn publish(args: PublishArgs) -> anyhow::Result<u8> {
    let rules = load_rules(args.rules.as_ref())?;
    let target = RedisTarget::parse(&args.redis, args.prefix.as_deref())?;
    let options = PublishOptions {
        keep: args.keep,
        chunk_bytes: args.chunk_bytes,
        ..PublishOptions::default()
    };
    let started = Instant::now();
    let published = redis_store::publish(&target, &args.file, rules, &options, &Console::new())?;
    let meta = &published.meta;
    println!(
        "published: version {} of snapshot {} ({} persons) to {target} in {:.2?}",
        published.version,
        meta.snapshot_id,
        meta.persons,
        started.elapsed()
    );
    println!(
        "stored: {} chunks, {} bytes (zstd) for {} bytes of text, sha256 {}",
        meta.chunks.len(),
        meta.total_bytes,
        meta.text_bytes,
        meta.text_sha256
    );
    if !published.removed.is_empty() {
        println!("removed versions: {}", published.removed.join(", "));
    }
    if let Some(error) = &published.prune_failed {
        eprintln!("kbi-advice: warning: old versions not removed (the next publish will): {error}");
    }
    Ok(exit::OK)
}

fn generate_file(args: GenerateArgs) -> anyhow::Result<u8> {
    let extracted_at = match &args.extracted_at {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .context("--extracted-at must be an RFC 3339 timestamp")?
            .with_timezone(&chrono::Utc),
        None => default_extracted_at(),
    };
    if args.format == kbi_import::FORMAT_NAME {
        if args.with_examples {
            anyhow::bail!("--with-examples cannot be written as dossiers (the showcase persons hold facts the register does not: employment service, Brussels)");
        }
        let options = kbi_import::generate::DossierOptions {
            persons: args.persons,
            seed: args.seed,
            extracted_at,
            snapshot_id: args.snapshot_id,
            per_file: args.per_file,
        };
        let files = kbi_import::generate::write_dossiers(&options, &args.out)
            .with_context(|| format!("cannot write dossiers into {}", args.out.display()))?;
        eprintln!(
            "wrote {files} batch files and expected.jsonl into {}",
            args.out.display()
        );
        return Ok(exit::OK);
    }
    if args.format != "jsonl" {
        anyhow::bail!("--format must be jsonl or {}", kbi_import::FORMAT_NAME);
    }
    let options = GenerateOptions {
        persons: args.persons,
        seed: args.seed,
        extracted_at,
        snapshot_id: args.snapshot_id,
        with_examples: args.with_examples,
    };
    let name = args.out.to_string_lossy().to_string();
    if name == "-" {
        let stdout = std::io::stdout();
        generate(&options, &mut BufWriter::new(stdout.lock()))?;
        return Ok(exit::OK);
    }
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let buffered = BufWriter::with_capacity(1 << 20, file);
    let mut out: Box<dyn Write> = if name.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(
            buffered,
            flate2::Compression::fast(),
        ))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::write::Encoder::new(buffered, 3)?.auto_finish())
    } else {
        Box::new(buffered)
    };
    generate(&options, &mut out)?;
    out.flush()?;
    drop(out);
    Ok(exit::OK)
}

/// Resident and peak memory of this process (Linux), for the load benchmark.
struct ProcessMemory {
    resident: u64,
    peak: u64,
}

fn process_memory() -> Option<ProcessMemory> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some(ProcessMemory {
        resident: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}
