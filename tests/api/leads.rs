//! Lead distribution end to end: rules and their validation, assignment with its explanation,
//! protection (404 for other reps, logged), dedup to the existing owner, expiry exactly once
//! across instances, claims, CSV import (GB18030 with Chinese headers and bad rows), the public
//! capture endpoint, what-if replay, health figures and concurrent intake on two instances.

use crate::helpers::{
    TestApp, error_body, query_plan, spawn_app_with, statement_plan, steps_back_to,
};
use fieldproof::services::leads::{self, protection};
use reqwest::Method;
use serde_json::{Value, json};

/// `batch` decided directly, reading the rep loads as the dispatcher does: from other
/// connections on PostgreSQL (the test pool), in the transaction on SQLite.
async fn decide_directly(
    app: &TestApp,
    batch: Vec<leads::dispatch::Prepared>,
) -> Vec<leads::dispatch::Done> {
    use sea_orm::DbBackend;
    let loads_from = (app.db.get_database_backend() == DbBackend::Postgres).then_some(&app.db);
    leads::dispatch::decide_batch(&app.db, loads_from, &Default::default(), &app.org_id, batch)
        .await
        .unwrap()
}

async fn profile(app: &TestApp, user: &str, capacity: i32, regions: &[&str], available: bool) {
    let admin = app.token("admin").await;
    let response = app
        .request(Method::PUT, &format!("/api/v1/users/{}/rep-profile", app.users[user]), Some(&admin))
        .json(&json!({"regions": regions, "product_expertise": ["pumps"], "capacity": capacity, "available": available}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "profile of {user}");
}

pub(crate) async fn three_reps(app: &TestApp) {
    profile(app, "rep_a", 10, &["浙江"], true).await;
    profile(app, "rep_b", 10, &["浙江"], true).await;
    profile(app, "rep_south", 10, &["广东"], true).await;
}

/// A lead of its own company with no phone (a shared phone would route every lead to the
/// first one's owner: that is dedup doing its job).
pub(crate) fn lead_body(company: &str) -> Value {
    json!({"company": company, "contact_name": "王工", "contact_title": "采购经理",
           "industry": "制造业", "source": "website", "annual_purchase_fen": 90_000_000, "province": "浙江省", "city": "杭州"})
}

pub(crate) async fn create_lead(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = app.post("/api/v1/leads", token, body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Save `rules` as `token`'s org's rule set; it must be accepted as a new version.
async fn save_rules(app: &TestApp, token: &str, rules: Value) {
    let saved = app
        .request(Method::PUT, "/api/v1/lead-rules", Some(token))
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 201);
}

/// Three reps, a rule set that gives every lead to the East team (saved by `user`), and `n` leads
/// `user` typed in (companies `{prefix}{i}号公司`), as created.
pub(crate) async fn east_leads(app: &TestApp, user: &str, prefix: &str, n: usize) -> Vec<Value> {
    three_reps(app).await;
    let token = app.token(user).await;
    let rules = app
        .request(Method::PUT, "/api/v1/lead-rules", Some(&token))
        .json(&json!({"layers": [{"name": "east", "conditions": [{"field": "rep_team", "in": ["East"]}]}]}))
        .send()
        .await
        .unwrap();
    assert!(rules.status().is_success(), "rules: {}", rules.status());
    let mut leads = Vec::new();
    for i in 0..n {
        leads.push(create_lead(app, &token, &lead_body(&format!("{prefix}{i}号公司"))).await);
    }
    leads
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[tokio::test]
async fn rule_sets_are_validated_with_every_error_and_saved_as_versions() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let manager = app.token("manager_east").await;
    let bad = json!({"layers": [
        {"name": "a", "conditions": [{"field": "industry", "in": ["bakery"]}, {"field": "rep_team", "in": ["Nowhere"]}]},
        {"name": "", "conditions": [{"field": "annual_purchase_fen"}]}
    ]});
    let response = app
        .request(Method::PUT, "/api/v1/lead-rules", Some(&manager))
        .json(&bad)
        .send()
        .await
        .unwrap();
    let body = error_body(response, 422, "rule_set_invalid").await;
    let paths: Vec<&str> = body["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["path"]))
        .collect();
    assert_eq!(
        paths,
        [
            "layers[0].conditions[0]",
            "layers[0].conditions[1]",
            "layers[1].name",
            "layers[1].conditions[0]"
        ]
    );

    // The four layers of the issue (team names are this org's).
    let four = json!({"protection_hours": 24, "layers": [
        {"name": "website manufacturing", "conditions": [{"field": "source", "in": ["website"]}, {"field": "industry", "in": ["manufacturing"]}]},
        {"name": "large accounts", "conditions": [{"field": "annual_purchase_fen", "at_least": 80_000_000}]},
        {"name": "east key accounts", "conditions": [{"field": "rep_team", "in": ["East"]}]},
        {"name": "reps with room", "conditions": [{"field": "rep_pending_leads", "below": 5}]}
    ]});
    let response = app
        .request(Method::PUT, "/api/v1/lead-rules", Some(&manager))
        .json(&four)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let saved: Value = response.json().await.unwrap();
    assert_eq!(saved["version"], 1);
    let response = app
        .request(Method::PUT, "/api/v1/lead-rules", Some(&manager))
        .json(&four)
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["version"], 2);
    let rep = app.token("rep_a").await;
    let current: Value = app
        .get("/api/v1/lead-rules", &rep)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["version"], 2);
    assert_eq!(current["rules"]["layers"].as_array().unwrap().len(), 4);
    let response = app
        .request(Method::PUT, "/api/v1/lead-rules", Some(&rep))
        .json(&four)
        .send()
        .await
        .unwrap();
    error_body(response, 403, "forbidden").await;
}

#[tokio::test]
async fn a_lead_goes_to_the_least_loaded_qualified_rep_and_the_decision_explains_why() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    let manager = app.token("manager_east").await;
    let rules = json!({"layers": [
        {"name": "zhejiang", "conditions": [{"field": "province", "in": ["浙江"]}, {"field": "rep_covers_lead_region"}]},
        {"name": "everyone", "conditions": []}
    ]});
    app.request(Method::PUT, "/api/v1/lead-rules", Some(&manager))
        .json(&rules)
        .send()
        .await
        .unwrap();

    let first = create_lead(&app, &manager, &lead_body("杭州甲机械有限公司")).await;
    let second = create_lead(&app, &manager, &lead_body("杭州乙机械有限公司")).await;
    let owners = [
        s(&first["owner_id"]).to_owned(),
        s(&second["owner_id"]).to_owned(),
    ];
    // Both in Zhejiang; the second goes to the other Zhejiang rep (lower load), never to the south.
    let mut expected = [app.users["rep_a"].clone(), app.users["rep_b"].clone()];
    let mut got = owners.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(first["assigned_by"], "rule");
    assert_eq!(first["status"], "assigned");
    assert!(first["protection_ends_at"].is_string());

    let owner_name = if owners[0] == app.users["rep_a"] {
        "rep_a"
    } else {
        "rep_b"
    };
    let owner = app.token(owner_name).await;
    let explained: Value = app
        .get(
            &format!("/api/v1/leads/{}/explain", s(&first["id"])),
            &owner,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(explained["rep"]["verdict"], "chosen", "{explained}");
    assert_eq!(explained["rule_set_version"], 1);
    assert_eq!(explained["layers"][0]["name"], "zhejiang");
    assert!(s(&explained["summary_zh"]).contains("zhejiang"));
    let why_not: Value = app
        .get(
            &format!(
                "/api/v1/leads/{}/explain?rep_id={}",
                s(&first["id"]),
                app.users["rep_south"]
            ),
            &manager,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(why_not["rep"]["verdict"], "excluded", "{why_not}");
    assert_eq!(why_not["rep"]["reason"]["field"], "rep_covers_lead_region");

    // The owner was told, with a background summary.
    let inbox: Value = app
        .get("/api/v1/notifications", &owner)
        .await
        .json()
        .await
        .unwrap();
    let notice = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "lead_assigned")
        .expect("lead_assigned notice");
    assert!(s(&notice["body_zh"]).contains("预估年采购额"), "{notice}");
}

#[tokio::test]
async fn a_protected_lead_is_not_found_for_other_reps_and_their_attempts_are_logged() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 10, &["浙江"], true).await;
    let manager = app.token("manager_east").await;
    let lead = create_lead(&app, &manager, &lead_body("杭州丙机械有限公司")).await;
    assert_eq!(lead["owner_id"], app.users["rep_a"]);
    let id = s(&lead["id"]);

    let other = app.token("rep_b").await;
    error_body(
        app.get(&format!("/api/v1/leads/{id}"), &other).await,
        404,
        "not_found",
    )
    .await;
    error_body(
        app.patch(
            &format!("/api/v1/leads/{id}"),
            &other,
            &json!({"notes": "mine now"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    error_body(
        app.post(
            &format!("/api/v1/leads/{id}/activities"),
            &other,
            &json!({"channel": "call", "summary": "x"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    error_body(
        app.post(&format!("/api/v1/leads/{id}/claim"), &other, &json!({}))
            .await,
        404,
        "not_found",
    )
    .await;
    let listed: Value = app.get("/api/v1/leads", &other).await.json().await.unwrap();
    assert!(listed["items"].as_array().unwrap().is_empty());
    // Not even a rep of another team, or presales.
    let south = app.token("rep_south").await;
    error_body(
        app.get(&format!("/api/v1/leads/{id}"), &south).await,
        404,
        "not_found",
    )
    .await;

    let owner = app.token("rep_a").await;
    assert_eq!(
        app.get(&format!("/api/v1/leads/{id}"), &owner)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get(&format!("/api/v1/leads/{id}"), &manager)
            .await
            .status(),
        200
    );
    let south_manager = app.token("manager_south").await;
    error_body(
        app.get(&format!("/api/v1/leads/{id}"), &south_manager)
            .await,
        404,
        "not_found",
    )
    .await;

    let attempts: Value = app
        .get(&format!("/api/v1/leads/{id}/access-attempts"), &manager)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = attempts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| s(&a["action"]))
        .collect();
    assert_eq!(
        actions,
        ["read", "write", "write", "claim", "read", "read"],
        "{attempts}"
    );
}

#[tokio::test]
async fn a_lead_for_an_owned_customer_goes_to_the_owner_whatever_the_spelling() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    let customer = app.customer_of("rep_south", "杭州丁机械有限公司").await;
    let manager = app.token("manager_east").await;
    let admin = app.token("admin").await;
    // Full-width brackets, (中国), spaces: the same company.
    let lead = create_lead(&app, &admin, &lead_body("杭州丁机械 （中国） 股份有限公司")).await;
    assert_eq!(lead["owner_id"], app.users["rep_south"], "{lead}");
    assert_eq!(lead["assigned_by"], "existing_owner");
    assert_eq!(lead["customer_id"], customer.as_str());

    // By phone: a contact of an owned customer.
    let south = app.token("rep_south").await;
    let other_customer = app.customer_of("rep_south", "宁波某电子").await;
    let response = app
        .post(&format!("/api/v1/customers/{other_customer}/contacts"), &south, &json!({"name": "李总", "title": "总经理", "seniority": "executive", "phone": "0086 139 0000 1111"}))
        .await;
    assert_eq!(response.status(), 201);
    let mut body = lead_body("完全不同的名字");
    body["phone"] = json!("139-0000-1111");
    let lead = create_lead(&app, &admin, &body).await;
    assert_eq!(lead["owner_id"], app.users["rep_south"]);
    // The manager of east does not see it (south's lead), the rule decision is not needed.
    error_body(
        app.get(&format!("/api/v1/leads/{}", s(&lead["id"])), &manager)
            .await,
        404,
        "not_found",
    )
    .await;
    let explained: Value = app
        .get(&format!("/api/v1/leads/{}/explain", s(&lead["id"])), &south)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(explained["kind"], "existing_owner");
}

#[tokio::test]
async fn an_unworked_lead_returns_to_the_pool_exactly_once_across_two_instances() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 10, &[], true).await;
    profile(&app, "rep_b", 10, &[], true).await;
    let manager = app.token("manager_east").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let lead = create_lead(&app, &manager, &lead_body(&format!("过期测试{i}号公司"))).await;
        ids.push(s(&lead["id"]).to_owned());
    }
    // The owner of the first lead follows up: that one must stay.
    let first: Value = app
        .get(&format!("/api/v1/leads/{}", ids[0]), &manager)
        .await
        .json()
        .await
        .unwrap();
    let first_owner = if first["owner_id"] == app.users["rep_a"] {
        "rep_a"
    } else {
        "rep_b"
    };
    let token = app.token(first_owner).await;
    let response = app
        .post(
            &format!("/api/v1/leads/{}/activities", ids[0]),
            &token,
            &json!({"channel": "call", "summary": "聊了需求"}),
        )
        .await;
    assert_eq!(response.status(), 201);

    let one = app.connect_again().await;
    let two = app.connect_again().await;
    let block = time::Duration::hours(72);
    assert_eq!(
        protection::expire(&one, time::OffsetDateTime::now_utc(), block)
            .await
            .unwrap(),
        0,
        "nothing expired yet"
    );
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(25);
    let (a, b) = tokio::join!(
        protection::expire(&one, later, block),
        protection::expire(&two, later, block)
    );
    assert_eq!(
        a.unwrap() + b.unwrap(),
        3,
        "three unworked leads, each returned once"
    );
    let (a, b) = tokio::join!(
        protection::expire(&one, later, block),
        protection::expire(&two, later, block)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 0, "and never again");

    let kept: Value = app
        .get(&format!("/api/v1/leads/{}", ids[0]), &manager)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["status"], "assigned");
    let returned: Value = app
        .get(&format!("/api/v1/leads/{}", ids[1]), &manager)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(returned["status"], "pool");
    let decisions: Value = app
        .get(&format!("/api/v1/leads/{}/decisions", ids[1]), &manager)
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = decisions
        .as_array()
        .unwrap()
        .iter()
        .map(|d| s(&d["kind"]))
        .collect();
    assert_eq!(kinds, ["rule", "expired"]);

    // The previous owner may not reclaim it; another rep may, now visible to them in the pool.
    let previous = s(&decisions[1]["rep_id"]).to_owned();
    let (prev_name, other_name) = if previous == app.users["rep_a"] {
        ("rep_a", "rep_b")
    } else {
        ("rep_b", "rep_a")
    };
    let prev = app.token(prev_name).await;
    error_body(
        app.post(
            &format!("/api/v1/leads/{}/claim", ids[1]),
            &prev,
            &json!({}),
        )
        .await,
        409,
        "lead_reclaim_blocked",
    )
    .await;
    let other = app.token(other_name).await;
    let claimed = app
        .post(
            &format!("/api/v1/leads/{}/claim", ids[1]),
            &other,
            &json!({}),
        )
        .await;
    assert_eq!(claimed.status(), 200);
    let claimed: Value = claimed.json().await.unwrap();
    assert_eq!(claimed["assigned_by"], "claim");
    error_body(
        app.post(
            &format!("/api/v1/leads/{}/claim", ids[1]),
            &prev,
            &json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn pool_claims_are_capped_per_rep_per_day() {
    let app = spawn_app_with(|s| {
        s.jobs = false;
        s.lead_daily_claim_cap = 1;
    })
    .await;
    let manager = app.token("manager_east").await;
    // Nobody has a profile: leads stay in the pool and the managers are told.
    let a = create_lead(&app, &manager, &lead_body("公海一号公司")).await;
    let b = create_lead(&app, &manager, &lead_body("公海二号公司")).await;
    assert_eq!(a["status"], "pool");
    let inbox: Value = app
        .get("/api/v1/notifications", &manager)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "lead_unassigned"),
        "{inbox}"
    );

    let rep = app.token("rep_a").await;
    error_body(
        app.post(
            &format!("/api/v1/leads/{}/claim", s(&a["id"])),
            &rep,
            &json!({}),
        )
        .await,
        409,
        "rep_at_capacity",
    )
    .await;
    profile(&app, "rep_a", 5, &[], true).await;
    assert_eq!(
        app.post(
            &format!("/api/v1/leads/{}/claim", s(&a["id"])),
            &rep,
            &json!({})
        )
        .await
        .status(),
        200
    );
    error_body(
        app.post(
            &format!("/api/v1/leads/{}/claim", s(&b["id"])),
            &rep,
            &json!({}),
        )
        .await,
        409,
        "lead_claim_limit",
    )
    .await;
    error_body(
        app.post(
            &format!("/api/v1/leads/{}/claim", s(&a["id"])),
            &rep,
            &json!({}),
        )
        .await,
        409,
        "lead_not_in_pool",
    )
    .await;
}

fn gb18030(text: &str) -> Vec<u8> {
    encoding_rs::GB18030.encode(text).0.into_owned()
}

#[tokio::test]
async fn a_gb18030_csv_with_chinese_headers_imports_the_good_rows_and_reports_the_bad() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    let manager = app.token("manager_east").await;
    let csv = "公司名称,联系人,电话,职位,行业,省份,城市,年采购额(万元),微信号\r\n\
               杭州一号机械有限公司,王工,138 0013 8000,采购经理,制造业,浙江省,杭州,120,wx1\r\n\
               ,没公司,13900000000,,制造业,浙江,杭州,5,wx2\r\n\
               \"广州二号贸易有限公司\",\"李总, 副总\",020-8888 6666,总经理,批发,广东省,广州,80,wx3\r\n\
               深圳三号,赵工,n/a,工程师,烘焙,广东,深圳,很多,wx4\r\n\
               \r\n\
               苏州四号电子有限公司,钱经理,+86 137 0000 0000,经理,信息技术,江苏,苏州,3.5,wx5\r\n";
    let response = app
        .request(Method::POST, "/api/v1/leads/imports", Some(&manager))
        .header("content-type", "text/csv")
        .body(gb18030(csv))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["encoding"], "gb18030");
    assert_eq!(
        (
            report["rows"].as_u64(),
            report["accepted"].as_u64(),
            report["rejected"].as_u64()
        ),
        (Some(5), Some(3), Some(2)),
        "{report}"
    );
    assert_eq!(report["ignored_headers"], json!(["微信号"]));
    let errors: Vec<(u64, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), s(&e["field"])))
        .collect();
    assert_eq!(errors, [(3, "company"), (5, "annual_purchase")], "{report}");
    assert_eq!(report["errors_total"], 2);
    let paged: Value = app
        .get(
            &format!(
                "/api/v1/leads/imports/{}/errors?limit=1",
                s(&report["import_id"])
            ),
            &manager,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paged["items"].as_array().unwrap().len(), 1);
    assert!(paged["next_cursor"].is_string());

    // The scheduler assigns them (called directly here); the Guangdong lead goes to the south rep
    // under a region rule.
    app.request(Method::PUT, "/api/v1/lead-rules", Some(&manager))
        .json(&json!({"layers": [{"name": "region", "conditions": [{"field": "rep_covers_lead_region"}]}, {"name": "rest"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(leads::assign_pending(&app.db, 100).await.unwrap(), 3);
    let admin = app.token("admin").await;
    let all: Value = app.get("/api/v1/leads", &admin).await.json().await.unwrap();
    let guangzhou = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| s(&l["company"]) == "广州二号贸易有限公司")
        .unwrap();
    assert_eq!(guangzhou["owner_id"], app.users["rep_south"]);
    assert_eq!(guangzhou["annual_purchase_fen"], 80_000_000);
    assert_eq!(guangzhou["contact_name"], "李总, 副总");
    assert_eq!(guangzhou["seniority"], "executive");
    assert_eq!(guangzhou["source"], "import");
    let suzhou = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| s(&l["company"]) == "苏州四号电子有限公司")
        .unwrap();
    assert_eq!(suzhou["annual_purchase_fen"], 3_500_000);
}

#[tokio::test]
async fn a_utf8_csv_with_bom_imports_and_a_file_without_a_company_column_is_refused() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let admin = app.token("admin").await;
    let csv = "\u{feff}company,phone,industry,annual_purchase_cny\nAcme Pumps,13800138000,manufacturing,\"1,000\"\n";
    let response = app
        .request(Method::POST, "/api/v1/leads/imports", Some(&admin))
        .body(csv)
        .send()
        .await
        .unwrap();
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        (s(&report["encoding"]), report["accepted"].as_u64()),
        ("utf-8", Some(1)),
        "{report}"
    );
    let response = app
        .request(Method::POST, "/api/v1/leads/imports", Some(&admin))
        .body("电话,行业\n138,制造业\n")
        .send()
        .await
        .unwrap();
    let body = error_body(response, 422, "csv_invalid").await;
    assert_eq!(body["details"]["reason"], "no_company_column");
    let rep = app.token("rep_a").await;
    error_body(
        app.request(Method::POST, "/api/v1/leads/imports", Some(&rep))
            .body(csv)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
}

/// A website-form lead source made by the admin (its key is in the answer, once).
async fn website_source(app: &TestApp) -> Value {
    let admin = app.token("admin").await;
    app.post(
        "/api/v1/lead-sources",
        &admin,
        &json!({"name": "官网表单", "channel": "官网"}),
    )
    .await
    .json()
    .await
    .unwrap()
}

#[tokio::test]
async fn the_public_capture_form_needs_its_key_drops_honeypots_and_is_rate_limited() {
    let app = spawn_app_with(|s| {
        s.jobs = false;
        s.lead_capture_per_minute = 4;
    })
    .await;
    profile(&app, "rep_a", 10, &[], true).await;
    let admin = app.token("admin").await;
    let source = website_source(&app).await;
    let key = s(&source["key"]).to_owned();
    assert!(key.starts_with("fpls_"));
    let listed: Value = app
        .get("/api/v1/lead-sources", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed[0].get("key").is_none(), "the key is shown once");

    let send = |key: String, body: Value| {
        app.request(Method::POST, "/api/v1/capture/leads", None)
            .header("x-lead-source-key", key)
            .json(&body)
            .send()
    };
    let mut form = lead_body("官网来的公司");
    form["source"] = json!("referral"); // the source decides the channel, not the form
    assert_eq!(send(key.clone(), form.clone()).await.unwrap().status(), 202);
    error_body(
        send("fpls_wrong".into(), form.clone()).await.unwrap(),
        401,
        "source_key_invalid",
    )
    .await;
    let mut bot = lead_body("机器人公司");
    bot["website"] = json!("http://spam.example");
    assert_eq!(send(key.clone(), bot).await.unwrap().status(), 202);
    error_body(
        send(key.clone(), json!({"company": ""})).await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    let big = json!({"company": "x", "notes": "长".repeat(20_000)});
    error_body(
        send(key.clone(), big).await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    let limited = send(key.clone(), form.clone()).await.unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    error_body(limited, 429, "rate_limited").await;

    let all: Value = app.get("/api/v1/leads", &admin).await.json().await.unwrap();
    let companies: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| s(&l["company"]))
        .collect();
    assert_eq!(
        companies,
        ["官网来的公司"],
        "the honeypot submission was dropped"
    );
    assert_eq!(all["items"][0]["source"], "website");
    assert_eq!(all["items"][0]["owner_id"], app.users["rep_a"]);
}

#[tokio::test]
async fn what_if_replays_recent_leads_against_a_draft_and_reports_the_differences() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    east_leads(&app, "admin", "回放", 6).await;
    let admin = app.token("admin").await;
    let draft = json!({"layers": [{"name": "south only", "conditions": [{"field": "rep_team", "in": ["South"]}]}]});
    let response = app
        .post(
            "/api/v1/lead-rules/what-if",
            &admin,
            &json!({"rules": draft, "days": 7}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let report = &body["report"];
    assert_eq!(report["leads"], 6);
    assert_eq!(report["changed"], 6, "{body}");
    assert_eq!(
        report["differences"][0]["draft_rep"],
        app.users["rep_south"]
    );
    assert_eq!(report["draft"]["assigned"], 6);
    assert_eq!(report["actual"]["assigned"], 6);
    // Actual: split between rep_a and rep_b evenly; draft: all on rep_south.
    let per_rep = |figures: &Value, user: &str| {
        figures["load_fairness"]["per_rep"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rep_id"] == app.users[user])
            .unwrap()["assigned"]
            .as_u64()
    };
    assert_eq!(
        (
            per_rep(&report["actual"], "rep_a"),
            per_rep(&report["actual"], "rep_b")
        ),
        (Some(3), Some(3))
    );
    assert_eq!(per_rep(&report["draft"], "rep_south"), Some(6));
    // The same rules replay to no change; a bad draft is a 422.
    let same = json!({"layers": [{"name": "east", "conditions": [{"field": "rep_team", "in": ["East"]}]}]});
    let body: Value = app
        .post(
            "/api/v1/lead-rules/what-if",
            &admin,
            &json!({"rules": same}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["report"]["changed"], 0, "{body}");
    error_body(
        app.post(
            "/api/v1/lead-rules/what-if",
            &admin,
            &json!({"rules": {"layers": []}}),
        )
        .await,
        422,
        "rule_set_invalid",
    )
    .await;
}

#[tokio::test]
async fn health_figures_count_latency_conversion_and_cross_group_moves() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let leads = east_leads(&app, "manager_east", "健康", 4).await;
    let manager = app.token("manager_east").await;
    // One converted by its owner, one moved to the south team.
    let owner_of = |l: &Value| {
        if l["owner_id"] == app.users["rep_a"] {
            "rep_a"
        } else {
            "rep_b"
        }
    };
    let owner = app.token(owner_of(&leads[0])).await;
    app.post(
        &format!("/api/v1/leads/{}/activities", s(&leads[0]["id"])),
        &owner,
        &json!({"channel": "visit", "summary": "上门"}),
    )
    .await;
    let converted = app
        .post(
            &format!("/api/v1/leads/{}/convert", s(&leads[0]["id"])),
            &owner,
            &json!({}),
        )
        .await;
    assert_eq!(converted.status(), 200);
    let converted: Value = converted.json().await.unwrap();
    assert!(converted["customer_id"].is_string());
    let moved = app
        .post(
            &format!("/api/v1/leads/{}/reassign", s(&leads[1]["id"])),
            &manager,
            &json!({"rep_id": app.users["rep_south"]}),
        )
        .await;
    assert_eq!(moved.status(), 200);

    let admin = app.token("admin").await;
    let health: Value = app
        .get("/api/v1/leads/health?days=1", &admin)
        .await
        .json()
        .await
        .unwrap();
    let f = &health["figures"];
    assert_eq!(f["leads"], 4, "{health}");
    assert_eq!(f["assigned"], 4);
    assert_eq!(
        f["assignment_latency"]["count"], 4,
        "a later move does not erase how fast the rule assigned: {health}"
    );
    assert_eq!(f["assignment_latency"]["alarm"], false);
    assert_eq!(f["conversion_in_window"]["numerator"], 1);
    assert_eq!(f["cross_group_misassignment"]["numerator"], 1);
    assert_eq!(f["cross_group_misassignment"]["alarm"], true);
    assert_eq!(f["first_response"]["count"], 1);
    // A manager sees their own team only: every lead East's rule gave East, the one a manager
    // moved to South included — it is East's mis-assignment, not South's.
    let team: Value = app
        .get("/api/v1/leads/health", &manager)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(team["figures"]["leads"], 4, "{team}");
    assert_eq!(
        team["figures"]["cross_group_misassignment"]["numerator"], 1,
        "{team}"
    );
    let south: Value = app
        .get(
            &format!("/api/v1/leads/health?days=1&team_id={}", app.teams[1]),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(south["figures"]["leads"], 0, "{south}");
    error_body(
        app.get("/api/v1/leads/health?team_id=no-such-team", &admin)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        south["figures"]["cross_group_misassignment"]["numerator"], 0,
        "{south}"
    );
    error_body(
        app.get(
            &format!("/api/v1/leads/health?team_id={}", app.teams[1]),
            &manager,
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let rep = app.token("rep_a").await;
    error_body(
        app.get("/api/v1/leads/health", &rep).await,
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn concurrent_intake_on_two_instances_never_double_assigns_nor_exceeds_capacity() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 40, &[], true).await;
    profile(&app, "rep_b", 30, &[], true).await;
    profile(&app, "rep_south", 20, &[], true).await;
    let peer = app.spawn_peer(|s| s.jobs = false).await;
    let admin = app.token("admin").await;
    let per_instance = 200;
    let mut tasks = Vec::new();
    for (n, address) in [app.address.clone(), peer.address.clone()]
        .into_iter()
        .enumerate()
    {
        for i in 0..per_instance {
            let client = app.client.clone();
            let url = format!("{address}/api/v1/leads");
            let token = admin.clone();
            let body = lead_body(&format!("并发{n}-{i}号公司"));
            tasks.push(tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 201);
    }
    let mut per_owner = std::collections::HashMap::<String, usize>::new();
    let mut pool = 0;
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/leads?limit=200&cursor={c}"),
            None => "/api/v1/leads?limit=200".to_owned(),
        };
        let page: Value = app.get(&path, &admin).await.json().await.unwrap();
        for l in page["items"].as_array().unwrap() {
            seen += 1;
            match l["owner_id"].as_str() {
                Some(o) => *per_owner.entry(o.to_owned()).or_default() += 1,
                None => pool += 1,
            }
            let decisions: Value = app
                .get(&format!("/api/v1/leads/{}/decisions", s(&l["id"])), &admin)
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(
                decisions.as_array().unwrap().len(),
                1,
                "one decision per lead: {decisions}"
            );
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, 2 * per_instance);
    assert_eq!(
        per_owner.get(&app.users["rep_a"]).copied(),
        Some(40),
        "{per_owner:?}"
    );
    assert_eq!(per_owner.get(&app.users["rep_b"]).copied(), Some(30));
    assert_eq!(per_owner.get(&app.users["rep_south"]).copied(), Some(20));
    assert_eq!(pool, 2 * per_instance - 90);
}

fn draft(company: &str) -> fieldproof_domain::leads::import::LeadDraft {
    use fieldproof_domain::customer::{Fen, Name, Seniority};
    use fieldproof_domain::leads::{Industry, Region, SourceChannel};
    fieldproof_domain::leads::import::LeadDraft {
        company: Name::parse(company).unwrap(),
        contact_name: "王工".into(),
        phone: None,
        contact_title: "采购".into(),
        industry: Industry::Manufacturing,
        source: SourceChannel::Website,
        annual_purchase: Fen::new(90_000_000).unwrap(),
        seniority: Seniority::Manager,
        region: Region::new("浙江", "杭州"),
        products: vec![],
        notes: String::new(),
    }
}

async fn turns(app: &TestApp) -> i64 {
    use fieldproof::db::entities::lead_assign_turn;
    use sea_orm::EntityTrait;
    lead_assign_turn::Entity::find_by_id(app.org_id.clone())
        .one(&app.db)
        .await
        .unwrap()
        .map_or(0, |t| t.turns)
}

#[tokio::test]
async fn a_batch_of_intakes_takes_one_turn_fills_reps_in_order_and_keeps_one_owner_per_customer() {
    use leads::dispatch::Prepared;
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 1, &["浙江"], true).await;
    profile(&app, "rep_b", 1, &["浙江"], true).await;
    profile(&app, "rep_south", 1, &["广东"], true).await;
    let before = turns(&app).await;
    let now = fieldproof::db::now();
    let mut batch = Vec::new();
    for company in [
        "杭州甲机械有限公司",
        "杭州甲机械（中国）有限公司",
        "杭州乙机械有限公司",
        "杭州丙机械有限公司",
        "杭州丁机械有限公司",
    ] {
        let row = leads::new_lead(&app.org_id, draft(company), &leads::Origin::default(), now);
        batch.push(Prepared::new(row));
    }
    let done = decide_directly(&app, batch).await;

    assert_eq!(
        turns(&app).await,
        before + 1,
        "one turn for the whole batch"
    );
    assert!(done.iter().all(|d| d.decided));
    let owners: Vec<Option<String>> = done.iter().map(|d| d.row.owner_id.clone()).collect();
    // The same customer twice: the second goes to the first one's owner, even though full.
    assert_eq!(owners[1], owners[0]);
    assert_eq!(done[1].row.assigned_by.as_deref(), Some("existing_owner"));
    // Each rep has room for one: every decision saw the loads of the ones before it.
    let mut rule_owners: Vec<String> = [0, 2, 3]
        .iter()
        .map(|&i| owners[i].clone().expect("assigned"))
        .collect();
    rule_owners.sort();
    let mut all = vec![
        app.users["rep_a"].clone(),
        app.users["rep_b"].clone(),
        app.users["rep_south"].clone(),
    ];
    all.sort();
    assert_eq!(rule_owners, all);
    assert_eq!(done[4].row.status, "pool", "nobody had room left");
    assert_eq!(owners[4], None);

    // What the batch returned is what it stored, with one decision per lead.
    let manager = app.token("admin").await;
    for d in &done {
        let stored = leads::dispatch::Done {
            row: fieldproof::db::leads::find(&app.db, &d.row.id)
                .await
                .unwrap()
                .expect("stored"),
            decided: true,
        };
        assert_eq!(stored.row, d.row);
        let decisions: Value = app
            .get(&format!("/api/v1/leads/{}/decisions", d.row.id), &manager)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(decisions.as_array().map(Vec::len), Some(1), "{decisions}");
    }
    let second: Value = app
        .get(
            &format!("/api/v1/leads/{}/decisions", done[1].row.id),
            &manager,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second[0]["record"]["existing_owner"]["id"],
        done[0].row.id.as_str()
    );
    // The lead left in the pool told the managers.
    let inbox: Value = app
        .get("/api/v1/notifications", &app.token("manager_east").await)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "lead_unassigned" && s(&n["title_zh"]).contains("杭州丁机械")),
        "{inbox}"
    );
}

/// A batch large enough to be decided in two halves (the first half's leads inserted while the
/// second half is decided): a lead of an owned customer (its history read while the insert is in
/// flight), a customer repeated across the halves, a lead stored earlier and waiting, and reps
/// filling up on the way all come out as one in-order pass would leave them, and stored so, each
/// assigned lead with its owner's notice.
#[tokio::test]
async fn a_batch_decided_in_two_halves_stores_every_lead_as_decided() {
    use fieldproof::db::entities::{lead, lead_decision, notification};
    use leads::dispatch::Prepared;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 15, &["浙江"], true).await;
    profile(&app, "rep_b", 15, &["浙江"], true).await;
    profile(&app, "rep_south", 15, &["广东"], false).await;
    app.customer_of("rep_south", "杭州戊机械有限公司").await;
    let now = fieldproof::db::now();
    let mut waiting = leads::new_row(
        &app.org_id,
        draft("早到等待机械有限公司"),
        &leads::Origin::default(),
        now,
    );
    waiting.needs_assignment = sea_orm::Set(true);
    let waiting_id = lead::Entity::insert(waiting)
        .exec(&app.db)
        .await
        .unwrap()
        .last_insert_id;
    let waiting = fieldproof::db::leads::find(&app.db, &waiting_id)
        .await
        .unwrap()
        .unwrap();
    let before = turns(&app).await;
    let mut batch = Vec::new();
    for i in 0..40 {
        batch.push(match i {
            24 => Prepared::new(leads::new_lead(
                &app.org_id,
                draft("杭州戊机械有限公司"),
                &leads::Origin::default(),
                now,
            )),
            27 => Prepared::new(leads::new_lead(
                &app.org_id,
                draft("批量3号机械（中国）有限公司"),
                &leads::Origin::default(),
                now,
            )),
            30 => Prepared::waiting(waiting.clone()),
            _ => Prepared::new(leads::new_lead(
                &app.org_id,
                draft(&format!("批量{i}号机械有限公司")),
                &leads::Origin::default(),
                now,
            )),
        });
    }
    let done = decide_directly(&app, batch).await;

    assert_eq!(turns(&app).await, before + 1, "one turn");
    assert_eq!(done.len(), 40);
    assert!(done.iter().all(|d| d.decided));
    assert_eq!(
        done[24].row.owner_id.as_deref(),
        Some(app.users["rep_south"].as_str())
    );
    assert_eq!(done[24].row.assigned_by.as_deref(), Some("existing_owner"));
    assert_eq!(done[27].row.owner_id, done[3].row.owner_id);
    assert_eq!(done[27].row.assigned_by.as_deref(), Some("existing_owner"));
    assert_eq!(done[30].row.id, waiting_id);
    assert_eq!(
        done[30].row.status, "assigned",
        "the 29th rule lead still finds room"
    );
    // Room for 30 in East (South is away): the leads fill it in order, the repeated customer
    // taking one place; the nine after the waiting lead stay in the pool.
    for rep in ["rep_a", "rep_b"] {
        let n = done
            .iter()
            .filter(|d| d.row.owner_id.as_deref() == Some(app.users[rep].as_str()))
            .count();
        assert_eq!(n, 15, "{rep}");
    }
    assert!(done[..31].iter().all(|d| d.row.status == "assigned"));
    assert!(done[31..].iter().all(|d| d.row.status == "pool"));
    for d in &done {
        let stored = fieldproof::db::leads::find(&app.db, &d.row.id)
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(stored, d.row);
        let decisions = lead_decision::Entity::find()
            .filter(lead_decision::Column::LeadId.eq(d.row.id.as_str()))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(decisions, 1, "{}", d.row.company);
        if let Some(owner) = &d.row.owner_id {
            let notices = notification::Entity::find()
                .filter(notification::Column::UserId.eq(owner.as_str()))
                .filter(notification::Column::Kind.eq("lead_assigned"))
                .filter(notification::Column::Link.eq(format!("/api/v1/leads/{}", d.row.id)))
                .count(&app.db)
                .await
                .unwrap();
            assert_eq!(notices, 1, "{}", d.row.company);
        }
    }
}

#[tokio::test]
async fn every_rep_of_a_large_team_is_explained_from_a_compact_record() {
    use fieldproof::db::entities::{rep_profile, user};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let app = spawn_app_with(|s| s.jobs = false).await;
    let now = fieldproof::db::now();
    let mut ids = Vec::new();
    for i in 0..60 {
        let id = fieldproof::db::new_id();
        user::Entity::insert(user::ActiveModel {
            id: Set(id.clone()),
            org_id: Set(app.org_id.clone()),
            username: Set(format!("team_rep_{i}")),
            display_name: Set(format!("Team rep {i}")),
            password_hash: Set("x".into()),
            role: Set("rep".into()),
            team_id: Set(Some(app.teams[0].clone())),
            active: Set(true),
            created_at: Set(now),
        })
        .exec_without_returning(&app.db)
        .await
        .unwrap();
        rep_profile::Entity::insert(rep_profile::ActiveModel {
            user_id: Set(id.clone()),
            regions: Set(json!(["浙江"])),
            product_expertise: Set(json!([])),
            capacity: Set(10),
            // The last ten are on leave.
            available: Set(i < 50),
            updated_at: Set(now),
        })
        .exec_without_returning(&app.db)
        .await
        .unwrap();
        ids.push(id);
    }
    let manager = app.token("manager_east").await;
    let lead = create_lead(&app, &manager, &lead_body("杭州大团队机械有限公司")).await;
    let explain = |rep: String| {
        let app = &app;
        let manager = manager.clone();
        let lead = s(&lead["id"]).to_owned();
        async move {
            app.get(
                &format!("/api/v1/leads/{lead}/explain?rep_id={rep}"),
                &manager,
            )
            .await
            .json::<Value>()
            .await
            .unwrap()
        }
    };
    let first = explain(ids[0].clone()).await;
    assert_eq!(first["candidates_total"], 50, "{first}");
    assert_eq!(first["candidates"].as_array().map(Vec::len), Some(20));
    let listed: Vec<&str> = first["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(&c["rep_id"]))
        .collect();
    let last = ids[..50]
        .iter()
        .find(|id| !listed.contains(&id.as_str()))
        .expect("thirty candidates are below the twenty shown");
    let below = explain(last.clone()).await;
    assert_eq!(below["rep"]["verdict"], "outranked", "{below}");
    assert!(
        below["rep"]["candidate"]["rank"].as_u64().unwrap() > 20,
        "{below}"
    );
    assert_eq!(below["rep"]["candidate"]["capacity"], 10);
    let away = explain(ids[55].clone()).await;
    assert_eq!(away["rep"]["verdict"], "excluded", "{away}");
    assert_eq!(away["rep"]["reason"]["code"], "unavailable");
    let chosen = explain(s(&lead["owner_id"]).to_owned()).await;
    assert_eq!(chosen["rep"]["verdict"], "chosen", "{chosen}");
    // The record names reps by position in a roster stored once, not by 30 ids per lead.
    let decisions: Value = app
        .get(
            &format!("/api/v1/leads/{}/decisions", s(&lead["id"])),
            &manager,
        )
        .await
        .json()
        .await
        .unwrap();
    let record = &decisions[0]["record"]["decision"];
    assert_eq!(
        record["roster_size"], 60,
        "the reps with a profile: {record}"
    );
    assert!(!record.to_string().contains(&ids[55]), "{record}");

    // Stored as a zstd frame (migration 000026: ~1.4 KB of JSON here, well past `PACK_FROM`), under
    // two thirds of its JSON text (~a quarter at 1,000 reps).
    use fieldproof::db::entities::lead_decision;
    use fieldproof_migrations::{Migrator, MigratorTrait};
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    let stored = || async {
        lead_decision::Entity::find()
            .filter(lead_decision::Column::LeadId.eq(s(&lead["id"])))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
    };
    let json_text = serde_json::to_vec(&decisions[0]["record"]).unwrap();
    assert!(
        json_text.len() > fieldproof::db::leads::RecordCodec::PACK_FROM + 256,
        "{} bytes of JSON",
        json_text.len()
    );
    let packed = stored().await.record;
    assert!(packed.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "not packed");
    assert!(
        packed.len() * 3 < json_text.len() * 2,
        "{} bytes packed, {} as JSON",
        packed.len(),
        json_text.len()
    );
    // Undone, the migration writes it back as the same JSON text; redone, that text (as every
    // record stored before packing) is read as it is.
    Migrator::down(
        &app.db,
        Some(steps_back_to("m20261127_000026_packed_decision_records")),
    )
    .await
    .unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let text: String = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!(
                "SELECT record FROM lead_decisions WHERE lead_id = '{}'",
                s(&lead["id"])
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        decisions[0]["record"]
    );
    Migrator::up(&app.db, None).await.unwrap();
    assert_eq!(stored().await.record, text.as_bytes());
    assert_eq!(explain(last.clone()).await, below);
    lead_decision::Entity::update_many()
        .col_expr(lead_decision::Column::Record, Expr::value(packed))
        .filter(lead_decision::Column::LeadId.eq(s(&lead["id"])))
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(explain(last.clone()).await, below);
}

#[tokio::test]
async fn the_dedup_key_migration_fills_in_customers_and_contacts_stored_before_it() {
    use fieldproof::db::entities::{contact, customer};
    use fieldproof_migrations::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, EntityTrait};
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    let customer_id = app
        .customer_of("rep_south", "杭州丙机械（中国）有限公司")
        .await;
    let south = app.token("manager_south").await;
    let added = app
        .post(
            &format!("/api/v1/customers/{customer_id}/contacts"),
            &south,
            &json!({"name": "赵总", "title": "总经理", "seniority": "executive", "phone": "+86 137-0000-2222"}),
        )
        .await;
    assert_eq!(added.status(), 201);
    // As rows written before the keys existed: roll the migration (and those after it) back and
    // forward again.
    Migrator::down(&app.db, Some(steps_back_to("m20261126_000011_dedup_keys")))
        .await
        .unwrap();
    let columns = app
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT * FROM customers",
        ))
        .await
        .unwrap();
    assert!(
        columns[0].try_get::<String>("", "company_key").is_err(),
        "the column is gone after down"
    );
    Migrator::up(&app.db, None).await.unwrap();
    let c = customer::Entity::find_by_id(customer_id.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.company_key.as_deref(), Some("杭州丙机械"));
    let phones: Vec<Option<String>> = contact::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.customer_id == customer_id)
        .map(|k| k.phone_key)
        .collect();
    assert_eq!(phones, [Some("13700002222".to_owned())]);
    // And intake finds the customer by either key.
    let manager = app.token("admin").await;
    let mut body = lead_body("杭州丙机械有限公司");
    let lead = create_lead(&app, &manager, &body).await;
    assert_eq!(lead["owner_id"], app.users["rep_south"].as_str(), "{lead}");
    assert_eq!(lead["customer_id"], customer_id.as_str());
    body["company"] = json!("另一个名字有限公司");
    body["phone"] = json!("137 0000 2222");
    let by_phone = create_lead(&app, &manager, &body).await;
    assert_eq!(
        by_phone["owner_id"],
        app.users["rep_south"].as_str(),
        "{by_phone}"
    );
}

