//! Evidence intake end to end: real generated phone photos (EXIF time and GPS) uploaded over
//! HTTP, verified, stored in the blob store under test, and moving the deal's node.

use crate::helpers::{
    TestApp, error_body, query_plan, spawn_app, spawn_app_with, spawn_app_with_blobs,
    statement_plan, steps_back_to,
};
use crate::photos::{ExifSpec, jpeg, scene, with_exif};
use base64::Engine;
use ed25519_dalek::Signer;
use reqwest::multipart::{Form, Part};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use time::OffsetDateTime;

pub(crate) const SITE: (f64, f64) = (30.2281, 120.2986);

pub(crate) struct Setup {
    pub deal: String,
    pub rep: String,
}

/// A deal of rep_a at `site_survey`, site at SITE, visit window around now.
pub(crate) async fn deal_at_site_survey(app: &TestApp, customer_name: &str) -> Setup {
    let customer = app.customer_of("rep_a", customer_name).await;
    let rep = app.token("rep_a").await;
    let site: Value = app
        .post(
            &format!("/api/v1/customers/{customer}/sites"),
            &rep,
            &json!({"name": "厂区", "lat": SITE.0, "lon": SITE.1, "radius_m": 300}),
        )
        .await
        .json()
        .await
        .unwrap();
    let contact: Value = app
        .post(
            &format!("/api/v1/customers/{customer}/contacts"),
            &rep,
            &json!({"name": "张总", "seniority": "executive"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let deal: Value = app
        .post(
            "/api/v1/deals",
            &rep,
            &json!({"customer_id": customer, "site_id": site["id"], "title": "泵改造"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let deal = deal["id"].as_str().unwrap().to_owned();
    let now = OffsetDateTime::now_utc();
    let fmt = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let booked = app
        .post(
            &format!("/api/v1/deals/{deal}/nodes/visit_booked/visit"),
            &rep,
            &json!({"site_id": site["id"], "contact_id": contact["id"], "starts_at": fmt(now - time::Duration::hours(2)), "ends_at": fmt(now + time::Duration::hours(2))}),
        )
        .await;
    assert_eq!(booked.status(), 200);
    Setup { deal, rep }
}

/// The booked visit is the window photos are judged against: a booking posted at a later step
/// (to move the window onto old photos) is refused and leaves it as it was. Before, the site
/// survey took a visit of its own and the latest one counted.
#[tokio::test]
async fn a_visit_cannot_be_booked_again_at_a_later_step() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Rebook Co").await;
    async fn view(app: &TestApp, s: &Setup) -> Value {
        app.get(&format!("/api/v1/deals/{}", s.deal), &s.rep)
            .await
            .json()
            .await
            .unwrap()
    }
    let before = view(&app, &s).await;
    let visit = &before["visit"];
    assert!(visit["starts_at"].is_string(), "{before}");
    let rebook = app
        .post(
            &format!("/api/v1/deals/{}/nodes/site_survey/visit", s.deal),
            &s.rep,
            &json!({"site_id": visit["site_id"], "contact_id": visit["contact_id"], "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-01-01T04:00:00Z"}),
        )
        .await;
    let body = error_body(rebook, 422, "validation_failed").await;
    assert_eq!(body["details"]["field"], "node");
    assert_eq!(view(&app, &s).await["visit"], before["visit"]);
}

/// A phone photo taken `minutes_ago` at (lat, lon), local time +08:00.
pub(crate) fn photo(seed: u64, lat: f64, lon: f64, minutes_ago: i64) -> Vec<u8> {
    let at = (OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago))
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
        &jpeg(&scene(seed, 640, 480), 88),
        &ExifSpec::phone(lat, lon, &local),
    )
}

pub(crate) fn form(capture_id: &str, tags: &[&str], bytes: Vec<u8>) -> Form {
    Form::new()
        .part(
            "meta",
            Part::text(json!({"capture_id": capture_id, "tags": tags}).to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part("file", Part::bytes(bytes).file_name("IMG.jpg"))
}

pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    deal: &str,
    node: &str,
    form: Form,
) -> reqwest::Response {
    app.request(
        reqwest::Method::POST,
        &format!("/api/v1/deals/{deal}/nodes/{node}/evidence"),
        Some(token),
    )
    .multipart(form)
    .send()
    .await
    .unwrap()
}

pub(crate) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

fn check<'a>(evidence: &'a Value, code: &str) -> &'a Value {
    evidence["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {evidence}"))
}

#[tokio::test]
async fn three_genuine_site_photos_pass_the_survey_and_a_recycled_one_elsewhere_needs_a_supervisor()
{
    let app = spawn_app().await;
    let first = deal_at_site_survey(&app, "杭州恒力机械").await;
    let mut bodies = Vec::new();
    for (seed, tag) in [(1, "nameplate"), (2, "piping"), (3, "dimensions")] {
        let r = upload(
            &app,
            &first.rep,
            &first.deal,
            "site_survey",
            form(&uuid(), &[tag], photo(seed, SITE.0 + 0.0005, SITE.1, 30)),
        )
        .await;
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["verdict"], "passed", "{body}");
        bodies.push(body);
    }
    assert_eq!(bodies[2]["deal_current_node"], "pain_points_confirmed");
    assert_eq!(check(&bodies[0], "outside_site")["outcome"], "pass");
    assert_eq!(bodies[0]["captured_at_source"], "offset");

    // The same scene re-encoded, uploaded for a neighbouring customer's deal.
    let second = deal_at_site_survey(&app, "杭州邻厂").await;
    let recycled_bytes = {
        let at = (OffsetDateTime::now_utc() - time::Duration::minutes(20))
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
            &jpeg(&scene(1, 640, 480), 70),
            &ExifSpec::phone(SITE.0, SITE.1, &local),
        )
    };
    let r = upload(
        &app,
        &second.rep,
        &second.deal,
        "site_survey",
        form(&uuid(), &["nameplate"], recycled_bytes),
    )
    .await;
    let recycled: Value = r.json().await.unwrap();
    assert_eq!(recycled["verdict"], "rejected", "{recycled}");
    let near = check(&recycled, "duplicate_near");
    assert_eq!(near["outcome"], "fail");
    assert_eq!(near["detail"]["other_evidence_id"], bodies[0]["id"]);
    assert!(
        near["message_zh"]
            .as_str()
            .unwrap()
            .chars()
            .any(|c| c as u32 > 0x2E80)
    );

    // The supervisor sees it, with the other photo beside it, and approves with a reason.
    let supervisor = app.token("supervisor_east").await;
    let queue: Value = app
        .get("/api/v1/reviews", &supervisor)
        .await
        .json()
        .await
        .unwrap();
    let item = &queue["items"][0];
    assert_eq!(item["evidence"]["id"], recycled["id"]);
    assert_eq!(item["near_duplicate"]["evidence_id"], bodies[0]["id"]);
    assert!(item["thumbnail_url"].as_str().is_some());
    let decided: Value = app
        .post(&format!("/api/v1/evidence/{}/review", recycled["id"].as_str().unwrap()), &supervisor, &json!({"decision": "approve", "reason": "same pump model at both plants, checked by phone"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(decided["review_state"], "approved");
    let audit: Value = app
        .get(&format!("/api/v1/deals/{}/audit", second.deal), &supervisor)
        .await
        .json()
        .await
        .unwrap();
    let approved = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "evidence_approved")
        .unwrap();
    assert_eq!(
        approved["payload"]["reason"],
        "same pump model at both plants, checked by phone"
    );
    assert_eq!(approved["actor_id"], app.users["supervisor_east"].as_str());
    let chain: Value = app
        .get(
            &format!("/api/v1/deals/{}/audit/verify", second.deal),
            &supervisor,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chain["intact"], true);
}

#[tokio::test]
async fn the_same_capture_twice_returns_the_first_result_and_stores_nothing_new() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Retry Co").await;
    let id = uuid();
    let bytes = photo(11, SITE.0, SITE.1, 10);
    let first = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&id, &["nameplate"], bytes.clone()),
    )
    .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&id, &["nameplate"], bytes),
    )
    .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM evidence").await, 1);
    let other = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&id, &["nameplate"], photo(12, SITE.0, SITE.1, 10)),
    )
    .await;
    let body = error_body(other, 409, "capture_conflict").await;
    assert_eq!(body["details"]["evidence_id"], first["id"]);
}

