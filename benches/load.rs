//! End-to-end load benches: the real `fieldproof` server, started as a child process (so its
//! CPU time and peak RSS are its own), driven over loopback HTTP by this process's tokio tasks.
//! Figures and how to read them: docs/benchmarks.md. Run everything with `bash scripts/bench.sh`
//! (it starts PostgreSQL and the S3 test server); `cargo bench --bench load -- uploads` runs
//! only the scenarios whose name contains `uploads`.
//!
//! Scenarios:
//! - `uploads-sqlite-fs`, `uploads-pg-s3`: N concurrent 12-MP (≈4 MB) phone JPEG uploads, each
//!   a new capture, multipart as in docs/uploads.md → photos/s, p50, p99, against
//!   0.8 × cores ÷ (per-photo `evidence::verify` time measured here, on the same photo).
//! - `rss-sqlite-fs`, `rss-pg-s3`: 64 concurrent ≈10 MB uploads to a fresh server → its VmHWM.
//! - `advance-pg`: 100k seeded deals on PostgreSQL; `POST …/nodes/visit_booked/visit` on many
//!   different deals at once (each passes a node) → requests/s, p50, p99.
//! - `heatmap-pg`, `heatmap-sqlite`: a year of node runs of a 200-rep team → p50/p99 of
//!   `GET /api/v1/reports/heatmap`, with the totals checked against the seeded data.
//! - `leads-sqlite`, `leads-pg`: bursts of 200 concurrent lead intakes with 1,000 reps, 50 rule
//!   layers and 1M existing leads → intake-to-assigned p50/p99 (`load/leads.rs`).
//! - `history-sqlite`, `history-pg`: the evidence checks' history lookups (near duplicates, same
//!   bytes, a rep's captures) in an org of 1M photos → p50/p99 (`load/history.rs`).
//!
//! Sizes come from `FIELDPROOF_BENCH_*` variables (see `Config::from_env`).

#[path = "../domain/tests/support/mod.rs"]
mod photos;

#[path = "load/history.rs"]
mod history;
#[path = "load/leads.rs"]
mod leads;

use fieldproof::cli::proc_cpu_secs;
use fieldproof::config::Settings;
use fieldproof::db::entities::{
    audit_event, contact, customer, deal, node_record, node_run, site, user,
};
use fieldproof::services::deals::{ProductLine, price_lines};
use fieldproof_domain::evidence::{VerifyContext, verify};
use fieldproof_domain::geo::{Crs, SitePoint};
use photos::{ExifSpec, Rng};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, EntityTrait, Set, Statement, TransactionTrait,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

const PASSWORD: &str = "bench-password-0123456789";
const JWT_SECRET: &str = "bench-signing-key-that-is-long-enough-0123456789";
/// The customer site every upload deal uses (Hangzhou), WGS-84.
const SITE: (f64, f64) = (30.2281, 120.2986);

// ---------------------------------------------------------------------------------------------
// Configuration

struct Config {
    /// PostgreSQL server URL with a database we may connect to (each scenario creates its own).
    pg: Option<String>,
    /// S3-compatible endpoint (moto or s3s-fs, see scripts/bench.sh), and its pid for CPU accounting.
    s3: Option<String>,
    s3_pid: Option<u32>,
    filters: Vec<String>,
    uploads: usize,
    concurrency: usize,
    scenes: usize,
    rss_uploads: usize,
    deals: usize,
    advances: usize,
    advance_concurrency: usize,
    heatmap_reps: usize,
    heatmap_calls: usize,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_str(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    fn from_env() -> Config {
        Config {
            pg: env_str("FIELDPROOF_BENCH_PG"),
            s3: env_str("FIELDPROOF_BENCH_S3"),
            s3_pid: env_str("FIELDPROOF_BENCH_S3_PID").and_then(|p| p.parse().ok()),
            filters: std::env::args()
                .skip(1)
                .filter(|a| !a.starts_with("--"))
                .collect(),
            uploads: env_usize("FIELDPROOF_BENCH_UPLOADS", 96),
            concurrency: env_usize("FIELDPROOF_BENCH_CONCURRENCY", 8),
            scenes: env_usize("FIELDPROOF_BENCH_SCENES", 16),
            rss_uploads: env_usize("FIELDPROOF_BENCH_RSS_UPLOADS", 64),
            deals: env_usize("FIELDPROOF_BENCH_DEALS", 100_000),
            advances: env_usize("FIELDPROOF_BENCH_ADVANCES", 3_000),
            advance_concurrency: env_usize("FIELDPROOF_BENCH_ADVANCE_CONCURRENCY", 16),
            heatmap_reps: env_usize("FIELDPROOF_BENCH_HEATMAP_REPS", 200),
            heatmap_calls: env_usize("FIELDPROOF_BENCH_HEATMAP_CALLS", 40),
        }
    }

    fn wants(&self, scenario: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| scenario.contains(f.as_str()))
    }
}

// ---------------------------------------------------------------------------------------------
// The machine and the processes

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// User + system CPU seconds of a process (all its threads), from /proc/<pid>/stat.
fn cpu_secs(pid: u32) -> Option<f64> {
    proc_cpu_secs(&format!("/proc/{pid}/stat"))
}

/// The entries of a /proc folder named by a number (pids, or a process's thread ids).
fn numbered_entries(dir: &str) -> Vec<u32> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// CPU seconds of every PostgreSQL process on the machine (postmaster, background workers and
/// the server's connections, which its pool keeps open over a run), by pid: the database's share
/// of the two cores, which the server's own figures leave out.
fn postgres_cpu_secs() -> BTreeMap<u32, f64> {
    let mut all = BTreeMap::new();
    for pid in numbered_entries("/proc") {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres"
            && let Some(cpu) = cpu_secs(pid)
        {
            all.insert(pid, cpu);
        }
    }
    all
}

/// CPU the processes of `after` spent since `before` (a process new since then counts whole).
fn cpu_since(before: &BTreeMap<u32, f64>, after: &BTreeMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, cpu)| cpu - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

/// CPU seconds of each live thread of a process, by thread id, with its name (trailing digits
/// and separators dropped: `verify-0`, `verify-1` → `verify`), from /proc/<pid>/task/*/stat.
fn thread_cpu_secs(pid: u32) -> BTreeMap<u32, (String, f64)> {
    let mut threads = BTreeMap::new();
    for tid in numbered_entries(&format!("/proc/{pid}/task")) {
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")) else {
            continue;
        };
        let name = comm
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_')
            .to_owned();
        let cpu = proc_cpu_secs(&format!("/proc/{pid}/task/{tid}/stat")).unwrap_or(0.0);
        threads.insert(tid, (name, cpu));
    }
    threads
}

/// CPU seconds spent between two [`thread_cpu_secs`] snapshots, summed by thread name: each
/// thread against its own first reading (a thread born in between counts from zero; one that
/// ended in between is missing from both sides' sums, so its last stretch is not counted).
fn thread_cpu_between(
    before: &BTreeMap<u32, (String, f64)>,
    after: &BTreeMap<u32, (String, f64)>,
) -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    for (tid, (name, cpu)) in after {
        let start = before.get(tid).map(|(_, c)| *c).unwrap_or(0.0);
        *by_name.entry(name.clone()).or_insert(0.0) += cpu - start;
    }
    by_name
}

/// The machine's jiffies since boot from /proc/stat: busy (user, nice, system, irq, softirq),
/// idle, waiting on I/O, stolen by the hypervisor.
fn machine_jiffies() -> Option<[f64; 4]> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)?;
    Some([busy, *v.get(3)?, *v.get(4)?, *v.get(7)?])
}

