//! What the client registry needs from an X.509 certificate: its SHA-256 fingerprint and its
//! subject's attributes.
//!
//! The subject is read with a minimal, bounds-checked DER walk instead of a full X.509 crate:
//! the certificate has already been verified by rustls against the client CA bundle when it
//! reaches this code, and only `tbsCertificate.subject` is needed. Every step is total: any
//! input that does not have the expected shape gives `None`, never a panic.

use sha2::{Digest, Sha256};

/// SHA-256 over the certificate's DER bytes (what `openssl x509 -fingerprint -sha256` prints).
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// The fingerprint as lowercase hex without separators.
pub fn fingerprint_hex(der: &[u8]) -> String {
    hex::encode(fingerprint(der))
}

/// Parses a fingerprint written as 64 hex digits, optionally separated by `:` or spaces
/// (`AB:CD:…`, as openssl prints it).
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let digits: String = text.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let bytes = hex::decode(digits).ok()?;
    bytes.try_into().ok()
}

/// One attribute of a distinguished name, with its short name (`CN`, `O`, …) or, for
/// attributes without one here, its dotted OID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attribute {
    /// Upper-case short name or dotted OID.
    pub name: String,
    pub value: String,
}

/// The subject attributes of a DER certificate, in certificate order; `None` if the bytes are
/// not a certificate this walk understands.
pub fn subject(der: &[u8]) -> Option<Vec<Attribute>> {
    let cert = Der::new(der).expect_into(SEQUENCE)?;
    let mut tbs = Der::new(Der::new(cert).expect_into(SEQUENCE)?);
    // [0] EXPLICIT version, optional.
    if tbs.peek_tag() == Some(0xa0) {
        tbs.skip()?;
    }
    tbs.expect_into(INTEGER)?; // serialNumber
    tbs.expect_into(SEQUENCE)?; // signature algorithm
    tbs.expect_into(SEQUENCE)?; // issuer
    tbs.expect_into(SEQUENCE)?; // validity
    let subject = tbs.expect_into(SEQUENCE)?;
    let mut rdns = Der::new(subject);
    let mut out = Vec::new();
    while !rdns.is_empty() {
        let set = rdns.expect_into(SET)?;
        let mut set = Der::new(set);
        while !set.is_empty() {
            let atv = set.expect_into(SEQUENCE)?;
            let mut atv = Der::new(atv);
            let oid = atv.expect_into(OID)?;
            let (tag, value) = atv.any()?;
            out.push(Attribute {
                name: attribute_name(oid)?,
                value: string_value(tag, value)?,
            });
        }
    }
    Some(out)
}

const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// A cursor over DER bytes.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Der { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element: its tag and content.
    fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers do not occur where we look
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (len_bytes, after) = rest.split_at(count);
            rest = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (content, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, content))
    }

    fn skip(&mut self) -> Option<()> {
        self.any().map(|_| ())
    }

    /// The next element's content if it has tag `tag`.
    fn expect_into(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (found, content) = self.any()?;
        (found == tag).then_some(content)
    }
}

/// Dotted text of a DER OID body.
fn oid_text(body: &[u8]) -> Option<String> {
    let (&first, rest) = body.split_first()?;
    let mut parts = vec![u64::from(first / 40).min(2), 0];
    parts[1] = u64::from(first) - parts[0] * 40;
    let mut value: u64 = 0;
    for &byte in rest {
        value = value.checked_mul(128)? | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            parts.push(value);
            value = 0;
        }
    }
    let text: Vec<String> = parts.iter().map(u64::to_string).collect();
    Some(text.join("."))
}

/// Short names of the attributes that occur in client certificate subjects.
const NAMES: [(&str, &str); 11] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.97", "ORGANIZATIONIDENTIFIER"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "EMAILADDRESS"),
];

fn attribute_name(oid: &[u8]) -> Option<String> {
    let dotted = oid_text(oid)?;
    Some(
        NAMES
            .iter()
            .find(|(o, _)| *o == dotted)
            .map_or(dotted, |(_, name)| (*name).to_owned()),
    )
}

/// The short name for a name or dotted OID written in configuration (case-insensitive).
pub fn canonical_attribute_name(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    if NAMES.iter().any(|(_, n)| *n == upper) {
        return Some(upper);
    }
    if !upper.is_empty() && upper.split('.').all(|p| p.parse::<u64>().is_ok()) {
        return Some(
            NAMES
                .iter()
                .find(|(o, _)| *o == upper)
                .map_or(upper.clone(), |(_, n)| (*n).to_owned()),
        );
    }
    None
}

fn string_value(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, NumericString, PrintableString, IA5String, VisibleString
        0x0c | 0x12 | 0x13 | 0x16 | 0x1a => String::from_utf8(bytes.to_vec()).ok(),
        // TeletexString: in practice Latin-1
        0x14 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE
        0x1e if bytes.len() % 2 == 0 => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// A subject as written in `clients.toml`: `CN=name, O=organisation` — attributes separated by
/// commas (`\,` for a comma inside a value), compared as a set (order does not matter, values are
/// case-sensitive, names are not).
pub fn parse_subject(text: &str) -> Result<Vec<Attribute>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => current.push(next),
                None => return Err("ends with a lone backslash".into()),
            },
            ',' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    let mut out = Vec::new();
    for (index, part) in parts.into_iter().enumerate() {
        let Some((name, value)) = part.split_once('=') else {
            return Err("a part is not NAME=value".into());
        };
        let name =
            canonical_attribute_name(name).ok_or_else(|| "unknown attribute name".to_string())?;
        let value = value.trim();
        if value.is_empty() {
            // By position: the name may be a numeric OID, and messages quote nothing.
            return Err(format!("attribute #{} has an empty value", index + 1));
        }
        out.push(Attribute {
            name,
            value: value.to_owned(),
        });
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_openssl_and_plain_form() {
        let plain = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&plain), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&colons), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("abcd"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn subjects_parse_as_sets() {
        let a = parse_subject("CN=demo.kbi-advice, O=Demo\\, Inc").unwrap();
        let b = parse_subject("o=Demo\\, Inc,cn=demo.kbi-advice").unwrap();
        assert_eq!(a, b);
        assert_eq!(a[1].value, "Demo, Inc");
        assert!(parse_subject("CN").is_err());
        assert!(parse_subject("XX=1").is_err());
        assert!(parse_subject("2.5.4.3=x").unwrap()[0].name == "CN");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(subject(b""), None);
        assert_eq!(subject(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(subject(&[0x30, 0x03, 0x30, 0x01]), None);
    }

    #[test]
    fn oids() {
        assert_eq!(oid_text(&[0x55, 0x04, 0x03]).unwrap(), "2.5.4.3");
        assert_eq!(
            oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).unwrap(),
            "1.2.840.113549.1.9.1"
        );
    }
}