#[tokio::test]
async fn a_retry_storm_of_one_capture_yields_one_row_and_one_blob() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Storm Co").await;
    // Two photos first: the storm's photo is the third, the one that moves the deal on, so a
    // retry that waited for the deal while another committed finds it at the next node.
    for (seed, tag) in [(22, "nameplate"), (23, "dimensions")] {
        let r = upload(
            &app,
            &s.rep,
            &s.deal,
            "site_survey",
            form(&uuid(), &[tag], photo(seed, SITE.0 + 0.0005, SITE.1, 30)),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let id = uuid();
    let bytes = photo(21, SITE.0, SITE.1, 10);
    let attempts = (0..20).map(|_| {
        upload(
            &app,
            &s.rep,
            &s.deal,
            "site_survey",
            form(&id, &["piping"], bytes.clone()),
        )
    });
    let responses = futures_util::future::join_all(attempts).await;
    let mut bodies = Vec::new();
    for r in responses {
        assert!(r.status() == 201 || r.status() == 200, "{}", r.status());
        bodies.push(r.json::<Value>().await.unwrap());
    }
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "every retry sees the first result"
    );
    assert_eq!(
        bodies[0]["deal_current_node"], "pain_points_confirmed",
        "{}",
        bodies[0]
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM evidence").await, 3);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM node_records WHERE kind = 'photo'"
        )
        .await,
        3
    );
    let originals = app.state.blobs.list("originals/").await.unwrap();
    assert_eq!(originals.len(), 3);
}

