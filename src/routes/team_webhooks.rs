//! `/api/v1/teams/{id}/webhooks`: the chat robots (WeCom, DingTalk, Feishu) a team's notices
//! are posted to. Managed by admins and by the team's own manager.
//!
//! The URL (it embeds the robot's token) and the signing secret are write-only: views show a
//! redacted hint and whether a secret is set, never the values.

use crate::auth::Caller;
use crate::db::{self, entities::team, entities::team_webhook, team_webhooks as repo};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::services::chat_robots::{Flavor, UnknownFlavor};
use crate::state::AppState;
use actix_web::{HttpResponse, delete, get, post, web};
use fieldproof_domain::account::Role;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_webhooks)
        .service(create_webhook)
        .service(delete_webhook);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub team_id: String,
    /// wecom | dingtalk | feishu
    pub flavor: String,
    /// Scheme, host and the URL's last four characters, e.g. `https://oapi.dingtalk.com/…3f9a`.
    pub url_hint: String,
    pub has_secret: bool,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<team_webhook::Model> for WebhookView {
    fn from(w: team_webhook::Model) -> Self {
        WebhookView {
            url_hint: url_hint(&w.url),
            has_secret: w.secret.is_some(),
            id: w.id,
            team_id: w.team_id,
            flavor: w.flavor,
            active: w.active,
            created_at: w.created_at,
        }
    }
}

fn url_hint(url: &str) -> String {
    let origin = reqwest::Url::parse(url)
        .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")))
        .unwrap_or_default();
    let tail: String = url
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{origin}/…{tail}")
}

/// The team, if the caller may manage its webhooks: 404 outside the org, 403 for others.
async fn managed_team(state: &AppState, caller: &Caller, team_id: &str) -> ApiResult<team::Model> {
    let team = db::teams::find(&state.db, &caller.org_id, team_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let own_manager =
        matches!(caller.role, Role::Manager) && caller.team_id.as_deref() == Some(team.id.as_str());
    if !(caller.is_admin() || own_manager) {
        return Err(ApiError::forbidden());
    }
    Ok(team)
}

#[utoipa::path(tag = "notifications", responses((status = 200, body = Vec<WebhookView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/teams/{id}/webhooks")]
async fn list_webhooks(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<WebhookView>>> {
    let team = managed_team(&state, &caller, &id).await?;
    let hooks = repo::list_for_team(&state.db, &caller.org_id, &team.id).await?;
    Ok(web::Json(
        hooks.into_iter().map(WebhookView::from).collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateWebhookRequest {
    /// wecom | dingtalk | feishu
    pub flavor: String,
    /// The robot's webhook address (http or https), as the chat app shows it.
    pub url: String,
    /// DingTalk's `SEC…` or Feishu's signing secret, when the robot has signing turned on.
    pub secret: Option<String>,
    /// Default true.
    pub active: Option<bool>,
}

/// Parse a webhook URL: absolute http(s) with a host, of sane length.
fn parse_url(raw: &str) -> ApiResult<String> {
    let raw = raw.trim();
    let invalid = || {
        ApiError::invalid_field(
            "url",
            "must be an http(s) URL of at most 2000 characters",
            "须为不超过 2000 字符的 http(s) 地址",
        )
    };
    if raw.len() > 2000 {
        return Err(invalid());
    }
    let url = reqwest::Url::parse(raw).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    Ok(url.into())
}

fn parse_secret(flavor: Flavor, secret: Option<String>) -> ApiResult<Option<String>> {
    let secret = secret
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    match (&secret, flavor) {
        (Some(_), Flavor::WeCom) => Err(ApiError::invalid_field(
            "secret",
            "WeCom group robots do not sign requests; leave it out",
            "企业微信群机器人不使用签名，请不要填写",
        )),
        (Some(s), _) if s.len() > 500 => Err(ApiError::invalid_field(
            "secret",
            "at most 500 characters",
            "不超过 500 个字符",
        )),
        _ => Ok(secret),
    }
}

/// Add a robot to the team; the team's notices are posted to it from now on.
#[utoipa::path(tag = "notifications", request_body = CreateWebhookRequest, responses((status = 201, body = WebhookView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/teams/{id}/webhooks")]
async fn create_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<CreateWebhookRequest>,
) -> ApiResult<HttpResponse> {
    let team = managed_team(&state, &caller, &id).await?;
    let body = body.into_inner();
    let flavor: Flavor = body.flavor.trim().parse().map_err(|e: UnknownFlavor| {
        ApiError::invalid_field(
            "flavor",
            e.to_string(),
            "类型须为 wecom、dingtalk 或 feishu",
        )
    })?;
    let url = parse_url(&body.url)?;
    let secret = parse_secret(flavor, body.secret)?;
    let hook = repo::create(
        &state.db,
        repo::NewWebhook {
            org_id: caller.org_id.clone(),
            team_id: team.id,
            flavor: flavor.as_str().to_owned(),
            url,
            secret,
            active: body.active.unwrap_or(true),
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(WebhookView::from(hook)))
}

/// Remove a robot. Messages still queued for it are given up, not sent.
#[utoipa::path(tag = "notifications", responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[delete("/teams/{id}/webhooks/{webhook_id}")]
async fn delete_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (team_id, webhook_id) = path.into_inner();
    let team = managed_team(&state, &caller, &team_id).await?;
    if !repo::delete(&state.db, &caller.org_id, &team.id, &webhook_id).await? {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hint_hides_the_token() {
        let hint = url_hint("https://oapi.dingtalk.com/robot/send?access_token=abcdef123456");
        assert_eq!(hint, "https://oapi.dingtalk.com/…3456");
        assert!(!hint.contains("abcdef"));
    }
}
