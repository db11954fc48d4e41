//! The floors hold: a crate of `crates/` depends only on the crates below it, never on an async
//! runtime, a web framework or a network client, and never names the binary's library. The
//! compiler refuses an import the manifest does not allow; this test refuses the manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Each floor and the kbi-* crates it may use (directly). A new crate in `crates/` must be added
/// here, with its place.
const FLOORS: &[(&str, &[&str])] = &[
    ("kbi-core", &[]),
    ("kbi-signing", &[]),
    ("kbi-import", &["kbi-core"]),
    ("kbi-premium", &["kbi-core", "kbi-signing"]),
    ("kbi-wire", &["kbi-core"]),
    ("kbi-audit", &["kbi-core", "kbi-signing"]),
    ("kbi-trust", &["kbi-core"]),
    ("kbi-protocol", &["kbi-core"]),
    // Deliveries under a protocol: read dossiers through the import, write through the yearly
    // list's encrypt/sign/register code.
    (
        "kbi-export",
        &[
            "kbi-core",
            "kbi-import",
            "kbi-protocol",
            "kbi-premium",
            "kbi-signing",
        ],
    ),
];

/// Outside crates a floor may use although `forbidden` names them, and why. Not followed further:
/// the binary's features (tokio "full") are unified into the same package in the graph.
const EXCEPTIONS: &[(&str, &str)] = &[
    // The audit log hands each append's receipt back to an async door through tokio's `sync`
    // channels (`features = ["sync"]` in crates/kbi-audit/Cargo.toml): no runtime, no I/O driver.
    ("kbi-audit", "tokio"),
];

/// What no floor may reach, directly or through another crate: the runtime, the HTTP stack, the
/// network clients. They belong to the binary (`kbi-advice`).
fn forbidden(name: &str) -> bool {
    matches!(
        name,
        "tokio" | "redis" | "reqwest" | "hyper" | "mio" | "kbi-advice"
    ) || name.starts_with("actix")
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// Package id → (name, normal and build dependencies' ids), from the resolved graph.
fn graph(metadata: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let id = node["id"].as_str().unwrap();
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dep| {
                    // Dev-dependencies serve the crate's own tests, not the crate.
                    dep["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|kind| kind["kind"].as_str() != Some("dev"))
                })
                .map(|dep| dep["pkg"].as_str().unwrap().to_string())
                .collect();
            (id.to_string(), (names[id].to_string(), deps))
        })
        .collect()
}

