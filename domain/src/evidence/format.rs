//! What a file is, decided by its first bytes and never by its name: an iPhone ".HEIC" is
//! often a JPEG, and a ".jpg" from a messenger may be WebP.

use serde::{Deserialize, Serialize};

/// The container formats evidence may arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    /// HEIF and its HEIC/AVIF-style brands; `image` cannot decode its pixels.
    Heic,
    Png,
    Webp,
    Pdf,
    Unknown,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Heic => "heic",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Pdf => "pdf",
            Format::Unknown => "unknown",
        }
    }

    /// Whether this format can carry a photo (as opposed to a document).
    pub fn is_photo(self) -> bool {
        match self {
            Format::Jpeg | Format::Heic | Format::Png | Format::Webp => true,
            Format::Pdf | Format::Unknown => false,
        }
    }

    /// The media type the server should store and serve the original with.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Heic => "image/heic",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Pdf => "application/pdf",
            Format::Unknown => "application/octet-stream",
        }
    }
}

/// ISO-BMFF major/compatible brands that mean "a HEIF image" (HEIC, HEIF, image sequences).
const HEIF_BRANDS: [&[u8; 4]; 8] = [
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
];

/// Sniffs the format from magic bytes. Needs at most the first 64 bytes of the file.
pub fn sniff(bytes: &[u8]) -> Format {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Format::Jpeg
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Format::Png
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Format::Webp
    } else if bytes.starts_with(b"%PDF-") {
        Format::Pdf
    } else if is_heif(bytes) {
        Format::Heic
    } else {
        Format::Unknown
    }
}

/// An `ftyp` box first, whose major or compatible brands name a HEIF image.
fn is_heif(bytes: &[u8]) -> bool {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return false;
    }
    let box_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = box_len.clamp(16, 64).min(bytes.len());
    let is_heif_brand = |b: &[u8]| HEIF_BRANDS.iter().any(|h| b == h.as_slice());
    // Major brand at 8..12, minor version at 12..16, then compatible brands.
    is_heif_brand(&bytes[8..12]) || bytes[16..end].chunks_exact(4).any(is_heif_brand)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_magic_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE1, 0, 0]), Format::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Format::Png);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8X"), Format::Webp);
        assert_eq!(sniff(b"%PDF-1.7\n"), Format::Pdf);
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), Format::Heic);
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic"), Format::Heic);
        // An MP4 is ISO-BMFF too, but not an image.
        assert_eq!(
            sniff(b"\0\0\0\x18ftypisom\0\0\0\0isomavc1"),
            Format::Unknown
        );
        assert_eq!(sniff(b""), Format::Unknown);
        assert_eq!(sniff(b"GIF89a"), Format::Unknown);
    }
}
