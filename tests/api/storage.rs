//! The blob store contract, run against the store this test run uses: the folder store by
//! default, the S3 store (a fresh bucket per test) when `FIELDPROOF_TEST_S3_ENDPOINT` is set.
//! Plus readiness through `/readyz`, with the store up and with S3 unreachable.

use crate::helpers::{error_body, spawn_app, spawn_app_with_blobs, test_blob_store};
use fieldproof::config::{BlobStoreKind, Settings};
use fieldproof::storage::{self, BlobKey, BlobStore, PutOutcome, StoreError};
use futures_util::TryStreamExt;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

fn key(raw: &str) -> BlobKey {
    BlobKey::parse(raw).expect("valid key")
}

/// A temp file holding `bytes`, as the upload pipeline hands over a finished upload.
fn temp_file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(bytes).expect("write temp file");
    file.flush().expect("flush temp file");
    file
}

/// Deterministic incompressible-looking bytes (xorshift), so no test data is checked in.
fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An S3 store pointed at a port where nothing listens.
pub fn unreachable_s3_store() -> Arc<dyn BlobStore> {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let settings = Settings {
        blob_store: BlobStoreKind::S3,
        s3_endpoint: Some(format!("http://127.0.0.1:{closed_port}")),
        s3_access_key_id: Some("test".into()),
        s3_secret_access_key: Some(SecretString::from("test")),
        s3_create_bucket: true,
        ..Settings::default()
    };
    storage::from_settings(&settings).expect("build S3 store")
}

#[tokio::test]
async fn bytes_and_files_round_trip() {
    let (store, _dir) = test_blob_store().await;
    let thumb = key("thumbs/aa/aabb.webp");
    let original = key("originals/aa/aabb.jpg");
    let file = temp_file_with(b"jpeg bytes");

    let put_bytes = store
        .put_bytes(&thumb, b"webp bytes".to_vec(), "image/webp")
        .await
        .unwrap();
    let put_file = store
        .put_file(&original, file.path(), "image/jpeg")
        .await
        .unwrap();

    assert_eq!(put_bytes, PutOutcome::Created);
    assert_eq!(put_file, PutOutcome::Created);
    assert_eq!(store.get(&thumb).await.unwrap(), b"webp bytes");
    let streamed: Vec<bytes::Bytes> = store
        .get_stream(&original)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.concat(), b"jpeg bytes");
    assert!(store.exists(&original).await.unwrap());
    assert!(file.path().exists(), "the caller's temp file is left alone");
}

