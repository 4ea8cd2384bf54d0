//! When a photo was taken: EXIF's zone-less local time, its optional offset, GPS UTC time, and
//! the one instant resolved from them (GPS UTC → local + offset → local in the site's zone).

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Where the local capture time was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalTimeSource {
    /// EXIF DateTimeOriginal.
    Exif,
    /// An XMP packet's `exif:DateTimeOriginal` / `photoshop:DateCreated` (EXIF had none).
    Xmp,
}

/// The camera's claim of local wall-clock capture time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LocalTime {
    Missing,
    /// Present but not a real moment (`0000:00:00 00:00:00`, month 13, …); `raw` is kept
    /// for the reviewer, never turned into a number.
    Invalid {
        raw: String,
    },
    Present {
        datetime: PrimitiveDateTime,
        source: LocalTimeSource,
    },
}

/// Everything a file says about its capture time, before any zone is assumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureClaims {
    pub local: LocalTime,
    /// OffsetTimeOriginal (or the XMP time's offset).
    pub offset: Option<UtcOffset>,
    /// SubSecTimeOriginal as milliseconds.
    pub subsec_ms: Option<u16>,
    /// GPSDateStamp + GPSTimeStamp, when both are present and valid.
    #[serde(with = "time::serde::rfc3339::option")]
    pub gps_utc: Option<OffsetDateTime>,
}

/// Which witness fixed the capture instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureSource {
    /// GPS UTC date and time: a satellite clock, independent of the phone's settings.
    Gps,
    /// Local time plus OffsetTimeOriginal.
    Offset,
    /// Local time read in the site's zone: an assumption, flagged as such.
    AssumedZone,
    /// The capture manifest's device clock (used by the checks when EXIF has no time).
    Manifest,
}

impl CaptureSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureSource::Gps => "gps",
            CaptureSource::Offset => "offset",
            CaptureSource::AssumedZone => "assumed_zone",
            CaptureSource::Manifest => "manifest",
        }
    }
}

/// The resolved capture instant, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CaptureTime {
    Missing,
    Invalid {
        raw: String,
    },
    Resolved {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        source: CaptureSource,
    },
}

impl CaptureClaims {
    /// Resolves one UTC instant: GPS UTC, else local + offset, else local in `site_zone`.
    pub fn resolve(&self, site_zone: UtcOffset) -> CaptureTime {
        if let Some(gps) = self.gps_utc {
            return CaptureTime::Resolved {
                at: gps,
                source: CaptureSource::Gps,
            };
        }
        match &self.local {
            LocalTime::Missing => CaptureTime::Missing,
            LocalTime::Invalid { raw } => CaptureTime::Invalid { raw: raw.clone() },
            LocalTime::Present { datetime, .. } => {
                let millis = i64::from(self.subsec_ms.unwrap_or(0));
                let local = *datetime + time::Duration::milliseconds(millis);
                let (offset, source) = match self.offset {
                    Some(o) => (o, CaptureSource::Offset),
                    None => (site_zone, CaptureSource::AssumedZone),
                };
                CaptureTime::Resolved {
                    at: local.assume_offset(offset).to_offset(UtcOffset::UTC),
                    source,
                }
            }
        }
    }
}

/// Parses an EXIF-style `YYYY:MM:DD HH:MM:SS`, tolerating `-`/`/` date separators, a `T`,
/// and trailing junk after the 19 characters (NULs, fractional seconds, zones).
pub(crate) fn parse_exif_datetime(raw: &str) -> Option<PrimitiveDateTime> {
    let b = raw.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let date_sep = |c: u8| matches!(c, b':' | b'-' | b'/');
    if !date_sep(b[4]) || !date_sep(b[7]) || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(num(8..10)?).ok()?).ok()?;
    // Year 0 and pre-digital years are placeholders, not capture times.
    if year < 1990 {
        return None;
    }
    let hms = |r| u8::try_from(num(r)?).ok();
    let time = Time::from_hms(hms(11..13)?, hms(14..16)?, hms(17..19)?).ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

/// Whether an EXIF time string is a "not set" placeholder rather than a wrong value.
pub(crate) fn is_blank_datetime(raw: &str) -> bool {
    raw.trim_matches(|c: char| c == '\0' || c.is_whitespace() || c == ':')
        .is_empty()
}

/// Parses `+08:00`, `-04:00`, `+0800` or `Z`.
pub(crate) fn parse_offset(raw: &str) -> Option<UtcOffset> {
    let s = raw.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if s == "Z" {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i8, &s[1..]),
        b'-' => (-1i8, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i8 = digits[0..2].parse().ok()?;
    let m: i8 = digits[2..4].parse().ok()?;
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// SubSec digits are a decimal fraction: "644" is .644 s, "18" is .18 s, "023460" is .02346 s.
pub(crate) fn parse_subsec_ms(raw: &str) -> Option<u16> {
    let digits: String = raw
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return None;
    }
    let padded = format!("{digits:0<3}");
    padded[0..3].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn exif_datetimes_parse_leniently_and_validate_strictly() {
        assert_eq!(
            parse_exif_datetime("2020:05:04 18:39:11"),
            Some(datetime!(2020-05-04 18:39:11))
        );
        assert_eq!(
            parse_exif_datetime("2020-05-04T18:39:11+02:00"),
            Some(datetime!(2020-05-04 18:39:11))
        );
        assert_eq!(parse_exif_datetime("0000:00:00 00:00:00"), None);
        assert_eq!(parse_exif_datetime("2020:13:04 18:39:11"), None);
        assert_eq!(parse_exif_datetime("2020:02:30 18:39:11"), None);
        assert_eq!(parse_exif_datetime("2020:02:03 25:39:11"), None);
        assert!(is_blank_datetime("    :  :     :  :  "));
        assert!(!is_blank_datetime("0000:00:00 00:00:00"));
    }

    #[test]
    fn offsets_and_subseconds_parse() {
        assert_eq!(parse_offset("-04:00"), Some(offset!(-4)));
        assert_eq!(parse_offset("+0800"), Some(offset!(+8)));
        assert_eq!(parse_offset("+5:30"), None);
        assert_eq!(parse_subsec_ms("644"), Some(644));
        assert_eq!(parse_subsec_ms("18"), Some(180));
        assert_eq!(parse_subsec_ms("023460"), Some(23));
    }

    #[test]
    fn gps_wins_then_offset_then_assumed_zone() {
        let mut claims = CaptureClaims {
            local: LocalTime::Present {
                datetime: datetime!(2024-03-01 10:00:00),
                source: LocalTimeSource::Exif,
            },
            offset: None,
            subsec_ms: Some(500),
            gps_utc: None,
        };
        assert_eq!(
            claims.resolve(offset!(+8)),
            CaptureTime::Resolved {
                at: datetime!(2024-03-01 02:00:00.5 UTC),
                source: CaptureSource::AssumedZone
            }
        );
        claims.offset = Some(offset!(+1));
        assert_eq!(
            claims.resolve(offset!(+8)),
            CaptureTime::Resolved {
                at: datetime!(2024-03-01 09:00:00.5 UTC),
                source: CaptureSource::Offset
            }
        );
        claims.gps_utc = Some(datetime!(2024-03-01 09:00:03 UTC));
        assert_eq!(
            claims.resolve(offset!(+8)),
            CaptureTime::Resolved {
                at: datetime!(2024-03-01 09:00:03 UTC),
                source: CaptureSource::Gps
            }
        );
    }
}
