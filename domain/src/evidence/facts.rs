//! Facts a file states about itself: format, content hash, EXIF capture time and GPS, device,
//! software and dimensions. Parsing is lenient (real phones write broken EXIF) and validation
//! strict (broken values become typed invalid states, not numbers).

use super::capture_time::{
    CaptureClaims, LocalTime, LocalTimeSource, is_blank_datetime, parse_exif_datetime,
    parse_offset, parse_subsec_ms,
};
use super::container::pixel_dimensions;
use super::format::{Format, sniff};
use super::gps::{self, GpsFact};
use super::hash::ContentHash;
use super::xmp;
use exif::{Exif, In, Tag, Value};
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// How the EXIF block read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExifStatus {
    /// No EXIF in the file (stripped by a picker, a screenshot, a PDF…).
    Absent,
    Read,
    /// Read in continue-on-error mode: some entries were broken and skipped.
    Partial {
        skipped: u32,
    },
    /// An EXIF block exists but could not be parsed at all.
    Unreadable,
}

/// Everything extracted from one file's bytes. Pure data: serialize it into the evidence row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoFacts {
    pub format: Format,
    pub sha256: ContentHash,
    pub byte_len: u64,
    pub exif: ExifStatus,
    pub capture: CaptureClaims,
    pub gps: GpsFact,
    pub make: Option<String>,
    pub model: Option<String>,
    pub software: Option<String>,
    /// Primary image size as the container declares it (before EXIF orientation).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// EXIF Orientation of the primary image, 1–8.
    pub orientation: Option<u8>,
}

/// Extracts the facts from a file's bytes. Never fails and never panics: what cannot be read
/// is reported as absent or invalid.
pub fn extract_facts(bytes: &[u8]) -> PhotoFacts {
    extract_facts_hashed(bytes, ContentHash::of(bytes))
}

/// [`extract_facts`] for bytes whose SHA-256 is already known: the server hashes an upload
/// while it streams in, and hashing 4 MB again costs ~2 ms per photo.
pub fn extract_facts_hashed(bytes: &[u8], sha256: ContentHash) -> PhotoFacts {
    let format = sniff(bytes);
    let (width, height) = pixel_dimensions(format, bytes).unzip();
    let mut facts = PhotoFacts {
        format,
        sha256,
        byte_len: bytes.len() as u64,
        exif: ExifStatus::Absent,
        capture: CaptureClaims {
            local: LocalTime::Missing,
            offset: None,
            subsec_ms: None,
            gps_utc: None,
        },
        gps: GpsFact::Missing,
        make: None,
        model: None,
        software: None,
        width,
        height,
        orientation: None,
    };
    if format.is_photo() {
        // kamadak-exif is well tested, but a parser bug must cost one photo its EXIF,
        // not the worker thread.
        let read = std::panic::catch_unwind(|| read_exif(bytes));
        let (status, exif) = read.unwrap_or((ExifStatus::Unreadable, None));
        facts.exif = status;
        if let Some(exif) = exif {
            apply_exif(&mut facts, &exif);
        }
    }
    if facts.capture.local == LocalTime::Missing
        && let Some(found) = xmp::capture_time(bytes)
    {
        facts.capture.local = LocalTime::Present {
            datetime: found.local,
            source: LocalTimeSource::Xmp,
        };
        facts.capture.offset = found.offset;
    }
    facts
}