#[tokio::test]
async fn an_intake_whose_batch_fails_is_kept_in_the_pool_and_assigned_later() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    // A stored rule set the server cannot read (written behind the validation's back): every
    // batch of this org fails before deciding anything.
    fieldproof::db::leads::insert_rules(
        &app.db,
        &app.org_id,
        1,
        json!({"layers": "not a list"}),
        &app.users["admin"],
    )
    .await
    .unwrap();
    let admin = app.token("admin").await;
    let lead = create_lead(&app, &admin, &lead_body("杭州失败重试机械有限公司")).await;
    assert_eq!(lead["status"], "pool", "{lead}");
    assert_eq!(lead["owner_id"], Value::Null);
    let stored = fieldproof::db::leads::find(&app.db, s(&lead["id"]))
        .await
        .unwrap()
        .expect("the lead was kept");
    assert!(stored.needs_assignment, "waiting for the scheduler");
    // Once the rules are readable again, the scheduler's pass assigns it.
    let manager = app.token("manager_east").await;
    save_rules(
        &app,
        &manager,
        json!({"layers": [{"name": "everyone", "conditions": []}]}),
    )
    .await;
    assert_eq!(leads::assign_pending(&app.db, 100).await.unwrap(), 1);
    let after = fieldproof::db::leads::find(&app.db, s(&lead["id"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, "assigned");
    assert!(after.owner_id.is_some());
}

/// The intake answers from the row its batch wrote, deciding visibility in memory: that check
/// must agree with the query every other read uses, for every role, team, owner and status.
#[tokio::test]
async fn the_in_memory_visibility_check_agrees_with_the_query() {
    use fieldproof::auth::Caller;
    use fieldproof::db::entities::lead;
    use fieldproof::db::leads as repo;
    use fieldproof_domain::account::Role;
    use sea_orm::{EntityTrait, Set};
    let app = spawn_app_with(|s| s.jobs = false).await;
    let [east, south] = app.teams.clone();
    let teams = [None, Some(east), Some(south)];
    let people = ["rep_a", "rep_b", "manager_east"].map(|u| app.users[u].clone());
    let mut ids = Vec::new();
    for status in ["pool", "assigned", "converted"] {
        for owner in [None, Some(people[0].clone()), Some(people[2].clone())] {
            for team in &teams {
                let mut row = leads::new_row(
                    &app.org_id,
                    draft(&format!("可见性{}号公司", ids.len())),
                    &leads::Origin::default(),
                    fieldproof::db::now(),
                );
                row.status = Set(status.into());
                row.owner_id = Set(owner.clone());
                row.team_id = Set(team.clone());
                ids.push(
                    lead::Entity::insert(row)
                        .exec(&app.db)
                        .await
                        .unwrap()
                        .last_insert_id,
                );
            }
        }
    }
    let mut checked = (0, 0);
    for id in &ids {
        let row = repo::find(&app.db, id).await.unwrap().unwrap();
        for org in [app.org_id.clone(), "another-org".to_owned()] {
            for role in Role::ALL {
                for team in &teams {
                    for user in &people {
                        let caller = Caller {
                            user_id: user.clone(),
                            org_id: org.clone(),
                            role,
                            team_id: team.clone(),
                            session_id: "s".into(),
                        };
                        let by_query = repo::find_visible(&app.db, &caller, id)
                            .await
                            .unwrap()
                            .is_some();
                        assert_eq!(
                            repo::is_visible_to(&caller, &row),
                            by_query,
                            "{caller:?} on {} / {:?} / {:?}",
                            row.status,
                            row.owner_id,
                            row.team_id
                        );
                        if by_query {
                            checked.0 += 1;
                        } else {
                            checked.1 += 1;
                        }
                    }
                }
            }
        }
    }
    // Both answers occur often enough for the comparison to mean something.
    assert!(checked.0 > 100 && checked.1 > 100, "{checked:?}");
}

/// Leads stored before `first_team_id` existed get the team their first decision gave them:
/// whether still there, moved to South by a manager, back in the pool, or claimed by South since.
#[tokio::test]
async fn the_first_team_migration_fills_in_leads_stored_before_it() {
    use fieldproof::db::entities::lead;
    use fieldproof_migrations::{Migrator, MigratorTrait};
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let app = spawn_app_with(|s| s.jobs = false).await;
    let ids: Vec<String> = east_leads(&app, "manager_east", "首组", 4)
        .await
        .iter()
        .map(|l| s(&l["id"]).to_owned())
        .collect();
    let manager = app.token("manager_east").await;
    let moved = app
        .post(
            &format!("/api/v1/leads/{}/reassign", ids[1]),
            &manager,
            &json!({"rep_id": app.users["rep_south"]}),
        )
        .await;
    assert_eq!(moved.status(), 200);
    let row = lead::Entity::find_by_id(ids[2].clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut back: lead::ActiveModel = row.into();
    back.status = Set("pool".into());
    back.owner_id = Set(None);
    back.team_id = Set(None);
    back.update(&app.db).await.unwrap();
    // Expired, then claimed by a South rep: in South now, never "moved" by a manager.
    let row = lead::Entity::find_by_id(ids[3].clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut claimed: lead::ActiveModel = row.into();
    claimed.owner_id = Set(Some(app.users["rep_south"].clone()));
    claimed.team_id = Set(Some(app.teams[1].clone()));
    claimed.update(&app.db).await.unwrap();
    // A pool lead no rule assigned, given to a South rep by hand: South first.
    let mut pooled = leads::new_row(
        &app.org_id,
        draft("首组手动公司"),
        &leads::Origin::default(),
        fieldproof::db::now(),
    );
    pooled.needs_assignment = Set(false);
    let by_hand = lead::Entity::insert(pooled)
        .exec(&app.db)
        .await
        .unwrap()
        .last_insert_id;
    let admin = app.token("admin").await;
    let given = app
        .post(
            &format!("/api/v1/leads/{by_hand}/reassign"),
            &admin,
            &json!({"rep_id": app.users["rep_south"]}),
        )
        .await;
    assert_eq!(given.status(), 200);

    Migrator::down(
        &app.db,
        Some(steps_back_to("m20261126_000012_lead_first_team")),
    )
    .await
    .unwrap();
    Migrator::up(&app.db, None).await.unwrap();
    let east = app.teams[0].clone();
    for id in &ids {
        let row = lead::Entity::find_by_id(id.clone())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.first_team_id.as_deref(), Some(east.as_str()), "{row:?}");
    }
    let south = lead::Entity::find_by_id(ids[1].clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(south.team_id.as_deref(), Some(app.teams[1].as_str()));
    let by_hand = lead::Entity::find_by_id(by_hand)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        by_hand.first_team_id.as_deref(),
        Some(app.teams[1].as_str())
    );
}

/// On PostgreSQL the capture limit is counted in the database: two instances behind a load
/// balancer share it (each kept its own window before, letting a client through twice the
/// limit). On SQLite — one `serve` process per file — it is counted in memory: a counted request,
/// refused ones above all, writes nothing, so a flood on the public form does not queue intake
/// and uploads behind the one writer.
#[tokio::test]
async fn the_capture_limit_holds_across_two_instances_and_writes_nothing_on_sqlite() {
    use fieldproof::db::entities::rate_limit_window;
    use sea_orm::{DbBackend, EntityTrait};
    let app = spawn_app_with(|s| {
        s.jobs = false;
        s.lead_capture_per_minute = 3;
    })
    .await;
    profile(&app, "rep_a", 10, &[], true).await;
    let postgres = app.db.get_database_backend() == DbBackend::Postgres;
    let peer = app.spawn_peer(|s| s.jobs = false).await;
    let source = website_source(&app).await;
    let key = s(&source["key"]).to_owned();
    let bases = if postgres {
        [&app.address, &peer.address, &app.address, &peer.address]
    } else {
        [&app.address; 4]
    };
    let mut statuses = Vec::new();
    for (i, base) in bases.into_iter().enumerate() {
        let response = app
            .client
            .post(format!("{base}/api/v1/capture/leads"))
            .header("x-lead-source-key", &key)
            .json(&lead_body(&format!("两实例{i}号公司")))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            error_body(response, 429, "rate_limited").await;
        }
    }
    assert_eq!(statuses, [202, 202, 202, 429]);
    let windows = rate_limit_window::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    if !postgres {
        assert!(windows.is_empty(), "{windows:?}");
        return;
    }
    // The count is the database's (what a separate process sees), not either process's memory.
    let hits: i64 = windows
        .iter()
        .filter(|w| w.scope == "lead_capture" && w.subject.starts_with(s(&source["id"])))
        .map(|w| w.hits)
        .sum();
    assert_eq!(hits, 4, "{windows:?}");
    // The maintenance job forgets windows once they no longer weigh on any estimate.
    let later = fieldproof::db::now() + time::Duration::minutes(2);
    assert!(
        fieldproof::db::rate_limits::prune(&app.db, later)
            .await
            .unwrap()
            >= 1
    );
    assert!(
        rate_limit_window::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Behind a reverse proxy (`trust_forwarded_for`) the form's limit counts each visitor's address
/// from `X-Forwarded-For`, like the customer's quote doors: counted by the proxy's address, every
/// visitor of a source shared one allowance and one busy visitor locked the rest out.
#[tokio::test]
async fn the_capture_limit_counts_forwarded_visitors_apart_behind_a_proxy() {
    let app = spawn_app_with(|s| {
        s.jobs = false;
        s.lead_capture_per_minute = 2;
        s.trust_forwarded_for = true;
    })
    .await;
    profile(&app, "rep_a", 10, &[], true).await;
    let source = website_source(&app).await;
    let key = s(&source["key"]).to_owned();
    let send = |visitor: &'static str, n: usize| {
        app.request(Method::POST, "/api/v1/capture/leads", None)
            .header("x-lead-source-key", key.clone())
            .header("x-forwarded-for", visitor)
            .json(&lead_body(&format!("代理后{visitor}第{n}家公司")))
            .send()
    };
    let mut statuses = Vec::new();
    for (visitor, n) in [("203.0.113.7", 1), ("203.0.113.7", 2), ("198.51.100.9", 1)] {
        statuses.push(send(visitor, n).await.unwrap().status().as_u16());
    }
    let limited = send("203.0.113.7", 3).await.unwrap();
    assert_eq!(
        statuses,
        [202, 202, 202],
        "a second visitor has its own allowance"
    );
    error_body(limited, 429, "rate_limited").await;
}

/// The dispatcher keeps each org's rep roster between batches and reads it again only when the
/// roster version moved: every change the roster is made of moves it — through the API or
/// straight in the database (database triggers, migration 000018) — and the next intake sees it.
#[tokio::test]
async fn the_next_intake_sees_every_roster_change_even_one_made_straight_in_the_database() {
    use fieldproof::db::entities::{rep_profile, team, user};
    use fieldproof::db::leads::roster_version;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 10, &["浙江"], true).await;
    let manager = app.token("manager_east").await;
    save_rules(&app, &manager, json!({"layers": [{"name": "zhejiang", "conditions": [{"field": "rep_covers_lead_region"}]}]})).await;
    let first = create_lead(&app, &manager, &lead_body("杭州名册一号机械有限公司")).await;
    assert_eq!(first["owner_id"], app.users["rep_a"].as_str(), "{first}");

    // On leave, written behind the API's back: the cached roster must not be used.
    rep_profile::Entity::update_many()
        .col_expr(rep_profile::Column::Available, Expr::value(false))
        .filter(rep_profile::Column::UserId.eq(app.users["rep_a"].as_str()))
        .exec(&app.db)
        .await
        .unwrap();
    let second = create_lead(&app, &manager, &lead_body("杭州名册二号机械有限公司")).await;
    assert_eq!(second["status"], "pool", "rep_a is on leave: {second}");
    // Back, and a new rep through the API: both take leads again.
    profile(&app, "rep_a", 10, &["浙江"], true).await;
    profile(&app, "rep_b", 10, &["浙江"], true).await;
    let third = create_lead(&app, &manager, &lead_body("杭州名册三号机械有限公司")).await;
    let fourth = create_lead(&app, &manager, &lead_body("杭州名册四号机械有限公司")).await;
    let mut owners = vec![s(&third["owner_id"]), s(&fourth["owner_id"])];
    owners.sort();
    let mut expected = vec![app.users["rep_a"].as_str(), app.users["rep_b"].as_str()];
    expected.sort();
    assert_eq!(owners, expected, "{third} {fourth}");
    // Deactivated straight in the database: no longer a candidate.
    app.deactivate("rep_b").await;
    for n in 5..8 {
        let lead = create_lead(
            &app,
            &manager,
            &lead_body(&format!("杭州名册{n}号机械有限公司")),
        )
        .await;
        assert_eq!(lead["owner_id"], app.users["rep_a"].as_str(), "{lead}");
    }

    // Every kind of change moves the version; other columns and other orgs' changes do not.
    let version = || async {
        roster_version(&app.db, &app.org_id)
            .await
            .unwrap()
            .expect("every org has a roster version")
    };
    let rep_a = app.users["rep_a"].as_str();
    let team_id = user::Entity::find_by_id(rep_a)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .team_id
        .expect("rep_a has a team");
    let mut before = version().await;
    macro_rules! moves {
        ($what:expr, $change:expr) => {{
            $change.exec(&app.db).await.unwrap();
            let after = version().await;
            assert!(after > before, "{} must move the roster version", $what);
            before = after;
        }};
    }
    moves!(
        "a team change",
        user::Entity::update_many()
            .col_expr(user::Column::TeamId, Expr::value(Option::<String>::None))
            .filter(user::Column::Id.eq(rep_a))
    );
    moves!(
        "a role change",
        user::Entity::update_many()
            .col_expr(user::Column::Role, Expr::value("manager"))
            .filter(user::Column::Id.eq(rep_a))
    );
    moves!(
        "a team's new name",
        team::Entity::update_many()
            .col_expr(team::Column::Name, Expr::value("华东大客户二部"))
            .filter(team::Column::Id.eq(team_id.as_str()))
    );
    moves!(
        "a capacity change",
        rep_profile::Entity::update_many()
            .col_expr(rep_profile::Column::Capacity, Expr::value(3))
            .filter(rep_profile::Column::UserId.eq(rep_a))
    );
    moves!(
        "a removed rep profile",
        rep_profile::Entity::delete_many().filter(rep_profile::Column::UserId.eq(rep_a))
    );
    user::Entity::update_many()
        .col_expr(user::Column::DisplayName, Expr::value("王小明"))
        .filter(user::Column::Id.eq(rep_a))
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(
        version().await,
        before,
        "a display name is not part of the roster"
    );
}

/// Loads and last-assignment times come back from the database aggregated into one JSON row per
/// query; what a batch reads must be what was written, timestamps to the microsecond.
#[tokio::test]
async fn rep_loads_and_last_assignment_times_read_back_exactly() {
    use fieldproof::db::leads as repo;
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    let manager = app.token("manager_east").await;
    save_rules(&app, &manager, json!({"layers": [{"name": "zhejiang", "conditions": [{"field": "rep_covers_lead_region"}]}]})).await;
    let first = create_lead(&app, &manager, &lead_body("杭州负载一号机械有限公司")).await;
    let second = create_lead(&app, &manager, &lead_body("杭州负载二号机械有限公司")).await;
    let third = create_lead(&app, &manager, &lead_body("杭州负载三号机械有限公司")).await;

    let mut reps = repo::rep_roster(&app.db, &app.org_id).await.unwrap();
    repo::apply_loads(&app.db, &app.org_id, fieldproof::db::now(), &mut reps)
        .await
        .unwrap();
    let stored = |id: &str| {
        let id = id.to_owned();
        let db = app.db.clone();
        async move { repo::find(&db, &id).await.unwrap().unwrap() }
    };
    let (first, second, third) = (
        stored(s(&first["id"])).await,
        stored(s(&second["id"])).await,
        stored(s(&third["id"])).await,
    );
    for rep in &reps {
        let mine: Vec<_> = [&first, &second, &third]
            .into_iter()
            .filter(|l| l.owner_id.as_deref() == Some(rep.id.as_str()))
            .collect();
        assert_eq!(rep.protected_leads as usize, mine.len(), "{}", rep.id);
        assert_eq!(rep.pending_leads as usize, mine.len(), "{}", rep.id);
        assert_eq!(
            rep.last_assigned_at,
            mine.iter().filter_map(|l| l.assigned_at).max(),
            "{}",
            rep.id
        );
    }
    // Two Zhejiang reps, three leads: one of them holds two.
    assert_eq!(
        reps.iter().map(|r| r.protected_leads).max(),
        Some(2),
        "{reps:?}"
    );
}

/// The names of the indexes on `tables`, sorted.
async fn index_names(app: &TestApp, tables: &[&str]) -> Vec<String> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let backend = app.db.get_database_backend();
    let list = tables
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match backend {
        DbBackend::Sqlite => {
            format!("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({list})")
        }
        _ => format!("SELECT indexname AS name FROM pg_indexes WHERE tablename IN ({list})"),
    };
    let mut names: Vec<String> = app
        .db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect();
    names.sort();
    names
}

