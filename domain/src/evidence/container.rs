//! Pixel dimensions read from container headers (JPEG SOF, PNG IHDR, WebP VP8*/VP8X, HEIF
//! `ispe` of the primary item), the same numbers ExifTool reports as `File:ImageWidth`.
//! EXIF's PixelXDimension is not used: editors often leave it stale.
//!
//! Every read is bounds-checked; a malformed header gives `None`, never a panic.

use super::format::Format;

/// Width and height of the primary image as its container declares them, if readable.
pub fn pixel_dimensions(format: Format, bytes: &[u8]) -> Option<(u32, u32)> {
    match format {
        Format::Jpeg => jpeg_dimensions(bytes),
        Format::Png => png_dimensions(bytes),
        Format::Webp => webp_dimensions(bytes),
        Format::Heic => heif_dimensions(bytes),
        Format::Pdf | Format::Unknown => None,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while *b.get(at)? == 0xFF && *b.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *b.get(at)? != 0xFF {
            return None;
        }
        let marker = *b.get(at + 1)?;
        at += 2;
        match marker {
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 | 0xDA => return None,
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                let height = be16(b, at + 3)?;
                let width = be16(b, at + 5)?;
                return Some((width, height));
            }
            _ => at += be16(b, at)? as usize,
        }
    }
}

fn png_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(12..16)? != b"IHDR" {
        return None;
    }
    Some((be32(b, 16)?, be32(b, 20)?))
}

fn webp_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
        b"VP8 " => {
            if b.get(23..26)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            let w = u32::from(u16::from_le_bytes(b.get(26..28)?.try_into().ok()?)) & 0x3FFF;
            let h = u32::from(u16::from_le_bytes(b.get(28..30)?.try_into().ok()?)) & 0x3FFF;
            Some((w, h))
        }
        b"VP8L" => {
            if *b.get(20)? != 0x2F {
                return None;
            }
            let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => None,
    }
}

/// ISO-BMFF boxes inside `b`: (type, body). Stops quietly at the first malformed header.
fn boxes(b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let size = be32(b, at)? as usize;
        let kind = b.get(at + 4..at + 8)?;
        let (header, size) = match size {
            1 => (
                16,
                usize::try_from(u64::from_be_bytes(b.get(at + 8..at + 16)?.try_into().ok()?))
                    .ok()?,
            ),
            0 => (8, b.len().checked_sub(at)?),
            n => (8, n),
        };
        let body = b.get(at + header..at.checked_add(size)?)?;
        at += size;
        Some((kind, body))
    })
}

fn child<'a>(b: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    boxes(b).find(|(k, _)| *k == kind).map(|(_, body)| body)
}

/// The primary item's `ispe`, swapped when its `irot` turns it by 90° or 270°.
fn heif_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    // `meta` is a full box: 4 bytes of version and flags before its children.
    let meta = child(b, b"meta")?.get(4..)?;
    let pitm = child(meta, b"pitm")?;
    let primary = if *pitm.first()? == 0 {
        be16(pitm, 4)?
    } else {
        be32(pitm, 4)?
    };
    let iprp = child(meta, b"iprp")?;
    let properties: Vec<(&[u8], &[u8])> = boxes(child(iprp, b"ipco")?).collect();
    let ipma = child(iprp, b"ipma")?;
    let (version, flags) = (*ipma.first()?, *ipma.get(3)?);
    let mut at = 8;
    for _ in 0..be32(ipma, 4)? {
        let item = if version < 1 {
            be16(ipma, at)?
        } else {
            be32(ipma, at)?
        };
        at += if version < 1 { 2 } else { 4 };
        let count = *ipma.get(at)? as usize;
        at += 1;
        let mut indexes = Vec::with_capacity(count);
        for _ in 0..count {
            let index = if flags & 1 == 1 {
                at += 2;
                be16(ipma, at - 2)? & 0x7FFF
            } else {
                at += 1;
                u32::from(*ipma.get(at - 1)? & 0x7F)
            };
            indexes.push(index as usize);
        }
        if item != primary {
            continue;
        }
        let mut dims = None;
        let mut quarter_turn = false;
        for (kind, body) in indexes
            .iter()
            .filter_map(|i| properties.get(i.checked_sub(1)?))
        {
            match *kind {
                b"ispe" => dims = Some((be32(body, 4)?, be32(body, 8)?)),
                b"irot" => quarter_turn = body.first().is_some_and(|a| a & 1 == 1),
                _ => {}
            }
        }
        return dims.map(|(w, h)| if quarter_turn { (h, w) } else { (w, h) });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_headers_give_nothing() {
        assert_eq!(pixel_dimensions(Format::Jpeg, &[0xFF, 0xD8, 0xFF]), None);
        assert_eq!(pixel_dimensions(Format::Png, b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(
            pixel_dimensions(Format::Webp, b"RIFF\0\0\0\0WEBPVP8 "),
            None
        );
        assert_eq!(
            pixel_dimensions(Format::Heic, b"\0\0\0\x08ftyp\xff\xff\xff\xffmeta"),
            None
        );
    }

    #[test]
    fn png_header_is_read() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&60000u32.to_be_bytes());
        png.extend_from_slice(&60000u32.to_be_bytes());
        assert_eq!(pixel_dimensions(Format::Png, &png), Some((60000, 60000)));
    }
}
