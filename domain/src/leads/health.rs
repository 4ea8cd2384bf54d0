//! Health figures of lead distribution for a team and period, and the what-if replay that
//! produces the same figures for a draft rule set.
//!
//! Definitions (also in docs/leads.md):
//! - assignment latency: `assigned_at - created_at` of leads assigned by rule (mean, p90);
//!   target at most 15 min, alarm above.
//! - first response: `first_activity_at - assigned_at` of assigned leads that have one.
//! - conversion in window: leads converted before their protection window ended ÷ leads
//!   assigned; target at least 41 %, alarm below.
//! - cross-group mis-assignment: leads a manager moved to another team ÷ leads assigned; alarm
//!   above 3 %.
//! - load fairness: per rep, assignments ÷ capacity; the coefficient of variation of that
//!   ratio over the team's reps (0 = every rep got leads in proportion to capacity).
//!
//! Each of the three figures with a target also gets a traffic-light [`Mark`]: green when it
//! meets the target, amber when it misses it by at most a fifth of the target (latency p90 at
//! most 18 min, conversion at least 32.8 %, mis-assignment at most 3.6 %), red beyond that, and
//! `no_data` when there is nothing to measure (no latency counted, no lead assigned). `alarm` is
//! the same rule: amber or red.

use super::assign::{Lead, RepSnapshot, assign};
use super::rules::RuleSet;
use serde::Serialize;
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

pub const LATENCY_TARGET_SECS: i64 = 15 * 60;
pub const CONVERSION_TARGET: f64 = 0.41;
pub const MISASSIGNMENT_ALARM: f64 = 0.03;

/// Amber up to a fifth past the target: latency p90 up to 18 min …
pub const LATENCY_AMBER_SECS: i64 = LATENCY_TARGET_SECS + LATENCY_TARGET_SECS / 5;
/// … conversion down to 32.8 % (41 % − 41 % ÷ 5) …
pub const CONVERSION_AMBER: f64 = 0.328;
/// … and mis-assignment up to 3.6 % (3 % + 3 % ÷ 5).
pub const MISASSIGNMENT_AMBER: f64 = 0.036;

/// How a figure stands against its target, for people who read a dashboard at a glance.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// Meets the target.
    Green,
    /// Misses it by at most a fifth of the target.
    Amber,
    /// Misses it by more.
    Red,
    /// Nothing to measure in the period.
    NoData,
}

impl Mark {
    /// `green`, `amber`, `red` or `no_data`, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Green => "green",
            Mark::Amber => "amber",
            Mark::Red => "red",
            Mark::NoData => "no_data",
        }
    }

    /// Amber or red: what `alarm` says.
    pub fn misses_target(self) -> bool {
        matches!(self, Mark::Amber | Mark::Red)
    }

    /// The mark of a figure where less is better.
    fn at_most(value: Option<f64>, target: f64, amber: f64) -> Mark {
        match value {
            None => Mark::NoData,
            Some(v) if v <= target => Mark::Green,
            Some(v) if v <= amber => Mark::Amber,
            Some(_) => Mark::Red,
        }
    }

    /// The mark of a figure where more is better.
    fn at_least(value: Option<f64>, target: f64, amber: f64) -> Mark {
        match value {
            None => Mark::NoData,
            Some(v) if v >= target => Mark::Green,
            Some(v) if v >= amber => Mark::Amber,
            Some(_) => Mark::Red,
        }
    }
}

/// Assignment latency: p90 at most 15 min green, at most 18 min amber, red above.
pub fn latency_mark(p90_secs: Option<i64>) -> Mark {
    match p90_secs {
        None => Mark::NoData,
        Some(p) if p <= LATENCY_TARGET_SECS => Mark::Green,
        Some(p) if p <= LATENCY_AMBER_SECS => Mark::Amber,
        Some(_) => Mark::Red,
    }
}

/// Conversion in window: at least 41 % green, at least 32.8 % amber, red below.
pub fn conversion_mark(rate: Option<f64>) -> Mark {
    Mark::at_least(rate, CONVERSION_TARGET, CONVERSION_AMBER)
}

