//! The integration tests' harness: building SOAP requests, reading replies into a small tree, the
//! public table, and xmllint here; the service started as a black box on free ports ([`server`]),
//! the zeep client ([`zeep`]), the audit-log helpers ([`audit`]) and a throw-away redis-server
//! ([`redis`]).
#![allow(dead_code)] // Each test module uses a different part of this module.

use std::path::{Path, PathBuf};
use std::process::Command;

use quick_xml::events::Event;
use quick_xml::Reader;

pub mod audit;
pub mod redis;
pub mod server;
pub mod zeep;

/// The client id of the shipped development registry, sent as `X-Client-Id` on REST calls.
pub const CLIENT_ID: &str = "demo";

/// An HTTP client that identifies itself as the development client `demo` (REST needs
/// `X-Client-Id` in the development profile).
pub fn http() -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-client-id",
        reqwest::header::HeaderValue::from_static(CLIENT_ID),
    );
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}

/// Writes the demo snapshot under another `snapshot_id` to `path`, atomically (a temporary name,
/// then rename), as operators replace snapshot files.
pub fn write_demo_snapshot_as(path: &Path, snapshot_id: &str) {
    let demo = std::fs::read_to_string(manifest_dir().join("data/demo-snapshot.jsonl")).unwrap();
    let (header, rest) = demo.split_once('\n').unwrap();
    let mut header: serde_json::Value = serde_json::from_str(header).unwrap();
    header["kbi_snapshot"]["snapshot_id"] = serde_json::Value::String(snapshot_id.into());
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, format!("{header}\n{rest}")).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// `GET url` as the development client.
pub fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::blocking::Response> {
    http().get(url).send()
}

pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const TARGET_NS: &str = "urn:kbi-advice:soap:geefadviesinburgeringsplicht:v01_00";

/// A valid request context (`demo` client of the development registry).
pub const CONTEXT: &str = "<Context><Naam>GeefAdviesInburgeringsplicht</Naam><Versie>01.00.0000</Versie><Bericht><Type>VRAAG</Type><Tijdstip><Datum>2026-11-02</Datum><Tijd>09:15:00.000</Tijd></Tijdstip><Afzender><Identificatie>demo.kbi-advice</Identificatie><Referte>req-0001</Referte><Hoedanigheid>9999</Hoedanigheid><Gebruiker>tester</Gebruiker></Afzender></Bericht></Context>";

/// One question to put in a request; `None` leaves the element out.
#[derive(Debug, Clone, Default)]
pub struct Q {
    pub referte: Option<String>,
    pub insz: Option<String>,
    pub date: Option<String>,
    pub year: Option<String>,
}

impl Q {
    pub fn date(referte: &str, insz: &str, date: &str) -> Q {
        Q {
            referte: Some(referte.into()),
            insz: Some(insz.into()),
            date: Some(date.into()),
            year: None,
        }
    }

    pub fn year(referte: &str, insz: &str, year: &str) -> Q {
        Q {
            referte: Some(referte.into()),
            insz: Some(insz.into()),
            date: None,
            year: Some(year.into()),
        }
    }

    fn xml(&self) -> String {
        let leaf = |name: &str, value: &Option<String>| {
            value
                .as_ref()
                .map(|v| format!("<{name}>{}</{name}>", escape(v)))
                .unwrap_or_default()
        };
        format!(
            "<Vraag>{}<Inhoud><Criteria>{}{}{}</Criteria></Inhoud></Vraag>",
            leaf("Referte", &self.referte),
            leaf("INSZ", &self.insz),
            leaf("Referentiedatum", &self.date),
            leaf("Premiejaar", &self.year)
        )
    }
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A request with `context` (the raw `Context` element) and `questions`.
pub fn request_with(context: &str, questions: &[Q]) -> String {
    let vragen: String = questions.iter().map(Q::xml).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"{SOAP_NS}\" xmlns:geef=\"{TARGET_NS}\">\n  <soapenv:Header/>\n  <soapenv:Body>\n    <geef:GeefAdviesInburgeringsplicht>\n      <Verzoek>{context}<Vragen>{vragen}</Vragen></Verzoek>\n    </geef:GeefAdviesInburgeringsplicht>\n  </soapenv:Body>\n</soapenv:Envelope>\n"
    )
}

