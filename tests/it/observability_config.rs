//! The shipped observability configuration (`operations.md`, Observability):
//! `config/prometheus/alerts.yml` passes `promtool check rules` and its unit tests
//! (`config/prometheus/alerts_test.yml`, every alert both firing and silent), and every metric the
//! Grafana dashboard and the alert rules query is one the service exports (no dangling panels).
//!
//! Needs `promtool` (installed by `scripts/setup/prometheus.sh`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{TimeZone, Utc};
use kbi_advice::telemetry::metrics::Metrics;
use kbi_core::domain::SnapshotMeta;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn alerts_path() -> PathBuf {
    repo().join("config/prometheus/alerts.yml")
}

fn dashboard_path() -> PathBuf {
    repo().join("config/grafana/kbi-advice.json")
}

/// Runs promtool with `args` in `dir`; fails the test, naming the setup script, when promtool is
/// not installed.
fn promtool(dir: &Path, args: &[&str]) -> std::process::Output {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool not found: run `bash scripts/setup/prometheus.sh` (CI runs every \
             scripts/setup/*.sh before cargo test)"
        ),
        Err(err) => panic!("cannot run promtool: {err}"),
    }
}

fn assert_success(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check_rules() {
    let output = promtool(&repo(), &["check", "rules", "config/prometheus/alerts.yml"]);
    assert_success(&output, "promtool check rules config/prometheus/alerts.yml");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let dir = repo().join("config/prometheus");
    let output = promtool(&dir, &["test", "rules", "alerts_test.yml"]);
    assert_success(
        &output,
        "promtool test rules config/prometheus/alerts_test.yml",
    );
}

/// The alert names of `alerts.yml`, in file order.
fn alert_names() -> Vec<String> {
    let text = std::fs::read_to_string(alerts_path()).expect("read alerts.yml");
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("- alert:"))
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn every_alert_has_a_firing_and_a_silent_unit_test() {
    let names = alert_names();
    let expected = [
        "KbiSnapshotTooOld",
        "KbiSnapshotReloadFailing",
        "KbiServerErrorRatioHigh",
        "KbiLatencyP99High",
        "KbiAuditWriteFailures",
        "KbiReplicaNotReady",
    ];
    for name in expected {
        assert!(names.iter().any(|n| n == name), "alerts.yml lacks {name}");
    }

    let tests = std::fs::read_to_string(repo().join("config/prometheus/alerts_test.yml"))
        .expect("read alerts_test.yml");
    let mut firing = BTreeSet::new();
    let mut silent = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in tests.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname:") {
            current = Some(name.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("exp_alerts:") {
            let name = current.take().expect("exp_alerts after an alertname");
            if rest.trim() == "[]" {
                silent.insert(name);
            } else {
                firing.insert(name);
            }
        }
    }
    // The silent half of a test is meaningful only together with series that make the alert
    // fire elsewhere or later: both halves live in the same test group.
    for name in &names {
        assert!(firing.contains(name), "no firing unit test for {name}");
        assert!(silent.contains(name), "no silent unit test for {name}");
    }
    for name in firing.iter().chain(&silent) {
        assert!(names.contains(name), "unit test for unknown alert {name}");
    }
}

/// The PromQL expressions of the alert rules (inline `expr: …` or a block scalar below it).
fn alert_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(alerts_path()).expect("read alerts.yml");
    let lines: Vec<&str> = text.lines().collect();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            i += 1;
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let indent = line.len() - line.trim_start().len();
            let mut block = String::new();
            i += 1;
            while i < lines.len() {
                let next = lines[i];
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push_str(next.trim());
                block.push('\n');
                i += 1;
            }
            exprs.push(block);
        } else {
            exprs.push(rest.to_string());
            i += 1;
        }
    }
    exprs
}

/// Every PromQL expression of the dashboard: panel targets and template-variable queries, the
/// latter reduced to the metric selector of `label_values(…)`.
fn dashboard_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(dashboard_path()).expect("read the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut exprs = Vec::new();
    fn walk_panels(panels: &serde_json::Value, exprs: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    exprs.push(expr.to_string());
                }
            }
            walk_panels(&panel["panels"], exprs);
        }
    }
    walk_panels(&dashboard["panels"], &mut exprs);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = match &variable["query"] {
            serde_json::Value::String(query) => query.clone(),
            other => other["query"].as_str().unwrap_or_default().to_string(),
        };
        if let Some(args) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
        {
            let selector = args.rsplit_once(',').map_or(args, |(selector, _)| selector);
            exprs.push(selector.trim().to_string());
        }
    }
    exprs
}

/// The metric names an expression selects: identifiers outside label matchers (`{…}`), range
/// selectors (`[…]`), strings and grouping clauses (`by (…)`, `on (…)`, …) that are not
/// functions (followed by `(`) and not operators or keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Aggregation operators may be followed by `by (…)` instead of their parenthesis.
    const KEYWORDS: [&str; 21] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "Inf",
        "NaN",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Drop bracketed and quoted parts: label matchers, durations, template variables.
    let mut plain = String::with_capacity(expr.len());
    let mut closing: Option<char> = None;
    for c in expr.chars() {
        match closing {
            Some(end) if c == end => {
                closing = None;
                plain.push(' ');
            }
            Some(_) => {}
            None => match c {
                '{' => closing = Some('}'),
                '[' => closing = Some(']'),
                '"' => closing = Some('"'),
                _ => plain.push(c),
            },
        }
    }
    let chars: Vec<char> = plain.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let next_non_space = |from: usize| chars[from..].iter().copied().find(|c| !c.is_whitespace());
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c == '.' {
            // Numbers, including exponents and durations: not names.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let followed_by_paren = next_non_space(i) == Some('(');
            if GROUPING.contains(&word.as_str()) && followed_by_paren {
                // Skip the label list.
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
            } else if !followed_by_paren && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The metric families the service exports, with a snapshot loaded and a maximum age set so that
/// every conditional family is present.
fn exported_names() -> BTreeSet<String> {
    let metrics = Metrics::new(&["client-a"]).expect("metrics");
    metrics.snapshot_loaded(
        &SnapshotMeta {
            snapshot_id: "test".to_string(),
            extracted_at: Utc
                .with_ymd_and_hms(2026, 11, 1, 2, 0, 0)
                .single()
                .expect("time"),
            persons: 1,
            facts: Default::default(),
            sources: None,
        },
        "rules",
    );
    metrics.set_snapshot_max_age(Some(std::time::Duration::from_secs(86_400)));
    metrics.family_names().into_iter().collect()
}

/// Whether `name` is an exported family or one of the series of an exported histogram.
fn is_exported(name: &str, exported: &BTreeSet<String>) -> bool {
    exported.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| exported.contains(base))
        })
}

#[test]
fn promql_name_extraction_reads_selectors_not_labels_or_functions() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (job, door, le) (rate(kbi_request_duration_seconds_bucket{door!="rest_batch",job=~"$job"}[$__rate_interval]))) > 1e-3
           or on (instance) kbi_ready == bool 0 unless ignoring(door) up offset 5m"#,
    );
    let expected: BTreeSet<String> = ["kbi_request_duration_seconds_bucket", "kbi_ready", "up"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn every_metric_in_the_dashboard_and_the_alerts_is_exported() {
    let exported = exported_names();
    // Guard against a vacuous pass: the service exports its families and process metrics.
    for name in [
        "kbi_requests_total",
        "kbi_ready",
        "process_cpu_seconds_total",
    ] {
        assert!(exported.contains(name), "{name} not exported: {exported:?}");
    }

    let alerts = alert_expressions();
    assert_eq!(
        alerts.len(),
        alert_names().len(),
        "one expression per alert rule"
    );
    let dashboard = dashboard_expressions();
    assert!(
        dashboard.len() >= 20,
        "dashboard queries: {}",
        dashboard.len()
    );

    let mut used = BTreeSet::new();
    let mut dangling = Vec::new();
    for (origin, exprs) in [("alerts.yml", &alerts), ("kbi-advice.json", &dashboard)] {
        for expr in exprs {
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{origin}: no metric in `{expr}`");
            for name in names {
                if !is_exported(&name, &exported) {
                    dangling.push(format!("{origin}: {name} in `{}`", expr.trim()));
                }
                used.insert(name);
            }
        }
    }
    assert!(
        dangling.is_empty(),
        "metrics queried but not exported:\n{}",
        dangling.join("\n")
    );

    // The dashboard shows what the spec asks for.
    let dashboard_text = dashboard.join("\n");
    for name in [
        "kbi_requests_total",
        "kbi_request_duration_seconds_bucket",
        "kbi_questions_total",
        "kbi_errors_total",
        "kbi_snapshot_age_seconds",
        "kbi_snapshot_reloads_total",
        "kbi_audit_write_duration_seconds_bucket",
        "kbi_audit_failures_total",
        "kbi_ready",
    ] {
        assert!(
            dashboard_text.contains(name),
            "dashboard does not show {name}"
        );
    }
    for quantile in ["0.5", "0.95", "0.99"] {
        assert!(
            dashboard_text.contains(&format!("histogram_quantile({quantile},")),
            "dashboard lacks the {quantile} latency quantile"
        );
    }
}

#[test]
fn dashboard_is_importable_with_a_prometheus_datasource_variable() {
    let text = std::fs::read_to_string(dashboard_path()).expect("read the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert_eq!(dashboard["uid"], "kbi-advice");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating list");
    assert!(
        variables.iter().any(|v| v["type"] == "datasource"
            && v["query"] == "prometheus"
            && v["name"] == "datasource"),
        "no Prometheus datasource variable"
    );
    // Every panel queries through the variable, so importing asks nothing but the data source.
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {} does not use the datasource variable",
            panel["title"]
        );
        assert!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "panel {} has no query",
            panel["title"]
        );
    }
}

#[test]
fn dashboard_queries_are_valid_promql() {
    // promtool parses PromQL only inside rule files: make each dashboard query a recording rule,
    // with Grafana's variables replaced by what Grafana would substitute.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in dashboard_expressions().iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$__range", "1h")
            .replace("$job", ".*")
            .replace("$instance", ".*");
        let quoted = serde_json::to_string(&expr).expect("quote");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("dashboard.yml"), rules).expect("write rules");
    let output = promtool(dir.path(), &["check", "rules", "dashboard.yml"]);
    assert_success(&output, "promtool check rules on the dashboard queries");
}