#[tokio::test]
async fn a_photo_taken_500_m_from_the_site_is_rejected_and_queued_for_review() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Far Co").await;
    // 0.0045° of latitude is about 500 m.
    let r = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(
            &uuid(),
            &["nameplate"],
            photo(31, SITE.0 + 0.0045, SITE.1, 15),
        ),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["verdict"], "rejected");
    let outside = check(&body, "outside_site");
    assert_eq!(outside["outcome"], "fail");
    let distance = outside["detail"]["distance_m"].as_f64().unwrap();
    assert!((450.0..550.0).contains(&distance), "{distance}");
    assert!(outside["message_zh"].as_str().unwrap().contains("米"));
    let supervisor = app.token("supervisor_east").await;
    let queue: Value = app
        .get("/api/v1/reviews?check=outside_site", &supervisor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queue["items"][0]["distance_m"].as_f64().unwrap(), distance);
    let none: Value = app
        .get("/api/v1/reviews?check=duplicate_near", &supervisor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    error_body(app.get("/api/v1/reviews", &s.rep).await, 404, "not_found").await;
    let south = app.token("manager_south").await;
    error_body(
        app.get(
            &format!("/api/v1/evidence/{}", body["id"].as_str().unwrap()),
            &south,
        )
        .await,
        404,
        "not_found",
    )
    .await;

    // Rejecting tells the rep to retake; a second decision is refused.
    let path = format!("/api/v1/evidence/{}/review", body["id"].as_str().unwrap());
    error_body(
        app.post(
            &path,
            &s.rep,
            &json!({"decision": "approve", "reason": "I was there"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let rejected: Value = app
        .post(
            &path,
            &supervisor,
            &json!({"decision": "reject", "reason": "photo is from the road, retake at the plant"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rejected["review_state"], "rejected");
    error_body(
        app.post(
            &path,
            &supervisor,
            &json!({"decision": "approve", "reason": "changed my mind"}),
        )
        .await,
        409,
        "review_closed",
    )
    .await;
    let inbox: Value = app
        .get("/api/v1/notifications", &s.rep)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "evidence_rejected"),
        "{inbox}"
    );
}

#[tokio::test]
async fn bad_uploads_get_clear_errors_and_leave_nothing_behind() {
    let app = spawn_app_with(|s| s.max_upload_bytes = 200_000).await;
    let s = deal_at_site_survey(&app, "Bad Co").await;
    let big = vec![0xFFu8; 300_000];
    error_body(
        upload(
            &app,
            &s.rep,
            &s.deal,
            "site_survey",
            form(&uuid(), &[], big),
        )
        .await,
        413,
        "payload_too_large",
    )
    .await;
    let text = b"definitely not a photo, just text pretending".to_vec();
    error_body(
        upload(
            &app,
            &s.rep,
            &s.deal,
            "site_survey",
            form(&uuid(), &[], text),
        )
        .await,
        415,
        "unsupported_media_type",
    )
    .await;
    let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n".to_vec();
    error_body(
        upload(
            &app,
            &s.rep,
            &s.deal,
            "site_survey",
            form(&uuid(), &[], pdf),
        )
        .await,
        415,
        "unsupported_media_type",
    )
    .await;
    let json_body = app
        .post(
            &format!("/api/v1/deals/{}/nodes/site_survey/evidence", s.deal),
            &s.rep,
            &json!({"file": "x"}),
        )
        .await;
    error_body(json_body, 415, "unsupported_media_type").await;
    let no_meta = Form::new().part("file", Part::bytes(photo(41, SITE.0, SITE.1, 5)));
    error_body(
        upload(&app, &s.rep, &s.deal, "site_survey", no_meta).await,
        422,
        "validation_failed",
    )
    .await;
    let wrong_node = upload(
        &app,
        &s.rep,
        &s.deal,
        "price_approved",
        form(&uuid(), &[], photo(42, SITE.0, SITE.1, 5)),
    )
    .await;
    error_body(wrong_node, 409, "node_not_current").await;
    let other_rep = app.token("rep_south").await;
    error_body(
        upload(
            &app,
            &other_rep,
            &s.deal,
            "site_survey",
            form(&uuid(), &[], photo(43, SITE.0, SITE.1, 5)),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM evidence").await, 0);
}

#[tokio::test]
async fn an_unreachable_blob_store_is_a_503_and_nothing_is_half_accepted() {
    let app = spawn_app_with_blobs(Some(crate::storage::unreachable_s3_store())).await;
    let s = deal_at_site_survey(&app, "Offline S3 Co").await;
    let r = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&uuid(), &["nameplate"], photo(51, SITE.0, SITE.1, 5)),
    )
    .await;
    assert!(r.headers().get("retry-after").is_some());
    error_body(r, 503, "service_unavailable").await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM evidence").await, 0);
}

#[tokio::test]
async fn an_upload_cut_off_mid_body_stores_nothing_and_the_retry_completes() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Flaky 4G Co").await;
    let id = uuid();
    let bytes = photo(61, SITE.0, SITE.1, 5);
    let boundary = "fieldproof-cut";
    let mut body = format!("--{boundary}\r\ncontent-disposition: form-data; name=\"meta\"\r\ncontent-type: application/json\r\n\r\n{}\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n", json!({"capture_id": id, "tags": []})).into_bytes();
    body.extend_from_slice(&bytes[..bytes.len() / 2]);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(body), Err(std::io::Error::other("signal lost"))];
    let cut = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/deals/{}/nodes/site_survey/evidence", s.deal),
            Some(&s.rep),
        )
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    assert!(cut.is_err() || !cut.unwrap().status().is_success());
    assert_eq!(count(&app, "SELECT COUNT(*) FROM evidence").await, 0);
    let retry = upload(&app, &s.rep, &s.deal, "site_survey", form(&id, &[], bytes)).await;
    assert_eq!(retry.status(), 201);
}

fn signing_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

async fn enroll(app: &TestApp, token: &str, device: &str, key: &ed25519_dalek::SigningKey) {
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
    let r = app
        .post(
            "/api/v1/devices",
            token,
            &json!({"device_id": device, "public_key": public}),
        )
        .await;
    assert!(r.status() == 201 || r.status() == 200, "{}", r.status());
}

fn signed_form(
    capture_id: &str,
    bytes: Vec<u8>,
    device: &str,
    key: &ed25519_dalek::SigningKey,
    fix: (f64, f64),
    sha_override: Option<&str>,
) -> Form {
    use sha2::Digest;
    let sha = sha_override
        .map(str::to_owned)
        .unwrap_or_else(|| hex::encode(sha2::Sha256::digest(&bytes)));
    let now = OffsetDateTime::now_utc();
    let manifest = json!({
        "capture_id": capture_id, "device_id": device, "sha256": sha,
        "fix": {"lat": fix.0, "lon": fix.1, "accuracy_m": 6.0, "is_mock": false},
        "wall_clock": (now - time::Duration::minutes(3)).format(&time::format_description::well_known::Rfc3339).unwrap(),
        "monotonic_ms": 1_000_000u64, "boot_id": "boot-1"
    })
    .to_string();
    let signature =
        base64::engine::general_purpose::STANDARD.encode(key.sign(manifest.as_bytes()).to_bytes());
    let meta = json!({"capture_id": capture_id, "tags": ["nameplate"], "device_clock": {"wall_now": now.format(&time::format_description::well_known::Rfc3339).unwrap(), "monotonic_ms_now": 1_180_000u64, "boot_id": "boot-1"}});
    Form::new()
        .part("meta", Part::text(meta.to_string()))
        .part("manifest", Part::text(manifest))
        .part("signature", Part::text(signature))
        .part("file", Part::bytes(bytes))
}

#[tokio::test]
async fn a_signed_manifest_is_the_place_witness_when_exif_gps_was_stripped() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "WeChat Picker Co").await;
    let key = signing_key(7);
    enroll(&app, &s.rep, "phone-1", &key).await;
    // A picker stripped all EXIF: only pixels remain.
    let stripped = jpeg(&scene(71, 640, 480), 85);
    let r = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        signed_form(&uuid(), stripped.clone(), "phone-1", &key, SITE, None),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["verdict"], "passed", "{body}");
    assert_eq!(check(&body, "gps_missing")["detail"]["witness"], "manifest");

    // A forged signature, a manifest about other bytes, and another user's device are refused.
    let forged = signed_form(
        &uuid(),
        stripped.clone(),
        "phone-1",
        &signing_key(8),
        SITE,
        None,
    );
    error_body(
        upload(&app, &s.rep, &s.deal, "site_survey", forged).await,
        422,
        "manifest_invalid",
    )
    .await;
    let other_bytes = signed_form(
        &uuid(),
        stripped.clone(),
        "phone-1",
        &key,
        SITE,
        Some(&"0".repeat(64)),
    );
    error_body(
        upload(&app, &s.rep, &s.deal, "site_survey", other_bytes).await,
        422,
        "manifest_invalid",
    )
    .await;
    let rep_b = app.token("rep_b").await;
    enroll(&app, &rep_b, "phone-b", &signing_key(9)).await;
    let borrowed = signed_form(&uuid(), stripped, "phone-b", &signing_key(9), SITE, None);
    error_body(
        upload(&app, &s.rep, &s.deal, "site_survey", borrowed).await,
        422,
        "manifest_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_device_key_cannot_be_swapped_under_the_same_device_id() {
    let app = spawn_app().await;
    let rep = app.token("rep_a").await;
    enroll(&app, &rep, "phone-1", &signing_key(1)).await;
    enroll(&app, &rep, "phone-1", &signing_key(1)).await;
    let public =
        base64::engine::general_purpose::STANDARD.encode(signing_key(2).verifying_key().to_bytes());
    error_body(
        app.post(
            "/api/v1/devices",
            &rep,
            &json!({"device_id": "phone-1", "public_key": public}),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    error_body(
        app.post(
            "/api/v1/devices",
            &rep,
            &json!({"device_id": "phone-2", "public_key": "AAAA"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
}

/// The sweep follows upload leases: an upload leases its bytes before it stores them, so bytes
/// whose lease outlived the grace period with no evidence row are an upload that failed after
/// storing them — removed with their thumbnail; the accepted photo stays, and the store is never
/// listed (bytes nobody leased are not touched: at millions of photos a listing per pass was
/// thousands of requests).
#[tokio::test]
async fn orphan_blobs_are_swept_through_their_leases_and_accepted_ones_kept() {
    use fieldproof::db::entities::upload_lease;
    use fieldproof::services::evidence::sweep::sweep_orphans;
    use fieldproof::storage::BlobKey;
    use sea_orm::EntityTrait;
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Sweep Co").await;
    let kept: Value = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&uuid(), &["nameplate"], photo(81, SITE.0, SITE.1, 5)),
    )
    .await
    .json()
    .await
    .unwrap();
    let kept_sha = kept["sha256"].as_str().unwrap();
    let kept_key = BlobKey::parse(format!("originals/{}/{kept_sha}", &kept_sha[..2])).unwrap();
    // An upload that leased and stored its bytes, then died before its row.
    let orphan_sha = "ab".repeat(32);
    fieldproof::db::evidence::lease(&app.db, &orphan_sha)
        .await
        .unwrap();
    let orphan = BlobKey::parse(format!("originals/ab/{orphan_sha}")).unwrap();
    let orphan_thumb = BlobKey::parse(format!("thumbs/{orphan_sha}.jpg")).unwrap();
    for key in [&orphan, &orphan_thumb] {
        app.state
            .blobs
            .put_bytes(key, b"left by a crash".to_vec(), "image/jpeg")
            .await
            .unwrap();
    }
    let unleased = BlobKey::parse(format!("originals/cd/{}", "cd".repeat(32))).unwrap();
    app.state
        .blobs
        .put_bytes(&unleased, b"nobody leased these".to_vec(), "image/jpeg")
        .await
        .unwrap();

    // Within the grace period nothing goes.
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        sweep_orphans(&app.state, now, time::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert!(app.state.blobs.exists(&orphan).await.unwrap());
    // Past it: the orphan and its thumbnail go, every expired lease is forgotten.
    let later = now + time::Duration::seconds(5);
    assert_eq!(
        sweep_orphans(&app.state, later, time::Duration::ZERO)
            .await
            .unwrap(),
        2
    );
    assert!(!app.state.blobs.exists(&orphan).await.unwrap());
    assert!(!app.state.blobs.exists(&orphan_thumb).await.unwrap());
    assert!(app.state.blobs.exists(&kept_key).await.unwrap());
    assert!(app.state.blobs.exists(&unleased).await.unwrap());
    assert!(
        upload_lease::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        sweep_orphans(&app.state, later, time::Duration::ZERO)
            .await
            .unwrap(),
        0
    );
}

/// The sweep decides an old lease's bytes are orphans and is about to delete them when a rep
/// uploads the very same photo again: the upload's lease waits for the sweep, then stores the
/// bytes anew. Before, the upload leased, stored (the bytes were still there), committed its row
/// and answered 201, and the sweep's delete then removed the photo and thumbnail of an accepted
/// row.
#[tokio::test]
async fn a_re_upload_racing_the_orphan_sweep_keeps_its_bytes() {
    use fieldproof::services::evidence::sweep::sweep_orphans;
    use fieldproof::storage::BlobKey;
    use sha2::Digest;
    let (inner, _store) = crate::helpers::test_blob_store().await;
    let (store, go) = crate::helpers::Held::wrap(inner);
    let app = spawn_app_with_blobs(Some(store.clone())).await;
    let s = deal_at_site_survey(&app, "Race Co").await;
    let bytes = photo(83, SITE.0, SITE.1, 5);
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let original = BlobKey::parse(format!("originals/{}/{sha}", &sha[..2])).unwrap();
    let thumb = BlobKey::parse(format!("thumbs/{sha}.jpg")).unwrap();
    // An earlier upload of these bytes leased and stored them, then died before its row.
    fieldproof::db::evidence::lease(&app.db, &sha)
        .await
        .unwrap();
    for key in [&original, &thumb] {
        app.state
            .blobs
            .put_bytes(key, bytes.clone(), "image/jpeg")
            .await
            .unwrap();
    }

    // The sweep, a while later, finds that lease expired and starts deleting. On PostgreSQL it
    // runs as another instance would, without this process's locks.
    let mut state = app.state.clone();
    if app.db.get_database_backend() == sea_orm::DbBackend::Postgres {
        state.bytes_locks = std::sync::Arc::default();
    }
    let later = OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let sweep =
        tokio::spawn(async move { sweep_orphans(&state, later, time::Duration::ZERO).await });
    tokio::time::timeout(std::time::Duration::from_secs(15), store.started.notified())
        .await
        .expect("the sweep deletes the orphan");
    // The same photo arrives again while the delete is under way.
    let again = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&uuid(), &["nameplate"], bytes.clone()),
    );
    tokio::pin!(again);
    // Without the sweep's lock the upload is answered while the delete still waits; with it the
    // upload waits for the sweep.
    let early = tokio::time::timeout(std::time::Duration::from_secs(5), &mut again).await;
    go.send(true).unwrap();
    let response = match early {
        Ok(response) => response,
        Err(_) => again.await,
    };
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["sha256"], sha.as_str());
    assert_eq!(sweep.await.unwrap().unwrap(), 2, "the orphan's two blobs");
    for key in [&original, &thumb] {
        assert!(
            app.state.blobs.exists(key).await.unwrap(),
            "{key} of the accepted upload"
        );
    }
}

#[tokio::test]
async fn a_thumbnail_url_works_while_fresh_and_only_with_its_signature() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Thumb Co").await;
    let body: Value = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&uuid(), &["nameplate"], photo(91, SITE.0, SITE.1, 5)),
    )
    .await
    .json()
    .await
    .unwrap();
    let view: Value = app
        .get(
            &format!("/api/v1/evidence/{}", body["id"].as_str().unwrap()),
            &s.rep,
        )
        .await
        .json()
        .await
        .unwrap();
    let url = view["thumbnail_url"].as_str().unwrap().to_owned();
    let full = if url.starts_with("http") {
        url.clone()
    } else {
        app.url(&url)
    };
    let image = app.client.get(&full).send().await.unwrap();
    assert_eq!(image.status(), 200);
    let bytes = image.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "a JPEG");
    if !url.starts_with("http") {
        let tampered = full.replace("sig=", "sig=00");
        assert_eq!(
            app.client.get(&tampered).send().await.unwrap().status(),
            404
        );
    }
}

