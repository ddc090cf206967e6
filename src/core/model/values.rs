//! Small value types shared by record kinds: pseudonymous person ids, year-months, money.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A keyed pseudonym for a person (128 bits), never reversible without the city's key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub [u8; 16]);

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pid({})", hex::encode(self.0))
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for Pid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| format!("pid must be 32 hex digits, got {s:?}"))?;
        Ok(Pid(out))
    }
}

impl Serialize for Pid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            Ok(Pid(<[u8; 16]>::deserialize(d)?))
        }
    }
}

/// The key epoch a record's pid was made under when no epoch is written down: the epoch
/// of every record stored before epochs were stamped on all person records, and of a
/// city that never rotated its key.
pub const DEFAULT_PID_EPOCH: u16 = 1;

/// The key epoch of a person record's pid (all person kinds but `job_seeker`, which has
/// always carried a plain `pid_epoch`).
///
/// In JSON it is a number, `1` when absent. In the binary encoding it takes **no bytes**
/// inside its record: the record's kind tag carries it instead (see
/// [`super::kinds::RecordData`]), so a record at the default epoch encodes, and hashes,
/// exactly as the same record did before the field existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PidEpoch(pub u16);

impl Default for PidEpoch {
    fn default() -> Self {
        PidEpoch(DEFAULT_PID_EPOCH)
    }
}

impl PidEpoch {
    /// True at [`DEFAULT_PID_EPOCH`].
    pub fn is_default(self) -> bool {
        self.0 == DEFAULT_PID_EPOCH
    }
}

impl Serialize for PidEpoch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_u16(self.0)
        } else {
            s.serialize_unit()
        }
    }
}

impl<'de> Deserialize<'de> for PidEpoch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            Ok(PidEpoch(u16::deserialize(d)?))
        } else {
            <()>::deserialize(d)?;
            Ok(PidEpoch::default())
        }
    }
}

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    /// Year, 1900–2100.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for YearMonth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected a month as YYYY-MM, got {s:?}");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: u16 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        if !(1900..=2100).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(YearMonth { year, month })
    }
}

impl Serialize for YearMonth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            (self.year, self.month).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for YearMonth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            let (year, month) = <(u16, u8)>::deserialize(d)?;
            Ok(YearMonth { year, month })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_month_parses_strictly() {
        assert_eq!(
            "1999-07".parse::<YearMonth>().unwrap().to_string(),
            "1999-07"
        );
        assert!("1999-13".parse::<YearMonth>().is_err());
        assert!("1999-7".parse::<YearMonth>().is_err());
        assert!("99-07".parse::<YearMonth>().is_err());
    }

    #[test]
    fn pid_is_hex_in_json() {
        let pid = Pid([0xab; 16]);
        let json = serde_json::to_string(&pid).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(16)));
        assert_eq!(serde_json::from_str::<Pid>(&json).unwrap(), pid);
        assert!(serde_json::from_str::<Pid>("\"abc\"").is_err());
    }
}
