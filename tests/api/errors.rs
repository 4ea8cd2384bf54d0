//! Every failure, including the ones actix produces before a handler runs, has the catalogue body.

use crate::helpers::{error_body, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_json_gets_the_catalogue_body() {
    let app = spawn_app().await;
    let rep = app.token("rep_a").await;
    let response = app
        .request(Method::POST, "/api/v1/customers", Some(&rep))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    error_body(response, 400, "invalid_json").await;
    let wrong_type = app
        .post(
            "/api/v1/customers",
            &rep,
            &json!({"name": "x", "industry": "y", "annual_purchase_fen": "lots"}),
        )
        .await;
    error_body(wrong_type, 400, "invalid_json").await;
}

#[tokio::test]
async fn a_query_parameter_of_the_wrong_type_gets_the_catalogue_body() {
    let app = spawn_app().await;
    let rep = app.token("rep_a").await;
    error_body(
        app.get("/api/v1/customers?limit=abc", &rep).await,
        400,
        "invalid_query",
    )
    .await;
    error_body(
        app.get("/api/v1/customers?limit=100000", &rep).await,
        400,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_route_gets_the_catalogue_body() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/api/v1/no-such-thing", None)
        .send()
        .await
        .unwrap();
    error_body(response, 404, "route_not_found").await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_payload_too_large() {
    let app = spawn_app().await;
    let rep = app.token("rep_a").await;
    let huge = "x".repeat(400 * 1024);
    let response = app
        .request(Method::POST, "/api/v1/customers", Some(&rep))
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    error_body(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_an_unsupported_media_type() {
    let app = spawn_app().await;
    let rep = app.token("rep_a").await;
    let response = app
        .request(Method::POST, "/api/v1/customers", Some(&rep))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    error_body(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn invalid_values_name_the_field_in_both_languages() {
    let app = spawn_app().await;
    let rep = app.token("rep_a").await;
    let response = app
        .post(
            "/api/v1/customers",
            &rep,
            &json!({"name": "  ", "industry": "x", "annual_purchase_fen": 1}),
        )
        .await;
    let body = error_body(response, 422, "validation_failed").await;
    assert_eq!(body["details"]["field"], "name");
    let negative = app
        .post(
            "/api/v1/customers",
            &rep,
            &json!({"name": "A", "industry": "x", "annual_purchase_fen": -5}),
        )
        .await;
    let body = error_body(negative, 422, "validation_failed").await;
    assert_eq!(body["details"]["field"], "annual_purchase_fen");
    assert!(body["message_zh"].as_str().unwrap().contains("金额"));
}
