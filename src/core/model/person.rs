//! Citizen IDs (GB 11643-1999) and the keyed pseudonyms that replace them.
//!
//! An 18-digit ID embeds the county, birth date and sex, so inside one county there are
//! only ~10^7 candidates: an unkeyed hash would be reversible by brute force. The pid is
//! therefore keyed with a secret that only the city holds, and the raw ID never leaves
//! the ingest path.

use chrono::NaiveDate;

use super::values::Pid;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// Why a citizen ID is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CitizenIdError {
    /// Not 15 or 18 characters of the right shape.
    #[error("citizen ID must be 18 characters (17 digits and a check digit or X) or 15 digits")]
    Format,
    /// The address code names no province.
    #[error("citizen ID address code {0} names no province")]
    Address(String),
    /// The embedded birth date does not exist.
    #[error("citizen ID birth date {0} is not a valid date")]
    BirthDate(String),
    /// The MOD 11-2 check character does not match.
    #[error("citizen ID check digit is {found}, expected {expected}")]
    CheckDigit {
        /// Check character in the ID.
        found: char,
        /// Check character computed from the first 17 digits.
        expected: char,
    },
}

/// The ISO 7064 MOD 11-2 check character of the first 17 digits.
pub fn check_char(first17: &[u8]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    char::from(CHECK_CHARS[(sum % 11) as usize])
}

/// Validates a citizen ID and returns its canonical 18-character form (upper-case X).
///
/// 15-digit legacy IDs (GB 11643-1989) are widened by inserting the century `19` and
/// computing the check character.
pub fn normalise(raw: &str) -> Result<String, CitizenIdError> {
    let id = raw.trim().to_ascii_uppercase();
    let bytes = id.as_bytes();
    let canonical = match bytes.len() {
        15 if bytes.iter().all(u8::is_ascii_digit) => {
            let mut first17 = Vec::with_capacity(17);
            first17.extend_from_slice(&bytes[..6]);
            first17.extend_from_slice(b"19");
            first17.extend_from_slice(&bytes[6..]);
            let check = check_char(&first17);
            let mut s = String::from_utf8(first17).map_err(|_| CitizenIdError::Format)?;
            s.push(check);
            s
        }
        18 if bytes[..17].iter().all(u8::is_ascii_digit)
            && (bytes[17].is_ascii_digit() || bytes[17] == b'X') =>
        {
            let expected = check_char(&bytes[..17]);
            let found = char::from(bytes[17]);
            if found != expected {
                return Err(CitizenIdError::CheckDigit { found, expected });
            }
            id
        }
        _ => return Err(CitizenIdError::Format),
    };
    check_address_and_birth(&canonical)?;
    Ok(canonical)
}

fn check_address_and_birth(id: &str) -> Result<(), CitizenIdError> {
    let address = &id[..6];
    let province = address[..2]
        .parse::<u32>()
        .map_err(|_| CitizenIdError::Format)?
        * 10_000;
    if !super::builtin::PROVINCES
        .iter()
        .any(|(p, _, _)| *p == province)
    {
        return Err(CitizenIdError::Address(address.to_string()));
    }
    let birth = &id[6..14];
    NaiveDate::parse_from_str(birth, "%Y%m%d")
        .ok()
        .filter(|d| d.format("%Y").to_string().as_str() >= "1900")
        .map(|_| ())
        .ok_or_else(|| CitizenIdError::BirthDate(birth.to_string()))
}

/// The city's pseudonymisation key for one epoch.
#[derive(Clone)]
pub struct Pseudonymiser {
    key: [u8; 32],
    epoch: u16,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Pseudonymiser")
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl Pseudonymiser {
    /// A pseudonymiser with a 32-byte secret key.
    pub fn new(key: [u8; 32], epoch: u16) -> Self {
        Pseudonymiser { key, epoch }
    }

    /// The key epoch stamped on every pid this produces.
    pub fn epoch(&self) -> u16 {
        self.epoch
    }

    /// The pid of a canonical (already normalised) citizen ID.
    pub fn pid(&self, canonical_id: &str) -> Pid {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(b"CN-ID-v1|");
        h.update(canonical_id.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        Pid(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a valid ID from 17 digits.
    fn with_check(first17: &str) -> String {
        format!("{first17}{}", check_char(first17.as_bytes()))
    }

    #[test]
    fn accepts_valid_ids_and_upper_cases_x() {
        // The example ID from the standard's explanatory notes.
        assert_eq!(
            normalise("11010519491231002x").unwrap(),
            "11010519491231002X"
        );
        let id = with_check("44010619850317123");
        assert_eq!(normalise(&id).unwrap(), id);
    }

    #[test]
    fn rejects_bad_check_digit() {
        let mut id = with_check("44010619850317123");
        let last = id.pop().unwrap();
        id.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            normalise(&id),
            Err(CitizenIdError::CheckDigit { .. })
        ));
    }

    #[test]
    fn rejects_bad_shape_date_and_address() {
        assert_eq!(normalise("1234"), Err(CitizenIdError::Format));
        assert!(matches!(
            normalise(&with_check("44010619851332123")),
            Err(CitizenIdError::BirthDate(_))
        ));
        assert!(matches!(
            normalise(&with_check("99010619850317123")),
            Err(CitizenIdError::Address(_))
        ));
    }

    #[test]
    fn widens_fifteen_digit_ids() {
        let wide = normalise("440106850317123").unwrap();
        assert_eq!(&wide[..17], "44010619850317123");
        assert_eq!(normalise(&wide).unwrap(), wide);
    }

    #[test]
    fn pids_are_keyed_and_stable() {
        let a = Pseudonymiser::new([1; 32], 1);
        let b = Pseudonymiser::new([2; 32], 1);
        let id = normalise("11010519491231002X").unwrap();
        assert_eq!(a.pid(&id), a.pid(&id));
        assert_ne!(
            a.pid(&id),
            b.pid(&id),
            "a different key gives a different pid"
        );
        assert!(
            !format!("{a:?}").contains("1, 1"),
            "the key is never printed"
        );
    }
}