/// Cross-group mis-assignment: at most 3 % green, at most 3.6 % amber, red above.
pub fn misassignment_mark(rate: Option<f64>) -> Mark {
    Mark::at_most(rate, MISASSIGNMENT_ALARM, MISASSIGNMENT_AMBER)
}

/// What happened to one lead, as far as the figures care.
#[derive(Debug, Clone)]
pub struct LeadOutcome {
    pub created_at: OffsetDateTime,
    pub assigned_at: Option<OffsetDateTime>,
    /// Assigned by a rule (not claimed from the pool, not routed to an existing owner): only
    /// these count for assignment latency.
    pub by_rule: bool,
    pub first_activity_at: Option<OffsetDateTime>,
    pub converted_at: Option<OffsetDateTime>,
    pub protection_ends_at: Option<OffsetDateTime>,
    pub moved_team: bool,
    pub assignee: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Durations {
    pub count: usize,
    pub mean_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    #[serde(flatten)]
    pub durations: Durations,
    pub target_secs: i64,
    /// p90 above target.
    pub alarm: bool,
    /// [`latency_mark`] of the p90.
    pub mark: Mark,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rate {
    pub numerator: usize,
    pub denominator: usize,
    pub rate: Option<f64>,
    pub threshold: f64,
    pub alarm: bool,
    /// [`conversion_mark`] or [`misassignment_mark`] of the rate.
    pub mark: Mark,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Fairness {
    /// Rep id → (assignments, capacity).
    pub per_rep: Vec<RepShare>,
    /// Coefficient of variation of assignments ÷ capacity; `None` with no capacity at all.
    pub spread: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RepShare {
    pub rep_id: String,
    pub assigned: usize,
    pub capacity: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthFigures {
    pub leads: usize,
    pub assigned: usize,
    pub in_pool: usize,
    pub assignment_latency: Latency,
    pub first_response: Durations,
    pub conversion_in_window: Rate,
    pub cross_group_misassignment: Rate,
    pub load_fairness: Fairness,
}

fn durations(mut secs: Vec<i64>) -> Durations {
    secs.sort_unstable();
    let count = secs.len();
    if count == 0 {
        return Durations {
            count,
            mean_secs: None,
            p90_secs: None,
        };
    }
    let mean = secs.iter().sum::<i64>() / count as i64;
    // Nearest-rank p90: the smallest value with at least 90 % of values at or below it.
    let rank = (count * 9).div_ceil(10).max(1);
    Durations {
        count,
        mean_secs: Some(mean),
        p90_secs: Some(secs[rank - 1]),
    }
}

fn conversion_rate(numerator: usize, denominator: usize) -> Rate {
    rate(numerator, denominator, CONVERSION_TARGET, conversion_mark)
}

fn misassignment_rate(numerator: usize, denominator: usize) -> Rate {
    rate(
        numerator,
        denominator,
        MISASSIGNMENT_ALARM,
        misassignment_mark,
    )
}

fn rate(
    numerator: usize,
    denominator: usize,
    threshold: f64,
    mark_of: fn(Option<f64>) -> Mark,
) -> Rate {
    let r = (denominator > 0).then(|| numerator as f64 / denominator as f64);
    let mark = mark_of(r);
    Rate {
        numerator,
        denominator,
        rate: r,
        threshold,
        alarm: mark.misses_target(),
        mark,
    }
}

/// Fairness over the given reps (rep id, capacity) from who got how many leads.
pub fn fairness(reps: &[(String, u32)], assignees: &[&str]) -> Fairness {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for a in assignees {
        *counts.entry(a).or_default() += 1;
    }
    let per_rep: Vec<RepShare> = reps
        .iter()
        .map(|(id, cap)| RepShare {
            rep_id: id.clone(),
            assigned: counts.get(id.as_str()).copied().unwrap_or(0),
            capacity: *cap,
        })
        .collect();
    let ratios: Vec<f64> = per_rep
        .iter()
        .filter(|r| r.capacity > 0)
        .map(|r| r.assigned as f64 / f64::from(r.capacity))
        .collect();
    let spread = if ratios.is_empty() {
        None
    } else {
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        if mean == 0.0 {
            Some(0.0)
        } else {
            let var = ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / ratios.len() as f64;
            Some((var.sqrt() / mean * 1000.0).round() / 1000.0)
        }
    };
    Fairness { per_rep, spread }
}

/// The figures for a set of leads and the reps (id, capacity) of the team.
pub fn health(leads: &[LeadOutcome], reps: &[(String, u32)]) -> HealthFigures {
    let assigned: Vec<&LeadOutcome> = leads.iter().filter(|l| l.assigned_at.is_some()).collect();
    let latency = durations(
        assigned
            .iter()
            .filter(|l| l.by_rule)
            .filter_map(|l| {
                l.assigned_at
                    .map(|a| (a - l.created_at).whole_seconds().max(0))
            })
            .collect(),
    );
    let first_response = durations(
        assigned
            .iter()
            .filter_map(|l| {
                Some(
                    (l.first_activity_at? - l.assigned_at?)
                        .whole_seconds()
                        .max(0),
                )
            })
            .collect(),
    );
    let converted_in_window = assigned
        .iter()
        .filter(
            |l| matches!((l.converted_at, l.protection_ends_at), (Some(c), Some(end)) if c <= end),
        )
        .count();
    let moved = assigned.iter().filter(|l| l.moved_team).count();
    let assignees: Vec<&str> = assigned
        .iter()
        .filter_map(|l| l.assignee.as_deref())
        .collect();
    HealthFigures {
        leads: leads.len(),
        assigned: assigned.len(),
        in_pool: leads.len() - assigned.len(),
        assignment_latency: Latency {
            alarm: latency_mark(latency.p90_secs).misses_target(),
            mark: latency_mark(latency.p90_secs),
            durations: latency,
            target_secs: LATENCY_TARGET_SECS,
        },
        first_response,
        conversion_in_window: conversion_rate(converted_in_window, assigned.len()),
        cross_group_misassignment: misassignment_rate(moved, assigned.len()),
        load_fairness: fairness(reps, &assignees),
    }
}

/// A past lead to replay: its tags, when it came, who got it then and which team it ended in.
#[derive(Debug, Clone)]
pub struct ReplayLead {
    pub id: String,
    pub lead: Lead,
    pub created_at: OffsetDateTime,
    pub actual_rep: Option<String>,
    /// The team the lead ended up with (after any manager move); `None` if never assigned.
    pub final_team: Option<String>,
    /// A manager moved it to another team after assignment.
    pub moved_team: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplayDifference {
    pub lead_id: String,
    pub actual_rep: Option<String>,
    pub draft_rep: Option<String>,
    pub draft_layer: Option<String>,
}

/// Figures a replay can honestly produce (latency and conversion depend on what people did,
/// which a replay cannot know).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplayFigures {
    pub assigned: usize,
    pub in_pool: usize,
    /// Leads whose team differs from the team they ended up in after managers' moves ÷ leads
    /// assigned: the replay's estimate of cross-group mis-assignment.
    pub cross_group_misassignment: Rate,
    pub load_fairness: Fairness,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplayReport {
    pub leads: usize,
    pub changed: usize,
    /// Every lead whose rep would differ (capped by the caller).
    pub differences: Vec<ReplayDifference>,
    pub actual: ReplayFigures,
    pub draft: ReplayFigures,
}

/// Replay `leads` (oldest first) against `draft`, starting from `reps` as they are given; each
/// replayed assignment adds a protected, pending lead to its rep and resets their wait. Protection
/// expiries and follow-ups during the period are not simulated.
pub fn replay(
    leads: &[ReplayLead],
    reps: &[RepSnapshot],
    draft: &RuleSet,
    max_differences: usize,
) -> ReplayReport {
    let mut sim: Vec<RepSnapshot> = reps.to_vec();
    let team_of: HashMap<&str, Option<&str>> = reps
        .iter()
        .map(|r| (r.id.as_str(), r.team_id.as_deref()))
        .collect();
    let mut differences = Vec::new();
    let mut changed = 0;
    let mut draft_assignees: Vec<String> = Vec::new();
    let mut draft_moved = 0;
    for l in leads {
        let d = assign(&l.lead, &sim, draft, l.created_at);
        let draft_rep = d.rep_id().map(str::to_owned);
        if let Some(rep) = &draft_rep {
            if let Some(s) = sim.iter_mut().find(|s| &s.id == rep) {
                s.protected_leads += 1;
                s.pending_leads += 1;
                s.last_assigned_at = Some(l.created_at);
            }
            draft_assignees.push(rep.clone());
            let draft_team = team_of.get(rep.as_str()).copied().flatten();
            if l.final_team.is_some() && draft_team != l.final_team.as_deref() {
                draft_moved += 1;
            }
        }
        if draft_rep != l.actual_rep {
            changed += 1;
            if differences.len() < max_differences {
                let draft_layer = match &d.outcome {
                    super::assign::Outcome::Assigned { layer_name, .. } => Some(layer_name.clone()),
                    super::assign::Outcome::Pool { .. } => None,
                };
                differences.push(ReplayDifference {
                    lead_id: l.id.clone(),
                    actual_rep: l.actual_rep.clone(),
                    draft_rep,
                    draft_layer,
                });
            }
        }
    }
    let capacities: Vec<(String, u32)> = reps.iter().map(|r| (r.id.clone(), r.capacity)).collect();
    let actual_assignees: Vec<&str> = leads
        .iter()
        .filter_map(|l| l.actual_rep.as_deref())
        .collect();
    let actual_assigned = actual_assignees.len();
    let actual_moved = leads
        .iter()
        .filter(|l| l.actual_rep.is_some() && l.moved_team)
        .count();
    let draft_refs: Vec<&str> = draft_assignees.iter().map(String::as_str).collect();
    ReplayReport {
        leads: leads.len(),
        changed,
        differences,
        actual: ReplayFigures {
            assigned: actual_assigned,
            in_pool: leads.len() - actual_assigned,
            cross_group_misassignment: misassignment_rate(actual_moved, actual_assigned),
            load_fairness: fairness(&capacities, &actual_assignees),
        },
        draft: ReplayFigures {
            assigned: draft_assignees.len(),
            in_pool: leads.len() - draft_assignees.len(),
            cross_group_misassignment: misassignment_rate(draft_moved, draft_assignees.len()),
            load_fairness: fairness(&capacities, &draft_refs),
        },
    }
}

/// A window of time ending at `to`, `days` long.
pub fn period(to: OffsetDateTime, days: i64) -> (OffsetDateTime, OffsetDateTime) {
    (to - Duration::days(days), to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);

    fn outcome(latency_min: i64, converted: bool, moved: bool, rep: &str) -> LeadOutcome {
        let assigned = T + Duration::minutes(latency_min);
        LeadOutcome {
            created_at: T,
            assigned_at: Some(assigned),
            by_rule: true,
            first_activity_at: Some(assigned + Duration::hours(1)),
            converted_at: converted.then(|| assigned + Duration::hours(2)),
            protection_ends_at: Some(assigned + Duration::hours(24)),
            moved_team: moved,
            assignee: Some(rep.into()),
        }
    }

    #[test]
    fn figures_follow_their_definitions() {
        let mut leads: Vec<LeadOutcome> = (0..10)
            .map(|i| outcome(i, i < 5, i == 0, if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        leads.push(LeadOutcome {
            assigned_at: None,
            assignee: None,
            ..outcome(0, false, false, "a")
        });
        let h = health(&leads, &[("a".into(), 10), ("b".into(), 10)]);
        assert_eq!((h.leads, h.assigned, h.in_pool), (11, 10, 1));
        assert_eq!(h.assignment_latency.durations.p90_secs, Some(8 * 60));
        assert_eq!(h.assignment_latency.durations.mean_secs, Some(270));
        assert!(!h.assignment_latency.alarm);
        assert_eq!(h.first_response.mean_secs, Some(3600));
        assert_eq!(h.conversion_in_window.rate, Some(0.5));
        assert!(!h.conversion_in_window.alarm);
        assert_eq!(h.cross_group_misassignment.rate, Some(0.1));
        assert!(h.cross_group_misassignment.alarm);
        assert_eq!(
            (
                h.assignment_latency.mark,
                h.conversion_in_window.mark,
                h.cross_group_misassignment.mark
            ),
            (Mark::Green, Mark::Green, Mark::Red)
        );
        assert_eq!(h.load_fairness.spread, Some(0.0));
    }

    #[test]
    fn slow_assignment_raises_the_latency_alarm() {
        let h = health(&[outcome(30, false, false, "a")], &[("a".into(), 1)]);
        assert!(h.assignment_latency.alarm);
        assert_eq!(h.assignment_latency.mark, Mark::Red);
        assert!(h.conversion_in_window.alarm);
        assert_eq!(h.conversion_in_window.mark, Mark::Red);
        assert_eq!(h.cross_group_misassignment.mark, Mark::Green);
    }

    #[test]
    fn amber_bounds_are_a_fifth_of_each_target() {
        assert_eq!(LATENCY_AMBER_SECS, 18 * 60);
        assert!((CONVERSION_AMBER - CONVERSION_TARGET * 0.8).abs() < 1e-12);
        assert!((MISASSIGNMENT_AMBER - MISASSIGNMENT_ALARM * 1.2).abs() < 1e-12);
    }

    #[test]
    fn latency_marks_at_their_boundaries() {
        assert_eq!(latency_mark(None), Mark::NoData);
        assert_eq!(latency_mark(Some(0)), Mark::Green);
        assert_eq!(latency_mark(Some(15 * 60)), Mark::Green);
        assert_eq!(latency_mark(Some(15 * 60 + 1)), Mark::Amber);
        assert_eq!(latency_mark(Some(18 * 60)), Mark::Amber);
        assert_eq!(latency_mark(Some(18 * 60 + 1)), Mark::Red);
    }

    /// The rate as `health` computes it, so the boundaries are tested on real divisions.
    fn r(n: usize, d: usize) -> Option<f64> {
        conversion_rate(n, d).rate
    }

    #[test]
    fn conversion_marks_at_their_boundaries() {
        assert_eq!(conversion_mark(r(0, 0)), Mark::NoData);
        assert_eq!(conversion_mark(r(1, 1)), Mark::Green);
        assert_eq!(conversion_mark(r(41, 100)), Mark::Green);
        assert_eq!(conversion_mark(r(409, 1000)), Mark::Amber);
        assert_eq!(conversion_mark(r(328, 1000)), Mark::Amber);
        assert_eq!(conversion_mark(r(41, 125)), Mark::Amber, "41/125 = 32.8 %");
        assert_eq!(conversion_mark(r(327, 1000)), Mark::Red);
        assert_eq!(conversion_mark(r(0, 4)), Mark::Red);
    }

    #[test]
    fn misassignment_marks_at_their_boundaries() {
        assert_eq!(misassignment_mark(r(0, 0)), Mark::NoData);
        assert_eq!(misassignment_mark(r(0, 7)), Mark::Green);
        assert_eq!(misassignment_mark(r(3, 100)), Mark::Green);
        assert_eq!(misassignment_mark(r(31, 1000)), Mark::Amber);
        assert_eq!(misassignment_mark(r(36, 1000)), Mark::Amber);
        assert_eq!(misassignment_mark(r(9, 250)), Mark::Amber, "9/250 = 3.6 %");
        assert_eq!(misassignment_mark(r(37, 1000)), Mark::Red);
        assert_eq!(misassignment_mark(r(1, 4)), Mark::Red);
    }

    #[test]
    fn alarm_and_mark_agree_and_serialize_in_snake_case() {
        let empty = health(&[], &[]);
        assert_eq!(empty.assignment_latency.mark, Mark::NoData);
        assert!(!empty.assignment_latency.alarm);
        assert_eq!(empty.conversion_in_window.mark, Mark::NoData);
        assert!(!empty.cross_group_misassignment.alarm);
        let json = serde_json::to_value(&empty).unwrap_or_default();
        assert_eq!(json["assignment_latency"]["mark"], "no_data");
        assert_eq!(json["conversion_in_window"]["mark"], "no_data");
        assert_eq!(json["cross_group_misassignment"]["alarm"], false);
        // Amber is an alarm too.
        let amber = misassignment_rate(9, 250);
        assert_eq!((amber.mark, amber.alarm), (Mark::Amber, true));
        assert_eq!(
            serde_json::to_value(Mark::Amber).unwrap_or_default(),
            "amber"
        );
        assert_eq!(Mark::NoData.as_str(), "no_data");
    }
}