pub fn request(questions: &[Q]) -> String {
    request_with(CONTEXT, questions)
}

/// An element of a parsed reply: local name, text, children.
#[derive(Debug, Clone, Default)]
pub struct El {
    pub name: String,
    pub text: String,
    pub children: Vec<El>,
}

impl El {
    pub fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at a `/`-separated path of local names.
    pub fn at(&self, path: &str) -> Option<&El> {
        path.split('/').try_fold(self, |el, name| el.child(name))
    }

    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path).map(|el| el.text.as_str())
    }

    /// Names of the children, in order.
    pub fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Parses a reply into a tree of local names (panics on malformed XML: a test failure).
pub fn parse_xml(bytes: &[u8]) -> El {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().expand_empty_elements = true;
    let mut stack = vec![El::default()];
    loop {
        match reader.read_event().expect("reply is well-formed XML") {
            Event::Start(start) => stack.push(El {
                name: String::from_utf8(start.local_name().as_ref().to_vec()).unwrap(),
                ..El::default()
            }),
            Event::End(_) => {
                let el = stack.pop().unwrap();
                stack.last_mut().expect("balanced").children.push(el);
            }
            Event::Text(text) => {
                let text = text.unescape().expect("reply text unescapes");
                stack.last_mut().unwrap().text.push_str(text.trim());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "reply is balanced");
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.remove(0)
}

/// Whether `bytes` is well-formed XML (for property tests that must not panic in the check).
pub fn well_formed(bytes: &[u8]) -> bool {
    let mut reader = Reader::from_reader(bytes);
    let mut depth = 0i64;
    let mut roots = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Empty(_)) if depth == 0 => roots += 1,
            Ok(Event::Text(text)) => {
                if text.unescape().is_err() {
                    return false;
                }
            }
            Ok(Event::Eof) => return depth == 0 && roots == 1,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// The `Repliek` of a reply, or panics naming what came instead.
pub fn repliek(body: &[u8]) -> El {
    let envelope = parse_xml(body);
    assert_eq!(envelope.name, "Envelope");
    let body_el = envelope.child("Body").expect("Body");
    let response = body_el
        .child("GeefAdviesInburgeringsplichtResponse")
        .unwrap_or_else(|| panic!("expected a reply, got {}", String::from_utf8_lossy(body)));
    response.child("Repliek").expect("Repliek").clone()
}

/// `(faultcode, faultstring)` of a Fault, or panics.
pub fn fault(body: &[u8]) -> (String, String) {
    let envelope = parse_xml(body);
    let fault = envelope
        .at("Body/Fault")
        .unwrap_or_else(|| panic!("expected a Fault, got {}", String::from_utf8_lossy(body)));
    (
        fault.text_at("faultcode").expect("faultcode").to_string(),
        fault
            .text_at("faultstring")
            .expect("faultstring")
            .to_string(),
    )
}

/// One row of `public-expected.csv`.
#[derive(Debug, Clone)]
pub struct Row {
    pub insz: String,
    pub date: String,
    pub subject: String,
    pub compliant: String,
    pub result: String,
    pub reason: String,
    pub error: String,
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn public_snapshot_path() -> PathBuf {
    manifest_dir().join("tests/fixtures/public-snapshot.jsonl")
}

/// The public table (the file has CRLF line endings).
pub fn public_rows() -> Vec<Row> {
    let text = std::fs::read_to_string(manifest_dir().join("tests/fixtures/public-expected.csv"))
        .expect("tests/fixtures/public-expected.csv");
    let rows: Vec<Row> = text
        .lines()
        .skip(1)
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 7, "malformed expected row {line:?}");
            Row {
                insz: f[0].into(),
                date: f[1].into(),
                subject: f[2].into(),
                compliant: f[3].into(),
                result: f[4].into(),
                reason: f[5].into(),
                error: f[6].into(),
            }
        })
        .collect();
    assert!(rows.len() >= 40, "the public table lost rows");
    rows
}

