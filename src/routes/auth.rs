//! `/api/v1/auth`: login, refresh, logout.

use crate::auth::Caller;
use crate::auth::sessions::{self, TokenPair};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use actix_web::{HttpResponse, post, web};
use fieldproof_domain::account::Username;
use secrecy::SecretString;
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(login).service(refresh).service(logout);
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// The device this session belongs to (a phone's enrolled id); default `web`.
    pub device_id: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
    /// When given, must match the device the session was started on.
    pub device_id: Option<String>,
}

fn parse_device(device_id: Option<&str>) -> ApiResult<String> {
    let device = device_id.unwrap_or("web").trim();
    if device.is_empty() || device.len() > 128 {
        return Err(ApiError::invalid_field(
            "device_id",
            "must be 1-128 characters",
            "长度须为 1-128 个字符",
        ));
    }
    Ok(device.to_owned())
}

/// Sign in with username and password.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, description = "invalid_credentials", body = ErrorBody),
    )
)]
#[post("/auth/login")]
async fn login(
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let device = parse_device(body.device_id.as_deref())?;
    // A name that cannot exist is answered like a wrong password.
    let Ok(username) = Username::parse(&body.username) else {
        return Err(ApiError::new(crate::error::ErrorCode::InvalidCredentials));
    };
    let pair = sessions::login(&state, username.as_str(), body.password, &device).await?;
    Ok(HttpResponse::Ok().json(pair))
}

/// Exchange a refresh token for a new pair. Each refresh token works once; presenting a used
/// one revokes the whole session.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, description = "refresh_token_invalid or refresh_token_reused", body = ErrorBody),
    )
)]
#[post("/auth/refresh")]
async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let pair = sessions::refresh(&state, &body.refresh_token, body.device_id.as_deref()).await?;
    Ok(HttpResponse::Ok().json(pair))
}

/// End the current session: its refresh tokens and access tokens stop working.
#[utoipa::path(
    tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/auth/logout")]
async fn logout(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    sessions::logout(&state, &caller.session_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
