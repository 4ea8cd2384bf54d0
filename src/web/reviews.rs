//! The review queue: rejected and doubtful evidence of the supervisor's teams, newest first,
//! each with its photo, every failed or warned check in a plain sentence with its numbers, a
//! plot of where it was taken, the similar photo beside it, and approve/reject with a reason.
//! Everything comes from `services::evidence::review`, the same calls the API makes.

use super::layout::{
    ConsoleError, LOCAL_OFFSET, Nav, html_response, local_time, local_time_str, page, query,
};
use super::plot::{self, Fix};
use super::session::{ConsoleUser, Lang, Posted, safe_return};
use crate::db::entities::{customer, deal, evidence, site};
use crate::db::{self, deals as deal_repo};
use crate::error::ErrorCode;
use crate::services::evidence::review::{self, QueueRequest, ReviewItem};
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use fieldproof_domain::account::Role;
use fieldproof_domain::evidence::CheckCode;
use fieldproof_domain::geo::{LatLon, SitePoint};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use time::{Date, PrimitiveDateTime, Time};

const PAGE_SIZE: u64 = 20;

#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    team: String,
    #[serde(default)]
    rep: String,
    #[serde(default)]
    check: String,
    /// `YYYY-MM-DD`, received on or after (China Standard Time).
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, received on or before.
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
    /// What the last decision did: approved, rejected, reason, closed.
    #[serde(default)]
    flash: String,
}

