//! Resumable uploads (docs/uploads.md §4): create or resume, HEAD, PATCH pieces at offsets, a
//! body cut off mid-way, and the service functions the evidence endpoint calls (assemble,
//! finish) and the scheduler calls (sweep).

use crate::helpers::{TestApp, error_body, spawn_app};
use bytes::Bytes;
use fieldproof::db;
use fieldproof::error::ErrorCode;
use fieldproof::services::uploads;
use futures_util::StreamExt;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const OCTETS: &str = "application/offset+octet-stream";

/// Deterministic bytes that differ at every position (no test data is checked in).
fn file_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn create(app: &TestApp, token: &str, capture_id: &str, file: &[u8]) -> Response {
    app.post(
        "/api/v1/uploads",
        token,
        &json!({"capture_id": capture_id, "size": file.len(), "sha256": sha256_hex(file)}),
    )
    .await
}

/// Start an upload of `file` and return its id.
async fn start(app: &TestApp, token: &str, capture_id: &str, file: &[u8]) -> String {
    let response = create(app, token, capture_id, file).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    body["upload_id"].as_str().expect("upload_id").to_owned()
}

async fn send_piece(app: &TestApp, token: &str, id: &str, offset: u64, piece: &[u8]) -> Response {
    app.request(Method::PATCH, &format!("/api/v1/uploads/{id}"), Some(token))
        .header("Upload-Offset", offset)
        .header("Content-Type", OCTETS)
        .body(piece.to_vec())
        .send()
        .await
        .expect("send")
}

/// HEAD: (status, Upload-Offset).
async fn head(app: &TestApp, token: &str, id: &str) -> (u16, Option<u64>) {
    let response = app
        .request(Method::HEAD, &format!("/api/v1/uploads/{id}"), Some(token))
        .send()
        .await
        .expect("send");
    let offset = response
        .headers()
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status().as_u16(), offset)
}

fn offset_header(response: &Response) -> u64 {
    response
        .headers()
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Upload-Offset header")
}

/// A PATCH of a piece at `offset` whose body the test sends bit by bit through the returned
/// sender (dropping it ends the body), and the request to await.
fn streamed_piece(
    app: &TestApp,
    token: &str,
    id: &str,
    offset: u64,
) -> (
    tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    impl std::future::Future<Output = reqwest::Result<Response>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let request = app
        .request(Method::PATCH, &format!("/api/v1/uploads/{id}"), Some(token))
        .header("Upload-Offset", offset)
        .header("Content-Type", OCTETS)
        .body(reqwest::Body::wrap_stream(body))
        .send();
    (tx, request)
}

/// Wait until the server has taken a PATCH of upload `id` and is writing its piece to a temp file.
async fn piece_started(app: &TestApp, id: &str) {
    let temp_dir = app.state.settings.data_dir.join("tmp");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_dir(&temp_dir).is_ok_and(|mut dir| {
        dir.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().contains(id)))
    }) {
        assert!(Instant::now() < deadline, "the piece never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The piece objects stored for upload `id`.
async fn pieces_of(app: &TestApp, id: &str) -> Vec<fieldproof::storage::BlobEntry> {
    app.state
        .blobs
        .list(&format!("uploads/{id}/"))
        .await
        .unwrap()
}

/// Upload `file` completely in one piece; returns the upload id.
async fn upload_whole(app: &TestApp, token: &str, capture_id: &str, file: &[u8]) -> String {
    let id = start(app, token, capture_id, file).await;
    let response = send_piece(app, token, &id, 0, file).await;
    assert_eq!(response.status(), 204);
    id
}

#[tokio::test]
async fn creating_an_upload_again_returns_the_same_session_and_offset() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(1000);

    let first: Value = create(&app, &token, "cap-1", &file)
        .await
        .json()
        .await
        .unwrap();
    let id = first["upload_id"].as_str().unwrap();
    assert_eq!(first["offset"], 0);
    assert_eq!(first["size"], 1000);
    assert_eq!(
        send_piece(&app, &token, id, 0, &file[..400]).await.status(),
        204
    );
    let again = create(&app, &token, "cap-1", &file).await;

    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["upload_id"], first["upload_id"]);
    assert_eq!(again["offset"], 400);
    assert_eq!(again["expires_at"], first["expires_at"]);
    let other_bytes = create(&app, &token, "cap-1", &file_bytes(999)).await;
    error_body(other_bytes, 409, "conflict").await;
}

