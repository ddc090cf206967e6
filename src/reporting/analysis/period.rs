//! The reporting period: a calendar quarter, written `YYYYQn` (e.g. `2024Q3`).

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar quarter. Ordered by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i32,
    quarter: u8,
    first: NaiveDate,
    last: NaiveDate,
}

/// Why a period cannot be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// Not of the form `YYYYQn`; write e.g. `2024Q3`.
    #[error("period must look like 2024Q3, got {0:?}")]
    Format(String),
    /// The quarter is not 1 to 4.
    #[error("quarter must be 1 to 4, got {0}")]
    Quarter(u8),
    /// The year has not four digits.
    #[error("year must be 1000 to 9999, got {0}")]
    Year(i32),
}

impl Period {
    /// The `quarter` (1–4) of `year` (1000–9999).
    pub fn new(year: i32, quarter: u8) -> Result<Self, PeriodError> {
        if !(1..=4).contains(&quarter) {
            return Err(PeriodError::Quarter(quarter));
        }
        if !(1000..=9999).contains(&year) {
            return Err(PeriodError::Year(year));
        }
        let month = 3 * u32::from(quarter) - 2;
        let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or(PeriodError::Year(year))?;
        let last = first
            .checked_add_months(Months::new(3))
            .and_then(|d| d.pred_opt())
            .ok_or(PeriodError::Year(year))?;
        Ok(Period {
            year,
            quarter,
            first,
            last,
        })
    }

    /// The quarter containing `date`, when its year has four digits.
    pub fn of_date(date: NaiveDate) -> Result<Self, PeriodError> {
        let quarter = u8::try_from(date.month0() / 3 + 1).map_err(|_| PeriodError::Quarter(0))?;
        Period::new(date.year(), quarter)
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The quarter, 1–4.
    pub fn quarter(self) -> u8 {
        self.quarter
    }

    /// The first day of the quarter.
    pub fn first_day(self) -> NaiveDate {
        self.first
    }

    /// The last day of the quarter.
    pub fn last_day(self) -> NaiveDate {
        self.last
    }

    /// The quarter before, unless that falls before the year 1000.
    pub fn previous(self) -> Option<Period> {
        match self.quarter {
            1 => Period::new(self.year - 1, 4).ok(),
            q => Period::new(self.year, q - 1).ok(),
        }
    }

    /// True when `date` falls in the quarter.
    pub fn contains(self, date: NaiveDate) -> bool {
        self.first <= date && date <= self.last
    }

    /// True when the closed span `[from, until]` shares at least one day with the quarter
    /// (`until = None` is open-ended).
    pub fn overlaps(self, from: NaiveDate, until: Option<NaiveDate>) -> bool {
        from <= self.last && until.is_none_or(|u| u >= self.first)
    }

    /// The position (0–2) of `date`'s month within the quarter, if `date` is in it.
    pub fn month_index(self, date: NaiveDate) -> Option<usize> {
        self.contains(date)
            .then(|| usize::try_from(date.month0() % 3).ok())
            .flatten()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}Q{}", self.year, self.quarter)
    }
}

impl FromStr for Period {
    type Err = PeriodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PeriodError::Format(s.to_string());
        let (y, q) = s.split_once(['Q', 'q']).ok_or_else(bad)?;
        if y.len() != 4 || q.len() != 1 || !y.bytes().chain(q.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let quarter: u8 = q.parse().map_err(|_| bad())?;
        Period::new(year, quarter)
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
