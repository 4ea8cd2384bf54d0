//! Test helpers: deterministic photo-like images and JPEG/WebP files with hand-built EXIF.
#![allow(dead_code)]

use exif::experimental::Writer;
use exif::{Field, In, Rational, SRational, Tag, Value};
use image::{Rgb, RgbImage};

/// A small deterministic PRNG (xorshift) so tests need no extra crates and never flake.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32
    }
}

/// A photo-like scene: a lit gradient, a few large shapes and fine sensor noise.
pub fn scene(seed: u64, width: u32, height: u32) -> RgbImage {
    let mut rng = Rng::new(seed);
    let base = [
        rng.below(200) as f32,
        rng.below(200) as f32,
        rng.below(200) as f32,
    ];
    let tilt = (rng.below(100) as f32 / 50.0) - 1.0;
    let shapes: Vec<(f32, f32, f32, [u8; 3])> = (0..8)
        .map(|_| {
            (
                rng.below(width) as f32,
                rng.below(height) as f32,
                (width.min(height) / 10 + rng.below(width.min(height) / 4)) as f32,
                [
                    rng.below(256) as u8,
                    rng.below(256) as u8,
                    rng.below(256) as u8,
                ],
            )
        })
        .collect();
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
        let light = 0.6 + 0.4 * (fx * tilt + fy * (1.0 - tilt.abs()));
        let mut px = base.map(|c| c * light + 30.0);
        for (cx, cy, r, color) in &shapes {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            if dx * dx + dy * dy < r * r {
                px = color.map(f32::from);
            }
        }
        let noise = ((x.wrapping_mul(7919) ^ y.wrapping_mul(104729)) % 13) as f32 - 6.0;
        Rgb(px.map(|c| (c + noise).clamp(0.0, 255.0) as u8))
    })
}

pub fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .unwrap();
    out
}

/// A GPS coordinate as the camera writes it.
#[derive(Clone, Debug)]
pub enum Coord {
    /// Unsigned degrees, minutes, seconds with a N/S/E/W ref.
    Dms(f64, char),
    /// Raw rationals exactly as given (zero denominators, huge values…), with a ref.
    Raw([(u32, u32); 3], char),
    /// Signed rationals, no ref (some Android writers).
    Signed(f64),
}

/// The EXIF a generated photo carries; `None` fields are left out.
#[derive(Clone, Debug, Default)]
pub struct ExifSpec {
    pub make: Option<&'static str>,
    pub model: Option<&'static str>,
    pub software: Option<String>,
    pub datetime_original: Option<String>,
    pub offset_time_original: Option<&'static str>,
    pub lat: Option<Coord>,
    pub lon: Option<Coord>,
    pub accuracy_m: Option<(u32, u32)>,
    pub gps_date: Option<&'static str>,
    pub gps_time: Option<[(u32, u32); 3]>,
    pub orientation: Option<u16>,
}

impl ExifSpec {
    /// A phone photo at WGS-84 (lat, lon) taken at local `datetime` in +08:00.
    pub fn phone(lat: f64, lon: f64, datetime: &str) -> ExifSpec {
        ExifSpec {
            make: Some("Xiaomi"),
            model: Some("Redmi Note 12"),
            software: Some("MIUI 14.0.5".to_owned()),
            datetime_original: Some(datetime.to_owned()),
            offset_time_original: Some("+08:00"),
            lat: Some(Coord::Dms(lat.abs(), if lat < 0.0 { 'S' } else { 'N' })),
            lon: Some(Coord::Dms(lon.abs(), if lon < 0.0 { 'W' } else { 'E' })),
            accuracy_m: Some((12, 1)),
            ..ExifSpec::default()
        }
    }
}

fn ascii(s: &str) -> Value {
    Value::Ascii(vec![s.as_bytes().to_vec()])
}

fn dms(v: f64) -> Vec<Rational> {
    let deg = v.trunc();
    let min = ((v - deg) * 60.0).trunc();
    let sec = ((v - deg) * 60.0 - min) * 60.0;
    vec![
        Rational {
            num: deg as u32,
            denom: 1,
        },
        Rational {
            num: min as u32,
            denom: 1,
        },
        Rational {
            num: (sec * 1_000_000.0).round() as u32,
            denom: 1_000_000,
        },
    ]
}

