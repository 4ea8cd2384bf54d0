//! A 64-bit DCT perceptual hash: survives re-encoding, resizing and small crops, so a photo
//! recycled from another customer is found even after WeChat recompressed it.

use image::{DynamicImage, imageops::FilterType};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// 64 bits of the 8×8 lowest DCT frequencies of the 32×32 grey image, each bit "above median".
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PerceptualHash(pub u64);

impl PerceptualHash {
    /// Hamming distance: how many of the 64 bits differ.
    pub fn distance(self, other: PerceptualHash) -> u32 {
        (self.0 ^ other.0).count_ones()
    }

    /// Hashes an already oriented (and usually already reduced) image.
    pub fn of(image: &DynamicImage) -> PerceptualHash {
        const N: usize = 32;
        let grey = image
            .resize_exact(N as u32, N as u32, FilterType::Triangle)
            .to_luma8();
        let pixels: Vec<f64> = grey.pixels().map(|p| f64::from(p.0[0])).collect();
        let cos = cos_table::<N>();
        // Separable 2-D DCT-II, keeping only the 8×8 low frequencies we need.
        let mut rows = [[0.0f64; 8]; N];
        for (y, row) in rows.iter_mut().enumerate() {
            for (u, out) in row.iter_mut().enumerate() {
                *out = (0..N).map(|x| pixels[y * N + x] * cos[u][x]).sum();
            }
        }
        let mut coeffs = [0.0f64; 64];
        for v in 0..8 {
            for u in 0..8 {
                coeffs[v * 8 + u] = (0..N).map(|y| rows[y][u] * cos[v][y]).sum();
            }
        }
        // The DC term is overall brightness; it is left out of the median.
        let mut sorted: Vec<f64> = coeffs[1..].to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let bits =
            coeffs.iter().enumerate().fold(
                0u64,
                |acc, (i, c)| if *c > median { acc | 1 << i } else { acc },
            );
        PerceptualHash(bits)
    }
}

fn cos_table<const N: usize>() -> [[f64; N]; 8] {
    let mut t = [[0.0; N]; 8];
    for (u, row) in t.iter_mut().enumerate() {
        for (x, c) in row.iter_mut().enumerate() {
            *c = (std::f64::consts::PI * (2 * x + 1) as f64 * u as f64 / (2 * N) as f64).cos();
        }
    }
    t
}

impl fmt::Display for PerceptualHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for PerceptualHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PerceptualHash({self})")
    }
}

impl Serialize for PerceptualHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PerceptualHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        u64::from_str_radix(&s, 16)
            .map(PerceptualHash)
            .map_err(serde::de::Error::custom)
    }
}
