//! The geographic scope of a target, a metric set or a report: national, one province
//! (its cities), or one city.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::model::tree::NodeCodeError;
use crate::core::model::{MINISTRY, NodeCode, Tier};

/// National, one province, or one city. Written `national` or as the six-digit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every city.
    National,
    /// The cities of one province (a province-tier code).
    Province(NodeCode),
    /// One city.
    City(NodeCode),
}

/// Why a string names no scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope must be \"national\" or a node code: {0}")]
pub struct ScopeError(#[from] NodeCodeError);

impl Scope {
    /// The scope a node code names: the ministry is national.
    pub fn of(code: NodeCode) -> Scope {
        match code.tier() {
            Tier::Ministry => Scope::National,
            Tier::Province => Scope::Province(code),
            Tier::City => Scope::City(code),
        }
    }

    /// The node code of the scope (the ministry's for national).
    pub fn code(self) -> NodeCode {
        match self {
            Scope::National => MINISTRY,
            Scope::Province(c) | Scope::City(c) => c,
        }
    }

    /// The next wider scope: city → province → national.
    pub fn wider(self) -> Option<Scope> {
        match self {
            Scope::City(c) => c.province().map(Scope::Province),
            Scope::Province(_) => Some(Scope::National),
            Scope::National => None,
        }
    }

    /// This scope and every wider one, most specific first.
    pub fn chain(self) -> impl Iterator<Item = Scope> {
        std::iter::successors(Some(self), |s| s.wider())
    }

    /// True when `city` lies inside this scope.
    pub fn contains(self, city: NodeCode) -> bool {
        city.is_within(self.code())
    }

    /// True when `other` is this scope or lies inside it.
    pub fn covers(self, other: Scope) -> bool {
        other.code().is_within(self.code())
    }

    /// A human label: `national`, or the code and its built-in name when known.
    pub fn label(self) -> String {
        match self {
            Scope::National => "national".to_string(),
            Scope::Province(c) | Scope::City(c) => match c.builtin_name() {
                Some(name) => format!("{c} {name}"),
                None => c.to_string(),
            },
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::National => f.write_str("national"),
            Scope::Province(c) | Scope::City(c) => write!(f, "{c}"),
        }
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "national" {
            return Ok(Scope::National);
        }
        Ok(Scope::of(s.parse()?))
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
