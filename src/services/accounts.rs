//! Creating users: validation, password policy, hashing and the unique-username rule in one
//! place, so the API, `fieldproof user create` and the demo seeder cannot disagree.

use crate::db::{self, users::User};
use crate::error::{ApiError, ApiResult, ErrorCode};
use fieldproof_domain::account::{Role, Username};
use sea_orm::ConnectionTrait;
use secrecy::{ExposeSecret, SecretString};

pub struct CreateUser<'a> {
    pub org_id: &'a str,
    pub username: &'a str,
    pub display_name: Option<&'a str>,
    pub password: SecretString,
    pub role: Role,
    pub team_id: Option<&'a str>,
}

pub async fn create_user<C: ConnectionTrait>(db: &C, new: CreateUser<'_>) -> ApiResult<User> {
    let username = Username::parse(new.username).map_err(|e| {
        ApiError::invalid_field(
            "username",
            e.to_string(),
            "用户名须为 3-64 位字母、数字或 . _ -",
        )
    })?;
    if let Err(rule) = crate::auth::password::check_strength(new.password.expose_secret()) {
        return Err(ApiError::invalid_field(
            "password",
            rule,
            "密码至少 10 个字符",
        ));
    }
    if let Some(team_id) = new.team_id
        && db::teams::find(db, new.org_id, team_id).await?.is_none()
    {
        return Err(ApiError::invalid_field(
            "team_id",
            "no such team",
            "团队不存在",
        ));
    }
    let display_name = new
        .display_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(username.as_str())
        .to_owned();
    let password_hash = crate::auth::password::hash(new.password).await?;
    db::users::create(
        db,
        db::users::NewUser {
            org_id: new.org_id,
            username: username.as_str(),
            display_name: &display_name,
            password_hash,
            role: new.role,
            team_id: new.team_id,
        },
    )
    .await
    .map_err(|e| {
        if db::is_unique_violation(&e) {
            ApiError::new(ErrorCode::UsernameTaken)
                .with_details(serde_json::json!({"username": username.as_str()}))
        } else {
            ApiError::internal(e)
        }
    })
}
