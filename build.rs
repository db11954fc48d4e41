//! Records the git commit the binary is built from (`kbi-advice --version`), as the environment
//! variable `KBI_ADVICE_GIT_COMMIT` of the compilation.
//!
//! Outside a git checkout (a source tarball, a Debian source package) the commit is "unknown",
//! unless the builder names it in `KBI_ADVICE_GIT_COMMIT` (the value is then taken as given).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=KBI_ADVICE_GIT_COMMIT");
    let commit = std::env::var("KBI_ADVICE_GIT_COMMIT")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| {
            watch_git_head();
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
        });
    println!("cargo:rustc-env=KBI_ADVICE_GIT_COMMIT={}", commit.trim());
}

/// Runs git in the crate directory; `None` when git is missing or this is no checkout.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Rebuild when HEAD moves: HEAD itself (a checkout of another branch), the branch's ref (a
/// commit) and packed-refs (a ref packed by `git gc`). `--git-path` resolves them in a linked
/// worktree too, where `.git` is a file pointing elsewhere.
fn watch_git_head() {
    let mut paths = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(reference);
    }
    for path in paths {
        if let Some(resolved) = git(&["rev-parse", "--git-path", &path]) {
            let mut file = PathBuf::from(resolved);
            if file.is_relative() {
                file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file);
            }
            if file.exists() {
                println!("cargo:rerun-if-changed={}", file.display());
            }
        }
    }
}
