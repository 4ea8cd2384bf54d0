//! The action heatmap as a picture: rep × node for one team and ISO week, each cell coloured by
//! completion rate with hours in node and returns, and the same figures as CSV. The numbers
//! come from the API's `team_heatmap`, which also decides who may see which team.

use super::layout::{ConsoleError, LOCAL_OFFSET, Nav, html_response, page, query, teams_of};
use super::session::ConsoleUser;
use crate::db;
use crate::error::ApiError;
use crate::routes::reports::{HeatmapCell, team_heatmap, to_csv};
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct HeatmapQuery {
    #[serde(default)]
    team: String,
    /// `2026-W48`, as `<input type=week>` sends it.
    #[serde(default)]
    week: String,
}

/// The ISO week (report time) of now, e.g. `2026-W48`.
fn this_week() -> String {
    let today = crate::db::now().to_offset(LOCAL_OFFSET).date();
    let (year, week, _) = today.to_iso_week_date();
    format!("{year}-W{week:02}")
}

/// The team and week asked for, or the user's own team and this week.
fn chosen(user: &ConsoleUser, q: &HeatmapQuery, teams: &[(String, String)]) -> (String, String) {
    let team = Some(q.team.trim().to_owned())
        .filter(|t| !t.is_empty())
        .or_else(|| user.caller.team_id.clone())
        .or_else(|| teams.first().map(|t| t.0.clone()))
        .unwrap_or_default();
    let week = Some(q.week.trim().to_owned())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(this_week);
    (team, week)
}

/// One of eleven colour steps (`h0` red … `h10` green) for a completion rate.
fn colour_class(rate: f64) -> String {
    format!("cell h{}", (rate.clamp(0.0, 1.0) * 10.0).round() as u32)
}

/// `GET /console/heatmap`
pub async fn show(
    state: web::Data<AppState>,
    user: ConsoleUser,
    q: web::Query<HeatmapQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let lang = user.lang;
    let teams = teams_of(&state, &user).await?;
    let (team, week) = chosen(&user, &q, &teams);
    let heatmap = team_heatmap(&state, &user.caller, &team, &week).await?;
    // Columns in the pipeline's order; nodes of other templates after them.
    let mut nodes: Vec<(String, String)> = Vec::new();
    let templates = db::templates::list(&state.db, &user.caller.org_id)
        .await
        .map_err(ApiError::internal)?;
    if let Some(t) = templates
        .iter()
        .filter(|t| t.name == "default")
        .max_by_key(|t| t.version)
    {
        for n in &t.definition.nodes {
            nodes.push((n.key.clone(), lang.t(&n.name_zh, &n.name_en).to_owned()));
        }
    }
    for c in &heatmap.cells {
        if !nodes.iter().any(|(k, _)| k == &c.node) {
            nodes.push((c.node.clone(), c.node.clone()));
        }
    }
    let names: HashMap<String, String> = db::users::list_visible(&state.db, &user.caller)
        .await?
        .into_iter()
        .map(|u| (u.id, u.display_name))
        .collect();
    let mut reps: Vec<&str> = heatmap.cells.iter().map(|c| c.rep_id.as_str()).collect();
    reps.dedup();
    let cell = |rep: &str, node: &str| -> Option<&HeatmapCell> {
        heatmap
            .cells
            .iter()
            .find(|c| c.rep_id == rep && c.node == node)
    };
    let csv = format!(
        "/console/heatmap.csv?{}",
        query(&[("team", &team), ("week", &week)])
    );
    let body = html! {
        h1 { (lang.t("行动热力图", "Action heatmap")) }
        form.filters method="get" action="/console/heatmap" {
            label { (lang.t("团队", "Team"))
                select name="team" {
                    @for (id, name) in &teams { option value=(id) selected[team == *id] { (name) } }
                }
            }
            label { (lang.t("周（ISO）", "Week (ISO)"))
                input type="week" name="week" value=(week) pattern="[0-9]{4}-W[0-9]{2}";
            }
            button type="submit" { (lang.t("查看", "Show")) }
            a.button href=(csv) download { (lang.t("下载 CSV", "Download CSV")) }
        }
        div.legend {
            (lang.t("完成率", "Completion")) " 0%"
            @for step in 0..=10u32 { span class=(format!("sw h{step}")) {} }
            "100%"
        }
        @if heatmap.cells.is_empty() {
            p.empty { (lang.t("这一周该团队没有进入任何环节。", "Nobody in this team entered a step this week.")) }
        } @else {
            div.scroll { table.heat {
                thead { tr {
                    th { (lang.t("销售", "Rep")) }
                    @for (_, name) in &nodes { th { (name) } }
                } }
                tbody {
                    @for rep in &reps {
                        tr {
                            th { (names.get(*rep).cloned().unwrap_or_else(|| rep.to_string())) }
                            @for (key, _) in &nodes {
                                @match cell(rep, key) {
                                    Some(c) => td class=(colour_class(c.completion_rate)) title=(format!("{} {}/{}", key, c.completed, c.entered)) {
                                        div.rate { (format!("{:.0}%", c.completion_rate * 100.0)) }
                                        div.sub { (c.completed) "/" (c.entered)
                                            @if let Some(h) = c.median_hours { " · " (format!("{h:.1}")) (lang.t(" 小时", " h")) } }
                                        @if c.returns > 0 { div.sub.returns { (lang.t("退回 ", "returns ")) (c.returns) } }
                                    },
                                    None => td.empty { "—" },
                                }
                            }
                        }
                    }
                }
            } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            Some(&user),
            lang,
            lang.t("行动热力图", "Action heatmap"),
            Nav::Heatmap,
            body,
        ),
    ))
}

/// `GET /console/heatmap.csv`: the same CSV as the API's `format=csv`.
pub async fn csv(
    state: web::Data<AppState>,
    user: ConsoleUser,
    q: web::Query<HeatmapQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let teams = teams_of(&state, &user).await?;
    let (team, week) = chosen(&user, &q, &teams);
    let heatmap = team_heatmap(&state, &user.caller, &team, &week).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"heatmap-{}.csv\"",
                heatmap.week.replace(['"', '\\', '\r', '\n'], "")
            ),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(to_csv(&heatmap.cells)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_map_to_eleven_steps() {
        assert_eq!(colour_class(0.0), "cell h0");
        assert_eq!(colour_class(0.5), "cell h5");
        assert_eq!(colour_class(1.0), "cell h10");
        assert_eq!(colour_class(7.0), "cell h10");
    }
}
