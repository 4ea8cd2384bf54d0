//! `spawn_app`: build the same application `serve` runs, on port 0, with a fresh database and a
//! small org (two teams, one user per role), and a client that speaks to it.
//!
//! Blob store: a folder in the test's temp dir by default; S3 when `FIELDPROOF_TEST_S3_ENDPOINT`
//! names an S3-compatible server (each test then gets its own fresh bucket).
//! `spawn_peer` starts a second instance on the same database, as a load balancer would run
//! them.

use fieldproof::auth::jwt::AccessTokens;
use fieldproof::config::Settings;
use fieldproof::db;
use fieldproof::services::accounts::{self, CreateUser};
use fieldproof::startup::Application;
use fieldproof::state::AppState;
use fieldproof::storage::{self, BlobStore};
use fieldproof_domain::account::Role;
use reqwest::{Method, RequestBuilder, Response};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Once};

pub const PASSWORD: &str = "correct-horse-battery";
pub const ESIGN_SECRET: &str = "test-esign-callback-secret";
pub const JWT_KEY: &str = "test-signing-key-that-is-long-enough-0123456789";

pub struct TestApp {
    pub address: String,
    /// The running app's state, for tests that call services directly.
    pub state: AppState,
    pub client: reqwest::Client,
    pub users: HashMap<&'static str, String>,
    pub teams: [String; 2],
    pub org_id: String,
    /// A connection of the test's own to the app's database (for calling services directly).
    pub db: DatabaseConnection,
    settings: Settings,
    _data_dir: tempfile::TempDir,
}

/// Another instance of the application on a [`TestApp`]'s database.
pub struct PeerApp {
    pub address: String,
}

fn announce_backend(name: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| eprintln!("api tests: database backend = {name}"));
}

fn announce_blob_store(name: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| eprintln!("api tests: blob store = {name}"));
}

/// The S3-compatible test server, when this run uses one.
pub fn test_s3_endpoint() -> Option<String> {
    std::env::var("FIELDPROOF_TEST_S3_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
}

/// Point `settings` at the blob store this run tests: the folder under `data_dir` (the default),
/// or a fresh bucket on the S3 test server.
pub fn use_test_blob_store(settings: &mut Settings) {
    match test_s3_endpoint() {
        Some(endpoint) => {
            announce_blob_store("s3");
            settings.blob_store = fieldproof::config::BlobStoreKind::S3;
            settings.s3_endpoint = Some(endpoint);
            settings.s3_bucket = format!("fp-test-{}", uuid::Uuid::new_v4().simple());
            settings.s3_create_bucket = true;
            settings.s3_access_key_id = Some(
                std::env::var("FIELDPROOF_TEST_S3_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into()),
            );
            settings.s3_secret_access_key = Some(SecretString::from(
                std::env::var("FIELDPROOF_TEST_S3_SECRET_ACCESS_KEY")
                    .unwrap_or_else(|_| "test".into()),
            ));
        }
        None => {
            announce_blob_store("fs");
            settings.blob_store = fieldproof::config::BlobStoreKind::Fs;
        }
    }
}

/// What a test blob store stands on: its settings, and the temp folder kept alive with it.
pub struct BlobStoreFixture {
    settings: Settings,
    _dir: tempfile::TempDir,
}

impl BlobStoreFixture {
    /// A second store on the same folder or bucket, as another API process would have.
    pub fn another_process(&self) -> Arc<dyn BlobStore> {
        storage::from_settings(&self.settings).expect("second blob store")
    }
}

/// The blob store this run tests, ready to use (bucket created).
pub async fn test_blob_store() -> (Arc<dyn BlobStore>, BlobStoreFixture) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    use_test_blob_store(&mut settings);
    let store = storage::from_settings(&settings).expect("blob store");
    store.check().await.expect("blob store ready");
    (
        store,
        BlobStoreFixture {
            settings,
            _dir: dir,
        },
    )
}

/// A fresh database: a new SQLite file, or a new PostgreSQL database on the test server.
async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("FIELDPROOF_TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            announce_backend("postgres");
            let name = format!("fp_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&server)
                .await
                .expect("connect to the test PostgreSQL server");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
            format!("{base}/{name}")
        }
        _ => {
            announce_backend("sqlite");
            format!("sqlite://{}?mode=rwc", dir.join("test.db").display())
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_full(None, |_| {}).await
}

/// `spawn_app` with a given blob store instead of the one this run tests (e.g. one that is down).
pub async fn spawn_app_with_blobs(blobs: Option<Arc<dyn BlobStore>>) -> TestApp {
    spawn_app_full(blobs, |_| {}).await
}

/// `spawn_app` with settings adjusted first (e.g. background jobs on or off, faster polling).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_full(None, configure).await
}

async fn spawn_app_full(
    blobs: Option<Arc<dyn BlobStore>>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let url = fresh_database(data_dir.path()).await;
    let mut settings = Settings {
        host: "127.0.0.1".into(),
        port: 0,
        data_dir: data_dir.path().to_path_buf(),
        database_url: Some(SecretString::from(url)),
        database_max_connections: 5,
        jwt_secret: Some(SecretString::from(JWT_KEY)),
        esign_callback_secret: Some(SecretString::from(ESIGN_SECRET)),
        workers: 1,
        ..Settings::default()
    };
    use_test_blob_store(&mut settings);
    configure(&mut settings);
    let blobs = match blobs {
        Some(given) => given,
        None => {
            let store = storage::from_settings(&settings).expect("blob store");
            store.check().await.expect("blob store ready");
            store
        }
    };
    let conn = db::connect(&settings).await.expect("connect");
    db::migrate_up(&conn).await.expect("migrate");
    let (org_id, users, teams) = seed(&conn).await;
    let app = Application::build_with_parts(settings.clone(), conn.clone(), blobs)
        .await
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        state,
        client: reqwest::Client::new(),
        users,
        teams,
        org_id,
        db: conn,
        settings,
        _data_dir: data_dir,
    }
}