#[tokio::test]
async fn a_resumable_upload_finishes_into_the_same_pipeline() {
    use sha2::Digest;
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Resume Co").await;
    // iOS writes UUIDs in upper case; the capture is stored in its lower-case form.
    let capture = uuid().to_uppercase();
    let bytes = photo(95, SITE.0, SITE.1, 5);
    let created: Value = app
        .post("/api/v1/uploads", &s.rep, &json!({"capture_id": capture, "size": bytes.len(), "sha256": hex::encode(sha2::Sha256::digest(&bytes))}))
        .await
        .json()
        .await
        .unwrap();
    let upload_id = created["upload_id"].as_str().unwrap().to_owned();
    let half = bytes.len() / 2;
    for (offset, piece) in [(0, &bytes[..half]), (half, &bytes[half..])] {
        let r = app
            .request(
                reqwest::Method::PATCH,
                &format!("/api/v1/uploads/{upload_id}"),
                Some(&s.rep),
            )
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(piece.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let meta = json!({"capture_id": capture, "tags": ["nameplate"], "upload_id": upload_id});
    let finish = Form::new().part("meta", Part::text(meta.to_string()));
    let r = upload(&app, &s.rep, &s.deal, "site_survey", finish).await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["verdict"], "passed", "{body}");
    assert_eq!(body["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    // The answer was lost: finishing again gets the first answer, assembling nothing.
    let finish = Form::new().part("meta", Part::text(meta.to_string()));
    let replayed = upload(&app, &s.rep, &s.deal, "site_survey", finish).await;
    assert_eq!(replayed.status(), 200);
    assert_eq!(replayed.json::<Value>().await.unwrap(), body);
    // The same capture sent again in one piece is the same evidence.
    let again = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&capture, &["nameplate"], bytes),
    )
    .await;
    assert_eq!(again.status(), 200);
}

/// A capture id another user sent first is answered 409, without that evidence's id or its
/// answer, whatever deal it is sent to.
#[tokio::test]
async fn another_users_capture_is_neither_replayed_nor_named() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Scope Co").await;
    let capture = uuid();
    let bytes = photo(96, SITE.0, SITE.1, 5);
    let first = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&capture, &["nameplate"], bytes.clone()),
    )
    .await;
    assert_eq!(first.status(), 201);
    let rep_b = app.token("rep_b").await;
    let body = error_body(
        upload(
            &app,
            &rep_b,
            &s.deal,
            "site_survey",
            form(&capture, &["nameplate"], bytes),
        )
        .await,
        409,
        "capture_conflict",
    )
    .await;
    assert!(body["details"].get("evidence_id").is_none(), "{body}");
}

