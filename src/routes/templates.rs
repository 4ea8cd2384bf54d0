//! `/api/v1/pipeline-templates`: read the org's templates; admins write new versions.

use crate::auth::Caller;
use crate::db::{self, templates::StoredTemplate};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use actix_web::{HttpResponse, get, post, web};
use fieldproof_domain::pipeline::PipelineTemplate;
use serde::{Deserialize, Serialize};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_templates)
        .service(get_template)
        .service(create_template);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    pub id: String,
    pub name: String,
    pub version: i32,
    pub based_on: Option<String>,
    /// `{name, nodes: [{key, name_en, name_zh, stage, requirements: [{kind, ...}], stall_after_hours}]}`
    #[schema(value_type = Object)]
    pub definition: PipelineTemplate,
}

impl From<StoredTemplate> for TemplateView {
    fn from(t: StoredTemplate) -> Self {
        TemplateView {
            id: t.id,
            name: t.name,
            version: t.version,
            based_on: t.based_on,
            definition: t.definition,
        }
    }
}

/// Every template version of the org (the default one is written on first use).
#[utoipa::path(tag = "pipeline", responses((status = 200, body = Vec<TemplateView>)), security(("bearer" = [])))]
#[get("/pipeline-templates")]
async fn list_templates(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<Vec<TemplateView>>> {
    db::templates::default_for_org(&state.db, &caller.org_id).await?;
    let all = db::templates::list(&state.db, &caller.org_id).await?;
    Ok(web::Json(all.into_iter().map(TemplateView::from).collect()))
}

#[utoipa::path(tag = "pipeline", responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/pipeline-templates/{id}")]
async fn get_template(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<TemplateView>> {
    let t = db::templates::find(&state.db, &caller.org_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(t.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateTemplateRequest {
    /// The version this one is edited from (kept for the record).
    pub based_on: Option<String>,
    #[schema(value_type = Object)]
    pub definition: PipelineTemplate,
}

/// Save an edited copy as the next version of its name (admins). Versions in use never change;
/// running deals keep theirs. Validated: unique keys, every node proves something.
#[utoipa::path(tag = "pipeline", request_body = CreateTemplateRequest, responses((status = 201, body = TemplateView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/pipeline-templates")]
async fn create_template(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateTemplateRequest>,
) -> ApiResult<HttpResponse> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let body = body.into_inner();
    body.definition.validate().map_err(|e| {
        ApiError::invalid_field("definition", e.to_string(), format!("流程模板无效：{e}"))
    })?;
    if let Some(base) = &body.based_on
        && db::templates::find(&state.db, &caller.org_id, base)
            .await?
            .is_none()
    {
        return Err(ApiError::invalid_field(
            "based_on",
            "no such template",
            "模板不存在",
        ));
    }
    let t = db::templates::create_version(
        &state.db,
        &caller.org_id,
        &body.definition,
        body.based_on.as_deref(),
        Some(&caller.user_id),
    )
    .await?;
    Ok(HttpResponse::Created().json(TemplateView::from(t)))
}
