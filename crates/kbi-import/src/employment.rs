//! The employment services' registrations (`--employment-service`, decision A12): a CSV
//! `insz,date`, read whole before the dossiers (it is small: one line per registration).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use chrono::NaiveDate;
use kbi_core::domain::day::parse_date;
use kbi_core::domain::Insz;

use crate::input::open_regular;
use crate::report::{display_path, EmploymentReport, ErrorEntry, Report};
use crate::ImportError;

/// Longest line of the employment-service CSV.
const MAX_CSV_LINE: u64 = 1024;

/// The employment services' registrations, by INSZ value.
pub(crate) fn read_employment_service(
    path: &Path,
    report: &mut Report,
    file_number: u64,
) -> Result<HashMap<u64, Vec<NaiveDate>>, ImportError> {
    let file = open_regular(path, true).map_err(|error| ImportError::Input {
        path: display_path(path),
        error,
    })?;
    let mut reader = BufReader::new(file);
    let mut map: HashMap<u64, Vec<NaiveDate>> = HashMap::new();
    let shown = display_path(path);
    let error = |report: &mut Report, line: u64, message: String| {
        report.error(ErrorEntry {
            file: shown.clone(),
            file_number,
            reply: None,
            row: "CSV".into(),
            path: format!("line {line}"),
            message,
        })
    };
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut lines = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_CSV_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|error| ImportError::Input {
                path: display_path(path),
                error,
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        if n as u64 > MAX_CSV_LINE {
            error(
                report,
                number,
                format!("line longer than {MAX_CSV_LINE} bytes"),
            );
            break;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t.trim_end_matches(['\n', '\r']),
            Err(_) => {
                error(report, number, "not UTF-8".into());
                continue;
            }
        };
        if number == 1 {
            if text.trim_start_matches('\u{feff}') != "insz,date" {
                error(report, 1, "the header must be exactly `insz,date`".into());
                break;
            }
            continue;
        }
        if text.is_empty() {
            continue;
        }
        let Some((insz, date)) = text.split_once(',') else {
            error(report, number, "expected two fields `insz,date`".into());
            continue;
        };
        let insz = match (insz.len() == 11 && insz.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Insz::parse(insz))
        {
            Some(Ok(i)) => i,
            _ => {
                error(report, number, "invalid INSZ".into());
                continue;
            }
        };
        let Ok(date) = parse_date(date) else {
            error(report, number, "invalid date (YYYY-MM-DD)".into());
            continue;
        };
        lines += 1;
        map.entry(insz.value()).or_default().push(date);
    }
    report.employment_service = Some(EmploymentReport {
        lines,
        ..EmploymentReport::default()
    });
    Ok(map)
}
