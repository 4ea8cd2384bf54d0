//! Sign-in for the supervisor console: the same accounts, passwords and roles as the API, with
//! a browser session instead of bearer tokens.
//!
//! Sessions live in the database (`console_sessions`), not in a signed cookie: a logout or an
//! expiry then ends the session on every process at once, and the cookie is only a random
//! 256-bit token whose SHA-256 is all the database keeps. Each session has its own random CSRF
//! token, which every form of the console carries and every POST must return.

use crate::auth::Caller;
use crate::db::{self, console_sessions};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;
use base64::Engine;
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// A random URL-safe token of 256 bits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equal strings, compared in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A session just started: the cookie value to hand to the browser.
pub struct Started {
    pub cookie_token: String,
    pub max_age: time::Duration,
}

/// Check the password (argon2, the API's own check) and open a session.
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: SecretString,
) -> ApiResult<Started> {
    let found = db::users::find_for_login(&state.db, username.trim()).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let ok = crate::auth::password::verify(password, hash).await?;
    let user = match (ok, user) {
        (true, Some(user)) => user,
        _ => return Err(ApiError::new(ErrorCode::InvalidCredentials)),
    };
    let cookie_token = random_token();
    let max_age = time::Duration::hours(state.settings.console_session_hours.max(1));
    console_sessions::insert(
        &state.db,
        console_sessions::NewSession {
            user_id: &user.id,
            token_hash: hash_token(&cookie_token),
            csrf_token: random_token(),
            expires_at: db::now() + max_age,
        },
    )
    .await?;
    Ok(Started {
        cookie_token,
        max_age,
    })
}

/// A live console session.
pub struct Session {
    /// The same caller the API builds from a bearer token, so every service call is scoped
    /// identically.
    pub caller: Caller,
    pub csrf_token: String,
    pub display_name: String,
}

/// Who a session cookie belongs to (the user re-read, so a disabled account stops at once).
pub async fn resolve(state: &AppState, cookie_token: &str) -> ApiResult<Option<Session>> {
    let Some(session) =
        console_sessions::find_live(&state.db, &hash_token(cookie_token), db::now()).await?
    else {
        return Ok(None);
    };
    let Some(user) = db::users::find_active(&state.db, &session.user_id).await? else {
        return Ok(None);
    };
    Ok(Some(Session {
        display_name: user.display_name,
        caller: Caller {
            user_id: user.id,
            org_id: user.org_id,
            role: user.role,
            team_id: user.team_id,
            session_id: session.id,
        },
        csrf_token: session.csrf_token,
    }))
}

/// End a session (logout).
pub async fn sign_out(state: &AppState, session_id: &str) -> ApiResult<()> {
    console_sessions::revoke(&state.db, session_id, db::now()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
