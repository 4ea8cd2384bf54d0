//! Kill -9 the real server in the middle of an upload, start it again on the same data: nothing
//! half-accepted survives, and the phone's retry completes.

use crate::photos::{ExifSpec, jpeg, scene, with_exif};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use time::OffsetDateTime;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start(data_dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fieldproof"))
        .args(["demo", "--port", &port.to_string(), "--data-dir"])
        .arg(data_dir)
        .env("FIELDPROOF_JOBS", "false")
        .env("FIELDPROOF_BLOB_STORE", "fs")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fieldproof demo")
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server at {base} never became ready");
}

async fn login(client: &reqwest::Client, base: &str, user: &str) -> String {
    let r: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": "fieldproof-demo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().expect("token").to_owned()
}

fn site_photo(lat: f64, lon: f64) -> Vec<u8> {
    let at = (OffsetDateTime::now_utc() - time::Duration::minutes(10))
        .to_offset(time::macros::offset!(+8));
    let local = format!(
        "{:04}:{:02}:{:02} {:02}:{:02}:{:02}",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    with_exif(
        &jpeg(&scene(404, 1600, 1200), 92),
        &ExifSpec::phone(lat, lon, &local),
    )
}

#[tokio::test]
async fn a_server_killed_mid_upload_accepts_nothing_and_the_retry_completes() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start(data.path(), port);
    wait_ready(&client, &base).await;

    let rep = login(&client, &base, "rep1").await;
    let auth = format!("Bearer {rep}");
    let customers: Value = client
        .get(format!("{base}/api/v1/customers"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let customer = customers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().contains("杭州"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sites: Value = client
        .get(format!("{base}/api/v1/customers/{customer}/sites"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contacts: Value = client
        .get(format!("{base}/api/v1/customers/{customer}/contacts"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (site, lat, lon) = (
        sites[0]["id"].as_str().unwrap().to_owned(),
        sites[0]["lat"].as_f64().unwrap(),
        sites[0]["lon"].as_f64().unwrap(),
    );
    let deal: Value = client
        .post(format!("{base}/api/v1/deals"))
        .header("authorization", &auth)
        .json(&json!({"customer_id": customer, "site_id": site, "title": "crash test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deal = deal["id"].as_str().unwrap().to_owned();
    let now = OffsetDateTime::now_utc();
    let fmt = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    client
        .post(format!("{base}/api/v1/deals/{deal}/nodes/visit_booked/visit"))
        .header("authorization", &auth)
        .json(&json!({"site_id": site, "contact_id": contacts[0]["id"], "starts_at": fmt(now - time::Duration::hours(1)), "ends_at": fmt(now + time::Duration::hours(1))}))
        .send()
        .await
        .unwrap();

    // Send half the multipart body, then kill the server while it waits for the rest.
    let capture = uuid::Uuid::new_v4().to_string();
    let photo = site_photo(lat, lon);
    let boundary = "crash-boundary";
    let mut head = format!("--{boundary}\r\ncontent-disposition: form-data; name=\"meta\"\r\n\r\n{}\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n", json!({"capture_id": capture, "tags": ["nameplate"]})).into_bytes();
    head.extend_from_slice(&photo[..photo.len() / 2]);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let url = format!("{base}/api/v1/deals/{deal}/nodes/site_survey/evidence");
    let request = client
        .post(&url)
        .header("authorization", &auth)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let in_flight = tokio::spawn(request);
    tx.send(Ok(head)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().expect("kill -9");
    server.wait().ok();
    drop(tx);
    assert!(
        in_flight.await.unwrap().is_err(),
        "the connection died with the server"
    );

    // Restart on the same database and blob folder.
    let mut server = start(data.path(), port);
    wait_ready(&client, &base).await;
    let rep = login(&client, &base, "rep1").await;
    let auth = format!("Bearer {rep}");
    let view: Value = client
        .get(format!("{base}/api/v1/deals/{deal}"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["current_node"], "site_survey");
    assert_eq!(
        view["nodes"][1]["requirements"][0]["missing"][0], "photos:0/3",
        "nothing was accepted"
    );
    let audit: Value = client
        .get(format!("{base}/api/v1/deals/{deal}/audit"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "evidence_received")
    );

    let form = Form::new()
        .part(
            "meta",
            Part::text(json!({"capture_id": capture, "tags": ["nameplate"]}).to_string()),
        )
        .part("file", Part::bytes(photo));
    let retry = client
        .post(&url)
        .header("authorization", &auth)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 201);
    let body: Value = retry.json().await.unwrap();
    assert_eq!(body["verdict"], "passed", "{body}");
    let evidence: Value = client
        .get(format!(
            "{base}/api/v1/evidence/{}",
            body["id"].as_str().unwrap()
        ))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let thumb = evidence["thumbnail_url"].as_str().unwrap();
    assert_eq!(
        client
            .get(format!("{base}{thumb}"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the bytes are there"
    );
    server.kill().ok();
    server.wait().ok();
}
