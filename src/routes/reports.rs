//! `/api/v1/reports/heatmap`: per rep × node for one ISO week and one team — nodes entered,
//! completed, completion rate, median and mean hours in node, returns. JSON or CSV.

use crate::auth::Caller;
use crate::db;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(heatmap);
}

/// Weeks are reckoned in China Standard Time (the teams' working week), Monday 00:00.
const REPORT_OFFSET: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

#[derive(Deserialize, utoipa::IntoParams)]
pub struct HeatmapQuery {
    pub team_id: String,
    /// ISO week, e.g. `2026-W48`.
    pub week: String,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HeatmapCell {
    pub rep_id: String,
    pub node: String,
    pub entered: u32,
    pub completed: u32,
    pub completion_rate: f64,
    /// Hours from entering to passing, over completed runs.
    pub median_hours: Option<f64>,
    pub mean_hours: Option<f64>,
    pub returns: u32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Heatmap {
    pub team_id: String,
    pub week: String,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub cells: Vec<HeatmapCell>,
}

/// Parse `YYYY-Www` into the week's [Monday 00:00, next Monday 00:00) in report time.
pub fn parse_iso_week(raw: &str) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let (year, week) = raw.split_once("-W")?;
    let year: i32 = year.parse().ok()?;
    let week: u8 = week.parse().ok()?;
    let monday = Date::from_iso_week_date(year, week, Weekday::Monday).ok()?;
    let start = PrimitiveDateTime::new(monday, Time::MIDNIGHT).assume_offset(REPORT_OFFSET);
    // The last weeks of year 9999 end past what a date can hold: refused, not a panic.
    Some((start, start.checked_add(time::Duration::weeks(1))?))
}

fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Aggregate node runs into cells, sorted by rep then node.
pub fn cells(runs: &[db::entities::node_run::Model]) -> Vec<HeatmapCell> {
    let mut groups: BTreeMap<(&str, &str), Vec<&db::entities::node_run::Model>> = BTreeMap::new();
    for run in runs {
        groups
            .entry((run.owner_id.as_str(), run.node_key.as_str()))
            .or_default()
            .push(run);
    }
    groups
        .into_iter()
        .map(|((rep, node), runs)| {
            let mut hours: Vec<f64> = runs
                .iter()
                .filter(|r| r.outcome == db::deals::PASSED)
                .filter_map(|r| {
                    r.closed_at
                        .map(|c| (c - r.entered_at).as_seconds_f64() / 3600.0)
                })
                .collect();
            hours.sort_by(f64::total_cmp);
            let entered = runs.len() as u32;
            let completed = hours.len() as u32;
            HeatmapCell {
                rep_id: rep.to_owned(),
                node: node.to_owned(),
                entered,
                completed,
                completion_rate: round2(f64::from(completed) / f64::from(entered.max(1))),
                median_hours: median(&hours).map(round2),
                mean_hours: (!hours.is_empty())
                    .then(|| round2(hours.iter().sum::<f64>() / hours.len() as f64)),
                returns: runs
                    .iter()
                    .filter(|r| r.outcome == db::deals::RETURNED)
                    .count() as u32,
            }
        })
        .collect()
}

/// The cells as CSV, one row per rep × node.
pub fn to_csv(cells: &[HeatmapCell]) -> String {
    let mut out = String::from(
        "rep_id,node,entered,completed,completion_rate,median_hours,mean_hours,returns\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for c in cells {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            c.rep_id,
            c.node,
            c.entered,
            c.completed,
            c.completion_rate,
            opt(c.median_hours),
            opt(c.mean_hours),
            c.returns
        ));
    }
    out
}

/// The heatmap of a team for one ISO week, for admins and the team's manager or supervisor;
/// any other team is not found.
pub async fn team_heatmap(
    state: &AppState,
    caller: &Caller,
    team_id: &str,
    week: &str,
) -> ApiResult<Heatmap> {
    let team = db::teams::find(&state.reads, &caller.org_id, team_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let allowed = caller.is_admin()
        || (caller.leads_team() && caller.team_id.as_deref() == Some(team.id.as_str()));
    if !allowed {
        return Err(ApiError::not_found());
    }
    let (from, to) = parse_iso_week(week).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidQuery).with_details(
            serde_json::json!({"field": "week", "reason": "expected an ISO week like 2026-W48"}),
        )
    })?;
    let runs = db::deals::team_runs_between(&state.reads, &team.id, from, to).await?;
    Ok(Heatmap {
        team_id: team.id,
        week: week.to_owned(),
        from,
        to,
        cells: cells(&runs),
    })
}

/// The action heatmap of a team for one ISO week (admins, or the team's manager/supervisor).
#[utoipa::path(tag = "reports", params(HeatmapQuery), responses((status = 200, body = Heatmap), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/reports/heatmap")]
async fn heatmap(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<HeatmapQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let heatmap = team_heatmap(&state, &caller, &query.team_id, &query.week).await?;
    match query.format.as_deref() {
        Some("csv") => Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "content-disposition",
                format!("attachment; filename=\"heatmap-{}.csv\"", query.week),
            ))
            .body(to_csv(&heatmap.cells))),
        None | Some("json") => Ok(HttpResponse::Ok().json(heatmap)),
        Some(_) => Err(ApiError::new(ErrorCode::InvalidQuery)
            .with_details(serde_json::json!({"field": "format", "reason": "json or csv"}))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_weeks_start_on_monday_china_time() {
        let (from, to) = parse_iso_week("2026-W48").unwrap();
        assert_eq!(from.date(), time::macros::date!(2026 - 11 - 23));
        assert_eq!(from.offset(), REPORT_OFFSET);
        assert_eq!(to - from, time::Duration::weeks(1));
        assert!(parse_iso_week("2026-W54").is_none());
        assert!(parse_iso_week("2026-48").is_none());
        assert!(parse_iso_week("9999-W52").is_none());
    }

    #[test]
    fn the_median_of_an_even_count_is_the_middle_mean() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 10.0]), Some(3.0));
        assert_eq!(median(&[]), None);
    }
}
