//! Distribution health: the lead-distribution figures of a team (or, for admins, the whole org)
//! over the last 7, 30 or 90 days against their targets — assignment latency, conversion in
//! window, cross-group mis-assignment — each with its red/amber/green mark in colour and in
//! words, then first response, counts and load fairness per rep. Figures, marks and who may see
//! which team all come from `routes::leads::team_health`, the function the API's
//! `/leads/health` calls; this module only draws them.

use super::layout::{ConsoleError, Nav, html_response, local_time, page, teams_of};
use super::session::{ConsoleUser, Lang};
use crate::db;
use crate::error::ApiError;
use crate::routes::leads::team_health;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use fieldproof_domain::leads::health::{
    CONVERSION_AMBER, Durations, LATENCY_AMBER_SECS, MISASSIGNMENT_AMBER, Mark, RepShare,
};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

/// The periods the page offers; any other 1–366 given in the address is shown as well.
const DAY_CHOICES: [i64; 3] = [7, 30, 90];
const DEFAULT_DAYS: i64 = 30;
/// Width of a load bar in the SVG's own units.
const BAR_WIDTH: f64 = 160.0;

#[derive(Deserialize)]
pub struct HealthQuery {
    /// A team id; empty for the caller's own team (admins: the whole org).
    #[serde(default)]
    team: String,
    #[serde(default)]
    days: String,
}

/// `days` from the address: empty is the default; anything but a whole number is refused the
/// way the API refuses it (the range is the service's to check).
fn days_of(raw: &str) -> Result<i64, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(DEFAULT_DAYS);
    }
    raw.parse()
        .map_err(|_| ApiError::invalid_field("days", "1-366", "须在 1 到 366 之间"))
}

/// The mark in words (the colour is never the only sign).
fn mark_text(lang: Lang, mark: Mark) -> &'static str {
    match mark {
        Mark::Green => lang.t("达标", "On target"),
        Mark::Amber => lang.t("接近", "Near"),
        Mark::Red => lang.t("未达标", "Off target"),
        Mark::NoData => lang.t("无数据", "No data"),
    }
}

fn mark_badge(lang: Lang, mark: Mark) -> Markup {
    html! { span class=(format!("mark {}", mark.as_str())) { (mark_text(lang, mark)) } }
}

fn minutes(secs: i64) -> String {
    format!("{:.1}", secs as f64 / 60.0)
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// A target as people say it: `41%`, `3.6%`.
fn target_percent(rate: f64) -> String {
    let text = format!("{:.1}", rate * 100.0);
    format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
}

/// `mean 3.2 min · p90 7.5 min (n = 12)`, or a dash with nothing measured.
fn durations_line(lang: Lang, d: &Durations) -> Markup {
    let min = lang.t(" 分钟", " min");
    html! {
        @match (d.mean_secs, d.p90_secs) {
            (Some(mean), Some(p90)) => {
                (lang.t("平均 ", "mean ")) strong { (minutes(mean)) (min) }
                " · p90 " strong { (minutes(p90)) (min) }
                " · n = " (d.count)
            },
            _ => span.muted { "—" },
        }
    }
}

/// One target card: title, big figure, mark, detail, target, definition.
struct Card<'a> {
    id: &'a str,
    title: &'a str,
    value: String,
    mark: Mark,
    detail: Markup,
    target: String,
    definition: &'a str,
}

fn card(lang: Lang, c: Card<'_>) -> Markup {
    html! {
        article id=(c.id) class=(format!("target {}", c.mark.as_str())) {
            h2 { (c.title) }
            div.figure { (c.value) }
            (mark_badge(lang, c.mark))
            div.detail { (c.detail) }
            div.goal { (c.target) }
            p.definition { (c.definition) }
        }
    }
}

/// A bar of assigned ÷ capacity, scaled so that the largest ratio (at least 1) fills it, with a
/// tick where the rep's capacity is.
fn load_bar(lang: Lang, share: &RepShare, scale: f64) -> Markup {
    let ratio = (share.capacity > 0).then(|| share.assigned as f64 / f64::from(share.capacity));
    let fill = ratio.map_or(0.0, |r| (r / scale).clamp(0.0, 1.0) * BAR_WIDTH);
    let tick = (BAR_WIDTH / scale).clamp(0.0, BAR_WIDTH);
    let label = match ratio {
        Some(r) => format!(
            "{} {}",
            lang.t("分配数 ÷ 产能", "assigned ÷ capacity"),
            percent(r)
        ),
        None => lang.t("无产能", "no capacity").to_owned(),
    };
    html! {
        svg.load width=(BAR_WIDTH) height="14" viewBox=(format!("0 0 {BAR_WIDTH} 14")) role="img" aria-label=(label) {
            rect.track x="0" y="2" width=(BAR_WIDTH) height="10" {}
            rect.fill x="0" y="2" width=(format!("{fill:.1}")) height="10" {}
            line.cap x1=(format!("{tick:.1}")) y1="0" x2=(format!("{tick:.1}")) y2="14" {}
        }
    }
}

