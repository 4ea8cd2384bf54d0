//! Generated edge cases with their expected verdicts: one sentence-named test per case.

mod support;

use fieldproof_domain::evidence::{
    CheckCode, Format, GpsFact, GpsInvalid, History, InspectOptions, ManifestFix, NodePolicy,
    Outcome, PixelLimits, PixelState, PriorCapture, PriorEvidence, Verdict, VerdictOutcome,
    VerifyContext, VisitWindow, WitnessRequirement, analyze, evaluate, extract_facts, inspect,
    verify,
};
use fieldproof_domain::geo::{Crs, LatLon, SitePoint};
use support::{Coord, ExifSpec, jpeg, png_claiming, scene, with_exif};
use time::OffsetDateTime;
use time::macros::datetime;

// A Shanghai customer site; the rep's photo is taken right there at 10:00 +08:00.
const LAT: f64 = 31.1774276;
const LON: f64 = 121.5272106;
const TAKEN: &str = "2026:11:20 10:00:00";
const RECEIVED: OffsetDateTime = datetime!(2026-11-20 05:00 UTC);

fn window() -> VisitWindow {
    VisitWindow {
        start: Some(datetime!(2026-11-20 01:00 UTC)),
        end: Some(datetime!(2026-11-20 04:00 UTC)),
    }
}

fn policy() -> NodePolicy {
    NodePolicy {
        visit_window: Some(window()),
        ..NodePolicy::default()
    }
}

fn wgs_site() -> SitePoint {
    SitePoint::new(LAT, LON, Crs::Wgs84, 300.0).unwrap()
}

fn photo(spec: &ExifSpec) -> Vec<u8> {
    with_exif(&jpeg(&scene(1, 320, 240), 90), spec)
}

fn judge(
    bytes: &[u8],
    site: SitePoint,
    manifest: Option<&ManifestFix>,
    history: History,
) -> Verdict {
    let ctx = VerifyContext {
        manifest,
        policy: policy(),
        site: Some(site),
        history,
        ..VerifyContext::default()
    };
    verify(bytes, None, &ctx, RECEIVED).verdict
}

fn outcome_of(verdict: &Verdict, code: CheckCode) -> Option<Outcome> {
    verdict
        .checks
        .iter()
        .find(|c| c.code == code)
        .map(|c| c.outcome)
}

fn findings(verdict: &Verdict) -> Vec<(CheckCode, Outcome)> {
    verdict.findings().map(|c| (c.code, c.outcome)).collect()
}

#[test]
fn a_genuine_photo_at_the_site_during_the_visit_passes() {
    let v = judge(
        &photo(&ExifSpec::phone(LAT, LON, TAKEN)),
        wgs_site(),
        None,
        History::default(),
    );
    assert_eq!(findings(&v), vec![]);
    assert_eq!(v.outcome, VerdictOutcome::Passed);
    assert_eq!(v.captured_at, Some(datetime!(2026-11-20 02:00 UTC)));
}

#[test]
fn a_gcj02_site_is_matched_by_converting_the_photo_forward() {
    let gcj = LatLon::new(LAT, LON).unwrap().wgs84_to(Crs::Gcj02);
    let site = SitePoint::new(gcj.lat(), gcj.lon(), Crs::Gcj02, 300.0).unwrap();
    let v = judge(
        &photo(&ExifSpec::phone(LAT, LON, TAKEN)),
        site,
        None,
        History::default(),
    );
    assert_eq!(v.outcome, VerdictOutcome::Passed, "{:?}", findings(&v));
    // The same coordinates mislabelled as WGS-84 put a genuine photo ~500 m away.
    let mislabelled = SitePoint::new(gcj.lat(), gcj.lon(), Crs::Wgs84, 300.0).unwrap();
    let v = judge(
        &photo(&ExifSpec::phone(LAT, LON, TAKEN)),
        mislabelled,
        None,
        History::default(),
    );
    assert_eq!(findings(&v), vec![(CheckCode::OutsideSite, Outcome::Fail)]);
}

