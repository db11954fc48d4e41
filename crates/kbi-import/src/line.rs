//! The snapshot lines a dossier import writes (`snapshot-format.md`): the header (M23's `facts`
//! and `sources`) and one line per person, and the output file compressed as its name says.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use kbi_core::domain::event::{Event, EventKind};
use kbi_core::domain::Insz;

use crate::mapping;

/// Writes `YYYY-MM-DD`.
fn push_date(out: &mut Vec<u8>, date: NaiveDate) {
    let y = date.year().clamp(0, 9999) as u32;
    let (m, d) = (date.month(), date.day());
    out.extend_from_slice(&[
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b'-',
        b'0' + (d / 10) as u8,
        b'0' + (d % 10) as u8,
    ]);
}

/// Appends one person line of `snapshot-format.md`.
pub fn write_person_line(out: &mut Vec<u8>, insz: Insz, events: &[Event]) {
    out.extend_from_slice(b"{\"insz\": \"");
    out.extend_from_slice(insz.to_string().as_bytes());
    out.extend_from_slice(b"\", \"events\": [");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(b"{\"date\": \"");
        push_date(out, e.date);
        out.extend_from_slice(b"\", \"type\": \"");
        out.extend_from_slice(e.kind.type_name().as_bytes());
        out.push(b'"');
        match e.kind {
            EventKind::ObligationStart { region } => {
                out.extend_from_slice(b", \"region\": \"");
                out.extend_from_slice(region.code().as_bytes());
                out.push(b'"');
            }
            EventKind::ObligationEnd { cause: Some(c) } => {
                out.extend_from_slice(b", \"cause\": \"");
                out.extend_from_slice(end_cause(c).as_bytes());
                out.push(b'"');
            }
            EventKind::Exemption { cause: Some(c) } => {
                out.extend_from_slice(b", \"cause\": \"");
                out.extend_from_slice(mapping::exemption_cause_code(c).as_bytes());
                out.push(b'"');
            }
            EventKind::DeadlineExtension { obligation, until } => {
                out.extend_from_slice(b", \"obligation\": \"");
                out.extend_from_slice(obligation.code().as_bytes());
                out.extend_from_slice(b"\", \"until\": \"");
                push_date(out, until);
                out.push(b'"');
            }
            EventKind::Infringement { obligation }
            | EventKind::InfringementClosed { obligation } => {
                out.extend_from_slice(b", \"obligation\": \"");
                out.extend_from_slice(obligation.code().as_bytes());
                out.push(b'"');
            }
            _ => {}
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}\n");
}

fn end_cause(c: kbi_core::domain::event::EndCause) -> &'static str {
    use kbi_core::domain::event::EndCause::*;
    match c {
        Moved => "MOVED",
        Naturalised => "NATURALISED",
        Deceased => "DECEASED",
        Other => "OTHER",
    }
}

/// The header line (M23: `facts`, `sources`).
pub fn header_line(
    snapshot_id: &str,
    extracted_at: DateTime<Utc>,
    persons: u64,
    facts: &[&str],
    sources: serde_json::Value,
) -> String {
    let header = serde_json::json!({"kbi_snapshot": {
        "format": 1,
        "snapshot_id": snapshot_id,
        "extracted_at": extracted_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "persons": persons,
        "facts": facts,
        "sources": sources,
    }});
    format!("{header}\n")
}

/// Writes header and body to `file`, compressed as the output's name says; every error of the
/// encoder's end is seen (no silent finish on drop).
pub(crate) fn write_snapshot(
    out: &Path,
    file: &File,
    header: &[u8],
    body: &mut dyn io::Read,
) -> io::Result<()> {
    let name = out.to_string_lossy();
    let buffered = BufWriter::with_capacity(1 << 20, file);
    let mut body = BufReader::with_capacity(1 << 20, body);
    if name.ends_with(".gz") {
        let mut w = flate2::write::GzEncoder::new(buffered, flate2::Compression::fast());
        w.write_all(header)?;
        io::copy(&mut body, &mut w)?;
        w.finish()?.flush()
    } else if name.ends_with(".zst") {
        let mut w = zstd::stream::write::Encoder::new(buffered, 3)?;
        w.write_all(header)?;
        io::copy(&mut body, &mut w)?;
        w.finish()?.flush()
    } else {
        let mut w = buffered;
        w.write_all(header)?;
        io::copy(&mut body, &mut w)?;
        w.flush()
    }
}
