//! `/api/v1/notifications`: the caller's own inbox. Only the recipient ever sees a notification;
//! anyone else's id is a 404.

use super::{PageOf, PageQuery};
use crate::auth::Caller;
use crate::db::{self, entities::notification, notifications as repo};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_notifications)
        .service(unread_count)
        .service(mark_all_read)
        .service(mark_read);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: String,
    /// Machine name of the event, e.g. `stall_alarm`.
    pub kind: String,
    pub title_en: String,
    pub title_zh: String,
    pub body_en: String,
    pub body_zh: String,
    /// API path of the thing it is about, e.g. `/api/v1/deals/{id}`.
    pub link: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub read_at: Option<OffsetDateTime>,
}

impl From<notification::Model> for NotificationView {
    fn from(n: notification::Model) -> Self {
        NotificationView {
            id: n.id,
            kind: n.kind,
            title_en: n.title_en,
            title_zh: n.title_zh,
            body_en: n.body_en,
            body_zh: n.body_zh,
            link: n.link,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct InboxFilter {
    /// `true`: only notifications not yet read.
    pub unread: Option<bool>,
}

/// My notifications, newest first, cursor-paged.
#[utoipa::path(tag = "notifications", params(PageQuery, InboxFilter), responses((status = 200, body = PageOf<NotificationView>), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
#[get("/notifications")]
async fn list_notifications(
    state: web::Data<AppState>,
    caller: Caller,
    page: web::Query<PageQuery>,
    filter: web::Query<InboxFilter>,
) -> ApiResult<web::Json<PageOf<NotificationView>>> {
    let page = page.into_inner().parse()?;
    let unread_only = filter.unread.unwrap_or(false);
    let found = repo::list_for_user(&state.reads, &caller.user_id, unread_only, &page).await?;
    Ok(web::Json(PageOf {
        items: found
            .items
            .into_iter()
            .map(NotificationView::from)
            .collect(),
        next_cursor: found.next_cursor,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UnreadCount {
    pub unread: u64,
}

/// How many of my notifications are unread (the badge).
#[utoipa::path(tag = "notifications", responses((status = 200, body = UnreadCount)), security(("bearer" = [])))]
#[get("/notifications/unread-count")]
async fn unread_count(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<UnreadCount>> {
    let unread = repo::unread_count(&state.reads, &caller.user_id).await?;
    Ok(web::Json(UnreadCount { unread }))
}

/// Mark one of my notifications read (again is fine: the first read time stays).
#[utoipa::path(tag = "notifications", responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[post("/notifications/{id}/read")]
async fn mark_read(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    if !repo::mark_read(&state.db, &caller.user_id, &id, db::now()).await? {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MarkedRead {
    /// How many were unread and are now read.
    pub marked: u64,
}

/// Mark all my notifications read.
#[utoipa::path(tag = "notifications", responses((status = 200, body = MarkedRead)), security(("bearer" = [])))]
#[post("/notifications/read-all")]
async fn mark_all_read(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<MarkedRead>> {
    let marked = repo::mark_all_read(&state.db, &caller.user_id, db::now()).await?;
    Ok(web::Json(MarkedRead { marked }))
}
