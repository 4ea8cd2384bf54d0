//! Pixels: one reduced-size decode under explicit limits gives both the review thumbnail
//! (≤ 512 px, EXIF-oriented) and the perceptual hash. JPEG decodes in the DCT domain at
//! 1/8, 1/4 or 1/2 scale (jpeg-decoder's `scale`), so a 12-MP photo never becomes 36 MB of RGB.
//! A decoder panic is caught and becomes `pixels_unreadable`, never a dead worker.

use super::format::{Format, sniff};
pub use super::phash::PerceptualHash;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// The review thumbnail's longest side.
pub const THUMBNAIL_MAX_SIDE: u32 = 512;
/// JPEG scale-down stops before the long side would drop below this (hash and thumbnail need
/// a few hundred pixels; 4032 px / 8 = 504 px).
const MIN_DECODED_SIDE: u32 = 256;

/// Decoding limits: declared sizes beyond these are refused before any pixel is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelLimits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_alloc_bytes: u64,
}

impl Default for PixelLimits {
    fn default() -> Self {
        // 20000 px covers 200-MP panoramas; 256 MiB bounds one decode's buffers.
        PixelLimits {
            max_width: 20_000,
            max_height: 20_000,
            max_alloc_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Why a file has no pixels to look at, which is not its fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoPixelsReason {
    /// `image` has no HEVC decoder; the SDK may send a JPEG derivative instead.
    HeicNotDecodable,
    NotAnImage,
}

impl NoPixelsReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NoPixelsReason::HeicNotDecodable => "heic_not_decodable",
            NoPixelsReason::NotAnImage => "not_an_image",
        }
    }
}

/// Why an image that should decode did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnreadableReason {
    TooLarge,
    DecodeError,
    DecoderPanic,
}

impl UnreadableReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnreadableReason::TooLarge => "too_large",
            UnreadableReason::DecodeError => "decode_error",
            UnreadableReason::DecoderPanic => "decoder_panic",
        }
    }
}

/// What the pixel analysis found; the part of it the checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PixelState {
    /// Not run (e.g. a quick on-device pre-check): pixel checks are skipped.
    NotAnalyzed,
    Hashed {
        phash: PerceptualHash,
    },
    NoPixels {
        reason: NoPixelsReason,
    },
    Unreadable {
        reason: UnreadableReason,
    },
}

/// A small JPEG for the review console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

/// The result of [`analyze`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelAnalysis {
    pub state: PixelState,
    pub thumbnail: Option<Thumbnail>,
}

/// Decodes once at reduced size, applies the EXIF orientation, hashes and makes the thumbnail.
/// Takes whichever bytes it is given: the original, or a JPEG derivative of a HEIC.
pub fn analyze(bytes: &[u8], orientation: Option<u8>, limits: &PixelLimits) -> PixelAnalysis {
    let unreadable = |reason| PixelAnalysis {
        state: PixelState::Unreadable { reason },
        thumbnail: None,
    };
    let format = sniff(bytes);
    let decoded = match format {
        Format::Heic | Format::Pdf | Format::Unknown => {
            let reason = if format == Format::Heic {
                NoPixelsReason::HeicNotDecodable
            } else {
                NoPixelsReason::NotAnImage
            };
            return PixelAnalysis {
                state: PixelState::NoPixels { reason },
                thumbnail: None,
            };
        }
        Format::Jpeg | Format::Png | Format::Webp => {
            std::panic::catch_unwind(|| decode_reduced(bytes, format, limits))
        }
    };
    let image = match decoded {
        Ok(Ok(image)) => image,
        Ok(Err(reason)) => return unreadable(reason),
        Err(_) => return unreadable(UnreadableReason::DecoderPanic),
    };
    let mut image = fit(image, THUMBNAIL_MAX_SIDE);
    if let Some(o) = orientation.and_then(image::metadata::Orientation::from_exif) {
        image.apply_orientation(o);
    }
    let phash = PerceptualHash::of(&image);
    let rgb = image.to_rgb8();
    let mut jpeg = Vec::new();
    let encoded =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&rgb);
    PixelAnalysis {
        state: PixelState::Hashed { phash },
        thumbnail: encoded.ok().map(|()| Thumbnail {
            width: rgb.width(),
            height: rgb.height(),
            jpeg,
        }),
    }
}

/// Shrinks so the long side is at most `max`, keeping the aspect ratio.
fn fit(image: DynamicImage, max: u32) -> DynamicImage {
    if image.width().max(image.height()) <= max {
        image
    } else {
        image.thumbnail(max, max)
    }
}

fn decode_reduced(
    bytes: &[u8],
    format: Format,
    limits: &PixelLimits,
) -> Result<DynamicImage, UnreadableReason> {
    if format == Format::Jpeg {
        return decode_jpeg_scaled(bytes, limits);
    }
    let image_format = match format {
        Format::Png => ImageFormat::Png,
        _ => ImageFormat::WebP,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut l = Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    l.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(l);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => UnreadableReason::TooLarge,
        _ => UnreadableReason::DecodeError,
    })
}

fn decode_jpeg_scaled(
    bytes: &[u8],
    limits: &PixelLimits,
) -> Result<DynamicImage, UnreadableReason> {
    use jpeg_decoder::{Decoder, PixelFormat};
    let mut decoder = Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(
        usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX),
    );
    decoder
        .read_info()
        .map_err(|_| UnreadableReason::DecodeError)?;
    let info = decoder.info().ok_or(UnreadableReason::DecodeError)?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if w > limits.max_width || h > limits.max_height || w == 0 || h == 0 {
        return Err(UnreadableReason::TooLarge);
    }
    // The largest 1/f that keeps the long side at or above MIN_DECODED_SIDE.
    let long = w.max(h);
    let f = [8u32, 4, 2, 1]
        .into_iter()
        .find(|f| long.div_ceil(*f) >= MIN_DECODED_SIDE.min(long))
        .unwrap_or(1);
    let want = |side: u32| u16::try_from(side.div_ceil(f)).unwrap_or(u16::MAX);
    let (sw, sh) = decoder
        .scale(want(w), want(h))
        .map_err(|_| UnreadableReason::DecodeError)?;
    let data = decoder.decode().map_err(|e| match e {
        jpeg_decoder::Error::Format(msg) if msg.contains("buffer") => UnreadableReason::TooLarge,
        _ => UnreadableReason::DecodeError,
    })?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let image = match info.pixel_format {
        PixelFormat::RGB24 => image::RgbImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgb8),
        PixelFormat::L8 => image::GrayImage::from_raw(sw, sh, data).map(DynamicImage::ImageLuma8),
        PixelFormat::L16 => {
            let grey = data.chunks_exact(2).map(|c| c[0]).collect();
            image::GrayImage::from_raw(sw, sh, grey).map(DynamicImage::ImageLuma8)
        }
        PixelFormat::CMYK32 => {
            // jpeg-decoder returns Adobe's inverted CMYK; this is a review thumbnail, so a
            // plain conversion without a colour profile is enough.
            let rgb = data
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u32::from(p[3]);
                    [0, 1, 2].map(|i| (u32::from(p[i]) * k / 255) as u8)
                })
                .collect();
            image::RgbImage::from_raw(sw, sh, rgb).map(DynamicImage::ImageRgb8)
        }
    };
    image.ok_or(UnreadableReason::DecodeError)
}
