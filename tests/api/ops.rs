//! Health, readiness, metrics, request ids and the API documents.

use crate::helpers::spawn_app;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let health = app
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = app
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");
}

#[tokio::test]
async fn a_request_id_is_echoed_or_made() {
    let app = spawn_app().await;
    let given = app
        .request(Method::GET, "/healthz", None)
        .header("x-request-id", "phone-42-abc")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "phone-42-abc");
    let made = app
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = spawn_app().await;
    app.request(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap();
    let text = app.metrics_text().await;
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "{text}");
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_the_api() {
    let app = spawn_app().await;
    let doc: Value = app
        .request(Method::GET, "/api/openapi.json", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/customers",
        "/api/v1/customers/{id}/sites",
        "/api/v1/teams",
        "/api/v1/users",
        "/healthz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "missing {path}");
    }
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
}

#[tokio::test]
async fn the_docs_page_needs_no_internet() {
    let app = spawn_app().await;
    let page = app
        .request(Method::GET, "/api/docs/", None)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads something from outside: {html}"
    );
    let script = app
        .request(Method::GET, "/api/docs/swagger-ui-bundle.js", None)
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
}

/// The embedded database runs in WAL mode (sqlx does not set a journal mode, and a new SQLite file
/// starts in rollback mode): the mode reads `wal`, and a reader holding a read transaction open
/// does not hold up the writer's commit — in rollback mode the commit waits for the reader's
/// lock until the busy timeout and fails.
#[tokio::test]
async fn the_embedded_database_writes_ahead_so_readers_do_not_hold_up_commits() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    use std::time::Duration;
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    let sql = |s: &str| Statement::from_string(DbBackend::Sqlite, s);
    let mode = app
        .db
        .query_one_raw(sql("PRAGMA journal_mode"))
        .await
        .unwrap()
        .expect("a row");
    assert_eq!(mode.try_get_by_index::<String>(0).unwrap(), "wal");

    let reader = app.state.reads.begin().await.unwrap();
    let count =
        |row: Option<sea_orm::QueryResult>| row.expect("a row").try_get_by_index::<i64>(0).unwrap();
    let before = count(
        reader
            .query_one_raw(sql(
                "SELECT count(*) FROM orgs WHERE name LIKE '%(renamed)'",
            ))
            .await
            .unwrap(),
    );
    let writer = app.db.begin().await.unwrap();
    writer
        .execute_unprepared("UPDATE orgs SET name = name || ' (renamed)'")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), writer.commit())
        .await
        .expect("the commit did not wait for the open reader")
        .unwrap();
    // The reader's snapshot is unchanged until its transaction ends; a new one sees the commit.
    let during = count(
        reader
            .query_one_raw(sql(
                "SELECT count(*) FROM orgs WHERE name LIKE '%(renamed)'",
            ))
            .await
            .unwrap(),
    );
    reader.commit().await.unwrap();
    let after = count(
        app.state
            .reads
            .query_one_raw(sql(
                "SELECT count(*) FROM orgs WHERE name LIKE '%(renamed)'",
            ))
            .await
            .unwrap(),
    );
    assert_eq!((before, during), (0, 0));
    assert!(after > 0, "{after}");
}

/// The writer leaves checkpoints to a task of their own: its commits checkpoint only past a
/// safety net of 10,000 WAL pages, and a small write is still copied into the database file
/// within moments. Read from the WAL index (`-shm`, SQLite's documented WAL-index format):
/// `mxFrame` (last valid frame, offset 16) and `nBackfill` (frames copied, offset 96), native
/// byte order.
#[tokio::test]
async fn the_embedded_database_is_checkpointed_beside_the_writer() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    use secrecy::ExposeSecret;
    use std::time::{Duration, Instant};
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    let limit = app
        .db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA wal_autocheckpoint",
        ))
        .await
        .unwrap()
        .expect("a row");
    assert_eq!(limit.try_get_by_index::<i32>(0).unwrap(), 10_000);

    let url = app.state.settings.database_url().expose_secret().to_owned();
    let file = url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let frames = || {
        let shm = std::fs::read(format!("{file}-shm")).unwrap();
        let word = |at: usize| u32::from_ne_bytes(shm[at..at + 4].try_into().unwrap());
        (word(16), word(96))
    };
    app.db
        .execute_unprepared("UPDATE orgs SET name = name || ' (renamed)'")
        .await
        .unwrap();
    let written = frames().0;
    assert!(written > 0, "the write is in the WAL");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (last, copied) = frames();
        if last > 0 && copied == last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "WAL not checkpointed: {copied} of {last} frames copied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reports and lists are read beside the writer: on SQLite the writing pool is one connection,
/// and a dashboard read through it held up every intake and upload for its duration (and
/// waited for each of them). With a write transaction open, the heatmap, the distribution
/// health, the what-if replay, the review queue and the lists still answer.
#[tokio::test]
async fn reports_and_lists_answer_while_a_write_transaction_is_open() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    use std::time::Duration;
    let app = spawn_app().await;
    let admin = app.token("admin").await;
    let rep = app.token("rep_a").await;
    let writer = app.db.begin().await.unwrap();
    writer
        .execute_unprepared("UPDATE orgs SET name = name || ' (held)'")
        .await
        .unwrap();
    let team = app.teams[0].clone();
    let reads = [
        (
            admin.as_str(),
            format!("/api/v1/reports/heatmap?team_id={team}&week=2026-W47"),
        ),
        (
            admin.as_str(),
            format!("/api/v1/leads/health?team_id={team}"),
        ),
        (admin.as_str(), "/api/v1/reviews".to_owned()),
        (admin.as_str(), "/api/v1/deals".to_owned()),
        (admin.as_str(), "/api/v1/customers".to_owned()),
        (rep.as_str(), "/api/v1/leads".to_owned()),
        (rep.as_str(), "/api/v1/notifications".to_owned()),
    ];
    for (token, path) in reads {
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            app.request(Method::GET, &path, Some(token)).send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{path} waited for the writer"))
        .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let replay = tokio::time::timeout(
        Duration::from_secs(5),
        app.request(Method::POST, "/api/v1/lead-rules/what-if", Some(&admin))
            .json(&serde_json::json!({"rules": {"layers": [{"name": "south only", "conditions": [{"field": "rep_team", "in": ["South"]}]}]}, "days": 7}))
            .send(),
    )
    .await
    .expect("the what-if replay waited for the writer")
    .unwrap();
    assert_eq!(replay.status(), 200);
    writer.rollback().await.unwrap();
}