#[test]
fn a_bd09_site_is_matched_and_420_m_away_is_rejected_with_the_numbers() {
    let bd = LatLon::new(LAT, LON).unwrap().wgs84_to(Crs::Bd09);
    let site = SitePoint::new(bd.lat(), bd.lon(), Crs::Bd09, 300.0).unwrap();
    let v = judge(
        &photo(&ExifSpec::phone(LAT, LON, TAKEN)),
        site,
        None,
        History::default(),
    );
    assert_eq!(v.outcome, VerdictOutcome::Passed, "{:?}", findings(&v));
    // 420 m north (plus the 12 m accuracy credit): 0.0037772° of latitude ≈ 420 m.
    let far = ExifSpec::phone(LAT + 0.003_777_2, LON, TAKEN);
    let v = judge(&photo(&far), site, None, History::default());
    assert_eq!(v.outcome, VerdictOutcome::Rejected);
    let check = v
        .checks
        .iter()
        .find(|c| c.code == CheckCode::OutsideSite)
        .unwrap();
    let distance = check.detail.distance_m.unwrap();
    assert!((distance - 420.0).abs() < 5.0, "{distance}");
    assert_eq!(check.detail.radius_m, Some(300.0));
    assert_eq!(check.detail.site_crs, Some(Crs::Bd09));
    assert!(check.message().zh.starts_with("照片拍摄地点距离客户现场 4"));
}

#[test]
fn accuracy_widens_the_fence_but_only_up_to_the_policy_cap() {
    // 350 m away with 60 m accuracy: 350 − 60 ≤ 300 passes.
    let mut spec = ExifSpec::phone(LAT + 0.003_148, LON, TAKEN);
    spec.accuracy_m = Some((60, 1));
    let v = judge(&photo(&spec), wgs_site(), None, History::default());
    assert_eq!(v.outcome, VerdictOutcome::Passed, "{:?}", findings(&v));
    // 350 m away with 3 km accuracy: only 100 m credited, and the coarse fix is flagged.
    spec.accuracy_m = Some((3000, 1));
    spec.lat = Some(Coord::Dms(LAT + 0.00405, 'N'));
    let v = judge(&photo(&spec), wgs_site(), None, History::default());
    assert_eq!(
        findings(&v),
        vec![
            (CheckCode::OutsideSite, Outcome::Fail),
            (CheckCode::CoarseAccuracy, Outcome::Warn)
        ]
    );
}

#[test]
fn a_backdated_photo_is_rejected_before_the_window() {
    let v = judge(
        &photo(&ExifSpec::phone(LAT, LON, "2026:11:18 10:00:00")),
        wgs_site(),
        None,
        History::default(),
    );
    assert_eq!(
        findings(&v),
        vec![(CheckCode::CapturedBeforeWindow, Outcome::Fail)]
    );
    let check = v.findings().next().unwrap();
    assert_eq!(check.detail.minutes, Some(47 * 60));
}

#[test]
fn a_future_dated_photo_is_rejected() {
    let v = judge(
        &photo(&ExifSpec::phone(LAT, LON, "2026:11:21 10:00:00")),
        wgs_site(),
        None,
        History::default(),
    );
    assert_eq!(
        findings(&v),
        vec![
            (CheckCode::CapturedAfterWindow, Outcome::Fail),
            (CheckCode::CapturedInFuture, Outcome::Fail)
        ]
    );
}

#[test]
fn a_photo_saved_by_photoshop_needs_review() {
    let mut spec = ExifSpec::phone(LAT, LON, TAKEN);
    spec.software = Some("Adobe Photoshop 25.0 (Macintosh)".to_owned());
    let v = judge(&photo(&spec), wgs_site(), None, History::default());
    assert_eq!(
        findings(&v),
        vec![(CheckCode::EditedBySoftware, Outcome::Warn)]
    );
    assert_eq!(v.outcome, VerdictOutcome::NeedsReview);
}

#[test]
fn a_recycled_file_is_an_exact_duplicate() {
    let bytes = photo(&ExifSpec::phone(LAT, LON, TAKEN));
    let history = History {
        evidence: vec![PriorEvidence {
            id: "ev-1".into(),
            sha256: extract_facts(&bytes).sha256,
            phash: None,
        }],
        ..History::default()
    };
    let v = judge(&bytes, wgs_site(), None, history);
    assert_eq!(
        findings(&v),
        vec![(CheckCode::DuplicateExact, Outcome::Fail)]
    );
    assert_eq!(
        v.findings()
            .next()
            .unwrap()
            .detail
            .other_evidence_id
            .as_deref(),
        Some("ev-1")
    );
}

