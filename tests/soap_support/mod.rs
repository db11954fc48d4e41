//! Shared by the SOAP tests: building requests, reading replies into a small tree, the public
//! table, and xmllint.
#![allow(dead_code)] // Each test file uses a different part of this module.

use std::path::{Path, PathBuf};
use std::process::Command;

use quick_xml::events::Event;
use quick_xml::Reader;

pub mod zeep;

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
