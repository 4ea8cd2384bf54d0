//! `/api/v1/me`, `/api/v1/users`: who I am, my team, and (admins) creating accounts.

use crate::auth::Caller;
use crate::db::{self, users::RepProfile, users::User};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::services::accounts::{self, CreateUser};
use crate::state::AppState;
use actix_web::{HttpResponse, get, post, put, web};
use fieldproof_domain::account::Role;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(me)
        .service(list_users)
        .service(get_user)
        .service(create_user)
        .service(get_rep_profile)
        .service(put_rep_profile);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    #[schema(value_type = String, example = "rep")]
    pub role: Role,
    pub team_id: Option<String>,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            team_id: u.team_id,
            active: u.active,
            created_at: u.created_at,
        }
    }
}

/// The signed-in user.
#[utoipa::path(tag = "users", responses((status = 200, body = UserView), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
#[get("/me")]
async fn me(state: web::Data<AppState>, caller: Caller) -> ApiResult<web::Json<UserView>> {
    let user = db::users::find_active(&state.db, &caller.user_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(user.into()))
}

/// Users the caller may see: admins the org, others themselves and their team.
#[utoipa::path(tag = "users", responses((status = 200, body = Vec<UserView>)), security(("bearer" = [])))]
#[get("/users")]
async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<Vec<UserView>>> {
    let users = db::users::list_visible(&state.db, &caller).await?;
    Ok(web::Json(users.into_iter().map(UserView::from).collect()))
}

#[utoipa::path(tag = "users", responses((status = 200, body = UserView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/users/{id}")]
async fn get_user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<UserView>> {
    let user = db::users::find_visible(&state.db, &caller, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(user.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateUserRequest {
    pub username: String,
    pub display_name: Option<String>,
    /// At least 10 characters.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    #[schema(value_type = String, example = "rep")]
    pub role: String,
    pub team_id: Option<String>,
}

/// Create an account (admins only).
#[utoipa::path(
    tag = "users",
    request_body = CreateUserRequest,
    responses((status = 201, body = UserView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/users")]
async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateUserRequest>,
) -> ApiResult<HttpResponse> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let body = body.into_inner();
    let role: Role = body
        .role
        .parse()
        .map_err(|e: fieldproof_domain::account::UnknownRole| {
            ApiError::invalid_field(
                "role",
                e.to_string(),
                "角色须为 rep、manager、presales、finance、supervisor 或 admin",
            )
        })?;
    let user = accounts::create_user(
        &state.db,
        CreateUser {
            org_id: &caller.org_id,
            username: &body.username,
            display_name: body.display_name.as_deref(),
            password: body.password,
            role,
            team_id: body.team_id.as_deref(),
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

#[utoipa::path(tag = "users", responses((status = 200, body = RepProfile), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/users/{id}/rep-profile")]
async fn get_rep_profile(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<RepProfile>> {
    let user = db::users::find_visible(&state.db, &caller, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let profile = db::users::rep_profile(&state.db, &user.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(profile))
}

/// Set a rep's regions, expertise, capacity and availability (admin, or the rep's team lead).
#[utoipa::path(
    tag = "users",
    request_body = RepProfile,
    responses((status = 200, body = RepProfile), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/users/{id}/rep-profile")]
async fn put_rep_profile(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<RepProfile>,
) -> ApiResult<web::Json<RepProfile>> {
    let user = db::users::find_visible(&state.db, &caller, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let leads_their_team =
        caller.leads_team() && caller.team_id.is_some() && caller.team_id == user.team_id;
    if !(caller.is_admin() || leads_their_team) {
        return Err(ApiError::forbidden());
    }
    let profile = body.into_inner();
    if !(0..=1000).contains(&profile.capacity) {
        return Err(ApiError::invalid_field(
            "capacity",
            "must be 0-1000",
            "须在 0-1000 之间",
        ));
    }
    let clean = |items: &[String]| -> Vec<String> {
        items
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let profile = RepProfile {
        regions: clean(&profile.regions),
        product_expertise: clean(&profile.product_expertise),
        ..profile
    };
    db::users::put_rep_profile(&state.db, &user.id, &profile).await?;
    Ok(web::Json(profile))
}
