//! Belgian civil time for the reply's `Tijdstip`, without a time-zone database.
//!
//! MAGDA messages carry local Belgian time with no offset. The machine's zone cannot be trusted
//! (containers run in UTC) and a tz database is not shipped, but Brussels time follows one fixed
//! rule: CET (UTC+1), and CEST (UTC+2) from 01:00 UTC on the last Sunday of March to 01:00 UTC on
//! the last Sunday of October (EU directive 2000/84/EC, the rule since 1996). Should the EU end
//! the change of clocks, this is the one place to adapt.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};

/// The Brussels wall-clock time at the instant `now`.
pub(crate) fn brussels(now: DateTime<Utc>) -> NaiveDateTime {
    let utc = now.naive_utc();
    let year = utc.year();
    // The clocks change only in March and October: the other months need no date arithmetic
    // (every reply asks).
    let summer = match utc.month() {
        4..=9 => true,
        1 | 2 | 11 | 12 => false,
        _ => match (switch_instant(year, 3), switch_instant(year, 10)) {
            (Some(start), Some(end)) => utc >= start && utc < end,
            // Only outside chrono's year range; winter time is as good a guess as any there.
            _ => false,
        },
    };
    let offset_hours = if summer { 2 } else { 1 };
    utc.checked_add_signed(Duration::hours(offset_hours))
        .unwrap_or(utc)
}

/// 01:00 UTC on the last Sunday of `month` (March or October, both 31 days long).
fn switch_instant(year: i32, month: u32) -> Option<NaiveDateTime> {
    let last_day = NaiveDate::from_ymd_opt(year, month, 31)?;
    let back = last_day.weekday().num_days_from_sunday();
    let sunday = last_day.checked_sub_signed(Duration::days(i64::from(back)))?;
    sunday.and_hms_opt(1, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn hm(t: NaiveDateTime) -> String {
        t.format("%Y-%m-%d %H:%M").to_string()
    }

    #[test]
    fn winter_is_utc_plus_one() {
        assert_eq!(hm(brussels(at(2026, 1, 15, 12, 0))), "2026-01-15 13:00");
        assert_eq!(hm(brussels(at(2026, 12, 31, 23, 30))), "2027-01-01 00:30");
    }

    #[test]
    fn summer_is_utc_plus_two() {
        assert_eq!(hm(brussels(at(2026, 7, 1, 12, 0))), "2026-07-01 14:00");
    }

    #[test]
    fn clocks_change_at_one_utc_on_the_last_sundays() {
        // 2026: last Sunday of March is the 29th, of October the 25th.
        assert_eq!(hm(brussels(at(2026, 3, 29, 0, 59))), "2026-03-29 01:59");
        assert_eq!(hm(brussels(at(2026, 3, 29, 1, 0))), "2026-03-29 03:00");
        assert_eq!(hm(brussels(at(2026, 10, 25, 0, 59))), "2026-10-25 02:59");
        assert_eq!(hm(brussels(at(2026, 10, 25, 1, 0))), "2026-10-25 02:00");
        // 2024: March 31 is itself the last Sunday.
        assert_eq!(hm(brussels(at(2024, 3, 31, 1, 0))), "2024-03-31 03:00");
    }

    #[test]
    fn the_month_shortcut_agrees_with_the_switch_instants_every_hour() {
        // Every hour of a few years, against the rule computed in full.
        let mut t = at(2023, 1, 1, 0, 0);
        while t < at(2028, 1, 1, 0, 0) {
            let utc = t.naive_utc();
            let summer = utc >= switch_instant(utc.year(), 3).unwrap()
                && utc < switch_instant(utc.year(), 10).unwrap();
            let offset = if summer { 2 } else { 1 };
            assert_eq!(brussels(t), utc + Duration::hours(offset), "{t}");
            t += Duration::hours(1);
        }
    }
}
