//! Stall alarms: with the clock pushed past the limit, two instances scanning at once send each
//! alarm exactly once, to the rep, the team's manager and the deal's presales.

use crate::helpers::spawn_app_with;
use fieldproof::jobs::stalls;
use serde_json::{Value, json};

#[tokio::test]
async fn two_instances_send_each_stall_alarm_exactly_once() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let rep = app.token("rep_a").await;
    let mut deals = Vec::new();
    for i in 0..3 {
        let customer = app.customer_of("rep_a", &format!("Stalled Co {i}")).await;
        let deal: Value = app
            .post("/api/v1/deals", &rep, &json!({"customer_id": customer, "title": format!("Deal {i}"), "presales_id": app.users["presales_east"]}))
            .await
            .json()
            .await
            .unwrap();
        app.post(&format!("/api/v1/deals/{}/activities", deal["id"].as_str().unwrap()), &rep, &json!({"channel": "call", "summary": format!("called about deal {i}"), "occurred_at": "2026-11-20T02:00:00Z"}))
            .await;
        deals.push(deal["id"].as_str().unwrap().to_owned());
    }
    let first = app.connect_again().await;
    let second = app.connect_again().await;

    // Nothing is stalled yet.
    assert_eq!(
        stalls::scan(&first, time::OffsetDateTime::now_utc())
            .await
            .unwrap(),
        0
    );

    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(73);
    let (a, b) = tokio::join!(stalls::scan(&first, later), stalls::scan(&second, later));
    assert_eq!(
        a.unwrap() + b.unwrap(),
        3,
        "each of the three stalls alarms once in total"
    );
    let (a, b) = tokio::join!(stalls::scan(&first, later), stalls::scan(&second, later));
    assert_eq!(a.unwrap() + b.unwrap(), 0, "and never again");

    for user in ["rep_a", "manager_east", "presales_east"] {
        let token = app.token(user).await;
        let inbox: Value = app
            .get("/api/v1/notifications", &token)
            .await
            .json()
            .await
            .unwrap();
        let alarms: Vec<&Value> = inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "stall_alarm")
            .collect();
        assert_eq!(alarms.len(), 3, "{user}: {inbox}");
        // The step by its name, as the rep knows it.
        assert!(
            alarms.iter().all(
                |n| n["title_zh"].as_str().unwrap().contains("已在预约拜访停留")
                    && n["title_en"]
                        .as_str()
                        .unwrap()
                        .contains("at Visit booked for")
            ),
            "{inbox}"
        );
        assert!(
            alarms
                .iter()
                .any(|n| n["body_en"].as_str().unwrap().contains("called about deal")),
            "{inbox}"
        );
    }
    let outsider = app.token("rep_b").await;
    let inbox: Value = app
        .get("/api/v1/notifications", &outsider)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_node_that_moves_on_in_time_raises_no_alarm() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let rep = app.token("rep_a").await;
    let customer = app.customer_of("rep_a", "Quick Co").await;
    let deal: Value = app
        .post(
            "/api/v1/deals",
            &rep,
            &json!({"customer_id": customer, "title": "fast"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let manager = app.token("manager_east").await;
    // Returning the node closes its run and opens a fresh one: only the fresh one can stall.
    app.post(
        &format!("/api/v1/deals/{}/returns", deal["id"].as_str().unwrap()),
        &manager,
        &json!({"reason": "start over"}),
    )
    .await;
    let conn = app.connect_again().await;
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(73);
    assert_eq!(stalls::scan(&conn, later).await.unwrap(), 1);
}

/// A pass works through the runs it listed as stalled; one that moved on meanwhile (here: its
/// node was returned, which closes the run) raises no alarm. Before, the alarm went out for a
/// node the deal had already left.
#[tokio::test]
async fn a_run_that_moves_on_after_the_scan_listed_it_raises_no_alarm() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let rep = app.token("rep_a").await;
    let customer = app.customer_of("rep_a", "Listed Co").await;
    let deal: Value = app
        .post(
            "/api/v1/deals",
            &rep,
            &json!({"customer_id": customer, "title": "listed"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let conn = app.connect_again().await;
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(73);
    let listed = fieldproof::db::deals::stalled_runs(&conn, later, 200)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let manager = app.token("manager_east").await;
    let returned = app
        .post(
            &format!("/api/v1/deals/{}/returns", deal["id"].as_str().unwrap()),
            &manager,
            &json!({"reason": "start over"}),
        )
        .await;
    assert!(returned.status().is_success(), "{}", returned.status());
    assert!(!stalls::alarm(&conn, &listed[0], later).await.unwrap());
    let inbox: Value = app
        .get("/api/v1/notifications", &rep)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "stall_alarm"),
        "{inbox}"
    );
    // The run the return opened stalls in its turn, and alarms once.
    assert_eq!(stalls::scan(&conn, later).await.unwrap(), 1);
}