#[tokio::test]
async fn size_and_hash_are_checked_when_an_upload_starts() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let good_hash = sha256_hex(b"x");
    let post = |body: Value| {
        let (app, token) = (&app, &token);
        async move { app.post("/api/v1/uploads", token, &body).await }
    };

    let empty = post(json!({"capture_id": "c", "size": 0, "sha256": good_hash})).await;
    let huge = post(json!({"capture_id": "c", "size": 26_214_401u64, "sha256": good_hash})).await;
    let short_hash = post(json!({"capture_id": "c", "size": 10, "sha256": "abc"})).await;
    let not_hex = post(json!({"capture_id": "c", "size": 10, "sha256": "z".repeat(64)})).await;
    let no_capture = post(json!({"capture_id": "", "size": 10, "sha256": good_hash})).await;
    let at_limit =
        post(json!({"capture_id": "c", "size": 26_214_400u64, "sha256": good_hash})).await;

    let body = error_body(empty, 422, "validation_failed").await;
    assert_eq!(body["details"]["field"], "size");
    let body = error_body(huge, 413, "payload_too_large").await;
    assert_eq!(body["details"]["max_bytes"], 26_214_400u64);
    let body = error_body(short_hash, 422, "validation_failed").await;
    assert_eq!(body["details"]["field"], "sha256");
    error_body(not_hex, 422, "validation_failed").await;
    error_body(no_capture, 422, "validation_failed").await;
    assert_eq!(at_limit.status(), 201);
}

#[tokio::test]
async fn three_pieces_bring_the_offset_to_the_full_size() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(3000);
    let id = start(&app, &token, "cap-3", &file).await;

    let mut offset = 0;
    for piece in [&file[..1000], &file[1000..2500], &file[2500..]] {
        let response = send_piece(&app, &token, &id, offset, piece).await;
        assert_eq!(response.status(), 204);
        offset = offset_header(&response);
    }
    let response = app
        .request(Method::HEAD, &format!("/api/v1/uploads/{id}"), Some(&token))
        .send()
        .await
        .unwrap();

    assert_eq!(offset, 3000);
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["Upload-Offset"], "3000");
    assert_eq!(headers["Upload-Length"], "3000");
    assert_eq!(headers["Cache-Control"], "no-store");
}

#[tokio::test]
async fn a_piece_at_the_wrong_offset_is_409_with_the_servers_offset() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(2000);
    let id = start(&app, &token, "cap-off", &file).await;
    send_piece(&app, &token, &id, 0, &file[..700]).await;

    let stale = send_piece(&app, &token, &id, 0, &file[..700]).await;
    let ahead = send_piece(&app, &token, &id, 1500, &file[1500..]).await;

    let body = error_body(stale, 409, "upload_offset_mismatch").await;
    assert_eq!(body["details"]["offset"], 700);
    let body = error_body(ahead, 409, "upload_offset_mismatch").await;
    assert_eq!(body["details"]["offset"], 700);
    assert_eq!(head(&app, &token, &id).await, (200, Some(700)));
}

