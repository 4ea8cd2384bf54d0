//! Notifications: the inbox API, `notify` idempotency, team webhooks, and the outbox worker
//! delivering to a real HTTP receiver on loopback — with failures, and with two app instances
//! sharing one database.

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use fieldproof::config::Settings;
use fieldproof::db::{self, entities::outbox as outbox_row};
use fieldproof::jobs::outbox::{DELIVERY_HEADER, OutboxConfig, OutboxWorker};
use fieldproof::services::notify::{Notice, Notified, notify};
use reqwest::Method;
use sea_orm::TransactionTrait;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// A chat robot on loopback that records every request and fails the first tries of each message.

#[derive(Clone, Debug)]
struct Hit {
    delivery: String,
    status: u16,
    query: String,
    body: Value,
}

struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Requests per delivery id.
    fn per_delivery(&self) -> HashMap<String, Vec<u16>> {
        let mut map: HashMap<String, Vec<u16>> = HashMap::new();
        for hit in self.hits() {
            map.entry(hit.delivery).or_default().push(hit.status);
        }
        map
    }
}

/// Answers 500 to the first `fail_first` requests of each delivery id, then WeCom/DingTalk's
/// "ok" body.
fn spawn_receiver(fail_first: usize) -> Receiver {
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let shared = web::Data::new(hits.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .app_data(web::Data::new(fail_first))
            .default_service(web::to(robot))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Receiver {
        url: format!("http://127.0.0.1:{port}/robot/send?access_token=tok123"),
        hits,
    }
}

async fn robot(
    req: HttpRequest,
    body: web::Bytes,
    hits: web::Data<Arc<Mutex<Vec<Hit>>>>,
    fail_first: web::Data<usize>,
) -> HttpResponse {
    let delivery = req
        .headers()
        .get(DELIVERY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut hits = hits.lock().unwrap();
    let earlier = hits.iter().filter(|h| h.delivery == delivery).count();
    let status = if earlier < **fail_first { 500 } else { 200 };
    hits.push(Hit {
        delivery,
        status,
        query: req.query_string().to_owned(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    if status == 500 {
        HttpResponse::InternalServerError().body("boom")
    } else {
        HttpResponse::Ok().json(json!({"errcode": 0, "errmsg": "ok"}))
    }
}

// ---------------------------------------------------------------------------------------------

fn notice(app: &TestApp, recipients: &[&str], key: Option<&str>) -> Notice {
    Notice {
        org_id: app.org_id.clone(),
        recipients: recipients.iter().map(|u| app.users[u].clone()).collect(),
        team_id: None,
        kind: "stall_alarm".into(),
        title_en: "Deal stalled".into(),
        title_zh: "商机停滞".into(),
        body_en: "Site survey has been open for 80 hours.".into(),
        body_zh: "现场勘测已停留 80 小时。".into(),
        link: Some("/api/v1/deals/d-1".into()),
        dedup_key: key.map(str::to_owned),
    }
}

fn fast_jobs(s: &mut Settings) {
    s.jobs = true;
    s.jobs_poll_ms = 30;
    s.webhook_retry_base_ms = 40;
    s.webhook_retry_max_secs = 1;
    s.webhook_timeout_secs = 5;
}

async fn add_webhook(app: &TestApp, body: Value) -> String {
    let token = app.token("manager_east").await;
    let path = format!("/api/v1/teams/{}/webhooks", app.teams[0]);
    let response = app.post(&path, &token, &body).await;
    assert_eq!(response.status(), 201);
    let view: Value = response.json().await.unwrap();
    view["id"].as_str().unwrap().to_owned()
}

async fn outbox_rows(app: &TestApp) -> Vec<outbox_row::Model> {
    db::outbox::list_for_org(&app.db, &app.org_id)
        .await
        .unwrap()
}

/// Wait until every outbox row of the app's org is delivered or given up.
async fn wait_until_settled(app: &TestApp, expected_rows: usize) -> Vec<outbox_row::Model> {
    for _ in 0..400 {
        let rows = outbox_rows(app).await;
        if rows.len() == expected_rows
            && rows
                .iter()
                .all(|r| r.delivered_at.is_some() || r.gave_up_at.is_some())
        {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("outbox did not settle: {:#?}", outbox_rows(app).await);
}

// ---------------------------------------------------------------------------------------------
// The inbox

#[tokio::test]
async fn a_deactivated_account_gets_no_inbox_rows() {
    use sea_orm::EntityTrait;
    let app = spawn_app_with(|s| s.jobs = false).await;
    app.deactivate("rep_b").await;
    let one = notify(&app.db, notice(&app, &["rep_a", "rep_b"], Some("left")))
        .await
        .unwrap();
    assert_eq!(one.inbox_added, 1, "only the active rep");
    // The batch path (lead assignments) skips them too.
    fieldproof::services::notify::notify_all(
        &app.db,
        vec![
            notice(&app, &["rep_b"], Some("batch-1")),
            notice(&app, &["rep_a", "rep_b"], Some("batch-2")),
        ],
    )
    .await
    .unwrap();
    let rows = fieldproof::db::entities::notification::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    let for_b = rows
        .iter()
        .filter(|r| r.user_id == app.users["rep_b"])
        .count();
    let for_a = rows
        .iter()
        .filter(|r| r.user_id == app.users["rep_a"])
        .count();
    assert_eq!((for_a, for_b), (2, 0));
}

#[tokio::test]
async fn inbox_shows_only_my_notifications_and_others_ids_are_404() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    notify(&app.db, notice(&app, &["rep_a"], Some("e1")))
        .await
        .unwrap();
    let mut second = notice(&app, &["rep_a", "rep_b"], Some("e2"));
    second.title_en = "Second".into();
    notify(&app.db, second).await.unwrap();

    let rep_a = app.token("rep_a").await;
    let rep_b = app.token("rep_b").await;
    let mine: Value = app
        .get("/api/v1/notifications", &rep_a)
        .await
        .json()
        .await
        .unwrap();
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["title_en"], "Second", "newest first");
    assert_eq!(items[1]["title_zh"], "商机停滞");
    assert_eq!(items[1]["link"], "/api/v1/deals/d-1");
    assert!(items[1]["read_at"].is_null());

    let bs: Value = app
        .get("/api/v1/notifications", &rep_b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bs["items"].as_array().unwrap().len(), 1);

    // rep_b cannot mark rep_a's notification read: it does not exist for them.
    let only_a = items[1]["id"].as_str().unwrap();
    let response = app
        .post(
            &format!("/api/v1/notifications/{only_a}/read"),
            &rep_b,
            &json!({}),
        )
        .await;
    error_body(response, 404, "not_found").await;
    let response = app
        .post("/api/v1/notifications/no-such-id/read", &rep_a, &json!({}))
        .await;
    error_body(response, 404, "not_found").await;
}

async fn unread_badge(app: &TestApp, token: &str) -> u64 {
    let body: Value = app
        .get("/api/v1/notifications/unread-count", token)
        .await
        .json()
        .await
        .unwrap();
    body["unread"].as_u64().unwrap()
}

#[tokio::test]
async fn unread_count_mark_read_and_read_all() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    for key in ["a", "b", "c"] {
        notify(&app.db, notice(&app, &["rep_a"], Some(key)))
            .await
            .unwrap();
    }
    let token = app.token("rep_a").await;
    assert_eq!(unread_badge(&app, &token).await, 3);

    let list: Value = app
        .get("/api/v1/notifications", &token)
        .await
        .json()
        .await
        .unwrap();
    let first = list["items"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/notifications/{first}/read");
    assert_eq!(app.post(&path, &token, &json!({})).await.status(), 204);
    // Again is fine, and keeps the first read time.
    assert_eq!(app.post(&path, &token, &json!({})).await.status(), 204);
    assert_eq!(unread_badge(&app, &token).await, 2);

    let unread: Value = app
        .get("/api/v1/notifications?unread=true", &token)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = unread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&first.as_str()));

    let all: Value = app
        .post("/api/v1/notifications/read-all", &token, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["marked"], 2);
    assert_eq!(unread_badge(&app, &token).await, 0);
    let read: Value = app
        .get("/api/v1/notifications", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        read["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read_at"].is_string())
    );
}

#[tokio::test]
async fn inbox_pages_newest_first_with_a_cursor() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    for i in 0..5 {
        let mut n = notice(&app, &["rep_a"], None);
        n.title_en = format!("n{i}");
        notify(&app.db, n).await.unwrap();
    }
    let token = app.token("rep_a").await;
    let mut titles = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/notifications?limit=2&cursor={c}"),
            None => "/api/v1/notifications?limit=2".to_owned(),
        };
        let page: Value = app.get(&path, &token).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            titles.push(item["title_en"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(titles, ["n4", "n3", "n2", "n1", "n0"]);
}

// ---------------------------------------------------------------------------------------------
// notify()

#[tokio::test]
async fn the_same_dedup_key_lands_once_per_inbox_and_once_per_webhook() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    add_webhook(
        &app,
        json!({"flavor": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}),
    )
    .await;
    let mut n = notice(
        &app,
        &["rep_a", "manager_east", "rep_a"],
        Some("stall:run-1"),
    );
    n.team_id = Some(app.teams[0].clone());

    // Inside a producer's transaction, as the stall detector will call it.
    let txn = app.db.begin().await.unwrap();
    let first = notify(&txn, n.clone()).await.unwrap();
    txn.commit().await.unwrap();
    let again = notify(&app.db, n.clone()).await.unwrap();

    assert_eq!(
        first,
        Notified {
            inbox_added: 2,
            webhooks_queued: 1
        }
    );
    assert_eq!(again, Notified::default());
    assert_eq!(outbox_rows(&app).await.len(), 1);
    let token = app.token("rep_a").await;
    let body: Value = app
        .get("/api/v1/notifications/unread-count", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["unread"], 1);

    // A different event, and recipients outside the org are skipped, not delivered.
    let mut other = notice(&app, &["rep_a"], Some("stall:run-2"));
    other.recipients.push("not-a-user-of-this-org".into());
    assert_eq!(notify(&app.db, other).await.unwrap().inbox_added, 1);
}

#[tokio::test]
async fn a_rolled_back_producer_leaves_no_notice() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let txn = app.db.begin().await.unwrap();
    notify(&txn, notice(&app, &["rep_a"], Some("k")))
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    let token = app.token("rep_a").await;
    let body: Value = app
        .get("/api/v1/notifications/unread-count", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["unread"], 0);
}

