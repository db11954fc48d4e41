#!/usr/bin/env bash
# Builds the Debian package target/debian/kbi-advice_<version>-<revision>_<arch>.deb:
#   1. the release binary (cargo build --release; reused when it is up to date),
#   2. the man pages and shell completions into target/packaging/, generated from the binary's
#      own command-line definition (cargo run --example packaging-assets),
#   3. cargo deb --no-build, which takes the assets listed in Cargo.toml [package.metadata.deb].
# Needs cargo-deb (scripts/setup/debian-package.sh installs it). Extra arguments go to cargo deb
# (e.g. --deb-revision 2). Prints the path of the package on the last line.
#
# KBI_DEB_PROFILE picks the cargo profile (default release, the one to ship). CI's packaging
# test sets it to `dev` to reuse the debug binary `cargo test` has just built: a from-scratch
# release build would double CI's time, and what the test checks (layout, maintainer scripts,
# unit, sandbox, lintian) does not depend on the optimisation level.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${KBI_DEB_PROFILE:-release}
cargo build --quiet --profile "$profile" --bin kbi-advice
rm -rf target/packaging
cargo run --quiet --example packaging-assets -- target/packaging >/dev/null
# --strip: the release profile keeps line tables (debug = 1) for profiling; the package ships a
# stripped binary (lintian: unstripped-binary-or-object). `--dbgsym` would keep them in a .ddeb.
cargo deb --no-build --profile "$profile" --strip --quiet "$@"