fn local_day(raw: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(raw.trim(), &format).ok()?;
    Some(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_offset(LOCAL_OFFSET))
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// What a queue page needs besides the items: names of reps, deals, customers and sites.
#[derive(Default)]
struct Context {
    users: HashMap<String, String>,
    deals: HashMap<String, Option<deal::Model>>,
    customers: HashMap<String, Option<customer::Model>>,
    sites: HashMap<String, Vec<site::Model>>,
}

impl Context {
    async fn deal(
        &mut self,
        state: &AppState,
        user: &ConsoleUser,
        id: &str,
    ) -> Result<Option<deal::Model>, ConsoleError> {
        if !self.deals.contains_key(id) {
            let found = deal_repo::find_visible(&state.db, &user.caller, id).await?;
            self.deals.insert(id.to_owned(), found);
        }
        Ok(self.deals.get(id).cloned().flatten())
    }

    async fn customer(
        &mut self,
        state: &AppState,
        user: &ConsoleUser,
        id: &str,
    ) -> Result<Option<customer::Model>, ConsoleError> {
        if !self.customers.contains_key(id) {
            let found = db::customers::find_visible(&state.db, &user.caller, id).await?;
            self.customers.insert(id.to_owned(), found);
        }
        Ok(self.customers.get(id).cloned().flatten())
    }

    async fn site(
        &mut self,
        state: &AppState,
        deal: &deal::Model,
    ) -> Result<Option<SitePoint>, ConsoleError> {
        let Some(site_id) = &deal.site_id else {
            return Ok(None);
        };
        if !self.sites.contains_key(&deal.customer_id) {
            let rows = db::customers::sites(&state.db, &deal.customer_id).await?;
            self.sites.insert(deal.customer_id.clone(), rows);
        }
        Ok(self
            .sites
            .get(&deal.customer_id)
            .and_then(|rows| rows.iter().find(|s| &s.id == site_id))
            .and_then(|s| SitePoint::new(s.lat, s.lon, s.crs.parse().ok()?, s.radius_m).ok()))
    }

    fn user_name(&self, id: &str) -> String {
        self.users.get(id).cloned().unwrap_or_else(|| id.to_owned())
    }
}

/// One queue entry, ready to draw.
struct Entry {
    row: evidence::Model,
    item: ReviewItem,
    deal: Option<deal::Model>,
    customer_name: Option<String>,
    site: Option<SitePoint>,
    /// (customer name if visible, captured at) of the similar photo.
    similar: Option<(Option<String>, Option<String>)>,
}

fn fix_of(facts: &Value, key: &str) -> Option<Fix> {
    let f = facts.get(key)?;
    let point = LatLon::new(f.get("lat")?.as_f64()?, f.get("lon")?.as_f64()?).ok()?;
    Some(Fix {
        point,
        accuracy_m: f.get("accuracy_m").and_then(Value::as_f64),
    })
}

/// `GET /console/reviews`
pub async fn queue(
    state: web::Data<AppState>,
    user: ConsoleUser,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let q = q.into_inner();
    let request = QueueRequest {
        team_id: non_empty(&q.team),
        rep_id: non_empty(&q.rep),
        check: non_empty(&q.check),
        from: local_day(&q.from),
        to: local_day(&q.to).map(|d| d + time::Duration::days(1)),
    };
    let page_rows = review::queue(
        &state,
        &user.caller,
        request,
        non_empty(&q.cursor).as_deref(),
        PAGE_SIZE,
    )
    .await?;
    let mut ctx = Context::default();
    let visible_users = db::users::list_visible(&state.db, &user.caller).await?;
    ctx.users = visible_users
        .iter()
        .map(|u| (u.id.clone(), u.display_name.clone()))
        .collect();
    let mut entries = Vec::new();
    for row in page_rows.items {
        let item = review::item(&state, &row).await?;
        let deal = ctx.deal(&state, &user, &row.deal_id).await?;
        let (customer_name, site) = match &deal {
            Some(d) => (
                ctx.customer(&state, &user, &d.customer_id)
                    .await?
                    .map(|c| c.name),
                ctx.site(&state, d).await?,
            ),
            None => (None, None),
        };
        let similar = match &item.near_duplicate {
            Some(near) => {
                let other_deal = ctx.deal(&state, &user, &near.deal_id).await?;
                let name = match other_deal {
                    Some(d) => ctx
                        .customer(&state, &user, &d.customer_id)
                        .await?
                        .map(|c| c.name),
                    None => None,
                };
                Some((name, near.captured_at.clone()))
            }
            None => None,
        };
        entries.push(Entry {
            row,
            item,
            deal,
            customer_name,
            site,
            similar,
        });
    }
    let teams = db::teams::list(&state.db, &user.caller.org_id).await?;
    let teams: Vec<_> = teams
        .into_iter()
        .filter(|t| user.caller.is_admin() || Some(&t.id) == user.caller.team_id.as_ref())
        .map(|t| (t.id, t.name))
        .collect();
    let reps: Vec<_> = visible_users
        .iter()
        .filter(|u| u.role == Role::Rep)
        .map(|u| (u.id.clone(), u.display_name.clone()))
        .collect();
    let lang = user.lang;
    let next_page = page_rows.next_cursor.map(|cursor| {
        format!(
            "/console/reviews?{}",
            query(&[
                ("team", &q.team),
                ("rep", &q.rep),
                ("check", &q.check),
                ("from", &q.from),
                ("to", &q.to),
                ("cursor", &cursor),
            ])
        )
    });
    let first_page = format!(
        "/console/reviews?{}",
        query(&[
            ("team", &q.team),
            ("rep", &q.rep),
            ("check", &q.check),
            ("from", &q.from),
            ("to", &q.to)
        ])
    );
    let back = format!(
        "/console/reviews?{}",
        query(&[
            ("team", &q.team),
            ("rep", &q.rep),
            ("check", &q.check),
            ("from", &q.from),
            ("to", &q.to),
            ("cursor", &q.cursor)
        ])
    );
    let body = html! {
        h1 { (lang.t("审核队列", "Review queue")) }
        (flash(lang, &q.flash))
        (filters(lang, &q, &teams, &reps))
        p.keys {
            kbd { "j" } " / " kbd { "k" } " " (lang.t("上下移动", "move")) " · "
            kbd { "a" } " " (lang.t("批准", "approve")) " · "
            kbd { "r" } " " (lang.t("驳回", "reject")) " · "
            (lang.t("填写理由后按", "type the reason, then")) " " kbd { "Enter" } " · "
            kbd { "Esc" } " " (lang.t("取消", "cancel"))
        }
        @if entries.is_empty() {
            p.empty { (lang.t("没有待审核的证据。", "Nothing is waiting for review.")) }
        }
        @for entry in &entries {
            (item_card(&state, &user, &ctx, entry, &back))
        }
        div.pager {
            @if !q.cursor.is_empty() {
                a href=(first_page) { (lang.t("← 第一页", "← First page")) }
            }
            @if let Some(next) = next_page {
                a.next href=(next) { (lang.t("下一页 →", "Next page →")) }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            Some(&user),
            lang,
            lang.t("审核队列", "Review queue"),
            Nav::Reviews,
            body,
        ),
    ))
}

fn flash(lang: Lang, code: &str) -> Markup {
    let (class, text) = match code {
        "approved" => (
            "flash",
            lang.t(
                "已批准，节点已重新评估。",
                "Approved; the node was re-evaluated.",
            ),
        ),
        "rejected" => (
            "flash",
            lang.t(
                "已驳回，已通知销售重新拍摄。",
                "Rejected; the rep was told to retake.",
            ),
        ),
        "reason" => (
            "flash error",
            lang.t(
                "请填写 4-2000 字的理由。",
                "Please give a reason of 4-2000 characters.",
            ),
        ),
        "closed" => (
            "flash error",
            lang.t(
                "该证据已由他人处理。",
                "Someone else already decided on this evidence.",
            ),
        ),
        _ => return html! {},
    };
    html! { p class=(class) role="status" { (text) } }
}

fn filters(
    lang: Lang,
    q: &QueueQuery,
    teams: &[(String, String)],
    reps: &[(String, String)],
) -> Markup {
    html! {
        form.filters method="get" action="/console/reviews" {
            label { (lang.t("团队", "Team"))
                select name="team" {
                    @if teams.len() != 1 { option value="" { (lang.t("全部", "All")) } }
                    @for (id, name) in teams {
                        option value=(id) selected[q.team == *id] { (name) }
                    }
                }
            }
            label { (lang.t("销售", "Rep"))
                select name="rep" {
                    option value="" { (lang.t("全部", "All")) }
                    @for (id, name) in reps {
                        option value=(id) selected[q.rep == *id] { (name) }
                    }
                }
            }
            label { (lang.t("检查项", "Check"))
                select name="check" {
                    option value="" { (lang.t("全部", "All")) }
                    @for code in CheckCode::ALL {
                        option value=(code.as_str()) selected[q.check == code.as_str()] { (code.as_str()) }
                    }
                }
            }
            label { (lang.t("接收日期自", "Received from"))
                input type="date" name="from" value=(q.from);
            }
            label { (lang.t("至", "to"))
                input type="date" name="to" value=(q.to);
            }
            button type="submit" { (lang.t("筛选", "Filter")) }
        }
    }
}

fn thumb(state: &AppState, evidence_id: &str, alt: &str, has: bool, lang: Lang) -> Markup {
    if has {
        let src = format!(
            "/console/evidence/{evidence_id}/thumbnail?{}",
            review::thumbnail_grant(state, evidence_id)
        );
        html! { img src=(src) alt=(alt) loading="lazy"; }
    } else {
        html! { div.nothumb { (lang.t("无缩略图", "No thumbnail")) } }
    }
}

/// 6 月 3 日 / 3 Jun, in China Standard Time.
fn short_date(lang: Lang, raw: &str) -> String {
    match time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(LOCAL_OFFSET);
            match lang {
                Lang::Zh => format!("{} 月 {} 日", t.month() as u8, t.day()),
                Lang::En => format!("{} {}", t.day(), &format!("{}", t.month())[..3]),
            }
        }
        Err(_) => raw.to_owned(),
    }
}

