//! Calendar days: strict `YYYY-MM-DD` parsing, calendar-month arithmetic, and a compact day
//! number for the compiled index.

use chrono::{Datelike, Days, Months, NaiveDate};

/// Why a text is not a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("date must be written YYYY-MM-DD")]
    Format,
    #[error("date does not exist in the calendar")]
    NonExistent,
}

/// `date` as `YYYY-MM-DD` for years 0 to 9999 (the same text as chrono's `Display` of such a
/// date), written digit by digit: the answers write one or two dates per question, and
/// `Display` goes through the formatting machinery for each field. `None` for other years,
/// which each caller writes as it always has.
pub fn iso_date_bytes(date: NaiveDate) -> Option<[u8; 10]> {
    let year = u32::try_from(date.year())
        .ok()
        .filter(|year| *year <= 9999)?;
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let (month, day) = (date.month(), date.day());
    Some([
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
        b'-',
        digit(day / 10),
        digit(day),
    ])
}

/// Parses exactly `YYYY-MM-DD` (four-digit year, zero-padded month and day).
///
/// chrono's own parser accepts unpadded fields and signs; a register extract or a caller that
/// writes `2022-4-4` has a bug we want to hear about, not paper over.
pub fn parse_date(text: &str) -> Result<NaiveDate, DateError> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(DateError::Format);
    }
    let num = |range: std::ops::Range<usize>| -> Result<u32, DateError> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            if c.is_ascii_digit() {
                Ok(acc * 10 + u32::from(c - b'0'))
            } else {
                Err(DateError::Format)
            }
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if year == 0 {
        return Err(DateError::NonExistent);
    }
    NaiveDate::from_ymd_opt(year as i32, month, day).ok_or(DateError::NonExistent)
}

/// `date` plus a number of calendar months; the day is clamped to the end of a shorter month
/// (31 January + 1 month = 28 or 29 February), as the decree counts months.
pub(crate) fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// `date` plus a number of days, saturating at the end of the calendar.
pub(crate) fn add_days(date: NaiveDate, days: u32) -> NaiveDate {
    date.checked_add_days(Days::new(u64::from(days)))
        .unwrap_or(NaiveDate::MAX)
}

/// The day after `date` (saturating).
pub fn next_day(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(NaiveDate::MAX)
}

/// Compact day number (days since 1 January of year 1) used to pack the compiled index.
pub(crate) fn day_number(date: NaiveDate) -> u32 {
    // Dates come from `parse_date`, so the year is at least 1 and the number is positive.
    u32::try_from(date.num_days_from_ce()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_date_bytes_is_chronos_display_for_four_digit_years() {
        for (y, m, d) in [
            (2026, 1, 1),
            (1, 2, 3),
            (999, 12, 31),
            (9999, 12, 31),
            (0, 1, 1),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            let bytes = iso_date_bytes(date).unwrap();
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), date.to_string());
        }
        for y in [-1, 10000] {
            assert_eq!(
                iso_date_bytes(NaiveDate::from_ymd_opt(y, 1, 1).unwrap()),
                None
            );
        }
    }

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn strict_format() {
        assert_eq!(
            d("2022-04-04"),
            NaiveDate::from_ymd_opt(2022, 4, 4).unwrap()
        );
        for bad in [
            "2022-4-04",
            "22-04-04",
            "2022/04/04",
            "2022-04-04 ",
            "+022-04-04",
            "2022-0a-04",
        ] {
            assert_eq!(parse_date(bad), Err(DateError::Format), "{bad}");
        }
        assert_eq!(parse_date("2023-02-29"), Err(DateError::NonExistent));
        assert_eq!(parse_date("2022-13-01"), Err(DateError::NonExistent));
        assert_eq!(parse_date("0000-01-01"), Err(DateError::NonExistent));
    }

    #[test]
    fn calendar_months_clamp_to_month_end() {
        assert_eq!(add_months(d("2022-11-30"), 3), d("2023-02-28"));
        assert_eq!(add_months(d("2023-11-30"), 3), d("2024-02-29"));
        assert_eq!(add_months(d("2022-01-31"), 1), d("2022-02-28"));
        assert_eq!(add_months(d("2022-04-04"), 3), d("2022-07-04"));
    }

    #[test]
    fn day_numbers_are_ordered() {
        assert!(day_number(d("2022-01-01")) < day_number(d("2022-01-02")));
        assert_eq!(day_number(d("0001-01-01")), 1);
    }
}
