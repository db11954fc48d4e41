//! `kbi-advice premium-list` (being built: see issue 5).

use clap::Args;

#[derive(Debug, Args)]
pub struct PremiumListArgs {}

pub fn run(_args: PremiumListArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`premium-list` is not built yet")
}
