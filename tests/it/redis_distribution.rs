//! Snapshot distribution through Redis (`operations.md`, "Snapshot sources and hot reload";
//! `snapshot-format.md`, "Same answer from every copy"). Every test starts its own redis-server
//! (`tests/it/support/redis.rs`, installed by `scripts/setup/redis.sh`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::support::redis::RedisServer;
use assert_cmd::Command;
use kbi_advice::snapshot::redis::{
    self as store, ChunkProblem, PublishOptions, RedisSnapshotError, RedisTarget,
};
use kbi_advice::snapshot::SnapshotSource;
use kbi_core::domain::{CompiledSnapshot, Question, RuleSet};
use kbi_core::io::Silent;
use kbi_core::snapshot::generate::{default_extracted_at, generate, GenerateOptions};
use kbi_core::snapshot::load_path;
use kbi_core::snapshot::reader::ReadLimits;
use rand::{Rng, SeedableRng};

fn rules() -> Arc<RuleSet> {
    Arc::new(RuleSet::shipped())
}

/// Writes a generated snapshot into `dir` and returns its path.
fn generated(dir: &Path, persons: u64, seed: u64, id: &str) -> PathBuf {
    let options = GenerateOptions {
        persons,
        seed,
        extracted_at: default_extracted_at(),
        snapshot_id: Some(id.to_string()),
        with_examples: false,
    };
    let mut text = Vec::new();
    generate(&options, &mut text).expect("generate");
    let path = dir.join(format!("{id}.jsonl"));
    std::fs::write(&path, text).expect("write snapshot");
    path
}

fn target(redis: &RedisServer) -> RedisTarget {
    RedisTarget::parse(&redis.url(), None).expect("target")
}

/// Small chunks, so that even small test snapshots span many chunks.
fn small_chunks() -> PublishOptions {
    PublishOptions {
        chunk_bytes: 4096,
        ..PublishOptions::default()
    }
}

fn publish(redis: &RedisServer, path: &Path, options: &PublishOptions) -> store::Published {
    store::publish(&target(redis), path, rules(), options, &Silent).expect("publish")
}

fn current(redis: &RedisServer) -> Option<String> {
    store::current_version(&target(redis)).expect("read current")
}

fn keys_of_version(redis: &RedisServer, version: &str) -> Vec<String> {
    let mut con = redis.connection();
    redis::cmd("KEYS")
        .arg(format!("kbi:snapshot:{version}:*"))
        .query(&mut con)
        .expect("KEYS")
}

/// An error text must never carry an 11-digit run (an INSZ) or stored bytes.
fn assert_no_insz(text: &str) {
    let digits = text
        .split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() >= 11);
    assert!(!digits, "an 11-digit number in an error text: {text}");
}

/// Compares answers of two compiled snapshots: every person of `a` on several dates, and numbers
/// that are in neither.
fn assert_same_answers(a: &CompiledSnapshot, b: &CompiledSnapshot, seed: u64) {
    assert_eq!(a.meta, b.meta);
    assert_eq!(a.index.len(), b.index.len());
    assert_eq!(a.index.transition_count(), b.index.transition_count());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut dates = vec!["2022-01-01".to_string(), "2026-11-01".to_string()];
    for _ in 0..6 {
        dates.push(format!(
            "{}-{:02}-{:02}",
            rng.gen_range(2021..=2026),
            rng.gen_range(1..=12),
            rng.gen_range(1..=28)
        ));
    }
    let mut numbers: Vec<String> = a.index.iter().map(|(insz, _)| insz.to_string()).collect();
    for _ in 0..200 {
        numbers.push(format!("{:011}", rng.gen_range(0..100_000_000_000u64)));
    }
    let mut asked = 0;
    for number in &numbers {
        for date in &dates {
            let Ok(question) = Question::parse(number, Some(date), None) else {
                continue;
            };
            asked += 1;
            assert_eq!(
                a.advise(&question),
                b.advise(&question),
                "different answers on {date} (seed {seed})"
            );
        }
    }
    assert!(asked > 1000, "too few questions compared: {asked}");
}

