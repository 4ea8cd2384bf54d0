//! The stage engine through the API: facts in, nodes pass only when the rules say so.

use crate::helpers::{ESIGN_SECRET, TestApp, error_body, spawn_app};
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

struct DealSetup {
    deal: String,
    site: String,
    contacts: Vec<(String, String)>,
}

/// A customer of rep_a with a site and three contacts, and a deal on it worth `value_fen`.
async fn deal_of_rep_a(app: &TestApp, value_fen: i64) -> DealSetup {
    let customer = app.customer_of("rep_a", "杭州恒力机械").await;
    let rep = app.token("rep_a").await;
    let site: Value = app
        .post(
            &format!("/api/v1/customers/{customer}/sites"),
            &rep,
            &json!({"name": "萧山厂区", "lat": 30.2281, "lon": 120.2986}),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut contacts = Vec::new();
    for (name, seniority) in [
        ("张总", "executive"),
        ("王经理", "manager"),
        ("李工", "staff"),
        ("赵某", "unknown"),
    ] {
        let c: Value = app
            .post(
                &format!("/api/v1/customers/{customer}/contacts"),
                &rep,
                &json!({"name": name, "seniority": seniority}),
            )
            .await
            .json()
            .await
            .unwrap();
        contacts.push((c["id"].as_str().unwrap().to_owned(), seniority.to_owned()));
    }
    let response = app
        .post(
            "/api/v1/deals",
            &rep,
            &json!({
                "customer_id": customer,
                "site_id": site["id"],
                "title": "Pump retrofit",
                "presales_id": app.users["presales_east"],
                "products": [{"sku": "CP-200", "name": "离心泵", "quantity": 1, "unit_price_fen": value_fen}]
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let deal: Value = response.json().await.unwrap();
    DealSetup {
        deal: deal["id"].as_str().unwrap().to_owned(),
        site: site["id"].as_str().unwrap().to_owned(),
        contacts,
    }
}

async fn view(app: &TestApp, deal: &str, user: &str) -> Value {
    let token = app.token(user).await;
    app.get(&format!("/api/v1/deals/{deal}"), &token)
        .await
        .json()
        .await
        .unwrap()
}

async fn book_visit(app: &TestApp, setup: &DealSetup) -> reqwest::Response {
    let rep = app.token("rep_a").await;
    app.post(
        &format!("/api/v1/deals/{}/nodes/visit_booked/visit", setup.deal),
        &rep,
        &json!({"site_id": setup.site, "contact_id": setup.contacts[0].0, "starts_at": "2026-11-24T01:00:00Z", "ends_at": "2026-11-24T05:00:00Z"}),
    )
    .await
}

/// The org's first pipeline template version (the default, version 1), as the admin lists it.
pub(crate) async fn first_template(app: &TestApp) -> Value {
    let admin = app.token("admin").await;
    let templates: Value = app
        .get("/api/v1/pipeline-templates", &admin)
        .await
        .json()
        .await
        .unwrap();
    templates[0].clone()
}

/// Move the deal along until `node` is current: supervisor overrides (the one legitimate way
/// past a node whose evidence this test does not produce) and, at the steps no override stands
/// in for, the real proof: the quote approved by the manager and finance, issued, confirmed by
/// the customer through their link, and the contract signed by the e-signature callback.
pub(crate) async fn override_until(app: &TestApp, deal: &str, node: &str) {
    let supervisor = app.token("supervisor_east").await;
    let rep = app.token("rep_a").await;
    // The deal's latest quote revision (the one its quote hash is of).
    let latest_quote = async || {
        let quotes: Vec<Value> = app
            .get(&format!("/api/v1/deals/{deal}/quotes"), &rep)
            .await
            .json()
            .await
            .unwrap();
        quotes.last().expect("a quote")["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for _ in 0..12 {
        let current = view(app, deal, "supervisor_east").await["current_node"]
            .as_str()
            .unwrap()
            .to_owned();
        if current == node {
            return;
        }
        match current.as_str() {
            "price_approved" => {
                crate::quotes::create_quote(app, deal).await;
                crate::quotes::approve_price(app, deal).await;
            }
            "quote_issued" => {
                let r = crate::quotes::issue(app, &app.address, &latest_quote().await).await;
                assert_eq!(r.status(), 200, "issue the quote");
            }
            "quote_confirmed" => {
                let link: Value = app
                    .post(
                        &format!("/api/v1/quotes/{}/link", latest_quote().await),
                        &rep,
                        &json!({}),
                    )
                    .await
                    .json()
                    .await
                    .unwrap();
                let token = link["token"].as_str().expect("a customer link");
                let r = crate::quotes::public(
                    app,
                    Method::POST,
                    &format!("/api/v1/public/quotes/{token}/confirm"),
                    Some(json!({"customer_name": "王建国", "customer_title": "采购经理"})),
                )
                .await;
                assert_eq!(r.status(), 200, "the customer confirms");
            }
            "contract_signed" => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let event = json!({"event_id": format!("evt-{deal}"), "deal_id": deal, "contract_id": "C-1", "status": "signed"});
                let r = signed_request(app, &event, now, ESIGN_SECRET)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "the e-signature callback");
            }
            _ => {
                let r = app
                    .post(
                        &format!("/api/v1/deals/{deal}/nodes/{current}/overrides"),
                        &supervisor,
                        &json!({"reason": "verified on site by phone call"}),
                    )
                    .await;
                assert_eq!(r.status(), 200, "override {current}");
            }
        }
    }
    panic!("never reached {node}");
}

#[tokio::test]
async fn a_new_deal_waits_at_visit_booked_and_a_booked_visit_moves_it_on() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    let before = view(&app, &setup.deal, "rep_a").await;
    assert_eq!(before["current_node"], "visit_booked");
    assert_eq!(before["nodes"].as_array().unwrap().len(), 12);
    assert_eq!(before["nodes"][0]["requirements"][0]["missing"][0], "visit");
    let after: Value = book_visit(&app, &setup).await.json().await.unwrap();
    assert_eq!(after["current_node"], "site_survey");
    assert_eq!(after["nodes"][0]["state"], "passed");
    assert_eq!(after["nodes"][1]["requirements"][0]["kind"], "photo_set");
}

#[tokio::test]
async fn a_fact_for_a_node_that_is_not_current_is_refused() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    let manager = app.token("manager_east").await;
    let r = app
        .post(
            &format!(
                "/api/v1/deals/{}/nodes/price_approved/approvals",
                setup.deal
            ),
            &manager,
            &json!({}),
        )
        .await;
    error_body(r, 409, "node_not_current").await;
    assert_eq!(
        view(&app, &setup.deal, "rep_a").await["current_node"],
        "visit_booked"
    );
}

/// An approval's comment goes into the node record and the audit chain: at most 2000
/// characters, like a reason.
#[tokio::test]
async fn an_approval_comment_over_2000_characters_is_refused() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    let manager = app.token("manager_east").await;
    let r = app
        .post(
            &format!(
                "/api/v1/deals/{}/nodes/price_approved/approvals",
                setup.deal
            ),
            &manager,
            &json!({"comment": "价".repeat(2001)}),
        )
        .await;
    let body = error_body(r, 422, "validation_failed").await;
    assert_eq!(body["details"]["field"], "comment");
}

