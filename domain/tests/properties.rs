//! Property tests: no input panics, the verdict is a pure function of its inputs, and a
//! proptest-driven fuzz target over structured EXIF (see docs/evidence.md for longer runs).

mod support;

use fieldproof_domain::evidence::{
    CaptureTime, GpsFact, History, InspectOptions, LocalTime, ManifestFix, NodePolicy, PixelLimits,
    PixelState, PriorCapture, PriorEvidence, VisitWindow, WitnessRequirement, analyze, evaluate,
    extract_facts, inspect,
};
use fieldproof_domain::geo::{Crs, LatLon, SitePoint};
use proptest::prelude::*;
use support::{Coord, ExifSpec, jpeg, scene, with_exif};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-11-20 05:00 UTC);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../fixtures/corpus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Small real files: cheap enough to fully decode hundreds of mutants in a debug build.
fn small_fixtures() -> Vec<Vec<u8>> {
    [
        "immich__metadata__dates__date-priority-test.jpg",
        "immich__metadata__dates__gps-datetime.jpg",
        "drewnoakes__webp__HTC_Desire.webp",
        "drewnoakes__heic__NullPointerException.HeifPictureHandler.processBox.heif",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let facts = extract_facts(&bytes);
        let _ = analyze(&bytes, facts.orientation, &PixelLimits::default());
        let _ = inspect(&bytes, &InspectOptions::default(), NOW);
    }

    #[test]
    fn arbitrary_bytes_behind_real_magic_never_panic(
        magic in prop_oneof![
            Just(b"\xFF\xD8\xFF\xE1".to_vec()),
            Just(b"\x89PNG\r\n\x1a\n".to_vec()),
            Just(b"RIFF\0\x10\0\0WEBPVP8X".to_vec()),
            Just(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec()),
        ],
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let bytes = [magic, tail].concat();
        let facts = extract_facts(&bytes);
        let _ = analyze(&bytes, facts.orientation, &PixelLimits::default());
    }

    #[test]
    fn mutated_real_files_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = small_fixtures().swap_remove(which);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let facts = extract_facts(&bytes);
        let _ = analyze(&bytes, facts.orientation, &PixelLimits::default());
        let _ = inspect(&bytes, &InspectOptions::default(), NOW);
    }
}

fn coord() -> impl Strategy<Value = Option<Coord>> {
    let rational = (
        any::<u32>(),
        prop_oneof![Just(0u32), Just(1), Just(100), any::<u32>()],
    );
    prop_oneof![
        Just(None),
        (
            -200.0f64..200.0,
            prop_oneof![Just('N'), Just('S'), Just('E'), Just('W'), Just('X')]
        )
            .prop_map(|(v, r)| Some(Coord::Dms(v.abs(), r))),
        (
            [rational.clone(), rational.clone(), rational],
            any::<char>()
        )
            .prop_map(|(parts, r)| Some(Coord::Raw(parts, r))),
        (-200.0f64..200.0).prop_map(|v| Some(Coord::Signed(v))),
    ]
}

fn exif_text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("0000:00:00 00:00:00".to_owned())),
        Just(Some("    :  :     :  :  ".to_owned())),
        "[0-9]{4}:[0-9]{2}:[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}".prop_map(Some),
        "\\PC{0,30}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Fuzz target: structured EXIF with hostile values. Extraction must not panic and must
    /// never hand out an impossible number.
    #[test]
    fn fuzz_exif_facts_are_valid_or_typed_invalid(
        lat in coord(),
        lon in coord(),
        datetime in exif_text(),
        software in exif_text(),
        accuracy in (any::<u32>(), any::<u32>()),
        gps_time in [(any::<u32>(), any::<u32>()), (any::<u32>(), any::<u32>()), (any::<u32>(), any::<u32>())],
    ) {
        let spec = ExifSpec {
            datetime_original: datetime,
            software,
            lat,
            lon,
            accuracy_m: Some(accuracy),
            gps_date: Some("2026:11:20"),
            gps_time: Some(gps_time),
            ..ExifSpec::default()
        };
        let bytes = with_exif(&jpeg(&scene(1, 16, 16), 80), &spec);
        let facts = extract_facts(&bytes);
        if let GpsFact::Valid(fix) = facts.gps {
            prop_assert!((-90.0..=90.0).contains(&fix.point.lat()));
            prop_assert!((-180.0..=180.0).contains(&fix.point.lon()));
            prop_assert!(!(fix.point.lat() == 0.0 && fix.point.lon() == 0.0));
            prop_assert!(fix.accuracy_m.is_none_or(|a| a.is_finite() && a >= 0.0));
        }
        if let LocalTime::Present { datetime, .. } = facts.capture.local {
            prop_assert!(datetime.year() >= 1990);
        }
        if let CaptureTime::Resolved { at, .. } = facts.capture.resolve(time::macros::offset!(+8)) {
            prop_assert_eq!(at.offset(), time::UtcOffset::UTC);
        }
    }
}

fn manifest() -> impl Strategy<Value = Option<ManifestFix>> {
    proptest::option::of(
        (
            -89.0f64..89.0,
            -179.0f64..179.0,
            0.0f64..5000.0,
            any::<bool>(),
            -100_000i64..100_000,
        )
            .prop_map(|(lat, lon, acc, mock, secs)| ManifestFix {
                point: LatLon::new(lat, lon).unwrap(),
                accuracy_m: Some(acc),
                is_mock: mock,
                captured_at: Some(NOW + Duration::seconds(secs)),
            }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Same inputs, same verdict: no clock, no randomness, no hidden state.
    #[test]
    fn the_verdict_is_a_pure_function_of_its_inputs(
        which in 0usize..4,
        manifest in manifest(),
        site in (30.0f64..32.0, 120.0f64..122.0, 10.0f64..5000.0, prop_oneof![Just(Crs::Wgs84), Just(Crs::Gcj02), Just(Crs::Bd09)]),
        witnesses in prop_oneof![Just(WitnessRequirement::Either), Just(WitnessRequirement::Both), Just(WitnessRequirement::ExifGps), Just(WitnessRequirement::ManifestFix)],
        window_secs in proptest::option::of((-1_000_000i64..0, 0i64..1_000_000)),
        phash in any::<u64>(),
        prior_lat in -80.0f64..80.0,
    ) {
        let bytes = small_fixtures().swap_remove(which);
        let facts = extract_facts(&bytes);
        let pixels = PixelState::Hashed { phash: fieldproof_domain::evidence::PerceptualHash(phash) };
        let site = SitePoint::new(site.0, site.1, site.3, site.2).unwrap();
        let policy = NodePolicy {
            witnesses,
            visit_window: window_secs.map(|(a, b)| VisitWindow {
                start: Some(NOW + Duration::seconds(a)),
                end: Some(NOW + Duration::seconds(b)),
            }),
            ..NodePolicy::default()
        };
        let history = History {
            evidence: vec![PriorEvidence { id: "a".into(), sha256: facts.sha256, phash: Some(fieldproof_domain::evidence::PerceptualHash(!phash)) }],
            recent_captures: vec![PriorCapture { evidence_id: "b".into(), at: NOW - Duration::hours(1), point: LatLon::new(prior_lat, 10.0).unwrap() }],
        };
        let run = || evaluate(&facts, &pixels, manifest.as_ref(), &policy, Some(&site), &history, NOW);
        let first = run();
        prop_assert_eq!(&first, &run());
        // And it survives storage: the serialized verdict reads back identical.
        let stored: fieldproof_domain::evidence::Verdict =
            serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap();
        prop_assert_eq!(first, stored);
    }
}