fn item_card(
    state: &AppState,
    user: &ConsoleUser,
    ctx: &Context,
    entry: &Entry,
    back: &str,
) -> Markup {
    let lang = user.lang;
    let view = &entry.item.evidence;
    let verdict = view.get("verdict").and_then(Value::as_str).unwrap_or("");
    let checks: Vec<&Value> = view
        .get("checks")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|c| c.get("outcome").and_then(Value::as_str) != Some("pass"))
                .collect()
        })
        .unwrap_or_default();
    let node_name = entry.row.node_key.clone();
    let title = entry.deal.as_ref().map_or("", |d| d.title.as_str());
    let exif = fix_of(&entry.row.facts, "gps");
    let device = fix_of(&entry.row.facts, "manifest_fix");
    let may_decide = review::decides(&user.caller, &entry.row);
    let similar_sentence = entry.similar.as_ref().map(|(name, at)| {
        let when = at.as_deref().map(|t| short_date(lang, t));
        match (lang, name, when) {
            (Lang::Zh, Some(n), Some(w)) => format!("与客户「{n}」{w}的照片高度相似"),
            (Lang::Zh, Some(n), None) => format!("与客户「{n}」的照片高度相似"),
            (Lang::Zh, None, Some(w)) => format!("与其他团队客户 {w}的照片高度相似"),
            (Lang::Zh, None, None) => "与其他团队客户的照片高度相似".to_owned(),
            (Lang::En, Some(n), Some(w)) => {
                format!("Looks like the photo of customer “{n}” taken {w}")
            }
            (Lang::En, Some(n), None) => format!("Looks like a photo of customer “{n}”"),
            (Lang::En, None, Some(w)) => {
                format!("Looks like a photo of another team's customer taken {w}")
            }
            (Lang::En, None, None) => "Looks like a photo of another team's customer".to_owned(),
        }
    });
    html! {
        article.item id=(format!("ev-{}", entry.row.id)) data-id=(entry.row.id) tabindex="-1" {
            div.media {
                figure {
                    (thumb(state, &entry.row.id, lang.t("待审照片", "Photo under review"), entry.row.thumb_key.is_some(), lang))
                    figcaption { (lang.t("本张照片", "This photo")) }
                }
                @if let Some(near) = &entry.item.near_duplicate {
                    figure.similar-photo {
                        (thumb(state, &near.evidence_id, lang.t("相似照片", "Similar photo"), near.thumbnail_url.is_some(), lang))
                        figcaption { (lang.t("相似的已有照片", "The similar earlier photo")) }
                    }
                }
                (plot::plot(lang, entry.site.as_ref(), exif, device))
            }
            div.facts {
                h3 {
                    span class=(format!("badge {verdict}")) { (verdict_label(lang, verdict)) } " "
                    a href=(format!("/console/deals/{}", entry.row.deal_id)) { (title) }
                }
                p.meta {
                    @if let Some(name) = &entry.customer_name { (name) " · " }
                    (lang.t("环节 ", "step ")) code { (node_name) } " · "
                    (ctx.user_name(&entry.row.uploader_id)) " · "
                    (lang.t("拍摄 ", "taken ")) (view.get("captured_at").and_then(Value::as_str).map(local_time_str).unwrap_or_else(|| "?".into())) " · "
                    (lang.t("接收 ", "received ")) (local_time(entry.row.received_at))
                }
                ul.checks {
                    @for check in &checks {
                        @let outcome = check.get("outcome").and_then(Value::as_str).unwrap_or("");
                        li class=(outcome) {
                            code { (check.get("code").and_then(Value::as_str).unwrap_or("")) }
                            (check.get(if lang == Lang::Zh { "message_zh" } else { "message" }).and_then(Value::as_str).unwrap_or(""))
                        }
                    }
                }
                @if let Some(sentence) = similar_sentence {
                    p.similar { (sentence) }
                }
                @if may_decide {
                    form.decide method="post" action=(format!("/console/reviews/{}/decision", entry.row.id)) {
                        input type="hidden" name="csrf" value=(user.csrf);
                        input type="hidden" name="back" value=(back);
                        textarea name="reason" required minlength="4" maxlength="2000"
                            placeholder=(lang.t("理由（必填，会告知销售并记入审计）", "Reason (required; the rep sees it, the audit trail keeps it)")) {}
                        div.buttons {
                            button.approve type="submit" name="decision" value="approve" { (lang.t("批准", "Approve")) " (a)" }
                            button.reject type="submit" name="decision" value="reject" { (lang.t("驳回重拍", "Reject, retake")) " (r)" }
                            span.hint data-approve=(lang.t("填写理由后按 Enter 批准", "Type the reason, Enter approves"))
                                data-reject=(lang.t("填写理由后按 Enter 驳回", "Type the reason, Enter rejects")) {}
                        }
                    }
                } @else {
                    p.muted { (lang.t("只有本团队主管可以审核。", "Only the team's supervisors decide.")) }
                }
            }
        }
    }
}