#[test]
fn publish_then_load_answers_exactly_like_the_file() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    for (seed, persons) in [(11u64, 300u64), (12, 2_000), (13, 6_000)] {
        let path = generated(dir.path(), persons, seed, &format!("seed-{seed}"));
        let from_file = load_path(&path, rules(), &Silent).expect("file loads");
        let published = publish(&redis, &path, &small_chunks());
        assert!(
            persons < 1000 || published.meta.chunks.len() > 2,
            "the test wants several chunks"
        );
        let loaded = store::load_current(&target(&redis), rules(), ReadLimits::default(), &Silent)
            .expect("redis loads");
        assert_eq!(loaded.version, published.version);
        assert_eq!(loaded.meta, published.meta);
        assert_same_answers(&from_file, &loaded.snapshot, seed);
        // The text stored is byte for byte the file: same SHA-256 as the file itself.
        let file_sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()))
        };
        assert_eq!(loaded.meta.text_sha256, file_sha);
    }
}

#[test]
fn compressed_files_publish_their_text() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let plain = generated(dir.path(), 500, 5, "gz");
    let gz = dir.path().join("gz.jsonl.gz");
    {
        use std::io::Write;
        let mut enc =
            flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
        enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
        enc.finish().unwrap();
    }
    publish(&redis, &gz, &small_chunks());
    let loaded =
        store::load_current(&target(&redis), rules(), ReadLimits::default(), &Silent).unwrap();
    let from_file = load_path(&plain, rules(), &Silent).unwrap();
    assert_same_answers(&from_file, &loaded.snapshot, 5);
}

#[test]
fn publishing_an_invalid_file_changes_nothing() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = generated(dir.path(), 400, 3, "good");
    publish(&redis, &good, &small_chunks());
    let before = redis.dump_all();
    assert!(!before.is_empty());

    // Truncated: the header declares more persons than follow.
    let text = std::fs::read_to_string(&good).unwrap();
    let truncated = dir.path().join("truncated.jsonl");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.truncate(lines.len() - 3);
    std::fs::write(&truncated, lines.join("\n") + "\n").unwrap();
    // Unknown event type on line 5.
    let unknown = dir.path().join("unknown.jsonl");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[4] = lines[4].replacen(
        "\"events\": [",
        "\"events\": [{\"date\": \"2023-01-01\", \"type\": \"TELEPORT\"}, ",
        1,
    );
    assert!(lines[4].contains("TELEPORT"));
    std::fs::write(&unknown, lines.join("\n") + "\n").unwrap();
    // Missing file.
    let missing = dir.path().join("missing.jsonl");

    for (bad, expect) in [
        (&truncated, "truncated or corrupt"),
        (&unknown, "line 5"),
        (&missing, "cannot open"),
    ] {
        let error = store::publish(&target(&redis), bad, rules(), &small_chunks(), &Silent)
            .expect_err("an invalid file is refused");
        assert!(
            matches!(error, RedisSnapshotError::Invalid { .. }),
            "{error}"
        );
        let text = error.to_string();
        assert!(text.contains(expect), "{text}");
        assert!(text.contains("nothing was published"), "{text}");
        assert_no_insz(&text);
        assert_eq!(
            redis.dump_all(),
            before,
            "Redis changed after refusing {bad:?}"
        );
    }
}

#[test]
fn an_interrupted_publish_never_changes_current() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let first = generated(dir.path(), 1_000, 1, "first");
    let second = generated(dir.path(), 1_500, 2, "second");
    let first_version = publish(&redis, &first, &small_chunks()).version;

    let interrupted = PublishOptions {
        interrupt_after_chunks: Some(2),
        ..small_chunks()
    };
    let error = store::publish(&target(&redis), &second, rules(), &interrupted, &Silent)
        .expect_err("the hook stops the publish");
    assert!(
        matches!(error, RedisSnapshotError::Abandoned { .. }),
        "{error}"
    );
    assert_eq!(current(&redis).as_deref(), Some(first_version.as_str()));
    let loaded =
        store::load_current(&target(&redis), rules(), ReadLimits::default(), &Silent).unwrap();
    assert_eq!(loaded.snapshot.meta.snapshot_id, "first");
    // The partial version's chunks are left, as after a crash, but it has no meta.
    let partial = (first_version.parse::<u64>().unwrap() + 1).to_string();
    let left = keys_of_version(&redis, &partial);
    assert_eq!(left.len(), 2, "{left:?}");

    // The next publish removes the leftovers.
    let third = publish(&redis, &second, &small_chunks());
    assert!(third.removed.contains(&partial), "{:?}", third.removed);
    assert!(keys_of_version(&redis, &partial).is_empty());
    assert_eq!(current(&redis), Some(third.version));
}

