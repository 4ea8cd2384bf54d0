//! The signed-in session: server address, device id and tokens, kept in the queue database so
//! a phone can sync days later. Access tokens are refreshed shortly before they expire or when
//! the server says 401; a refused refresh means the session was revoked, and sync stops.

use crate::api::{ApiClient, CallError, Tokens};
use crate::error::SdkError;
use crate::queue::Queue;
use time::OffsetDateTime;

pub const SERVER_URL: &str = "server_url";
pub const DEVICE_ID: &str = "device_id";
pub const USERNAME: &str = "username";
pub const ENROLLED: &str = "enrolled";
const ACCESS_TOKEN: &str = "access_token";
const REFRESH_TOKEN: &str = "refresh_token";
const ACCESS_EXPIRES_AT: &str = "access_expires_at";

/// Refresh this long before the access token's stated expiry (clock skew, slow links).
const EXPIRY_MARGIN_S: i64 = 60;

pub struct Session<'a> {
    queue: &'a Queue,
    api: &'a ApiClient,
    device_id: String,
}

impl<'a> Session<'a> {
    pub fn new(queue: &'a Queue, api: &'a ApiClient) -> Result<Session<'a>, SdkError> {
        let device_id = queue.setting(DEVICE_ID)?.ok_or(SdkError::NotLoggedIn)?;
        Ok(Session {
            queue,
            api,
            device_id,
        })
    }

    /// Saves freshly issued tokens (before anything else uses them: a rotated refresh token
    /// that is lost would look like reuse to the server).
    pub fn store(queue: &Queue, tokens: &Tokens) -> Result<(), SdkError> {
        let expires = OffsetDateTime::now_utc().unix_timestamp() + tokens.expires_in;
        queue.set_setting(ACCESS_TOKEN, Some(&tokens.access_token))?;
        queue.set_setting(REFRESH_TOKEN, Some(&tokens.refresh_token))?;
        queue.set_setting(ACCESS_EXPIRES_AT, Some(&expires.to_string()))
    }

    pub fn clear(queue: &Queue) -> Result<(), SdkError> {
        queue.set_setting(ACCESS_TOKEN, None)?;
        queue.set_setting(REFRESH_TOKEN, None)?;
        queue.set_setting(ACCESS_EXPIRES_AT, None)
    }

    /// A usable access token, refreshing first if it is about to expire.
    pub fn access_token(&self) -> Result<String, SdkError> {
        let token = self
            .queue
            .setting(ACCESS_TOKEN)?
            .ok_or(SdkError::NotLoggedIn)?;
        let expires_at: i64 = self
            .queue
            .setting(ACCESS_EXPIRES_AT)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if OffsetDateTime::now_utc().unix_timestamp() + EXPIRY_MARGIN_S < expires_at {
            return Ok(token);
        }
        self.refresh()
    }

    /// Trades the refresh token for new tokens. 401/403 from the server: revoked.
    pub fn refresh(&self) -> Result<String, SdkError> {
        let refresh = self
            .queue
            .setting(REFRESH_TOKEN)?
            .ok_or(SdkError::NotLoggedIn)?;
        match self.api.refresh(&refresh, &self.device_id) {
            Ok(tokens) => {
                Session::store(self.queue, &tokens)?;
                Ok(tokens.access_token)
            }
            Err(CallError::Status { status, .. }) if status == 401 || status == 403 => {
                Session::clear(self.queue)?;
                Err(SdkError::Revoked)
            }
            Err(e) => Err(SdkError::Network(e.to_string())),
        }
    }
}
