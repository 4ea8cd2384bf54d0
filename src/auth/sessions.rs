//! Login, refresh and logout: the use cases behind `/api/v1/auth/*`.

use crate::db::{self, sessions};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;
use base64::Engine;
use rand::RngCore;
use sea_orm::TransactionTrait;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use time::Duration;

/// Tokens handed to a client after login or refresh.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Bearer token for API calls (HS256 JWT).
    pub access_token: String,
    /// Opaque, single-use token to get the next pair; bound to the device.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub token_type: &'static str,
}

fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hash_token(token: &str) -> String {
    hex_lower(&Sha256::digest(token.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new pair in the family, its refresh token stored through `db` (a transaction, or the pool).
async fn issue_pair<C: sea_orm::ConnectionTrait>(
    db: &C,
    state: &AppState,
    user_id: &str,
    device_id: &str,
    family_id: &str,
) -> ApiResult<TokenPair> {
    let now = db::now();
    let refresh_token = new_refresh_token();
    sessions::insert(
        db,
        sessions::NewToken {
            user_id,
            device_id,
            family_id,
            token_hash: hash_token(&refresh_token),
            expires_at: now + Duration::days(state.settings.refresh_token_ttl_days),
        },
    )
    .await?;
    Ok(TokenPair {
        access_token: state.tokens.issue(user_id, family_id, now)?,
        refresh_token,
        expires_in: state.tokens.ttl_secs,
        token_type: "Bearer",
    })
}

pub async fn login(
    state: &AppState,
    username: &str,
    password: SecretString,
    device_id: &str,
) -> ApiResult<TokenPair> {
    let found = db::users::find_for_login(&state.db, username).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let ok = crate::auth::password::verify(password, hash).await?;
    match (ok, user) {
        (true, Some(user)) => {
            issue_pair(&state.db, state, &user.id, device_id, &db::new_id()).await
        }
        _ => Err(ApiError::new(ErrorCode::InvalidCredentials)),
    }
}

pub async fn refresh(
    state: &AppState,
    presented: &str,
    device_id: Option<&str>,
) -> ApiResult<TokenPair> {
    let now = db::now();
    let invalid = || ApiError::new(ErrorCode::RefreshTokenInvalid);
    let row = sessions::find_by_hash(&state.db, &hash_token(presented))
        .await?
        .ok_or_else(invalid)?;
    if row.revoked_at.is_some() {
        return Err(invalid());
    }
    let retried = if row.used_at.is_some() || !sessions::mark_used(&state.db, &row.id, now).await? {
        if !lost_answer(state, &row, device_id, now).await? {
            // A rotated token came back: someone else holds a copy. End the whole session.
            sessions::revoke_family(&state.db, &row.family_id, now).await?;
            tracing::warn!(family = %row.family_id, user = %row.user_id, "refresh token reused; session revoked");
            return Err(ApiError::new(ErrorCode::RefreshTokenReused));
        }
        true
    } else {
        false
    };
    if row.expires_at <= now || device_id.is_some_and(|d| d != row.device_id) {
        return Err(invalid());
    }
    if db::users::find_active(&state.db, &row.user_id)
        .await?
        .is_none()
    {
        return Err(invalid());
    }
    if !retried {
        return issue_pair(
            &state.db,
            state,
            &row.user_id,
            &row.device_id,
            &row.family_id,
        )
        .await;
    }
    // The same phone, moments later, never having used what the lost answer carried: that
    // answer's token is revoked and the phone gets a new pair. Retries of one token are served
    // one at a time (its row locked), each revoking what the one before it issued, so the
    // family never holds two live refresh tokens however many retries race.
    let txn = state.db.begin().await?;
    sessions::lock(&txn, &row.id).await?;
    sessions::revoke_unused_since(&txn, &row.family_id, row.created_at, now).await?;
    let pair = issue_pair(&txn, state, &row.user_id, &row.device_id, &row.family_id).await?;
    txn.commit().await?;
    tracing::info!(family = %row.family_id, user = %row.user_id, "refresh retried after a lost answer");
    Ok(pair)
}

/// Whether a used refresh token presented again is its own device retrying a refresh whose
/// answer never arrived (4G dropped mid-response): the device says who it is, the first use was
/// within the grace period, and no token issued since has been used.
async fn lost_answer(
    state: &AppState,
    row: &crate::db::entities::refresh_token::Model,
    device_id: Option<&str>,
    now: time::OffsetDateTime,
) -> ApiResult<bool> {
    let grace = Duration::seconds(state.settings.refresh_reuse_grace_secs.max(0));
    // `mark_used` may have lost a race just now: the winner's time is in the database.
    let used_at = match row.used_at {
        Some(t) => Some(t),
        None => sessions::find_by_hash(&state.db, &row.token_hash)
            .await?
            .and_then(|r| r.used_at),
    };
    let recent = used_at.is_some_and(|t| now - t <= grace);
    Ok(!grace.is_zero()
        && recent
        && device_id == Some(row.device_id.as_str())
        && !sessions::used_since(&state.db, &row.family_id, row.created_at).await?)
}

pub async fn logout(state: &AppState, session_id: &str) -> ApiResult<()> {
    sessions::revoke_family(&state.db, session_id, db::now()).await?;
    Ok(())
}
