//! Sign-in, sign-out and the language switch.
//!
//! The sign-in form cannot carry a session's CSRF token (there is no session yet), so it uses a
//! double-submit token instead: a random value set as a cookie when the form is shown and put
//! in the form; the post must bring both, equal. Another site can neither read the cookie nor
//! set it, so it cannot sign a victim's browser into the attacker's account.

use super::layout::{ConsoleError, Nav, html_response, page};
use super::session::{
    self, ConsoleUser, LANG_COOKIE, LOGIN_CSRF_COOKIE, Lang, NoFields, Posted, SESSION_COOKIE,
};
use crate::auth::console::{self, random_token, same_secret};
use crate::error::ErrorCode;
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

fn login_form(
    lang: Lang,
    token: &str,
    next: &str,
    failed: Option<&str>,
    username: &str,
) -> maud::Markup {
    let body = html! {
        form.login method="post" action="/console/login" {
            h1 { (lang.t("登录主管控制台", "Sign in to the supervisor console")) }
            @if let Some(message) = failed {
                p.flash.error role="alert" { (message) }
            }
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="next" value=(next);
            label for="username" { (lang.t("用户名", "Username")) }
            input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
            label for="password" { (lang.t("密码", "Password")) }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { (lang.t("登录", "Sign in")) }
        }
    };
    page(None, lang, lang.t("登录", "Sign in"), Nav::None, body)
}

/// `GET /console/login`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    lang: Lang,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let token = random_token();
    let next = session::safe_return(query.next.as_deref());
    let secure = session::secure_cookies(&req, &state);
    let mut response = html_response(StatusCode::OK, login_form(lang, &token, &next, None, ""));
    if let Err(e) = response.add_cookie(&session::cookie(LOGIN_CSRF_COOKIE, token, 3600, secure)) {
        tracing::warn!(error = %e, "setting the sign-in CSRF cookie failed");
    }
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/login`
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    lang: Lang,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, ConsoleError> {
    let form = form.into_inner();
    let cookie_token = req.cookie(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    let genuine = cookie_token.is_some_and(|t| !t.is_empty() && same_secret(&t, &form.csrf));
    if !genuine || !session::same_origin(&req) {
        return Err(ConsoleError::Csrf);
    }
    let next = session::safe_return(Some(&form.next));
    let secure = session::secure_cookies(&req, &state);
    match console::sign_in(&state, &form.username, SecretString::from(form.password)).await {
        Ok(started) => {
            let mut response = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, next))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
            let cookies = [
                session::cookie(
                    SESSION_COOKIE,
                    started.cookie_token,
                    started.max_age.whole_seconds(),
                    secure,
                ),
                session::removal(LOGIN_CSRF_COOKIE, secure),
            ];
            for cookie in cookies {
                response
                    .add_cookie(&cookie)
                    .map_err(ConsoleError::internal)?;
            }
            Ok(response)
        }
        Err(e) if e.code == ErrorCode::InvalidCredentials => {
            // Keep the same double-submit token: the form is shown again with it.
            let (_, _, en, zh) = ErrorCode::InvalidCredentials.spec();
            Ok(html_response(
                StatusCode::UNAUTHORIZED,
                login_form(
                    lang,
                    &form.csrf,
                    &next,
                    Some(lang.t(zh, en)),
                    &form.username,
                ),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /console/logout`
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    posted: Posted<NoFields>,
) -> Result<HttpResponse, ConsoleError> {
    console::sign_out(&state, &posted.user.caller.session_id).await?;
    let secure = session::secure_cookies(&req, &state);
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/login"))
        .finish();
    response
        .add_cookie(&session::removal(SESSION_COOKIE, secure))
        .map_err(ConsoleError::internal)?;
    Ok(response)
}

/// `GET /console/lang/{zh|en}?next=…`: remember the language, go back.
pub async fn switch_language(
    req: HttpRequest,
    state: web::Data<AppState>,
    lang: web::Path<String>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let chosen = if lang.as_str() == "en" { "en" } else { "zh" };
    let secure = session::secure_cookies(&req, &state);
    let mut response = HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            session::safe_return(query.next.as_deref()),
        ))
        .finish();
    response
        .add_cookie(&session::cookie(
            LANG_COOKIE,
            chosen.to_owned(),
            365 * 24 * 3600,
            secure,
        ))
        .map_err(ConsoleError::internal)?;
    Ok(response)
}

/// `GET /console`: the queue for those who review, the deals for everyone else.
pub async fn home(user: ConsoleUser) -> HttpResponse {
    let to = if super::layout::sees_reviews(&user.caller) {
        "/console/reviews"
    } else {
        "/console/deals"
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}