// ---------------------------------------------------------------------------------------------
// Team webhooks

#[tokio::test]
async fn webhooks_are_managed_by_admin_or_the_teams_manager_and_secrets_never_come_back() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let east = &app.teams[0];
    let path = format!("/api/v1/teams/{east}/webhooks");
    let body = json!({
        "flavor": "dingtalk",
        "url": "https://oapi.dingtalk.com/robot/send?access_token=secret-token-abcd",
        "secret": "SECtopsecret"
    });

    for who in ["rep_a", "manager_south"] {
        let token = app.token(who).await;
        error_body(app.post(&path, &token, &body).await, 403, "forbidden").await;
        error_body(app.get(&path, &token).await, 403, "forbidden").await;
    }
    let admin = app.token("admin").await;
    error_body(
        app.post("/api/v1/teams/nope/webhooks", &admin, &body).await,
        404,
        "not_found",
    )
    .await;

    let manager = app.token("manager_east").await;
    let response = app.post(&path, &manager, &body).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("topsecret") && !text.contains("secret-token"),
        "{text}"
    );
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["flavor"], "dingtalk");
    assert_eq!(created["has_secret"], true);
    assert_eq!(created["url_hint"], "https://oapi.dingtalk.com/…abcd");

    let listed = app.get(&path, &admin).await.text().await.unwrap();
    assert!(!listed.contains("topsecret") && !listed.contains("secret-token"));
    assert_eq!(
        serde_json::from_str::<Value>(&listed)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for (bad, field) in [
        (
            json!({"flavor": "slack", "url": "https://x.example/h"}),
            "flavor",
        ),
        (
            json!({"flavor": "feishu", "url": "ftp://x.example/h"}),
            "url",
        ),
        (json!({"flavor": "feishu", "url": "not a url"}), "url"),
        (
            json!({"flavor": "wecom", "url": "https://x.example/h", "secret": "s"}),
            "secret",
        ),
    ] {
        let err = error_body(
            app.post(&path, &manager, &bad).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(err["details"]["field"], field);
    }

    let id = created["id"].as_str().unwrap();
    let south = &app.teams[1];
    let wrong_team = format!("/api/v1/teams/{south}/webhooks/{id}");
    let response = app
        .request(Method::DELETE, &wrong_team, Some(&admin))
        .send()
        .await
        .unwrap();
    error_body(response, 404, "not_found").await;
    let one = format!("{path}/{id}");
    let response = app
        .request(Method::DELETE, &one, Some(&manager))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = app
        .request(Method::DELETE, &one, Some(&manager))
        .send()
        .await
        .unwrap();
    error_body(response, 404, "not_found").await;
}

// ---------------------------------------------------------------------------------------------
// Delivery

#[tokio::test]
async fn a_robot_that_fails_twice_still_gets_each_message_exactly_once() {
    let app = spawn_app_with(fast_jobs).await;
    let robot = spawn_receiver(2);
    add_webhook(
        &app,
        json!({"flavor": "dingtalk", "url": robot.url, "secret": "SECsign-me"}),
    )
    .await;
    for i in 0..3 {
        let mut n = notice(&app, &["rep_a"], Some(&format!("event-{i}")));
        n.team_id = Some(app.teams[0].clone());
        notify(&app.db, n).await.unwrap();
    }

    let rows = wait_until_settled(&app, 3).await;
    // Give a buggy worker the chance to send a delivered row again; none may come.
    tokio::time::sleep(Duration::from_millis(400)).await;

    for row in &rows {
        assert!(row.delivered_at.is_some(), "{row:?}");
        assert_eq!(row.attempts, 3);
        assert_eq!(row.last_error, None);
        assert_eq!(row.next_attempt_at, None);
    }
    let per_delivery = robot.per_delivery();
    assert_eq!(per_delivery.len(), 3);
    for row in &rows {
        assert_eq!(per_delivery[&row.id], [500, 500, 200], "row {}", row.id);
    }
    // DingTalk signing went on the query; the message is markdown, Chinese first.
    let hit = &robot.hits()[0];
    assert!(
        hit.query.starts_with("access_token=tok123&timestamp="),
        "{}",
        hit.query
    );
    assert!(hit.query.contains("&sign="));
    assert_eq!(hit.body["msgtype"], "markdown");
    let text = hit.body["markdown"]["text"].as_str().unwrap();
    assert!(text.find("现场勘测").unwrap() < text.find("Site survey").unwrap());
}

#[tokio::test]
async fn two_instances_on_one_database_deliver_each_message_once() {
    let app = spawn_app_with(fast_jobs).await;
    let peer = app.spawn_peer(fast_jobs).await;
    let health = app
        .client
        .get(format!("{}/healthz", peer.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the second instance serves too");
    let robot = spawn_receiver(0);
    add_webhook(&app, json!({"flavor": "feishu", "url": robot.url})).await;

    // Queue everything at once so both workers race for the same rows.
    let txn = app.db.begin().await.unwrap();
    for i in 0..30 {
        let mut n = notice(&app, &["rep_a"], Some(&format!("burst-{i}")));
        n.team_id = Some(app.teams[0].clone());
        notify(&txn, n).await.unwrap();
    }
    txn.commit().await.unwrap();

    let rows = wait_until_settled(&app, 30).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let per_delivery = robot.per_delivery();
    assert_eq!(per_delivery.len(), 30);
    for row in &rows {
        assert!(row.delivered_at.is_some());
        assert_eq!(
            per_delivery[&row.id],
            [200],
            "row {} sent more than once",
            row.id
        );
        assert_eq!(row.attempts, 1);
    }
    assert_eq!(robot.hits()[0].body["msg_type"], "post");
    let owners: std::collections::HashSet<_> =
        rows.iter().filter_map(|r| r.lease_owner.clone()).collect();
    eprintln!(
        "two instances: rows delivered by {} distinct workers",
        owners.len()
    );
}

/// A clock the test moves by hand.
fn manual_clock() -> (
    Arc<Mutex<time::OffsetDateTime>>,
    fieldproof::jobs::outbox::Clock,
) {
    let now = Arc::new(Mutex::new(db::now()));
    let read = now.clone();
    (now, Arc::new(move || *read.lock().unwrap()))
}

#[tokio::test]
async fn after_the_last_attempt_the_message_is_given_up_with_its_error_kept() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let robot = spawn_receiver(usize::MAX);
    add_webhook(&app, json!({"flavor": "wecom", "url": robot.url})).await;
    let mut n = notice(&app, &["rep_a"], Some("doomed"));
    n.team_id = Some(app.teams[0].clone());
    notify(&app.db, n).await.unwrap();

    let config = OutboxConfig {
        poll_interval: Duration::from_secs(1),
        max_attempts: 3,
        retry_base: Duration::from_secs(60),
        retry_max: Duration::from_secs(600),
        http_timeout: Duration::from_secs(5),
        public_base_url: None,
        erp_webhook_url: None,
        erp_webhook_secret: None,
    };
    let (now, clock) = manual_clock();
    let worker = OutboxWorker::new(app.db.clone(), config)
        .unwrap()
        .with_clock(clock);

    let first = worker.run_once().await.unwrap();
    assert_eq!((first.claimed, first.retried), (1, 1));
    // Not due yet: the backoff holds it back until the clock moves.
    assert_eq!(worker.run_once().await.unwrap().claimed, 0);
    for _ in 0..2 {
        *now.lock().unwrap() += time::Duration::hours(1);
        assert_eq!(worker.run_once().await.unwrap().claimed, 1);
    }
    *now.lock().unwrap() += time::Duration::hours(1);
    assert_eq!(worker.run_once().await.unwrap().claimed, 0);

    let rows = outbox_rows(&app).await;
    assert_eq!(rows[0].attempts, 3);
    assert!(rows[0].gave_up_at.is_some() && rows[0].delivered_at.is_none());
    assert_eq!(rows[0].last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(robot.hits().len(), 3);
}

/// A WeCom robot: while `busy`, over its 20-a-minute limit (`errcode` 45009), else "ok". Counts
/// every request in `seen`.
#[derive(Default)]
struct BusyRobot {
    busy: bool,
    seen: usize,
}

fn spawn_busy_robot() -> (String, Arc<Mutex<BusyRobot>>) {
    let state: Arc<Mutex<BusyRobot>> = Arc::new(Mutex::new(BusyRobot {
        busy: true,
        seen: 0,
    }));
    let shared = web::Data::new(state.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new().app_data(shared.clone()).default_service(web::to(
            |robot: web::Data<Arc<Mutex<BusyRobot>>>| async move {
                let mut robot = robot.lock().unwrap();
                robot.seen += 1;
                let errcode = if robot.busy { 45009 } else { 0 };
                HttpResponse::Ok()
                    .json(json!({"errcode": errcode, "errmsg": "api freq out of limit"}))
            },
        ))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (
        format!("http://127.0.0.1:{port}/cgi-bin/webhook/send?key=k1"),
        state,
    )
}

#[tokio::test]
async fn a_robot_over_its_rate_limit_gets_the_backlog_later_and_no_message_is_lost() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    // Every request is refused for being too many until the robot's minute is over.
    let (url, robot) = spawn_busy_robot();
    add_webhook(&app, json!({"flavor": "wecom", "url": url})).await;
    // More than one pass takes (32).
    for i in 0..40 {
        let mut n = notice(&app, &["rep_a"], Some(&format!("stall-{i}")));
        n.team_id = Some(app.teams[0].clone());
        notify(&app.db, n).await.unwrap();
    }
    let config = || OutboxConfig {
        poll_interval: Duration::from_secs(1),
        // One counted failure would give a message up.
        max_attempts: 1,
        retry_base: Duration::from_secs(60),
        retry_max: Duration::from_secs(600),
        http_timeout: Duration::from_secs(5),
        public_base_url: None,
        erp_webhook_url: None,
        erp_webhook_secret: None,
    };
    let (now, clock) = manual_clock();
    let worker = OutboxWorker::new(app.db.clone(), config())
        .unwrap()
        .with_clock(clock.clone());
    let other_instance = OutboxWorker::new(app.db.clone(), config())
        .unwrap()
        .with_clock(clock);
    let first = worker.run_once().await.unwrap();
    assert_eq!(first.deferred, first.claimed);
    assert_eq!(first.gave_up, 0);
    // Once the robot said so, the rest of the pass was left alone (at most the 8 requests in
    // flight at once went out).
    let asked = robot.lock().unwrap().seen;
    assert!(
        asked <= first.claimed && first.claimed < 32,
        "the robot was asked {asked} times, {} messages claimed, in one pass",
        first.claimed
    );
    // The robot is paused for every instance: the messages the first pass did not send wait
    // too, and nobody asks the robot again.
    assert_eq!(worker.run_once().await.unwrap().claimed, 0);
    assert_eq!(other_instance.run_once().await.unwrap().claimed, 0);
    assert_eq!(robot.lock().unwrap().seen, asked);
    assert!(outbox_rows(&app).await.iter().all(|r| r.attempts == 0));

    // A minute and a half later it takes messages again.
    robot.lock().unwrap().busy = false;
    *now.lock().unwrap() += time::Duration::seconds(91);
    let mut delivered = 0;
    for _ in 0..3 {
        let pass = worker.run_once().await.unwrap();
        assert_eq!(pass.gave_up, 0);
        delivered += pass.delivered;
    }
    assert_eq!(delivered, 40);
    let rows = outbox_rows(&app).await;
    assert!(
        rows.iter()
            .all(|r| r.delivered_at.is_some() && r.attempts == 1)
    );
}

#[tokio::test]
async fn a_message_a_robot_still_refuses_a_day_after_it_was_queued_is_given_up() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let (url, robot) = spawn_busy_robot();
    add_webhook(&app, json!({"flavor": "wecom", "url": url})).await;
    let mut n = notice(&app, &["rep_a"], Some("old-alarm"));
    n.team_id = Some(app.teams[0].clone());
    notify(&app.db, n).await.unwrap();
    let (now, clock) = manual_clock();
    let worker = OutboxWorker::new(
        app.db.clone(),
        OutboxConfig::from_settings(&Settings::default()),
    )
    .unwrap()
    .with_clock(clock);
    // Within the day a refusal only defers it.
    *now.lock().unwrap() += time::Duration::hours(23);
    let pass = worker.run_once().await.unwrap();
    assert_eq!((pass.deferred, pass.gave_up), (1, 0));
    // Past the day, the next refusal gives it up, with the robot's answer kept.
    *now.lock().unwrap() += time::Duration::hours(2);
    let pass = worker.run_once().await.unwrap();
    assert_eq!((pass.deferred, pass.gave_up), (0, 1));
    let rows = outbox_rows(&app).await;
    assert!(rows[0].gave_up_at.is_some() && rows[0].delivered_at.is_none());
    assert!(rows[0].last_error.as_deref().unwrap().contains("45009"));
    assert_eq!(robot.lock().unwrap().seen, 2);
}

#[tokio::test]
async fn messages_for_a_deleted_webhook_are_given_up_not_sent() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let robot = spawn_receiver(0);
    let id = add_webhook(&app, json!({"flavor": "wecom", "url": robot.url})).await;
    let mut n = notice(&app, &["rep_a"], None);
    n.team_id = Some(app.teams[0].clone());
    notify(&app.db, n).await.unwrap();
    let admin = app.token("admin").await;
    let path = format!("/api/v1/teams/{}/webhooks/{id}", app.teams[0]);
    let response = app
        .request(Method::DELETE, &path, Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let worker = OutboxWorker::new(
        app.db.clone(),
        OutboxConfig::from_settings(&Settings::default()),
    )
    .unwrap();
    assert_eq!(worker.run_once().await.unwrap().gave_up, 1);
    let rows = outbox_rows(&app).await;
    assert_eq!(
        rows[0].last_error.as_deref(),
        Some("webhook removed or disabled")
    );
    assert!(robot.hits().is_empty());
}

#[tokio::test]
async fn spawn_app_default_still_serves_with_jobs_running() {
    // The default test app runs the worker too; an empty outbox is a quiet no-op.
    let app = spawn_app().await;
    let token = app.token("rep_a").await;
    assert_eq!(app.get("/api/v1/notifications", &token).await.status(), 200);
}

#[tokio::test]
async fn the_schema_goes_all_the_way_down_and_back_up() {
    use fieldproof_migrations::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    let app = spawn_app_with(|s| s.jobs = false).await;
    Migrator::down(&app.db, None)
        .await
        .expect("every down runs");
    assert!(
        app.db
            .execute_unprepared("SELECT 1 FROM outbox")
            .await
            .is_err(),
        "outbox dropped"
    );
    Migrator::up(&app.db, None).await.expect("and up again");
    assert!(outbox_rows(&app).await.is_empty());
}

/// Rows sharing a sequence key (a quote's ERP events) go out in order: the second is not due
/// while the first is neither delivered nor given up; rows of other keys, or of none, are not
/// held up.
#[tokio::test]
async fn rows_of_one_sequence_are_sent_in_order_and_others_are_not_held_up() {
    use db::outbox::{NewOutboxRow, claim, due_ids, enqueue, give_up, mark_delivered};
    let app = spawn_app_with(|s| s.jobs = false).await;
    let db = &app.db;
    for (n, key) in [
        ("issued", Some("erp:q1")),
        ("confirmed", Some("erp:q1")),
        ("amended", Some("erp:q1")),
        ("other-quote", Some("erp:q2")),
        ("unordered", None),
    ] {
        let row = NewOutboxRow {
            org_id: app.org_id.clone(),
            topic: "erp_quote",
            target_id: format!("quote-{n}"),
            payload: json!({"n": n}),
            dedup_key: format!("test:{n}"),
            sequence_key: key.map(str::to_owned),
        };
        assert!(enqueue(db, row).await.unwrap());
        // Distinct, increasing ids (time-ordered) even on a fast machine.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let later = db::now() + time::Duration::seconds(1);
    let due = || due_ids(db, later, 100);
    assert_eq!(
        targets_of(db, due().await.unwrap()).await,
        ["quote-issued", "quote-other-quote", "quote-unordered"]
    );
    mark_delivered(db, &id_of(db, "quote-issued").await, db::now())
        .await
        .unwrap();
    assert_eq!(
        targets_of(db, due().await.unwrap()).await,
        ["quote-confirmed", "quote-other-quote", "quote-unordered"]
    );
    // Given up counts as finished: the next of the sequence may go.
    let confirmed = id_of(db, "quote-confirmed").await;
    let now = db::now();
    assert!(
        claim(
            db,
            &confirmed,
            "worker-t",
            now,
            now + time::Duration::minutes(1)
        )
        .await
        .unwrap()
        .is_some()
    );
    give_up(db, &confirmed, "worker-t", now, "gone")
        .await
        .unwrap();
    assert_eq!(
        targets_of(db, due().await.unwrap()).await,
        ["quote-amended", "quote-other-quote", "quote-unordered"]
    );
}

async fn targets_of(db: &sea_orm::DatabaseConnection, ids: Vec<String>) -> Vec<String> {
    use sea_orm::EntityTrait;
    let mut out = Vec::new();
    for id in ids {
        let row = outbox_row::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        out.push(row.target_id);
    }
    out.sort();
    out
}

async fn id_of(db: &sea_orm::DatabaseConnection, target: &str) -> String {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    outbox_row::Entity::find()
        .filter(outbox_row::Column::TargetId.eq(target))
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .id
}