/// A client's JPEG rendition stands in for the pixels of a HEIC original only: a JPEG sent with
/// someone else's photo as its "rendition" is judged by its own pixels (here: not a near
/// duplicate of that photo).
#[tokio::test]
async fn a_derivative_stands_in_only_for_a_heic_original() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Rendition Co").await;
    let earlier = photo(97, SITE.0, SITE.1, 5);
    let first = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&uuid(), &["nameplate"], earlier.clone()),
    )
    .await;
    assert_eq!(first.status(), 201);
    let with_rendition = form(&uuid(), &["piping"], photo(98, SITE.0, SITE.1, 5)).part(
        "derivative",
        Part::bytes(earlier).file_name("rendition.jpg"),
    );
    let body: Value = upload(&app, &s.rep, &s.deal, "site_survey", with_rendition)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["verdict"], "passed", "{body}");
}

fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.7\n1 0 obj\n<< /Title ({text}) >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
        .into_bytes()
}

fn document_form(capture_id: &str, bytes: Vec<u8>, customer_signed: bool) -> Form {
    Form::new()
        .part("meta", Part::text(json!({"capture_id": capture_id, "kind": "document", "customer_signed": customer_signed}).to_string()))
        .part("file", Part::bytes(bytes).file_name("doc.pdf"))
}

