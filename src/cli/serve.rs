//! `kbi-advice serve`: the service. Settings are layered in `service::settings`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use tracing_subscriber::EnvFilter;

use super::exit;
use crate::service::settings::{LogFormat, LogSettings, Overrides, Settings};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML, same layout as config/default.toml); environment variables
    /// KBI_ADVICE__SECTION__KEY override it, and the flags below override both.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Client listener address (server.listen), e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<String>,
    /// Operations listener address (ops.listen), e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "IP:PORT")]
    pub ops_listen: Option<String>,
    /// Snapshot source (snapshot.source): a file, or redis://HOST[:PORT][/DB][?prefix=P].
    /// Default: the demonstration snapshot built into the binary.
    #[arg(long, value_name = "FILE|redis://…")]
    pub snapshot: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let overrides = Overrides {
        listen: args.listen,
        ops_listen: args.ops_listen,
        snapshot: args.snapshot,
    };
    let checked = Settings::load(args.config.as_deref(), std::env::vars(), &overrides)?;
    init_logging(&checked.log)?;
    crate::service::run(checked)?;
    Ok(exit::OK)
}

/// JSON lines in production (stdout not a terminal), readable text on a terminal.
fn init_logging(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.is_empty() => EnvFilter::try_new(filter)?,
        _ => EnvFilter::try_new(&settings.level)
            .map_err(|e| anyhow::anyhow!("log.level {:?}: {e}", settings.level))?,
    };
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}