fn coord_fields(c: &Coord, value_tag: Tag, ref_tag: Tag) -> Vec<Field> {
    let field = |tag, value| Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    };
    match c {
        Coord::Dms(v, r) => vec![
            field(ref_tag, ascii(&r.to_string())),
            field(value_tag, Value::Rational(dms(*v))),
        ],
        Coord::Raw(parts, r) => vec![
            field(ref_tag, ascii(&r.to_string())),
            field(
                value_tag,
                Value::Rational(
                    parts
                        .iter()
                        .map(|(n, d)| Rational { num: *n, denom: *d })
                        .collect(),
                ),
            ),
        ],
        Coord::Signed(v) => {
            let deg = v.trunc();
            let rest = (v.abs() - deg.abs()) * 3600.0;
            vec![field(
                value_tag,
                Value::SRational(vec![
                    SRational {
                        num: deg as i32,
                        denom: 1,
                    },
                    SRational { num: 0, denom: 1 },
                    SRational {
                        num: (rest * 10_000.0).round() as i32,
                        denom: 10_000,
                    },
                ]),
            )]
        }
    }
}

/// A little-endian TIFF/EXIF block for `spec`.
pub fn tiff(spec: &ExifSpec) -> Vec<u8> {
    let field = |tag, value| Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    };
    let mut fields = Vec::new();
    if let Some(v) = spec.make {
        fields.push(field(Tag::Make, ascii(v)));
    }
    if let Some(v) = spec.model {
        fields.push(field(Tag::Model, ascii(v)));
    }
    if let Some(v) = &spec.software {
        fields.push(field(Tag::Software, ascii(v)));
    }
    if let Some(v) = spec.orientation {
        fields.push(field(Tag::Orientation, Value::Short(vec![v])));
    }
    if let Some(v) = &spec.datetime_original {
        fields.push(field(Tag::DateTimeOriginal, ascii(v)));
    }
    if let Some(v) = spec.offset_time_original {
        fields.push(field(Tag::OffsetTimeOriginal, ascii(v)));
    }
    if let Some(c) = &spec.lat {
        fields.extend(coord_fields(c, Tag::GPSLatitude, Tag::GPSLatitudeRef));
    }
    if let Some(c) = &spec.lon {
        fields.extend(coord_fields(c, Tag::GPSLongitude, Tag::GPSLongitudeRef));
    }
    if let Some((n, d)) = spec.accuracy_m {
        fields.push(field(
            Tag::GPSHPositioningError,
            Value::Rational(vec![Rational { num: n, denom: d }]),
        ));
    }
    if let Some(v) = spec.gps_date {
        fields.push(field(Tag::GPSDateStamp, ascii(v)));
    }
    if let Some(t) = spec.gps_time {
        fields.push(field(
            Tag::GPSTimeStamp,
            Value::Rational(
                t.iter()
                    .map(|(n, d)| Rational { num: *n, denom: *d })
                    .collect(),
            ),
        ));
    }
    let mut writer = Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    writer.write(&mut out, true).unwrap();
    out.into_inner()
}

/// Inserts an APP1 EXIF segment right after the JPEG's SOI marker.
pub fn with_exif(jpeg: &[u8], spec: &ExifSpec) -> Vec<u8> {
    with_tiff(jpeg, &tiff(spec))
}

/// Rewrites the type of IFD0 entry `tag` in a little-endian TIFF block (to mimic writers that
/// type IFD pointers as IFD (13) instead of LONG).
pub fn retype_ifd0_entry(tiff: &mut [u8], tag: u16, new_type: u16) {
    let ifd0 = u32::from_le_bytes(tiff[4..8].try_into().unwrap()) as usize;
    let count = u16::from_le_bytes(tiff[ifd0..ifd0 + 2].try_into().unwrap()) as usize;
    for i in 0..count {
        let at = ifd0 + 2 + i * 12;
        if u16::from_le_bytes(tiff[at..at + 2].try_into().unwrap()) == tag {
            tiff[at + 2..at + 4].copy_from_slice(&new_type.to_le_bytes());
        }
    }
}

/// Inserts a raw TIFF block as an APP1 EXIF segment right after SOI.
pub fn with_tiff(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let len = u16::try_from(2 + 6 + tiff.len()).unwrap();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A lossless WebP whose EXIF chunk begins with JPEG's `Exif\0\0` header (a real-world quirk).
pub fn webp_with_exif_header(image: &RgbImage, spec: &ExifSpec) -> Vec<u8> {
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .encode(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff(spec));
    let mut chunk = b"EXIF".to_vec();
    chunk.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    chunk.extend_from_slice(&payload);
    if payload.len() % 2 == 1 {
        chunk.push(0);
    }
    webp.extend_from_slice(&chunk);
    let riff_len = u32::try_from(webp.len() - 8).unwrap();
    webp[4..8].copy_from_slice(&riff_len.to_le_bytes());
    webp
}

/// A PNG whose header claims `width`×`height` with a tiny body: a decompression bomb's shape.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01";
    png.extend_from_slice(&8u32.to_be_bytes());
    png.extend_from_slice(idat);
    png.extend_from_slice(&crc32(idat).to_be_bytes());
    png.extend_from_slice(&0u32.to_be_bytes());
    png.extend_from_slice(b"IEND");
    png.extend_from_slice(&crc32(b"IEND").to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