/// The daily claim cap counts a rep's claims from the partial index that holds claims only
/// (migration 000019; rule and owner decisions — nearly every decision — stay out of it), on both
/// databases; and that migration rolls back and reapplies.
#[tokio::test]
async fn the_claim_cap_reads_the_claims_only_index_and_the_index_migration_reverses() {
    use fieldproof::db::leads::claims_query;
    use fieldproof_migrations::{Migrator, MigratorTrait};

    let app = spawn_app_with(|s| s.jobs = false).await;
    let used = query_plan(
        &app,
        claims_query(&app.users["rep_a"], fieldproof::db::now()),
    )
    .await;
    assert!(used.contains("lead_decisions_claims_idx"), "{used}");

    let indexes = || index_names(&app, &["notifications", "lead_decisions"]);
    let reshaped = indexes().await;
    Migrator::down(
        &app.db,
        Some(steps_back_to("m20261127_000019_append_friendly_indexes")),
    )
    .await
    .unwrap();
    let before = indexes().await;
    assert!(
        before.contains(&"lead_decisions_rep_idx".to_owned()),
        "{before:?}"
    );
    assert!(
        before.contains(&"notifications_user_dedup_key".to_owned()),
        "{before:?}"
    );
    assert!(
        !before.contains(&"lead_decisions_claims_idx".to_owned()),
        "{before:?}"
    );
    Migrator::up(&app.db, None).await.unwrap();
    assert_eq!(indexes().await, reshaped);
    assert!(
        reshaped.contains(&"notifications_dedup_key_user".to_owned()),
        "{reshaped:?}"
    );
}

