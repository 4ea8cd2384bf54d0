//! Hot paths of evidence verification (figures in docs/benchmarks.md):
//! facts extraction per photo, and full verification of a 12-MP phone-like JPEG side by side
//! with one plain `image::load_from_memory` of the same file.

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fieldproof_domain::evidence::{
    History, NodePolicy, PerceptualHash, PixelLimits, PriorEvidence, VerifyContext, analyze,
    extract_facts, verify,
};
use fieldproof_domain::geo::{Crs, SitePoint};
use std::hint::black_box;
use std::time::Duration;
use support::{ExifSpec, Rng, jpeg, scene, with_exif};

/// A 4032×3024 photo-like JPEG at quality 90 with phone EXIF, made deterministically.
fn twelve_megapixel_jpeg() -> Vec<u8> {
    let mut image = scene(11, 4032, 3024);
    // Sensor-like noise so the entropy-coded data is phone-sized, not a flat synthetic.
    let mut rng = Rng::new(99);
    for p in image.pixels_mut() {
        let n = (rng.next() % 25) as i16 - 12;
        p.0 = p.0.map(|c| (i16::from(c) + n).clamp(0, 255) as u8);
    }
    with_exif(
        &jpeg(&image, 90),
        &ExifSpec::phone(31.1774276, 121.5272106, "2026:11:20 10:00:00"),
    )
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../fixtures/corpus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn bench_facts(c: &mut Criterion) {
    let mut group = c.benchmark_group("facts_extraction");
    for (name, bytes) in [
        (
            "oppo_r7_jpeg_1.9MB",
            corpus("drewnoakes__jpg__Oppo_R7_Plus.jpg"),
        ),
        (
            "iphone7_heic_0.9MB",
            corpus("immich__formats__heic__IMG_2682.heic"),
        ),
        ("htc_webp_46kB", corpus("drewnoakes__webp__HTC_Desire.webp")),
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| extract_facts(black_box(bytes)))
        });
    }
    group.finish();
}

fn bench_verification(c: &mut Criterion) {
    let bytes = twelve_megapixel_jpeg();
    eprintln!("12-MP bench JPEG: {} bytes", bytes.len());
    let history = History {
        evidence: (0..1000u64)
            .map(|i| PriorEvidence {
                id: format!("ev-{i}"),
                sha256: fieldproof_domain::evidence::ContentHash([i as u8; 32]),
                phash: Some(PerceptualHash(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))),
            })
            .collect(),
        ..History::default()
    };
    let ctx = VerifyContext {
        policy: NodePolicy::default(),
        site: Some(SitePoint::new(31.17530398, 121.53154186, Crs::Gcj02, 300.0).unwrap()),
        history,
        ..VerifyContext::default()
    };
    let now = time::macros::datetime!(2026-11-20 05:00 UTC);
    let mut group = c.benchmark_group("verification_12mp_jpeg");
    group.sample_size(20);
    group.bench_function("plain_image_load_from_memory", |b| {
        b.iter(|| image::load_from_memory(black_box(&bytes)).unwrap())
    });
    group.bench_function("full_verify", |b| {
        b.iter(|| verify(black_box(&bytes), None, &ctx, now))
    });
    // The parts, to see where the time goes.
    group.bench_function("part_facts_incl_sha256", |b| {
        b.iter(|| extract_facts(black_box(&bytes)))
    });
    group.bench_function("part_pixels_reduced_decode_phash_thumbnail", |b| {
        b.iter(|| analyze(black_box(&bytes), Some(1), &PixelLimits::default()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    targets = bench_facts, bench_verification
}
criterion_main!(benches);
