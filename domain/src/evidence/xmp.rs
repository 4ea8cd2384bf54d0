//! Fallback capture time from an XMP packet, for files whose EXIF lost DateTimeOriginal but
//! whose XMP kept it (seen after some editors and phone gallery apps re-save a photo).
//!
//! This is a byte scan for the two property names, not an XML parser: XMP packets are plain
//! UTF-8 text inside the container, and a scan cannot be tricked into allocating or recursing.

use super::capture_time::{parse_exif_datetime, parse_offset};
use time::{PrimitiveDateTime, UtcOffset};

/// XMP lives near the start of JPEG/PNG/WebP files; HEIC may put it anywhere, so the tail is
/// scanned too. Bounding the scan keeps a 25 MB upload from costing a full pass.
const HEAD: usize = 512 * 1024;
const TAIL: usize = 256 * 1024;

const KEYS: [&[u8]; 2] = [b"exif:DateTimeOriginal", b"photoshop:DateCreated"];

/// A capture time found in XMP: local date-time and its offset when one was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmpTime {
    pub local: PrimitiveDateTime,
    pub offset: Option<UtcOffset>,
}

/// The first valid `exif:DateTimeOriginal` (or `photoshop:DateCreated`) in the file's XMP.
pub fn capture_time(bytes: &[u8]) -> Option<XmpTime> {
    let head = &bytes[..bytes.len().min(HEAD)];
    let tail = &bytes[bytes.len().saturating_sub(TAIL).max(head.len())..];
    KEYS.iter()
        .find_map(|key| [head, tail].iter().find_map(|region| value_of(region, key)))
}

fn value_of(region: &[u8], key: &[u8]) -> Option<XmpTime> {
    let mut from = 0;
    while let Some(pos) = find(&region[from..], key) {
        let after = from + pos + key.len();
        from = after;
        // Attribute form `key="value"` or element form `<key>value</key>`.
        let rest = region.get(after..)?;
        let start = match rest.first()? {
            b'=' => 2,
            b'>' => 1,
            _ => continue,
        };
        let value = rest.get(start..)?;
        let end = value
            .iter()
            .take(64)
            .position(|c| matches!(c, b'"' | b'\'' | b'<'))?;
        let text = std::str::from_utf8(&value[..end]).ok()?;
        if let Some(local) = parse_exif_datetime(text) {
            let zone = text
                .get(19..)
                .map(|z| z.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit()));
            return Some(XmpTime {
                local,
                offset: zone.and_then(parse_offset),
            });
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        let next = haystack[at..].iter().position(|&c| c == first)?;
        at += next;
        if haystack.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn attribute_and_element_forms_are_found() {
        let attr =
            br#"junk<rdf:Description exif:DateTimeOriginal="2011-03-12T15:36:11.20+01:00"/>"#;
        assert_eq!(
            capture_time(attr),
            Some(XmpTime {
                local: datetime!(2011-03-12 15:36:11),
                offset: Some(offset!(+1))
            })
        );
        let elem = b"<photoshop:DateCreated>2019-07-01T08:00:00</photoshop:DateCreated>";
        assert_eq!(
            capture_time(elem),
            Some(XmpTime {
                local: datetime!(2019-07-01 08:00:00),
                offset: None
            })
        );
        assert_eq!(capture_time(b"exif:DateTimeOriginal=\"garbage\""), None);
        assert_eq!(capture_time(b""), None);
    }
}
