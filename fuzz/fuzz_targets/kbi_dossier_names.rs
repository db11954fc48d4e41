//! Element names, attribute names and attribute values of a GeefDossierKBI reply (issue 24,
//! item 3): the fuzzer's bytes are planted as the name of an unknown element and as an
//! attribute on the reply, `Repliek` and `Personalia` of an otherwise valid reply, then imported.
//! Never panics, bounded time; neither errors nor report quote an INSZ; and a name or attribute
//! that is not UTF-8 is never imported.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kbi_import::codes::Codes;
use kbi_import::{import, ImportOptions};
use libfuzzer_sys::fuzz_target;

const WEB_NS: &str = "http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be";

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("kbi-fuzz-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

fn codes() -> &'static Codes {
    static CODES: OnceLock<Codes> = OnceLock::new();
    CODES.get_or_init(Codes::shipped)
}

fuzz_target!(|data: &[u8]| {
    // name \0 attribute name \0 attribute value
    let mut parts = data.splitn(3, |&b| b == 0);
    let name = parts.next().unwrap_or_default();
    let key = parts.next().unwrap_or(b"a");
    let value = parts.next().unwrap_or_default();
    let attribute = [b" ", key, b"=\"", value, b"\""].concat();
    let mut xml = Vec::new();
    xml.extend_from_slice(b"<web:GeefDossierKBIResponse xmlns:web=\"");
    xml.extend_from_slice(WEB_NS.as_bytes());
    xml.extend_from_slice(b"\"");
    xml.extend_from_slice(&attribute);
    xml.extend_from_slice(b"><Repliek");
    xml.extend_from_slice(&attribute);
    xml.extend_from_slice(b"><Context><Naam>GeefDossierKBI</Naam><Versie>01.00.0000</Versie></Context><Antwoorden><Antwoord><Inhoud><KBIDossier><Personalia");
    xml.extend_from_slice(&attribute);
    xml.extend_from_slice(b"><");
    xml.extend_from_slice(name);
    xml.extend_from_slice(b">x</");
    xml.extend_from_slice(name);
    xml.extend_from_slice(b"><INSZ>88021412358</INSZ></Personalia><Doelgroep><Code>JA</Code><Type>PLICHT</Type><Periode><Begin>2022-01-03</Begin></Periode></Doelgroep></KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>");
    let input = scratch().join("input.xml");
    let out = scratch().join("out.jsonl");
    std::fs::write(&input, &xml).expect("write input");
    let _ = std::fs::remove_file(&out);
    let options = ImportOptions {
        inputs: vec![input],
        out: out.clone(),
        snapshot_id: "fuzz".to_string(),
        extracted_at: chrono::DateTime::UNIX_EPOCH,
        employment_service: None,
        codes: codes().clone(),
    };
    let outcome = kbi_advice_fuzz::timed("kbi dossier names", true, || {
        import(&options, &kbi_core::io::Silent)
    });
    match outcome {
        Ok(report) => {
            kbi_advice_fuzz::assert_no_insz(&xml, &report.render());
            for error in &report.errors {
                kbi_advice_fuzz::assert_no_insz(&xml, &error.to_string());
            }
            if report.ok {
                assert!(
                    std::str::from_utf8(name).is_ok()
                        && std::str::from_utf8(key).is_ok()
                        && std::str::from_utf8(value).is_ok(),
                    "a name or attribute that is not UTF-8 was imported"
                );
            }
            assert_eq!(report.ok, out.exists());
        }
        Err(error) => kbi_advice_fuzz::assert_no_insz(&xml, &error.to_string()),
    }
});
