//! Settings: built-in defaults, then an optional `fieldproof.toml`, then `FIELDPROOF_*` variables.
//!
//! With nothing configured fieldproof runs on a SQLite file and a blob folder under `./data`.
//! Secrets are `SecretString`, so neither `Debug` nor a log line can print them.

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Settings {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on; 0 picks a free one (tests).
    pub port: u16,
    /// Folder for the SQLite file, blobs and the generated signing key.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; unset means `sqlite://<data_dir>/fieldproof.db`.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub database_url: Option<SecretString>,
    /// Connections per process.
    pub database_max_connections: u32,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    /// HMAC key for access tokens. Unset: a key generated once into `<data_dir>/jwt-signing.key`.
    /// Several API processes must share it (set it, or point them at one key file).
    #[serde(serialize_with = "serialize_secret_opt")]
    pub jwt_secret: Option<SecretString>,
    /// Lifetime of an access token, seconds.
    pub access_token_ttl_secs: i64,
    /// Lifetime of a refresh token, days; each refresh starts a new period.
    pub refresh_token_ttl_days: i64,
    /// Seconds after a refresh during which the same device may present the token it rotated
    /// again and get a new pair (its answer was lost on the way), as long as it has not used the
    /// token that answer carried. 0 turns it off: any second use revokes the session.
    pub refresh_reuse_grace_secs: i64,
    /// Largest JSON body accepted, bytes.
    pub max_json_bytes: usize,
    /// Largest evidence file accepted (one-shot or resumable), bytes.
    pub max_upload_bytes: u64,
    /// `pretty` or `json`.
    pub log_format: String,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Deals worth more than this (fen) need two supervisors to override a node.
    pub override_second_approver_above_fen: i64,
    /// HMAC secret of the e-signature provider's callbacks; unset disables the endpoint.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub esign_callback_secret: Option<SecretString>,
    /// Where evidence bytes live: `fs` (a local folder), `s3` or `memory` (tests only).
    pub blob_store: BlobStoreKind,
    /// Folder of the `fs` store; unset means `<data_dir>/blobs`.
    pub blob_dir: Option<PathBuf>,
    /// S3 endpoint URL, e.g. `http://127.0.0.1:9000`; unset means AWS's endpoint for the region.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_bucket: String,
    pub s3_access_key_id: Option<String>,
    #[serde(serialize_with = "serialize_secret_opt")]
    pub s3_secret_access_key: Option<SecretString>,
    /// `http://host/bucket/key` rather than `http://bucket.host/key`; most S3-compatible
    /// servers need it.
    pub s3_path_style: bool,
    /// Create the bucket at start if it is missing (development and tests).
    pub s3_create_bucket: bool,
    /// Connect timeout, milliseconds: an unreachable S3 must fail fast, not hang a request.
    pub s3_connect_timeout_ms: u64,
    /// Longest wait for response bytes, seconds.
    pub s3_read_timeout_secs: u64,
    /// Longest single attempt of one request (one 8 MiB part, one GET), seconds.
    pub s3_attempt_timeout_secs: u64,
    /// Run the background jobs (the webhook outbox worker) in this process. Safe to leave on in
    /// every instance: a message is claimed by one worker at a time.
    pub jobs: bool,
    /// How often the outbox worker looks for due messages, milliseconds.
    pub jobs_poll_ms: u64,
    /// How often stalled nodes are looked for, seconds.
    pub stall_scan_secs: u64,
    /// How often expired upload sessions and orphan blobs are cleaned up, seconds.
    pub maintenance_interval_secs: u64,
    /// A webhook message is given up after this many failed attempts.
    pub webhook_max_attempts: u32,
    /// Delay before the first retry, milliseconds; doubles per attempt, with jitter.
    pub webhook_retry_base_ms: u64,
    /// Longest delay between two attempts, seconds.
    pub webhook_retry_max_secs: u64,
    /// Timeout of one webhook POST, seconds.
    pub webhook_timeout_secs: u64,
    /// The address users reach the app at (e.g. `https://crm.example.cn`), so links in chat
    /// messages are clickable. Unset: the link's path is shown as text.
    pub public_base_url: Option<String>,
    /// Mark the console's session cookie `Secure`: `true`, `false`, or unset to decide per
    /// request from its scheme (`https`, directly or as `X-Forwarded-Proto`/`Forwarded` says).
    pub console_secure_cookie: Option<bool>,
    /// How long a console sign-in lasts, hours (then the supervisor signs in again).
    pub console_session_hours: i64,
    /// A TrueType CJK font for quote PDFs (e.g. a full WenQuanYi Micro Hei). Unset: the
    /// installed Debian font if any, else the subset compiled into the binary.
    pub quote_font_path: Option<PathBuf>,
    /// Where quote events (`quote.issued`, `quote.confirmed`) are POSTed for the ERP, signed
    /// with `erp_webhook_secret`. Unset: no ERP hand-off.
    pub erp_webhook_url: Option<String>,
    /// HMAC key of the ERP hand-off, both ways: it signs outbound events and verifies the ERP's
    /// order-number callbacks. Unset disables the callback endpoint.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub erp_webhook_secret: Option<SecretString>,
    /// Requests per minute one client address may make to the customer-facing quote pages and
    /// API (per instance: the limiter lives in process memory).
    pub public_rate_limit_per_minute: u32,
    /// Take the client address for rate limiting from `X-Forwarded-For`/`Forwarded` (only
    /// behind a proxy that sets them; otherwise clients could choose their own address).
    pub trust_forwarded_for: bool,
    /// How often leads waiting for assignment (imports) and expired protection windows are
    /// looked for, seconds.
    pub lead_scan_secs: u64,
    /// A forming batch of intakes keeps taking leads until none has arrived for this long
    /// (at most ten times this in all), milliseconds; 0: it takes what is queued. A burst
    /// becomes one batch instead of a small one and a late one that waits for it.
    pub lead_batch_gather_ms: u64,
    /// Pool claims one rep may make in any 24 hours.
    pub lead_daily_claim_cap: u32,
    /// Hours a rep whose lead expired unworked may not reclaim it.
    pub lead_reclaim_block_hours: i64,
    /// Protection window of a claimed or manually reassigned lead, hours.
    pub lead_claim_protection_hours: u32,
    /// Public capture submissions per source and client address per minute, across all
    /// instances (counted in the database, `db::rate_limits`).
    pub lead_capture_per_minute: u32,
    /// Largest CSV import accepted, bytes (100k rows of a typical sheet are ~15 MB).
    pub lead_import_max_bytes: usize,
}

