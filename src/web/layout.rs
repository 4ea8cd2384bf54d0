//! The frame every console page shares (head, navigation, language switch, sign-out form), the
//! console's error pages, and small formatting helpers.

use super::assets;
use super::session::{ConsoleUser, Lang};
use crate::auth::Caller;
use crate::db;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use fieldproof_domain::account::Role;
use maud::{DOCTYPE, Markup, html};
use std::fmt;
use time::{OffsetDateTime, UtcOffset};

/// Times are shown in China Standard Time, like the reports.
pub const LOCAL_OFFSET: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// The pages of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Reviews,
    Deals,
    Heatmap,
    Health,
    None,
}

/// Who may open the review queue (the service decides per team; this only hides the link).
pub fn sees_reviews(caller: &Caller) -> bool {
    match caller.role {
        Role::Admin | Role::Supervisor | Role::Manager => true,
        Role::Rep | Role::Presales | Role::Finance => false,
    }
}

/// Who may open the heatmap.
pub fn sees_heatmap(caller: &Caller) -> bool {
    caller.is_admin() || caller.leads_team()
}

/// Who may open the distribution-health page (`routes::leads::team_health` decides; this only
/// hides the link).
pub fn sees_health(caller: &Caller) -> bool {
    caller.is_admin() || caller.leads_team()
}

/// The teams a page's team selector offers: every team of the org to admins, their own team to
/// everyone else (id, name). The service still decides what each may see.
pub async fn teams_of(
    state: &AppState,
    user: &ConsoleUser,
) -> Result<Vec<(String, String)>, ConsoleError> {
    Ok(db::teams::list(&state.db, &user.caller.org_id)
        .await?
        .into_iter()
        .filter(|t| user.caller.is_admin() || Some(&t.id) == user.caller.team_id.as_ref())
        .map(|t| (t.id, t.name))
        .collect())
}

/// A whole page: the frame around `body`.
pub fn page(user: Option<&ConsoleUser>, lang: Lang, title: &str, nav: Nav, body: Markup) -> Markup {
    let here = user.map_or("/console/login", |u| u.here.as_str());
    let switch = format!(
        "/console/lang/{}?{}",
        lang.other().code(),
        query(&[("next", here)])
    );
    html! {
        (DOCTYPE)
        html lang=(lang.html_code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fieldproof" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::js_url()) defer {}
            }
            body {
                header.top {
                    a.brand href="/console" { "fieldproof " span { (lang.t("主管控制台", "Supervisor console")) } }
                    @if let Some(user) = user {
                        nav {
                            @if sees_reviews(&user.caller) {
                                a.current[nav == Nav::Reviews] href="/console/reviews" { (lang.t("审核队列", "Review queue")) }
                            }
                            a.current[nav == Nav::Deals] href="/console/deals" { (lang.t("商机", "Deals")) }
                            @if sees_heatmap(&user.caller) {
                                a.current[nav == Nav::Heatmap] href="/console/heatmap" { (lang.t("行动热力图", "Heatmap")) }
                            }
                            @if sees_health(&user.caller) {
                                a.current[nav == Nav::Health] href="/console/health" { (lang.t("分配健康度", "Distribution health")) }
                            }
                        }
                    }
                    div.who {
                        a.lang href=(switch) { (lang.t("English", "中文")) }
                        @if let Some(user) = user {
                            span.name { (user.display_name) }
                            form.logout method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(user.csrf);
                                button type="submit" { (lang.t("退出", "Sign out")) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An HTML response that no cache keeps.
pub fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// `a=1&b=2`, percent-encoded; empty values are left out.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// `2026-11-26 14:05` in China Standard Time.
pub fn local_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(LOCAL_OFFSET);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// An RFC 3339 string shown in local time (as is if it does not parse).
pub fn local_time_str(raw: &str) -> String {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(local_time)
        .unwrap_or_else(|_| raw.to_owned())
}

/// Why a console request failed, shown as a page (never as the API's JSON).
pub enum ConsoleError {
    /// No live session: go to the sign-in page, then back to `next`.
    SignIn { next: String },
    /// A form post without this session's CSRF token, or from another site.
    Csrf,
    /// A form body that could not be read.
    BadForm(String),
    /// Anything the services refused or failed with.
    Api(ApiError),
}

impl ConsoleError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ConsoleError::Api(ApiError::internal(e))
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::Api(e)
    }
}

impl From<sea_orm::DbErr> for ConsoleError {
    fn from(e: sea_orm::DbErr) -> Self {
        ConsoleError::Api(ApiError::from(e))
    }
}

impl fmt::Debug for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleError::SignIn { .. } => f.write_str("sign_in_required"),
            ConsoleError::Csrf => f.write_str("csrf_rejected"),
            ConsoleError::BadForm(why) => write!(f, "bad_form: {why}"),
            ConsoleError::Api(e) => write!(f, "{e:?}"),
        }
    }
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An error page in both languages (an error response does not know the request's language).
fn error_page(status: StatusCode, code: &str, zh: &str, en: &str) -> HttpResponse {
    let body = html! {
        section.error {
            h1 { (status.as_u16()) }
            p lang="zh-CN" { (zh) }
            p lang="en" { (en) }
            p { code { (code) } }
            p { a href="/console" { "返回控制台 / Back to the console" } }
        }
    };
    html_response(status, page(None, Lang::Zh, "fieldproof", Nav::None, body))
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn { .. } => StatusCode::SEE_OTHER,
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::BadForm(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Api(e) => e.code.status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleError::SignIn { next } => HttpResponse::SeeOther()
                .insert_header((
                    header::LOCATION,
                    format!("/console/login?{}", query(&[("next", next)])),
                ))
                .finish(),
            ConsoleError::Csrf => {
                tracing::info!("console form refused: CSRF token missing or wrong");
                error_page(
                    StatusCode::FORBIDDEN,
                    "csrf_rejected",
                    "表单已过期或来源不明，已拒绝。请刷新页面后重试。",
                    "The form was refused: it expired or did not come from this console. Reload the page and try again.",
                )
            }
            ConsoleError::BadForm(why) => {
                tracing::info!(reason = %why, "console form unreadable");
                let (code, _, en, zh) = ErrorCode::BadRequest.spec();
                error_page(StatusCode::BAD_REQUEST, code, zh, en)
            }
            ConsoleError::Api(e) => {
                // The API error logs its cause chain the same way for both front ends.
                let _ = e.error_response();
                let body = e.body();
                error_page(e.code.status(), body.code, &body.message_zh, &body.message)
            }
        }
    }
}

/// A 404 page for console paths that do not exist.
pub async fn not_found() -> HttpResponse {
    let (code, _, en, zh) = ErrorCode::NotFound.spec();
    error_page(StatusCode::NOT_FOUND, code, zh, en)
}
