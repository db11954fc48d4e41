//! The service started in this process (`Application::build` on port 0, then
//! `run_until_stopped`), not as a child binary: one REST question answered from the demo
//! snapshot, and the consultation in the audit log.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use kbi_advice::service::settings::{Overrides, Settings};
use kbi_advice::service::Application;
use serde_json::Value;

/// Builds the development profile (plain HTTP on loopback) on port 0 with its audit log in
/// `audit_dir`, serves it on a thread of its own, and returns the client port.
fn start_in_process(audit_dir: &Path) -> u16 {
    let env = vec![(
        "KBI_ADVICE__AUDIT__DIR".to_string(),
        audit_dir.display().to_string(),
    )];
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        ops_listen: Some("127.0.0.1:0".into()),
        snapshot: Some("data/demo-snapshot.jsonl".into()),
    };
    let checked = Settings::load(None, env, &overrides).expect("settings");
    let (port_tx, port_rx) = mpsc::channel();
    // The server runs until the test process ends.
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = match Application::build(checked).await {
                Ok(app) => app,
                Err(error) => {
                    port_tx.send(Err(format!("{error:#}"))).unwrap();
                    return;
                }
            };
            port_tx.send(Ok(app.port())).unwrap();
            app.run_until_stopped().await.unwrap();
        })
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the application was neither built nor refused")
        .expect("the application did not build");
    assert_ne!(port, 0, "the bound port, not the one asked for");
    port
}

#[test]
fn the_app_built_on_port_0_answers_a_rest_question_and_audits_it() {
    let audit = tempfile::tempdir().unwrap();
    let port = start_in_process(audit.path());

    let response = reqwest::blocking::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/v1/integration-obligation/90011510383?date=2026-01-01"
        ))
        // The development profile names the caller in a header (a registered client).
        .header("X-Client-Id", "demo")
        .timeout(Duration::from_secs(30))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().unwrap();
    assert_eq!(answer["result"], "NOK", "{answer}");
    assert_eq!(answer["reason"]["code"], "NIET_AANGEMELD", "{answer}");
    assert_eq!(
        answer["source"]["snapshot_id"], "demo-2026-11-01",
        "{answer}"
    );

    // Audited before the answer left: the record is in the log already.
    let audited = kbi_audit::files_in(audit.path(), None, None)
        .unwrap()
        .iter()
        .map(|segment| String::from_utf8_lossy(&std::fs::read(segment).unwrap()).into_owned())
        .any(|text| text.contains("\"90011510383\""));
    assert!(audited, "no audit record of the question");
}