fn phash_of(bytes: &[u8]) -> fieldproof_domain::evidence::PerceptualHash {
    match analyze(bytes, None, &PixelLimits::default()).state {
        PixelState::Hashed { phash } => phash,
        other => panic!("{other:?}"),
    }
}

#[test]
fn re_encoded_resized_and_cropped_copies_are_near_duplicates_and_another_scene_is_not() {
    let original = scene(7, 640, 480);
    let reference = phash_of(&jpeg(&original, 92));
    let reencoded = jpeg(&original, 55);
    let resized = jpeg(
        &image::imageops::resize(&original, 400, 300, image::imageops::FilterType::Triangle),
        85,
    );
    let cropped = jpeg(
        &image::imageops::crop_imm(&original, 16, 12, 608, 456).to_image(),
        85,
    );
    let policy = NodePolicy::default();
    for (name, bytes) in [
        ("re-encoded", &reencoded),
        ("resized", &resized),
        ("cropped", &cropped),
    ] {
        let d = reference.distance(phash_of(bytes));
        assert!(
            d <= policy.near_duplicate_max_distance,
            "{name}: distance {d}"
        );
    }
    for seed in [8, 9, 10] {
        let d = reference.distance(phash_of(&jpeg(&scene(seed, 640, 480), 90)));
        assert!(
            d > policy.near_duplicate_max_distance + 6,
            "seed {seed}: distance {d}"
        );
    }
    // Through the verdict: the recycled copy names the evidence it copies.
    let history = History {
        evidence: vec![PriorEvidence {
            id: "ev-other-customer".into(),
            sha256: extract_facts(&jpeg(&original, 92)).sha256,
            phash: Some(reference),
        }],
        ..History::default()
    };
    let v = judge(
        &with_exif(&cropped, &ExifSpec::phone(LAT, LON, TAKEN)),
        wgs_site(),
        None,
        history,
    );
    assert_eq!(
        findings(&v),
        vec![(CheckCode::DuplicateNear, Outcome::Fail)]
    );
    let check = v.findings().next().unwrap();
    assert_eq!(
        check.detail.other_evidence_id.as_deref(),
        Some("ev-other-customer")
    );
}

#[test]
fn zero_denominator_gps_is_invalid_not_a_number() {
    let mut spec = ExifSpec::phone(LAT, LON, TAKEN);
    spec.lat = Some(Coord::Raw([(31, 1), (10, 0), (0, 0)], 'N'));
    let bytes = photo(&spec);
    assert_eq!(
        extract_facts(&bytes).gps,
        GpsFact::Invalid {
            reason: GpsInvalid::ZeroDenominator
        }
    );
    let v = judge(&bytes, wgs_site(), None, History::default());
    assert_eq!(findings(&v), vec![(CheckCode::GpsInvalid, Outcome::Fail)]);
    // With the phone's own fix as the second witness it only needs review.
    let manifest = manifest_at(LAT, LON);
    let v = judge(&bytes, wgs_site(), Some(&manifest), History::default());
    assert_eq!(findings(&v), vec![(CheckCode::GpsInvalid, Outcome::Warn)]);
}

#[test]
fn latitude_213_is_not_a_place() {
    let mut spec = ExifSpec::phone(LAT, LON, TAKEN);
    spec.lat = Some(Coord::Raw([(213, 1), (0, 1), (0, 1)], 'N'));
    assert_eq!(
        extract_facts(&photo(&spec)).gps,
        GpsFact::Invalid {
            reason: GpsInvalid::LatitudeOutOfRange
        }
    );
}

#[test]
fn signed_rationals_without_refs_give_southern_and_western_points() {
    let mut spec = ExifSpec::phone(0.0, 0.0, TAKEN);
    spec.lat = Some(Coord::Signed(-33.8568));
    spec.lon = Some(Coord::Signed(-70.6483));
    let fix = *extract_facts(&photo(&spec)).gps.valid().unwrap();
    assert!((fix.point.lat() + 33.8568).abs() < 1e-6 && (fix.point.lon() + 70.6483).abs() < 1e-6);
}

#[test]
fn gps_and_exif_ifd_pointers_typed_ifd_13_are_still_followed() {
    let mut tiff = support::tiff(&ExifSpec::phone(LAT, LON, TAKEN));
    support::retype_ifd0_entry(&mut tiff, 0x8825, 13);
    support::retype_ifd0_entry(&mut tiff, 0x8769, 13);
    let facts = extract_facts(&support::with_tiff(&jpeg(&scene(1, 32, 32), 80), &tiff));
    assert!(facts.gps.valid().is_some(), "{:?}", facts.gps);
    assert!(matches!(
        facts.capture.local,
        fieldproof_domain::evidence::LocalTime::Present { .. }
    ));
}