#[test]
fn every_floor_depends_only_on_the_floors_below_it() {
    let metadata = metadata();
    let graph = graph(&metadata);
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    let allowed: BTreeMap<&str, &[&str]> = FLOORS.iter().copied().collect();
    let mut wrong = Vec::new();
    for id in &members {
        let (name, deps) = &graph[*id];
        if name == "kbi-advice" {
            continue; // the binary: the top floor, it may use everything
        }
        let Some(allowed) = allowed.get(name.as_str()) else {
            wrong.push(format!("{name}: not in FLOORS (give it its place)"));
            continue;
        };
        for dep in deps {
            let dep_name = &graph[dep].0;
            if dep_name.starts_with("kbi-") && !allowed.contains(&dep_name.as_str()) {
                wrong.push(format!("{name} uses {dep_name}, a floor it may not use"));
            }
        }
        // Everything it pulls in, transitively.
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = deps.iter().collect();
        while let Some(dep) = todo.pop() {
            if !seen.insert(dep.clone()) {
                continue;
            }
            let (dep_name, further) = &graph[dep];
            if EXCEPTIONS.contains(&(name.as_str(), dep_name.as_str())) {
                continue;
            }
            if forbidden(dep_name) {
                wrong.push(format!("{name} pulls in {dep_name}"));
            }
            todo.extend(further);
        }
    }
    assert!(
        members.len() > FLOORS.len(),
        "the workspace lost members: {members:?}"
    );
    assert!(
        wrong.is_empty(),
        "the floors are broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn plain_cargo_test_and_clippy_cover_every_floor() {
    let metadata = metadata();
    let ids = |key: &str| -> BTreeSet<String> {
        metadata[key]
            .as_array()
            .unwrap_or_else(|| panic!("cargo metadata has no {key}"))
            .iter()
            .map(|id| id.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids("workspace_default_members"),
        ids("workspace_members"),
        "add the new crate to default-members in Cargo.toml"
    );
}

#[test]
fn no_floor_names_the_binary_s_library() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut offenders = Vec::new();
    let mut todo = vec![crates];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    // Code, not the docs that point upward to say where a thing went.
                    .filter(|line| !line.trim_start().starts_with("//"))
                    .any(|line| line.contains("kbi_advice::") || line.contains("kbi_advice;"))
            {
                offenders.push(path.display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "crates/ names kbi_advice:: in {offenders:?}"
    );
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A file's code without `//` comments (docs may name what they forbid).
fn code_of(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Statics of the floors that may hold a cell, and why: each is computed once from the crate's
/// own constants, so nothing outside the crate can set it and no two callers can see two values.
const STATIC_CELLS_ALLOWED: &[(&str, &str)] = &[
    // The served WSDL's template: the repository's WSDL with its XSD inlined (both
    // include_str!), split once around the endpoint address.
    ("crates/kbi-wire/src/soap/wsdl.rs", "TEMPLATE"),
];

/// No floor keeps process-wide mutable state: a `static` holding a lock, a cell or an atomic (or
/// a `static mut`, a `thread_local!`) is a setting every caller of the process shares, a hazard for
/// in-process tests and for two services in one process. Options are passed in instead (the read
/// limits of a snapshot are an argument of the reader, not a global the service sets).
#[test]
fn no_floor_keeps_a_static_with_interior_mutability() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cells = [
        "Mutex",
        "RwLock",
        "Cell<",
        "RefCell",
        "UnsafeCell",
        "OnceCell",
        "OnceLock",
        "LazyLock",
        "Lazy<",
        "Atomic",
        "Condvar",
    ];
    let mut offenders = Vec::new();
    for path in rust_files(&root.join("crates")) {
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        let code = code_of(&path);
        for (number, line) in code.lines().enumerate() {
            let trimmed = line.trim_start();
            let declared = trimmed
                .strip_prefix("pub(crate) ")
                .or_else(|| trimmed.strip_prefix("pub "))
                .unwrap_or(trimmed);
            let Some(rest) = declared.strip_prefix("static ") else {
                if trimmed.contains("thread_local!") {
                    offenders.push(format!("{relative}:{}: thread_local!", number + 1));
                }
                continue;
            };
            let name = rest
                .trim_start_matches("mut ")
                .split(|c: char| c == ':' || c.is_whitespace())
                .next()
                .unwrap_or("");
            let mutable = rest.starts_with("mut ") || cells.iter().any(|cell| rest.contains(cell));
            if mutable && !STATIC_CELLS_ALLOWED.contains(&(relative.as_str(), name)) {
                offenders.push(format!("{relative}:{}: static {name}", number + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "process-wide mutable state in a floor (pass it in instead): {offenders:?}"
    );
}

/// The root package's library is the binary's own modules, nothing else: no floor re-exported
/// under another name (`pub use kbi_wire as api`), no floor re-exported at all (`pub use
/// kbi_core::domain`, `pub use kbi_core::snapshot::*`). A crate is named by its own name, so a
/// reader (or a tool) following a path never has to resolve an alias.
#[test]
fn the_root_library_re_exports_no_floor_and_renames_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offenders = Vec::new();
    for path in rust_files(&root.join("src")) {
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        let code = code_of(&path);
        // Whole `pub use …;` statements (they may span lines).
        for statement in code.split(';') {
            let statement = statement.split_whitespace().collect::<Vec<_>>().join(" ");
            let Some(at) = statement.find("pub use ") else {
                continue;
            };
            let used = &statement[at + "pub use ".len()..];
            if used.contains(" as ") || used.starts_with("kbi_") || used.starts_with("::kbi_") {
                offenders.push(format!("{relative}: pub use {used}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the root library re-exports or renames: {offenders:?}"
    );
}
