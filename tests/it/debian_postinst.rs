//! Issue 24, item 8: the Debian postinst never follows, as root, a path the service user
//! controls. The script runs against a scratch root (`DPKG_ROOT`) with the system commands it
//! needs replaced by recording stand-ins (adduser, dpkg-statoverride, chown, runuser; chmod and
//! mkdir are real), a symbolic link to a "root" directory planted where the service user could
//! put one, and the target's mode and ownership checked afterwards.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn postinst() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packaging/debian/scripts/postinst")
}

/// Stand-ins on PATH: `adduser` does nothing, `dpkg-statoverride --list` finds no override,
/// `chown` records its arguments (it would need root and the user), `runuser -u U -- CMD`
/// runs CMD as the caller (the scratch tree is the caller's).
fn stubs(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls");
    let scripts = [
        ("adduser", "exit 0".to_owned()),
        ("dpkg-statoverride", "exit 1".to_owned()),
        (
            "chown",
            format!("echo \"chown $*\" >> '{}'", log.display()),
        ),
        (
            "runuser",
            format!(
                "echo \"runuser $*\" >> '{}'\n[ \"$1\" = -u ] && shift 2\n[ \"$1\" = -- ] && shift\nexec \"$@\"",
                log.display()
            ),
        ),
    ];
    for (name, body) in scripts {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

fn run(scratch: &Path, root: &Path) -> (bool, String, String) {
    // Never run a postinst that ignores DPKG_ROOT: it would act on this machine's /var/lib.
    let script = std::fs::read_to_string(postinst()).unwrap();
    assert!(
        script.contains("DPKG_ROOT"),
        "the postinst must honour DPKG_ROOT"
    );
    let bin = stubs(scratch);
    let output = Command::new("sh")
        .arg(postinst())
        .arg("configure")
        .env("DPKG_ROOT", root)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(scratch.join("calls")).unwrap_or_default();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        calls,
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A directory standing for one of root's (0755), with a file in it.
fn victim(root: &Path) -> PathBuf {
    let victim = root.join("root-only");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("secret"), "x").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
    victim
}

#[test]
fn a_fresh_install_makes_the_directories_with_their_modes() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    std::fs::create_dir_all(root.join("etc/kbi-advice")).unwrap();
    let (ok, stderr, calls) = run(scratch.path(), &root);
    assert!(ok, "{stderr}");
    assert_eq!(mode(&root.join("var/lib/kbi-advice")), 0o750);
    assert_eq!(mode(&root.join("var/cache/kbi-advice")), 0o750);
    assert_eq!(mode(&root.join("etc/kbi-advice/tls")), 0o750);
    assert_eq!(mode(&root.join("var/lib/kbi-advice/audit")), 0o700);
    assert_eq!(mode(&root.join("var/lib/kbi-advice/premium")), 0o700);
    // Made by the service user, not chowned by root.
    assert!(calls.contains("runuser -u kbi-advice"), "{calls}");
    assert!(
        calls
            .lines()
            .filter(|l| l.starts_with("chown"))
            .all(|l| !l.contains("kbi-advice/audit") && !l.contains("kbi-advice/premium")),
        "{calls}"
    );
}

#[test]
fn a_symlink_planted_by_the_service_user_in_its_state_directory_is_not_followed() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    let state = root.join("var/lib/kbi-advice");
    std::fs::create_dir_all(&state).unwrap();
    let victim = victim(&root);
    let before = std::fs::metadata(&victim).unwrap();
    // The service user replaced `audit` (and `premium`) by links to a root directory.
    symlink(&victim, state.join("audit")).unwrap();
    symlink(&victim, state.join("premium")).unwrap();
    let (ok, stderr, calls) = run(scratch.path(), &root);
    assert!(ok, "{stderr}");
    let after = std::fs::metadata(&victim).unwrap();
    assert_eq!(
        mode(&victim),
        0o755,
        "the postinst changed the link's target"
    );
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    for line in calls.lines().filter(|l| l.starts_with("chown")) {
        assert!(
            line.contains("--no-dereference")
                && !line.contains("/audit")
                && !line.contains("/premium"),
            "root changed a path inside the state directory: {line}"
        );
    }
    // The links are left as they are (the service, as its user, follows them with its rights).
    assert!(std::fs::symlink_metadata(state.join("audit"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_symlink_in_place_of_a_root_owned_directory_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("root");
    std::fs::create_dir_all(root.join("var/cache")).unwrap();
    let victim = victim(&root);
    symlink(&victim, root.join("var/cache/kbi-advice")).unwrap();
    let (ok, stderr, calls) = run(scratch.path(), &root);
    assert!(!ok, "the postinst accepted a symbolic link: {calls}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(mode(&victim), 0o755);
    assert!(!calls.contains("var/cache"), "{calls}");
}
