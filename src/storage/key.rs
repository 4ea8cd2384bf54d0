//! Blob keys: parsed once, so no backend ever sees a key that could climb out of its folder,
//! collide with the folder store's staging area, or mean different things on disk and in S3.

use super::StoreError;
use std::fmt;

/// Longest key accepted; S3 allows 1024 bytes, and file systems limit whole paths too.
const MAX_KEY_LEN: usize = 512;

/// A validated object key such as `originals/ab/cd/abcd….jpg`: only `[a-z0-9/._-]`, 1–512
/// characters, `/`-separated segments that are neither empty nor start with `.` (so no `..`, no
/// leading or trailing `/`, no hidden files).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn parse(raw: impl Into<String>) -> Result<BlobKey, StoreError> {
        let raw = raw.into();
        match key_problem(&raw) {
            None => Ok(BlobKey(raw)),
            Some(reason) => Err(StoreError::InvalidKey { key: raw, reason }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BlobKey {
    type Error = StoreError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        BlobKey::parse(raw)
    }
}

impl AsRef<str> for BlobKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn key_problem(raw: &str) -> Option<&'static str> {
    if raw.is_empty() {
        return Some("empty");
    }
    if raw.len() > MAX_KEY_LEN {
        return Some("longer than 512 characters");
    }
    if let Some(reason) = charset_problem(raw) {
        return Some(reason);
    }
    for segment in raw.split('/') {
        if segment.is_empty() {
            return Some("empty path segment (leading, trailing or double '/')");
        }
        if segment.starts_with('.') {
            return Some("a path segment starts with '.'");
        }
    }
    None
}

fn charset_problem(raw: &str) -> Option<&'static str> {
    if !raw
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-'))
    {
        return Some("only lowercase letters, digits and / . _ - are allowed");
    }
    if raw.contains("..") {
        return Some("contains '..'");
    }
    None
}

/// Check a listing prefix: `""`, or the start of a key (it may end with `/`).
pub fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    let problem = if prefix.starts_with('/') {
        Some("starts with '/'")
    } else if prefix.len() > MAX_KEY_LEN {
        Some("longer than 512 characters")
    } else {
        charset_problem(prefix)
    };
    match problem {
        None => Ok(()),
        Some(reason) => Err(StoreError::InvalidKey {
            key: prefix.to_owned(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_addressed_keys_parse() {
        for ok in [
            "originals/ab/cd/abcdef0123.jpg",
            "thumbs/ab/abcdef_256.webp",
            "a",
            "x-y_z.1/2",
        ] {
            assert!(BlobKey::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn keys_that_could_escape_or_collide_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a/..",
            "a//b",
            "a/",
            ".hidden",
            "a/.tmp",
            "Upper.jpg",
            "space here",
            "a\\b",
            "ü",
            "a~b",
        ] {
            assert!(
                matches!(BlobKey::parse(bad), Err(StoreError::InvalidKey { .. })),
                "{bad:?}"
            );
        }
        assert!(BlobKey::parse("a".repeat(513)).is_err());
    }

    #[test]
    fn prefixes_may_be_empty_or_end_with_a_slash() {
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("originals/").is_ok());
        assert!(validate_prefix("originals/ab").is_ok());
        assert!(validate_prefix("/originals").is_err());
        assert!(validate_prefix("../").is_err());
        assert!(validate_prefix("A").is_err());
    }
}
