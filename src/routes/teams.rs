//! `/api/v1/teams`: the org's teams (anyone signed in may list; admins create).

use crate::auth::Caller;
use crate::db::{self, entities::team};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::state::AppState;
use actix_web::{HttpResponse, get, post, web};
use fieldproof_domain::customer::Name;
use serde::{Deserialize, Serialize};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_teams).service(create_team);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub region: String,
    pub product_line: String,
}

impl From<team::Model> for TeamView {
    fn from(t: team::Model) -> Self {
        TeamView {
            id: t.id,
            name: t.name,
            region: t.region,
            product_line: t.product_line,
        }
    }
}

#[utoipa::path(tag = "teams", responses((status = 200, body = Vec<TeamView>)), security(("bearer" = [])))]
#[get("/teams")]
async fn list_teams(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<Vec<TeamView>>> {
    let teams = db::teams::list(&state.db, &caller.org_id).await?;
    Ok(web::Json(teams.into_iter().map(TeamView::from).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateTeamRequest {
    pub name: String,
    /// e.g. `east_china`.
    pub region: String,
    pub product_line: String,
}

#[utoipa::path(
    tag = "teams",
    request_body = CreateTeamRequest,
    responses((status = 201, body = TeamView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/teams")]
async fn create_team(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateTeamRequest>,
) -> ApiResult<HttpResponse> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let name = Name::parse(&body.name).map_err(|e| {
        ApiError::invalid_field("name", e.to_string(), "名称不能为空且不超过 200 字")
    })?;
    let team = db::teams::create(
        &state.db,
        db::teams::NewTeam {
            org_id: &caller.org_id,
            name: name.as_str(),
            region: body.region.trim(),
            product_line: body.product_line.trim(),
        },
    )
    .await
    .map_err(|e| {
        if db::is_unique_violation(&e) {
            ApiError::new(ErrorCode::Conflict).with_details(serde_json::json!({"field": "name"}))
        } else {
            ApiError::internal(e)
        }
    })?;
    Ok(HttpResponse::Created().json(TeamView::from(team)))
}
