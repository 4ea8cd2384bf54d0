//! Object-level scoping of customers, contacts and sites.

use crate::helpers::{error_body, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn a_rep_cannot_read_another_reps_customer() {
    let app = spawn_app().await;
    let theirs = app.customer_of("rep_b", "杭州某某机械").await;
    let me = app.token("rep_a").await;
    for path in [
        format!("/api/v1/customers/{theirs}"),
        format!("/api/v1/customers/{theirs}/contacts"),
        format!("/api/v1/customers/{theirs}/sites"),
    ] {
        error_body(app.get(&path, &me).await, 404, "not_found").await;
    }
    let list: Value = app
        .get("/api/v1/customers", &me)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_rep_cannot_change_another_reps_customer() {
    let app = spawn_app().await;
    let theirs = app.customer_of("rep_b", "杭州某某机械").await;
    let me = app.token("rep_a").await;
    let path = format!("/api/v1/customers/{theirs}");
    error_body(
        app.patch(&path, &me, &json!({"name": "mine now"})).await,
        404,
        "not_found",
    )
    .await;
    error_body(
        app.post(
            &format!("{path}/sites"),
            &me,
            &json!({"name": "x", "lat": 30.0, "lon": 120.0}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    error_body(
        app.post(
            &format!("{path}/shares"),
            &me,
            &json!({"user_id": app.users["rep_a"]}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let owner = app.token("rep_b").await;
    let unchanged: Value = app.get(&path, &owner).await.json().await.unwrap();
    assert_eq!(unchanged["name"], "杭州某某机械");
}

#[tokio::test]
async fn a_manager_sees_their_team_and_not_the_other_team() {
    let app = spawn_app().await;
    let east = app.customer_of("rep_a", "East customer").await;
    let south = app.customer_of("rep_south", "South customer").await;
    let manager = app.token("manager_east").await;
    assert_eq!(
        app.get(&format!("/api/v1/customers/{east}"), &manager)
            .await
            .status(),
        200
    );
    error_body(
        app.get(&format!("/api/v1/customers/{south}"), &manager)
            .await,
        404,
        "not_found",
    )
    .await;
    let patched = app
        .patch(
            &format!("/api/v1/customers/{east}"),
            &manager,
            &json!({"tags": ["key_account"]}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let admin = app.token("admin").await;
    let all: Value = app
        .get("/api/v1/customers", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_shared_customer_is_readable_but_not_editable() {
    let app = spawn_app().await;
    let customer = app.customer_of("rep_b", "Shared Co").await;
    let owner = app.token("rep_b").await;
    let share = app
        .post(
            &format!("/api/v1/customers/{customer}/shares"),
            &owner,
            &json!({"user_id": app.users["rep_a"]}),
        )
        .await;
    assert_eq!(share.status(), 204);
    let reader = app.token("rep_a").await;
    assert_eq!(
        app.get(&format!("/api/v1/customers/{customer}"), &reader)
            .await
            .status(),
        200
    );
    error_body(
        app.patch(
            &format!("/api/v1/customers/{customer}"),
            &reader,
            &json!({"name": "x"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn sites_keep_their_coordinate_system_and_bad_points_are_refused() {
    let app = spawn_app().await;
    let customer = app.customer_of("rep_a", "深圳华南电子").await;
    let rep = app.token("rep_a").await;
    let path = format!("/api/v1/customers/{customer}/sites");
    let created = app
        .post(&path, &rep, &json!({"name": "宝安工厂", "lat": 22.6706, "lon": 113.8212, "crs": "gcj02", "radius_m": 250}))
        .await;
    assert_eq!(created.status(), 201);
    let sites: Value = app.get(&path, &rep).await.json().await.unwrap();
    assert_eq!(sites[0]["crs"], "gcj02");
    assert_eq!(sites[0]["lat"], 22.6706);
    assert_eq!(sites[0]["radius_m"], 250.0);
    let body = error_body(
        app.post(
            &path,
            &rep,
            &json!({"name": "x", "lat": 213.0, "lon": 120.0}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["details"]["field"], "location");
    error_body(
        app.post(
            &path,
            &rep,
            &json!({"name": "x", "lat": 30.0, "lon": 120.0, "crs": "utm"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn contacts_carry_a_parsed_seniority() {
    let app = spawn_app().await;
    let customer = app.customer_of("rep_a", "Contact Co").await;
    let rep = app.token("rep_a").await;
    let path = format!("/api/v1/customers/{customer}/contacts");
    let ok = app
        .post(
            &path,
            &rep,
            &json!({"name": "张总", "title": "总经理", "seniority": "executive"}),
        )
        .await;
    assert_eq!(ok.status(), 201);
    error_body(
        app.post(&path, &rep, &json!({"name": "李工", "seniority": "boss"}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    let contacts: Value = app.get(&path, &rep).await.json().await.unwrap();
    assert_eq!(contacts.as_array().unwrap().len(), 1);
    assert_eq!(contacts[0]["seniority"], "executive");
}

#[tokio::test]
async fn customer_lists_page_with_a_cursor() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.customer_of("rep_a", &format!("Customer {i}")).await;
    }
    let rep = app.token("rep_a").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/customers?limit=2&cursor={c}"),
            None => "/api/v1/customers?limit=2".to_owned(),
        };
        let page: Value = app.get(&path, &rep).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("Customer {i}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn only_admins_create_users_and_usernames_are_unique() {
    let app = spawn_app().await;
    let body = json!({"username": "rep_new", "password": crate::helpers::PASSWORD, "role": "rep", "team_id": app.teams[0]});
    let rep = app.token("rep_a").await;
    error_body(
        app.post("/api/v1/users", &rep, &body).await,
        403,
        "forbidden",
    )
    .await;
    let admin = app.token("admin").await;
    assert_eq!(app.post("/api/v1/users", &admin, &body).await.status(), 201);
    error_body(
        app.post("/api/v1/users", &admin, &body).await,
        409,
        "username_taken",
    )
    .await;
    let weak = json!({"username": "rep_weak", "password": "short", "role": "rep"});
    error_body(
        app.post("/api/v1/users", &admin, &weak).await,
        422,
        "validation_failed",
    )
    .await;
    app.login_pair("rep_new", None).await;
}

#[tokio::test]
async fn a_rep_sees_their_team_but_not_other_teams_users() {
    let app = spawn_app().await;
    let rep = app.token("rep_a").await;
    assert_eq!(
        app.get(&format!("/api/v1/users/{}", app.users["rep_b"]), &rep)
            .await
            .status(),
        200
    );
    error_body(
        app.get(&format!("/api/v1/users/{}", app.users["rep_south"]), &rep)
            .await,
        404,
        "not_found",
    )
    .await;
    let profile = json!({"regions": ["浙江"], "product_expertise": ["pumps"], "capacity": 10, "available": true});
    let path = format!("/api/v1/users/{}/rep-profile", app.users["rep_a"]);
    error_body(
        app.request(reqwest::Method::PUT, &path, Some(&rep))
            .json(&profile)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let manager = app.token("manager_east").await;
    let put = app
        .request(reqwest::Method::PUT, &path, Some(&manager))
        .json(&profile)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let read: Value = app.get(&path, &rep).await.json().await.unwrap();
    assert_eq!(read["regions"][0], "浙江");
}