/// An intake's batch reports where its time went, phase by phase, on `/metrics`.
#[tokio::test]
async fn a_batch_reports_its_phases_on_metrics() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    let manager = app.token("manager_east").await;
    save_rules(&app, &manager, json!({"layers": [{"name": "zhejiang", "conditions": [{"field": "rep_covers_lead_region"}]}]})).await;
    create_lead(&app, &manager, &lead_body("杭州计时机械有限公司")).await;
    let text = app.metrics_text().await;
    for phase in leads::dispatch::BATCH_PHASES {
        let line = format!("fieldproof_lead_batch_phase_seconds_count{{phase=\"{phase}\"}}");
        assert!(text.contains(&line), "{line} missing:\n{text}");
    }
}

/// A rep's leads of a status are read through the load index `(org_id, status, owner_id, …)` on
/// both databases, so `leads_owner_status_idx` — a random page written by every assignment — is
/// gone (migration 000020); its `down` brings it back and `up` drops it again.
#[tokio::test]
async fn a_reps_leads_are_listed_through_the_load_index_and_the_owner_index_is_gone() {
    use fieldproof::db::PageRequest;
    use fieldproof::db::leads::list_queries;
    use fieldproof_migrations::{Migrator, MigratorTrait};

    let app = spawn_app_with(|s| s.jobs = false).await;
    let caller = app.caller("rep_a").await;
    let page = PageRequest {
        after: None,
        limit: 50,
    };
    let mut queries = list_queries(&caller, Some("assigned"), &page);
    assert_eq!(queries.len(), 1);
    let used = query_plan(&app, queries.remove(0)).await;
    assert!(used.contains("leads_org_status_owner_load_idx"), "{used}");

    let indexes = || index_names(&app, &["leads"]);
    let owner_index = "leads_owner_status_idx".to_owned();
    assert!(!indexes().await.contains(&owner_index));
    Migrator::down(
        &app.db,
        Some(steps_back_to("m20261127_000020_drop_lead_owner_index")),
    )
    .await
    .unwrap();
    assert!(indexes().await.contains(&owner_index));
    Migrator::up(&app.db, None).await.unwrap();
    assert!(!indexes().await.contains(&owner_index));
}