#[test]
fn webp_exif_with_a_jpeg_style_header_is_still_read() {
    let bytes =
        support::webp_with_exif_header(&scene(3, 64, 48), &ExifSpec::phone(LAT, LON, TAKEN));
    let facts = extract_facts(&bytes);
    assert_eq!(facts.format, Format::Webp);
    assert_eq!(facts.make.as_deref(), Some("Xiaomi"));
    assert!(facts.gps.valid().is_some());
    assert_eq!((facts.width, facts.height), (Some(64), Some(48)));
}

#[test]
fn a_truncated_photo_keeps_its_facts_and_its_pixels_fail_cleanly() {
    let bytes = photo(&ExifSpec::phone(LAT, LON, TAKEN));
    let truncated = &bytes[..bytes.len() * 6 / 10];
    let facts = extract_facts(truncated);
    assert!(facts.gps.valid().is_some());
    let v = judge(truncated, wgs_site(), None, History::default());
    assert_eq!(v, judge(truncated, wgs_site(), None, History::default()));
    // jpeg-decoder pads a cut-off scan, so a truncated JPEG may still hash; either way no panic
    // and no "passed" on unreadable pixels.
    if let Some(outcome) = outcome_of(&v, CheckCode::PixelsUnreadable) {
        assert_eq!(outcome, Outcome::Fail);
    }
}

#[test]
fn an_empty_file_and_random_bytes_are_unknown_and_rejected() {
    let mut rng = support::Rng::new(42);
    let random: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    for bytes in [&[][..], &random[..]] {
        let report = inspect(bytes, &InspectOptions::default(), RECEIVED);
        assert_eq!(report.format, Format::Unknown);
        assert_eq!(report.verdict, VerdictOutcome::Rejected);
        let codes: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.code)
            .collect();
        assert_eq!(
            codes,
            vec![
                CheckCode::UnsupportedFormat,
                CheckCode::GpsMissing,
                CheckCode::CaptureTimeMissing
            ]
        );
    }
}

#[test]
fn a_png_claiming_60000_by_60000_is_refused_without_allocating() {
    let bomb = png_claiming(60_000, 60_000);
    let started = std::time::Instant::now();
    let result = analyze(&bomb, None, &PixelLimits::default());
    assert!(started.elapsed().as_millis() < 500);
    assert_eq!(
        result.state,
        PixelState::Unreadable {
            reason: fieldproof_domain::evidence::pixels::UnreadableReason::TooLarge
        }
    );
    assert_eq!(extract_facts(&bomb).width, Some(60_000));
}

fn manifest_at(lat: f64, lon: f64) -> ManifestFix {
    ManifestFix {
        point: LatLon::new(lat, lon).unwrap(),
        accuracy_m: Some(8.0),
        is_mock: false,
        captured_at: Some(datetime!(2026-11-20 02:00:01 UTC)),
    }
}

#[test]
fn a_photo_stripped_by_a_picker_passes_on_the_manifest_unless_exif_is_required() {
    let spec = ExifSpec {
        make: Some("Apple"),
        ..ExifSpec::default()
    };
    let bytes = photo(&spec);
    let manifest = manifest_at(LAT, LON);
    let v = judge(&bytes, wgs_site(), Some(&manifest), History::default());
    assert_eq!(v.outcome, VerdictOutcome::Passed, "{:?}", findings(&v));
    assert_eq!(
        v.captured_at_source,
        Some(fieldproof_domain::evidence::CaptureSource::Manifest)
    );

    let strict = NodePolicy {
        witnesses: WitnessRequirement::ExifGps,
        ..policy()
    };
    let facts = extract_facts(&bytes);
    let v = evaluate(
        &facts,
        &PixelState::NotAnalyzed,
        Some(&manifest),
        &strict,
        Some(&wgs_site()),
        &History::default(),
        RECEIVED,
    );
    assert_eq!(
        findings(&v),
        vec![
            (CheckCode::GpsMissing, Outcome::Fail),
            (CheckCode::CaptureTimeMissing, Outcome::Fail)
        ]
    );
}

