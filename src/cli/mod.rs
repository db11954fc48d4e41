//! The command line: one binary, one file per subcommand.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use kbi_core::domain::RuleSet;

pub mod audit;
pub mod check;
pub mod export;
pub mod premium_list;
pub mod protocol;
pub mod serve;
pub mod snapshot;

#[derive(Debug, Parser)]
#[command(
    name = "kbi-advice",
    about = "Advice on the Flemish integration obligation (inburgeringsplicht) from a KBI snapshot"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: SOAP and REST doors, health and admin endpoints.
    Serve(serve::ServeArgs),
    /// Answer one question from a snapshot file (same JSON as the REST door).
    Check(check::CheckArgs),
    /// Validate or generate snapshot files.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Export (or verify) the yearly reduced-premium list: encrypted, signed, once a year.
    PremiumList(premium_list::PremiumListArgs),
    /// Deliver a file of a protocol (docs/exports.md): dossiers → population → fields → joins →
    /// identity → suppression → encrypted, signed, registered; or verify a delivery.
    Export(export::ExportArgs),
    /// Check the audit log's hash chain, or search it for one INSZ.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Validate protocol files, or show what one allows on a day (docs/protocols.md).
    #[command(subcommand)]
    Protocol(protocol::ProtocolCommand),
}

/// Exit codes shared by the subcommands.
pub mod exit {
    /// The question was answered (OK or NOK), or the command did its work.
    pub const OK: u8 = 0;
    /// The question was refused with a catalogue error (printed as a problem document).
    pub const REFUSED: u8 = 1;
    /// The command could not run: bad arguments, unreadable or invalid input.
    pub const FAILED: u8 = 2;
}

/// What `--version` prints after the name: the package version, the git commit the binary was
/// built from (`build.rs`; "unknown" outside a checkout) and the version of the rules compiled
/// in. The rules version is read from the embedded `config/rules.toml` itself, so it cannot drift
/// from what `serve` and `check` use without a `--rules` file.
pub fn version() -> String {
    format!(
        "{} (commit {}, rules {})",
        env!("CARGO_PKG_VERSION"),
        env!("KBI_ADVICE_GIT_COMMIT"),
        RuleSet::shipped().version
    )
}

/// The full command-line definition, version included: what `run` parses, and what the man
/// pages and shell completions are generated from (`examples/packaging_assets.rs`).
pub fn command() -> clap::Command {
    Cli::command().version(version())
}

/// Parses the command line and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|error| error.exit());
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(args),
        Command::PremiumList(args) => premium_list::run(args),
        Command::Export(args) => export::run(args),
        Command::Snapshot(command) => snapshot::run(command),
        Command::Audit(command) => audit::run(command),
        Command::Protocol(command) => protocol::run(command),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("kbi-advice: error: {error:#}");
            ExitCode::from(exit::FAILED)
        }
    }
}