/// A rep's open deals weigh on their load by how far each has come: counted per owner and node
/// by the database's triggers on `deals` (migration 000025) — a batch used to count every open
/// deal's index entry inside its turn. The counts follow inserts, advances, wins, reassignments,
/// a node cleared and a deletion, and always equal a count of the deals themselves; they are
/// read through their primary key; the migration rolls back and, reapplied, counts the deals
/// that are there.
#[tokio::test]
async fn open_deals_weigh_on_rep_loads_counted_by_the_database_as_deals_move() {
    use fieldproof::db::entities::deal;
    use fieldproof::db::leads as repo;
    use fieldproof_domain::leads::assign::deal_weight_milli;
    use fieldproof_domain::pipeline::default_template::default_template;
    use fieldproof_migrations::{Migrator, MigratorTrait};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    let rep = app.token("rep_a").await;
    let mut deals = Vec::new();
    for i in 0..6 {
        let customer = app.customer_of("rep_a", &format!("负载客户{i}号")).await;
        let response = app
            .post("/api/v1/deals", &rep, &json!({"customer_id": customer, "title": format!("Deal {i}"), "presales_id": app.users["presales_east"]}))
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        deals.push(s(&body["id"]).to_owned());
    }
    assert_counts_match_deals(&app).await;
    let set = |id: &str, column: deal::Column, value: Option<&str>| {
        let id = id.to_owned();
        let value = value.map(str::to_owned);
        let db = app.db.clone();
        async move {
            deal::Entity::update_many()
                .col_expr(column, Expr::value(value))
                .filter(deal::Column::Id.eq(id))
                .exec(&db)
                .await
                .unwrap();
        }
    };
    // Two stay at the first node, one is further on, one is won, one goes to rep_b, one loses
    // its node and is then deleted.
    let template = default_template();
    let later = template.nodes[5].key.clone();
    set(&deals[2], deal::Column::CurrentNodeKey, Some(&later)).await;
    set(&deals[3], deal::Column::Status, Some("won")).await;
    set(
        &deals[4],
        deal::Column::OwnerId,
        Some(app.users["rep_b"].as_str()),
    )
    .await;
    set(&deals[5], deal::Column::CurrentNodeKey, None).await;
    assert_counts_match_deals(&app).await;
    let loads = |app: &TestApp| {
        let db = app.db.clone();
        let org = app.org_id.clone();
        async move {
            let mut reps = repo::rep_roster(&db, &org).await.unwrap();
            repo::apply_loads(&db, &org, fieldproof::db::now(), &mut reps)
                .await
                .unwrap();
            reps.into_iter()
                .map(|r| (r.id, r.deal_load_milli))
                .collect::<std::collections::HashMap<_, _>>()
        }
    };
    let nodes = template.nodes.len();
    let first = deal_weight_milli(Some(0), nodes);
    let with_unplaced = loads(&app).await;
    assert_eq!(
        with_unplaced[&app.users["rep_a"]],
        2 * first + deal_weight_milli(Some(5), nodes) + deal_weight_milli(None, nodes)
    );
    assert_eq!(with_unplaced[&app.users["rep_b"]], first);
    assert_eq!(with_unplaced[&app.users["rep_south"]], 0);

    deal::Entity::delete_many()
        .filter(deal::Column::Id.eq(deals[5].as_str()))
        .exec(&app.db)
        .await
        .unwrap();
    assert_counts_match_deals(&app).await;
    let expected = 2 * first + deal_weight_milli(Some(5), nodes);
    assert_eq!(loads(&app).await[&app.users["rep_a"]], expected);

    let used = statement_plan(&app, repo::open_deal_counts_query(&app.org_id)).await;
    assert!(
        used.contains("open_deal_counts_pkey")
            || used.contains("sqlite_autoindex_open_deal_counts"),
        "{used}"
    );
    Migrator::down(
        &app.db,
        Some(steps_back_to("m20261127_000025_open_deal_counts")),
    )
    .await
    .unwrap();
    assert!(open_deal_counts(&app).await.is_err(), "the table is gone");
    Migrator::up(&app.db, None).await.unwrap();
    assert_counts_match_deals(&app).await;
    assert_eq!(loads(&app).await[&app.users["rep_a"]], expected);
}