#[tokio::test]
async fn documents_meet_document_nodes_and_a_claimed_signature_needs_a_supervisor() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Docs Co").await;
    crate::deals::override_until(&app, &s.deal, "pain_points_confirmed").await;
    // A photo is the wrong kind of evidence here; a document the customer signed waits for review.
    let photo_here = upload(
        &app,
        &s.rep,
        &s.deal,
        "pain_points_confirmed",
        form(&uuid(), &[], photo(101, SITE.0, SITE.1, 5)),
    )
    .await;
    error_body(photo_here, 422, "validation_failed").await;
    let signed: Value = upload(
        &app,
        &s.rep,
        &s.deal,
        "pain_points_confirmed",
        document_form(&uuid(), pdf("pain points, signed"), true),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(signed["verdict"], "needs_review");
    assert_eq!(signed["deal_current_node"], "pain_points_confirmed");
    let supervisor = app.token("supervisor_east").await;
    let decided: Value = app
        .post(
            &format!("/api/v1/evidence/{}/review", signed["id"].as_str().unwrap()),
            &supervisor,
            &json!({"decision": "approve", "reason": "customer's chop and signature checked"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(decided["review_state"], "approved");
    let deal: Value = app
        .get(&format!("/api/v1/deals/{}", s.deal), &s.rep)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deal["current_node"], "decision_chain_mapped");

    crate::deals::override_until(&app, &s.deal, "solution_submitted").await;
    let proposal: Value = upload(
        &app,
        &s.rep,
        &s.deal,
        "solution_submitted",
        document_form(&uuid(), pdf("proposal"), false),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(proposal["verdict"], "passed");
    assert_eq!(proposal["deal_current_node"], "presales_review");
}

#[tokio::test]
async fn the_handover_checklist_and_the_signed_acknowledgement_complete_the_deal() {
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Handover Co").await;
    crate::deals::override_until(&app, &s.deal, "delivery_handover").await;
    for item in ["delivery_plan", "handover_meeting"] {
        let v: Value = app
            .post(
                &format!("/api/v1/deals/{}/nodes/delivery_handover/checklist", s.deal),
                &s.rep,
                &json!({"item": item}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["current_node"], "delivery_handover",
            "the acknowledgement is still missing"
        );
    }
    let ack: Value = upload(
        &app,
        &s.rep,
        &s.deal,
        "delivery_handover",
        document_form(&uuid(), pdf("acceptance"), true),
    )
    .await
    .json()
    .await
    .unwrap();
    let supervisor = app.token("supervisor_east").await;
    app.post(
        &format!("/api/v1/evidence/{}/review", ack["id"].as_str().unwrap()),
        &supervisor,
        &json!({"decision": "approve", "reason": "signed acceptance note"}),
    )
    .await;
    let deal: Value = app
        .get(&format!("/api/v1/deals/{}", s.deal), &s.rep)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deal["status"], "won");
    assert_eq!(deal["current_node"], Value::Null);
    assert!(
        deal["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "passed")
    );
    let audit: Value = app
        .get(&format!("/api/v1/deals/{}/audit", s.deal), &s.rep)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        audit.as_array().unwrap().last().unwrap()["kind"],
        "deal_completed"
    );
}

#[tokio::test]
async fn finishing_a_resumable_upload_again_replays_the_first_answer() {
    use sha2::Digest;
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Lost Answer Co").await;
    let capture = uuid();
    let bytes = photo(97, SITE.0, SITE.1, 5);
    let created: Value = app
        .post("/api/v1/uploads", &s.rep, &json!({"capture_id": capture, "size": bytes.len(), "sha256": hex::encode(sha2::Sha256::digest(&bytes))}))
        .await
        .json()
        .await
        .unwrap();
    let upload_id = created["upload_id"].as_str().unwrap().to_owned();
    app.request(
        reqwest::Method::PATCH,
        &format!("/api/v1/uploads/{upload_id}"),
        Some(&s.rep),
    )
    .header("upload-offset", "0")
    .header("content-type", "application/offset+octet-stream")
    .body(bytes)
    .send()
    .await
    .unwrap();
    let finish = || {
        Form::new().part(
            "meta",
            Part::text(json!({"capture_id": capture, "upload_id": upload_id}).to_string()),
        )
    };
    let first = upload(&app, &s.rep, &s.deal, "site_survey", finish()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // The phone never saw that answer and finishes again.
    let again = upload(&app, &s.rep, &s.deal, "site_survey", finish()).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let deal: Value = app
        .get(&format!("/api/v1/deals/{}", s.deal), &s.rep)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        deal["visit"]["starts_at"].as_str().is_some(),
        "the deal view carries the booked visit"
    );
}

/// How many files `/metrics` says were verified (`*_count` of a summary), 0 before the first.
async fn metric_count(app: &TestApp, name: &str) -> u64 {
    let text = app.metrics_text().await;
    let prefix = format!("{name}_count ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|n| n.trim().parse().expect("a count"))
        .unwrap_or(0)
}

/// Operators see on `/metrics` how long photos wait for a verification thread and how long
/// verifying takes: growing waits mean uploads arrive faster than the cores verify them.
#[tokio::test]
async fn verification_waits_and_times_are_on_metrics() {
    use fieldproof::services::evidence::verifier::{RUN_METRIC, WAIT_METRIC};
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Metrics Co").await;
    // The recorder is the process's: other tests' uploads count too, so only growth is known.
    let (waits, runs) = (
        metric_count(&app, WAIT_METRIC).await,
        metric_count(&app, RUN_METRIC).await,
    );
    let sent = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&uuid(), &["nameplate"], photo(13, SITE.0, SITE.1, 10)),
    )
    .await;
    assert_eq!(sent.status(), 201);
    assert!(metric_count(&app, WAIT_METRIC).await > waits);
    assert!(metric_count(&app, RUN_METRIC).await > runs);
}

/// The stored evidence's id, org and perceptual hash (the only row).
async fn stored_phash(app: &TestApp) -> (String, String, u64) {
    let backend = app.db.get_database_backend();
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT id, org_id, phash FROM evidence",
        ))
        .await
        .unwrap()
        .expect("one evidence row");
    let hex: String = row.try_get("", "phash").unwrap();
    (
        row.try_get("", "id").unwrap(),
        row.try_get("", "org_id").unwrap(),
        u64::from_str_radix(&hex, 16).unwrap(),
    )
}

