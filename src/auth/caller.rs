//! `Caller`: the authenticated user behind a request, with the scope every query is filtered by.
//!
//! The bearer token is verified, then the user is re-read so a disabled account or a logged-out
//! session stops working at once rather than when its token expires.

use crate::db;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use fieldproof_domain::account::Role;
use std::future::Future;
use std::pin::Pin;

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub org_id: String,
    pub role: Role,
    pub team_id: Option<String>,
    pub session_id: String,
}

impl Caller {
    /// The caller an account found active in session `session_id` stands for.
    fn of(user: db::users::User, session_id: String) -> Caller {
        Caller {
            user_id: user.id,
            org_id: user.org_id,
            role: user.role,
            team_id: user.team_id,
            session_id,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self.role, Role::Admin)
    }

    /// Roles that oversee a whole team (they see their team's objects).
    pub fn leads_team(&self) -> bool {
        match self.role {
            Role::Manager | Role::Supervisor => true,
            Role::Rep | Role::Presales | Role::Finance | Role::Admin => false,
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::new(ErrorCode::TokenInvalid))?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(ApiError::new(ErrorCode::Unauthenticated)),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token?;
            let state =
                state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))?;
            let claims = state.tokens.verify(&token)?;
            // Deactivation and logout take effect at the next request: the account and its
            // session are read on every call (one query).
            let user = db::users::find_active_in_session(&state.reads, &claims.sub, &claims.sid)
                .await?
                .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid))?;
            Ok(Caller::of(user, claims.sid))
        })
    }
}

/// A request's verified access token whose account and session are **not** checked yet: only
/// for the lead intake, whose dispatcher checks the accounts of a whole batch of requests in two
/// statements (`Dispatcher::submit_in_session`) — a check per request was most of an intake
/// burst's front. The answer is the same as [`Caller`]'s: an inactive account or a revoked
/// session gets `401 token_invalid` and nothing is stored. Every other route takes [`Caller`].
pub struct UncheckedSession {
    pub user_id: String,
    pub session_id: String,
}

impl UncheckedSession {
    /// The caller, once the dispatcher has found the account active in this session.
    pub fn checked(self, user: db::users::User) -> Caller {
        Caller::of(user, self.session_id)
    }
}

impl FromRequest for UncheckedSession {
    type Error = ApiError;
    type Future = std::future::Ready<Result<UncheckedSession, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let token = bearer(req)?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))?;
            let claims = state.tokens.verify(&token)?;
            Ok(UncheckedSession {
                user_id: claims.sub,
                session_id: claims.sid,
            })
        })())
    }
}
