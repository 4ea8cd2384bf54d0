//! Who a user is in the organisation: roles and the parsed names the API accepts.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user's role. Every permission check matches on this exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Rep,
    Manager,
    Presales,
    Finance,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Rep,
        Role::Manager,
        Role::Presales,
        Role::Finance,
        Role::Supervisor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Rep => "rep",
            Role::Manager => "manager",
            Role::Presales => "presales",
            Role::Finance => "finance",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role `{0}` (expected one of rep, manager, presales, finance, supervisor, admin)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A login name: 3–64 characters of ASCII letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Username(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a username is 3-64 characters of letters, digits, '.', '_' or '-'")]
pub struct InvalidUsername;

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidUsername> {
        let s = raw.trim();
        let ok_len = (3..=64).contains(&s.len());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok_len && ok_chars {
            Ok(Username(s.to_ascii_lowercase()))
        } else {
            Err(InvalidUsername)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("boss".parse::<Role>().is_err());
    }

    #[test]
    fn usernames_are_normalised_and_bounded() {
        assert_eq!(
            Username::parse(" Rep1 ").map(|u| u.0),
            Ok("rep1".to_owned())
        );
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("rep one").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
    }
}