#[test]
fn a_publisher_killed_midway_leaves_current_untouched() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let first = generated(dir.path(), 300, 1, "first");
    let big = generated(dir.path(), 60_000, 2, "big");
    let first_version = publish(&redis, &first, &small_chunks()).version;
    let next = (first_version.parse::<u64>().unwrap() + 1).to_string();

    // 1 KiB chunks: thousands of round trips, so the kill lands half-way.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kbi-advice"))
        .args([
            "snapshot",
            "publish",
            "--redis",
            &redis.url(),
            "--chunk-bytes",
            "1024",
        ])
        .arg(&big)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut con = redis.connection();
    let first_chunk = format!("kbi:snapshot:{next}:chunk:0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let exists: bool = redis::cmd("EXISTS")
            .arg(&first_chunk)
            .query(&mut con)
            .unwrap();
        if exists {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the publisher never stored a chunk"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let meta_written: bool = redis::cmd("EXISTS")
        .arg(format!("kbi:snapshot:{next}:meta"))
        .query(&mut con)
        .unwrap();
    assert!(
        !meta_written,
        "the publish finished before the kill; the test proves nothing"
    );
    assert_eq!(current(&redis).as_deref(), Some(first_version.as_str()));
    let loaded =
        store::load_current(&target(&redis), rules(), ReadLimits::default(), &Silent).unwrap();
    assert_eq!(loaded.snapshot.meta.snapshot_id, "first");

    // The dead publisher's lock blocks the next publish until it expires, with a clear message.
    let error = store::publish(&target(&redis), &first, rules(), &small_chunks(), &Silent)
        .expect_err("locked");
    assert!(
        matches!(error, RedisSnapshotError::Locked { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("another publish"), "{error}");
    // Let it expire now rather than wait, then publish: the leftovers go.
    redis::cmd("DEL")
        .arg("kbi:snapshot:lock")
        .query::<()>(&mut con)
        .unwrap();
    let after = publish(&redis, &first, &small_chunks());
    assert!(after.removed.contains(&next), "{:?}", after.removed);
    assert!(keys_of_version(&redis, &next).is_empty());
}

#[test]
fn a_corrupt_or_missing_chunk_refuses_the_version() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = generated(dir.path(), 2_000, 4, "chunks");
    let published = publish(&redis, &path, &small_chunks());
    let v = published.version.clone();
    let mut con = redis.connection();
    let chunk1 = format!("kbi:snapshot:{v}:chunk:1");
    let original: Vec<u8> = redis::cmd("GET").arg(&chunk1).query(&mut con).unwrap();

    let load =
        || store::load_current(&target(&redis), rules(), ReadLimits::default(), &Silent).err();

    // Same length, different bytes: the checksum catches it.
    let mut flipped = original.clone();
    flipped[100] ^= 0x55;
    redis::cmd("SET")
        .arg(&chunk1)
        .arg(&flipped)
        .query::<()>(&mut con)
        .unwrap();
    let error = load().expect("a corrupt chunk is refused");
    assert!(
        matches!(&error, RedisSnapshotError::Chunk { version, chunk: 1, problem: ChunkProblem::Checksum, .. } if *version == v),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!("version {v}")) && text.contains("chunk 1 of"),
        "{text}"
    );
    assert_no_insz(&text);

    // Garbage of another length.
    redis::cmd("SET")
        .arg(&chunk1)
        .arg("garbage")
        .query::<()>(&mut con)
        .unwrap();
    let error = load().expect("refused");
    assert!(
        matches!(
            error,
            RedisSnapshotError::Chunk {
                chunk: 1,
                problem: ChunkProblem::Size { .. },
                ..
            }
        ),
        "{error}"
    );

    // Gone.
    redis::cmd("DEL")
        .arg(&chunk1)
        .query::<()>(&mut con)
        .unwrap();
    let error = load().expect("refused");
    assert!(
        matches!(
            error,
            RedisSnapshotError::Chunk {
                chunk: 1,
                problem: ChunkProblem::Missing,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("missing"), "{error}");

    // Restored: loads again.
    redis::cmd("SET")
        .arg(&chunk1)
        .arg(&original)
        .query::<()>(&mut con)
        .unwrap();
    assert!(load().is_none());

    // A meta that is not ours.
    let meta_key = format!("kbi:snapshot:{v}:meta");
    let meta: String = redis::cmd("GET").arg(&meta_key).query(&mut con).unwrap();
    redis::cmd("SET")
        .arg(&meta_key)
        .arg("{not json")
        .query::<()>(&mut con)
        .unwrap();
    let error = load().expect("refused");
    assert!(
        matches!(error, RedisSnapshotError::Version { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("meta"), "{error}");
    // A meta whose whole checksum lies (every chunk intact).
    let lying = meta.replacen(&published.meta.sha256, &"0".repeat(64), 1);
    redis::cmd("SET")
        .arg(&meta_key)
        .arg(&lying)
        .query::<()>(&mut con)
        .unwrap();
    let error = load().expect("refused");
    assert!(
        error.to_string().contains("SHA-256 of the whole"),
        "{error}"
    );
    assert_no_insz(&error.to_string());
}

#[test]
fn keep_n_deletes_old_versions_never_the_current_one() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut versions = Vec::new();
    for i in 0..5u64 {
        let path = generated(dir.path(), 200, i, &format!("v{i}"));
        let options = PublishOptions {
            keep: 2,
            ..small_chunks()
        };
        versions.push(publish(&redis, &path, &options).version);
    }
    assert_eq!(current(&redis).as_ref(), versions.last());
    for old in &versions[..3] {
        assert!(
            keys_of_version(&redis, old).is_empty(),
            "version {old} kept"
        );
    }
    for kept in &versions[3..] {
        assert!(
            !keys_of_version(&redis, kept).is_empty(),
            "version {kept} deleted"
        );
    }
    let mut con = redis.connection();
    let listed: Vec<String> = redis::cmd("ZRANGE")
        .arg("kbi:snapshot:versions")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(listed, versions[3..].to_vec());

    // keep = 1: only the current one.
    let path = generated(dir.path(), 200, 9, "only");
    let options = PublishOptions {
        keep: 1,
        ..small_chunks()
    };
    let last = publish(&redis, &path, &options);
    assert_eq!(last.removed.len(), 2, "{:?}", last.removed);
    let loaded =
        store::load_current(&target(&redis), rules(), ReadLimits::default(), &Silent).unwrap();
    assert_eq!(loaded.snapshot.meta.snapshot_id, "only");

    // keep = 0 is refused before anything happens.
    let before = redis.dump_all();
    let options = PublishOptions {
        keep: 0,
        ..small_chunks()
    };
    assert!(store::publish(&target(&redis), &path, rules(), &options, &Silent).is_err());
    assert_eq!(redis.dump_all(), before);
}

#[test]
fn prefixes_keep_deployments_apart() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let a = generated(dir.path(), 100, 1, "a");
    let b = generated(dir.path(), 100, 2, "b");
    let ta = RedisTarget::parse(&redis.url(), Some("acc")).unwrap();
    let tb = RedisTarget::parse(&format!("{}/0?prefix=prod", redis.url()), None).unwrap();
    store::publish(&ta, &a, rules(), &small_chunks(), &Silent).unwrap();
    store::publish(&tb, &b, rules(), &small_chunks(), &Silent).unwrap();
    let la = store::load_current(&ta, rules(), ReadLimits::default(), &Silent).unwrap();
    let lb = store::load_current(&tb, rules(), ReadLimits::default(), &Silent).unwrap();
    assert_eq!(la.snapshot.meta.snapshot_id, "a");
    assert_eq!(lb.snapshot.meta.snapshot_id, "b");
    let other = RedisTarget::parse(&redis.url(), Some("none")).unwrap();
    let error = store::load_current(&other, rules(), ReadLimits::default(), &Silent)
        .err()
        .unwrap();
    assert!(
        matches!(error, RedisSnapshotError::NothingPublished { .. }),
        "{error}"
    );
}

// ---- the command line -------------------------------------------------------------------------

fn kbi() -> Command {
    Command::cargo_bin("kbi-advice").unwrap()
}

const DEMO: &str = "data/demo-snapshot.jsonl";

#[test]
fn cli_publish_then_check_and_validate_from_redis() {
    let redis = RedisServer::start();
    let out = kbi()
        .args([
            "snapshot",
            "publish",
            "--redis",
            &redis.url(),
            "--keep",
            "2",
            DEMO,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("published: version 1 of snapshot demo-2026-11-01"),
        "{stdout}"
    );

    for (insz, date) in [
        ("90011510383", "2026-01-01"),
        ("97081812768", "2026-01-01"),
        ("92032511125", "2025-06-30"),
    ] {
        let from_file = kbi()
            .args(["check", "--snapshot", DEMO, "--insz", insz, "--date", date])
            .output()
            .unwrap();
        let from_redis = kbi()
            .args([
                "check",
                "--snapshot",
                &redis.url(),
                "--insz",
                insz,
                "--date",
                date,
            ])
            .output()
            .unwrap();
        assert_eq!(from_file.status.code(), Some(0));
        assert_eq!(
            from_redis.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&from_redis.stderr)
        );
        assert_eq!(from_file.stdout, from_redis.stdout);
    }

    // --explain reads the person's events from the same version.
    let explained = kbi()
        .args([
            "check",
            "--snapshot",
            &redis.url(),
            "--insz",
            "90011510383",
            "--date",
            "2026-01-01",
            "--explain",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&explained.stderr);
    assert!(stderr.contains("OBLIGATION_START"), "{stderr}");

    let validated = kbi()
        .args(["snapshot", "validate", &redis.url()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&validated.stdout);
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );
    assert!(
        stdout.contains("valid: snapshot demo-2026-11-01"),
        "{stdout}"
    );
    assert!(stdout.contains("version 1"), "{stdout}");
}

#[test]
fn cli_errors_are_clear_and_never_show_the_password() {
    let port = crate::support::redis::free_port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    for args in [
        vec![
            "check",
            "--snapshot",
            &url,
            "--insz",
            "90011510383",
            "--date",
            "2026-01-01",
        ],
        vec!["snapshot", "validate", &url],
        vec!["snapshot", "publish", "--redis", &url, DEMO],
    ] {
        let out = kbi().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unreachable"), "{stderr}");
        assert!(stderr.contains("redis://***@127.0.0.1"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }

    // Nothing published yet.
    let redis = RedisServer::start();
    let out = kbi()
        .args(["snapshot", "validate", &redis.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no snapshot published"), "{stderr}");

    // An invalid file: the loader's error with the line, exit 2, Redis untouched.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"kbi_snapshot\": {\"format\": 2}}\n").unwrap();
    let out = kbi()
        .args(["snapshot", "publish", "--redis", &redis.url()])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 1"), "{stderr}");
    assert!(redis.dump_all().is_empty());
}

#[test]
fn sources_parse_from_the_snapshot_argument() {
    assert!(matches!(
        "redis://127.0.0.1:1/3?prefix=x".parse::<SnapshotSource>(),
        Ok(SnapshotSource::Redis(t)) if t.prefix() == "x"
    ));
    assert!(matches!(
        "/tmp/s.jsonl".parse::<SnapshotSource>(),
        Ok(SnapshotSource::File(_))
    ));
}

// ---- a replica following Redis (the watcher `serve` runs) ---------------------------------------

/// What the watcher handed over last: (version, snapshot id).
type Installed = Arc<std::sync::Mutex<Option<(String, String)>>>;

/// Generous bound for a replica to notice something; a failure condition, not a speed claim.
const CONVERGE: std::time::Duration = std::time::Duration::from_secs(60);

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + CONVERGE;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {CONVERGE:?}: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn installed_id(installed: &Installed) -> Option<String> {
    installed.lock().unwrap().as_ref().map(|(_, id)| id.clone())
}

/// What the watcher told its observer, counted (the service's observer is its metrics).
#[derive(Default)]
struct Seen {
    reachable: AtomicBool,
    loaded: AtomicU64,
    refused: AtomicU64,
    unavailable: AtomicU64,
}

impl store::WatchObserver for Seen {
    fn observed(&self, outcome: store::WatchOutcome<'_>) {
        let reachable = match outcome {
            store::WatchOutcome::Unchanged => true,
            store::WatchOutcome::Loaded { .. } => {
                self.loaded.fetch_add(1, Ordering::Relaxed);
                true
            }
            store::WatchOutcome::Refused => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                true
            }
            store::WatchOutcome::Unavailable { reachable } => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
                reachable
            }
        };
        self.reachable.store(reachable, Ordering::Relaxed);
    }
}

impl Seen {
    fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }
    fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
    fn unavailable(&self) -> u64 {
        self.unavailable.load(Ordering::Relaxed)
    }
}

fn start_watcher(
    runtime: &tokio::runtime::Runtime,
    redis: &RedisServer,
    poll_interval: std::time::Duration,
) -> (Installed, Arc<Seen>) {
    let installed: Installed = Arc::default();
    let status = Arc::new(Seen::default());
    let options = store::WatchOptions {
        poll_interval,
        retry_initial: std::time::Duration::from_millis(50),
        retry_max: std::time::Duration::from_millis(500),
        ..store::WatchOptions::default()
    };
    let sink = installed.clone();
    runtime.spawn(store::watch_redis(
        target(redis),
        rules(),
        options,
        status.clone(),
        move |loaded: store::LoadedVersion| {
            *sink.lock().unwrap() = Some((loaded.version, loaded.snapshot.meta.snapshot_id));
        },
    ));
    (installed, status)
}

#[test]
fn a_replica_follows_notifications_refuses_corrupt_versions_and_survives_redis_loss() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Polling once an hour: everything after the first load must come from notifications or
    // from the reconnect logic.
    let (installed, status) = start_watcher(&runtime, &redis, std::time::Duration::from_secs(3600));

    // Nothing published yet: the replica waits and retries.
    wait_until("the watcher reports nothing published", || {
        status.unavailable() > 0
    });
    assert_eq!(installed_id(&installed), None);

    let a = generated(dir.path(), 300, 1, "a");
    let b = generated(dir.path(), 300, 2, "b");
    let va = publish(&redis, &a, &small_chunks()).version;
    wait_until("version a served", || {
        installed_id(&installed).as_deref() == Some("a")
    });

    publish(&redis, &b, &small_chunks());
    wait_until("version b served after its notification", || {
        installed_id(&installed).as_deref() == Some("b")
    });

    // Point `current` back at version a after corrupting it: refused, b keeps serving.
    let mut con = redis.connection();
    redis::cmd("SET")
        .arg(format!("kbi:snapshot:{va}:chunk:0"))
        .arg("garbage")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("SET")
        .arg("kbi:snapshot:current")
        .arg(&va)
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("PUBLISH")
        .arg("kbi:snapshot:events")
        .arg(&va)
        .query::<i64>(&mut con)
        .unwrap();
    wait_until("the corrupt version refused", || status.refused() == 1);
    assert_eq!(installed_id(&installed).as_deref(), Some("b"));

    // Redis dies: b keeps serving, the watcher notices and retries.
    redis.stop();
    wait_until("the watcher notices Redis is gone", || !status.reachable());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(installed_id(&installed).as_deref(), Some("b"));

    // Redis comes back empty on the same port; a publish reaches the replica.
    redis.restart();
    let c = generated(dir.path(), 300, 3, "c");
    publish(&redis, &c, &small_chunks());
    wait_until("version c served after Redis came back", || {
        installed_id(&installed).as_deref() == Some("c")
    });
    assert!(status.reachable());
    runtime.shutdown_background();
}

#[test]
fn a_missed_notification_is_caught_by_polling() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let a = generated(dir.path(), 200, 1, "a");
    let b = generated(dir.path(), 200, 2, "b");
    let va = publish(&redis, &a, &small_chunks()).version;
    publish(&redis, &b, &small_chunks());
    let (installed, _status) =
        start_watcher(&runtime, &redis, std::time::Duration::from_millis(200));
    wait_until("version b served", || {
        installed_id(&installed).as_deref() == Some("b")
    });
    // Switch back to a without any notification.
    let mut con = redis.connection();
    redis::cmd("SET")
        .arg("kbi:snapshot:current")
        .arg(&va)
        .query::<()>(&mut con)
        .unwrap();
    wait_until("version a found by polling", || {
        installed_id(&installed).as_deref() == Some("a")
    });
    runtime.shutdown_background();
}

/// A snapshot as a KBI dossier import writes it: header `facts` without the employment-service
/// registrations, and `sources`. The person signed a contract under VL-2022 and is not known to
/// have registered with VDAB: with these facts that is no NOK.
const KBI_STYLE: &str = concat!(
    r#"{"kbi_snapshot": {"format": 1, "snapshot_id": "kbi-import-1", "extracted_at": "2026-11-01T02:00:00Z", "persons": 1, "#,
    r#""facts": ["OBLIGATION_START", "OBLIGATION_END", "EXEMPTION", "REGISTRATION", "CONTRACT_SIGNED", "DEADLINE_EXTENSION", "INFRINGEMENT", "INFRINGEMENT_CLOSED", "CERTIFICATE"], "#,
    r#""sources": [{"kind": "kbi-dossier", "version": "01.00", "files": 1, "dossiers": 1}]}}"#,
    "\n",
    r#"{"insz": "85073003328", "events": [{"date": "2022-04-04", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2022-05-30", "type": "REGISTRATION"}, {"date": "2022-06-13", "type": "CONTRACT_SIGNED"}]}"#,
    "\n"
);

#[test]
fn facts_travel_through_redis_and_are_shown_by_validate_and_explain() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kbi.jsonl");
    std::fs::write(&path, KBI_STYLE).unwrap();
    let from_file = load_path(&path, rules(), &Silent).expect("file loads");
    publish(&redis, &path, &small_chunks());
    let loaded = store::load_current(&target(&redis), rules(), ReadLimits::default(), &Silent)
        .expect("redis loads");
    assert_eq!(loaded.snapshot.meta, from_file.meta, "facts and sources");
    assert!(!loaded.snapshot.meta.facts.is_all());
    let question = Question::parse("85073003328", Some("2026-01-01"), None).unwrap();
    let answer = loaded.snapshot.advise(&question).expect("answers");
    assert!(answer.subject && answer.compliant, "{answer:?}");
    assert_eq!(Ok(answer), from_file.advise(&question));

    let validated = kbi()
        .args(["snapshot", "validate", &redis.url()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&validated.stdout);
    assert!(validated.status.success(), "{stdout}");
    assert!(
        stdout.contains("facts: OBLIGATION_START, REGISTRATION, CONTRACT_SIGNED,"),
        "{stdout}"
    );
    assert!(stdout.contains(r#"sources: [{"dossiers":1,"#), "{stdout}");
    assert!(
        stdout.contains("deadline not derived: regime VL-2022 `employment_service_days`"),
        "{stdout}"
    );

    let explained = kbi()
        .args([
            "check",
            "--snapshot",
            &redis.url(),
            "--insz",
            "85073003328",
            "--date",
            "2026-01-01",
            "--explain",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&explained.stderr);
    assert!(
        stderr.contains("deadline left out: regime VL-2022 sets `employment_service_days`")
            && stderr.contains("does not record EMPLOYMENT_SERVICE_REGISTRATION"),
        "{stderr}"
    );
    // The explanation agrees with the answer: no employment-service deadline computed.
    assert!(!stderr.contains("deadline EMPLOYMENT_SERVICE"), "{stderr}");
    assert!(stderr.contains("rule 4"), "{stderr}");
    let stdout = String::from_utf8_lossy(&explained.stdout);
    assert!(stdout.contains(r#""result": "OK""#), "{stdout}");
}
