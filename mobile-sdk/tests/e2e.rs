//! End to end against the real server (`fieldproof demo` on loopback), through a fault proxy,
//! driving the real `fieldproof-field` CLI: capture offline, sync through drops, stalls and
//! 503s, kill the CLI mid-sync, and check that every capture became exactly one evidence row
//! with the verdict the pre-check predicted.

mod support;

use fieldproof_mobile::queue::Queue;
use fieldproof_mobile::{ItemState, QueueItem};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::proxy::{Fault, FaultProxy};
use support::server::{Admin, DemoServer, PASSWORD};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/corpus");

struct Field {
    home: tempfile::TempDir,
}

impl Field {
    fn new() -> Field {
        Field {
            home: tempfile::tempdir().expect("home"),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fieldproof-field"));
        cmd.arg("--home")
            .arg(self.home.path())
            .arg("--json")
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Value {
        let out: Output = self
            .command(args)
            .output()
            .expect("running fieldproof-field");
        assert!(
            out.status.success(),
            "fieldproof-field {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    fn queue(&self) -> Queue {
        Queue::open(self.home.path()).expect("queue")
    }

    fn items(&self) -> Vec<QueueItem> {
        self.queue().list().expect("items")
    }

    fn login_enroll_download(&self, server: &str) -> Value {
        self.run(&[
            "login",
            "--server",
            server,
            "--username",
            "rep1",
            "--password",
            PASSWORD,
            "--device-id",
            "e2e-phone",
        ]);
        self.run(&["enroll"]);
        self.run(&["deals"])
    }
}

/// No photo is gone from the queue folder unless the server acknowledged it (evidence id).
fn assert_no_unacknowledged_photo_deleted(items: &[QueueItem]) {
    for item in items {
        if !Path::new(&item.photo_path).exists() {
            assert!(
                item.photo_deleted && item.evidence_id.is_some(),
                "photo of {} deleted without acknowledgement: {item:?}",
                item.capture_id
            );
        }
    }
}

fn expected_state(precheck_outcome: &str) -> ItemState {
    match precheck_outcome {
        "passed" => ItemState::Accepted,
        "needs_review" => ItemState::NeedsReview,
        _ => ItemState::Rejected,
    }
}

#[test]
fn the_proxy_answers_503_with_retry_after_and_cuts_requests_mid_body() {
    let server = DemoServer::start();
    let proxy = FaultProxy::start(
        server.addr,
        vec![Fault::Unavailable(2), Fault::DropAfter(40), Fault::None],
    );
    let api = fieldproof_mobile::api::ApiClient::new(&proxy.url()).expect("client");
    let first = api.login("rep1", PASSWORD, "p").expect_err("503 first");
    assert_eq!(first.status(), Some(503));
    assert_eq!(first.retry_after(), Some(Duration::from_secs(2)));
    assert!(first.is_transient());
    let second = api
        .login("rep1", PASSWORD, "p")
        .expect_err("cut mid-request");
    assert!(second.is_transient(), "{second}");
    assert!(api.login("rep1", PASSWORD, "p").is_ok());
    assert_eq!(proxy.faults_injected(), 2);
}

/// Writes the 50 photos of the big test: every corpus file, 30 small generated photos and 5
/// generated photos above the resumable threshold. Returns (path, fix offset in degrees, mock).
fn fifty_photos(dir: &Path) -> Vec<(PathBuf, f64, bool)> {
    let mut photos = Vec::new();
    let mut corpus: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| !matches!(p.extension().and_then(|e| e.to_str()), Some("md" | "json")))
        .collect();
    corpus.sort();
    for path in corpus {
        photos.push((path, 0.0, false));
    }
    for i in 0..30u64 {
        let path = dir.join(format!("gen-{i:02}.jpg"));
        std::fs::write(&path, support::photos::generated_jpeg(1000 + i, 256)).expect("write");
        // Every tenth is taken 2 km north of the site; one says its location was mocked.
        let offset = if i % 10 == 9 { 0.018 } else { 0.0 };
        photos.push((path, offset, i == 4));
    }
    for i in 0..(50 - photos.len() as u64) {
        let path = dir.join(format!("big-{i:02}.jpg"));
        std::fs::write(&path, support::photos::padded_jpeg(2000 + i, 600_000)).expect("write");
        photos.push((path, 0.0, false));
    }
    assert_eq!(photos.len(), 50);
    photos
}

#[test]
fn fifty_offline_captures_reach_the_server_exactly_once_through_faults_and_kills() {
    let server = DemoServer::start();
    let rep = Admin::login(&server.url(), "rep1");
    let booked = rep.book_deal();
    let (deal_id, lat, lon) = (booked.deal_id.clone(), booked.lat, booked.lon);
    let proxy = FaultProxy::start(
        server.addr,
        vec![
            Fault::None,
            Fault::DropAfter(180_000),
            Fault::Unavailable(1),
            Fault::None,
            Fault::StallAfter(90_000, Duration::from_millis(1500)),
            Fault::DropAfter(3_000),
        ],
    );
    proxy.set_faults(false);
    let field = Field::new();
    let deals = field.login_enroll_download(&proxy.url());
    assert!(
        deals
            .as_array()
            .expect("deals")
            .iter()
            .any(|d| d["id"] == deal_id.as_str())
    );
    cache_visit_window_if_the_server_does_not_show_it(&field, &booked);

    // Offline: captures never touch the network.
    let photos_dir = tempfile::tempdir().expect("photos");
    for (path, offset, mock) in fifty_photos(photos_dir.path()) {
        let lat_s = (lat + offset).to_string();
        let lon_s = lon.to_string();
        let mut args = vec![
            "capture",
            path.to_str().expect("utf-8"),
            "--deal",
            &deal_id,
            "--node",
            "site_survey",
            "--lat",
            &lat_s,
            "--lon",
            &lon_s,
            "--accuracy",
            "8",
            "--tag",
            "nameplate",
        ];
        if mock {
            args.push("--mock");
        }
        let captured = field.run(&args);
        assert!(captured["precheck"]["outcome"].is_string(), "{captured}");
    }
    assert_eq!(field.items().len(), 50);

    proxy.set_faults(true);
    let sync_args = [
        "sync",
        "--resumable-threshold",
        "300000",
        "--chunk-size",
        "150000",
        "--min-delay-ms",
        "50",
        "--max-delay-ms",
        "400",
        "--max-attempts",
        "12",
    ];
    // Killed mid-sync, three times, at different moments.
    for kill_after_ms in [700u64, 1500, 2500] {
        let mut child = field.command(&sync_args).spawn().expect("sync");
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        let _ = child.kill();
        let _ = child.wait();
        let items = field.items();
        assert_no_unacknowledged_photo_deleted(&items);
        eprintln!(
            "killed after {kill_after_ms} ms: {} of 50 terminal, {} faults so far",
            items.iter().filter(|i| i.state.is_terminal()).count(),
            proxy.faults_injected()
        );
    }
    // Then let it finish (each run may stop early as "offline" if a fault streak is long).
    for _ in 0..10 {
        if field.items().iter().all(|i| i.state.is_terminal()) {
            break;
        }
        let _ = field.command(&sync_args).output().expect("sync");
        assert_no_unacknowledged_photo_deleted(&field.items());
    }
    let items = field.items();
    eprintln!(
        "connections {}, dropped {}, stalled {}, 503s {}; attempts {}",
        proxy
            .stats
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
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
        items.iter().map(|i| i.attempts).sum::<u32>()
    );
    assert!(proxy.faults_injected() > 0, "the proxy injected no fault");
    for item in &items {
        assert!(item.state.is_terminal(), "not terminal: {item:?}");
        let evidence_id = item
            .evidence_id
            .as_deref()
            .unwrap_or_else(|| panic!("no evidence for {item:?}"));
        let evidence = rep.get(&format!("/evidence/{evidence_id}"));
        assert_eq!(
            evidence["capture_id"],
            item.capture_id.as_str(),
            "{evidence}"
        );
        let predicted = item.precheck.as_ref().expect("pre-checked");
        assert_eq!(
            item.state,
            expected_state(&predicted.outcome),
            "pre-check and server disagree on {}: pre-check {:?}, server {:?}",
            item.capture_id,
            predicted.findings,
            item.reasons
        );
        assert!(item.photo_deleted, "acknowledged photo kept: {item:?}");
    }
    assert_eq!(
        evidence_rows_by_capture(&server.data_dir.path().join("fieldproof.db"))
            .into_iter()
            .filter(|(capture, _)| items.iter().any(|i| &i.capture_id == capture))
            .map(|(_, n)| n)
            .collect::<Vec<_>>(),
        vec![1; 50],
        "exactly one evidence row per capture"
    );
}

/// The deal view does not expose the booked visit window yet (`visit: {starts_at, ends_at}` is
/// announced); until it does, put the window the test booked into the downloaded deal, as
/// `deals` will once the server sends it. Without it the pre-check cannot see
/// `captured_before_window` and would rightly disagree with the server.
fn cache_visit_window_if_the_server_does_not_show_it(
    field: &Field,
    booked: &support::server::Booked,
) {
    let queue = field.queue();
    let json = queue
        .deal(&booked.deal_id)
        .expect("cache")
        .expect("deal cached");
    let mut deal: fieldproof_mobile::CachedDeal = serde_json::from_str(&json).expect("deal");
    if deal.visit.is_none() {
        deal.visit = Some(fieldproof_mobile::Visit {
            starts_at: booked.starts_at,
            ends_at: booked.ends_at,
        });
        queue
            .put_deal(&deal.id, &serde_json::to_string(&deal).expect("json"))
            .expect("cache");
    }
}

/// `capture_id → rows` in the server's evidence table.
fn evidence_rows_by_capture(db: &Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(db).expect("server db");
    let mut stmt = conn
        .prepare(
            "SELECT capture_id, COUNT(*) FROM evidence GROUP BY capture_id ORDER BY capture_id",
        )
        .expect("evidence table");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_revoked_session_stops_sync_cleanly_and_keeps_the_queue() {
    let server = DemoServer::start();
    let rep = Admin::login(&server.url(), "rep1");
    let (deal_id, lat, lon) = rep.deal_with_visit();
    let field = Field::new();
    field.login_enroll_download(&server.url());
    let photo = tempfile::NamedTempFile::new().expect("photo");
    std::fs::write(photo.path(), support::photos::generated_jpeg(7, 128)).expect("write");
    field.run(&[
        "capture",
        photo.path().to_str().expect("utf-8"),
        "--deal",
        &deal_id,
        "--node",
        "site_survey",
        "--lat",
        &lat.to_string(),
        "--lon",
        &lon.to_string(),
    ]);
    // Someone replays this device's refresh token: the server revokes the family.
    let queue = field.queue();
    let refresh = queue
        .setting("refresh_token")
        .expect("setting")
        .expect("token");
    let http = reqwest::blocking::Client::new();
    for _ in 0..2 {
        let _ = http
            .post(format!("{}/api/v1/auth/refresh", server.url()))
            .json(&serde_json::json!({"refresh_token": refresh, "device_id": "e2e-phone"}))
            .send();
    }
    // Make the SDK refresh before its next call.
    queue
        .set_setting("access_expires_at", Some("0"))
        .expect("setting");
    let out = field.command(&["sync"]).output().expect("sync");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["stopped"], "revoked");
    let items = field.items();
    assert!(!items[0].state.is_terminal(), "{items:?}");
    assert!(Path::new(&items[0].photo_path).exists());
}

#[test]
fn a_patch_cut_off_mid_body_resumes_from_the_servers_offset() {
    let server = DemoServer::start();
    let rep = Admin::login(&server.url(), "rep1");
    // The first connection is cut 200 kB into the request; later ones pass.
    let proxy = FaultProxy::start(server.addr, vec![Fault::DropAfter(200_000)]);
    let api = fieldproof_mobile::api::ApiClient::new(&proxy.url()).expect("client");
    let bytes = support::photos::padded_jpeg(42, 600_000);
    let file = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(file.path(), &bytes).expect("write");
    let sha = fieldproof_domain::evidence::ContentHash::of(&bytes).to_hex();
    let capture_id = uuid::Uuid::now_v7().to_string();
    proxy.set_faults(false);
    let upload = api
        .create_upload(&rep.token, &capture_id, 600_000, &sha)
        .expect("create");
    assert_eq!(upload.offset, 0);
    proxy.set_faults(true);
    // A fresh client: a new connection, which the proxy cuts mid-body.
    let cut = fieldproof_mobile::api::ApiClient::new(&proxy.url()).expect("client");
    let err = cut
        .patch_upload(&rep.token, &upload.upload_id, file.path(), 0, 600_000)
        .expect_err("cut mid-body");
    assert!(err.is_transient(), "{err}");
    proxy.set_faults(false);
    let mut offset = api
        .upload_offset(&rep.token, &upload.upload_id)
        .expect("HEAD");
    assert!(offset < 600_000, "offset {offset}");
    // The server may still be saving the cut piece when HEAD answers: a 409 then says where
    // it really stands (what the sync engine does too).
    for _ in 0..5 {
        match api.patch_upload(
            &rep.token,
            &upload.upload_id,
            file.path(),
            offset,
            600_000 - offset,
        ) {
            Ok(done) => {
                offset = done;
                break;
            }
            Err(fieldproof_mobile::api::CallError::Status {
                status: 409,
                details,
                ..
            }) => {
                offset = details["offset"].as_u64().expect("details.offset");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(offset, 600_000);
    // Creating again with the same capture_id returns the same upload, complete.
    let again = api
        .create_upload(&rep.token, &capture_id, 600_000, &sha)
        .expect("again");
    assert_eq!(again.upload_id, upload.upload_id);
    assert_eq!(again.offset, 600_000);
}

#[test]
fn an_answer_lost_after_the_server_stored_the_evidence_is_replayed_not_duplicated() {
    let server = DemoServer::start();
    let rep = Admin::login(&server.url(), "rep1");
    let booked = rep.book_deal();
    let field = Field::new();
    field.login_enroll_download(&server.url());
    cache_visit_window_if_the_server_does_not_show_it(&field, &booked);
    let dir = tempfile::tempdir().expect("dir");
    let small = dir.path().join("small.jpg");
    let big = dir.path().join("big.jpg");
    std::fs::write(&small, support::photos::generated_jpeg(11, 256)).expect("write");
    std::fs::write(&big, support::photos::padded_jpeg(12, 500_000)).expect("write");
    let (lat, lon) = (booked.lat.to_string(), booked.lon.to_string());
    for photo in [&small, &big] {
        field.run(&[
            "capture",
            photo.to_str().expect("utf-8"),
            "--deal",
            &booked.deal_id,
            "--node",
            "site_survey",
            "--lat",
            &lat,
            "--lon",
            &lon,
            "--tag",
            "nameplate",
        ]);
    }
    let sync = [
        "sync",
        "--resumable-threshold",
        "300000",
        "--chunk-size",
        "200000",
        "--keep-photos",
    ];
    field.run(&sync);
    let first: Vec<(String, Option<String>)> = field
        .items()
        .into_iter()
        .map(|i| (i.capture_id, i.evidence_id))
        .collect();
    assert!(first.iter().all(|(_, e)| e.is_some()), "{first:?}");
    // The answers never arrived, as far as the phone knows: both items back to `uploading`
    // (the big one still holding its finished upload_id).
    let conn = rusqlite::Connection::open(field.home.path().join("queue.sqlite3")).expect("db");
    conn.execute(
        "UPDATE captures SET state = 'uploading', evidence_id = NULL, reasons_json = '[]'",
        [],
    )
    .expect("reset");
    let report = field.run(&sync);
    assert_eq!(report["attempted"], 2, "{report}");
    let again: Vec<(String, Option<String>)> = field
        .items()
        .into_iter()
        .map(|i| (i.capture_id, i.evidence_id))
        .collect();
    assert_eq!(again, first, "the same evidence, replayed");
    assert_eq!(
        evidence_rows_by_capture(&server.data_dir.path().join("fieldproof.db")).len(),
        2
    );
}
