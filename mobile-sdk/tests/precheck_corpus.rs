//! The on-device pre-check on real-device photos from fixtures/corpus: the server's rules,
//! run with the cached site, visit window and the queue's earlier captures.

use fieldproof_domain::capture::CaptureManifest;
use fieldproof_mobile::{
    CachedDeal, CachedSite, CaptureRequest, Clocks, FieldDevice, FixInput, MemoryKeyStore, Visit,
};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::macros::datetime;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/corpus");
/// Where `drewnoakes__jpg__Apple_iPhone_4.jpg` says it was taken (Rome).
const ROME: (f64, f64) = (41.853, 12.488_833_333_333_3);

struct FixedClocks(OffsetDateTime);

impl Clocks for FixedClocks {
    fn wall_now(&self) -> OffsetDateTime {
        self.0
    }
    fn monotonic_ms(&self) -> u64 {
        5_000_000
    }
    fn boot_id(&self) -> String {
        "boot-test".into()
    }
}

fn device(dir: &std::path::Path, now: OffsetDateTime) -> FieldDevice {
    let device = FieldDevice::with_clocks(
        dir.to_str().unwrap(),
        Box::new(MemoryKeyStore::default()),
        Box::new(FixedClocks(now)),
    )
    .unwrap();
    // Logged in (a device id) but never enrolled (no key).
    device
        .queue()
        .set_setting("device_id", Some("test-phone"))
        .unwrap();
    device
}

fn deal(site: (f64, f64), radius_m: f64, visit: Option<Visit>) -> CachedDeal {
    CachedDeal {
        id: "deal-1".into(),
        title: "pumps".into(),
        customer_id: "cust-1".into(),
        current_node: Some("site_survey".into()),
        site: Some(CachedSite {
            id: "site-1".into(),
            name: "plant".into(),
            lat: site.0,
            lon: site.1,
            crs: "wgs84".into(),
            radius_m,
            utc_offset_minutes: 60,
        }),
        visit,
        node_policies: BTreeMap::new(),
        fetched_at: OffsetDateTime::now_utc(),
    }
}

fn cache(device: &FieldDevice, deal: &CachedDeal) {
    device
        .queue()
        .put_deal(&deal.id, &serde_json::to_string(deal).unwrap())
        .unwrap();
}

fn capture(
    device: &FieldDevice,
    file: &str,
    fix: Option<(f64, f64)>,
) -> fieldproof_mobile::CaptureResult {
    device
        .capture(&CaptureRequest {
            photo_path: format!("{CORPUS}/{file}"),
            deal_id: "deal-1".into(),
            node_key: "site_survey".into(),
            tags: vec!["nameplate".into()],
            fix: fix.map(|(lat, lon)| FixInput {
                lat,
                lon,
                accuracy_m: Some(10.0),
                is_mock: false,
            }),
            analyze_pixels: true,
        })
        .unwrap()
}

fn codes(result: &fieldproof_mobile::CaptureResult) -> Vec<String> {
    result
        .precheck
        .as_ref()
        .unwrap()
        .findings
        .iter()
        .map(|f| f.code.clone())
        .collect()
}

/// A device with a key and a device id, as enrollment leaves it (no server needed).
fn enrolled(dir: &std::path::Path, now: OffsetDateTime) -> FieldDevice {
    let keys = MemoryKeyStore::default();
    fieldproof_mobile::keystore::DeviceKey::load_or_create(&keys).unwrap();
    let device = FieldDevice::with_clocks(
        dir.to_str().unwrap(),
        Box::new(keys),
        Box::new(FixedClocks(now)),
    )
    .unwrap();
    device
        .queue()
        .set_setting("device_id", Some("test-phone"))
        .unwrap();
    device
}

#[test]
fn a_photo_taken_at_the_site_during_the_visit_passes_the_precheck() {
    let dir = tempfile::tempdir().unwrap();
    let device = enrolled(dir.path(), datetime!(2011-01-13 15:00 UTC));
    cache(
        &device,
        &deal(
            ROME,
            300.0,
            Some(Visit {
                starts_at: datetime!(2011-01-13 13:00 UTC),
                ends_at: datetime!(2011-01-13 17:00 UTC),
            }),
        ),
    );
    let result = capture(&device, "drewnoakes__jpg__Apple_iPhone_4.jpg", Some(ROME));
    let report = result.precheck.clone().unwrap();
    assert_eq!(report.outcome, "passed", "{:?}", report.findings);
    assert!(report.pixels_analyzed);
}

#[test]
fn a_photo_far_from_the_site_says_how_far_and_the_radius() {
    let dir = tempfile::tempdir().unwrap();
    let device = enrolled(dir.path(), datetime!(2011-01-13 15:00 UTC));
    // The site is ~720 m north of where the photo was taken.
    cache(&device, &deal((ROME.0 + 0.0065, ROME.1), 300.0, None));
    let result = capture(&device, "drewnoakes__jpg__Apple_iPhone_4.jpg", None);
    let report = result.precheck.unwrap();
    assert_eq!(report.outcome, "rejected");
    let outside = report
        .findings
        .iter()
        .find(|f| f.code == "outside_site")
        .expect("outside_site");
    assert!(outside.message.contains("300"), "{}", outside.message);
    assert!(!outside.message_zh.is_empty());
}