#[tokio::test]
async fn a_piece_that_is_not_an_offset_stream_is_415() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(100);
    let id = start(&app, &token, "cap-ct", &file).await;

    let response = app
        .request(
            Method::PATCH,
            &format!("/api/v1/uploads/{id}"),
            Some(&token),
        )
        .header("Upload-Offset", 0)
        .header("Content-Type", "application/octet-stream")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    let no_offset = app
        .request(
            Method::PATCH,
            &format!("/api/v1/uploads/{id}"),
            Some(&token),
        )
        .header("Content-Type", OCTETS)
        .body(file.clone())
        .send()
        .await
        .unwrap();

    let body = error_body(response, 415, "unsupported_media_type").await;
    assert_eq!(body["details"]["expected"], OCTETS);
    error_body(no_offset, 400, "bad_request").await;
    assert_eq!(head(&app, &token, &id).await, (200, Some(0)));
}

#[tokio::test]
async fn bytes_beyond_the_declared_size_are_refused_and_nothing_is_kept() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(1000);
    let id = start(&app, &token, "cap-big", &file).await;
    send_piece(&app, &token, &id, 0, &file[..600]).await;

    let too_long = send_piece(&app, &token, &id, 600, &file_bytes(401)).await;
    // Without Content-Length the server counts while streaming.
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(vec![1u8; 300])),
        Ok(Bytes::from(vec![2u8; 300])),
    ];
    let streamed = app
        .request(
            Method::PATCH,
            &format!("/api/v1/uploads/{id}"),
            Some(&token),
        )
        .header("Upload-Offset", 600)
        .header("Content-Type", OCTETS)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();

    let body = error_body(too_long, 413, "payload_too_large").await;
    assert_eq!(body["details"]["remaining"], 400);
    error_body(streamed, 413, "payload_too_large").await;
    assert_eq!(head(&app, &token, &id).await, (200, Some(600)));
    let rest = send_piece(&app, &token, &id, 600, &file[600..]).await;
    assert_eq!(offset_header(&rest), 1000);
    let temp_files = std::fs::read_dir(app.state.settings.data_dir.join("tmp"))
        .map(|dir| dir.count())
        .unwrap_or(0);
    assert_eq!(
        temp_files, 0,
        "refused and stored pieces leave no temp file"
    );
}

#[tokio::test]
async fn a_piece_stored_by_a_request_that_never_advanced_the_offset_is_adopted() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(3000);
    let id = start(&app, &token, "cap-orphan", &file).await;
    send_piece(&app, &token, &id, 0, &file[..1000]).await;
    // A process stored the next 500 bytes and died before it could move the offset.
    let key = uploads::chunk_key(&id, 1000).unwrap();
    app.state
        .blobs
        .put_bytes(&key, file[1000..1500].to_vec(), OCTETS)
        .await
        .unwrap();

    let retry = send_piece(&app, &token, &id, 1000, &file[1000..]).await;

    let body = error_body(retry, 409, "upload_offset_mismatch").await;
    assert_eq!(body["details"]["offset"], 1500);
    let rest = send_piece(&app, &token, &id, 1500, &file[1500..]).await;
    assert_eq!(offset_header(&rest), 3000);
    let dest = tempfile::tempdir().unwrap();
    let assembled = uploads::assemble(
        &app.state,
        &app.caller("rep_a").await,
        &id,
        &dest.path().join("f"),
    )
    .await
    .expect("assemble");
    assert_eq!(assembled.sha256_hex, sha256_hex(&file));
}

#[tokio::test]
async fn another_users_upload_is_not_found() {
    let app = spawn_app().await;
    let owner = app.token("rep_a").await;
    let other = app.token("rep_b").await;
    let admin = app.token("admin").await;
    let file = file_bytes(100);
    let id = start(&app, &owner, "cap-mine", &file).await;

    assert_eq!(head(&app, &other, &id).await.0, 404);
    assert_eq!(head(&app, &admin, &id).await.0, 404);
    let patch = send_piece(&app, &other, &id, 0, &file).await;
    error_body(patch, 404, "not_found").await;
    assert_eq!(head(&app, &owner, &id).await, (200, Some(0)));
    // The same capture_id from another user is another upload.
    let theirs = start(&app, &other, "cap-mine", &file).await;
    assert_ne!(theirs, id);
}