/// The blob store backend, chosen once at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobStoreKind {
    Fs,
    S3,
    Memory,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            host: "127.0.0.1".into(),
            port: 8080,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 10,
            migrate_on_start: true,
            jwt_secret: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_days: 30,
            refresh_reuse_grace_secs: 60,
            max_json_bytes: 256 * 1024,
            max_upload_bytes: 26_214_400,
            log_format: "pretty".into(),
            workers: 0,
            override_second_approver_above_fen: 100_000_000,
            esign_callback_secret: None,
            blob_store: BlobStoreKind::Fs,
            blob_dir: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_bucket: "fieldproof".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_path_style: true,
            s3_create_bucket: false,
            s3_connect_timeout_ms: 2_000,
            s3_read_timeout_secs: 30,
            s3_attempt_timeout_secs: 120,
            jobs: true,
            jobs_poll_ms: 1000,
            stall_scan_secs: 60,
            maintenance_interval_secs: 3600,
            webhook_max_attempts: 12,
            webhook_retry_base_ms: 10_000,
            webhook_retry_max_secs: 3600,
            webhook_timeout_secs: 10,
            public_base_url: None,
            console_secure_cookie: None,
            console_session_hours: 12,
            quote_font_path: None,
            erp_webhook_url: None,
            erp_webhook_secret: None,
            public_rate_limit_per_minute: 60,
            trust_forwarded_for: false,
            lead_scan_secs: 5,
            lead_batch_gather_ms: 1,
            lead_daily_claim_cap: 5,
            lead_reclaim_block_hours: 72,
            lead_claim_protection_hours: 24,
            lead_capture_per_minute: 20,
            lead_import_max_bytes: 48 * 1024 * 1024,
        }
    }
}