/// Rows written the way a batch of intakes writes them (`db::insert_rows`: on PostgreSQL one
/// statement of arrays, the columns that can be NULL as array literals) come back exactly:
/// quotes, backslashes, braces, commas, the word NULL, newlines and Chinese in text; NULL and
/// set values side by side in one column; times to the microsecond.
#[tokio::test]
async fn rows_written_as_one_statement_come_back_exactly() {
    use fieldproof::db::leads as repo;
    use fieldproof::services::leads::insertable;
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    let admin = app.token("admin").await;
    let response = app
        .post("/api/v1/leads", &admin, &lead_body("原样写回有限公司"))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let template = repo::find(&app.db, s(&body["id"])).await.unwrap().unwrap();
    let at = time::macros::datetime!(2026-11-27 08:15:30.123456 UTC);
    let tricky = [
        r#"引号"甲"\乙{丙},NULL"#,
        "NULL",
        "line one\nline two, } { \\ \"",
    ];
    let rows: Vec<_> = tricky
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut row = template.clone();
            row.id = fieldproof::db::new_id();
            row.company = (*text).to_owned();
            row.company_key = format!("key {i}");
            row.notes = text.repeat(i + 1);
            row.phone = (i != 1).then(|| (*text).to_owned());
            row.phone_key = (i == 1).then(|| "NULL".to_owned());
            row.owner_id = (i == 0).then(|| app.users["rep_a"].clone());
            row.protection_ends_at = (i != 2).then_some(at);
            row.first_activity_at = (i == 2).then_some(at);
            row.needs_assignment = i == 1;
            row.annual_purchase_fen = -(i as i64) * 1_000_000_007;
            row
        })
        .collect();
    let written = fieldproof::db::insert_rows(
        &app.db,
        rows.iter().cloned().map(insertable).collect(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(written, 3);
    for row in &rows {
        assert_eq!(&repo::find(&app.db, &row.id).await.unwrap().unwrap(), row);
    }
}

/// `open_deal_counts` as (org, owner, node, deals), zero counts left out, sorted.
async fn open_deal_counts(
    app: &TestApp,
) -> Result<Vec<(String, String, String, i64)>, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT org_id, owner_id, node_key, deals FROM open_deal_counts WHERE deals <> 0 \
             ORDER BY org_id, owner_id, node_key",
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get_by_index(0)?,
                r.try_get_by_index(1)?,
                r.try_get_by_index(2)?,
                r.try_get_by_index(3)?,
            ))
        })
        .collect()
}

