//! `kbi-advice protocol check FILE...` and `protocol show FILE --on DATE` (`protocols.md` §1).

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn check_accepts_the_shipped_files() {
    let output = run(&[
        "protocol",
        "check",
        "config/protocols/agii-vsb.toml",
        "config/protocols/demo.toml",
    ]);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).contains("ok (protocol agii-vsb)"));
}

#[test]
fn check_refuses_a_bad_file_and_two_files_with_one_id() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/protocols/agii-vsb.toml"),
    )
    .unwrap();
    std::fs::write(
        &bad,
        shipped.replace(
            "term = { from = 2021-10-01 }",
            "term = { from = 2021-10-01, until = 2020-01-01 }",
        ),
    )
    .unwrap();
    let output = run(&["protocol", "check", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("`term.until`"),
        "{}",
        stdout(&output)
    );

    let copy = dir.path().join("copy.toml");
    std::fs::write(&copy, &shipped).unwrap();
    let output = run(&[
        "protocol",
        "check",
        "config/protocols/agii-vsb.toml",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("both have id `agii-vsb`"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn show_explains_each_flow_on_a_day() {
    let output = run(&[
        "protocol",
        "show",
        "config/protocols/agii-vsb.toml",
        "--on",
        "2026-12-01",
    ]);
    assert!(output.status.success());
    let text = stdout(&output);
    for part in [
        "protocol agii-vsb",
        "on 2026-12-01:",
        "question care-budget (asks date, reference dates from 2022-01-01)",
        "allowed for premium years from 2022",
        "file reduced-premium (yearly",
        "insz",
        "Personalia/INSZ",
    ] {
        assert!(text.contains(part), "{part}:\n{text}");
    }
    assert!(!text.contains("REFUSED"), "{text}");
    // Before the term.
    let text = stdout(&run(&[
        "protocol",
        "show",
        "config/protocols/agii-vsb.toml",
        "--on",
        "2021-09-30",
    ]));
    assert!(
        text.contains("REFUSED: protocol agii-vsb is not in force"),
        "{text}"
    );

    // The annulment block un-commented: every flow refused, with the judgment.
    let dir = tempfile::tempdir().unwrap();
    let ended = dir.path().join("agii-vsb.toml");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/protocols/agii-vsb.toml"),
    )
    .unwrap();
    std::fs::write(
        &ended,
        shipped.replace("# ended = { on = 2023-07-20", "ended = { on = 2023-07-20"),
    )
    .unwrap();
    let text = stdout(&run(&[
        "protocol",
        "show",
        ended.to_str().unwrap(),
        "--on",
        "2026-12-01",
    ]));
    assert_eq!(
        text.matches("REFUSED: protocol agii-vsb ended on 2023-07-20")
            .count(),
        4,
        "{text}"
    );
    assert!(text.contains("112/2023"));
    let text = stdout(&run(&[
        "protocol",
        "show",
        ended.to_str().unwrap(),
        "--on",
        "2023-07-19",
    ]));
    assert!(!text.contains("REFUSED"), "{text}");
}