/// Every stored hash within the near-duplicate distance is found through the band index,
/// wherever its differing bits fall: here 10 bits, at least one in every byte (with the byte
/// bands before, no band matched and the photo passed as new).
#[tokio::test]
async fn a_hash_ten_bits_away_is_found_wherever_its_bits_differ() {
    use fieldproof::db::evidence::near_candidates;
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Bands Co").await;
    let sent = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&uuid(), &["nameplate"], photo(14, SITE.0, SITE.1, 10)),
    )
    .await;
    assert_eq!(sent.status(), 201);
    let (id, org, stored) = stored_phash(&app).await;
    let ids = |rows: Vec<(String, String, Option<String>)>| {
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>()
    };
    let one_per_byte: u64 = (0..8).map(|b| 1u64 << (b * 8)).sum::<u64>() | 1 << 9 | 1 << 17;
    assert_eq!(one_per_byte.count_ones(), 10);
    let near = near_candidates(&app.db, &org, stored ^ one_per_byte, "other", 10)
        .await
        .unwrap();
    assert_eq!(ids(near), vec![id.clone()]);
    // 12 bits, three in every quarter: beyond 10, so no candidate; within a policy's 12.
    let three_per_quarter: u64 = (0..4).map(|q| 0b111u64 << (q * 16 + 4)).sum();
    let beyond = near_candidates(&app.db, &org, stored ^ three_per_quarter, "other", 10)
        .await
        .unwrap();
    assert!(beyond.is_empty(), "{beyond:?}");
    let wider = near_candidates(&app.db, &org, stored ^ three_per_quarter, "other", 12)
        .await
        .unwrap();
    assert_eq!(ids(wider), vec![id.clone()]);
    // The capture itself is never its own duplicate.
    let capture: String = {
        let backend = app.db.get_database_backend();
        app.db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT capture_id FROM evidence",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "capture_id")
            .unwrap()
    };
    let own = near_candidates(&app.db, &org, stored, &capture, 10)
        .await
        .unwrap();
    assert!(own.is_empty());
}

