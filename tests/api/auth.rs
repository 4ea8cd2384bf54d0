//! Sign-in, token verification and the refresh-token rotation rules.

use crate::helpers::{JWT_KEY, error_body, spawn_app};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn login_with_the_right_password_returns_a_token_pair() {
    let app = spawn_app().await;
    let pair = app.login_pair("rep_a", None).await;
    assert!(
        pair["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    assert!(
        pair["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 40)
    );
    assert_eq!(pair["expires_in"], 900);
    let me: Value = app
        .get("/api/v1/me", pair["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "rep_a");
    assert_eq!(me["role"], "rep");
}

#[tokio::test]
async fn login_with_a_wrong_password_or_unknown_user_is_refused_alike() {
    let app = spawn_app().await;
    for (user, password) in [
        ("rep_a", "not-the-password"),
        ("nobody", "not-the-password"),
        ("x", ""),
    ] {
        let response = app
            .request(Method::POST, "/api/v1/auth/login", None)
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        error_body(response, 401, "invalid_credentials").await;
    }
}

#[tokio::test]
async fn a_request_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/api/v1/customers", None)
        .send()
        .await
        .unwrap();
    let body = error_body(response, 401, "unauthenticated").await;
    assert!(body["message_zh"].as_str().unwrap().contains("登录"));
}

#[tokio::test]
async fn an_expired_token_is_refused_as_expired() {
    let app = spawn_app().await;
    let old = app.token_issued_at(
        "rep_a",
        time::OffsetDateTime::now_utc() - time::Duration::hours(2),
    );
    error_body(
        app.get("/api/v1/customers", &old).await,
        401,
        "token_expired",
    )
    .await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_invalid() {
    let app = spawn_app().await;
    let other = fieldproof::auth::jwt::AccessTokens::new(
        &secrecy::SecretString::from("a-completely-different-key-0123456789abcdef"),
        900,
    )
    .issue(&app.users["rep_a"], "s", time::OffsetDateTime::now_utc())
    .unwrap();
    error_body(
        app.get("/api/v1/customers", &other).await,
        401,
        "token_invalid",
    )
    .await;
}

fn reencode(
    token: &str,
    edit_header: impl Fn(&mut Value),
    edit_claims: impl Fn(&mut Value),
    keep_signature: bool,
) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit_header(&mut header);
    edit_claims(&mut claims);
    let signature = if keep_signature { parts[2] } else { "" };
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        signature
    )
}

#[tokio::test]
async fn a_token_with_alg_none_is_invalid() {
    let app = spawn_app().await;
    let real = app.token("rep_a").await;
    let unsigned = reencode(&real, |h| h["alg"] = json!("none"), |_| {}, false);
    error_body(
        app.get("/api/v1/customers", &unsigned).await,
        401,
        "token_invalid",
    )
    .await;
    let hs512 = reencode(&real, |h| h["alg"] = json!("HS512"), |_| {}, true);
    error_body(
        app.get("/api/v1/customers", &hs512).await,
        401,
        "token_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_token_with_tampered_claims_is_invalid() {
    let app = spawn_app().await;
    let real = app.token("rep_a").await;
    let admin_id = app.users["admin"].clone();
    let forged = reencode(&real, |_| {}, |c| c["sub"] = json!(admin_id), true);
    error_body(
        app.get("/api/v1/customers", &forged).await,
        401,
        "token_invalid",
    )
    .await;
    assert!(JWT_KEY.len() > 32);
}

async fn refresh(
    app: &crate::helpers::TestApp,
    token: &str,
    device: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({"refresh_token": token});
    if let Some(d) = device {
        body["device_id"] = json!(d);
    }
    app.request(Method::POST, "/api/v1/auth/refresh", None)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// rep_a logs in on phone-1 and refreshes once: the first refresh token and the pair it bought.
async fn rotated_once(app: &crate::helpers::TestApp) -> (String, Value) {
    let first = app.login_pair("rep_a", Some("phone-1")).await;
    let first_refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let second = refresh(app, &first_refresh, Some("phone-1"))
        .await
        .json()
        .await
        .unwrap();
    (first_refresh, second)
}

#[tokio::test]
async fn a_refresh_token_rotates_and_its_reuse_revokes_the_whole_session() {
    let app = spawn_app().await;
    let (first_refresh, second) = rotated_once(&app).await;
    let first_refresh = first_refresh.as_str();
    let second_refresh = second["refresh_token"].as_str().unwrap();
    let second_access = second["access_token"].as_str().unwrap();
    assert_ne!(first_refresh, second_refresh);
    assert_eq!(app.get("/api/v1/me", second_access).await.status(), 200);

    // The first token comes back: someone copied it. Everything in that session dies.
    error_body(
        refresh(&app, first_refresh, None).await,
        401,
        "refresh_token_reused",
    )
    .await;
    error_body(
        refresh(&app, second_refresh, None).await,
        401,
        "refresh_token_invalid",
    )
    .await;
    error_body(
        app.get("/api/v1/me", second_access).await,
        401,
        "token_invalid",
    )
    .await;

    // A fresh login still works.
    app.login_pair("rep_a", Some("phone-1")).await;
}

/// 4G drops the answer to a refresh: the phone presents the same token again, with its device
/// id, moments later. It gets a new pair; the lost answer's token is dead (401, not a reuse that
/// ends the session); the session goes on.
#[tokio::test]
async fn a_refresh_whose_answer_was_lost_can_be_retried_by_the_same_phone() {
    let app = spawn_app().await;
    let (first_refresh, lost) = rotated_once(&app).await;
    let first_refresh = first_refresh.as_str();
    let lost_refresh = lost["refresh_token"].as_str().unwrap();

    let retried = refresh(&app, first_refresh, Some("phone-1")).await;
    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.unwrap();
    let retried_refresh = retried["refresh_token"].as_str().unwrap();
    assert_ne!(retried_refresh, lost_refresh);
    error_body(
        refresh(&app, lost_refresh, Some("phone-1")).await,
        401,
        "refresh_token_invalid",
    )
    .await;
    let next = refresh(&app, retried_refresh, Some("phone-1")).await;
    assert_eq!(next.status(), 200, "the session goes on");
    let next: Value = next.json().await.unwrap();

    // Once a later token has been used, the first one coming back is a copy: session over.
    assert_reuse_ends_the_session(&app, first_refresh, &next).await;
}

/// The phone retries a lost answer several times at once (a flaky network, an impatient client):
/// each retry gets a pair, but the family ends with one live refresh token, not one per retry.
#[tokio::test]
async fn racing_retries_of_a_lost_answer_leave_one_live_refresh_token() {
    let app = spawn_app().await;
    let (first_refresh, lost) = rotated_once(&app).await;
    let retries = futures_util::future::join_all(
        (0..8).map(|_| refresh(&app, &first_refresh, Some("phone-1"))),
    )
    .await;
    let mut issued = vec![lost["refresh_token"].as_str().unwrap().to_owned()];
    for retried in retries {
        assert_eq!(retried.status(), 200, "a retry within the grace period");
        let pair: Value = retried.json().await.unwrap();
        issued.push(pair["refresh_token"].as_str().unwrap().to_owned());
    }
    // Present each token once (a revoked one is refused without ending the session): exactly
    // one of them still buys a pair.
    let mut live = 0;
    for token in &issued {
        match refresh(&app, token, Some("phone-1"))
            .await
            .status()
            .as_u16()
        {
            200 => live += 1,
            401 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        live,
        1,
        "live refresh tokens among the {} issued",
        issued.len()
    );
}

/// `reused` comes back from phone-1 and is refused as reuse; the session's `latest` pair is dead.
async fn assert_reuse_ends_the_session(
    app: &crate::helpers::TestApp,
    reused: &str,
    latest: &Value,
) {
    error_body(
        refresh(app, reused, Some("phone-1")).await,
        401,
        "refresh_token_reused",
    )
    .await;
    error_body(
        refresh(
            app,
            latest["refresh_token"].as_str().unwrap(),
            Some("phone-1"),
        )
        .await,
        401,
        "refresh_token_invalid",
    )
    .await;
}

/// Past the grace period a second use is reuse (so is one that does not name the phone:
/// `a_refresh_token_rotates_and_its_reuse_revokes_the_whole_session`).
#[tokio::test]
async fn a_late_or_anonymous_second_use_of_a_refresh_token_still_ends_the_session() {
    use fieldproof::db::entities::refresh_token;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let app = spawn_app().await;
    let (first_refresh, second) = rotated_once(&app).await;
    let first_refresh = first_refresh.as_str();
    // The first use was two minutes ago (the grace is 60 s).
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::UsedAt,
            Expr::value(fieldproof::db::now() - time::Duration::minutes(2)),
        )
        .filter(refresh_token::Column::UsedAt.is_not_null())
        .exec(&app.db)
        .await
        .unwrap();
    assert_reuse_ends_the_session(&app, first_refresh, &second).await;
}

#[tokio::test]
async fn a_refresh_token_works_only_on_the_device_it_was_issued_to() {
    let app = spawn_app().await;
    let pair = app.login_pair("rep_a", Some("phone-1")).await;
    let response = refresh(
        &app,
        pair["refresh_token"].as_str().unwrap(),
        Some("phone-2"),
    )
    .await;
    error_body(response, 401, "refresh_token_invalid").await;
}

#[tokio::test]
async fn logout_ends_both_the_access_and_the_refresh_token() {
    let app = spawn_app().await;
    let pair = app.login_pair("rep_a", None).await;
    let access = pair["access_token"].as_str().unwrap();
    let response = app
        .request(Method::POST, "/api/v1/auth/logout", Some(access))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    error_body(app.get("/api/v1/me", access).await, 401, "token_invalid").await;
    error_body(
        refresh(&app, pair["refresh_token"].as_str().unwrap(), None).await,
        401,
        "refresh_token_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_garbage_refresh_token_is_invalid() {
    let app = spawn_app().await;
    error_body(
        refresh(&app, "not-a-token", None).await,
        401,
        "refresh_token_invalid",
    )
    .await;
}
