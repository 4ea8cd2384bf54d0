//! Housekeeping: expired resumable-upload sessions, ended console sessions, past rate-limit
//! windows and orphan blobs (an upload that stored its bytes but never its row). All are
//! idempotent, so every instance may run them.

use crate::state::AppState;
use std::time::Duration;

/// Blobs younger than this are never swept: an upload may be between its blob and its row.
pub const ORPHAN_GRACE: time::Duration = time::Duration::hours(24);

pub fn spawn(state: AppState, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let now = crate::db::now();
            match crate::services::uploads::sweep_expired(&state, now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "expired upload sessions removed"),
                Err(e) => tracing::warn!(error = %e, "upload session sweep failed"),
            }
            match crate::db::console_sessions::prune(&state.db, now - time::Duration::days(1)).await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "ended console sessions removed"),
                Err(e) => tracing::warn!(error = %e, "console session sweep failed"),
            }
            match crate::db::rate_limits::prune(&state.db, now - time::Duration::minutes(5)).await {
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "rate-limit window sweep failed"),
            }
            match crate::services::evidence::sweep::sweep_orphans(&state, now, ORPHAN_GRACE).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(blobs = n, "orphan blobs removed"),
                Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
            }
        }
    })
}
