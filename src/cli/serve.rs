//! `kbi-advice serve` (being built: see issue 3).

use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`serve` is not built yet")
}