/// A `VmXXX:` line of /proc/<pid>/status, in MiB.
fn vm_mib(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `FIELDPROOF_BENCH_PERF=/some/prefix`: record a `perf` profile of the server during each
/// measured run into `<prefix>-<scenario>.data` (for `perf report --no-children`).
fn start_perf(pid: u32, scenario: &str) -> Option<Child> {
    let prefix = env_str("FIELDPROOF_BENCH_PERF")?;
    Command::new("perf")
        .args(["record", "-F", "999", "-g", "-p", &pid.to_string(), "-o"])
        .arg(format!("{prefix}-{scenario}.data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn stop_perf(perf: Option<Child>) {
    if let Some(mut child) = perf {
        // perf writes its file on SIGINT.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
}

#[derive(Clone)]
enum Store {
    Folder,
    S3 { endpoint: String, bucket: String },
}

/// The server's binary: this build's, or `FIELDPROOF_BENCH_SERVER` (another build to compare
/// against, A/B runs).
fn server_binary() -> String {
    env_str("FIELDPROOF_BENCH_SERVER")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_fieldproof").to_owned())
}

/// The server under test, as a child process.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, database_url: &str, store: &Store) -> Server {
        let port = free_port();
        let log = data_dir.join("server.log");
        let mut cmd = Command::new(server_binary());
        cmd.arg("serve");
        for (key, _) in std::env::vars() {
            if key.starts_with("FIELDPROOF_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("FIELDPROOF_HOST", "127.0.0.1")
            .env("FIELDPROOF_PORT", port.to_string())
            .env("FIELDPROOF_DATA_DIR", data_dir)
            .env("FIELDPROOF_DATABASE_URL", database_url)
            .env("FIELDPROOF_JWT_SECRET", JWT_SECRET)
            .env("FIELDPROOF_ACCESS_TOKEN_TTL_SECS", "86400")
            // Background jobs (stall scan, outbox, sweeps) are not what is measured here.
            .env("FIELDPROOF_JOBS", "false")
            .env("FIELDPROOF_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn");
        match store {
            Store::Folder => {
                cmd.env("FIELDPROOF_BLOB_STORE", "fs");
            }
            Store::S3 { endpoint, bucket } => {
                cmd.env("FIELDPROOF_BLOB_STORE", "s3")
                    .env("FIELDPROOF_S3_ENDPOINT", endpoint)
                    .env("FIELDPROOF_S3_BUCKET", bucket)
                    .env("FIELDPROOF_S3_CREATE_BUCKET", "true")
                    .env("FIELDPROOF_S3_ACCESS_KEY_ID", "test")
                    .env("FIELDPROOF_S3_SECRET_ACCESS_KEY", "test");
            }
        }
        let out = std::fs::File::create(&log).expect("server log");
        let err = out.try_clone().expect("server log");
        let child = cmd
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start the fieldproof server");
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the server exited ({status}); its log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not become ready");
    }

    fn cpu(&self) -> f64 {
        cpu_secs(self.pid()).unwrap_or(f64::NAN)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Databases

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A database made for one scenario; PostgreSQL ones are dropped at the end.
struct BenchDb {
    url: String,
    pg_admin: Option<(String, String)>,
}

impl BenchDb {
    async fn create(cfg: &Config, backend: Backend, dir: &Path) -> BenchDb {
        match backend {
            Backend::Sqlite => BenchDb {
                url: format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
                pg_admin: None,
            },
            Backend::Postgres => {
                let server = cfg.pg.clone().expect("FIELDPROOF_BENCH_PG");
                let name = format!("fp_bench_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&server)
                    .await
                    .expect("connect to PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the bench database");
                admin.close().await.ok();
                let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
                BenchDb {
                    url: format!("{base}/{name}"),
                    pg_admin: Some((server.clone(), name)),
                }
            }
        }
    }

    /// Migrate, then hand back a connection for seeding.
    async fn connect(&self, dir: &Path) -> DatabaseConnection {
        let settings = Settings {
            data_dir: dir.to_path_buf(),
            database_url: Some(SecretString::from(self.url.clone())),
            ..Settings::default()
        };
        let conn = fieldproof::db::connect(&settings).await.expect("connect");
        fieldproof::db::migrate_up(&conn).await.expect("migrate");
        conn
    }

    async fn drop_pg(self) {
        if let Some((server, name)) = self.pg_admin
            && let Ok(admin) = Database::connect(&server).await
        {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
            admin.close().await.ok();
        }
    }
}

fn ts(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("time")
}

/// Insert rows in chunks, one transaction per chunk.
async fn insert_chunks<A, I>(db: &DatabaseConnection, rows: I)
where
    A: sea_orm::ActiveModelTrait + Send,
    I: IntoIterator<Item = A>,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(1000).collect();
        let txn = db.begin().await.expect("begin");
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(&txn)
            .await
            .expect("insert chunk");
        txn.commit().await.expect("commit");
    }
}

/// An org with one team per entry of `team_sizes` (that many reps) and a manager each; everyone's
/// password is [`PASSWORD`] (one Argon2 hash computed once, shared, so seeding is quick).
struct Org {
    id: String,
    template_id: String,
    template_version: i32,
    nodes: Vec<(String, u32)>,
    teams: Vec<String>,
    managers: Vec<(String, String)>,
    /// (username, user id, team id)
    reps: Vec<(String, String, String)>,
}

async fn seed_org(db: &DatabaseConnection, team_sizes: &[usize]) -> Org {
    let org = fieldproof::db::orgs::create(db, "Bench Org")
        .await
        .expect("org");
    let template = fieldproof::db::templates::default_for_org(db, &org.id)
        .await
        .expect("template");
    let hash = fieldproof::auth::password::hash(SecretString::from(PASSWORD))
        .await
        .expect("hash");
    let mut team_ids = Vec::new();
    for t in 0..team_sizes.len() {
        let team = fieldproof::db::teams::create(
            db,
            fieldproof::db::teams::NewTeam {
                org_id: &org.id,
                name: &format!("Team {t}"),
                region: "East",
                product_line: "pumps",
            },
        )
        .await
        .expect("team");
        team_ids.push(team.id);
    }
    let now = fieldproof::db::now();
    let mut rows = Vec::new();
    let mut managers = Vec::new();
    let mut rep_list = Vec::new();
    let mut add = |username: String, role: &str, team: Option<&String>| {
        let id = fieldproof::db::new_id();
        rows.push(user::ActiveModel {
            id: Set(id.clone()),
            org_id: Set(org.id.clone()),
            username: Set(username.clone()),
            display_name: Set(username),
            password_hash: Set(hash.clone()),
            role: Set(role.to_owned()),
            team_id: Set(team.cloned()),
            active: Set(true),
            created_at: Set(now),
        });
        id
    };
    add("bench_admin".into(), "admin", None);
    for (t, team) in team_ids.iter().enumerate() {
        let name = format!("manager{t:02}");
        let id = add(name.clone(), "manager", Some(team));
        managers.push((name, id));
    }
    for (t, size) in team_sizes.iter().enumerate() {
        for _ in 0..*size {
            let name = format!("rep{:04}", rep_list.len());
            let id = add(name.clone(), "rep", Some(&team_ids[t]));
            rep_list.push((name, id, team_ids[t].clone()));
        }
    }
    insert_chunks(db, rows).await;
    Org {
        id: org.id,
        template_id: template.id,
        template_version: template.version,
        nodes: template
            .definition
            .nodes
            .iter()
            .map(|n| (n.key.clone(), n.stall_after_hours))
            .collect(),
        teams: team_ids,
        managers,
        reps: rep_list,
    }
}

/// The audit chain exactly as `db::audit::append` links it.
struct Chain {
    seq: i64,
    prev: String,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            seq: 0,
            prev: fieldproof::db::audit::GENESIS.to_owned(),
        }
    }

    fn next(
        &mut self,
        org_id: &str,
        deal_id: &str,
        kind: &str,
        actor: Option<&str>,
        at: OffsetDateTime,
        payload: Value,
    ) -> audit_event::ActiveModel {
        self.seq += 1;
        let created_at = at.format(&Rfc3339).expect("rfc3339");
        let payload = payload.to_string();
        let mut hasher = Sha256::new();
        for part in [
            self.prev.as_str(),
            &self.seq.to_string(),
            kind,
            actor.unwrap_or("-"),
            &created_at,
            &payload,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let hash = hex::encode(hasher.finalize());
        let row = audit_event::ActiveModel {
            id: Set(fieldproof::db::new_id()),
            org_id: Set(org_id.to_owned()),
            deal_id: Set(deal_id.to_owned()),
            seq: Set(self.seq),
            kind: Set(kind.to_owned()),
            actor_id: Set(actor.map(str::to_owned)),
            payload: Set(payload),
            prev_hash: Set(self.prev.clone()),
            hash: Set(hash.clone()),
            created_at: Set(created_at),
        };
        self.prev = hash;
        row
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client side

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn login(&self, username: &str) -> String {
        let r = self
            .client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200, "login as {username}");
        let body: Value = r.json().await.expect("login body");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// A summary's `_sum` and `_count` on the server's `/metrics` (zeros before its first value).
    async fn summary(&self, name: &str) -> (f64, f64) {
        let text = match self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let value = |suffix: &str| {
            let prefix = format!("{name}_{suffix} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (value("sum"), value("count"))
    }

    async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn created(&self, token: &str, path: &str, body: &Value) -> String {
        let (status, value) = self.post(token, path, body).await;
        assert_eq!(status, 201, "POST {path}: {value}");
        value["id"].as_str().expect("id").to_owned()
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("rfc3339")
}

/// Latencies of a run, and what it achieved.
struct Run {
    wall: Duration,
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, usize>,
}

/// The nearest-rank `p` percentile of `times` (zero if there are none).
fn percentile(times: &[Duration], p: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    fn summary(&self, unit: &str) -> String {
        format!(
            "{} requests in {:.2} s → {:.2} {unit}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; statuses {:?}",
            self.latencies.len(),
            self.wall.as_secs_f64(),
            self.rate(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.percentile(1.0)),
            self.statuses
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Run `total` requests, `concurrency` at a time, each on its own tokio task; `request(i)`
/// returns the HTTP status and is timed from its start to its full response body.
async fn drive<F, Fut>(total: usize, concurrency: usize, request: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (request, next) = (request.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                let status = request(i).await;
                mine.push((t.elapsed(), status));
            }
            mine
        }));
    }
    let mut latencies = Vec::new();
    let mut statuses = BTreeMap::new();
    for task in tasks {
        for (latency, status) in task.await.expect("load task") {
            latencies.push(latency);
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    Run {
        wall: started.elapsed(),
        latencies,
        statuses,
    }
}

// ---------------------------------------------------------------------------------------------
// Photos

/// A photo-like `width`×`height` scene with per-pixel sensor-style noise (±`noise`), as JPEG at
/// `quality`, no EXIF. Cached under the target dir: encoding 12 MP takes about a second.
fn scene_jpeg(seed: u64, width: u32, height: u32, quality: u8, noise: u8) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-photos");
    let path = dir.join(format!(
        "scene-{seed}-{width}x{height}-q{quality}-n{noise}.jpg"
    ));
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes;
    }
    let mut image = photos::scene(seed, width, height);
    let mut rng = Rng::new(seed ^ 0x5EED);
    let span = u64::from(noise) * 2 + 1;
    for p in image.pixels_mut() {
        let n = (rng.next() % span) as i16 - i16::from(noise);
        p.0 = p.0.map(|c| (i16::from(c) + n).clamp(0, 255) as u8);
    }
    let bytes = photos::jpeg(&image, quality);
    std::fs::create_dir_all(&dir).expect("photo cache dir");
    std::fs::write(&path, &bytes).expect("photo cache");
    bytes
}

/// `count` distinct scenes (distinct perceptual hashes), made on all cores.
fn scene_pool(count: usize, width: u32, height: u32, quality: u8, noise: u8) -> Vec<Vec<u8>> {
    let threads = cores().min(count.max(1));
    let mut pool: Vec<(usize, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            (
                                i,
                                scene_jpeg(1000 + i as u64, width, height, quality, noise),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("scene thread"))
            .collect()
    });
    pool.sort_by_key(|(i, _)| *i);
    pool.into_iter().map(|(_, b)| b).collect()
}

/// A phone photo of `base` taken `minutes_ago` at the site, +08:00 EXIF, made unique (its own
/// SHA-256, as a new capture is) by a JPEG comment segment after the EXIF.
fn phone_photo(base: &[u8], unique: usize, minutes_ago: i64) -> Vec<u8> {
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
    let with = photos::with_exif(base, &ExifSpec::phone(SITE.0 + 0.0003, SITE.1, &local));
    // SOI, then APP1: FF E1 + big-endian length (which counts itself).
    let after_app1 = 4 + usize::from(u16::from_be_bytes([with[4], with[5]]));
    let comment = format!("fieldproof load bench capture {unique}");
    let mut out = Vec::with_capacity(with.len() + comment.len() + 4);
    out.extend_from_slice(&with[..after_app1]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&(comment.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(comment.as_bytes());
    out.extend_from_slice(&with[after_app1..]);
    out
}

/// `evidence::verify` on `bytes`, `runs` times after one warm-up call, while nothing else runs
/// in this process: the median wall time, and the mean CPU time per call of the whole process
/// (jpeg-decoder may hand rows to helper threads; their time counts too).
fn verification_time(bytes: &[u8], runs: usize) -> (Duration, Option<Duration>) {
    let ctx = VerifyContext {
        site: Some(SitePoint::new(SITE.0, SITE.1, Crs::Wgs84, 300.0).expect("site")),
        ..VerifyContext::default()
    };
    let now = OffsetDateTime::now_utc();
    std::hint::black_box(verify(bytes, None, &ctx, now));
    let cpu0 = cpu_secs(std::process::id());
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(verify(std::hint::black_box(bytes), None, &ctx, now));
            t.elapsed()
        })
        .collect();
    let cpu = cpu_secs(std::process::id())
        .zip(cpu0)
        .map(|(b, a)| Duration::from_secs_f64((b - a) / runs as f64));
    times.sort();
    (times[times.len() / 2], cpu)
}

// ---------------------------------------------------------------------------------------------
// Uploads

struct UploadSetup {
    server: Server,
    api: Arc<Api>,
    /// (deal id, owner's token)
    deals: Vec<(String, String)>,
    db: BenchDb,
    _dir: tempfile::TempDir,
}

async fn upload_setup(cfg: &Config, backend: Backend, store: &Store, deals: usize) -> UploadSetup {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = BenchDb::create(cfg, backend, dir.path()).await;
    let conn = db.connect(dir.path()).await;
    let reps = deals.clamp(1, 16);
    let org = seed_org(&conn, &[reps]).await;
    conn.close().await.ok();
    let mut server = Server::start(dir.path(), &db.url, store);
    let client = reqwest::Client::new();
    server.wait_ready(&client).await;
    let api = Arc::new(Api {
        client,
        base: server.base.clone(),
    });
    let mut tokens = Vec::new();
    for (name, _, _) in &org.reps {
        tokens.push(api.login(name).await);
    }
    let now = OffsetDateTime::now_utc();
    let mut made = Vec::new();
    for d in 0..deals {
        let token = tokens[d % tokens.len()].clone();
        let customer = api
            .created(
                &token,
                "/api/v1/customers",
                &json!({"name": format!("客户 {d}"), "industry": "manufacturing", "annual_purchase_fen": 80_000_000}),
            )
            .await;
        let site = api
            .created(
                &token,
                &format!("/api/v1/customers/{customer}/sites"),
                &json!({"name": "厂区", "lat": SITE.0, "lon": SITE.1, "radius_m": 300}),
            )
            .await;
        let contact = api
            .created(
                &token,
                &format!("/api/v1/customers/{customer}/contacts"),
                &json!({"name": "张总", "seniority": "executive"}),
            )
            .await;
        let deal = api
            .created(
                &token,
                "/api/v1/deals",
                &json!({"customer_id": customer, "site_id": site, "title": "泵改造"}),
            )
            .await;
        let (status, body) = api
            .post(
                &token,
                &format!("/api/v1/deals/{deal}/nodes/visit_booked/visit"),
                &json!({"site_id": site, "contact_id": contact,
                        "starts_at": rfc3339(now - time::Duration::hours(3)),
                        "ends_at": rfc3339(now + time::Duration::hours(3))}),
            )
            .await;
        assert_eq!(status, 200, "visit: {body}");
        made.push((deal, token));
    }
    UploadSetup {
        server,
        api,
        deals: made,
        db,
        _dir: dir,
    }
}

/// POST one photo as a new capture; the status, and the verdict when stored.
async fn upload_one(api: &Api, deal: &str, token: &str, bytes: bytes::Bytes) -> (u16, String) {
    let len = bytes.len() as u64;
    let form = reqwest::multipart::Form::new()
        .part(
            "meta",
            reqwest::multipart::Part::text(
                json!({"capture_id": uuid::Uuid::new_v4().to_string(), "tags": ["nameplate"]})
                    .to_string(),
            )
            .mime_str("application/json")
            .expect("mime"),
        )
        .part(
            "file",
            reqwest::multipart::Part::stream_with_length(reqwest::Body::from(bytes), len)
                .file_name("IMG_0001.jpg")
                .mime_str("image/jpeg")
                .expect("mime"),
        );
    let r = api
        .client
        .post(format!(
            "{}/api/v1/deals/{deal}/nodes/site_survey/evidence",
            api.base
        ))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let verdict = body["verdict"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("error:{}", body["code"].as_str().unwrap_or("?")));
    (status, verdict)
}

async fn run_uploads(
    setup: &UploadSetup,
    bodies: Vec<bytes::Bytes>,
    concurrency: usize,
) -> (Run, BTreeMap<String, usize>) {
    let verdicts = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let bodies = Arc::new(bodies);
    let (api, deals) = (setup.api.clone(), Arc::new(setup.deals.clone()));
    let v = verdicts.clone();
    let run = drive(bodies.len(), concurrency, move |i| {
        let (api, deals, bodies, v) = (api.clone(), deals.clone(), bodies.clone(), v.clone());
        async move {
            let (deal, token) = &deals[i % deals.len()];
            let (status, verdict) = upload_one(&api, deal, token, bodies[i].clone()).await;
            *v.lock().unwrap().entry(verdict).or_insert(0) += 1;
            status
        }
    })
    .await;
    let verdicts = verdicts.lock().unwrap().clone();
    (run, verdicts)
}

async fn bench_uploads(cfg: &Config, name: &str, backend: Backend, store: Store) {
    println!("\n## {name}");
    println!("load average at start: {}", loadavg());
    let started = Instant::now();
    let pool = scene_pool(cfg.scenes, 4032, 3024, 90, 12);
    println!(
        "photos: {} distinct 4032×3024 q90 scenes, {:.2} MB each on average (made/cached in {:.1} s)",
        pool.len(),
        pool.iter().map(Vec::len).sum::<usize>() as f64 / pool.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let setup = upload_setup(cfg, backend, &store, cfg.concurrency.max(4)).await;
    let warm = cfg.concurrency;
    let bodies: Vec<bytes::Bytes> = (0..warm + cfg.uploads)
        .map(|i| bytes::Bytes::from(phone_photo(&pool[i % pool.len()], i, 10)))
        .collect();
    let mut bodies = bodies.into_iter();
    let warm_bodies: Vec<_> = bodies.by_ref().take(warm).collect();
    let measured: Vec<_> = bodies.collect();
    let size = measured.iter().map(|b| b.len()).sum::<usize>() as f64 / measured.len() as f64;
    let (warm_run, _) = run_uploads(&setup, warm_bodies, cfg.concurrency).await;
    assert!(
        warm_run.statuses.keys().all(|s| *s == 201),
        "warm-up: {:?}\n{}",
        warm_run.statuses,
        std::fs::read_to_string(&setup.server.log).unwrap_or_default()
    );
    let (server_cpu0, s3_cpu0, self_cpu0) = (
        setup.server.cpu(),
        cfg.s3_pid.and_then(cpu_secs),
        cpu_secs(std::process::id()),
    );
    const WAIT: &str = "fieldproof_verification_wait_seconds";
    const VERIFYING: &str = "fieldproof_verification_seconds";
    let (wait0, verifying0) = (
        setup.api.summary(WAIT).await,
        setup.api.summary(VERIFYING).await,
    );
    let postgres0 = postgres_cpu_secs();
    let load0 = loadavg();
    let threads0 = thread_cpu_secs(setup.server.pid());
    let machine0 = machine_jiffies();
    let perf = start_perf(setup.server.pid(), name);
    let (run, verdicts) = run_uploads(&setup, measured.clone(), cfg.concurrency).await;
    stop_perf(perf);
    let machine1 = machine_jiffies();
    let threads1 = thread_cpu_secs(setup.server.pid());
    let postgres_cpu =
        matches!(backend, Backend::Postgres).then(|| cpu_since(&postgres0, &postgres_cpu_secs()));
    let server_cpu = setup.server.cpu() - server_cpu0;
    let s3_cpu = match (s3_cpu0, cfg.s3_pid.and_then(cpu_secs)) {
        (Some(a), Some(b)) if matches!(store, Store::S3 { .. }) => Some(b - a),
        _ => None,
    };
    let self_cpu = cpu_secs(std::process::id())
        .zip(self_cpu0)
        .map(|(b, a)| b - a);
    let load1 = loadavg();
    let hwm = vm_mib(setup.server.pid(), "VmHWM:");
    println!(
        "{} uploads of {:.2} MB at concurrency {} to {} deals (after {} warm-up uploads)",
        cfg.uploads,
        size / 1e6,
        cfg.concurrency,
        setup.deals.len(),
        warm
    );
    println!("result: {}", run.summary("photos"));
    println!("verdicts: {verdicts:?}");
    let n = run.latencies.len() as f64;
    println!(
        "CPU during the run: server {:.2} s ({:.1} ms/photo){}{}; bench client {:.2} s; wall {:.2} s × {} cores = {:.2} core-s; load average {load0} → {load1}",
        server_cpu,
        server_cpu * 1000.0 / n,
        s3_cpu
            .map(|m| format!(", S3 server {m:.2} s ({:.1} ms/photo)", m * 1000.0 / n))
            .unwrap_or_default(),
        postgres_cpu
            .map(|p| format!(", PostgreSQL {p:.2} s ({:.1} ms/photo)", p * 1000.0 / n))
            .unwrap_or_default(),
        self_cpu.unwrap_or(f64::NAN),
        run.wall.as_secs_f64(),
        cores(),
        run.wall.as_secs_f64() * cores() as f64
    );
    // Where the server's CPU went, by thread (threads that ended during the run are missing).
    let by_thread: Vec<String> = thread_cpu_between(&threads0, &threads1)
        .into_iter()
        .filter(|(_, cpu)| *cpu > 0.0)
        .map(|(name, cpu)| format!("{name} {:.1}", cpu * 1000.0 / n))
        .collect();
    println!("server CPU by thread, ms/photo: {}", by_thread.join(", "));
    if let (Some(a), Some(b)) = (machine0, machine1) {
        let d: Vec<f64> = a.iter().zip(b).map(|(a, b)| b - a).collect();
        let all: f64 = d.iter().sum::<f64>().max(1.0);
        println!(
            "machine during the run: {:.1} % busy, {:.1} % idle, {:.1} % waiting on I/O, {:.1} % stolen",
            100.0 * d[0] / all,
            100.0 * d[1] / all,
            100.0 * d[2] / all,
            100.0 * d[3] / all
        );
    }
    if let Some(hwm) = hwm {
        println!("server peak RSS (VmHWM): {hwm:.0} MiB");
    }
    // From the server's /metrics, over the measured uploads.
    let (wait1, verifying1) = (
        setup.api.summary(WAIT).await,
        setup.api.summary(VERIFYING).await,
    );
    let mean_ms =
        |(s0, c0): (f64, f64), (s1, c1): (f64, f64)| (s1 - s0) * 1000.0 / (c1 - c0).max(1.0);
    println!(
        "per upload, mean (server's /metrics): {:.1} ms waiting for a verification thread, {:.1} ms verifying, of {:.1} ms from sending to the whole answer",
        mean_ms(wait0, wait1),
        mean_ms(verifying0, verifying1),
        run.latencies.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / n
    );
    drop(setup.server);
    setup.db.drop_pg().await;
    // Verification alone, timed by the server's own binary (`fieldproof evidence time`), so
    // the target is computed from the machine code the server ran. This bench's own copy of
    // `evidence::verify` is the same source built into another binary, and its speed depends
    // on where the linker put it: two builds of this bench, one commit apart, measured 45.7 and
    // 56.5 ms per photo on one machine within minutes, while the server's never moved.
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |i: usize| {
        let path = dir.path().join(format!("photo-{i}.jpg"));
        std::fs::write(&path, &measured[i]).expect("write a photo");
        path
    };
    let first = write(0);
    let single = time_in_server(&[first], 15, 1);
    let t = single.median;
    let t_cpu = single.cpu;
    let target = 0.8 * cores() as f64 / t.as_secs_f64();
    println!(
        "per-photo verification on the first photo (`fieldproof evidence time`: the server's binary, 15 runs on one thread, server stopped; median wall, mean CPU): {:.1} ms wall, {} CPU → target 0.8 × {} cores ÷ {:.3} s = {:.1} photos/s; measured {:.2} photos/s = {:.2} × target ({})",
        ms(t),
        t_cpu
            .map(|c| format!("{:.1} ms", ms(c)))
            .unwrap_or_else(|| "?".into()),
        cores(),
        t.as_secs_f64(),
        target,
        run.rate(),
        run.rate() / target,
        if run.rate() >= target {
            "meets"
        } else {
            "MISSES"
        }
    );
    if let Some(c) = t_cpu {
        println!(
            "server CPU per photo ÷ verify CPU per photo = {:.2} (≤ 1.25 means HTTP + DB + storage add at most a quarter, whatever else the machine is doing)",
            server_cpu / n / c.as_secs_f64()
        );
    }
    let photo = measured[0].clone();
    let (own, _) = tokio::task::spawn_blocking(move || verification_time(&photo, 15))
        .await
        .expect("verification");
    println!(
        "(the same verification in this bench's binary: {:.1} ms wall; not used)",
        ms(own)
    );
    // The run's photos (one file per scene: their pixels are what costs) verified on `cores`
    // threads at once: what the cores deliver for verification alone when they all decode
    // (the single-thread figure above assumes they scale linearly).
    let files: Vec<PathBuf> = (0..measured.len().min(cfg.scenes.max(1)))
        .map(write)
        .collect();
    // The target's time comes from one photo verified again and again, its bytes warm in the
    // caches; the server never sees a photo twice. The same on every scene once, for comparison.
    let distinct = time_in_server(&files, files.len(), 1);
    println!(
        "(verification on one thread of the {} scenes, each once: {:.1} ms median wall, {} CPU per photo; not used)",
        files.len(),
        ms(distinct.median),
        distinct
            .cpu
            .map(|c| format!("{:.1} ms", ms(c)))
            .unwrap_or_else(|| "?".into()),
    );
    let threads = cores();
    let alone = time_in_server(&files, measured.len(), threads);
    println!(
        "verification alone (`fieldproof evidence time`), {} photos on {threads} threads: {:.1} photos/s, {} CPU per photo → server throughput ÷ verification alone = {:.2} (≥ 0.8: HTTP + DB + storage cost at most a fifth of the throughput){}",
        measured.len(),
        alone.per_second,
        alone
            .cpu
            .map(|c| format!("{:.1} ms", ms(c)))
            .unwrap_or_else(|| "?".into()),
        run.rate() / alone.per_second,
        alone
            .cpu
            .map(|c| format!(
                "; server CPU per photo ÷ this = {:.2}",
                server_cpu / n / c.as_secs_f64()
            ))
            .unwrap_or_default()
    );
}

/// What `fieldproof evidence time` printed.
struct VerifyTiming {
    median: Duration,
    per_second: f64,
    cpu: Option<Duration>,
}

/// Run `fieldproof evidence time` (the server's binary) on `files`.
fn time_in_server(files: &[PathBuf], runs: usize, threads: usize) -> VerifyTiming {
    let out = Command::new(server_binary())
        .args(["evidence", "time"])
        .args(files)
        .args([
            "--runs",
            &runs.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .output()
        .expect("run fieldproof evidence time");
    assert!(
        out.status.success(),
        "fieldproof evidence time (a server binary built before the command existed has none): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let number = |key: &str| report[key].as_f64();
    VerifyTiming {
        median: Duration::from_secs_f64(number("median_ms").expect("median_ms") / 1000.0),
        per_second: number("photos_per_second").expect("photos_per_second"),
        cpu: number("cpu_ms_per_photo").map(|c| Duration::from_secs_f64(c / 1000.0)),
    }
}

/// 64 concurrent ≈10 MB uploads to a fresh server: its peak RSS.
async fn bench_rss(cfg: &Config, name: &str, backend: Backend, store: Store) {
    println!("\n## {name}");
    println!("load average at start: {}", loadavg());
    // About 10 MB: 4032×3024 with stronger sensor noise, at the first quality that gets there.
    let base = [
        (95u8, 20u8),
        (96, 24),
        (97, 26),
        (98, 28),
        (99, 30),
        (100, 32),
    ]
    .into_iter()
    .map(|(q, n)| scene_jpeg(7, 4032, 3024, q, n))
    .find(|b| b.len() >= 9_500_000)
    .unwrap_or_else(|| scene_jpeg(7, 4032, 3024, 100, 40));
    let setup = upload_setup(cfg, backend, &store, cfg.rss_uploads.min(16)).await;
    let pid = setup.server.pid();
    let idle = (vm_mib(pid, "VmRSS:"), vm_mib(pid, "VmHWM:"));
    let bodies: Vec<bytes::Bytes> = (0..cfg.rss_uploads)
        .map(|i| bytes::Bytes::from(phone_photo(&base, i, 10)))
        .collect();
    let size = bodies[0].len();
    // Sample the RSS while the uploads run, to see the curve and not only the peak.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak_rss: f64 = 0.0;
            while sampling.load(Ordering::Relaxed) {
                if let Some(rss) = vm_mib(pid, "VmRSS:") {
                    peak_rss = peak_rss.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak_rss
        })
    };
    let (run, verdicts) = run_uploads(&setup, bodies, cfg.rss_uploads).await;
    sampling.store(false, Ordering::Relaxed);
    let sampled = sampler.await.unwrap_or(f64::NAN);
    let hwm = vm_mib(pid, "VmHWM:").unwrap_or(f64::NAN);
    println!(
        "{} concurrent uploads of {:.2} MB: {}",
        cfg.rss_uploads,
        size as f64 / 1e6,
        run.summary("photos")
    );
    println!("verdicts: {verdicts:?}");
    println!(
        "server RSS: idle after setup {:.0} MiB (VmHWM so far {:.0} MiB); peak sampled every 20 ms {:.0} MiB; VmHWM after the burst {:.0} MiB (target < 300 MiB: {})",
        idle.0.unwrap_or(f64::NAN),
        idle.1.unwrap_or(f64::NAN),
        sampled,
        hwm,
        if hwm < 300.0 { "meets" } else { "MISSES" }
    );
    println!("load average at end: {}", loadavg());
    drop(setup.server);
    setup.db.drop_pg().await;
}

// ---------------------------------------------------------------------------------------------
// Stage engine: node advance with 100k deals

struct SeededDeal {
    id: String,
    owner: usize,
    site: String,
    contact: String,
}

/// `count` deals in the shape `services::deals` leaves them: 60 % at `visit_booked` (one open
/// run), the rest further on (passed runs with their visit record, one open run); every deal
/// with its hash-chained audit trail (deal_created, node_entered, the visit fact, node_passed…).
/// Returns the deals waiting at `visit_booked`.
async fn seed_deals(db: &DatabaseConnection, org: &Org, count: usize) -> Vec<SeededDeal> {
    let customers = (count / 100).max(1);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (mut cust_rows, mut site_rows, mut contact_rows) = (Vec::new(), Vec::new(), Vec::new());
    let mut cust = Vec::new();
    for c in 0..customers {
        let owner = c % org.reps.len();
        let (_, owner_id, team) = &org.reps[owner];
        let (cid, sid, kid) = (
            fieldproof::db::new_id(),
            fieldproof::db::new_id(),
            fieldproof::db::new_id(),
        );
        let at = ts(now - 200 * 86_400);
        cust_rows.push(customer::ActiveModel {
            id: Set(cid.clone()),
            org_id: Set(org.id.clone()),
            name: Set(format!("客户 {c}")),
            company_key: Set(Some(fieldproof_domain::leads::company_key(&format!(
                "客户 {c}"
            )))),
            industry: Set("manufacturing".into()),
            annual_purchase_fen: Set(80_000_000),
            tags: Set(json!([])),
            owner_id: Set(owner_id.clone()),
            team_id: Set(Some(team.clone())),
            created_at: Set(at),
            updated_at: Set(at),
        });
        site_rows.push(site::ActiveModel {
            id: Set(sid.clone()),
            customer_id: Set(cid.clone()),
            name: Set("厂区".into()),
            address: Set(String::new()),
            lat: Set(SITE.0),
            lon: Set(SITE.1),
            crs: Set("wgs84".into()),
            radius_m: Set(300.0),
            utc_offset_minutes: Set(480),
            created_at: Set(at),
        });
        contact_rows.push(contact::ActiveModel {
            id: Set(kid.clone()),
            customer_id: Set(cid.clone()),
            name: Set("张总".into()),
            title: Set("总经理".into()),
            seniority: Set("executive".into()),
            phone: Set(None),
            phone_key: Set(None),
            created_at: Set(at),
        });
        cust.push((cid, sid, kid, owner));
    }
    insert_chunks(db, cust_rows).await;
    insert_chunks(db, site_rows).await;
    insert_chunks(db, contact_rows).await;

    let products = vec![ProductLine {
        sku: "P-100".into(),
        name: "离心泵".into(),
        quantity: 4,
        unit_price_fen: 2_500_000,
    }];
    let (value, quote_hash) = price_lines(&products).expect("price");
    let products = serde_json::to_value(&products).expect("json");
    let mut rng = Rng::new(42);
    let mut waiting = Vec::new();
    let batch = 2_000;
    let mut d = 0;
    while d < count {
        let (mut deals, mut runs, mut records, mut events) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in d..(d + batch).min(count) {
            let (cid, sid, kid, owner) = &cust[i % customers];
            let (_, owner_id, team) = &org.reps[*owner];
            let id = fieldproof::db::new_id();
            let passed = if i % 10 < 6 {
                0
            } else {
                1 + rng.below(7) as usize
            };
            let created = now - 86_400 * (passed as i64 * 3 + 2) - i64::from(rng.below(86_400));
            let mut chain = Chain::new();
            events.push(chain.next(
                &org.id,
                &id,
                "deal_created",
                Some(owner_id.as_str()),
                ts(created),
                json!({"template_id": org.template_id, "template_version": org.template_version, "expected_value_fen": value}),
            ));
            let mut at = created;
            for (n, (key, stall)) in org.nodes.iter().enumerate().take(passed + 1) {
                let run_id = fieldproof::db::new_id();
                events.push(chain.next(
                    &org.id,
                    &id,
                    "node_entered",
                    None,
                    ts(at),
                    json!({"node": key, "run": 1}),
                ));
                let open = n == passed;
                let closed = at + 3_600 + i64::from(rng.below(2 * 86_400));
                runs.push(node_run::ActiveModel {
                    id: Set(run_id.clone()),
                    deal_id: Set(id.clone()),
                    node_key: Set(key.clone()),
                    run_no: Set(1),
                    owner_id: Set(owner_id.clone()),
                    team_id: Set(Some(team.clone())),
                    entered_at: Set(ts(at)),
                    stall_at: Set(ts(at + i64::from(*stall) * 3_600)),
                    closed_at: Set((!open).then(|| ts(closed))),
                    outcome: Set(if open { "open" } else { "passed" }.into()),
                    by_override: Set(false),
                    return_reason: Set(None),
                });
                if open {
                    break;
                }
                if n == 0 {
                    let payload = json!({"site_id": sid, "contact_id": kid, "starts_at": closed - 3_600, "ends_at": closed + 3_600});
                    records.push(node_record::ActiveModel {
                        id: Set(fieldproof::db::new_id()),
                        deal_id: Set(id.clone()),
                        node_run_id: Set(run_id.clone()),
                        kind: Set("visit".into()),
                        actor_id: Set(Some(owner_id.clone())),
                        payload: Set(payload.clone()),
                        dedup_key: Set(None),
                        created_at: Set(ts(closed)),
                    });
                    events.push(chain.next(
                        &org.id,
                        &id,
                        "visit",
                        Some(owner_id.as_str()),
                        ts(closed),
                        json!({"node": key, "run": 1, "fact": payload}),
                    ));
                }
                events.push(chain.next(
                    &org.id,
                    &id,
                    "node_passed",
                    None,
                    ts(closed),
                    json!({"node": key, "run": 1, "by_override": false, "requirements": []}),
                ));
                at = closed;
            }
            deals.push(deal::ActiveModel {
                id: Set(id.clone()),
                org_id: Set(org.id.clone()),
                customer_id: Set(cid.clone()),
                site_id: Set(Some(sid.clone())),
                owner_id: Set(owner_id.clone()),
                team_id: Set(Some(team.clone())),
                presales_id: Set(None),
                template_id: Set(org.template_id.clone()),
                title: Set(format!("泵改造 {i}")),
                products: Set(products.clone()),
                quote_hash: Set(quote_hash.clone()),
                expected_value_fen: Set(value),
                peak_value_fen: Set(value),
                status: Set("open".into()),
                current_node_key: Set(Some(org.nodes[passed].0.clone())),
                created_at: Set(ts(created)),
                updated_at: Set(ts(at)),
            });
            if passed == 0 {
                waiting.push(SeededDeal {
                    id,
                    owner: *owner,
                    site: sid.clone(),
                    contact: kid.clone(),
                });
            }
        }
        insert_chunks(db, deals).await;
        insert_chunks(db, runs).await;
        insert_chunks(db, records).await;
        insert_chunks(db, events).await;
        d += batch;
    }
    waiting
}

async fn count_rows(db: &DatabaseConnection, table: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT COUNT(*) FROM {table}"),
    ))
    .await
    .expect("count")
    .expect("row")
    .try_get_by_index::<i64>(0)
    .expect("count")
}

async fn bench_advance(cfg: &Config) {
    println!("\n## advance-pg");
    println!("load average at start: {}", loadavg());
    let dir = tempfile::tempdir().expect("temp dir");
    let db = BenchDb::create(cfg, Backend::Postgres, dir.path()).await;
    let conn = db.connect(dir.path()).await;
    let started = Instant::now();
    let org = seed_org(&conn, &[20; 10]).await;
    let waiting = seed_deals(&conn, &org, cfg.deals).await;
    conn.execute_unprepared("ANALYZE").await.expect("analyze");
    let sizes = (
        count_rows(&conn, "deals").await,
        count_rows(&conn, "node_runs").await,
        count_rows(&conn, "node_records").await,
        count_rows(&conn, "audit_events").await,
    );
    println!(
        "seeded in {:.1} s: {} deals ({} at visit_booked), {} node runs, {} node records, {} audit events; 200 reps in 10 teams",
        started.elapsed().as_secs_f64(),
        sizes.0,
        waiting.len(),
        sizes.1,
        sizes.2,
        sizes.3
    );
    conn.close().await.ok();
    let mut server = Server::start(dir.path(), &db.url, &Store::Folder);
    let client = reqwest::Client::new();
    server.wait_ready(&client).await;
    let api = Arc::new(Api {
        client,
        base: server.base.clone(),
    });
    // Every rep's token (login is Argon2: done before the clock starts).
    let mut tokens = Vec::new();
    for (name, _, _) in &org.reps {
        tokens.push(api.login(name).await);
    }
    let tokens = Arc::new(tokens);
    // Deals in a shuffled order, so consecutive requests hit unrelated rows.
    let mut order: Vec<usize> = (0..waiting.len()).collect();
    let mut rng = Rng::new(7);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u32 + 1) as usize);
    }
    let total = cfg.advances.min(waiting.len());
    let warm = (total / 10).min(200);
    let picked: Vec<SeededDeal> = order
        .iter()
        .take(total + warm)
        .map(|&i| SeededDeal {
            id: waiting[i].id.clone(),
            owner: waiting[i].owner,
            site: waiting[i].site.clone(),
            contact: waiting[i].contact.clone(),
        })
        .collect();
    let picked = Arc::new(picked);
    let now = OffsetDateTime::now_utc();
    let window = (
        rfc3339(now - time::Duration::hours(1)),
        rfc3339(now + time::Duration::hours(3)),
    );
    let visit = move |offset: usize| {
        let (api, tokens, picked, window) =
            (api.clone(), tokens.clone(), picked.clone(), window.clone());
        move |i: usize| {
            let (api, tokens, picked, window) =
                (api.clone(), tokens.clone(), picked.clone(), window.clone());
            async move {
                let d = &picked[offset + i];
                let (status, body) = api
                    .post(
                        &tokens[d.owner],
                        &format!("/api/v1/deals/{}/nodes/visit_booked/visit", d.id),
                        &json!({"site_id": d.site, "contact_id": d.contact, "starts_at": window.0, "ends_at": window.1}),
                    )
                    .await;
                if status == 200 {
                    assert_eq!(body["current_node"], "site_survey", "{body}");
                }
                status
            }
        }
    };
    drive(warm, cfg.advance_concurrency, visit(0)).await;
    let cpu0 = server.cpu();
    let load0 = loadavg();
    let perf = start_perf(server.pid(), "advance-pg");
    let run = drive(total, cfg.advance_concurrency, visit(warm)).await;
    stop_perf(perf);
    let cpu = server.cpu() - cpu0;
    println!(
        "POST /deals/{{id}}/nodes/visit_booked/visit on {total} different deals (each passes visit_booked and enters site_survey), concurrency {}, after {warm} warm-up requests",
        cfg.advance_concurrency
    );
    println!("result: {}", run.summary("requests"));
    println!(
        "server CPU {:.2} s ({:.2} ms/request); load average {load0} → {}; server VmHWM {:.0} MiB",
        cpu,
        cpu * 1000.0 / total as f64,
        loadavg(),
        vm_mib(server.pid(), "VmHWM:").unwrap_or(f64::NAN)
    );
    // The seeded chains are the app's own: the server verifies an advanced deal's chain.
    let api = Api {
        client: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let d = &waiting[order[warm]];
    let (status, chain) = api
        .get(
            &api.login(&org.reps[d.owner].0).await,
            &format!("/api/v1/deals/{}/audit/verify", d.id),
        )
        .await;
    println!("audit chain of an advanced deal, verified by the server: {status} {chain}");
    drop(server);
    db.drop_pg().await;
}

// ---------------------------------------------------------------------------------------------
// Heatmap: a year of node runs of a 200-rep team

/// Runs of a year for every rep of `team`: deals start every ~2.5 days per rep and walk the
/// 12 nodes (1-120 h each, 8 % of runs returned and run again). Returns the entered times.
async fn seed_year(db: &DatabaseConnection, org: &Org, team: usize) -> Vec<i64> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let year_ago = now - 365 * 86_400;
    let products = json!([]);
    let (_, quote_hash) = price_lines(&[]).expect("price");
    let mut rng = Rng::new(2026);
    let mut entered_all = Vec::new();
    let customer_id = fieldproof::db::new_id();
    let reps: Vec<_> = org.reps.iter().filter(|r| r.2 == org.teams[team]).collect();
    for chunk in reps.chunks(10) {
        let (mut deals, mut runs) = (Vec::new(), Vec::new());
        for (_, owner_id, team_id) in chunk {
            let mut start = year_ago + i64::from(rng.below(3 * 86_400));
            while start < now {
                let id = fieldproof::db::new_id();
                let mut at = start;
                let mut current = None;
                'nodes: for (key, stall) in &org.nodes {
                    let mut run_no = 0;
                    loop {
                        run_no += 1;
                        let took = 3_600 + i64::from(rng.below(119 * 3_600));
                        let closed = at + took;
                        let open = closed > now;
                        let returned = !open && rng.below(100) < 8;
                        entered_all.push(at);
                        runs.push(node_run::ActiveModel {
                            id: Set(fieldproof::db::new_id()),
                            deal_id: Set(id.clone()),
                            node_key: Set(key.clone()),
                            run_no: Set(run_no),
                            owner_id: Set(owner_id.clone()),
                            team_id: Set(Some(team_id.clone())),
                            entered_at: Set(ts(at)),
                            stall_at: Set(ts(at + i64::from(*stall) * 3_600)),
                            closed_at: Set((!open).then(|| ts(closed))),
                            outcome: Set(if open {
                                "open"
                            } else if returned {
                                "returned"
                            } else {
                                "passed"
                            }
                            .into()),
                            by_override: Set(false),
                            return_reason: Set(returned.then(|| "资料不全".to_owned())),
                        });
                        if open {
                            current = Some(key.clone());
                            break 'nodes;
                        }
                        at = closed;
                        if !returned {
                            break;
                        }
                    }
                }
                deals.push(deal::ActiveModel {
                    id: Set(id),
                    org_id: Set(org.id.clone()),
                    customer_id: Set(customer_id.clone()),
                    site_id: Set(None),
                    owner_id: Set(owner_id.clone()),
                    team_id: Set(Some(team_id.clone())),
                    presales_id: Set(None),
                    template_id: Set(org.template_id.clone()),
                    title: Set("泵改造".into()),
                    products: Set(products.clone()),
                    quote_hash: Set(quote_hash.clone()),
                    expected_value_fen: Set(0),
                    peak_value_fen: Set(0),
                    status: Set(if current.is_some() { "open" } else { "won" }.into()),
                    current_node_key: Set(current),
                    created_at: Set(ts(start)),
                    updated_at: Set(ts(at.min(now))),
                });
                start += 43_200 + i64::from(rng.below(4 * 86_400));
            }
        }
        insert_chunks(db, deals).await;
        insert_chunks(db, runs).await;
    }
    entered_all
}

async fn bench_heatmap(cfg: &Config, name: &str, backend: Backend) {
    println!("\n## {name}");
    println!("load average at start: {}", loadavg());
    let dir = tempfile::tempdir().expect("temp dir");
    let db = BenchDb::create(cfg, backend, dir.path()).await;
    let conn = db.connect(dir.path()).await;
    let started = Instant::now();
    // Team 0 is the big one; team 1 (20 reps) is another team's noise in the same table.
    let big = cfg.heatmap_reps;
    let org = seed_org(&conn, &[big, 20]).await;
    let mut entered = seed_year(&conn, &org, 0).await;
    let noise = seed_year(&conn, &org, 1).await.len();
    entered.sort_unstable();
    if backend == Backend::Postgres {
        conn.execute_unprepared("ANALYZE").await.expect("analyze");
    }
    let team_reps = org.reps.iter().filter(|r| r.2 == org.teams[0]).count();
    println!(
        "seeded in {:.1} s: team of {} reps with {} node runs over the last 365 days (+ {} runs of another team's {} reps)",
        started.elapsed().as_secs_f64(),
        team_reps,
        entered.len(),
        noise,
        org.reps.len() - team_reps
    );
    // The query plan of the heatmap's only query.
    let (from, to) = fieldproof::routes::reports::parse_iso_week(&last_full_week(1)).expect("week");
    let explain = match backend {
        Backend::Postgres => format!(
            "EXPLAIN ANALYZE SELECT * FROM node_runs WHERE team_id = '{}' AND entered_at >= '{}' AND entered_at < '{}'",
            org.teams[0],
            rfc3339(from),
            rfc3339(to)
        ),
        Backend::Sqlite => format!(
            "EXPLAIN QUERY PLAN SELECT * FROM node_runs WHERE team_id = '{}' AND entered_at >= ? AND entered_at < ?",
            org.teams[0]
        ),
    };
    let plan = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), explain))
        .await
        .expect("explain");
    println!("query plan:");
    for row in plan {
        let line = match backend {
            Backend::Postgres => row.try_get_by_index::<String>(0).unwrap_or_default(),
            Backend::Sqlite => row.try_get_by_index::<String>(3).unwrap_or_default(),
        };
        println!("    {line}");
    }
    conn.close().await.ok();

    let mut server = Server::start(dir.path(), &db.url, &Store::Folder);
    let client = reqwest::Client::new();
    server.wait_ready(&client).await;
    let api = Api {
        client,
        base: server.base.clone(),
    };
    let token = api.login(&org.managers[0].0).await;
    let weeks: Vec<String> = (1..=8).map(last_full_week).collect();
    // Each week's expected total, straight from the seeded data.
    let mut mismatches = Vec::new();
    let mut cells = 0;
    for week in &weeks {
        let (from, to) = fieldproof::routes::reports::parse_iso_week(week).expect("week");
        let (a, b) = (from.unix_timestamp(), to.unix_timestamp());
        let expected = entered.partition_point(|t| *t < b) - entered.partition_point(|t| *t < a);
        let (status, body) = api
            .get(
                &token,
                &format!(
                    "/api/v1/reports/heatmap?team_id={}&week={week}",
                    org.teams[0]
                ),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let got: u64 = body["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .map(|c| c["entered"].as_u64().unwrap_or(0))
            .sum();
        cells = body["cells"].as_array().map_or(0, Vec::len);
        if got != expected as u64 {
            mismatches.push(format!("{week}: {got} entered, seeded {expected}"));
        }
    }
    let api = Arc::new(api);
    let token = Arc::new(token);
    let team = Arc::new(org.teams[0].clone());
    let weeks = Arc::new(weeks);
    let run = drive(cfg.heatmap_calls, 1, move |i| {
        let (api, token, team, weeks) = (api.clone(), token.clone(), team.clone(), weeks.clone());
        async move {
            let (status, _) = api
                .get(
                    &token,
                    &format!(
                        "/api/v1/reports/heatmap?team_id={team}&week={}",
                        weeks[i % weeks.len()]
                    ),
                )
                .await;
            status
        }
    })
    .await;
    println!(
        "GET /api/v1/reports/heatmap, one at a time, cycling over the last 8 full weeks (~{cells} cells each): {}",
        run.summary("reports")
    );
    println!(
        "target p99 < 500 ms: {}",
        if run.percentile(0.99) < Duration::from_millis(500) {
            "meets"
        } else {
            "MISSES"
        }
    );
    if mismatches.is_empty() {
        println!("weekly totals match the seeded data");
    } else {
        println!("weekly totals DIFFER from the seeded data: {mismatches:?}");
    }
    drop(server);
    db.drop_pg().await;
}

/// The ISO week (`YYYY-Www`) that ended `back` weeks before this one, in report time (+08:00).
fn last_full_week(back: i64) -> String {
    let day = (OffsetDateTime::now_utc().to_offset(UtcOffset::from_hms(8, 0, 0).expect("offset"))
        - time::Duration::weeks(back))
    .date();
    let (year, week, _) = day.to_iso_week_date();
    format!("{year}-W{week:02}")
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    let cfg = Config::from_env();
    println!(
        "# fieldproof load bench — {} cores, load average {}, PostgreSQL: {}, S3: {}",
        cores(),
        loadavg(),
        if cfg.pg.is_some() { "yes" } else { "no" },
        cfg.s3.as_deref().unwrap_or("no")
    );
    let s3 = cfg.s3.clone().map(|endpoint| Store::S3 {
        endpoint,
        bucket: format!("fp-bench-{}", uuid::Uuid::new_v4().simple()),
    });
    let mut skipped = Vec::new();
    let scenarios: [(&str, bool); 12] = [
        ("uploads-sqlite-fs", true),
        ("uploads-pg-s3", cfg.pg.is_some() && s3.is_some()),
        ("rss-sqlite-fs", true),
        ("rss-pg-s3", cfg.pg.is_some() && s3.is_some()),
        ("advance-pg", cfg.pg.is_some()),
        ("heatmap-pg", cfg.pg.is_some()),
        ("heatmap-sqlite", true),
        ("leads-sqlite", true),
        ("leads-pg", cfg.pg.is_some()),
        ("history-sqlite", true),
        ("history-pg", cfg.pg.is_some()),
        ("", false),
    ];
    for (name, available) in scenarios {
        if name.is_empty() || !cfg.wants(name) {
            continue;
        }
        if !available {
            skipped.push(name);
            continue;
        }
        let started = Instant::now();
        match name {
            "uploads-sqlite-fs" => bench_uploads(&cfg, name, Backend::Sqlite, Store::Folder).await,
            "uploads-pg-s3" => {
                bench_uploads(&cfg, name, Backend::Postgres, s3.clone().expect("s3")).await
            }
            "rss-sqlite-fs" => bench_rss(&cfg, name, Backend::Sqlite, Store::Folder).await,
            "rss-pg-s3" => bench_rss(&cfg, name, Backend::Postgres, s3.clone().expect("s3")).await,
            "advance-pg" => bench_advance(&cfg).await,
            "heatmap-pg" => bench_heatmap(&cfg, name, Backend::Postgres).await,
            "heatmap-sqlite" => bench_heatmap(&cfg, name, Backend::Sqlite).await,
            "leads-sqlite" => leads::bench_leads(&cfg, name, Backend::Sqlite).await,
            "leads-pg" => leads::bench_leads(&cfg, name, Backend::Postgres).await,
            "history-sqlite" => history::bench_history(&cfg, name, Backend::Sqlite).await,
            "history-pg" => history::bench_history(&cfg, name, Backend::Postgres).await,
            _ => unreachable!(),
        }
        println!("({name} took {:.0} s)", started.elapsed().as_secs_f64());
    }
    if !skipped.is_empty() {
        println!(
            "\nskipped (need FIELDPROOF_BENCH_PG / FIELDPROOF_BENCH_S3): {}",
            skipped.join(", ")
        );
    }
}
