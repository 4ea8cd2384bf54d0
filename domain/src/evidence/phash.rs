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

/// How many bands a hash is split into for an indexed near-duplicate search (multi-index
/// hashing): four 16-bit quarters. Hashes that differ in at most `k` bits have a quarter that
/// differs in at most `k / 4` (four quarters cannot each hold more than a quarter of the
/// differences), so looking up, in every quarter, each value within `k / 4` bits of the hash's
/// own finds every stored hash within `k`, and no lookup is wider than it must be.
pub const BANDS: usize = 4;

impl PerceptualHash {
    /// The four 16-bit quarters, lowest bits first.
    pub fn bands(self) -> [u16; BANDS] {
        std::array::from_fn(|i| (self.0 >> (16 * i)) as u16)
    }
}

/// The widest near-duplicate distance a template may set: the band search looks up to 3 bits
/// around each quarter (697 values a band), which finds every hash within 15.
pub const MAX_NEAR_DISTANCE: u32 = 15;

/// The radius to search each band within so that every hash within `max_distance` is found.
pub fn band_radius(max_distance: u32) -> u32 {
    max_distance / BANDS as u32
}

/// Every 16-bit value within `radius` differing bits of `value`, `value` itself first: 1, 17,
/// 137, 697 values for radius 0 to 3.
pub fn band_neighbours(value: u16, radius: u32) -> Vec<u16> {
    let mut out = vec![value];
    // Each step flips one more bit, above the last one flipped, so every set comes once.
    let mut frontier = vec![(value, 0u32)];
    for _ in 0..radius.min(16) {
        let mut next = Vec::new();
        for (v, from) in frontier {
            for bit in from..16 {
                let w = v ^ (1 << bit);
                out.push(w);
                next.push((w, bit + 1));
            }
        }
        frontier = next;
    }
    out
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

#[cfg(test)]
mod band_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn neighbourhoods_hold_each_value_within_the_radius_once() {
        for (radius, size) in [(0, 1), (1, 17), (2, 137), (3, 697)] {
            let mut values = band_neighbours(0xBEEF, radius);
            assert_eq!(values.len(), size);
            assert_eq!(values[0], 0xBEEF);
            assert!(values.iter().all(|v| (v ^ 0xBEEF).count_ones() <= radius));
            values.sort_unstable();
            values.dedup();
            assert_eq!(values.len(), size);
        }
        assert_eq!(
            PerceptualHash(0x0123_4567_89ab_cdef).bands(),
            [0xcdef, 0x89ab, 0x4567, 0x0123]
        );
    }

    proptest! {
        /// The pigeonhole the index search stands on: a hash within `k` bits of another has a
        /// band within `k / 4` bits of the other's same band.
        #[test]
        fn every_hash_within_the_distance_has_a_band_in_a_neighbourhood(
            a: u64,
            flips in proptest::collection::btree_set(0u32..64, 0..=15usize),
        ) {
            let b = flips.iter().fold(a, |h, bit| h ^ (1u64 << bit));
            let (a, b) = (PerceptualHash(a), PerceptualHash(b));
            let radius = band_radius(flips.len() as u32);
            prop_assert!(
                a.bands()
                    .iter()
                    .zip(b.bands())
                    .any(|(mine, theirs)| band_neighbours(*mine, radius).contains(&theirs))
            );
        }
    }
}
