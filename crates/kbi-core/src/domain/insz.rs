//! The INSZ (identificatienummer van de sociale zekerheid): the national register number or, for
//! persons not in the national register, the bis number of the Crossroads Bank for Social Security.
//!
//! The type is parsed once at the border; everything behind it holds an [`Insz`] that is known to
//! be well formed, so the core never sees an unchecked string.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

/// A validated INSZ, held as its 11-digit value.
///
/// Ordering follows the numeric value, which is also the order of the 11-digit text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Insz(u64);

/// Why a text is not an INSZ. Deliberately never carries the input: an INSZ, even a mistyped one,
/// must not travel into logs or error texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InszError {
    #[error("INSZ contains a character other than digits, spaces, dots or dashes")]
    InvalidCharacter,
    #[error("INSZ must have exactly 11 digits, found {0}")]
    WrongLength(usize),
    #[error("INSZ check digits do not match")]
    CheckDigits,
    #[error("INSZ birth month {0:02} is not a valid (bis) month")]
    InvalidMonth(u8),
    #[error("INSZ birth date does not exist")]
    InvalidBirthDate,
}

impl InszError {
    /// The exception code of the interface catalogue.
    pub const CODE: u16 = 30001;
}

/// The kind of number, read from the month digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InszKind {
    /// National register number (month 00–12).
    NationalRegister,
    /// Bis number assigned while the sex was unknown (month + 20).
    BisSexUnknown,
    /// Bis number assigned with the sex known (month + 40).
    BisSexKnown,
}

impl Insz {
    /// Parses the usual written forms: 11 digits, optionally separated by spaces, dots or dashes
    /// (`85.07.30-033.28`).
    pub fn parse(text: &str) -> Result<Self, InszError> {
        let mut value: u64 = 0;
        let mut digits = 0usize;
        for byte in text.bytes() {
            match byte {
                b'0'..=b'9' => {
                    digits += 1;
                    if digits <= 11 {
                        value = value * 10 + u64::from(byte - b'0');
                    }
                }
                b' ' | b'.' | b'-' => {}
                _ => return Err(InszError::InvalidCharacter),
            }
        }
        if digits != 11 {
            return Err(InszError::WrongLength(digits));
        }
        Self::from_digits(value)
    }

    /// Validates an 11-digit value (check digits, month range, existing birth date).
    pub fn from_digits(value: u64) -> Result<Self, InszError> {
        if value > 99_999_999_999 {
            return Err(InszError::WrongLength(12));
        }
        let body = value / 100;
        let check = value % 100;
        // 97 − (body mod 97); for births from 2000 on, the body is prefixed with a 2.
        let born_1900s = 97 - body % 97 == check;
        let born_2000s = 97 - (2_000_000_000 + body) % 97 == check;
        let century = match (born_1900s, born_2000s) {
            (true, _) => 1900,
            (false, true) => 2000,
            (false, false) => return Err(InszError::CheckDigits),
        };
        let year_in_century = (body / 10_000_000) as i32;
        let raw_month = ((body / 100_000) % 100) as u8;
        let day = ((body / 1_000) % 100) as u32;
        let month = match raw_month {
            0..=12 => raw_month,
            20..=32 => raw_month - 20,
            40..=52 => raw_month - 40,
            _ => return Err(InszError::InvalidMonth(raw_month)),
        };
        if day > 31 {
            return Err(InszError::InvalidBirthDate);
        }
        if month != 0
            && day != 0
            && NaiveDate::from_ymd_opt(century + year_in_century, u32::from(month), day).is_none()
        {
            return Err(InszError::InvalidBirthDate);
        }
        Ok(Insz(value))
    }

    /// The 11-digit value.
    pub fn value(self) -> u64 {
        self.0
    }

    pub fn kind(self) -> InszKind {
        match (self.0 / 10_000_000) % 100 {
            20..=32 => InszKind::BisSexUnknown,
            40..=52 => InszKind::BisSexKnown,
            _ => InszKind::NationalRegister,
        }
    }

    /// The 11 digits as text, without allocation.
    pub fn digits(self) -> [u8; 11] {
        let mut out = [b'0'; 11];
        let mut rest = self.0;
        for slot in out.iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out
    }
}

impl fmt::Display for Insz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:011}", self.0)
    }
}

/// Debug output is masked so that a stray `{:?}` in a log line cannot leak a person's number.
impl fmt::Debug for Insz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Insz(***********)")
    }
}

impl FromStr for Insz {
    type Err = InszError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Insz::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn born_before_2000() {
        assert_eq!(Insz::parse("85073003328").unwrap().value(), 85073003328);
    }

    #[test]
    fn written_forms_normalise() {
        for form in ["85.07.30-033.28", "85 07 30 033 28", "850730-033-28"] {
            assert_eq!(Insz::parse(form).unwrap().to_string(), "85073003328");
        }
    }

    #[test]
    fn born_2000_or_later_uses_prefixed_modulo() {
        assert!(Insz::parse("00012556777").is_ok());
        assert!(Insz::parse("17073003384").is_ok());
    }

    #[test]
    fn bis_numbers() {
        assert_eq!(
            Insz::parse("98472899765").unwrap().kind(),
            InszKind::BisSexKnown
        );
        assert_eq!(
            Insz::parse("88222999936").unwrap().kind(),
            InszKind::BisSexUnknown
        );
    }

    #[test]
    fn unknown_birth_parts() {
        assert!(Insz::parse("59000012349").is_ok());
        assert!(Insz::parse("05000010133").is_ok());
    }

    #[test]
    fn rejections_name_the_problem() {
        assert_eq!(Insz::parse("85073003329"), Err(InszError::CheckDigits));
        assert_eq!(Insz::parse("8507300332"), Err(InszError::WrongLength(10)));
        assert_eq!(Insz::parse("85O73003328"), Err(InszError::InvalidCharacter));
        assert_eq!(Insz::parse("85130100102"), Err(InszError::InvalidMonth(13)));
        assert_eq!(Insz::parse("85023000224"), Err(InszError::InvalidBirthDate));
        assert_eq!(Insz::parse("85330100541"), Err(InszError::InvalidMonth(33)));
        assert_eq!(Insz::parse(""), Err(InszError::WrongLength(0)));
    }

    #[test]
    fn debug_output_is_masked() {
        let insz = Insz::parse("85073003328").unwrap();
        assert!(!format!("{insz:?}").contains("85073003328"));
        assert_eq!(std::str::from_utf8(&insz.digits()).unwrap(), "85073003328");
    }
}
