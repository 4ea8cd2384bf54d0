//! Who is using the console, in which language, and the checks every form post passes.
//!
//! * [`ConsoleUser`] reads the session cookie and yields the same [`Caller`] the API's bearer
//!   extractor does, so every service call is scoped identically. No session: the browser is
//!   sent to the sign-in page.
//! * [`Posted`] is the only way a console handler reads a form: it requires a session, the
//!   session's CSRF token in the `csrf` field (synchronizer token, compared in constant time),
//!   and, when the browser says where the post came from (`Origin`, `Sec-Fetch-Site`), that it
//!   came from this site.
//! * Cookies are `HttpOnly`, `SameSite=Lax` (a link from a chat message still opens the console
//!   signed in; cross-site posts carry no cookie, and the token stops the rest), scoped to
//!   `/console`, and `Secure` when the request came over TLS or the settings say so.

use super::layout::ConsoleError;
use crate::auth::Caller;
use crate::auth::console::{self, same_secret};
use crate::state::AppState;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::future::{Ready, ready};

pub const SESSION_COOKIE: &str = "fp_console";
pub const LOGIN_CSRF_COOKIE: &str = "fp_login_csrf";
pub const LANG_COOKIE: &str = "fp_lang";
const COOKIE_PATH: &str = "/console";

/// The console's language: Simplified Chinese unless the user switched to English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn of(req: &HttpRequest) -> Lang {
        match req.cookie(LANG_COOKIE).as_ref().map(Cookie::value) {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// The text in this language.
    pub fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    pub fn html_code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }
}

impl FromRequest for Lang {
    type Error = actix_web::Error;
    type Future = Ready<Result<Lang, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Lang::of(req)))
    }
}

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub caller: Caller,
    pub display_name: String,
    pub csrf: String,
    pub lang: Lang,
    /// Path and query of this request (where to come back to).
    pub here: String,
}

fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, ConsoleError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ConsoleError::internal(anyhow::anyhow!("AppState missing")))
}

fn here(req: &HttpRequest) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| req.path().to_owned())
}

impl FromRequest for ConsoleUser {
    type Error = ConsoleError;
    type Future = LocalBoxFuture<'static, Result<ConsoleUser, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let state = state_of(req);
        let lang = Lang::of(req);
        let here = here(req);
        // After signing in, come back to the page (a GET); a form post goes back to its page.
        let next = if req.method() == actix_web::http::Method::GET {
            here.clone()
        } else {
            "/console".to_owned()
        };
        Box::pin(async move {
            let state = state?;
            let Some(token) = token else {
                return Err(ConsoleError::SignIn { next });
            };
            match console::resolve(&state, &token).await? {
                Some(session) => Ok(ConsoleUser {
                    caller: session.caller,
                    display_name: session.display_name,
                    csrf: session.csrf_token,
                    lang,
                    here,
                }),
                None => Err(ConsoleError::SignIn { next }),
            }
        })
    }
}

/// Whether the browser says this request came from this site (absent headers: no objection,
/// the CSRF token decides).
pub fn same_origin(req: &HttpRequest) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return false;
    }
    match header("origin") {
        None => true,
        Some(origin) => {
            let host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            host == req.connection_info().host()
        }
    }
}

#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

/// A form posted by a signed-in user with the session's CSRF token.
pub struct Posted<T> {
    pub user: ConsoleUser,
    pub form: T,
}

/// A form with no fields but the token (logout).
#[derive(Deserialize)]
pub struct NoFields {}

impl<T: DeserializeOwned + 'static> FromRequest for Posted<T> {
    type Error = ConsoleError;
    type Future = LocalBoxFuture<'static, Result<Posted<T>, ConsoleError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = ConsoleUser::from_request(req, payload);
        let form = web::Form::<WithCsrf<T>>::from_request(req, payload);
        let same_origin = same_origin(req);
        Box::pin(async move {
            let user = user.await?;
            if !same_origin {
                return Err(ConsoleError::Csrf);
            }
            let form = form
                .await
                .map_err(|e| ConsoleError::BadForm(e.to_string()))?;
            let WithCsrf { csrf, form } = form.into_inner();
            if !same_secret(&csrf, &user.csrf) {
                return Err(ConsoleError::Csrf);
            }
            Ok(Posted { user, form })
        })
    }
}

/// Whether cookies set in answer to this request should be `Secure`.
pub fn secure_cookies(req: &HttpRequest, state: &AppState) -> bool {
    state
        .settings
        .console_secure_cookie
        .unwrap_or_else(|| req.connection_info().scheme() == "https")
}

/// A console cookie: HttpOnly, SameSite=Lax, path `/console`, Secure as decided.
pub fn cookie(
    name: &'static str,
    value: String,
    max_age_secs: i64,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// A cookie that tells the browser to forget `name`.
pub fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    cookie(name, String::new(), 0, secure)
}

/// A local path inside the console to go back to after a form; anything else (another site,
/// `//host`, an API path) becomes the console's start page.
pub fn safe_return(raw: Option<&str>) -> String {
    match raw {
        Some(path)
            if (path == "/console"
                || path.starts_with("/console/")
                || path.starts_with("/console?"))
                && !path.contains("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/console".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_returned_to() {
        assert_eq!(
            safe_return(Some("/console/reviews?team=1")),
            "/console/reviews?team=1"
        );
        assert_eq!(safe_return(Some("//evil.example/console/")), "/console");
        assert_eq!(safe_return(Some("https://evil.example/")), "/console");
        assert_eq!(safe_return(Some("/console//evil")), "/console");
        assert_eq!(safe_return(Some("/api/v1/users")), "/console");
        assert_eq!(safe_return(Some("/consolex")), "/console");
        assert_eq!(safe_return(None), "/console");
    }
}
