//! Node identity: GB/T 2260 six-digit division codes and the tier each code implies.
//!
//! A node's place in the tree (ministry, province, city) is derived from its code alone,
//! so authorisation never depends on configuration that could disagree with a certificate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::builtin::PROVINCES;

/// The ministry information centre's code (the national level uses `100000` in GB 32100).
pub const MINISTRY: NodeCode = NodeCode(100_000);

/// A validated six-digit GB/T 2260 code naming a node (or a division).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeCode(u32);

/// The tier of a node in the city → province → ministry tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The ministry information centre (`100000`).
    Ministry,
    /// A province, autonomous region or municipality (`XX0000`).
    Province,
    /// A pilot city: prefecture-level, county-level city or autonomous prefecture.
    City,
}

/// Why a string or number is not a node code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeCodeError {
    /// Not exactly six ASCII digits.
    #[error("node code must be six digits, got {0:?}")]
    Format(String),
    /// The first two digits name no provincial unit.
    #[error("node code {0:06} names no province (first two digits)")]
    UnknownProvince(u32),
    /// The prefecture or county layer is outside the ranges GB/T 2260 uses.
    #[error("node code {0:06} is not a valid GB/T 2260 division code")]
    Layer(u32),
}

impl NodeCode {
    /// Validates a numeric code.
    pub fn new(code: u32) -> Result<Self, NodeCodeError> {
        if !(100_000..=999_999).contains(&code) {
            return Err(NodeCodeError::Format(code.to_string()));
        }
        if code == MINISTRY.0 {
            return Ok(MINISTRY);
        }
        let province = code / 10_000 * 10_000;
        if !PROVINCES.iter().any(|(p, _, _)| *p == province) {
            return Err(NodeCodeError::UnknownProvince(code));
        }
        let prefecture = code / 100 % 100;
        let county = code % 100;
        // Prefecture layer: 01–70 (cities, prefectures, leagues) or 90 (province-administered
        // county-level units); 00 only for the province itself.
        let prefecture_ok = matches!(prefecture, 1..=70 | 90) || (prefecture == 0 && county == 0);
        if !prefecture_ok {
            return Err(NodeCodeError::Layer(code));
        }
        Ok(NodeCode(code))
    }

    /// The numeric code.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The tier this code implies.
    pub fn tier(self) -> Tier {
        if self == MINISTRY {
            Tier::Ministry
        } else if self.0.is_multiple_of(10_000) {
            Tier::Province
        } else {
            Tier::City
        }
    }

    /// The province (`XX0000`) this code belongs to; the ministry belongs to none.
    pub fn province(self) -> Option<NodeCode> {
        match self.tier() {
            Tier::Ministry => None,
            _ => Some(NodeCode(self.0 / 10_000 * 10_000)),
        }
    }

    /// The node's parent in the tree: city → province → ministry.
    pub fn parent(self) -> Option<NodeCode> {
        match self.tier() {
            Tier::Ministry => None,
            Tier::Province => Some(MINISTRY),
            Tier::City => self.province(),
        }
    }

    /// True when `self` is `ancestor` or lies below it in the tree.
    pub fn is_within(self, ancestor: NodeCode) -> bool {
        match ancestor.tier() {
            Tier::Ministry => true,
            Tier::Province => self.province() == Some(ancestor),
            Tier::City => self == ancestor,
        }
    }

    /// True for the four municipalities (province-tier nodes that may own city records).
    pub fn is_municipality(self) -> bool {
        PROVINCES.iter().any(|(p, _, m)| *p == self.0 && *m)
    }

    /// True when `division` (a district, county or the city itself) lies inside this city.
    ///
    /// A prefecture-level city `XXXX00` contains every `XXXXyy`; a county-level city or
    /// a province-administered unit contains only itself.
    pub fn contains_division(self, division: NodeCode) -> bool {
        match self.tier() {
            Tier::Ministry => true,
            Tier::Province => division.province() == Some(self) || division == self,
            Tier::City if self.0.is_multiple_of(100) => division.0 / 100 == self.0 / 100,
            Tier::City => division == self,
        }
    }

    /// A human name from the built-in list, if this code is known.
    pub fn builtin_name(self) -> Option<&'static str> {
        if self == MINISTRY {
            return Some("劳动和社会保障部信息中心");
        }
        PROVINCES
            .iter()
            .find(|(p, _, _)| *p == self.0)
            .map(|(_, n, _)| *n)
            .or_else(|| {
                super::builtin::PILOT_CITIES
                    .iter()
                    .find(|(c, _, _, _)| *c == self.0)
                    .map(|(_, n, _, _)| *n)
            })
    }
}

impl fmt::Display for NodeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Ministry => "ministry",
            Tier::Province => "province",
            Tier::City => "city",
        })
    }
}

impl FromStr for NodeCode {
    type Err = NodeCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NodeCodeError::Format(s.to_string()));
        }
        let n: u32 = s
            .parse()
            .map_err(|_| NodeCodeError::Format(s.to_string()))?;
        NodeCode::new(n)
    }
}

impl Serialize for NodeCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for NodeCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            let n = u32::deserialize(d)?;
            NodeCode::new(n).map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> NodeCode {
        s.parse().unwrap()
    }

    #[test]
    fn tiers_follow_the_code() {
        assert_eq!(code("100000").tier(), Tier::Ministry);
        assert_eq!(code("440000").tier(), Tier::Province);
        assert_eq!(code("440100").tier(), Tier::City);
        assert_eq!(code("320581").tier(), Tier::City);
        assert_eq!(code("429005").tier(), Tier::City);
        assert_eq!(code("222400").tier(), Tier::City);
    }

    #[test]
    fn parents_walk_up_the_tree() {
        assert_eq!(code("440100").parent(), Some(code("440000")));
        assert_eq!(code("440000").parent(), Some(MINISTRY));
        assert_eq!(MINISTRY.parent(), None);
    }

    #[test]
    fn rejects_malformed_and_unknown_codes() {
        assert!(matches!(
            "44010".parse::<NodeCode>(),
            Err(NodeCodeError::Format(_))
        ));
        assert!(matches!(
            "4401a0".parse::<NodeCode>(),
            Err(NodeCodeError::Format(_))
        ));
        assert!(matches!(
            "990100".parse::<NodeCode>(),
            Err(NodeCodeError::UnknownProvince(_))
        ));
        assert!(matches!(
            "448000".parse::<NodeCode>(),
            Err(NodeCodeError::Layer(_))
        ));
        assert!(matches!(
            "440001".parse::<NodeCode>(),
            Err(NodeCodeError::Layer(_))
        ));
    }

    #[test]
    fn subtree_membership() {
        assert!(code("440100").is_within(code("440000")));
        assert!(!code("440100").is_within(code("210000")));
        assert!(code("440100").is_within(MINISTRY));
        assert!(code("440100").contains_division(code("440104")));
        assert!(!code("440100").contains_division(code("440304")));
        assert!(code("320581").contains_division(code("320581")));
        assert!(!code("320581").contains_division(code("320582")));
    }

    #[test]
    fn municipalities_are_province_tier() {
        assert!(code("110000").is_municipality());
        assert!(!code("440000").is_municipality());
    }
}
