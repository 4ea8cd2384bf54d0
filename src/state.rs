//! What every request handler can reach: the database pool, the blob store, token keys and
//! settings.
//! Nothing here holds per-user state, so any number of API processes can run side by side.

use crate::auth::jwt::AccessTokens;
use crate::config::Settings;
use crate::storage::{BlobStore, KeyLocks};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// Plain reads outside transactions (`db::connect_reader`): the same pool on PostgreSQL,
    /// read-only connections beside the single writer on SQLite.
    pub reads: DatabaseConnection,
    pub blobs: Arc<dyn BlobStore>,
    /// In this process, an upload's lease of a photo's bytes and the orphan sweep's look at and
    /// deletion of them take turns, by the original's key (`services::evidence::sweep`).
    pub bytes_locks: Arc<KeyLocks>,
    pub tokens: AccessTokens,
    pub settings: Arc<Settings>,
    /// Evidence verification is CPU-bound: at most one file per core is decoded at a time, on
    /// threads of its own, so uploads queue instead of starving request handling or memory.
    pub verifier: crate::services::evidence::verifier::Verifier,
    /// Signs short-lived URLs (thumbnails from the folder store).
    pub url_signer: UrlSigner,
    /// Request limits (the lead-capture form, the customer's quote doors) counted on SQLite (one
    /// process per file); PostgreSQL counts in the database for every instance.
    pub limit_windows: Arc<crate::db::rate_limits::LocalWindows>,
    /// Stores and assigns new leads in batches, one org turn per batch (per process).
    pub lead_dispatcher: crate::services::leads::dispatch::Dispatcher,
}

/// HMAC signer of short-lived URLs, keyed with the deployment's signing key.
#[derive(Clone)]
pub struct UrlSigner(Arc<secrecy::SecretSlice<u8>>);

impl UrlSigner {
    pub fn new(key: &secrecy::SecretString) -> Self {
        use secrecy::ExposeSecret;
        let bytes = format!("url-signing:{}", key.expose_secret()).into_bytes();
        UrlSigner(Arc::new(secrecy::SecretSlice::from(bytes)))
    }

    pub fn sign(&self, message: &str) -> String {
        use hmac::{Hmac, Mac};
        use secrecy::ExposeSecret;
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(self.0.expose_secret()) else {
            return String::new();
        };
        mac.update(message.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn verify(&self, message: &str, signature: &str) -> bool {
        use hmac::{Hmac, Mac};
        use secrecy::ExposeSecret;
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(self.0.expose_secret()) else {
            return false;
        };
        mac.update(message.as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}