/// The triggers' counts equal the open deals counted from `deals` itself.
async fn assert_counts_match_deals(app: &TestApp) {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT org_id, owner_id, COALESCE(current_node_key, ''), COUNT(*) FROM deals \
             WHERE status = 'open' GROUP BY org_id, owner_id, COALESCE(current_node_key, '') \
             ORDER BY 1, 2, 3",
        ))
        .await
        .unwrap();
    let counted: Vec<(String, String, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
                r.try_get_by_index(3).unwrap(),
            )
        })
        .collect();
    assert!(!counted.is_empty());
    assert_eq!(open_deal_counts(app).await.unwrap(), counted);
}

/// A burst's account checks (and slow requests, a long report) hold the request pool's
/// connections; the lead dispatcher's batches, which every intake waits for, must not queue behind
/// them. On PostgreSQL the dispatcher has connections of its own; on SQLite requests read through
/// the read-only pool and the dispatcher writes through the one writer.
#[tokio::test]
async fn leads_are_assigned_while_requests_hold_every_connection_of_their_pool() {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
    let app = spawn_app_with(|s| {
        s.jobs = false;
        s.database_max_connections = 3;
    })
    .await;
    profile(&app, "rep_a", 10, &["浙江"], true).await;
    let (requests, held) = match app.state.db.get_database_backend() {
        DbBackend::Postgres => (&app.state.db, 3),
        _ => (&app.state.reads, 4),
    };
    let mut holding = Vec::new();
    for _ in 0..held {
        let txn = requests.begin().await.unwrap();
        txn.execute_unprepared("SELECT 1").await.unwrap();
        holding.push(txn);
    }
    let row = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        leads::intake(
            &app.state.lead_dispatcher,
            &app.org_id,
            draft("连接占满时的公司"),
            leads::Origin::default(),
        ),
    )
    .await
    .expect("assigned while every request connection was held")
    .unwrap();
    assert_eq!(row.status, "assigned");
    assert_eq!(row.owner_id.as_deref(), Some(app.users["rep_a"].as_str()));
    drop(holding);
}

/// A rep's lead list is their own leads and the pool, a manager's also their team's, in id order,
/// a page at a time: read as one statement per part — their own through the load index, the
/// team's through `leads_team_idx` (migration 000023), the pool through `leads_pool_idx`
/// (migration 000022) — and merged, with pages that run across the parts and a lead that is in
/// two of them shown once; nobody else's leads.
#[tokio::test]
async fn lead_lists_merge_own_team_and_pool_page_by_page_each_from_an_index() {
    use fieldproof::auth::Caller;
    use fieldproof::db::PageRequest;
    use fieldproof::db::leads::{self as repo, list_queries};
    use fieldproof_migrations::{Migrator, MigratorTrait};
    use sea_orm::ActiveModelTrait;

    let app = spawn_app_with(|s| s.jobs = false).await;
    let rep = app.caller("rep_a").await;
    let manager = app.caller("manager_east").await;
    // Interleaved in time: leads of rep_a, rep_b and the manager (team East), rep_south (team
    // South) and the pool.
    let owners = [
        Some("rep_a"),
        None,
        Some("rep_b"),
        Some("rep_a"),
        Some("manager_east"),
        None,
        Some("rep_south"),
        None,
        Some("rep_a"),
        Some("rep_b"),
        None,
        Some("rep_a"),
    ];
    let (mut for_rep, mut for_manager) = (Vec::new(), Vec::new());
    for (i, owner) in owners.iter().enumerate() {
        let mut row = leads::new_lead(
            &app.org_id,
            draft(&format!("列表{i}号公司")),
            &leads::Origin::default(),
            fieldproof::db::now(),
        );
        if let Some(who) = owner {
            row.owner_id = Some(app.users[who].clone());
            row.team_id = Some(app.teams[usize::from(*who == "rep_south")].clone());
            row.status = if i % 2 == 0 {
                repo::ASSIGNED
            } else {
                repo::CONVERTED
            }
            .to_owned();
            row.needs_assignment = false;
        }
        if matches!(owner, None | Some("rep_a")) {
            for_rep.push(row.id.clone());
        }
        if *owner != Some("rep_south") {
            for_manager.push(row.id.clone());
        }
        leads::insertable(row).insert(&app.db).await.unwrap();
    }
    for_rep.sort();
    for_manager.sort();

    let pages = |caller: Caller| {
        let app = &app;
        async move {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = PageRequest {
                    after: after.clone(),
                    limit: 3,
                };
                let got = repo::list_visible(&app.db, &caller, None, &page)
                    .await
                    .unwrap();
                assert!(got.items.len() <= 3);
                seen.extend(got.items.iter().map(|l| l.id.clone()));
                match got.next_cursor {
                    Some(cursor) => after = Some(cursor),
                    None => return seen,
                }
            }
        }
    };
    assert_eq!(pages(rep.clone()).await, for_rep);
    assert_eq!(pages(manager.clone()).await, for_manager);
    // The status filter keeps to one side.
    let all = PageRequest {
        after: None,
        limit: 50,
    };
    let pool = repo::list_visible(&app.db, &rep, Some("pool"), &all)
        .await
        .unwrap();
    assert_eq!(pool.items.len(), 4);
    assert!(pool.items.iter().all(|l| l.status == "pool"));
    let held = repo::list_visible(&app.db, &manager, Some("assigned"), &all)
        .await
        .unwrap();
    assert_eq!(
        held.items.len(),
        4,
        "rep_a's two, rep_b's and the manager's own"
    );

    let plans = |caller: Caller| {
        let app = &app;
        let all = all.clone();
        async move {
            let mut plans = Vec::new();
            for query in list_queries(&caller, None, &all) {
                plans.push(query_plan(app, query).await);
            }
            plans
        }
    };
    let rep_plans = plans(rep).await;
    assert_eq!(rep_plans.len(), 2, "{rep_plans:?}");
    assert!(
        rep_plans[0].contains("leads_org_status_owner_load_idx"),
        "{}",
        rep_plans[0]
    );
    assert!(rep_plans[1].contains("leads_pool_idx"), "{}", rep_plans[1]);
    let manager_plans = plans(manager).await;
    assert_eq!(manager_plans.len(), 3, "{manager_plans:?}");
    assert!(
        manager_plans[1].contains("leads_team_idx"),
        "{}",
        manager_plans[1]
    );

    let indexes = || index_names(&app, &["leads"]);
    Migrator::down(
        &app.db,
        Some(steps_back_to("m20261127_000022_lead_pool_index")),
    )
    .await
    .unwrap();
    let gone = indexes().await;
    assert!(!gone.contains(&"leads_pool_idx".to_owned()), "{gone:?}");
    assert!(!gone.contains(&"leads_team_idx".to_owned()), "{gone:?}");
    Migrator::up(&app.db, None).await.unwrap();
    let back = indexes().await;
    assert!(back.contains(&"leads_pool_idx".to_owned()), "{back:?}");
    assert!(back.contains(&"leads_team_idx".to_owned()), "{back:?}");
}

/// The orphan sweep reads upload leases by age through `upload_leases_created_idx` (migration
/// 000024, beside the other migrations' index tests for their helpers): `down` drops it, `up`
/// brings it back.
#[tokio::test]
async fn the_lease_age_index_comes_and_goes_with_its_migration() {
    use fieldproof_migrations::{Migrator, MigratorTrait};
    let app = spawn_app_with(|s| s.jobs = false).await;
    let indexes = || index_names(&app, &["upload_leases"]);
    assert!(
        indexes()
            .await
            .contains(&"upload_leases_created_idx".to_owned())
    );
    Migrator::down(
        &app.db,
        Some(steps_back_to("m20261127_000024_upload_lease_age_index")),
    )
    .await
    .unwrap();
    let gone = indexes().await;
    assert!(
        !gone.contains(&"upload_leases_created_idx".to_owned()),
        "{gone:?}"
    );
    assert!(
        gone.contains(&"upload_leases_sha_idx".to_owned()),
        "{gone:?}"
    );
    Migrator::up(&app.db, None).await.unwrap();
    assert!(
        indexes()
            .await
            .contains(&"upload_leases_created_idx".to_owned())
    );
}

/// A forming batch keeps taking leads while they keep coming (`LEAD_BATCH_GATHER_MS`): a lead
/// that arrives a moment after another joins its batch — one turn, one assignment time — instead
/// of waiting for the first one's batch to finish and then paying a batch of its own.
#[tokio::test]
async fn a_lead_arriving_a_moment_after_another_joins_its_batch() {
    let app = spawn_app_with(|s| {
        s.jobs = false;
        s.lead_batch_gather_ms = 300;
    })
    .await;
    three_reps(&app).await;
    let admin = app.token("admin").await;
    let early = lead_body("先到有限公司");
    let first = app.post("/api/v1/leads", &admin, &early);
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        app.post("/api/v1/leads", &admin, &lead_body("后到有限公司"))
            .await
    };
    let (first, second) = tokio::join!(first, second);
    let mut assigned = Vec::new();
    for response in [first, second] {
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "assigned", "{body}");
        assigned.push(body["assigned_at"].clone());
    }
    assert_eq!(assigned[0], assigned[1], "one batch, one turn");
}

/// The intake's account check is the dispatcher's, made for a whole batch at once: a lead sent
/// with the token of a logged-out session or of a deactivated account is refused like any other
/// request of theirs (`401 token_invalid`) and nothing is stored; in a burst mixing them with
/// valid requests each gets its own answer and only the valid leads are stored, in the
/// account's org.
#[tokio::test]
async fn an_intake_batch_checks_every_requests_account_and_stores_only_the_valid() {
    use fieldproof::db::entities::lead;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 50, &["浙江"], true).await;
    let manager = app.token("manager_east").await;
    let logged_out = app.login_pair("rep_b", None).await;
    let logged_out = s(&logged_out["access_token"]).to_owned();
    let response = app
        .request(Method::POST, "/api/v1/auth/logout", Some(&logged_out))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let deactivated = app.token("rep_a").await;
    app.deactivate("rep_a").await;

    let sends = (0..12).map(|i| {
        let token = match i % 3 {
            0 => manager.clone(),
            1 => logged_out.clone(),
            _ => deactivated.clone(),
        };
        let app = &app;
        async move {
            let r = app
                .post(
                    "/api/v1/leads",
                    &token,
                    &lead_body(&format!("批内核验{i}号有限公司")),
                )
                .await;
            (i, r)
        }
    });
    for (i, response) in futures_util::future::join_all(sends).await {
        if i % 3 == 0 {
            assert!([201, 202].contains(&response.status().as_u16()), "{i}");
        } else {
            error_body(response, 401, "token_invalid").await;
        }
    }
    let stored = lead::Entity::find()
        .filter(lead::Column::Company.starts_with("批内核验"))
        .all(&app.db)
        .await
        .unwrap();
    let mut companies: Vec<&str> = stored.iter().map(|l| l.company.as_str()).collect();
    companies.sort();
    assert_eq!(
        companies,
        [
            "批内核验0号有限公司",
            "批内核验3号有限公司",
            "批内核验6号有限公司",
            "批内核验9号有限公司"
        ]
    );
    assert!(
        stored.iter().all(|l| l.org_id == app.org_id),
        "the account's org"
    );
}