/// The row as the SOAP answer `antwoord` says it, in the CSV's columns.
pub fn answered_row(antwoord: &El) -> [String; 5] {
    let get = |path: &str| antwoord.text_at(path).unwrap_or("").to_string();
    if antwoord.child("Uitzonderingen").is_some() {
        return [
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            get("Uitzonderingen/Uitzondering/Identificatie"),
        ];
    }
    [
        get("Inhoud/Advies/ValtOnderInburgeringsplicht"),
        get("Inhoud/Advies/VoldoetAanInburgeringsplicht"),
        get("Inhoud/Advies/Resultaat"),
        get("Inhoud/Advies/Reden/Code"),
        String::new(),
    ]
}

pub fn expected_row(row: &Row) -> [String; 5] {
    [
        row.subject.clone(),
        row.compliant.clone(),
        row.result.clone(),
        row.reason.clone(),
        row.error.clone(),
    ]
}

/// The xmllint binary, or a failure naming the setup script.
pub fn xmllint() -> &'static str {
    let found = Command::new("xmllint")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "xmllint not found: run scripts/setup/xmllint.sh (installs Debian libxml2-utils)"
    );
    "xmllint"
}

/// A schema for the SOAP 1.1 envelope whose Body content must validate strictly against our
/// XSD: xmllint validates whole messages with it.
pub fn envelope_schema(dir: &Path) -> PathBuf {
    let xsd = manifest_dir().join("wsdl/GeefAdviesInburgeringsplicht-01.00.xsd");
    let schema = format!(
        r###"<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{SOAP_NS}"
           elementFormDefault="qualified">
  <xs:import namespace="{TARGET_NS}" schemaLocation="{}"/>
  <xs:element name="Envelope">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Header" minOccurs="0">
          <xs:complexType>
            <xs:sequence>
              <xs:any namespace="##other" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
            </xs:sequence>
          </xs:complexType>
        </xs:element>
        <xs:element name="Body">
          <xs:complexType>
            <xs:sequence>
              <xs:any namespace="{TARGET_NS}" processContents="strict"/>
            </xs:sequence>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"###,
        xsd.display()
    );
    let path = dir.join("soap-envelope-with-body.xsd");
    std::fs::write(&path, schema).unwrap();
    path
}