#[tokio::test]
async fn a_piece_cut_off_mid_body_keeps_what_arrived_and_the_client_continues_from_head() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(50_000);
    let id = start(&app, &token, "cap-cut", &file).await;
    let arrived = 20_000;

    // The phone sends 20 000 bytes, then its link drops before the rest.
    let first = Bytes::copy_from_slice(&file[..arrived]);
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(
        futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err(std::io::Error::other("4G link dropped"))
        }),
    );
    let cut = app
        .request(
            Method::PATCH,
            &format!("/api/v1/uploads/{id}"),
            Some(&token),
        )
        .header("Upload-Offset", 0)
        .header("Content-Type", OCTETS)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    assert!(cut.is_err(), "the request should have failed on the client");

    // The server stores the partial piece after noticing the drop.
    let deadline = Instant::now() + Duration::from_secs(15);
    let resume_at = loop {
        let (status, offset) = head(&app, &token, &id).await;
        assert_eq!(status, 200);
        if offset == Some(arrived as u64) || Instant::now() > deadline {
            break offset.expect("Upload-Offset");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(resume_at, arrived as u64, "the bytes that arrived are kept");
    let rest = send_piece(&app, &token, &id, resume_at, &file[arrived..]).await;
    assert_eq!(rest.status(), 204);
    assert_eq!(offset_header(&rest), 50_000);

    let dest = tempfile::tempdir().unwrap();
    let path = dest.path().join("assembled");
    let assembled = uploads::assemble(&app.state, &app.caller("rep_a").await, &id, &path)
        .await
        .expect("assemble");
    assert_eq!(assembled.sha256_hex, sha256_hex(&file));
    assert_eq!(std::fs::read(&path).unwrap(), file);
}

#[tokio::test]
async fn two_pieces_at_one_offset_at_once_one_wins_and_the_other_is_409() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(400_000);
    let id = start(&app, &token, "cap-race", &file).await;

    let (a, b) = tokio::join!(
        send_piece(&app, &token, &id, 0, &file[..200_000]),
        send_piece(&app, &token, &id, 0, &file[..300_000]),
    );

    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [204, 409]);
    let (_, offset) = head(&app, &token, &id).await;
    let offset = offset.unwrap();
    assert!(offset == 200_000 || offset == 300_000, "offset {offset}");
    let rest = send_piece(&app, &token, &id, offset, &file[offset as usize..]).await;
    assert_eq!(rest.status(), 204);
    let dest = tempfile::tempdir().unwrap();
    let assembled = uploads::assemble(
        &app.state,
        &app.caller("rep_a").await,
        &id,
        &dest.path().join("f"),
    )
    .await
    .expect("the winner's bytes and the rest make the file");
    assert_eq!(assembled.size, 400_000);
}