/// Set the lead's protection window to have ended an hour ago (nothing else changes).
async fn end_window(app: &TestApp, lead_id: &str) {
    use fieldproof::db::entities::lead;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let row = fieldproof::db::leads::find(&app.db, lead_id)
        .await
        .unwrap()
        .expect("lead");
    let mut active: lead::ActiveModel = row.into();
    active.protection_ends_at = Set(Some(fieldproof::db::now() - time::Duration::hours(1)));
    active.update(&app.db).await.unwrap();
}

/// A follow-up counts only while the lead is still its owner's to work: after the window ended
/// unworked (before the expiry scan got to it) it is refused with nothing written and the lead
/// still goes back to the pool; once followed up in time, later follow-ups are fine; and a
/// follow-up from a stale read of a lead that went to the pool and to another rep meanwhile
/// writes nothing onto that rep's lead.
#[tokio::test]
async fn a_follow_up_counts_only_while_the_lead_is_still_the_owners_to_work() {
    use fieldproof::db::entities::lead_activity;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 10, &[], true).await;
    profile(&app, "rep_b", 10, &[], true).await;
    let manager = app.token("manager_east").await;
    let late = create_lead(&app, &manager, &lead_body("迟到跟进机械有限公司")).await;
    let worked = create_lead(&app, &manager, &lead_body("及时跟进机械有限公司")).await;
    let owner_of = |lead: &Value| {
        if lead["owner_id"] == app.users["rep_a"] {
            "rep_a"
        } else {
            "rep_b"
        }
    };
    let late_id = s(&late["id"]).to_owned();
    let stale = fieldproof::db::leads::find(&app.db, &late_id)
        .await
        .unwrap()
        .unwrap();
    let late_owner = owner_of(&late);
    let token = app.token(late_owner).await;
    let note = json!({"channel": "call", "summary": "打了电话"});
    end_window(&app, &late_id).await;
    let body = error_body(
        app.post(
            &format!("/api/v1/leads/{late_id}/activities"),
            &token,
            &note,
        )
        .await,
        409,
        "lead_not_yours",
    )
    .await;
    assert_eq!(body["details"]["status"], "assigned");
    let activities = lead_activity::Entity::find()
        .filter(lead_activity::Column::LeadId.eq(late_id.as_str()))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(activities, 0, "nothing written");
    let block = time::Duration::hours(72);
    assert_eq!(
        protection::expire(&app.db, fieldproof::db::now(), block)
            .await
            .unwrap(),
        1,
        "the refused follow-up did not stop the clock"
    );

    // Another rep claims it from the pool; the first owner's stale follow-up writes nothing.
    let other = if late_owner == "rep_a" {
        "rep_b"
    } else {
        "rep_a"
    };
    let claimed = app
        .post(
            &format!("/api/v1/leads/{late_id}/claim"),
            &app.token(other).await,
            &json!({}),
        )
        .await;
    assert_eq!(claimed.status(), 200);
    let refused = protection::follow_up(
        &app.db,
        &stale,
        &app.users[late_owner],
        "call",
        "旧页面上的跟进",
        fieldproof::db::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        refused,
        Err(protection::NotYours {
            status: "assigned".into()
        })
    );
    let activities = lead_activity::Entity::find()
        .filter(lead_activity::Column::LeadId.eq(late_id.as_str()))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(activities, 0, "nothing on the new owner's lead");

    // Followed up in time: the lead is worked, and later follow-ups count after the window.
    let worked_id = s(&worked["id"]).to_owned();
    let token = app.token(owner_of(&worked)).await;
    let path = format!("/api/v1/leads/{worked_id}/activities");
    assert_eq!(app.post(&path, &token, &note).await.status(), 201);
    end_window(&app, &worked_id).await;
    assert_eq!(app.post(&path, &token, &note).await.status(), 201);
    assert_eq!(
        protection::expire(&app.db, fieldproof::db::now(), block)
            .await
            .unwrap(),
        0
    );
}

/// Two conversions racing (a double tap that both passed the route's check): one customer.
#[tokio::test]
async fn two_racing_conversions_make_one_customer() {
    use fieldproof::db::entities::customer;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 10, &[], true).await;
    profile(&app, "rep_b", 10, &[], true).await;
    let manager = app.token("manager_east").await;
    let lead = create_lead(&app, &manager, &lead_body("双击转化机械有限公司")).await;
    let row = fieldproof::db::leads::find(&app.db, s(&lead["id"]))
        .await
        .unwrap()
        .unwrap();
    let owner = if lead["owner_id"] == app.users["rep_a"] {
        "rep_a"
    } else {
        "rep_b"
    };
    let caller = app.caller(owner).await;
    let first = protection::convert(&app.db, row.clone(), &caller)
        .await
        .unwrap()
        .expect("the first converts");
    assert_eq!(first.status, "converted");
    assert!(first.customer_id.is_some());
    let second = protection::convert(&app.db, row, &caller).await.unwrap();
    assert_eq!(
        second,
        Err(protection::NotYours {
            status: "converted".into()
        })
    );
    let customers = customer::Entity::find()
        .filter(customer::Column::OrgId.eq(app.org_id.as_str()))
        .filter(customer::Column::Name.eq("双击转化机械有限公司"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(customers, 1);
    let stored = fieldproof::db::leads::find(&app.db, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.customer_id, first.customer_id);
}

/// More expired leads than one scan batch (200) all go back in one pass.
#[tokio::test]
async fn one_expiry_pass_returns_every_expired_lead_not_only_the_first_batch() {
    use fieldproof::db::entities::lead;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let app = spawn_app_with(|s| s.jobs = false).await;
    let now = fieldproof::db::now();
    let rows: Vec<lead::ActiveModel> = (0..230)
        .map(|i| {
            let mut row = leads::new_row(
                &app.org_id,
                draft(&format!("到期{i}号机械有限公司")),
                &leads::Origin::default(),
                now - time::Duration::hours(30),
            );
            row.status = Set("assigned".into());
            row.owner_id = Set(Some(app.users["rep_a"].clone()));
            row.assigned_by = Set(Some("rule".into()));
            row.assigned_at = Set(Some(now - time::Duration::hours(30)));
            row.protection_ends_at = Set(Some(now - time::Duration::hours(6)));
            row.needs_assignment = Set(false);
            row
        })
        .collect();
    for chunk in rows.chunks(50) {
        lead::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await
            .unwrap();
    }
    assert_eq!(
        protection::expire(&app.db, now, time::Duration::hours(72))
            .await
            .unwrap(),
        230
    );
}

/// An org whose waiting leads cannot be decided (its stored rule set unreadable) does not hold
/// up another org's, even when its leads are the oldest waiting.
#[tokio::test]
async fn a_failing_org_does_not_stop_the_scheduler_assigning_other_orgs_leads() {
    use fieldproof::db::entities::{lead, lead_rule_set};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let app = spawn_app_with(|s| s.jobs = false).await;
    three_reps(&app).await;
    let broken = fieldproof::db::orgs::create(&app.db, "Broken Org")
        .await
        .unwrap();
    lead_rule_set::Entity::insert(lead_rule_set::ActiveModel {
        id: Set(fieldproof::db::new_id()),
        org_id: Set(broken.id.clone()),
        version: Set(1),
        rules: Set(json!({"not": "a rule set"})),
        created_by: Set("someone".into()),
        created_at: Set(fieldproof::db::now()),
    })
    .exec_without_returning(&app.db)
    .await
    .unwrap();
    let now = fieldproof::db::now();
    let waiting = |org: &str, company: &str, at: time::OffsetDateTime| {
        let mut row = leads::new_row(org, draft(company), &leads::Origin::default(), at);
        row.needs_assignment = Set(true);
        row
    };
    let mut rows: Vec<lead::ActiveModel> = (0..3)
        .map(|i| {
            waiting(
                &broken.id,
                &format!("坏规则{i}号公司"),
                now - time::Duration::hours(2),
            )
        })
        .collect();
    rows.push(waiting(&app.org_id, "正常等待机械有限公司", now));
    lead::Entity::insert_many(rows)
        .exec_without_returning(&app.db)
        .await
        .unwrap();

    let assigned = leads::assign_pending(&app.db, 2).await.unwrap();
    assert_eq!(assigned, 1, "the healthy org's lead");
    let still_waiting = fieldproof::db::leads::awaiting_assignment(&app.db, 10, &[])
        .await
        .unwrap();
    assert_eq!(still_waiting.len(), 3);
    assert!(still_waiting.iter().all(|(_, org)| *org == broken.id));
}

/// A period given in China's offset (a week from Monday 00:00 +08:00) selects the same leads
/// as the same instants in UTC (SQLite compares stored times as text).
#[tokio::test]
async fn a_period_in_another_offset_selects_the_same_leads() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let manager = app.token("manager_east").await;
    let lead = create_lead(&app, &manager, &lead_body("东八区机械有限公司")).await;
    let now = fieldproof::db::now();
    let china = time::UtcOffset::from_hms(8, 0, 0).unwrap();
    let from = (now - time::Duration::minutes(5)).to_offset(china);
    let to = (now + time::Duration::minutes(5)).to_offset(china);
    let found = fieldproof::db::leads::created_between(&app.db, &app.org_id, None, from, to)
        .await
        .unwrap();
    assert!(found.iter().any(|l| l.id == s(&lead["id"])), "{found:?}");
    let earlier = fieldproof::db::leads::created_between(
        &app.db,
        &app.org_id,
        None,
        (now - time::Duration::hours(2)).to_offset(china),
        (now - time::Duration::hours(1)).to_offset(china),
    )
    .await
    .unwrap();
    assert!(earlier.is_empty(), "{earlier:?}");
}

/// A rep's reclaim block outlives the lead expiring again, later, in another rep's hands (the
/// lead itself remembers only its last previous owner).
#[tokio::test]
async fn a_reclaim_block_survives_the_lead_expiring_again_in_other_hands() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    profile(&app, "rep_a", 10, &[], true).await;
    profile(&app, "rep_b", 10, &[], true).await;
    let manager = app.token("manager_east").await;
    let lead = create_lead(&app, &manager, &lead_body("两度到期机械有限公司")).await;
    let id = s(&lead["id"]).to_owned();
    let (first, second) = if lead["owner_id"] == app.users["rep_a"] {
        ("rep_a", "rep_b")
    } else {
        ("rep_b", "rep_a")
    };
    let block = time::Duration::hours(72);
    end_window(&app, &id).await;
    assert_eq!(
        protection::expire(&app.db, fieldproof::db::now(), block)
            .await
            .unwrap(),
        1
    );
    let claim = format!("/api/v1/leads/{id}/claim");
    let second_token = app.token(second).await;
    assert_eq!(
        app.post(&claim, &second_token, &json!({})).await.status(),
        200
    );
    end_window(&app, &id).await;
    assert_eq!(
        protection::expire(&app.db, fieldproof::db::now(), block)
            .await
            .unwrap(),
        1
    );
    for rep in [first, second] {
        let body = error_body(
            app.post(&claim, &app.token(rep).await, &json!({})).await,
            409,
            "lead_reclaim_blocked",
        )
        .await;
        assert!(body["details"]["until"].is_string(), "{body}");
    }
}