#[test]
fn a_mock_location_or_a_disagreeing_fix_is_rejected() {
    let bytes = photo(&ExifSpec::phone(LAT, LON, TAKEN));
    let mut mock = manifest_at(LAT, LON);
    mock.is_mock = true;
    let v = judge(&bytes, wgs_site(), Some(&mock), History::default());
    assert_eq!(findings(&v), vec![(CheckCode::MockLocation, Outcome::Fail)]);
    let elsewhere = manifest_at(LAT + 0.02, LON);
    let v = judge(&bytes, wgs_site(), Some(&elsewhere), History::default());
    assert_eq!(
        findings(&v),
        vec![(CheckCode::DeviceFixDisagrees, Outcome::Fail)]
    );
}

#[test]
fn two_captures_implying_a_flight_need_review() {
    let history = History {
        recent_captures: vec![PriorCapture {
            evidence_id: "ev-beijing".into(),
            at: datetime!(2026-11-20 01:00 UTC),
            point: LatLon::new(39.9042, 116.4074).unwrap(),
        }],
        ..History::default()
    };
    let v = judge(
        &photo(&ExifSpec::phone(LAT, LON, TAKEN)),
        wgs_site(),
        None,
        history,
    );
    assert_eq!(
        findings(&v),
        vec![(CheckCode::ImpossibleTravel, Outcome::Warn)]
    );
    let speed = v.findings().next().unwrap().detail.speed_kmh.unwrap();
    assert!(speed > 1000.0, "{speed}");
}

#[test]
fn a_heic_gets_a_no_pixels_note_not_an_error() {
    let heic = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/corpus/drewnoakes__heic__exif-at-eof.heic"
    ))
    .unwrap();
    let analysis = analyze(&heic, Some(1), &PixelLimits::default());
    assert!(matches!(analysis.state, PixelState::NoPixels { .. }));
    let ctx = VerifyContext::default();
    let derivative = jpeg(&scene(5, 300, 400), 85);
    let with_derivative = verify(&heic, Some(&derivative), &ctx, RECEIVED);
    assert!(matches!(
        with_derivative.pixels.state,
        PixelState::Hashed { .. }
    ));
    assert!(with_derivative.pixels.thumbnail.is_some());
}

#[test]
fn the_thumbnail_is_small_and_upright() {
    let mut spec = ExifSpec::phone(LAT, LON, TAKEN);
    spec.orientation = Some(6); // stored landscape, shown portrait
    let bytes = with_exif(&jpeg(&scene(2, 1600, 1200), 90), &spec);
    let analysis = analyze(
        &bytes,
        extract_facts(&bytes).orientation,
        &PixelLimits::default(),
    );
    let thumb = analysis.thumbnail.unwrap();
    assert!(thumb.width.max(thumb.height) <= 512);
    assert!(
        thumb.height > thumb.width,
        "{}x{}",
        thumb.width,
        thumb.height
    );
    assert_eq!(
        image::load_from_memory(&thumb.jpeg).unwrap().height(),
        thumb.height
    );
}

#[test]
fn inspect_prints_the_documented_shape() {
    let bytes = photo(&ExifSpec::phone(LAT, LON, TAKEN));
    let options = InspectOptions {
        site: Some(wgs_site()),
        window_start: window().start,
        window_end: window().end,
    };
    let json = serde_json::to_value(inspect(&bytes, &options, RECEIVED)).unwrap();
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["checks", "facts", "format", "verdict"]);
    assert_eq!(json["format"], "jpeg");
    assert_eq!(json["verdict"], "passed");
    let facts = &json["facts"];
    assert_eq!(facts["captured_at"], "2026-11-20T02:00:00Z");
    assert_eq!(facts["captured_at_source"], "offset");
    assert_eq!(facts["local_datetime"], "2026-11-20T10:00:00");
    assert!((facts["gps"]["lat"].as_f64().unwrap() - LAT).abs() < 1e-6);
    assert_eq!(facts["gps"]["alt"], serde_json::Value::Null);
    assert_eq!(facts["gps"]["accuracy_m"], 12.0);
    assert_eq!(facts["make"], "Xiaomi");
    assert_eq!(facts["width"], 320);
    for check in json["checks"].as_array().unwrap() {
        let keys: Vec<_> = check.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["code", "detail", "outcome"]);
    }
}