fn read_exif(bytes: &[u8]) -> (ExifStatus, Option<Exif>) {
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let mut skipped = 0u32;
    let result = reader
        .read_from_container(&mut std::io::Cursor::new(bytes))
        .or_else(|e| {
            e.distill_partial_result(|errors| {
                skipped = u32::try_from(errors.len()).unwrap_or(u32::MAX);
            })
        });
    // TIFF/drone writers that type the Exif/GPS IFD pointers as IFD (13) instead of LONG lose
    // those IFDs in kamadak-exif ("Invalid pointer"); re-read with the types corrected.
    let result = match result {
        Ok(exif) => match retype_ifd_pointers(exif.buf()) {
            Some(patched) => reader
                .read_raw(patched)
                .or_else(|e| e.distill_partial_result(|_| {}))
                .or(Ok(exif)),
            None => Ok(exif),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(exif) if skipped > 0 => (ExifStatus::Partial { skipped }, Some(exif)),
        Ok(exif) => (ExifStatus::Read, Some(exif)),
        Err(exif::Error::NotFound(_)) => (ExifStatus::Absent, None),
        Err(_) => match salvage(&reader, bytes) {
            Some(exif) => (ExifStatus::Read, Some(exif)),
            None => (ExifStatus::Unreadable, None),
        },
    }
}

/// Some writers (WebP and PNG especially) keep JPEG's `Exif\0\0` header inside the EXIF chunk,
/// which the container reader hands on as-is and the TIFF parser then refuses. Find the TIFF
/// header right after such a marker and parse from there.
fn salvage(reader: &exif::Reader, bytes: &[u8]) -> Option<Exif> {
    let at = bytes
        .windows(10)
        .position(|w| &w[..6] == b"Exif\0\0" && (&w[6..] == b"II*\0" || &w[6..] == b"MM\0*"))?;
    let raw = bytes.get(at + 6..)?.to_vec();
    reader
        .read_raw(raw)
        .or_else(|e| e.distill_partial_result(|_| {}))
        .ok()
}

/// A copy of the TIFF block with IFD0's Exif/GPS/Interop pointers retyped from IFD (13) to
/// LONG (4), or `None` when there is nothing to fix.
fn retype_ifd_pointers(tiff: &[u8]) -> Option<Vec<u8>> {
    let little = match tiff.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |b: &[u8], at: usize| -> Option<u16> {
        let pair: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        })
    };
    let quad: [u8; 4] = tiff.get(4..8)?.try_into().ok()?;
    let ifd0 = if little {
        u32::from_le_bytes(quad)
    } else {
        u32::from_be_bytes(quad)
    } as usize;
    let count = usize::from(u16_at(tiff, ifd0)?);
    let mut patched: Option<Vec<u8>> = None;
    for i in 0..count {
        let entry = ifd0.checked_add(2 + i * 12)?;
        let tag = u16_at(tiff, entry)?;
        if matches!(tag, 0x8769 | 0x8825 | 0xA005) && u16_at(tiff, entry + 2)? == 13 {
            let long = if little {
                4u16.to_le_bytes()
            } else {
                4u16.to_be_bytes()
            };
            patched.get_or_insert_with(|| tiff.to_vec())[entry + 2..entry + 4]
                .copy_from_slice(&long);
        }
    }
    patched
}

fn text(exif: &Exif, tag: Tag) -> Option<String> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(parts) => {
            let joined: Vec<u8> = parts.iter().flatten().copied().collect();
            let s = String::from_utf8_lossy(&joined);
            let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            (!s.is_empty()).then(|| s.to_owned())
        }
        // Some phones write UTF-8 Software/Make as UNDEFINED bytes.
        Value::Undefined(bytes, _) | Value::Byte(bytes) => {
            let s = String::from_utf8_lossy(bytes);
            let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            (!s.is_empty()).then(|| s.to_owned())
        }
        _ => None,
    }
}

fn apply_exif(facts: &mut PhotoFacts, exif: &Exif) {
    facts.make = text(exif, Tag::Make);
    facts.model = text(exif, Tag::Model);
    facts.software = text(exif, Tag::Software);
    facts.orientation = exif
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|o| u8::try_from(o).ok())
        .filter(|o| (1..=8).contains(o));
    facts.gps = gps::read(exif);
    facts.capture.local = match text(exif, Tag::DateTimeOriginal) {
        None => LocalTime::Missing,
        Some(raw) if is_blank_datetime(&raw) => LocalTime::Missing,
        Some(raw) => match parse_exif_datetime(&raw) {
            Some(datetime) => LocalTime::Present {
                datetime,
                source: LocalTimeSource::Exif,
            },
            None => LocalTime::Invalid { raw },
        },
    };
    facts.capture.offset = text(exif, Tag::OffsetTimeOriginal).and_then(|s| parse_offset(&s));
    facts.capture.subsec_ms = text(exif, Tag::SubSecTimeOriginal).and_then(|s| parse_subsec_ms(&s));
    facts.capture.gps_utc = gps_utc(exif);
}

/// GPSDateStamp + GPSTimeStamp as one UTC instant; `None` unless both are present and real.
fn gps_utc(exif: &Exif) -> Option<OffsetDateTime> {
    let date = text(exif, Tag::GPSDateStamp)?;
    let b = date.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        std::str::from_utf8(b.get(r)?).ok()?.parse().ok()
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(num(8..10)?).ok()?).ok()?;
    if year < 1990 {
        return None;
    }
    let field = exif.get_field(Tag::GPSTimeStamp, In::PRIMARY)?;
    let hms: Vec<f64> = match &field.value {
        Value::Rational(v) if v.len() >= 3 => v
            .iter()
            .take(3)
            .map(|r| (r.denom != 0).then(|| f64::from(r.num) / f64::from(r.denom)))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    let (h, m, s) = (hms[0], hms[1], hms[2]);
    if h.fract() != 0.0 || m.fract() != 0.0 || !(0.0..60.0).contains(&s) {
        return None;
    }
    let millis = ((s.fract() * 1000.0).round() as u16).min(999);
    let time = Time::from_hms_milli(h as u8, m as u8, s.trunc() as u8, millis).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}
