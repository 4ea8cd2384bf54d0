//! The real server for end-to-end tests: the `fieldproof` binary's `demo` subcommand on a free
//! loopback port with a fresh data folder (seeded users rep1/rep2, password `fieldproof-demo`,
//! customers with sites), plus the API calls a test needs to set up a deal.

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "fieldproof-demo";

pub struct DemoServer {
    pub addr: SocketAddr,
    pub data_dir: tempfile::TempDir,
    child: Child,
}

/// The server binary: `$FIELDPROOF_SERVER_BIN`, or `fieldproof` next to this test's target dir
/// (built by `cargo test --workspace`, or `cargo build -p fieldproof`).
pub fn server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("FIELDPROOF_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test exe path");
    // target/debug/deps/<test> → target/debug/fieldproof
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf();
    let bin = dir.join(format!("fieldproof{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "the server binary is missing at {}: run `cargo build -p fieldproof` first \
         (scripts/test.sh does), or set FIELDPROOF_SERVER_BIN",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl DemoServer {
    pub fn start() -> DemoServer {
        for _ in 0..3 {
            let data_dir = tempfile::tempdir().expect("data dir");
            let port = free_port();
            let child = Command::new(server_binary())
                .args(["demo", "--port", &port.to_string(), "--data-dir"])
                .arg(data_dir.path())
                .env_remove("FIELDPROOF_DATABASE_URL")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning the server");
            let mut server = DemoServer {
                addr: ([127, 0, 0, 1], port).into(),
                data_dir,
                child,
            };
            if server.wait_ready(Duration::from_secs(60)) {
                return server;
            }
        }
        panic!("the demo server did not start");
    }

    fn wait_ready(&mut self, within: Duration) -> bool {
        let start = Instant::now();
        let http = reqwest::blocking::Client::new();
        while start.elapsed() < within {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http
                .get(format!("{}/healthz", self.url()))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain API client for test setup (not the SDK).
pub struct Admin {
    pub base: String,
    pub token: String,
    http: reqwest::blocking::Client,
}

impl Admin {
    pub fn login(base: &str, username: &str) -> Admin {
        let http = reqwest::blocking::Client::new();
        let tokens: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD, "device_id": "test-setup"}))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .expect("login");
        Admin {
            base: base.to_owned(),
            token: tokens["access_token"].as_str().expect("token").to_owned(),
            http,
        }
    }

    pub fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .expect("GET");
        let status = response.status();
        let body: Value = response.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    pub fn post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .expect("POST");
        let status = response.status();
        let body: Value = response.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    /// Opens a deal on the user's first customer with a site, books a visit window around
    /// now, so `site_survey` is current.
    pub fn deal_with_visit(&self) -> (String, f64, f64) {
        let booked = self.book_deal();
        (booked.deal_id, booked.lat, booked.lon)
    }

    pub fn book_deal(&self) -> Booked {
        let customers = self.get("/customers");
        for customer in customers["items"].as_array().expect("customers") {
            let id = customer["id"].as_str().expect("customer id");
            let sites = self.get(&format!("/customers/{id}/sites"));
            let Some(site) = sites.as_array().and_then(|s| s.first()).cloned() else {
                continue;
            };
            if site["crs"] != "wgs84" {
                continue;
            }
            let contacts = self.get(&format!("/customers/{id}/contacts"));
            let Some(contact) = contacts.as_array().and_then(|c| c.first()).cloned() else {
                continue;
            };
            let deal = self.post(
                "/deals",
                &json!({"customer_id": id, "site_id": site["id"], "title": "e2e pumps"}),
            );
            let deal_id = deal["id"].as_str().expect("deal id").to_owned();
            // Whole seconds: the server keeps the window at that precision.
            let now = time::OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .expect("time");
            let (starts_at, ends_at) = (
                now - time::Duration::hours(2),
                now + time::Duration::hours(6),
            );
            let fmt = &time::format_description::well_known::Rfc3339;
            let view = self.post(
                &format!("/deals/{deal_id}/nodes/visit_booked/visit"),
                &json!({
                    "site_id": site["id"], "contact_id": contact["id"],
                    "starts_at": starts_at.format(fmt).expect("time"),
                    "ends_at": ends_at.format(fmt).expect("time"),
                }),
            );
            assert_eq!(view["current_node"], "site_survey", "{view}");
            return Booked {
                deal_id,
                lat: site["lat"].as_f64().expect("lat"),
                lon: site["lon"].as_f64().expect("lon"),
                starts_at,
                ends_at,
            };
        }
        panic!("no customer with a WGS-84 site and a contact");
    }
}

/// A deal whose visit is booked.
pub struct Booked {
    pub deal_id: String,
    pub lat: f64,
    pub lon: f64,
    pub starts_at: time::OffsetDateTime,
    pub ends_at: time::OffsetDateTime,
}