pub fn verdict_label(lang: Lang, verdict: &str) -> &'static str {
    match verdict {
        "passed" => lang.t("通过", "passed"),
        "needs_review" => lang.t("待复核", "needs review"),
        "rejected" => lang.t("未通过", "rejected"),
        _ => lang.t("未知", "unknown"),
    }
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// `POST /console/reviews/{id}/decision`: the same decision the API takes, then back to the
/// queue (where the decided item is gone).
pub async fn decide(
    state: web::Data<AppState>,
    id: web::Path<String>,
    posted: Posted<DecisionForm>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted { user, form } = posted;
    let back = safe_return(Some(&form.back));
    let back = if back.starts_with("/console/reviews") {
        back
    } else {
        "/console/reviews".to_owned()
    };
    let to = |flash: &str| {
        // The queue's own forms send `/console/reviews?` when no filter is set.
        let back = back.trim_end_matches(['?', '&']);
        let sep = if back.contains('?') { '&' } else { '?' };
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("{back}{sep}flash={flash}")))
            .finish()
    };
    let (approve, reason) = match review::parse_decision(&form.decision, &form.reason) {
        Ok(parsed) => parsed,
        Err(e) if e.code == ErrorCode::ValidationFailed => return Ok(to("reason")),
        Err(e) => return Err(e.into()),
    };
    match review::decide(&state, &user.caller, &id, approve, &reason).await {
        Ok(_) => Ok(to(if approve { "approved" } else { "rejected" })),
        Err(e) if e.code == ErrorCode::ReviewClosed => Ok(to("closed")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct GrantQuery {
    exp: i64,
    sig: String,
}

/// `GET /console/evidence/{id}/thumbnail?exp&sig`: the photo through the console itself (the
/// browser may not reach S3 from an intranet), under the same short-lived grant as the API's.
pub async fn thumbnail(
    state: web::Data<AppState>,
    id: web::Path<String>,
    grant: web::Query<GrantQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let bytes = review::granted_thumbnail(&state, &id, grant.exp, &grant.sig).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header((header::CACHE_CONTROL, "private, max-age=600"))
        .body(bytes))
}
