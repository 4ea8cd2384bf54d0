//! The supervisor console, black-box: sign in with a cookie, CSRF refusals, the same scoping as
//! the API, a decision taken on the page moving the deal's node, the heatmap's CSV, the
//! distribution-health marks, nothing loaded from outside the app, a 10,000-item queue paging
//! fast, and screenshots taken by headless Chromium when it is installed.

use crate::evidence::{SITE, deal_at_site_survey, form, photo, upload, uuid};
use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with};
use crate::leads::{create_lead, east_leads, lead_body};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode, redirect};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A browser that keeps cookies and does not follow redirects (so tests see them).
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    fn remember(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().expect("cookie text");
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> Response {
        let response = self
            .client
            .get(self.app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("get");
        self.remember(response.headers());
        response
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.post_with(path, fields, &[]).await
    }

    async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("post");
        self.remember(response.headers());
        response
    }

    async fn html(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("html")
    }

    /// Sign in through the form, as a person would.
    async fn signed_in(app: &'a TestApp, username: &str) -> Browser<'a> {
        let mut browser = Browser::new(app);
        let page = browser.html("/console/login").await;
        let token = csrf_of(&page);
        let response = browser
            .post(
                "/console/login",
                &[
                    ("csrf", &token),
                    ("next", "/console"),
                    ("username", username),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(response.status(), 303, "sign in as {username}");
        assert!(browser.cookies.contains_key("fp_console"));
        browser
    }
}

/// The first CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    let end = html[start..].find('"').expect("end of csrf value") + start;
    html[start..end].to_owned()
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A deal of rep_a at the site survey with two good photos and one taken ~500 m away.
pub(crate) async fn deal_with_a_far_photo(app: &TestApp) -> (String, String) {
    let s = deal_at_site_survey(app, "杭州恒力机械").await;
    for (seed, tag) in [(1, "nameplate"), (2, "piping")] {
        let r = upload(
            app,
            &s.rep,
            &s.deal,
            "site_survey",
            form(&uuid(), &[tag], photo(seed, SITE.0 + 0.0005, SITE.1, 30)),
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let far: Value = upload(
        app,
        &s.rep,
        &s.deal,
        "site_survey",
        form(
            &uuid(),
            &["dimensions"],
            photo(31, SITE.0 + 0.0045, SITE.1, 15),
        ),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(far["verdict"], "rejected", "{far}");
    (s.deal, far["id"].as_str().expect("id").to_owned())
}

pub(crate) async fn current_node(app: &TestApp, deal: &str) -> String {
    let token = app.token("supervisor_east").await;
    let view: Value = app
        .get(&format!("/api/v1/deals/{deal}"), &token)
        .await
        .json()
        .await
        .expect("json");
    view["current_node"].as_str().unwrap_or_default().to_owned()
}

pub(crate) async fn review_state(app: &TestApp, evidence: &str) -> String {
    let token = app.token("supervisor_east").await;
    let view: Value = app
        .get(&format!("/api/v1/evidence/{evidence}"), &token)
        .await
        .json()
        .await
        .expect("json");
    view["review_state"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_supervisor_approves_an_outside_site_photo_from_the_queue_and_the_node_moves() {
    let app = spawn_app().await;
    let (deal, far) = deal_with_a_far_photo(&app).await;
    assert_eq!(current_node(&app, &deal).await, "site_survey");

    let mut browser = Browser::signed_in(&app, "supervisor_east").await;
    let queue = browser.html("/console/reviews").await;
    assert!(queue.contains(&format!("id=\"ev-{far}\"")), "{queue}");
    assert!(queue.contains("<code>outside_site</code>"));
    // The domain's sentence with its numbers, in Chinese by default.
    assert!(queue.contains("照片拍摄地点距离客户现场"), "{queue}");
    assert!(queue.contains("米（允许 300 米）"));
    assert!(queue.contains("<svg class=\"plot\""));
    assert!(queue.contains("class=\"exif\""));
    assert!(queue.contains(&format!("/console/evidence/{far}/thumbnail?exp=")));

    // The thumbnail loads through the console under its grant.
    let thumb_marker = format!("/console/evidence/{far}/thumbnail?");
    let start = queue.find(&thumb_marker).expect("thumbnail url");
    let end = queue[start..].find('"').expect("end") + start;
    let thumb_url = queue[start..end].replace("&amp;", "&");
    let thumb = browser.get(&thumb_url).await;
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");

    // A reason is required.
    let token = csrf_of(&queue);
    let short = browser
        .post(
            &format!("/console/reviews/{far}/decision"),
            &[
                ("csrf", &token),
                ("decision", "approve"),
                ("reason", "ok"),
                ("back", "/console/reviews"),
            ],
        )
        .await;
    assert_eq!(short.status(), 303);
    assert!(location(&short).ends_with("flash=reason"));
    assert_eq!(review_state(&app, &far).await, "pending");

    let approved = browser
        .post(
            &format!("/console/reviews/{far}/decision"),
            &[
                ("csrf", &token),
                ("decision", "approve"),
                ("reason", "测量照片在门卫处拍摄，已电话核实"),
                ("back", "/console/reviews"),
            ],
        )
        .await;
    assert_eq!(approved.status(), 303);
    assert_eq!(location(&approved), "/console/reviews?flash=approved");
    assert_eq!(review_state(&app, &far).await, "approved");
    assert_eq!(current_node(&app, &deal).await, "pain_points_confirmed");

    // The queue is empty now; the deal page shows the path, the decision and an intact chain.
    let queue = browser.html("/console/reviews?flash=approved").await;
    assert!(!queue.contains(&format!("id=\"ev-{far}\"")));
    assert!(queue.contains("已批准"));
    let page = browser.html(&format!("/console/deals/{deal}")).await;
    assert!(page.contains("<code>evidence_approved</code>"), "{page}");
    assert!(page.contains("哈希链完整"));
    assert!(page.contains("测量照片在门卫处拍摄"));
    assert_eq!(page.matches("<li class=\"passed\"").count(), 2, "{page}");
    assert_eq!(page.matches("<li class=\"current\"").count(), 1);

    // The English switch.
    let switched = browser.get("/console/lang/en?next=/console/reviews").await;
    assert_eq!(switched.status(), 303);
    assert_eq!(location(&switched), "/console/reviews");
    let english = browser.html("/console/reviews").await;
    assert!(english.contains("Review queue"));
    assert!(english.contains("<html lang=\"en\">"));
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_or_from_another_site_are_refused() {
    let app = spawn_app().await;
    let (_deal, far) = deal_with_a_far_photo(&app).await;
    let mut browser = Browser::signed_in(&app, "supervisor_east").await;
    let token = csrf_of(&browser.html("/console/reviews").await);
    let path = format!("/console/reviews/{far}/decision");
    let reason = ("reason", "looks fine to me");
    let approve = ("decision", "approve");

    let missing = browser.post(&path, &[approve, reason]).await;
    assert_eq!(missing.status(), 403);
    assert!(missing.text().await.unwrap().contains("csrf_rejected"));
    let wrong = browser
        .post(&path, &[("csrf", "not-the-token"), approve, reason])
        .await;
    assert_eq!(wrong.status(), 403);
    let cross_site = browser
        .post_with(
            &path,
            &[("csrf", &token), approve, reason],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(cross_site.status(), 403);
    assert_eq!(review_state(&app, &far).await, "pending");

    // Another session's token does not work in this one.
    let mut other = Browser::signed_in(&app, "supervisor_east2").await;
    let theirs = other.cookies["fp_console"].clone();
    assert_ne!(theirs, browser.cookies["fp_console"]);
    let their_token = csrf_of(&other.html("/console/reviews").await);
    assert_ne!(their_token, token);
    let mixed = browser
        .post(&path, &[("csrf", &their_token), approve, reason])
        .await;
    assert_eq!(mixed.status(), 403);

    // Sign-in itself needs the double-submit token.
    let mut stranger = Browser::new(&app);
    let forged = stranger
        .post(
            "/console/login",
            &[
                ("csrf", "made-up"),
                ("username", "supervisor_east"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert!(!stranger.cookies.contains_key("fp_console"));

    // Logout needs the token too, and then the session is gone.
    assert_eq!(browser.post("/console/logout", &[]).await.status(), 403);
    let out = browser.post("/console/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status(), 303);
    assert!(!browser.cookies.contains_key("fp_console"));
    let after = browser.get("/console/reviews").await;
    assert_eq!(after.status(), 303);
    assert!(location(&after).starts_with("/console/login?next="));
    // A copy of the old cookie is dead as well (the session was revoked, not just forgotten).
    let mut replay = Browser::new(&app);
    replay.cookies.insert("fp_console".into(), theirs.clone());
    assert_eq!(replay.get("/console/reviews").await.status(), 200);
    let their_logout = other
        .post("/console/logout", &[("csrf", &their_token)])
        .await;
    assert_eq!(their_logout.status(), 303);
    assert_eq!(replay.get("/console/reviews").await.status(), 303);
}

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_wrong_passwords_are_told_so() {
    let app = spawn_app().await;
    let mut anonymous = Browser::new(&app);
    let redirect = anonymous.get("/console/reviews?team=x").await;
    assert_eq!(redirect.status(), 303);
    assert_eq!(
        location(&redirect),
        "/console/login?next=%2Fconsole%2Freviews%3Fteam%3Dx"
    );

    let mut browser = Browser::new(&app);
    let login = browser.get("/console/login").await;
    let set = login.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.starts_with("fp_login_csrf="), "{set}");
    let token = csrf_of(&login.text().await.unwrap());
    let wrong = browser
        .post(
            "/console/login",
            &[
                ("csrf", &token),
                ("username", "supervisor_east"),
                ("password", "wrong-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("用户名或密码错误"));
    let ok = browser
        .post(
            "/console/login",
            &[
                ("csrf", &token),
                ("next", "/console/heatmap"),
                ("username", "supervisor_east"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(location(&ok), "/console/heatmap");
    let session = ok
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("fp_console="))
        .expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/console"] {
        assert!(session.contains(flag), "{session}");
    }
    assert!(!session.contains("Secure"), "plain http: {session}");

    // Behind a TLS-terminating proxy the cookie is Secure.
    let mut proxied = Browser::new(&app);
    let login = proxied.get("/console/login").await;
    let token = csrf_of(&login.text().await.unwrap());
    let ok = proxied
        .post_with(
            "/console/login",
            &[
                ("csrf", &token),
                ("username", "supervisor_east"),
                ("password", PASSWORD),
            ],
            &[("x-forwarded-proto", "https")],
        )
        .await;
    let session = ok
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("fp_console="))
        .expect("session cookie");
    assert!(session.contains("Secure"), "{session}");
    // Off-site return addresses are ignored.
    let mut browser = Browser::new(&app);
    let token = csrf_of(&browser.html("/console/login").await);
    let ok = browser
        .post(
            "/console/login",
            &[
                ("csrf", &token),
                ("next", "//evil.example/console"),
                ("username", "supervisor_east"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(location(&ok), "/console");
}

#[tokio::test]
async fn a_rep_cannot_open_the_queue_and_another_teams_evidence_is_not_found() {
    let app = spawn_app().await;
    let (deal, far) = deal_with_a_far_photo(&app).await;

    let mut rep = Browser::signed_in(&app, "rep_a").await;
    let queue = rep.get("/console/reviews").await;
    assert_eq!(queue.status(), 404);
    assert!(queue.text().await.unwrap().contains("not_found"));
    // The rep still sees their own deal, without decision buttons anywhere.
    let own = rep.html(&format!("/console/deals/{deal}")).await;
    assert!(!own.contains("/decision"));
    let home = rep.get("/console").await;
    assert_eq!(location(&home), "/console/deals");

    let mut south = Browser::signed_in(&app, "manager_south").await;
    let token = csrf_of(&south.html("/console/deals").await);
    assert_eq!(
        south.get(&format!("/console/deals/{deal}")).await.status(),
        404
    );
    assert_eq!(
        south
            .get(&format!("/console/reviews?team={}", app.teams[0]))
            .await
            .status(),
        404
    );
    let decided = south
        .post(
            &format!("/console/reviews/{far}/decision"),
            &[
                ("csrf", &token),
                ("decision", "reject"),
                ("reason", "not my team but trying"),
            ],
        )
        .await;
    assert_eq!(decided.status(), 404);
    let south_queue = south.html("/console/reviews").await;
    assert!(!south_queue.contains(&far));
    assert_eq!(
        south
            .get(&format!("/console/heatmap?team={}", app.teams[0]))
            .await
            .status(),
        404
    );

    // The east manager sees the item but only supervisors decide.
    let mut manager = Browser::signed_in(&app, "manager_east").await;
    let queue = manager.html("/console/reviews").await;
    assert!(queue.contains(&far));
    assert!(!queue.contains("/decision"));
    assert_eq!(review_state(&app, &far).await, "pending");
}

#[tokio::test]
async fn the_heatmap_page_colours_the_week_and_downloads_as_csv() {
    let app = spawn_app().await;
    let (_deal, _far) = deal_with_a_far_photo(&app).await;
    let mut browser = Browser::signed_in(&app, "supervisor_east").await;
    let page = browser.html("/console/heatmap").await;
    assert!(page.contains("<table class=\"heat\">"), "{page}");
    assert!(
        page.contains("class=\"cell h10\""),
        "visit booked 1/1: {page}"
    );
    assert!(page.contains("class=\"cell h0\""), "site survey 0/1");
    let csv = browser
        .get(&format!(
            "/console/heatmap.csv?team={}&week=2026-W48",
            app.teams[0]
        ))
        .await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers()["content-disposition"],
        "attachment; filename=\"heatmap-2026-W48.csv\""
    );
    let this_week = browser
        .get(&format!("/console/heatmap.csv?team={}", app.teams[0]))
        .await
        .text()
        .await
        .unwrap();
    let mut lines = this_week.lines();
    assert_eq!(
        lines.next(),
        Some("rep_id,node,entered,completed,completion_rate,median_hours,mean_hours,returns")
    );
    assert!(
        this_week.contains(&format!("{},site_survey,1,0,0,", app.users["rep_a"])),
        "{this_week}"
    );
    let bad = browser.get("/console/heatmap?week=2026-48").await;
    assert_eq!(bad.status(), 400);
}

/// Four leads of the East team assigned by a rule as they come in (so in no time), the first
/// converted by its owner in its window, the second moved by the manager to rep_south of the
/// South team: as in `leads::health_figures_count_latency_conversion_and_cross_group_moves`.
async fn leads_with_known_health(app: &TestApp) {
    let leads = east_leads(app, "manager_east", "健康", 4).await;
    let manager = app.token("manager_east").await;
    let id = |l: &Value| l["id"].as_str().unwrap_or_default().to_owned();
    let owner = if leads[0]["owner_id"] == app.users["rep_a"] {
        "rep_a"
    } else {
        "rep_b"
    };
    let owner = app.token(owner).await;
    let first = id(&leads[0]);
    app.post(
        &format!("/api/v1/leads/{first}/activities"),
        &owner,
        &json!({"channel": "visit", "summary": "上门"}),
    )
    .await;
    let converted = app
        .post(
            &format!("/api/v1/leads/{first}/convert"),
            &owner,
            &json!({}),
        )
        .await;
    assert_eq!(converted.status(), 200);
    let moved = app
        .post(
            &format!("/api/v1/leads/{}/reassign", id(&leads[1])),
            &manager,
            &json!({"rep_id": app.users["rep_south"]}),
        )
        .await;
    assert_eq!(moved.status(), 200);
}

/// One target card of the health page, by its id.
fn card<'p>(page: &'p str, id: &str) -> &'p str {
    let start = page
        .find(&format!("<article id=\"{id}\""))
        .unwrap_or_else(|| panic!("card {id} in {page}"));
    let end = page[start..].find("</article>").expect("end of card") + start;
    &page[start..end]
}

#[tokio::test]
async fn the_health_page_marks_each_figure_against_its_target_in_colour_and_words() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    leads_with_known_health(&app).await;

    // The whole org: 4 leads, all assigned at once; 1 converted, 1 moved to another team.
    let mut admin = Browser::signed_in(&app, "admin").await;
    let page = admin.html("/console/health").await;
    assert!(
        page.contains("<a class=\"current\" href=\"/console/health\">分配健康度</a>"),
        "{page}"
    );
    assert!(page.contains("<option value=\"\" selected>全公司</option>"));
    assert!(page.contains("<option value=\"30\" selected>最近 30 天</option>"));
    let latency = card(&page, "latency");
    assert!(latency.contains("class=\"target green\""), "{latency}");
    assert!(latency.contains("<span class=\"mark green\">达标</span>"));
    assert!(latency.contains("p90 0.0 分钟"));
    assert!(latency.contains("目标 p90 ≤ 15 分钟"));
    assert!(latency.contains("由规则分配的线索从创建到分配所用的时间"));
    let misassigned = card(&page, "misassignment");
    assert!(
        misassigned.contains("class=\"target red\""),
        "{misassigned}"
    );
    assert!(misassigned.contains("<span class=\"mark red\">未达标</span>"));
    assert!(misassigned.contains("25.0%"));
    assert!(misassigned.contains("<strong>1 / 4</strong>"));
    assert!(misassigned.contains("目标 ≤ 3%"));
    let conversion = card(&page, "conversion");
    assert!(conversion.contains("class=\"target red\""), "{conversion}");
    assert!(conversion.contains("<strong>1 / 4</strong>"));
    assert!(conversion.contains("目标 ≥ 41%"));
    let counts = card(&page, "counts");
    assert!(counts.contains("<dd>4</dd>"), "{counts}");
    let first_response = card(&page, "first-response");
    assert!(first_response.contains("n = 1"), "{first_response}");
    // Load fairness: every rep with a bar drawn by width, never by a style attribute.
    assert!(page.contains("<table class=\"fairness\">"));
    assert_eq!(page.matches("<svg class=\"load\"").count(), 3, "{page}");
    assert!(page.contains("<th>rep_south</th>"));
    assert!(!page.contains("style="));

    // The English switch.
    let switched = admin.get("/console/lang/en?next=/console/health").await;
    assert_eq!(location(&switched), "/console/health");
    let english = admin.html("/console/health").await;
    assert!(english.contains("<html lang=\"en\">"));
    assert!(english.contains(">Distribution health</a>"));
    let misassigned = card(&english, "misassignment");
    assert!(misassigned.contains("Cross-group mis-assignment"));
    assert!(misassigned.contains("<span class=\"mark red\">Off target</span>"));
    assert!(misassigned.contains("Leads a manager moved to another team ÷ leads assigned."));
    assert!(card(&english, "latency").contains("<span class=\"mark green\">On target</span>"));
    assert!(english.contains("Whole org"));

    // The East manager sees their team: every lead East got first, the one moved to South
    // included (it is East's mis-assignment). A fifth lead, converted in its window, makes
    // conversion 2 / 5 = 40 %: amber; 1 move in 5 is red. The API says the same.
    let token = app.token("manager_east").await;
    let fifth = create_lead(&app, &token, &lead_body("健康4号公司")).await;
    let owner = if fifth["owner_id"] == app.users["rep_a"] {
        "rep_a"
    } else {
        "rep_b"
    };
    let owner = app.token(owner).await;
    let fifth = fifth["id"].as_str().unwrap_or_default().to_owned();
    app.post(
        &format!("/api/v1/leads/{fifth}/activities"),
        &owner,
        &json!({"channel": "visit", "summary": "上门"}),
    )
    .await;
    let converted = app
        .post(
            &format!("/api/v1/leads/{fifth}/convert"),
            &owner,
            &json!({}),
        )
        .await;
    assert_eq!(converted.status(), 200);
    let mut manager = Browser::signed_in(&app, "manager_east").await;
    let east = manager.html("/console/health?days=7").await;
    assert!(east.contains("<option value=\"7\" selected>最近 7 天</option>"));
    assert!(
        !east.contains("全公司"),
        "no whole-org choice for a manager"
    );
    let conversion = card(&east, "conversion");
    assert!(
        conversion.contains("class=\"target amber\""),
        "{conversion}"
    );
    assert!(conversion.contains("<span class=\"mark amber\">接近</span>"));
    assert!(conversion.contains("40.0%") && conversion.contains("<strong>2 / 5</strong>"));
    let misassigned = card(&east, "misassignment");
    assert!(
        misassigned.contains("class=\"target red\""),
        "{misassigned}"
    );
    assert!(misassigned.contains("<strong>1 / 5</strong>"));
    let api: Value = app
        .get("/api/v1/leads/health?days=7", &token)
        .await
        .json()
        .await
        .expect("json");
    let f = &api["figures"];
    assert_eq!(f["conversion_in_window"]["mark"], "amber", "{api}");
    assert_eq!(f["cross_group_misassignment"]["mark"], "red");
    assert_eq!(f["assignment_latency"]["mark"], "green");

    // An admin (English since the switch) picking the South team: the lead moved there was
    // East's, South got none first.
    let south = admin
        .html(&format!("/console/health?team={}&days=90", app.teams[1]))
        .await;
    assert!(south.contains(&format!("<option value=\"{}\" selected>", app.teams[1])));
    for id in ["latency", "conversion", "misassignment"] {
        assert!(
            card(&south, id).contains("<span class=\"mark no_data\">No data</span>"),
            "{south}"
        );
    }
}

#[tokio::test]
async fn the_health_page_refuses_reps_other_teams_and_bad_periods_as_the_api_does() {
    let app = spawn_app_with(|s| s.jobs = false).await;
    let mut manager = Browser::signed_in(&app, "manager_east").await;
    // Nothing in the period: every mark says so.
    let empty = manager.html("/console/health").await;
    for id in ["latency", "conversion", "misassignment"] {
        assert!(
            card(&empty, id).contains("<span class=\"mark no_data\">无数据</span>"),
            "{empty}"
        );
    }
    let other = manager
        .get(&format!("/console/health?team={}", app.teams[1]))
        .await;
    assert_eq!(other.status(), 403);
    assert!(
        other
            .text()
            .await
            .unwrap()
            .contains("<code>forbidden</code>")
    );
    for days in ["0", "367", "week"] {
        let bad = manager.get(&format!("/console/health?days={days}")).await;
        assert_eq!(bad.status(), 422, "days={days}");
        assert!(bad.text().await.unwrap().contains("validation_failed"));
    }

    let mut rep = Browser::signed_in(&app, "rep_a").await;
    let refused = rep.get("/console/health").await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("<code>forbidden</code>")
    );
    assert!(!rep.html("/console/deals").await.contains("/console/health"));
    let token = app.token("rep_a").await;
    assert_eq!(app.get("/api/v1/leads/health", &token).await.status(), 403);

    // A manager with no team sees no org-wide figures, on the page or in the API.
    let admin = app.token("admin").await;
    let created = app
        .post(
            "/api/v1/users",
            &admin,
            &json!({"username": "manager_nowhere", "password": PASSWORD, "role": "manager"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let mut teamless = Browser::signed_in(&app, "manager_nowhere").await;
    assert_eq!(teamless.get("/console/health").await.status(), 403);
    let token = app.token("manager_nowhere").await;
    assert_eq!(app.get("/api/v1/leads/health", &token).await.status(), 403);
}

/// Every `http://`/`https://` reference in a text, except the app's own address.
fn external_references(text: &str, own: &str) -> Vec<String> {
    let mut found = Vec::new();
    for scheme in ["http://", "https://"] {
        let mut rest = text;
        while let Some(at) = rest.find(scheme) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| c == '"' || c == '\'' || c == ')' || c.is_whitespace())
                .unwrap_or(tail.len());
            let url = &tail[..end];
            if !url.starts_with(own) {
                found.push(url.to_owned());
            }
            rest = &tail[scheme.len()..];
        }
    }
    found
}

#[tokio::test]
async fn console_pages_and_assets_load_nothing_from_outside_the_app() {
    let app = spawn_app().await;
    let (deal, _far) = deal_with_a_far_photo(&app).await;
    let mut browser = Browser::new(&app);
    let login = browser.get("/console/login").await;
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    let mut texts = vec![login.text().await.unwrap()];
    let mut browser = Browser::signed_in(&app, "supervisor_east").await;
    for path in [
        "/console/reviews".to_owned(),
        format!("/console/deals/{deal}"),
        "/console/deals".to_owned(),
        "/console/heatmap".to_owned(),
        "/console/health".to_owned(),
    ] {
        texts.push(browser.html(&path).await);
    }
    // The assets the pages link.
    let queue = texts[1].clone();
    for marker in [
        "/console/static/console.css?v=",
        "/console/static/console.js?v=",
    ] {
        let start = queue.find(marker).expect("asset link");
        let end = queue[start..].find('"').unwrap() + start;
        let asset = browser.get(&queue[start..end]).await;
        assert_eq!(asset.status(), 200);
        assert!(
            asset.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        texts.push(asset.text().await.unwrap());
    }
    for text in &texts {
        let external = external_references(text, &app.address);
        assert!(external.is_empty(), "external references: {external:?}");
        assert!(!text.contains("//cdn") && !text.contains("@import") && !text.contains("url("));
    }
    assert!(browser.get("/console/nowhere").await.status() == 404);
}

#[tokio::test]
async fn a_queue_of_10000_pending_items_pages_in_well_under_a_second() {
    use fieldproof::db::entities::evidence;
    use sea_orm::{EntityTrait, IntoActiveModel, Set};

    let app = spawn_app().await;
    let (_deal, far) = deal_with_a_far_photo(&app).await;
    let template = fieldproof::db::evidence::find(&app.db, &far)
        .await
        .unwrap()
        .unwrap();
    let mut batch = Vec::new();
    for _ in 0..10_000 {
        let mut row = template.clone().into_active_model();
        row.id = Set(fieldproof::db::new_id());
        row.capture_id = Set(uuid());
        // Without a thumbnail: the page then draws no signed URL for them, as for HEIC.
        row.thumb_key = Set(None);
        batch.push(row);
        if batch.len() == 500 {
            evidence::Entity::insert_many(std::mem::take(&mut batch))
                .exec(&app.db)
                .await
                .unwrap();
        }
    }
    let mut browser = Browser::signed_in(&app, "supervisor_east").await;
    browser.html("/console/reviews").await;
    let mut timings = Vec::new();
    let mut next = "/console/reviews".to_owned();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let page = browser.html(&next).await;
        timings.push(started.elapsed());
        assert_eq!(page.matches("<article class=\"item\"").count(), 20);
        let marker = "class=\"next\" href=\"";
        let start = page.find(marker).expect("next page") + marker.len();
        let end = page[start..].find('"').unwrap() + start;
        next = page[start..end].replace("&amp;", "&");
    }
    timings.sort();
    eprintln!(
        "console queue page of 20 out of 10,001 pending: median {:?}",
        timings[1]
    );
    assert!(
        timings[1] < std::time::Duration::from_millis(1000),
        "{timings:?}"
    );
    assert_eq!(StatusCode::OK, browser.get(&next).await.status());
}

/// EXIF local time (+08:00) of `minutes_ago`.
pub(crate) fn local_exif_time(minutes_ago: i64) -> String {
    let at = (time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago))
        .to_offset(time::macros::offset!(+8));
    format!(
        "{:04}:{:02}:{:02} {:02}:{:02}:{:02}",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Debian's Chromium, if installed. Without it a browser test is skipped (saying why), except
/// under CI (`CI` set), where that is a failure: the test command installs it.
pub(crate) fn chromium(test: &str) -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: chromium is not installed (apt-get install -y chromium; scripts/test.sh does)"
        );
        eprintln!("{test} skipped: chromium is not installed (apt-get install -y chromium)");
    }
    found
}

/// Headless Chromium, when installed: screenshots of the queue, the deal page, the heatmap and
/// distribution health (written to `FIELDPROOF_SCREENSHOT_DIR`, or a temp folder). Chromium
/// cannot carry the session cookie from the command line, so each page is fetched signed in and
/// opened from a file with the app as its base; the console's own stylesheet, script and
/// thumbnails then load from the running app.
#[tokio::test]
async fn screenshots_of_the_console() {
    let Some(chromium) = chromium("screenshots") else {
        return;
    };
    let app = spawn_app().await;
    let (deal, _far) = deal_with_a_far_photo(&app).await;
    // A second item: the first deal's nameplate photo, re-encoded, sent for a neighbour.
    let neighbour = deal_at_site_survey(&app, "杭州邻厂").await;
    let recycled: Value = upload(
        &app,
        &neighbour.rep,
        &neighbour.deal,
        "site_survey",
        form(
            &uuid(),
            &["nameplate"],
            crate::photos::with_exif(
                &crate::photos::jpeg(&crate::photos::scene(1, 640, 480), 70),
                &crate::photos::ExifSpec::phone(SITE.0, SITE.1, &local_exif_time(20)),
            ),
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(recycled["verdict"], "rejected", "{recycled}");
    leads_with_known_health(&app).await;
    let mut browser = Browser::signed_in(&app, "supervisor_east").await;
    let queue = browser.html("/console/reviews").await;
    assert!(queue.contains("与客户「杭州恒力机械」"), "{queue}");
    assert!(queue.contains("高度相似"));
    let dir = tempfile::tempdir().unwrap();
    let out = std::env::var("FIELDPROOF_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().to_path_buf());
    std::fs::create_dir_all(&out).unwrap();
    for (name, path, height) in [
        ("console-review.png", "/console/reviews".to_owned(), 1100),
        ("console-deal.png", format!("/console/deals/{deal}"), 1500),
        ("console-heatmap.png", "/console/heatmap".to_owned(), 600),
        ("console-health.png", "/console/health".to_owned(), 1000),
    ] {
        let html = browser.html(&path).await.replacen(
            "<head>",
            &format!("<head><base href=\"{}/\">", app.address),
            1,
        );
        let page = dir.path().join(format!("{name}.html"));
        std::fs::write(&page, html).unwrap();
        let profile = tempfile::tempdir().unwrap();
        let target = out.join(name);
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--virtual-time-budget=3000".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size=1280,{height}"),
            format!("--screenshot={}", target.display()),
            format!("file://{}", page.display()),
        ];
        // Off the runtime's thread: the app under test serves the page's assets meanwhile.
        let status = tokio::task::spawn_blocking(move || {
            std::process::Command::new(chromium)
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
        })
        .await
        .expect("join")
        .expect("run chromium");
        assert!(status.success(), "chromium for {name}");
        let png = std::fs::read(&target).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    }
}