#[tokio::test]
async fn assemble_checks_completeness_size_and_hash_and_finish_cleans_up() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let rep_a = app.caller("rep_a").await;
    let dest = tempfile::tempdir().unwrap();
    let path = dest.path().join("assembled");
    let file = file_bytes(5000);
    let id = start(&app, &token, "cap-asm", &file).await;
    for (from, to) in [(0, 2000), (2000, 5000)] {
        assert_eq!(
            send_piece(&app, &token, &id, from, &file[from as usize..to])
                .await
                .status(),
            204
        );
        if from == 0 {
            let early = uploads::assemble(&app.state, &rep_a, &id, &path).await;
            let err = early.expect_err("incomplete");
            assert_eq!(err.code, ErrorCode::UploadIncomplete);
        }
    }

    let not_mine = uploads::assemble(&app.state, &app.caller("rep_b").await, &id, &path).await;
    let assembled = uploads::assemble(&app.state, &rep_a, &id, &path)
        .await
        .expect("assemble");

    assert_eq!(not_mine.expect_err("not found").code, ErrorCode::NotFound);
    assert_eq!(assembled.size, 5000);
    assert_eq!(assembled.capture_id, "cap-asm");
    assert_eq!(assembled.sha256_hex, sha256_hex(&file));
    assert_eq!(std::fs::read(&path).unwrap(), file);

    // Another user naming this upload closes nothing and deletes no piece.
    uploads::finish(&app.state, &app.caller("rep_b").await, &id)
        .await
        .expect("finish of a session not one's own is a no-op");
    assert!(
        !app.state
            .blobs
            .list(&format!("uploads/{id}/"))
            .await
            .unwrap()
            .is_empty(),
        "the owner's pieces are still there"
    );
    uploads::finish(&app.state, &rep_a, &id)
        .await
        .expect("finish");
    uploads::finish(&app.state, &rep_a, &id)
        .await
        .expect("finish twice");
    let pieces = pieces_of(&app, &id).await;
    assert!(pieces.is_empty(), "pieces left: {pieces:?}");
    let again = uploads::assemble(&app.state, &rep_a, &id, &path).await;
    assert_eq!(again.expect_err("used").code, ErrorCode::Conflict);
    let late = send_piece(&app, &token, &id, 5000, b"x").await;
    error_body(late, 409, "conflict").await;
}

#[tokio::test]
async fn an_upload_whose_bytes_do_not_match_its_hash_or_lost_a_piece_is_corrupt() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let rep_a = app.caller("rep_a").await;
    let dest = tempfile::tempdir().unwrap();
    let path = dest.path().join("assembled");
    let file = file_bytes(3000);

    // Declared with one file's hash, sent another file's bytes of the same size.
    let declared = file_bytes(3001);
    let response = app
        .post(
            "/api/v1/uploads",
            &token,
            &json!({"capture_id": "cap-bad", "size": 3000, "sha256": sha256_hex(&declared[1..])}),
        )
        .await;
    let id: String = response.json::<Value>().await.unwrap()["upload_id"]
        .as_str()
        .unwrap()
        .into();
    send_piece(&app, &token, &id, 0, &file).await;
    let wrong_hash = uploads::assemble(&app.state, &rep_a, &id, &path).await;

    // A complete upload whose second piece vanished from the store.
    let lost = start(&app, &token, "cap-lost", &file).await;
    send_piece(&app, &token, &lost, 0, &file[..1000]).await;
    send_piece(&app, &token, &lost, 1000, &file[1000..]).await;
    let key = uploads::chunk_key(&lost, 1000).unwrap();
    app.state.blobs.delete(&key).await.unwrap();
    let missing = uploads::assemble(&app.state, &rep_a, &lost, &path).await;

    assert_eq!(
        wrong_hash.expect_err("corrupt").code,
        ErrorCode::UploadCorrupt
    );
    assert_eq!(missing.expect_err("corrupt").code, ErrorCode::UploadCorrupt);
    assert!(!path.exists(), "a failed assembly leaves no file");
    let good = upload_whole(&app, &token, "cap-good", &file).await;
    uploads::assemble(&app.state, &rep_a, &good, &path)
        .await
        .expect("a sound upload still assembles");
}

#[tokio::test]
async fn expired_uploads_are_swept_with_their_pieces() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(2000);
    let id = start(&app, &token, "cap-old", &file).await;
    send_piece(&app, &token, &id, 0, &file[..800]).await;
    let now = db::now();

    let too_early = uploads::sweep_expired(&app.state, now).await.unwrap();
    let later = now + uploads::UPLOAD_TTL + time::Duration::minutes(1);
    let swept = uploads::sweep_expired(&app.state, later).await.unwrap();
    let again = uploads::sweep_expired(&app.state, later).await.unwrap();

    assert_eq!(too_early, 0);
    assert_eq!(swept, 1);
    assert_eq!(again, 0, "sweeping twice is harmless");
    assert_eq!(head(&app, &token, &id).await.0, 404);
    let pieces = pieces_of(&app, &id).await;
    assert!(pieces.is_empty(), "pieces left: {pieces:?}");
    // The capture can start over.
    let fresh = create(&app, &token, "cap-old", &file).await;
    assert_eq!(fresh.status(), 201);
}