#[tokio::test]
async fn other_reps_and_other_teams_cannot_see_or_touch_a_deal() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    for user in ["rep_b", "rep_south", "manager_south"] {
        let token = app.token(user).await;
        error_body(
            app.get(&format!("/api/v1/deals/{}", setup.deal), &token)
                .await,
            404,
            "not_found",
        )
        .await;
        let r = app
            .post(
                &format!("/api/v1/deals/{}/nodes/visit_booked/visit", setup.deal),
                &token,
                &json!({"site_id": setup.site, "contact_id": setup.contacts[0].0, "starts_at": "2026-11-24T01:00:00Z", "ends_at": "2026-11-24T05:00:00Z"}),
            )
            .await;
        error_body(r, 404, "not_found").await;
    }
    let presales = app.token("presales_east").await;
    assert_eq!(
        app.get(&format!("/api/v1/deals/{}", setup.deal), &presales)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_decision_chain_needs_each_role_named_by_a_contact_with_known_seniority() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    override_until(&app, &setup.deal, "decision_chain_mapped").await;
    let rep = app.token("rep_a").await;
    let path = format!(
        "/api/v1/deals/{}/nodes/decision_chain_mapped/checklist",
        setup.deal
    );
    let unknown = &setup.contacts[3].0;
    let v: Value = app
        .post(
            &path,
            &rep,
            &json!({"item": "decision_maker", "contact_id": unknown}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["current_node"], "decision_chain_mapped");
    error_body(
        app.post(&path, &rep, &json!({"item": "coffee_maker"}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    for (item, contact) in [
        ("decision_maker", 0),
        ("budget_holder", 1),
        ("technical_evaluator", 2),
    ] {
        app.post(
            &path,
            &rep,
            &json!({"item": item, "contact_id": setup.contacts[contact].0}),
        )
        .await;
    }
    assert_eq!(
        view(&app, &setup.deal, "rep_a").await["current_node"],
        "solution_submitted"
    );
}

/// A manager who owns a deal cannot approve its price: the approval is a second pair of eyes.
/// Before, the owner's own approval counted.
#[tokio::test]
async fn a_manager_cannot_approve_a_deal_they_own() {
    let app = spawn_app().await;
    let customer = app.customer_of("manager_east", "自营客户").await;
    let manager = app.token("manager_east").await;
    let deal: Value = app
        .post(
            "/api/v1/deals",
            &manager,
            &json!({"customer_id": customer, "title": "经理自己的商机"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let deal = deal["id"].as_str().unwrap().to_owned();
    override_until(&app, &deal, "price_approved").await;
    let approve = format!("/api/v1/deals/{deal}/nodes/price_approved/approvals");
    let body = error_body(
        app.post(&approve, &manager, &json!({})).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(body["details"]["reason"], "own_deal");
    let finance = app.token("finance_east").await;
    assert_eq!(app.post(&approve, &finance, &json!({})).await.status(), 200);
    assert_eq!(
        view(&app, &deal, "manager_east").await["current_node"],
        "price_approved"
    );
}

#[tokio::test]
async fn no_override_stands_in_for_the_price_countersign_the_quote_or_the_customers_confirmation() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    let supervisor = app.token("supervisor_east").await;
    let audit_len = async |deal: &str| {
        let events: Vec<Value> = app
            .get(&format!("/api/v1/deals/{deal}/audit"), &supervisor)
            .await
            .json()
            .await
            .unwrap();
        events.len()
    };
    let refused = async |node: &str, missing: &str| {
        let before = audit_len(&setup.deal).await;
        let body = error_body(
            app.post(
                &format!("/api/v1/deals/{}/nodes/{node}/overrides", setup.deal),
                &supervisor,
                &json!({"reason": "the customer agreed on the phone"}),
            )
            .await,
            409,
            "node_not_overridable",
        )
        .await;
        assert_eq!(body["details"]["node"], node);
        assert_eq!(body["details"]["requirements"], json!([missing]));
        assert!(body["message_zh"].as_str().unwrap().contains("会签"));
        assert_eq!(
            view(&app, &setup.deal, "rep_a").await["current_node"],
            node,
            "the step is where it was"
        );
        assert_eq!(
            audit_len(&setup.deal).await,
            before,
            "a refused override is not recorded"
        );
    };
    override_until(&app, &setup.deal, "price_approved").await;
    refused("price_approved", "approval").await;
    override_until(&app, &setup.deal, "quote_issued").await;
    refused("quote_issued", "quote_number").await;
    override_until(&app, &setup.deal, "quote_confirmed").await;
    refused("quote_confirmed", "customer_confirmation").await;
    // A contract stamped on paper: the e-signature step can be overridden (with a reason).
    override_until(&app, &setup.deal, "contract_signed").await;
    let r = app
        .post(
            &format!(
                "/api/v1/deals/{}/nodes/contract_signed/overrides",
                setup.deal
            ),
            &supervisor,
            &json!({"reason": "paper contract stamped with the company seal, scan on file"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        view(&app, &setup.deal, "rep_a").await["current_node"],
        "delivery_handover"
    );
}

#[tokio::test]
async fn a_price_needs_manager_and_finance_and_a_price_edit_voids_their_approval() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    override_until(&app, &setup.deal, "price_approved").await;
    let manager = app.token("manager_east").await;
    let finance = app.token("finance_east").await;
    let rep = app.token("rep_a").await;
    let approve = format!(
        "/api/v1/deals/{}/nodes/price_approved/approvals",
        setup.deal
    );
    error_body(app.post(&approve, &rep, &json!({})).await, 403, "forbidden").await;

    app.post(&approve, &manager, &json!({"comment": "ok"}))
        .await;
    let edited = app
        .patch(
            &format!("/api/v1/deals/{}", setup.deal),
            &rep,
            &json!({"products": [{"sku": "CP-200", "name": "离心泵", "quantity": 1, "unit_price_fen": 4_500_000}]}),
        )
        .await;
    assert_eq!(edited.status(), 200);
    let v: Value = app
        .post(&approve, &finance, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["current_node"], "price_approved",
        "manager's approval was for the old price"
    );
    assert_eq!(
        v["nodes"][6]["requirements"][0]["missing"],
        json!(["approval:manager"])
    );
    let v: Value = app
        .post(&approve, &manager, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["current_node"], "quote_issued");

    // Editing the price after approval sends the deal back to be approved again.
    let v: Value = app
        .patch(
            &format!("/api/v1/deals/{}", setup.deal),
            &rep,
            &json!({"products": [{"sku": "CP-200", "name": "离心泵", "quantity": 2, "unit_price_fen": 4_500_000}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["current_node"], "price_approved");
    assert_eq!(v["nodes"][6]["runs"], 2);
}

#[tokio::test]
async fn a_value_lowered_for_an_override_still_needs_the_second_supervisor() {
    let app = spawn_app().await;
    let big = deal_of_rep_a(&app, 200_000_000).await;
    book_visit(&app, &big).await;
    let rep = app.token("rep_a").await;
    // Below the 1,000,000 CNY threshold for the moment of the override.
    let lowered: Value = app
        .patch(
            &format!("/api/v1/deals/{}", big.deal),
            &rep,
            &json!({"products": [{"sku": "CP-200", "name": "离心泵", "quantity": 1, "unit_price_fen": 1_000_000}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(lowered["expected_value_fen"], 1_000_000);
    let path = format!("/api/v1/deals/{}/nodes/site_survey/overrides", big.deal);
    let first = app.token("supervisor_east").await;
    let v: Value = app
        .post(
            &path,
            &first,
            &json!({"reason": "camera broke, checked by video"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["current_node"], "site_survey",
        "the deal has been worth more than the threshold: one supervisor is not enough"
    );
    let second = app.token("supervisor_east2").await;
    let v: Value = app
        .post(
            &path,
            &second,
            &json!({"reason": "confirmed with the customer"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["current_node"], "pain_points_confirmed");
}

#[tokio::test]
async fn overrides_need_a_reason_a_supervisor_and_above_the_threshold_a_second_one() {
    let app = spawn_app().await;
    let big = deal_of_rep_a(&app, 200_000_000).await;
    book_visit(&app, &big).await;
    let path = format!("/api/v1/deals/{}/nodes/site_survey/overrides", big.deal);
    let rep = app.token("rep_a").await;
    error_body(
        app.post(&path, &rep, &json!({"reason": "trust me please"}))
            .await,
        403,
        "forbidden",
    )
    .await;
    let first = app.token("supervisor_east").await;
    error_body(
        app.post(&path, &first, &json!({"reason": " "})).await,
        422,
        "validation_failed",
    )
    .await;
    let v: Value = app
        .post(
            &path,
            &first,
            &json!({"reason": "camera broke, checked by video"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["current_node"], "site_survey");
    let v: Value = app
        .post(&path, &first, &json!({"reason": "again, same person"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["current_node"], "site_survey",
        "one person cannot be both approvers"
    );
    let second = app.token("supervisor_east2").await;
    let v: Value = app
        .post(
            &path,
            &second,
            &json!({"reason": "confirmed with the customer"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["current_node"], "pain_points_confirmed");
    let audit: Value = app
        .get(&format!("/api/v1/deals/{}/audit", big.deal), &first)
        .await
        .json()
        .await
        .unwrap();
    let passed = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "node_passed" && e["payload"]["node"] == "site_survey")
        .unwrap();
    assert_eq!(passed["payload"]["by_override"], true);
}

#[tokio::test]
async fn a_return_is_counted_on_the_node_and_only_leads_and_approvers_may_return() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    book_visit(&app, &setup).await;
    let rep = app.token("rep_a").await;
    let path = format!("/api/v1/deals/{}/returns", setup.deal);
    error_body(
        app.post(&path, &rep, &json!({"reason": "redo please"}))
            .await,
        403,
        "forbidden",
    )
    .await;
    let manager = app.token("manager_east").await;
    let v: Value = app
        .post(
            &path,
            &manager,
            &json!({"reason": "wrong contact booked", "to_node": "visit_booked"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["current_node"], "visit_booked");
    assert_eq!(v["nodes"][0]["runs"], 2);
    assert_eq!(v["nodes"][1]["returns"], 1);
    error_body(
        app.post(
            &path,
            &manager,
            &json!({"reason": "forward?", "to_node": "contract_signed"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
}

fn signed_request(
    app: &TestApp,
    body: &Value,
    timestamp: i64,
    secret: &str,
) -> reqwest::RequestBuilder {
    let raw = body.to_string();
    let signature =
        fieldproof::routes::integrations::sign(secret.as_bytes(), timestamp, raw.as_bytes());
    app.request(Method::POST, "/api/v1/integrations/esign", None)
        .header("content-type", "application/json")
        .header("x-fieldproof-timestamp", timestamp.to_string())
        .header("x-fieldproof-signature", signature)
        .body(raw)
}

#[tokio::test]
async fn only_a_fresh_correctly_signed_callback_signs_the_contract_and_only_once() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    override_until(&app, &setup.deal, "contract_signed").await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let event = json!({"event_id": "evt-1", "deal_id": setup.deal, "contract_id": "C-9", "status": "signed"});
    let unsigned = app
        .request(Method::POST, "/api/v1/integrations/esign", None)
        .json(&event)
        .send()
        .await
        .unwrap();
    error_body(unsigned, 401, "signature_invalid").await;
    error_body(
        signed_request(&app, &event, now, "wrong-secret")
            .send()
            .await
            .unwrap(),
        401,
        "signature_invalid",
    )
    .await;
    error_body(
        signed_request(&app, &event, now - 3600, ESIGN_SECRET)
            .send()
            .await
            .unwrap(),
        401,
        "signature_invalid",
    )
    .await;
    assert_eq!(
        view(&app, &setup.deal, "rep_a").await["current_node"],
        "contract_signed"
    );

    let ok = signed_request(&app, &event, now, ESIGN_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        view(&app, &setup.deal, "rep_a").await["current_node"],
        "delivery_handover"
    );
    // The same event again is a replay, even correctly signed.
    let replay = signed_request(&app, &event, now, ESIGN_SECRET)
        .send()
        .await
        .unwrap();
    assert!(
        replay.status() == 409 || replay.status() == 404,
        "{}",
        replay.status()
    );
}

#[tokio::test]
async fn the_audit_chain_verifies_and_a_tampered_row_is_found() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    book_visit(&app, &setup).await;
    let rep = app.token("rep_a").await;
    let check: Value = app
        .get(&format!("/api/v1/deals/{}/audit/verify", setup.deal), &rep)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check["intact"], true);
    let events = check["events"].as_i64().unwrap();
    assert!(events >= 4, "{check}");
    app.db
        .execute_unprepared(&format!(
            "UPDATE audit_events SET payload = '{{\"node\":\"forged\"}}' WHERE deal_id = '{}' AND seq = 2",
            setup.deal
        ))
        .await
        .unwrap();
    let check: Value = app
        .get(&format!("/api/v1/deals/{}/audit/verify", setup.deal), &rep)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check["intact"], false);
    assert_eq!(check["first_broken"]["seq"], 2);
    assert_eq!(check["first_broken"]["reason"], "hash_mismatch");
}

#[tokio::test]
async fn a_template_edit_is_a_new_version_and_running_deals_keep_theirs() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    let admin = app.token("admin").await;
    let v1 = first_template(&app).await;
    assert_eq!(v1["version"], 1);
    let mut definition = v1["definition"].clone();
    definition["nodes"].as_array_mut().unwrap().remove(2);
    let body = json!({"based_on": v1["id"], "definition": definition});
    let rep = app.token("rep_a").await;
    error_body(
        app.post("/api/v1/pipeline-templates", &rep, &body).await,
        403,
        "forbidden",
    )
    .await;
    let created: Value = app
        .post("/api/v1/pipeline-templates", &admin, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["version"], 2);
    assert_eq!(created["definition"]["nodes"].as_array().unwrap().len(), 11);
    let old = view(&app, &setup.deal, "rep_a").await;
    assert_eq!(old["template_version"], 1);
    assert_eq!(old["nodes"].as_array().unwrap().len(), 12);
    let mut hollow = v1["definition"].clone();
    hollow["nodes"][0]["requirements"] = json!([]);
    let r = app
        .post(
            "/api/v1/pipeline-templates",
            &admin,
            &json!({"definition": hollow}),
        )
        .await;
    let body = error_body(r, 422, "validation_failed").await;
    assert!(
        body["message"].as_str().unwrap().contains("visit_booked"),
        "{body}"
    );
}

#[tokio::test]
async fn activities_are_logged_on_a_deal() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    let rep = app.token("rep_a").await;
    let path = format!("/api/v1/deals/{}/activities", setup.deal);
    let r = app.post(&path, &rep, &json!({"channel": "call", "summary": "约了周三上午拜访", "occurred_at": "2026-11-23T02:00:00Z"})).await;
    assert_eq!(r.status(), 201);
    error_body(
        app.post(
            &path,
            &rep,
            &json!({"channel": "fax", "summary": "x", "occurred_at": "2026-11-23T02:00:00Z"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let list: Value = app.get(&path, &rep).await.json().await.unwrap();
    assert_eq!(list[0]["summary"], "约了周三上午拜访");
}

/// Activities come with the phone's offset; they are kept on UTC, so the newest is first
/// whatever offset each was sent in, and one dated ahead of the clock is refused. Before, on
/// SQLite, 09:00 +08:00 (01:00 UTC) was listed above 02:00 UTC, and a 2099 date headed every
/// digest.
#[tokio::test]
async fn activities_in_any_offset_are_listed_newest_first_and_none_from_the_future() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    let rep = app.token("rep_a").await;
    let path = format!("/api/v1/deals/{}/activities", setup.deal);
    for (summary, at) in [
        ("at 01:00 UTC", "2026-11-23T09:00:00+08:00"),
        ("at 02:00 UTC", "2026-11-23T02:00:00Z"),
        ("at 00:30 UTC", "2026-11-23T08:30:00.5+08:00"),
    ] {
        let r = app
            .post(
                &path,
                &rep,
                &json!({"channel": "call", "summary": summary, "occurred_at": at}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let list: Value = app.get(&path, &rep).await.json().await.unwrap();
    let order: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["summary"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["at 02:00 UTC", "at 01:00 UTC", "at 00:30 UTC"]);
    assert_eq!(list[1]["occurred_at"], "2026-11-23T01:00:00Z");
    let body = error_body(
        app.post(
            &path,
            &rep,
            &json!({"channel": "note", "summary": "later", "occurred_at": "2099-01-01T00:00:00Z"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["details"]["field"], "occurred_at");
}

#[tokio::test]
async fn the_heatmap_counts_runs_per_rep_and_node_for_the_team_lead() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    book_visit(&app, &setup).await;
    let manager = app.token("manager_east").await;
    app.post(
        &format!("/api/v1/deals/{}/returns", setup.deal),
        &manager,
        &json!({"reason": "blurry photos"}),
    )
    .await;
    let now = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8));
    let (year, week, _) = now.to_iso_week_date();
    let path = format!(
        "/api/v1/reports/heatmap?team_id={}&week={year}-W{week:02}",
        app.teams[0]
    );
    let map: Value = app.get(&path, &manager).await.json().await.unwrap();
    let cells = map["cells"].as_array().unwrap();
    let visit = cells.iter().find(|c| c["node"] == "visit_booked").unwrap();
    assert_eq!(visit["rep_id"], app.users["rep_a"].as_str());
    assert_eq!(
        (visit["entered"].as_u64(), visit["completed"].as_u64()),
        (Some(1), Some(1))
    );
    let survey = cells.iter().find(|c| c["node"] == "site_survey").unwrap();
    assert_eq!(
        (survey["entered"].as_u64(), survey["returns"].as_u64()),
        (Some(2), Some(1))
    );
    let csv = app
        .get(&format!("{path}&format=csv"), &manager)
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("rep_id,node,entered,completed"));
    assert_eq!(csv.lines().count(), cells.len() + 1);
    let rep = app.token("rep_a").await;
    error_body(app.get(&path, &rep).await, 404, "not_found").await;
    let south = app.token("manager_south").await;
    error_body(app.get(&path, &south).await, 404, "not_found").await;
}

#[tokio::test]
async fn a_run_entered_early_on_monday_china_time_counts_in_that_week_on_every_backend() {
    // Monday 2026-03-02 03:00 +08:00 is still Sunday in UTC (19:00), the way it is stored.
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    let entered = time::macros::datetime!(2026-03-01 19:00 UTC);
    app.db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            app.db.get_database_backend(),
            match app.db.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => {
                    "UPDATE node_runs SET entered_at = $1 WHERE deal_id = $2"
                }
                _ => "UPDATE node_runs SET entered_at = ? WHERE deal_id = ?",
            },
            [entered.into(), setup.deal.clone().into()],
        ))
        .await
        .unwrap();
    let manager = app.token("manager_east").await;
    let entered_in = |week: &'static str| {
        let path = format!(
            "/api/v1/reports/heatmap?team_id={}&week={week}",
            app.teams[0]
        );
        let (app, manager) = (&app, &manager);
        async move {
            let map: Value = app.get(&path, manager).await.json().await.unwrap();
            map["cells"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["entered"].as_u64().unwrap())
                .sum::<u64>()
        }
    };
    assert_eq!(entered_in("2026-W10").await, 1);
    assert_eq!(entered_in("2026-W09").await, 0);
}

#[tokio::test]
async fn after_a_return_the_visit_booked_again_is_the_one_that_counts() {
    let app = spawn_app().await;
    let setup = deal_of_rep_a(&app, 5_000_000).await;
    book_visit(&app, &setup).await;
    let manager = app.token("manager_east").await;
    let returned = app
        .post(
            &format!("/api/v1/deals/{}/returns", setup.deal),
            &manager,
            &json!({"reason": "wrong contact booked", "to_node": "visit_booked"}),
        )
        .await;
    assert_eq!(returned.status(), 200);
    let rep = app.token("rep_a").await;
    let again: Value = app
        .post(
            &format!("/api/v1/deals/{}/nodes/visit_booked/visit", setup.deal),
            &rep,
            &json!({"site_id": setup.site, "contact_id": setup.contacts[1].0, "starts_at": "2026-11-25T06:00:00Z", "ends_at": "2026-11-25T08:00:00Z"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["current_node"], "site_survey");
    let shown = view(&app, &setup.deal, "rep_a").await;
    assert_eq!(shown["visit"]["contact_id"], setup.contacts[1].0.as_str());
    assert_eq!(shown["visit"]["starts_at"], "2026-11-25T06:00:00Z");
    assert_eq!(shown["visit"]["ends_at"], "2026-11-25T08:00:00Z");
}