#[tokio::test]
async fn a_missing_blob_is_not_found() {
    let (store, _dir) = test_blob_store().await;
    let missing = key("originals/00/none");

    assert!(!store.exists(&missing).await.unwrap());
    assert!(matches!(
        store.get(&missing).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_stream(&missing).await.map(|_| ()),
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn putting_an_existing_key_keeps_the_original_bytes() {
    let (store, _dir) = test_blob_store().await;
    let k = key("originals/bb/same");
    store
        .put_bytes(&k, b"first".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let other_file = temp_file_with(b"second from a file");

    let again_bytes = store
        .put_bytes(&k, b"second".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let again_file = store
        .put_file(&k, other_file.path(), "image/jpeg")
        .await
        .unwrap();

    assert_eq!(again_bytes, PutOutcome::AlreadyExisted);
    assert_eq!(again_file, PutOutcome::AlreadyExisted);
    assert_eq!(store.get(&k).await.unwrap(), b"first");
}

#[tokio::test]
async fn a_second_process_cannot_overwrite_a_stored_key() {
    // Two stores on one backend stand for two API processes: no shared lock between them, so
    // only the backend's own create-if-absent (link(2), If-None-Match) keeps the first bytes.
    let (first, fixture) = test_blob_store().await;
    let second = fixture.another_process();
    let k = key("originals/bb/two-processes");
    first
        .put_bytes(&k, b"first".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let small = temp_file_with(b"second, small");
    let large = temp_file_with(&pseudo_random_bytes(9 * 1024 * 1024, 9));

    let bytes_again = second
        .put_bytes(&k, b"second".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let small_again = second
        .put_file(&k, small.path(), "image/jpeg")
        .await
        .unwrap();
    let large_again = second
        .put_file(&k, large.path(), "image/jpeg")
        .await
        .unwrap();

    assert_eq!(bytes_again, PutOutcome::AlreadyExisted);
    assert_eq!(small_again, PutOutcome::AlreadyExisted);
    assert_eq!(large_again, PutOutcome::AlreadyExisted);
    assert_eq!(second.get(&k).await.unwrap(), b"first");
}

#[tokio::test]
async fn twenty_concurrent_puts_of_one_key_create_it_exactly_once() {
    let (store, _dir) = test_blob_store().await;
    let k = key("originals/cc/race");
    // Distinct bytes per writer, so a torn or overwritten blob would show.
    let files: Vec<_> = (0..20u8)
        .map(|i| temp_file_with(&pseudo_random_bytes(64 * 1024, u64::from(i) + 1)))
        .collect();

    let writers = files.iter().enumerate().map(|(i, file)| {
        let (store, k, path) = (store.clone(), k.clone(), file.path().to_path_buf());
        tokio::spawn(async move { (i, store.put_file(&k, &path, "image/jpeg").await) })
    });
    let results = futures_util::future::join_all(writers).await;

    let mut winners = Vec::new();
    for result in results {
        let (i, outcome) = result.expect("writer task");
        match outcome.expect("put") {
            PutOutcome::Created => winners.push(i),
            PutOutcome::AlreadyExisted => {}
        }
    }
    assert_eq!(winners.len(), 1, "writers that created it: {winners:?}");
    let stored = store.get(&k).await.unwrap();
    let winner_bytes = std::fs::read(files[winners[0]].path()).unwrap();
    assert!(
        stored == winner_bytes,
        "stored bytes are the winner's, whole"
    );
}

#[tokio::test]
async fn a_large_file_round_trips_in_parts() {
    let (store, _dir) = test_blob_store().await;
    let size = 20 * 1024 * 1024 + 12_345;
    let file = {
        let bytes = pseudo_random_bytes(size, 42);
        temp_file_with(&bytes)
    };
    let expected = Sha256::digest(std::fs::read(file.path()).unwrap());
    let k = key("originals/dd/large.heic");

    let first = store.put_file(&k, file.path(), "image/heic").await.unwrap();
    let second = store.put_file(&k, file.path(), "image/heic").await.unwrap();

    assert_eq!(first, PutOutcome::Created);
    assert_eq!(second, PutOutcome::AlreadyExisted);
    let mut hasher = Sha256::new();
    let mut read = 0usize;
    let mut chunks = store.get_stream(&k).await.unwrap();
    while let Some(chunk) = chunks.try_next().await.unwrap() {
        read += chunk.len();
        hasher.update(&chunk);
    }
    assert_eq!(read, size);
    assert_eq!(hasher.finalize(), expected);
    let listed = store.list("originals/dd/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, size as u64);
}

#[tokio::test]
async fn concurrent_large_puts_of_one_key_create_it_exactly_once() {
    let (store, _dir) = test_blob_store().await;
    let k = key("originals/dd/raced-large");
    // Just over one S3 part, so every writer takes the multipart path.
    let size = 8 * 1024 * 1024 + 1000;
    let files: Vec<_> = (0..4u64)
        .map(|i| temp_file_with(&pseudo_random_bytes(size, 100 + i)))
        .collect();

    let writers = files.iter().enumerate().map(|(i, file)| {
        let (store, k, path) = (store.clone(), k.clone(), file.path().to_path_buf());
        tokio::spawn(async move { (i, store.put_file(&k, &path, "image/jpeg").await) })
    });
    let results = futures_util::future::join_all(writers).await;

    let winners: Vec<usize> = results
        .into_iter()
        .map(|r| r.expect("writer task"))
        .filter_map(|(i, outcome)| (outcome.expect("put") == PutOutcome::Created).then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "writers that created it: {winners:?}");
    let stored = store.get(&k).await.unwrap();
    let winner_bytes = std::fs::read(files[winners[0]].path()).unwrap();
    assert!(
        stored == winner_bytes,
        "stored bytes are the winner's, whole"
    );
}

#[tokio::test]
async fn list_shows_keys_sizes_and_times_under_a_prefix() {
    let (store, _dir) = test_blob_store().await;
    let before = OffsetDateTime::now_utc() - Duration::from_secs(60);
    for (k, len) in [
        ("originals/ee/one", 3),
        ("originals/ff/two", 5),
        ("thumbs/ee/one", 1),
    ] {
        store
            .put_bytes(&key(k), vec![7; len], "image/jpeg")
            .await
            .unwrap();
    }

    let originals = store.list("originals/").await.unwrap();
    let everything = store.list("").await.unwrap();
    let narrow = store.list("originals/e").await.unwrap();

    let names: Vec<_> = originals.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(names, ["originals/ee/one", "originals/ff/two"]);
    assert_eq!(originals[0].size, 3);
    assert_eq!(originals[1].size, 5);
    let after = OffsetDateTime::now_utc() + Duration::from_secs(60);
    for entry in &everything {
        assert!(
            entry.last_modified > before && entry.last_modified < after,
            "{entry:?}"
        );
    }
    assert_eq!(everything.len(), 3);
    assert_eq!(narrow.len(), 1);
    assert!(store.list("missing/").await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_removes_and_is_idempotent() {
    let (store, _dir) = test_blob_store().await;
    let k = key("originals/gg/gone");
    store
        .put_bytes(&k, b"x".to_vec(), "image/jpeg")
        .await
        .unwrap();

    store.delete(&k).await.unwrap();
    store.delete(&k).await.unwrap();
    store.delete(&key("never/there")).await.unwrap();

    assert!(!store.exists(&k).await.unwrap());
    assert!(store.list("originals/").await.unwrap().is_empty());
    assert_eq!(
        store
            .put_bytes(&k, b"y".to_vec(), "image/jpeg")
            .await
            .unwrap(),
        PutOutcome::Created,
        "a swept key can be stored again"
    );
}

#[tokio::test]
async fn presigned_get_downloads_the_bytes_where_the_backend_signs() {
    let (store, _dir) = test_blob_store().await;
    let k = key("thumbs/hh/signed.webp");
    store
        .put_bytes(&k, b"thumbnail".to_vec(), "image/webp")
        .await
        .unwrap();

    let url = store
        .presigned_get(&k, Duration::from_secs(300))
        .await
        .unwrap();

    match store.kind() {
        "s3" => {
            let url = url.expect("S3 presigns");
            let response = reqwest::get(&url).await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            assert_eq!(response.headers()["content-type"], "image/webp");
            assert_eq!(response.bytes().await.unwrap().as_ref(), b"thumbnail");
        }
        _ => assert!(
            url.is_none(),
            "the folder store leaves signing to the server"
        ),
    }
}

#[tokio::test]
async fn invalid_keys_and_prefixes_are_refused() {
    let (store, _dir) = test_blob_store().await;

    for bad in [
        "../etc/passwd",
        "/abs",
        "a//b",
        "Caps.jpg",
        ".staging/x",
        "",
    ] {
        assert!(
            matches!(BlobKey::parse(bad), Err(StoreError::InvalidKey { .. })),
            "{bad:?}"
        );
    }
    for bad in ["../", "/", "UP"] {
        assert!(
            matches!(store.list(bad).await, Err(StoreError::InvalidKey { .. })),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn unreachable_s3_fails_fast_as_unavailable() {
    let store = unreachable_s3_store();
    let started = Instant::now();

    let checked = store.check().await;
    let put = store
        .put_bytes(&key("originals/ii/x"), b"x".to_vec(), "image/jpeg")
        .await;

    assert!(
        matches!(checked, Err(StoreError::Unavailable { .. })),
        "{checked:?}"
    );
    assert!(
        matches!(put, Err(StoreError::Unavailable { .. })),
        "{put:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn readiness_reports_the_blob_store() {
    let app = spawn_app().await;
    let expected_kind = match crate::helpers::test_s3_endpoint() {
        Some(_) => "s3",
        None => "fs",
    };

    let ready = app
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .unwrap();

    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["blob_store"], "ok");
    assert_eq!(body["blob_store_kind"], expected_kind);
}

#[tokio::test]
async fn readiness_is_503_with_retry_after_when_s3_is_unreachable() {
    let app = spawn_app_with_blobs(Some(unreachable_s3_store())).await;

    let response = app
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["retry-after"], "5");
    let body = error_body(response, 503, "service_unavailable").await;
    assert_eq!(body["details"]["component"], "blob_store");
}