impl TestApp {
    /// Another connection pool to this app's database, as a second process would have.
    pub async fn connect_again(&self) -> DatabaseConnection {
        db::connect(&self.settings)
            .await
            .expect("second connection")
    }

    /// A second application (own pool, own port, own background jobs) on this app's database:
    /// the same SQLite file or the same PostgreSQL database.
    pub async fn spawn_peer(&self, configure: impl FnOnce(&mut Settings)) -> PeerApp {
        let mut settings = self.settings.clone();
        configure(&mut settings);
        let conn = db::connect(&settings).await.expect("peer connect");
        let app = Application::build_with_db(settings, conn)
            .await
            .expect("build peer");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        PeerApp { address }
    }
}

async fn seed(conn: &DatabaseConnection) -> (String, HashMap<&'static str, String>, [String; 2]) {
    let org = db::orgs::create(conn, "Test Org").await.expect("org");
    let mut team_ids = Vec::new();
    for name in ["East", "South"] {
        let team = db::teams::create(
            conn,
            db::teams::NewTeam {
                org_id: &org.id,
                name,
                region: name,
                product_line: "pumps",
            },
        )
        .await
        .expect("team");
        team_ids.push(team.id);
    }
    let mut users = HashMap::new();
    let roster: [(&'static str, Role, Option<usize>); 10] = [
        ("admin", Role::Admin, None),
        ("manager_east", Role::Manager, Some(0)),
        ("rep_a", Role::Rep, Some(0)),
        ("rep_b", Role::Rep, Some(0)),
        ("rep_south", Role::Rep, Some(1)),
        ("manager_south", Role::Manager, Some(1)),
        ("supervisor_east", Role::Supervisor, Some(0)),
        ("supervisor_east2", Role::Supervisor, Some(0)),
        ("finance_east", Role::Finance, Some(0)),
        ("presales_east", Role::Presales, Some(0)),
    ];
    for (username, role, team) in roster {
        let user = accounts::create_user(
            conn,
            CreateUser {
                org_id: &org.id,
                username,
                display_name: None,
                password: SecretString::from(PASSWORD),
                role,
                team_id: team.map(|i| team_ids[i].as_str()),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("seed {username}: {e:?}"));
        users.insert(username, user.id);
    }
    let teams = [team_ids[0].clone(), team_ids[1].clone()];
    (org.id, users, teams)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    pub async fn login_pair(&self, username: &str, device: Option<&str>) -> Value {
        let mut body = json!({"username": username, "password": PASSWORD});
        if let Some(d) = device {
            body["device_id"] = json!(d);
        }
        let response = self
            .request(Method::POST, "/api/v1/auth/login", None)
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "login as {username}");
        response.json().await.expect("json")
    }

    pub async fn token(&self, username: &str) -> String {
        let pair = self.login_pair(username, None).await;
        pair["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// The caller a session of `username` would be (for calling services directly).
    pub async fn caller(&self, username: &str) -> fieldproof::auth::Caller {
        let user = db::users::find_active(&self.db, &self.users[username])
            .await
            .expect("read user")
            .expect("user exists");
        fieldproof::auth::Caller {
            user_id: user.id,
            org_id: user.org_id,
            role: user.role,
            team_id: user.team_id,
            session_id: "test-session".into(),
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        self.request(Method::GET, "/metrics", None)
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token))
            .send()
            .await
            .expect("send")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::POST, path, Some(token))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path, Some(token))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    /// Create a customer as `username` and return its id.
    /// Deactivate `username`'s account behind the API's back (someone who left).
    pub async fn deactivate(&self, username: &str) {
        use fieldproof::db::entities::user;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        user::Entity::update_many()
            .col_expr(user::Column::Active, Expr::value(false))
            .filter(user::Column::Id.eq(self.users[username].as_str()))
            .exec(&self.db)
            .await
            .unwrap();
    }

    pub async fn customer_of(&self, username: &str, name: &str) -> String {
        let token = self.token(username).await;
        let response = self
            .post(
                "/api/v1/customers",
                &token,
                &json!({"name": name, "industry": "manufacturing", "annual_purchase_fen": 80_000_000}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        body["id"].as_str().expect("id").to_owned()
    }

    /// An access token for a user signed with the server's key but with chosen times.
    pub fn token_issued_at(&self, username: &str, at: time::OffsetDateTime) -> String {
        AccessTokens::new(&SecretString::from(JWT_KEY), 900)
            .issue(&self.users[username], "no-session", at)
            .expect("issue")
    }
}

/// Read an error body and check it has the catalogue shape; returns it.
pub async fn error_body(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "body: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    assert!(
        body["message_zh"].as_str().is_some_and(|m| !m.is_empty()),
        "message_zh in {body}"
    );
    assert!(body["details"].is_object(), "details in {body}");
    body
}

/// A blob store whose deletes (or, from [`Held::first_put_under`], its first `put_bytes` under a
/// prefix) say when they start (`started`) and then wait until the test lets them go (`true` on
/// the sender the constructor returns): for races with a sweep, or with a transaction.
pub struct Held {
    inner: Arc<dyn BlobStore>,
    pub started: tokio::sync::Notify,
    go: tokio::sync::watch::Receiver<bool>,
    /// `None`: deletes are held. `Some(prefix)`: the first `put_bytes` under it is.
    put_prefix: Option<&'static str>,
    put_held: std::sync::atomic::AtomicBool,
    /// `put_bytes` calls under the prefix so far.
    pub puts: std::sync::atomic::AtomicUsize,
}

impl Held {
    fn new(
        inner: Arc<dyn BlobStore>,
        put_prefix: Option<&'static str>,
    ) -> (Arc<Held>, tokio::sync::watch::Sender<bool>) {
        let (go, held) = tokio::sync::watch::channel(false);
        let store = Held {
            inner,
            started: tokio::sync::Notify::new(),
            go: held,
            put_prefix,
            put_held: std::sync::atomic::AtomicBool::new(false),
            puts: std::sync::atomic::AtomicUsize::new(0),
        };
        (Arc::new(store), go)
    }

    /// Deletes are held.
    pub fn wrap(inner: Arc<dyn BlobStore>) -> (Arc<Held>, tokio::sync::watch::Sender<bool>) {
        Held::new(inner, None)
    }

    /// The first `put_bytes` of a key under `prefix` is held; every other call goes through.
    pub fn first_put_under(
        inner: Arc<dyn BlobStore>,
        prefix: &'static str,
    ) -> (Arc<Held>, tokio::sync::watch::Sender<bool>) {
        Held::new(inner, Some(prefix))
    }

    async fn hold(&self) {
        self.started.notify_one();
        let mut go = self.go.clone();
        let _ = go.wait_for(|go| *go).await;
    }
}

#[async_trait::async_trait]
impl fieldproof::storage::BlobStore for Held {
    async fn put_file(
        &self,
        key: &fieldproof::storage::BlobKey,
        path: &std::path::Path,
        content_type: &str,
    ) -> Result<fieldproof::storage::PutOutcome, fieldproof::storage::StoreError> {
        self.inner.put_file(key, path, content_type).await
    }
    async fn put_bytes(
        &self,
        key: &fieldproof::storage::BlobKey,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<fieldproof::storage::PutOutcome, fieldproof::storage::StoreError> {
        if let Some(prefix) = self.put_prefix
            && key.as_str().starts_with(prefix)
        {
            self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if !self
                .put_held
                .swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                self.hold().await;
            }
        }
        self.inner.put_bytes(key, bytes, content_type).await
    }
    async fn get(
        &self,
        key: &fieldproof::storage::BlobKey,
    ) -> Result<Vec<u8>, fieldproof::storage::StoreError> {
        self.inner.get(key).await
    }
    async fn get_stream(
        &self,
        key: &fieldproof::storage::BlobKey,
    ) -> Result<fieldproof::storage::BlobStream, fieldproof::storage::StoreError> {
        self.inner.get_stream(key).await
    }
    async fn exists(
        &self,
        key: &fieldproof::storage::BlobKey,
    ) -> Result<bool, fieldproof::storage::StoreError> {
        self.inner.exists(key).await
    }
    async fn delete(
        &self,
        key: &fieldproof::storage::BlobKey,
    ) -> Result<(), fieldproof::storage::StoreError> {
        if self.put_prefix.is_none() {
            self.hold().await;
        }
        self.inner.delete(key).await
    }
    async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<fieldproof::storage::BlobEntry>, fieldproof::storage::StoreError> {
        self.inner.list(prefix).await
    }
    async fn presigned_get(
        &self,
        key: &fieldproof::storage::BlobKey,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, fieldproof::storage::StoreError> {
        self.inner.presigned_get(key, ttl).await
    }
    async fn check(&self) -> Result<(), fieldproof::storage::StoreError> {
        self.inner.check().await
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// The plan the app's database makes for `query` (SQLite's `EXPLAIN QUERY PLAN` details or
/// PostgreSQL's `EXPLAIN` lines). The test tables are tiny, so PostgreSQL is told to avoid
/// sequential scans (inside a transaction rolled back): the plan shows whether an index *can*
/// serve the query.
pub(crate) async fn query_plan<E: sea_orm::EntityTrait>(
    app: &TestApp,
    query: sea_orm::Select<E>,
) -> String {
    use sea_orm::QueryTrait;
    statement_plan(app, query.into_query()).await
}

/// [`query_plan`] of a statement built without an entity.
pub(crate) async fn statement_plan(
    app: &TestApp,
    query: sea_orm::sea_query::SelectStatement,
) -> String {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, StatementBuilder, TransactionTrait};
    let backend = app.db.get_database_backend();
    let query = StatementBuilder::build(&query, &backend);
    let txn = app.db.begin().await.unwrap();
    if backend == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .unwrap();
    }
    let (prefix, column) = match backend {
        DbBackend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
        _ => ("EXPLAIN ", "QUERY PLAN"),
    };
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!("{prefix}{}", query.sql),
            query.values.map(|v| v.0).unwrap_or_default(),
        ))
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", column).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many migrations `down` must undo to undo `name` (and every later one).
pub(crate) fn steps_back_to(name: &str) -> u32 {
    use fieldproof_migrations::{Migrator, MigratorTrait};
    let all = Migrator::migrations();
    let at = all
        .iter()
        .position(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no migration {name}"));
    u32::try_from(all.len() - at).unwrap()
}
