//! Generated photos: distinct random block patterns (so perceptual hashes differ well beyond
//! the near-duplicate distance), encoded as JPEG without EXIF, optionally padded after the
//! end-of-image marker to a target size (for resumable uploads and the drain bench).

use image::{ImageBuffer, Rgb};
use rand::{Rng, SeedableRng};

/// A JPEG of random 16×16-pixel blocks, `size` px square, from `seed`.
pub fn generated_jpeg(seed: u64, size: u32) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let blocks = size.div_ceil(16);
    let colours: Vec<[u8; 3]> = (0..blocks * blocks).map(|_| rng.random()).collect();
    let img = ImageBuffer::from_fn(size, size, |x, y| {
        Rgb(colours[((y / 16) * blocks + x / 16) as usize])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .expect("encode");
    out.into_inner()
}

/// `generated_jpeg` padded after EOI with random bytes up to `total` bytes. Decoders stop at
/// EOI, so the photo still reads; the file is as big as a real phone photo.
pub fn padded_jpeg(seed: u64, total: usize) -> Vec<u8> {
    let mut bytes = generated_jpeg(seed, 256);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    while bytes.len() < total {
        bytes.push(rng.random());
    }
    bytes
}
