//! The yearly list obeys its protocol (`premium-list.md`, "Under its protocol"): it is the
//! `reduced-premium` delivery of the protocol file; outside the term, after an `ended`, or for a
//! premium year outside the window it is refused, and `--force` does not change that.

use std::path::Path;
use std::process::{Command, Output};

const SNAPSHOT: &str = "data/demo-snapshot.jsonl";

struct Fixture {
    dir: tempfile::TempDir,
    recipient: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("protocols")).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let keygen = bin()
            .args(["premium-list", "keygen", "--out-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(keygen.status.success(), "{keygen:?}");
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        Fixture { dir, recipient }
    }

    /// Writes the shipped agii-vsb.toml into the protocols directory, edited by `edit`.
    fn protocol(&self, edit: impl Fn(String) -> String) {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/protocols/agii-vsb.toml"),
        )
        .unwrap();
        std::fs::write(
            self.dir.path().join("protocols/agii-vsb.toml"),
            edit(shipped),
        )
        .unwrap();
    }

    fn export(&self, year: &str, extra: &[&str]) -> Output {
        bin()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "premium-list",
                "--snapshot",
                SNAPSHOT,
                "--premium-year",
                year,
            ])
            .args(["--recipient", &self.recipient, "--operator", "alice"])
            .arg("--signing-key")
            .arg(self.dir.path().join("kbi-premium-signing.pem"))
            .arg("--out")
            .arg(self.dir.path().join("out"))
            .arg("--protocols-dir")
            .arg(self.dir.path().join("protocols"))
            .args(extra)
            .output()
            .unwrap()
    }
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kbi-advice"));
    cmd.env_remove("KBI_ADVICE__PROTOCOLS__DIR");
    cmd
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_list_is_written_under_the_protocol_as_signed() {
    let fixture = Fixture::new();
    fixture.protocol(|text| text);
    let output = fixture.export("2027", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn after_the_annulment_the_list_is_refused_even_with_force() {
    let fixture = Fixture::new();
    // The shipped annulment block, un-commented: the two lines of docs/protocols.md.
    fixture
        .protocol(|text| text.replace("# ended = { on = 2023-07-20", "ended = { on = 2023-07-20"));
    let output = fixture.export("2027", &[]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("agii-vsb") && message.contains("ended on 2023-07-20"),
        "{message}"
    );
    assert!(message.contains("112/2023"), "{message}");

    let output = fixture.export("2027", &["--force", "--reason", "VSB asked again"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("--force does not change this"),
        "{message}"
    );
    // Nothing was written.
    assert_eq!(
        std::fs::read_dir(fixture.dir.path().join("out"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_premium_year_outside_the_window_is_refused() {
    let fixture = Fixture::new();
    fixture.protocol(|text| text);
    let output = fixture.export("2021", &["--force", "--reason", "x"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("premium years from 2022"), "{message}");
}

#[test]
fn a_protocol_without_the_yearly_file_cannot_deliver_it() {
    let fixture = Fixture::new();
    fixture.protocol(|text| text[..text.find("[[files]]").unwrap()].to_owned());
    let output = fixture.export("2027", &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no delivery reduced-premium"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unknown_protocol_is_refused() {
    let fixture = Fixture::new();
    fixture.protocol(|text| text);
    let output = fixture.export("2027", &["--protocol", "nope"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--protocol nope"),
        "{}",
        stderr(&output)
    );
}