/// The phone's PATCH is still streaming when its session expires and is swept: the piece it
/// stores afterwards is deleted by that request (no sweep would look for it again) and the phone
/// gets 404. Before, the piece stayed in the store for good.
#[tokio::test]
async fn a_piece_still_streaming_when_its_session_is_swept_is_not_left_behind() {
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    let file = file_bytes(2000);
    let id = start(&app, &token, "cap-late", &file).await;
    let (tx, request) = streamed_piece(&app, &token, &id, 0);
    let sweep_meanwhile = async {
        tx.send(Ok(Bytes::copy_from_slice(&file[..800])))
            .await
            .unwrap();
        piece_started(&app, &id).await;
        let later = db::now() + uploads::UPLOAD_TTL + time::Duration::minutes(1);
        let swept = uploads::sweep_expired(&app.state, later).await.unwrap();
        tx.send(Ok(Bytes::copy_from_slice(&file[800..])))
            .await
            .unwrap();
        drop(tx);
        swept
    };
    let (response, swept) = tokio::join!(request, sweep_meanwhile);
    assert_eq!(swept, 1);
    assert_eq!(response.unwrap().status(), 404);
    let pieces = pieces_of(&app, &id).await;
    assert!(pieces.is_empty(), "pieces left: {pieces:?}");
}

/// The sweep has closed an expired session and listed its pieces when a PATCH that was already
/// streaming stores its piece: the closed session refuses it, and the request deletes its own
/// piece (the sweep will not list again). Before, that piece stayed in the store for good.
#[tokio::test]
async fn a_piece_stored_after_the_sweep_listed_its_session_is_deleted_by_its_request() {
    let (inner, _store) = crate::helpers::test_blob_store().await;
    let (store, go) = crate::helpers::Held::wrap(inner);
    let app = crate::helpers::spawn_app_with_blobs(Some(store.clone())).await;
    let token = app.token("rep_a").await;
    let file = file_bytes(2000);
    let id = start(&app, &token, "cap-mid", &file).await;
    assert_eq!(
        send_piece(&app, &token, &id, 0, &file[..800])
            .await
            .status(),
        204
    );
    let (tx, request) = streamed_piece(&app, &token, &id, 800);
    let held = Duration::from_secs(15);
    let sweep_meanwhile = async {
        tx.send(Ok(Bytes::copy_from_slice(&file[800..1000])))
            .await
            .unwrap();
        piece_started(&app, &id).await;
        // The sweep closes the session, lists piece 0 and is held deleting it.
        let state = app.state.clone();
        let later = db::now() + uploads::UPLOAD_TTL + time::Duration::minutes(1);
        let sweep = tokio::spawn(async move { uploads::sweep_expired(&state, later).await });
        tokio::time::timeout(held, store.started.notified())
            .await
            .expect("the sweep deletes the first piece");
        // The streaming piece ends and is stored; its request finds the session closed and
        // deletes it (held too, while the session's row is still there).
        tx.send(Ok(Bytes::copy_from_slice(&file[1000..])))
            .await
            .unwrap();
        drop(tx);
        tokio::time::timeout(held, store.started.notified())
            .await
            .expect("the request deletes its own piece");
        go.send(true).unwrap();
        sweep.await.unwrap().unwrap()
    };
    let (response, swept) = tokio::join!(request, sweep_meanwhile);
    assert_eq!(swept, 1);
    // 409 `conflict` here: the sweep ran with a clock a day ahead, so by the request's clock the
    // session has not expired but is closed.
    assert_eq!(response.unwrap().status(), 409);
    let pieces = pieces_of(&app, &id).await;
    assert!(pieces.is_empty(), "pieces left: {pieces:?}");
}
