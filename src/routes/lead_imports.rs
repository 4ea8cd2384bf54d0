//! `POST /api/v1/leads/imports`: a CSV file as the request body (UTF-8 with or without BOM, or
//! GB18030/GBK), read with a byte limit while it streams in; the per-row error report comes back
//! and is kept for paging.

use super::{PageOf, PageQuery};
use crate::auth::Caller;
use crate::db::leads as repo;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::services::leads::import::{self, EncodingChoice, FileRefused, ImportReport, RowError};
use crate::state::AppState;
use actix_web::{HttpResponse, get, post, web};
use fieldproof_domain::account::Role;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ImportQuery {
    /// `auto` (default: BOM, else valid UTF-8, else GB18030), `utf-8` or `gb18030` (also `gbk`).
    pub encoding: Option<String>,
}

/// Import leads from a CSV body (admins and managers). Valid rows are stored even when others
/// are bad; they are assigned by the rules within seconds by the scheduler.
#[utoipa::path(tag = "leads", params(ImportQuery), request_body(content = String, content_type = "text/csv"), responses((status = 201, body = ImportReport), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/leads/imports")]
pub async fn import_leads(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ImportQuery>,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    if !(caller.is_admin() || matches!(caller.role, Role::Manager)) {
        return Err(ApiError::forbidden());
    }
    let choice = match query
        .into_inner()
        .encoding
        .as_deref()
        .map(str::to_lowercase)
        .as_deref()
    {
        None | Some("auto") => EncodingChoice::Auto,
        Some("utf-8" | "utf8") => EncodingChoice::Utf8,
        Some("gb18030" | "gbk" | "gb2312") => EncodingChoice::Gb18030,
        Some(_) => {
            return Err(ApiError::new(ErrorCode::InvalidQuery)
                .with_details(json!({"field": "encoding", "reason": "auto, utf-8 or gb18030"})));
        }
    };
    let limit = state.settings.lead_import_max_bytes;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(ErrorCode::BadRequest)
                .with_source(anyhow::anyhow!("reading the CSV body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge)
                .with_details(json!({"limit_bytes": limit})));
        }
        body.extend_from_slice(&chunk);
    }
    let report =
        import::import_csv(&state.db, &caller.org_id, &caller.user_id, &body, choice).await?;
    match report {
        Ok(report) => Ok(HttpResponse::Created().json(report)),
        Err(refused) => {
            let details = match refused {
                FileRefused::NoHeader => {
                    json!({"reason": "no_header", "message": "the file is empty"})
                }
                FileRefused::NoCompanyColumn { headers } => {
                    json!({"reason": "no_company_column", "message": "no column names the company (e.g. 公司名称 or company)", "headers": headers})
                }
                FileRefused::TooManyRows => {
                    json!({"reason": "too_many_rows", "limit": import::MAX_ROWS})
                }
                FileRefused::NotText => {
                    json!({"reason": "not_text", "message": "the file is neither UTF-8 nor GB18030/GBK text"})
                }
            };
            Err(ApiError::new(ErrorCode::CsvInvalid).with_details(details))
        }
    }
}

/// Every row error of an import, in row order.
#[utoipa::path(tag = "leads", params(PageQuery), responses((status = 200, body = PageOf<RowError>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/leads/imports/{id}/errors")]
pub async fn import_errors(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<web::Json<PageOf<RowError>>> {
    let import = repo::find_import(&state.db, &caller.org_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !(caller.is_admin() || import.created_by == caller.user_id) {
        return Err(ApiError::not_found());
    }
    let page = repo::import_errors(&state.db, &import.id, &query.into_inner().parse()?).await?;
    Ok(web::Json(PageOf {
        items: page
            .items
            .into_iter()
            .map(|e| RowError {
                row: usize::try_from(e.row_number).unwrap_or(0),
                field: e.field,
                code: e.code,
                message: e.message,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
