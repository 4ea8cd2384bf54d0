//! The deals the user can see, and one deal's page: the path of nodes with the current one, each
//! node's requirements and the evidence behind it, returns, and the audit trail with its chain
//! check. The page is drawn from the API's own `deal_view` and the audit repository.

use super::layout::{ConsoleError, Nav, html_response, local_time, local_time_str, page, query};
use super::reviews::verdict_label;
use super::session::{ConsoleUser, Lang};
use crate::db::{self, PageRequest, audit, deals as deal_repo};
use crate::error::ApiError;
use crate::routes::deals::deal_view;
use crate::services::evidence::review;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    cursor: String,
}

/// `GET /console/deals`
pub async fn list(
    state: web::Data<AppState>,
    user: ConsoleUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let lang = user.lang;
    let after = Some(q.cursor.clone()).filter(|c| !c.is_empty());
    let page_rows = deal_repo::list_visible(
        &state.reads,
        &user.caller,
        &PageRequest { after, limit: 50 },
    )
    .await?;
    let mut customers = HashMap::new();
    for d in &page_rows.items {
        if !customers.contains_key(&d.customer_id) {
            let c = db::customers::find_visible(&state.db, &user.caller, &d.customer_id).await?;
            customers.insert(d.customer_id.clone(), c.map(|c| c.name));
        }
    }
    let body = html! {
        h1 { (lang.t("商机", "Deals")) }
        @if page_rows.items.is_empty() {
            p.empty { (lang.t("没有可查看的商机。", "No deals to show.")) }
        } @else {
            div.scroll { table {
                thead { tr {
                    th { (lang.t("商机", "Deal")) } th { (lang.t("客户", "Customer")) }
                    th { (lang.t("当前环节", "Current step")) } th { (lang.t("状态", "Status")) }
                    th { (lang.t("预计金额（元）", "Expected value (CNY)")) }
                } }
                tbody {
                    @for d in &page_rows.items {
                        tr {
                            td { a href=(format!("/console/deals/{}", d.id)) { (d.title) } }
                            td { (customers.get(&d.customer_id).cloned().flatten().unwrap_or_default()) }
                            td { code { (d.current_node_key.as_deref().unwrap_or("—")) } }
                            td { (d.status) }
                            td { (yuan(d.expected_value_fen)) }
                        }
                    }
                }
            } }
        }
        @if let Some(next) = &page_rows.next_cursor {
            div.pager { a href=(format!("/console/deals?{}", query(&[("cursor", next)]))) { (lang.t("下一页 →", "Next page →")) } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(Some(&user), lang, lang.t("商机", "Deals"), Nav::Deals, body),
    ))
}

/// Fen as yuan with two decimals.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    format!("{sign}{}.{:02}", fen / 100, fen % 100)
}

fn node_state_label(lang: Lang, state: &str) -> &'static str {
    match state {
        "passed" => lang.t("已通过", "passed"),
        "current" => lang.t("当前", "current"),
        _ => lang.t("未开始", "pending"),
    }
}

fn review_label(lang: Lang, state: &str) -> &'static str {
    match state {
        "pending" => lang.t("待审核", "awaiting review"),
        "approved" => lang.t("主管已批准", "approved by supervisor"),
        "rejected" => lang.t("主管已驳回", "rejected by supervisor"),
        _ => "",
    }
}

