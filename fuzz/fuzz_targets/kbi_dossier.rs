//! A KBI dossier file (GeefDossierKBI 01.00 replies) through the whole import: never panics,
//! bounded time, nothing written unless the import succeeds, and neither the errors nor the
//! report quote an INSZ from the input.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kbi_import::codes::Codes;
use kbi_import::{import, ImportOptions};
use libfuzzer_sys::fuzz_target;

/// One scratch directory per fuzzing process (tmpfs when there is one).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("kbi-fuzz-dossier-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

fn codes() -> &'static Codes {
    static CODES: OnceLock<Codes> = OnceLock::new();
    CODES.get_or_init(Codes::shipped)
}

fuzz_target!(|data: &[u8]| {
    let input = scratch().join("input.xml");
    let out = scratch().join("out.jsonl");
    std::fs::write(&input, data).expect("write input");
    let _ = std::fs::remove_file(&out);
    let options = ImportOptions {
        inputs: vec![input],
        out: out.clone(),
        snapshot_id: "fuzz".to_string(),
        extracted_at: chrono::DateTime::UNIX_EPOCH,
        employment_service: None,
        codes: codes().clone(),
    };
    let outcome = kbi_advice_fuzz::timed("kbi dossier import", true, || {
        import(&options, &kbi_core::io::Silent)
    });
    match outcome {
        Ok(report) => {
            let text = report.render();
            kbi_advice_fuzz::assert_no_insz(data, &text);
            for error in &report.errors {
                kbi_advice_fuzz::assert_no_insz(data, &error.to_string());
            }
            assert_eq!(
                report.ok,
                out.exists(),
                "a snapshot is written exactly when the import succeeds"
            );
        }
        Err(error) => kbi_advice_fuzz::assert_no_insz(data, &error.to_string()),
    }
});