fn serialize_secret_opt<S: serde::Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(secret) => serializer.serialize_some(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

impl Settings {
    /// Defaults → `fieldproof.toml` (or `FIELDPROOF_CONFIG`) if present → `FIELDPROOF_*` env.
    pub fn load() -> anyhow::Result<Settings> {
        let file = std::env::var("FIELDPROOF_CONFIG").unwrap_or_else(|_| "fieldproof.toml".into());
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(&file))
            .merge(Env::prefixed("FIELDPROOF_").ignore(&["config"]))
            .extract()
            .context("reading configuration (fieldproof.toml and FIELDPROOF_* variables)")
    }

    pub fn database_url(&self) -> SecretString {
        match &self.database_url {
            Some(url) => url.clone(),
            None => {
                let path = self.data_dir.join("fieldproof.db");
                SecretString::from(format!("sqlite://{}?mode=rwc", path.display()))
            }
        }
    }

    /// Folder of the `fs` blob store.
    pub fn blob_dir(&self) -> PathBuf {
        self.blob_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
    }

    /// The access-token key: configured, or read from / generated into the data folder.
    pub fn jwt_key(&self) -> anyhow::Result<SecretString> {
        if let Some(secret) = &self.jwt_secret {
            anyhow::ensure!(
                secret.expose_secret().len() >= 32,
                "FIELDPROOF_JWT_SECRET must be at least 32 characters"
            );
            return Ok(secret.clone());
        }
        load_or_create_key(&self.data_dir.join("jwt-signing.key"))
    }
}

fn load_or_create_key(path: &Path) -> anyhow::Result<SecretString> {
    use base64::Engine;
    use rand::RngCore;
    use std::io::Write;

    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(SecretString::from(existing.trim().to_owned()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(key.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(SecretString::from(key))
        }
        // Another process created it first: use theirs so both sign with one key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(SecretString::from(existing.trim().to_owned()))
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let settings = Settings {
            jwt_secret: Some(SecretString::from("super-secret-signing-key-0123456789")),
            database_url: Some(SecretString::from("postgres://u:hunter2@db/fp")),
            s3_secret_access_key: Some(SecretString::from("s3-secret-wJalrXUtnFEMI")),
            ..Settings::default()
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("super-secret"));
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("wJalrXUtnFEMI"));
    }

    #[test]
    // figment::Jail's closure must return figment's own (large) error type.
    #[allow(clippy::result_large_err)]
    fn blob_store_is_chosen_by_flat_env_variables() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("FIELDPROOF_BLOB_STORE", "s3");
            jail.set_env("FIELDPROOF_S3_ENDPOINT", "http://127.0.0.1:9000");
            jail.set_env("FIELDPROOF_S3_PATH_STYLE", "false");
            jail.set_env("FIELDPROOF_S3_SECRET_ACCESS_KEY", "from-env");
            let settings = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(settings.blob_store, BlobStoreKind::S3);
            assert_eq!(
                settings.s3_endpoint.as_deref(),
                Some("http://127.0.0.1:9000")
            );
            assert!(!settings.s3_path_style);
            assert_eq!(
                settings
                    .s3_secret_access_key
                    .as_ref()
                    .map(|s| s.expose_secret().to_owned()),
                Some("from-env".to_owned())
            );
            assert_eq!(settings.blob_dir(), PathBuf::from("./data/blobs"));
            Ok(())
        });
    }

    #[test]
    fn generated_key_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = load_or_create_key(&path).unwrap();
        let second = load_or_create_key(&path).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
