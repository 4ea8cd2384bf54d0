//! Customers and their contacts: the parsed values the API accepts.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How senior a contact is in the customer's organisation; lead assignment weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seniority {
    /// Owner, chairman, general manager (老板 / 总经理).
    Executive,
    /// Director, vice president (总监 / 副总).
    Director,
    /// Department or plant manager (经理 / 厂长).
    Manager,
    /// Engineer, buyer, clerk (工程师 / 采购员).
    Staff,
    Unknown,
}

impl Seniority {
    pub const ALL: [Seniority; 5] = [
        Seniority::Executive,
        Seniority::Director,
        Seniority::Manager,
        Seniority::Staff,
        Seniority::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Seniority::Executive => "executive",
            Seniority::Director => "director",
            Seniority::Manager => "manager",
            Seniority::Staff => "staff",
            Seniority::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Seniority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown seniority `{0}` (expected executive, director, manager, staff or unknown)")]
pub struct UnknownSeniority(pub String);

impl FromStr for Seniority {
    type Err = UnknownSeniority;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Seniority::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownSeniority(s.to_owned()))
    }
}

/// Money in fen (1/100 CNY). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Fen(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an amount in fen must be between 0 and 10^15")]
pub struct InvalidFen;

impl Fen {
    pub const MAX: i64 = 1_000_000_000_000_000;

    pub fn new(fen: i64) -> Result<Self, InvalidFen> {
        if (0..=Self::MAX).contains(&fen) {
            Ok(Fen(fen))
        } else {
            Err(InvalidFen)
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Fen {
    type Error = InvalidFen;
    fn try_from(v: i64) -> Result<Self, InvalidFen> {
        Fen::new(v)
    }
}

impl From<Fen> for i64 {
    fn from(f: Fen) -> i64 {
        f.0
    }
}

/// A non-empty display name (customer, contact, site), trimmed, at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Name(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a name is 1-200 characters and not blank")]
pub struct InvalidName;

impl Name {
    pub fn parse(raw: &str) -> Result<Self, InvalidName> {
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
            return Err(InvalidName);
        }
        Ok(Name(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_refuses_negative_and_absurd_amounts() {
        assert!(Fen::new(-1).is_err());
        assert!(Fen::new(Fen::MAX + 1).is_err());
        assert_eq!(Fen::new(80_000_000).map(Fen::get), Ok(80_000_000));
    }

    #[test]
    fn names_are_trimmed_and_not_blank() {
        assert_eq!(
            Name::parse("  杭州某机械有限公司 ").map(Name::into_string),
            Ok("杭州某机械有限公司".into())
        );
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse("a\u{0}b").is_err());
    }

    #[test]
    fn seniority_round_trips() {
        for s in Seniority::ALL {
            assert_eq!(s.as_str().parse::<Seniority>(), Ok(s));
        }
    }
}