/// Validates `files` with xmllint against `schema`; the error names xmllint's complaints.
pub fn validate(schema: &Path, files: &[PathBuf]) -> Result<(), String> {
    let output = Command::new(xmllint())
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .args(files)
        .output()
        .map_err(|e| format!("xmllint could not run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "xmllint: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A valid one-question request (83040410690 on 2023-01-01, NOK in the public snapshot).
pub fn valid() -> String {
    request(&[Q::date("q-1", "83040410690", "2023-01-01")])
}

/// `(name, body, words the faultstring must contain, faultcode)` for every hostile or broken
/// body the SOAP door must refuse with a Fault.
pub fn hostile_cases() -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let v = valid();
    let body_of = |inner: &str| {
        format!("<s:Envelope xmlns:s=\"{SOAP_NS}\"><s:Body>{inner}</s:Body></s:Envelope>")
    };
    let op = |inner: &str| {
        body_of(&format!(
            "<g:GeefAdviesInburgeringsplicht xmlns:g=\"{TARGET_NS}\">{inner}</g:GeefAdviesInburgeringsplicht>"
        ))
    };
    let billion_laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>{}",
        v.replace("q-1", "&lol3;").replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "")
    );
    let xxe = format!(
        "<!DOCTYPE s [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        v.replace("q-1", "&xxe;")
            .replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "")
    );
    let deep = v.replace(
        "<soapenv:Header/>",
        &format!(
            "<soapenv:Header>{}{}</soapenv:Header>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        ),
    );
    let deep_body = v.replace(
        "<Referte>q-1</Referte>",
        &format!(
            "<Referte>{}</Referte>",
            "<x>".repeat(40) + &"</x>".repeat(40)
        ),
    );
    let many = v.replace(
        "<soapenv:Header/>",
        &format!("<soapenv:Header>{}</soapenv:Header>", "<h/>".repeat(50_001)),
    );
    let mut invalid_utf8 = v.clone().into_bytes();
    let at = v.find("q-1").unwrap();
    invalid_utf8[at] = 0xFF;
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in v.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let criteria = "<Criteria><INSZ>83040410690</INSZ><Referentiedatum>2023-01-01</Referentiedatum></Criteria>";
    vec![
        ("empty body", vec![], "empty", "soap:Client"),
        ("only whitespace", b" \n\t ".to_vec(), "empty", "soap:Client"),
        ("not XML", b"INSZ=83040410690&date=2023-01-01".to_vec(), "", "soap:Client"),
        ("JSON", br#"{"insz":"83040410690"}"#.to_vec(), "", "soap:Client"),
        ("invalid UTF-8", invalid_utf8, "UTF-8", "soap:Client"),
        ("UTF-16", utf16, "UTF-8", "soap:Client"),
        ("declared Latin-1", v.replace("UTF-8", "ISO-8859-1").into_bytes(), "UTF-8", "soap:Client"),
        ("billion laughs", billion_laughs.into_bytes(), "DTD", "soap:Client"),
        ("external entity", xxe.into_bytes(), "DTD", "soap:Client"),
        ("undeclared entity", v.replace("q-1", "&lol;").into_bytes(), "entity", "soap:Client"),
        ("undeclared entity in INSZ", v.replace("83040410690", "&insz;").into_bytes(), "entity", "soap:Client"),
        ("control character reference", v.replace("q-1", "q&#1;").into_bytes(), "character", "soap:Client"),
        ("raw control character", v.replace("q-1", "q\u{1}").into_bytes(), "character", "soap:Client"),
        ("NUL reference", v.replace("q-1", "&#0;").into_bytes(), "", "soap:Client"),
        ("deep nesting in the header", deep.into_bytes(), "deeper than 32", "soap:Client"),
        ("deep nesting in a value", deep_body.into_bytes(), "", "soap:Client"),
        ("too many elements", many.into_bytes(), "more than 50000 elements", "soap:Client"),
        ("unclosed element", v.replace("</Vragen>", "").into_bytes(), "", "soap:Client"),
        ("mismatched end tag", v.replace("</Criteria>", "</Kriteria>").into_bytes(), "well-formed", "soap:Client"),
        ("truncated", v.as_bytes()[..v.len() / 2].to_vec(), "", "soap:Client"),
        ("bad attribute", v.replace("<Verzoek>", "<Verzoek a=b>").into_bytes(), "well-formed", "soap:Client"),
        ("processing instruction", v.replace("<Verzoek>", "<?php echo 1; ?><Verzoek>").into_bytes(), "processing", "soap:Client"),
        ("trailing element", format!("{v}<more/>").into_bytes(), "after the end", "soap:Client"),
        ("trailing text", format!("{v}junk").into_bytes(), "after the end", "soap:Client"),
        ("text before", format!("junk{}", v.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "")).into_bytes(), "", "soap:Client"),
        ("not an envelope", b"<GeefAdviesInburgeringsplicht/>".to_vec(), "not a SOAP message", "soap:Client"),
        ("SOAP 1.2 envelope", v.replace(SOAP_NS, "http://www.w3.org/2003/05/soap-envelope").into_bytes(), "version mismatch", "soap:VersionMismatch"),
        ("unknown prefix", v.replace("<Verzoek>", "<x:Verzoek>").replace("</Verzoek>", "</x:Verzoek>").into_bytes(), "prefix", "soap:Client"),
        ("wrong operation namespace", v.replace(TARGET_NS, "urn:kbi-advice:soap:geefadviesinburgeringsplicht:v02_00").into_bytes(), "GeefAdviesInburgeringsplicht", "soap:Client"),
        ("wrong operation", v.replace("geef:GeefAdviesInburgeringsplicht>", "geef:GeefPersoon>").into_bytes(), "GeefAdviesInburgeringsplicht", "soap:Client"),
        ("two operations", v.replace("</soapenv:Body>", &format!("<g:GeefAdviesInburgeringsplicht xmlns:g=\"{TARGET_NS}\"/></soapenv:Body>")).into_bytes(), "GeefAdviesInburgeringsplicht", "soap:Client"),
        ("qualified inner elements", v.replace("<Verzoek>", &format!("<Verzoek xmlns=\"{TARGET_NS}\">")).into_bytes(), "unqualified", "soap:Client"),
        ("missing Body", format!("<s:Envelope xmlns:s=\"{SOAP_NS}\"><s:Header/></s:Envelope>").into_bytes(), "Body is missing", "soap:Client"),
        ("empty Body", body_of("").into_bytes(), "missing inside Body", "soap:Client"),
        ("Body twice", v.replace("</soapenv:Body>", "</soapenv:Body><soapenv:Body/>").into_bytes(), "", "soap:Client"),
        ("Header after Body", v.replace("</soapenv:Body>", "</soapenv:Body><soapenv:Header/>").into_bytes(), "inside Envelope", "soap:Client"),
        ("missing Verzoek", op("").into_bytes(), "Verzoek is missing", "soap:Client"),
        ("missing Context", op("<Verzoek><Vragen/></Verzoek>").into_bytes(), "missing", "soap:Client"),
        ("missing Vragen", op(&format!("<Verzoek>{CONTEXT}</Verzoek>")).into_bytes(), "Vragen is missing", "soap:Client"),
        ("empty Vragen", op(&format!("<Verzoek>{CONTEXT}<Vragen/></Verzoek>")).into_bytes(), "Vraag is missing", "soap:Client"),
        ("missing Inhoud", op(&format!("<Verzoek>{CONTEXT}<Vragen><Vraag><Referte>q</Referte></Vraag></Vragen></Verzoek>")).into_bytes(), "Inhoud is missing", "soap:Client"),
        ("missing Criteria", op(&format!("<Verzoek>{CONTEXT}<Vragen><Vraag><Referte>q</Referte><Inhoud/></Vraag></Vragen></Verzoek>")).into_bytes(), "Criteria is missing", "soap:Client"),
        ("duplicated Criteria", v.replace(criteria, &criteria.repeat(2)).into_bytes(), "Criteria occurs more than once", "soap:Client"),
        ("duplicated INSZ", v.replace("<INSZ>", "<INSZ>1</INSZ><INSZ>").into_bytes(), "INSZ occurs more than once", "soap:Client"),
        ("duplicated Context", v.replace("</Context>", &format!("</Context>{CONTEXT}")).into_bytes(), "Context occurs more than once", "soap:Client"),
        ("duplicated Vragen", v.replace("</Vragen>", "</Vragen><Vragen/>").into_bytes(), "Vragen occurs more than once", "soap:Client"),
        ("duplicated Referte of a question", v.replace("<Referte>q-1</Referte>", "<Referte>q-1</Referte><Referte>q-2</Referte>").into_bytes(), "Referte occurs more than once", "soap:Client"),
        ("unknown element", v.replace("<Inhoud>", "<Extra/><Inhoud>").into_bytes(), "unexpected element inside Vraag", "soap:Client"),
        ("element inside a value", v.replace("<INSZ>83040410690</INSZ>", "<INSZ><b>83040410690</b></INSZ>").into_bytes(), "inside INSZ", "soap:Client"),
        ("text in a structural element", v.replace("<Inhoud>", "<Inhoud>83040410690").into_bytes(), "unexpected text inside Inhoud", "soap:Client"),
        ("mustUnderstand header", v.replace("<soapenv:Header/>", "<soapenv:Header><w:Security xmlns:w=\"urn:x\" soapenv:mustUnderstand=\"1\"/></soapenv:Header>").into_bytes(), "mustUnderstand", "soap:MustUnderstand"),
        ("a reply sent as a request", v.replace("geef:GeefAdviesInburgeringsplicht>", "geef:GeefAdviesInburgeringsplichtResponse>").into_bytes(), "GeefAdviesInburgeringsplicht", "soap:Client"),
    ]
}

/// A small tmpfs mounted for the life of the value: an audit disk that fills up after a few
/// records. Needs root (the test sandbox and CI run as root); unmounted on drop.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of 64 KiB on a fresh temporary directory.
    pub fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "this test needs to mount a small tmpfs (root in the test sandbox) to fill the audit disk"
        );
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
