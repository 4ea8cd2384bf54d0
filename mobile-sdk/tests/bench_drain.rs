//! The drain bench (ignored by default; see mobile-sdk/README.md): N queued photos of M MB
//! drained by the SDK through the fault proxy, against the same photos sent by a plain
//! sequential HTTP client with no faults, each to a fresh demo server. Prints the ratio.
//!
//! `BENCH_PHOTOS` (default 500) and `BENCH_MB` (default 4) size it.

mod support;

use fieldproof_domain::capture::{CaptureManifest, DeviceFix};
use fieldproof_mobile::keystore::DeviceKey;
use fieldproof_mobile::{
    CaptureRequest, FieldDevice, FileKeyStore, FixInput, NoProgress, SyncOptions,
};
use std::time::{Duration, Instant};
use support::proxy::{Fault, FaultProxy};
use support::server::{Admin, DemoServer, PASSWORD};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "a benchmark: minutes and gigabytes; run it on purpose (see README)"]
fn drain_through_the_fault_proxy_versus_a_plain_sequential_client() {
    let photos = env_usize("BENCH_PHOTOS", 500);
    let size = env_usize("BENCH_MB", 4) * 1024 * 1024;
    let photo_dir = tempfile::tempdir().expect("photos");
    let paths: Vec<_> = (0..photos)
        .map(|i| {
            let path = photo_dir.path().join(format!("p{i:04}.jpg"));
            std::fs::write(&path, support::photos::padded_jpeg(90_000 + i as u64, size))
                .expect("write");
            path
        })
        .collect();

    // Baseline: a plain sequential client, one-shot multipart, no faults.
    let baseline = {
        let server = DemoServer::start();
        let rep = Admin::login(&server.url(), "rep1");
        let (deal_id, lat, lon) = rep.deal_with_visit();
        let keys = FileKeyStore::new(photo_dir.path().join("baseline.key"));
        let key = DeviceKey::load_or_create(&keys).expect("key");
        rep.post(
            "/devices",
            &serde_json::json!({"device_id": "bench-plain", "public_key": key.public_key_base64()}),
        );
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .expect("client");
        let started = Instant::now();
        for path in &paths {
            let bytes = std::fs::read(path).expect("read");
            let capture_id = uuid::Uuid::now_v7().to_string();
            let manifest = CaptureManifest {
                capture_id: capture_id.clone(),
                device_id: "bench-plain".into(),
                sha256: fieldproof_domain::evidence::ContentHash::of(&bytes).to_hex(),
                fix: Some(DeviceFix {
                    lat,
                    lon,
                    accuracy_m: Some(8.0),
                    is_mock: false,
                }),
                wall_clock: time::OffsetDateTime::now_utc(),
                monotonic_ms: 1,
                boot_id: "bench".into(),
            };
            let manifest_json = serde_json::to_string(&manifest).expect("json");
            let form = reqwest::blocking::multipart::Form::new()
                .text(
                    "meta",
                    serde_json::json!({"capture_id": capture_id, "tags": ["nameplate"]})
                        .to_string(),
                )
                .text("signature", key.sign_base64(manifest_json.as_bytes()))
                .text("manifest", manifest_json)
                .part(
                    "file",
                    reqwest::blocking::multipart::Part::bytes(bytes).file_name("p.jpg"),
                );
            let response = http
                .post(format!(
                    "{}/api/v1/deals/{deal_id}/nodes/site_survey/evidence",
                    server.url()
                ))
                .bearer_auth(&rep.token)
                .multipart(form)
                .send()
                .expect("upload");
            assert!(response.status().is_success(), "{}", response.status());
        }
        started.elapsed()
    };

    // The SDK: queued offline, drained through the fault proxy.
    let sdk = {
        let server = DemoServer::start();
        let rep = Admin::login(&server.url(), "rep1");
        let (deal_id, lat, lon) = rep.deal_with_visit();
        // Every connection dies sooner or later (a flaky link): cut at 3 MiB (mid-photo) or
        // after 48-64 MiB, a 503 with Retry-After: 1, a 500 ms stall then a cut.
        let proxy = FaultProxy::start(
            server.addr,
            vec![
                Fault::DropAfter(3 * 1024 * 1024),
                Fault::DropAfter(48 * 1024 * 1024),
                Fault::Unavailable(1),
                Fault::DropAfter(64 * 1024 * 1024),
                Fault::StallAfter(32 * 1024 * 1024, Duration::from_millis(500)),
            ],
        );
        let home = tempfile::tempdir().expect("home");
        let device = FieldDevice::open(
            home.path().to_str().expect("utf-8"),
            Box::new(FileKeyStore::new(home.path().join("device.key"))),
        )
        .expect("device");
        proxy.set_faults(false);
        device
            .login(&proxy.url(), "rep1", PASSWORD, "bench-sdk")
            .expect("login");
        device.enroll().expect("enroll");
        device.download_deals().expect("deals");
        for path in &paths {
            device
                .capture(&CaptureRequest {
                    photo_path: path.to_str().expect("utf-8").to_owned(),
                    deal_id: deal_id.clone(),
                    node_key: "site_survey".into(),
                    tags: vec!["nameplate".into()],
                    fix: Some(FixInput {
                        lat,
                        lon,
                        accuracy_m: Some(8.0),
                        is_mock: false,
                    }),
                    analyze_pixels: false,
                })
                .expect("capture");
        }
        proxy.set_faults(true);
        let options = SyncOptions {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_attempts: 20,
            ..SyncOptions::default()
        };
        let started = Instant::now();
        let mut runs = 0;
        while !device.queue().pending().expect("pending").is_empty() && runs < 20 {
            device.sync(options.clone(), &NoProgress).expect("sync");
            runs += 1;
        }
        let elapsed = started.elapsed();
        assert!(device.queue().pending().expect("pending").is_empty());
        eprintln!(
            "faults injected: {} (cuts {}, stalls {}, 503s {}) over {} connections, {runs} sync run(s)",
            proxy.faults_injected(),
            proxy
                .stats
                .dropped
                .load(std::sync::atomic::Ordering::SeqCst),
            proxy
                .stats
                .stalled
                .load(std::sync::atomic::Ordering::SeqCst),
            proxy
                .stats
                .unavailable
                .load(std::sync::atomic::Ordering::SeqCst),
            proxy
                .stats
                .connections
                .load(std::sync::atomic::Ordering::SeqCst),
        );
        elapsed
    };
    let ratio = sdk.as_secs_f64() / baseline.as_secs_f64();
    eprintln!(
        "drain bench: {photos} × {} MB; plain sequential client {:.1}s; SDK through fault proxy {:.1}s; ratio {ratio:.2}",
        size / (1024 * 1024),
        baseline.as_secs_f64(),
        sdk.as_secs_f64()
    );
}