/// The history checks read through their indexes on both databases: exact duplicates by the
/// org's SHA-256, near ones by the band index (covering: ids and hashes from the index alone),
/// travel by the uploader's capture times.
#[tokio::test]
async fn the_history_checks_read_through_their_indexes() {
    use fieldproof::db::entities::{evidence, evidence_band, node_run};
    use fieldproof::db::evidence::{
        band_rows, captures_around_query, near_band_query, same_bytes_query,
    };
    use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app().await;
    // An org's worth of evidence for the planners' statistics (on empty tables PostgreSQL
    // picks among the indexes that start with org_id by a tie).
    let s = deal_at_site_survey(&app, "Plans Co").await;
    let run = node_run::Entity::find()
        .filter(node_run::Column::DealId.eq(s.deal.clone()))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the deal's run");
    let (rep, org) = {
        let caller = app.caller("rep_a").await;
        (caller.user_id, caller.org_id)
    };
    let now = OffsetDateTime::now_utc();
    let rows = (0..400).map(|i: i64| evidence::ActiveModel {
        id: Set(format!("plan-{i:04}")),
        org_id: Set(org.clone()),
        deal_id: Set(s.deal.clone()),
        node_run_id: Set(run.id.clone()),
        node_key: Set("site_survey".into()),
        uploader_id: Set(rep.clone()),
        team_id: Set(run.team_id.clone()),
        device_id: Set(None),
        capture_id: Set(format!("plan-capture-{i:04}")),
        kind: Set("photo".into()),
        format: Set("jpeg".into()),
        sha256: Set(format!("{i:064x}")),
        size_bytes: Set(1),
        phash: Set(Some(format!("{i:016x}"))),
        blob_key: Set(format!("originals/00/{i:064x}")),
        thumb_key: Set(None),
        tags: Set(json!([])),
        facts: Set(json!({})),
        manifest: Set(None),
        checks: Set(json!([])),
        verdict: Set("passed".into()),
        findings: Set(",,".into()),
        rule_set_version: Set("plan".into()),
        captured_at: Set(Some(now - time::Duration::hours(i))),
        capture_lat: Set(Some(SITE.0)),
        capture_lon: Set(Some(SITE.1)),
        received_at: Set(now),
        review_state: Set("none".into()),
        reviewed_by: Set(None),
        review_reason: Set(None),
        reviewed_at: Set(None),
        response: Set(Value::Null),
    });
    evidence::Entity::insert_many(rows)
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    let bands = (0..400u64).flat_map(|i| {
        band_rows(
            &format!("plan-{i:04}"),
            &org,
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
    });
    evidence_band::Entity::insert_many(bands)
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    let postgres = app.db.get_database_backend() == sea_orm::DbBackend::Postgres;
    // PostgreSQL reads an index alone only where its visibility map says the rows are visible.
    let analyze = if postgres {
        "VACUUM ANALYZE"
    } else {
        "ANALYZE"
    };
    app.db.execute_unprepared(analyze).await.unwrap();
    let near = statement_plan(&app, near_band_query(&org, 0x0123_4567_89ab_cdef, 10)).await;
    // One search of the index alone per quarter (as one OR, PostgreSQL read the table too).
    assert_eq!(
        near.matches("evidence_bands_lookup_idx").count(),
        4,
        "{near}"
    );
    let alone = if postgres {
        "Index Only Scan"
    } else {
        "COVERING INDEX"
    };
    assert_eq!(near.matches(alone).count(), 4, "{near}");
    let same = query_plan(
        &app,
        same_bytes_query(&org, &format!("{:064x}", 7), "capture"),
    )
    .await;
    assert!(same.contains("evidence_sha_idx"), "{same}");
    let travel = query_plan(
        &app,
        captures_around_query(
            &rep,
            now - time::Duration::hours(100),
            time::Duration::hours(12),
            "capture",
        ),
    )
    .await;
    assert!(travel.contains("evidence_uploader_time_idx"), "{travel}");
}

/// Migration 000029 rebuilds the band index from the stored hashes both ways: down to the
/// eight byte bands it replaced, up again to four quarters carrying the whole hash.
#[tokio::test]
async fn the_band_index_is_rebuilt_from_the_stored_hashes_both_ways() {
    use fieldproof_migrations::{Migrator, MigratorTrait};
    let app = spawn_app().await;
    let s = deal_at_site_survey(&app, "Rebuild Co").await;
    let sent = upload(
        &app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(&uuid(), &["nameplate"], photo(15, SITE.0, SITE.1, 10)),
    )
    .await;
    assert_eq!(sent.status(), 201);
    let (id, _, stored) = stored_phash(&app).await;
    let backend = app.db.get_database_backend();
    let bands = || async {
        app.db
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT band, value FROM evidence_bands WHERE evidence_id = '{id}' ORDER BY band"),
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| (r.try_get::<i32>("", "band").unwrap(), r.try_get::<i32>("", "value").unwrap()))
            .collect::<Vec<_>>()
    };
    let quarters: Vec<(i32, i32)> = (0..4)
        .map(|q| (q, ((stored >> (16 * q)) & 0xFFFF) as i32))
        .collect();
    assert_eq!(bands().await, quarters);

    Migrator::down(
        &app.db,
        Some(steps_back_to("m20261206_000029_phash_quarter_bands")),
    )
    .await
    .unwrap();
    let bytes: Vec<(i32, i32)> = (0..8)
        .map(|b| (b, ((stored >> (8 * b)) & 0xFF) as i32))
        .collect();
    assert_eq!(bands().await, bytes);

    Migrator::up(&app.db, None).await.unwrap();
    assert_eq!(bands().await, quarters);
    let whole = app
        .db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT phash FROM evidence_bands WHERE evidence_id = '{id}' AND band = 0"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "phash")
        .unwrap();
    assert_eq!(whole as u64, stored);
}