#[test]
fn a_photo_without_gps_and_without_a_fix_is_flagged_gps_missing() {
    let dir = tempfile::tempdir().unwrap();
    let device = enrolled(dir.path(), datetime!(2022-03-31 12:00 UTC));
    cache(&device, &deal(ROME, 300.0, None));
    let result = capture(&device, "immich__albums__nature__prairie_falcon.jpg", None);
    assert!(
        codes(&result).contains(&"gps_missing".to_owned()),
        "{:?}",
        codes(&result)
    );
    assert_eq!(result.precheck.unwrap().outcome, "rejected");
}

#[test]
fn a_photo_taken_before_the_visit_window_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let device = enrolled(dir.path(), datetime!(2011-01-14 12:00 UTC));
    cache(
        &device,
        &deal(
            ROME,
            300.0,
            Some(Visit {
                starts_at: datetime!(2011-01-14 09:00 UTC),
                ends_at: datetime!(2011-01-14 17:00 UTC),
            }),
        ),
    );
    let result = capture(&device, "drewnoakes__jpg__Apple_iPhone_4.jpg", Some(ROME));
    assert!(
        codes(&result).contains(&"captured_before_window".to_owned()),
        "{:?}",
        codes(&result)
    );
}

#[test]
fn the_same_photo_captured_twice_is_flagged_as_already_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let device = enrolled(dir.path(), datetime!(2011-01-13 15:00 UTC));
    cache(&device, &deal(ROME, 300.0, None));
    let first = capture(&device, "drewnoakes__jpg__Apple_iPhone_4.jpg", Some(ROME));
    assert!(!codes(&first).contains(&"duplicate_exact".to_owned()));
    let second = capture(&device, "drewnoakes__jpg__Apple_iPhone_4.jpg", Some(ROME));
    assert!(
        codes(&second).contains(&"duplicate_exact".to_owned()),
        "{:?}",
        codes(&second)
    );
}

#[test]
fn heic_without_decodable_pixels_is_prechecked_without_crashing() {
    let dir = tempfile::tempdir().unwrap();
    let device = enrolled(dir.path(), datetime!(2019-03-21 16:10 UTC));
    cache(&device, &deal((41.2203, -96.071625), 300.0, None));
    let result = capture(
        &device,
        "immich__formats__heic__IMG_2682.heic",
        Some((41.2203, -96.071625)),
    );
    let report = result.precheck.unwrap();
    assert_eq!(report.outcome, "passed", "{:?}", report.findings);
}

#[test]
fn the_queued_photo_is_byte_identical_and_the_manifest_signature_verifies() {
    use base64::Engine;
    use ed25519_dalek::Verifier;
    let dir = tempfile::tempdir().unwrap();
    let keys = MemoryKeyStore::default();
    let key = fieldproof_mobile::keystore::DeviceKey::load_or_create(&keys).unwrap();
    let verifying = key.verifying_key();
    let device = FieldDevice::with_clocks(
        dir.path().to_str().unwrap(),
        Box::new(keys),
        Box::new(FixedClocks(datetime!(2011-01-13 15:00 UTC))),
    )
    .unwrap();
    device
        .queue()
        .set_setting("device_id", Some("test-phone"))
        .unwrap();
    let file = "drewnoakes__jpg__Apple_iPhone_4.jpg";
    let result = capture(&device, file, Some(ROME));
    let pending = device.queue().pending().unwrap();
    let item = &pending[0];
    let original = std::fs::read(format!("{CORPUS}/{file}")).unwrap();
    assert_eq!(std::fs::read(&item.item.photo_path).unwrap(), original);
    let manifest: CaptureManifest = serde_json::from_str(&item.manifest_json).unwrap();
    assert_eq!(manifest.capture_id, result.capture_id);
    assert_eq!(manifest.sha256, result.sha256);
    assert_eq!(manifest.device_id, "test-phone");
    assert_eq!(manifest.boot_id, "boot-test");
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&item.signature)
        .unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
    verifying
        .verify(item.manifest_json.as_bytes(), &sig)
        .expect("signature over the exact manifest bytes");
    // Without a downloaded deal, capture still works offline; only the pre-check is skipped.
    let unknown = device
        .capture(&CaptureRequest {
            photo_path: format!("{CORPUS}/{file}"),
            deal_id: "never-downloaded".into(),
            node_key: "site_survey".into(),
            tags: vec![],
            fix: None,
            analyze_pixels: false,
        })
        .unwrap();
    assert!(unknown.precheck.is_none());
}

#[test]
fn capture_before_enrollment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let device = device(dir.path(), datetime!(2011-01-13 15:00 UTC));
    let err = device
        .capture(&CaptureRequest {
            photo_path: format!("{CORPUS}/drewnoakes__jpg__Apple_iPhone_4.jpg"),
            deal_id: "deal-1".into(),
            node_key: "site_survey".into(),
            tags: vec![],
            fix: None,
            analyze_pixels: false,
        })
        .unwrap_err();
    assert!(
        matches!(err, fieldproof_mobile::SdkError::NotEnrolled),
        "{err}"
    );
    assert!(device.queue_items().unwrap().is_empty());
}

#[test]
fn an_empty_gps_block_is_flagged_as_invalid_gps() {
    let dir = tempfile::tempdir().unwrap();
    let device = enrolled(dir.path(), datetime!(2025-06-02 12:00 UTC));
    cache(&device, &deal(ROME, 300.0, None));
    let result = capture(
        &device,
        "immich__metadata__gps-position__empty_gps.jpg",
        None,
    );
    assert!(
        codes(&result).contains(&"gps_invalid".to_owned()),
        "{:?}",
        codes(&result)
    );
}
