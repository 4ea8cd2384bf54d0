//! What every request handler can reach: the database pool, the blob store, token keys and
//! settings.
//! Nothing here holds per-user state, so any number of API processes can run side by side.

use crate::auth::jwt::AccessTokens;
use crate::config::Settings;
use crate::storage::BlobStore;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub blobs: Arc<dyn BlobStore>,
    pub tokens: AccessTokens,
    pub settings: Arc<Settings>,
}
