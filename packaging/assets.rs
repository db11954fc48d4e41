//! Generates the man pages and shell completions of the Debian package from the command-line
//! definition itself (`kbi_advice::cli::command()`), so they cannot drift from the binary:
//!
//! ```sh
//! cargo run --example packaging-assets -- target/packaging
//! ```
//!
//! writes `man/kbi-advice.1.gz` and one `kbi-advice-<subcommand>[-<subcommand>].1.gz` per
//! subcommand (gzip -9, no timestamp: the same input gives the same bytes), and
//! `completions/kbi-advice.bash`, `completions/_kbi-advice` (zsh) and
//! `completions/kbi-advice.fish`. `scripts/build-deb.sh` runs it before `cargo deb`, whose
//! assets (`[package.metadata.deb]` in Cargo.toml) take the files from there.
//!
//! An example rather than `build.rs` (the command definition lives in the library, which a build
//! script cannot use) or a hidden subcommand (that would ship clap_mangen and clap_complete in
//! the service binary for a build-time job).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap_complete::Shell;
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

fn main() -> anyhow::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: packaging-assets OUT_DIR")?;
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let mut command = kbi_advice::cli::command().disable_help_subcommand(true);
    command.build();
    // Every page's footer names the program and its full version, subcommands' pages included.
    let source = format!("kbi-advice {}", kbi_advice::cli::version());
    let mut pages = Vec::new();
    write_man_pages(&command, &source, &man, &mut pages)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path =
            clap_complete::generate_to(shell, &mut command.clone(), "kbi-advice", &completions)
                .with_context(|| format!("cannot write the {shell} completion"))?;
        println!("{}", path.display());
    }
    for page in pages {
        println!("{}", page.display());
    }
    Ok(())
}

/// One page per command, subcommands first; clap names them `kbi-advice-serve` and so on.
fn write_man_pages(
    command: &clap::Command,
    source: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_man_pages(sub, source, dir, written)?;
    }
    let page = clap_mangen::Man::new(command.clone())
        .manual("kbi-advice manual")
        .source(source);
    let mut roff = Vec::new();
    page.render(&mut roff)?;
    let path = dir.join(format!("{}.gz", page.get_filename()));
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // mtime 0 and no file name in the header: reproducible, as dh_compress makes them.
    let mut gz: GzEncoder<std::fs::File> =
        GzBuilder::new().mtime(0).write(file, Compression::best());
    gz.write_all(&roff)?;
    gz.finish()?.sync_all()?;
    written.push(path);
    Ok(())
}
