//! The `kbi-advice` binary: parse the command line and hand off.

fn main() -> std::process::ExitCode {
    kbi_advice::cli::run()
}