/// `GET /console/deals/{id}`
pub async fn show(
    state: web::Data<AppState>,
    user: ConsoleUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let lang = user.lang;
    let row = deal_repo::find_visible(&state.db, &user.caller, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let customer = db::customers::find_visible(&state.db, &user.caller, &row.customer_id).await?;
    let view = deal_view(&state, row).await?;
    let evidence = db::evidence::of_deal(&state.db, &view.id).await?;
    let events = audit::list(&state.db, &view.id).await?;
    let broken = audit::verify(&events);
    let names: HashMap<String, String> = db::users::list_visible(&state.db, &user.caller)
        .await?
        .into_iter()
        .map(|u| (u.id, u.display_name))
        .collect();
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let returns: usize = view.nodes.iter().map(|n| n.returns).sum();
    let body = html! {
        h1 { (view.title) }
        p.meta.muted {
            @if let Some(c) = &customer { (c.name) " · " }
            (lang.t("负责人 ", "owner ")) (name_of(&view.owner_id)) " · "
            (lang.t("预计金额 ", "expected ")) (yuan(view.expected_value_fen)) (lang.t(" 元", " CNY")) " · "
            (lang.t("模板版本 ", "template v")) (view.template_version) " · "
            (lang.t("退回 ", "returns ")) (returns)
        }
        h2 { (lang.t("流程", "Path")) }
        ol.path {
            @for (n, node) in view.nodes.iter().enumerate() {
                li class=(node.state) {
                    div.node-head {
                        span.n { (n + 1) }
                        strong { (lang.t(&node.name_zh, &node.name_en)) }
                        code { (node.key) }
                        span class=(format!("badge {}", if node.state == "passed" { "passed" } else if node.state == "current" { "pending" } else { "none" })) { (node_state_label(lang, node.state)) }
                        @if node.runs > 1 { span.muted { (lang.t("进入次数 ", "runs ")) (node.runs) } }
                        @if node.returns > 0 { span.badge.rejected { (lang.t("退回 ", "returned ")) (node.returns) } }
                    }
                    @if !node.requirements.is_empty() {
                        ul.reqs {
                            @for r in &node.requirements {
                                li {
                                    code { (r.kind) } " "
                                    @if r.met { span.badge.passed { (lang.t("已满足", "met")) } }
                                    @else {
                                        span.badge.fail { (lang.t("未满足", "not met")) }
                                        " " span.muted { (r.missing.join(", ")) }
                                    }
                                }
                            }
                        }
                    }
                    @let here: Vec<_> = evidence.iter().filter(|e| e.node_key == node.key).collect();
                    @if !here.is_empty() {
                        div.ev-list {
                            @for e in here {
                                div.ev {
                                    @if e.thumb_key.is_some() {
                                        img src=(format!("/console/evidence/{}/thumbnail?{}", e.id, review::thumbnail_grant(&state, &e.id))) alt=(e.kind) loading="lazy";
                                    } @else {
                                        div.nothumb { (e.format) }
                                    }
                                    span class=(format!("badge {}", e.verdict)) { (verdict_label(lang, &e.verdict)) }
                                    " " span.muted { (review_label(lang, &e.review_state)) }
                                    br;
                                    span.muted { (local_time(e.received_at)) }
                                    @let problems: Vec<&Value> = e.checks.as_array().map(|a| a.iter().filter(|c| c.get("outcome").and_then(Value::as_str) != Some("pass")).collect()).unwrap_or_default();
                                    @if !problems.is_empty() {
                                        details {
                                            summary { (lang.t("检查结果", "Checks")) " (" (problems.len()) ")" }
                                            ul.checks {
                                                @for c in problems {
                                                    li class=(c.get("outcome").and_then(Value::as_str).unwrap_or("")) {
                                                        (c.get(if lang == Lang::Zh { "message_zh" } else { "message" }).and_then(Value::as_str).unwrap_or(""))
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    @if let Some(reason) = &e.review_reason {
                                        p.muted { (lang.t("理由：", "Reason: ")) (reason) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (lang.t("审计记录", "Audit trail")) }
        @match &broken {
            None => p.chain.intact { "✓ " (lang.t("哈希链完整", "Hash chain intact")) " · " (events.len()) (lang.t(" 条记录", " events")) },
            Some(b) => p.chain.broken { "✗ " (lang.t("哈希链在第 ", "Hash chain broken at event ")) (b.seq) (lang.t(" 条断裂：", ": ")) code { (b.reason) } },
        }
        div.scroll { table.audit {
            thead { tr {
                th { "#" } th { (lang.t("时间", "Time")) } th { (lang.t("事件", "Event")) }
                th { (lang.t("操作人", "Actor")) } th { (lang.t("内容", "Details")) } th { (lang.t("哈希", "Hash")) }
            } }
            tbody {
                @for e in &events {
                    tr {
                        td { (e.seq) }
                        td { (local_time_str(&e.created_at)) }
                        td { code { (e.kind) } }
                        td { (e.actor_id.as_deref().map(&name_of).unwrap_or_else(|| lang.t("系统", "system").to_owned())) }
                        td.payload { (e.payload.chars().take(300).collect::<String>()) }
                        td.hash title=(e.hash) { (e.hash.get(..12).unwrap_or(&e.hash)) "…" }
                    }
                }
            }
        } }
    };
    Ok(html_response(
        StatusCode::OK,
        page(Some(&user), lang, &view.title, Nav::Deals, body),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fen_show_as_yuan() {
        assert_eq!(super::yuan(123_456), "1234.56");
        assert_eq!(super::yuan(5), "0.05");
        assert_eq!(super::yuan(-150), "-1.50");
    }
}