/// `GET /console/health?team=&days=`
pub async fn show(
    state: web::Data<AppState>,
    user: ConsoleUser,
    q: web::Query<HealthQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let lang = user.lang;
    let days = days_of(&q.days)?;
    let asked = Some(q.team.trim().to_owned()).filter(|t| !t.is_empty());
    let health = team_health(&state, &user.caller, asked, None, None, Some(days)).await?;
    let f = &health.figures;
    let teams = teams_of(&state, &user).await?;
    let names: HashMap<String, String> = db::users::list_visible(&state.db, &user.caller)
        .await?
        .into_iter()
        .map(|u| (u.id, u.display_name))
        .collect();
    let mut day_choices = DAY_CHOICES.to_vec();
    if !day_choices.contains(&days) {
        day_choices.push(days);
        day_choices.sort_unstable();
    }
    let chosen_team = health.team_id.as_deref().unwrap_or_default();

    let latency = &f.assignment_latency;
    let conversion = &f.conversion_in_window;
    let misassigned = &f.cross_group_misassignment;
    let min = lang.t(" 分钟", " min");
    let latency_card = card(
        lang,
        Card {
            id: "latency",
            title: lang.t("分配时延", "Assignment latency"),
            value: latency
                .durations
                .p90_secs
                .map_or_else(|| "—".to_owned(), |p| format!("p90 {}{min}", minutes(p))),
            mark: latency.mark,
            detail: durations_line(lang, &latency.durations),
            target: format!(
                "{} p90 ≤ {}{min} · {} ≤ {}{min}",
                lang.t("目标", "target"),
                latency.target_secs / 60,
                lang.t("接近", "near"),
                LATENCY_AMBER_SECS / 60,
            ),
            definition: lang.t(
                "由规则分配的线索从创建到分配所用的时间（平均与第 90 百分位）。",
                "Time from creation to assignment of the leads a rule assigned (mean and 90th percentile).",
            ),
        },
    );
    let conversion_card = card(
        lang,
        Card {
            id: "conversion",
            title: lang.t("保护期内转化率", "Conversion in window"),
            value: conversion.rate.map_or_else(|| "—".to_owned(), percent),
            mark: conversion.mark,
            detail: html! {
                strong { (conversion.numerator) " / " (conversion.denominator) }
                (lang.t(" 条已分配线索在保护期内转化", " assigned leads converted in their window"))
            },
            target: format!(
                "{} ≥ {} · {} ≥ {}",
                lang.t("目标", "target"),
                target_percent(conversion.threshold),
                lang.t("接近", "near"),
                target_percent(CONVERSION_AMBER),
            ),
            definition: lang.t(
                "在保护期结束前转化的线索 ÷ 已分配的线索。",
                "Leads converted before their protection window ended ÷ leads assigned.",
            ),
        },
    );
    let misassigned_card = card(
        lang,
        Card {
            id: "misassignment",
            title: lang.t("跨组误分配率", "Cross-group mis-assignment"),
            value: misassigned.rate.map_or_else(|| "—".to_owned(), percent),
            mark: misassigned.mark,
            detail: html! {
                strong { (misassigned.numerator) " / " (misassigned.denominator) }
                (lang.t(" 条已分配线索被改派到其他团队", " assigned leads moved to another team"))
            },
            target: format!(
                "{} ≤ {} · {} ≤ {}",
                lang.t("目标", "target"),
                target_percent(misassigned.threshold),
                lang.t("接近", "near"),
                target_percent(MISASSIGNMENT_AMBER),
            ),
            definition: lang.t(
                "经理改派到其他团队的线索 ÷ 已分配的线索。",
                "Leads a manager moved to another team ÷ leads assigned.",
            ),
        },
    );
    let scale = f
        .load_fairness
        .per_rep
        .iter()
        .filter(|r| r.capacity > 0)
        .map(|r| r.assigned as f64 / f64::from(r.capacity))
        .fold(1.0_f64, f64::max);

    let title = lang.t("分配健康度", "Distribution health");
    let body = html! {
        h1 { (title) }
        form.filters method="get" action="/console/health" {
            label { (lang.t("团队", "Team"))
                select name="team" {
                    @if user.caller.is_admin() {
                        option value="" selected[health.team_id.is_none()] { (lang.t("全公司", "Whole org")) }
                    }
                    @for (id, name) in &teams { option value=(id) selected[chosen_team == id.as_str()] { (name) } }
                }
            }
            label { (lang.t("期间", "Period"))
                select name="days" {
                    @for d in &day_choices {
                        option value=(d) selected[*d == days] { (lang.t("最近 ", "last ")) (d) (lang.t(" 天", " days")) }
                    }
                }
            }
            button type="submit" { (lang.t("查看", "Show")) }
        }
        p.period.muted {
            (lang.t("期间内创建的线索：", "Leads created from "))
            (local_time(health.from)) " – " (local_time(health.to))
            (lang.t("（中国标准时间）", " (China Standard Time)"))
        }
        section.targets {
            (latency_card)
            (conversion_card)
            (misassigned_card)
        }
        p.legend-marks.muted {
            (mark_badge(lang, Mark::Green)) (lang.t(" 满足目标 ", " meets the target "))
            (mark_badge(lang, Mark::Amber)) (lang.t(" 差距不超过目标的五分之一 ", " misses it by at most a fifth of the target "))
            (mark_badge(lang, Mark::Red)) (lang.t(" 差距更大 ", " misses it by more "))
            (mark_badge(lang, Mark::NoData)) (lang.t(" 期间内无可计数的线索", " nothing to count in the period"))
        }
        section.figures {
            article id="first-response" {
                h2 { (lang.t("首次响应", "First response")) }
                div.detail { (durations_line(lang, &f.first_response)) }
                p.definition { (lang.t(
                    "从分配到记录第一次跟进的时间（平均与第 90 百分位）；没有跟进的线索不计。",
                    "Time from assignment to the first logged follow-up (mean and 90th percentile); leads with none are not counted.",
                )) }
            }
            article id="counts" {
                h2 { (lang.t("线索数", "Leads")) }
                dl.counts {
                    div { dt { (lang.t("创建", "created")) } dd { (f.leads) } }
                    div { dt { (lang.t("已分配", "assigned")) } dd { (f.assigned) } }
                    div { dt { (lang.t("在公海池", "in pool")) } dd { (f.in_pool) } }
                }
                p.definition { (lang.t(
                    "期间内创建的线索；已分配（含认领、改派）+ 在公海池 = 全部。",
                    "Leads created in the period; assigned (claims and moves included) + in pool = all.",
                )) }
            }
        }
        h2 { (lang.t("负载均衡", "Load fairness")) }
        p.definition { (lang.t(
            "每位销售在期间内分到的线索 ÷ 其产能；离散系数是这一比值的变异系数，0 表示完全按产能分配。竖线为产能。",
            "Per rep, leads assigned in the period ÷ capacity; the spread is that ratio's coefficient of variation, 0 meaning exactly in proportion to capacity. The tick marks capacity.",
        )) }
        @if f.load_fairness.per_rep.is_empty() {
            p.empty { (lang.t("没有可分配的销售。", "No reps to distribute to.")) }
        } @else {
            div.scroll { table.fairness {
                thead { tr {
                    th { (lang.t("销售", "Rep")) }
                    th.num { (lang.t("已分配", "Assigned")) }
                    th.num { (lang.t("产能", "Capacity")) }
                    th { (lang.t("分配数 ÷ 产能", "Assigned ÷ capacity")) }
                } }
                tbody {
                    @for share in &f.load_fairness.per_rep {
                        tr {
                            th { (names.get(&share.rep_id).map_or(share.rep_id.as_str(), String::as_str)) }
                            td.num { (share.assigned) }
                            td.num { (share.capacity) }
                            td.bar {
                                (load_bar(lang, share, scale))
                                span.ratio { @if share.capacity > 0 {
                                    (percent(share.assigned as f64 / f64::from(share.capacity)))
                                } @else { "—" } }
                            }
                        }
                    }
                }
            } }
            p.spread {
                (lang.t("离散系数：", "Spread: "))
                strong { @match f.load_fairness.spread {
                    Some(s) => (format!("{s:.3}")),
                    None => "—",
                } }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(Some(&user), lang, title, Nav::Health, body),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_default_to_thirty_and_must_be_numbers() {
        assert_eq!(days_of("").ok(), Some(30));
        assert_eq!(days_of(" 7 ").ok(), Some(7));
        assert_eq!(days_of("400").ok(), Some(400), "the range is the service's");
        assert!(days_of("week").is_err());
    }

    #[test]
    fn targets_read_as_people_say_them() {
        assert_eq!(target_percent(0.41), "41%");
        assert_eq!(target_percent(CONVERSION_AMBER), "32.8%");
        assert_eq!(target_percent(MISASSIGNMENT_AMBER), "3.6%");
        assert_eq!(percent(0.25), "25.0%");
    }

    #[test]
    fn every_mark_has_words_in_both_languages() {
        for mark in [Mark::Green, Mark::Amber, Mark::Red, Mark::NoData] {
            assert!(!mark_text(Lang::Zh, mark).is_empty());
            assert_ne!(mark_text(Lang::Zh, mark), mark_text(Lang::En, mark));
            let badge = mark_badge(Lang::En, mark).into_string();
            assert!(badge.contains(&format!("class=\"mark {}\"", mark.as_str())));
        }
    }

    #[test]
    fn a_load_bar_is_drawn_with_widths_not_styles() {
        let share = RepShare {
            rep_id: "a".into(),
            assigned: 5,
            capacity: 10,
        };
        let svg = load_bar(Lang::En, &share, 2.0).into_string();
        assert!(svg.contains("width=\"40.0\""), "{svg}");
        assert!(svg.contains("x1=\"80.0\""), "{svg}");
        assert!(!svg.contains("style"));
        let none = RepShare {
            capacity: 0,
            ..share
        };
        assert!(
            load_bar(Lang::En, &none, 1.0)
                .into_string()
                .contains("width=\"0.0\"")
        );
    }
}
