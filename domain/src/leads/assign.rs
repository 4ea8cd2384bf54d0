//! `assign`: which rep gets a lead, and the full record of why.
//!
//! Eligibility first (available, room under capacity), then the layers in order: a layer whose
//! lead conditions fail is skipped whole; otherwise its rep conditions filter the eligible reps,
//! and the first layer with any candidate decides. Among candidates the lowest load relative to
//! capacity wins; a tie goes to whoever has waited longest since their last assignment, and a
//! remaining tie (e.g. nobody was ever assigned) to a per-lead hash of the rep's id — fair in
//! expectation, the same on every replay, and never seniority or id order.

use super::rules::{Condition, Layer, RuleSet};
use super::tags::{LeadTags, place_key};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};

/// Load one protected lead adds, in thousandths (deals weigh less or more by stage).
pub const LEAD_LOAD_MILLI: u64 = 1000;

/// A lead as assignment sees it: a stable key (its id, for the tie-break) and its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub key: String,
    pub tags: LeadTags,
}

/// A rep's attributes and load at the moment of the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepSnapshot {
    pub id: String,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    pub regions: Vec<String>,
    pub product_expertise: Vec<String>,
    /// Open leads and deals the rep can carry (in whole leads).
    pub capacity: u32,
    /// False while on leave.
    pub available: bool,
    /// Assigned leads still inside their protection window.
    pub protected_leads: u32,
    /// Assigned leads with no follow-up activity yet (待跟进).
    pub pending_leads: u32,
    /// Open deals, weighted by stage, in thousandths of a lead.
    pub deal_load_milli: u64,
    pub last_assigned_at: Option<OffsetDateTime>,
}

impl RepSnapshot {
    pub fn load_milli(&self) -> u64 {
        u64::from(self.protected_leads) * LEAD_LOAD_MILLI + self.deal_load_milli
    }

    /// Whether one more lead still fits under capacity.
    pub fn has_room(&self) -> bool {
        self.load_milli() + LEAD_LOAD_MILLI <= u64::from(self.capacity) * LEAD_LOAD_MILLI
    }
}

/// Weight of an open deal by how far it has come: a deal at its first node needs the most work
/// (1.0 lead), one at its last node the least (0.25). `position` is 0-based of `node_count`.
pub fn deal_weight_milli(position: Option<usize>, node_count: usize) -> u64 {
    match position {
        Some(p) if node_count > 1 => {
            let p = p.min(node_count - 1) as u64;
            1000 - 750 * p / (node_count as u64 - 1)
        }
        Some(_) => 1000,
        // A node the template does not know: count it as mid-way.
        None => 500,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Assigned {
        rep_id: String,
        layer: usize,
        layer_name: String,
        protection_hours: u32,
        #[serde(with = "time::serde::rfc3339")]
        protection_ends_at: OffsetDateTime,
    },
    Pool {
        reason: PoolReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolReason {
    /// No layer's lead conditions match this lead.
    NoLayerMatchesLead,
    /// Some layers match the lead but no eligible rep passes their rep conditions.
    NoEligibleRep,
}

/// What happened at one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerTrace {
    pub index: usize,
    pub name: String,
    /// The first lead condition that failed (`None`: the lead matches the layer).
    pub failed_lead_condition: Option<FailedCondition>,
    pub candidates: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCondition {
    pub index: usize,
    pub field: String,
}

/// A candidate at the deciding layer, with everything its rank came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub rep_id: String,
    /// 1 is the winner.
    pub rank: usize,
    pub load_milli: u64,
    pub capacity: u32,
    /// Load relative to capacity, per mille (the primary score; lower wins).
    pub load_permille: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_assigned_at: Option<OffsetDateTime>,
    /// Seconds since the last assignment; `None` = never assigned (waited longest of all).
    pub waited_secs: Option<i64>,
    /// Last resort of the ordering: a hash of (lead, rep).
    pub tie_break: u64,
}

/// Why a rep was not a candidate at the deciding layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Exclusion {
    /// On leave.
    Unavailable,
    /// One more lead would exceed capacity.
    AtCapacity,
    /// A rep condition of the deciding layer failed.
    Condition { index: usize, field: String },
}

/// Reps excluded for one reason (grouped: one reason per rep, the first that applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionGroup {
    pub reason: Exclusion,
    pub rep_ids: Vec<String>,
}

/// The whole decision, as stored and explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub layers: Vec<LayerTrace>,
    /// The winning layer, or for a pooled lead the first layer that matched the lead.
    pub deciding_layer: Option<usize>,
    /// Ranked, best first.
    pub candidates: Vec<Candidate>,
    pub excluded: Vec<ExclusionGroup>,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
}

/// How one rep fared in a decision: the answer to "why did rep X (not) get this lead".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum RepVerdict<'a> {
    Chosen {
        candidate: &'a Candidate,
    },
    Outranked {
        candidate: &'a Candidate,
        winner: &'a Candidate,
    },
    Excluded {
        reason: &'a Exclusion,
    },
    /// Not among the reps considered (not a rep of the org then, or no profile).
    NotConsidered,
}

impl Decision {
    pub fn rep_id(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Assigned { rep_id, .. } => Some(rep_id),
            Outcome::Pool { .. } => None,
        }
    }

    pub fn verdict_for(&self, rep_id: &str) -> RepVerdict<'_> {
        if let Some(candidate) = self.candidates.iter().find(|c| c.rep_id == rep_id) {
            return match self.candidates.first() {
                Some(winner) if winner.rep_id != rep_id => {
                    RepVerdict::Outranked { candidate, winner }
                }
                _ => RepVerdict::Chosen { candidate },
            };
        }
        for group in &self.excluded {
            if group.rep_ids.iter().any(|r| r == rep_id) {
                return RepVerdict::Excluded {
                    reason: &group.reason,
                };
            }
        }
        RepVerdict::NotConsidered
    }
}

/// Product lines compare trimmed and case-insensitively, without allocating (this runs for every
/// rep at every layer that asks for expertise).
fn same_product(a: &str, b: &str) -> bool {
    a.trim()
        .chars()
        .flat_map(char::to_lowercase)
        .eq(b.trim().chars().flat_map(char::to_lowercase))
}

fn lead_matches(c: &Condition, lead: &LeadTags) -> bool {
    match c {
        Condition::Source { r#in } => r#in.contains(&lead.source),
        Condition::Industry { r#in } => r#in.contains(&lead.industry),
        Condition::AnnualPurchaseFen { at_least, below } => {
            at_least.is_none_or(|a| lead.annual_purchase >= a)
                && below.is_none_or(|b| lead.annual_purchase < b)
        }
        Condition::Seniority { r#in } => r#in.contains(&lead.seniority),
        Condition::Province { r#in } => r#in.iter().any(|p| place_key(p) == lead.region.province),
        Condition::City { r#in } => r#in.iter().any(|p| place_key(p) == lead.region.city),
        Condition::ResponseSpeed { r#in } => r#in.contains(&lead.response_speed),
        // Rep conditions never fail on the lead side.
        Condition::RepTeam { .. }
        | Condition::RepCoversLeadRegion {}
        | Condition::RepExpertise { .. }
        | Condition::RepPendingLeads { .. }
        | Condition::RepLoadPercent { .. } => true,
    }
}

/// A rep condition that depends on neither the lead nor the loads (`None` for the others).
fn fixed_rep_match(c: &Condition, rep: &RepSnapshot) -> Option<bool> {
    match c {
        Condition::RepTeam { r#in } => Some(r#in.iter().any(|t| {
            rep.team_id.as_deref() == Some(t.as_str())
                || rep.team_name.as_deref() == Some(t.as_str())
        })),
        Condition::RepExpertise { any_of } => Some(
            rep.product_expertise
                .iter()
                .any(|p| any_of.iter().any(|want| same_product(want, p))),
        ),
        _ => None,
    }
}

fn rep_matches(c: &Condition, rep: &RepSnapshot, lead: &LeadTags) -> bool {
    if let Some(fixed) = fixed_rep_match(c, rep) {
        return fixed;
    }
    match c {
        Condition::RepCoversLeadRegion {} => rep.regions.iter().any(|r| lead.region.covered_by(r)),
        Condition::RepTeam { .. } | Condition::RepExpertise { .. } => false,
        Condition::RepPendingLeads { below } => rep.pending_leads < *below,
        Condition::RepLoadPercent { below } => {
            rep.load_milli() * 100 < u64::from(*below) * u64::from(rep.capacity) * LEAD_LOAD_MILLI
        }
        Condition::Source { .. }
        | Condition::Industry { .. }
        | Condition::AnnualPurchaseFen { .. }
        | Condition::Seniority { .. }
        | Condition::Province { .. }
        | Condition::City { .. }
        | Condition::ResponseSpeed { .. } => true,
    }
}

/// FNV-1a over the lead key and the rep id: stable across platforms and releases (unlike
/// `std`'s hasher), so a stored decision replays to the same order.
pub(crate) fn tie_break(lead_key: &str, rep_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in lead_key.bytes().chain([0]).chain(rep_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Lower is better: load relative to capacity, then longest wait, then the hash.
fn rank_order(a: &Ranked, b: &Ranked) -> Ordering {
    let ratio = (u128::from(a.load_milli) * u128::from(b.capacity))
        .cmp(&(u128::from(b.load_milli) * u128::from(a.capacity)));
    let waited = match (a.last_nanos, b.last_nanos) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(&y),
    };
    ratio.then(waited).then(a.tie_break.cmp(&b.tie_break))
}

/// Why a rep is out, while deciding: `Copy` and allocation-free, because it is computed for every
/// rep at every layer that reaches the reps (50k times at 1,000 reps and 50 layers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Why {
    Unavailable,
    AtCapacity,
    Condition(usize),
}

/// A layer tried, by index: [`LayerTrace`] without the names, which only the full record needs
/// (a batch decides hundreds of leads over 50 layers each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tried {
    pub index: usize,
    /// The first lead condition that failed, by index.
    pub failed_lead_condition: Option<usize>,
    pub candidates: usize,
}

impl Tried {
    /// The trace with the layer's name and the failed condition's field, from `rules`.
    pub(crate) fn trace(self, rules: &RuleSet) -> LayerTrace {
        let layer = rules.layers.get(self.index);
        LayerTrace {
            index: self.index,
            name: layer.map(|l| l.name.clone()).unwrap_or_default(),
            failed_lead_condition: self.failed_lead_condition.map(|index| FailedCondition {
                index,
                field: layer
                    .and_then(|l| l.conditions.get(index))
                    .map_or("", Condition::field)
                    .to_owned(),
            }),
            candidates: self.candidates,
        }
    }
}

/// A candidate while ranking: the `rep`-th rep and its score, `Copy` (no id string), so that
/// ranking a hundred candidates per lead moves small values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ranked {
    pub rep: usize,
    pub load_milli: u64,
    pub capacity: u32,
    pub last_assigned_at: Option<OffsetDateTime>,
    /// `last_assigned_at` as an integer, what the ranking compares (comparing `OffsetDateTime`s
    /// normalises their offsets every time: an eighth of deciding, in a profile).
    pub last_nanos: Option<i128>,
    pub tie_break: u64,
}

impl Ranked {
    fn candidate(self, rank: usize, reps: &[RepSnapshot], now: OffsetDateTime) -> Candidate {
        Candidate {
            rep_id: reps.get(self.rep).map(|r| r.id.clone()).unwrap_or_default(),
            rank,
            load_milli: self.load_milli,
            capacity: self.capacity,
            load_permille: self.load_milli * 1000 / u64::from(self.capacity.max(1)),
            last_assigned_at: self.last_assigned_at,
            waited_secs: self.last_assigned_at.map(|t| (now - t).whole_seconds()),
            tie_break: self.tie_break,
        }
    }
}

/// A decision before it is written out: reps by their index in the slice decided over, so the
/// full record ([`Decision`]) and the compact stored one (`record::StoredDecision`) are two
/// views of one computation.
pub(crate) struct Decided {
    pub outcome: Outcome,
    pub layers: Vec<Tried>,
    pub deciding_layer: Option<usize>,
    /// Every candidate of the deciding layer, ranked best first, with its score.
    pub ranked: Vec<Ranked>,
    /// Per rep, why it is not a candidate (`None`: it is one).
    pub reasons: Vec<Option<Why>>,
    pub decided_at: OffsetDateTime,
}

impl Decided {
    pub fn exclusion(&self, rules: &RuleSet, why: Why) -> Exclusion {
        match why {
            Why::Unavailable => Exclusion::Unavailable,
            Why::AtCapacity => Exclusion::AtCapacity,
            Why::Condition(index) => Exclusion::Condition {
                index,
                field: self
                    .deciding_layer
                    .and_then(|l| rules.layers.get(l))
                    .and_then(|l| l.conditions.get(index))
                    .map_or("", Condition::field)
                    .to_owned(),
            },
        }
    }

    fn into_decision(self, reps: &[RepSnapshot], rules: &RuleSet) -> Decision {
        let mut pairs: Vec<(Why, &str)> = reps
            .iter()
            .zip(&self.reasons)
            .filter_map(|(rep, r)| r.map(|r| (r, rep.id.as_str())))
            .collect();
        pairs.sort_unstable();
        let mut groups: Vec<ExclusionGroup> = Vec::new();
        let mut last: Option<Why> = None;
        for (why, rep) in pairs {
            match groups.last_mut() {
                Some(g) if last == Some(why) => g.rep_ids.push(rep.to_owned()),
                _ => groups.push(ExclusionGroup {
                    reason: self.exclusion(rules, why),
                    rep_ids: vec![rep.to_owned()],
                }),
            }
            last = Some(why);
        }
        let now = self.decided_at;
        Decision {
            outcome: self.outcome,
            layers: self.layers.into_iter().map(|t| t.trace(rules)).collect(),
            deciding_layer: self.deciding_layer,
            candidates: self
                .ranked
                .into_iter()
                .enumerate()
                .map(|(i, r)| r.candidate(i + 1, reps, now))
                .collect(),
            excluded: groups,
            decided_at: self.decided_at,
        }
    }
}

/// Decide who gets `lead` under `rules`, given every rep of the org as they stand at `now`.
pub fn assign(lead: &Lead, reps: &[RepSnapshot], rules: &RuleSet, now: OffsetDateTime) -> Decision {
    decide(lead, reps, rules, now, None).into_decision(reps, rules)
}

/// A lead's province and city among a batch's places (see [`Compiled`]).
type LeadPlaces = [Option<u32>; 2];

/// What stays the same for every lead of a batch decided over the same reps and rules: the
/// outcome of each rep condition that depends on neither the lead nor the loads (team,
/// expertise), and each rep's region keys. With it, deciding a burst of leads costs a lookup per
/// rep and layer instead of string comparisons. Loads may change between decisions; the reps'
/// other attributes and their order must not.
pub struct Compiled {
    reps: usize,
    /// `[layer][condition]` → per rep, whether it holds; `None` for conditions that depend on
    /// the lead or on loads.
    fixed: Vec<Vec<Option<Vec<bool>>>>,
    /// Per layer with fixed rep conditions: the reps that pass all of them (ascending). Only
    /// they can be candidates, so "has this layer any candidate?" looks at them alone — a
    /// targeted layer nobody qualifies for costs nothing instead of a pass over every rep.
    survivors: Vec<Option<Vec<usize>>>,
    /// Each rep's region keys, as numbers from `places` (a lead's province and city are looked
    /// up once per decision instead of compared as strings with every rep's regions).
    region_keys: Vec<Vec<u32>>,
    places: HashMap<String, u32>,
}

impl Compiled {
    pub fn new(reps: &[RepSnapshot], rules: &RuleSet) -> Compiled {
        let fixed: Vec<Vec<Option<Vec<bool>>>> = rules
            .layers
            .iter()
            .map(|layer| {
                layer
                    .conditions
                    .iter()
                    .map(|c| {
                        fixed_rep_match(c, reps.first()?)?;
                        reps.iter().map(|r| fixed_rep_match(c, r)).collect()
                    })
                    .collect()
            })
            .collect();
        let survivors = fixed
            .iter()
            .map(|conditions| {
                let known: Vec<&Vec<bool>> = conditions.iter().flatten().collect();
                if known.is_empty() {
                    return None;
                }
                Some(
                    (0..reps.len())
                        .filter(|&i| known.iter().all(|per_rep| per_rep.get(i) == Some(&true)))
                        .collect(),
                )
            })
            .collect();
        let mut places: HashMap<String, u32> = HashMap::new();
        let region_keys = reps
            .iter()
            .map(|r| {
                r.regions
                    .iter()
                    .map(|a| super::tags::place_key(a))
                    .filter(|k| !k.is_empty())
                    .map(|k| {
                        let next = u32::try_from(places.len()).unwrap_or(u32::MAX);
                        *places.entry(k.to_string()).or_insert(next)
                    })
                    .collect()
            })
            .collect();
        Compiled {
            reps: reps.len(),
            fixed,
            survivors,
            region_keys,
            places,
        }
    }

    /// The lead's province and city as numbers of this batch's places (`None`: no rep covers
    /// it), for [`Self::holds`].
    fn lead_places(&self, lead: &LeadTags) -> LeadPlaces {
        [
            self.places.get(lead.region.province.as_str()).copied(),
            self.places.get(lead.region.city.as_str()).copied(),
        ]
    }

    /// Whether rep condition `condition` of layer `layer` holds for the `rep`-th rep, when this
    /// context knows without looking at the rep.
    fn holds(
        &self,
        layer: usize,
        condition: usize,
        rep: usize,
        c: &Condition,
        lead: &LeadPlaces,
    ) -> Option<bool> {
        if let Some(Some(per_rep)) = self.fixed.get(layer).and_then(|l| l.get(condition)) {
            return per_rep.get(rep).copied();
        }
        match c {
            Condition::RepCoversLeadRegion {} => self
                .region_keys
                .get(rep)
                .map(|keys| keys.iter().any(|k| lead.contains(&Some(*k)))),
            _ => None,
        }
    }
}

pub(crate) fn decide(
    lead: &Lead,
    reps: &[RepSnapshot],
    rules: &RuleSet,
    now: OffsetDateTime,
    compiled: Option<&Compiled>,
) -> Decided {
    let compiled = compiled.filter(|c| c.reps == reps.len());
    let places = compiled
        .map(|cx| cx.lead_places(&lead.tags))
        .unwrap_or_default();
    // Eligibility does not depend on the layer: compute it once.
    let base: Vec<Option<Why>> = reps
        .iter()
        .map(|r| {
            if !r.available {
                Some(Why::Unavailable)
            } else if !r.has_room() {
                Some(Why::AtCapacity)
            } else {
                None
            }
        })
        .collect();
    let mut layers = Vec::with_capacity(rules.layers.len());
    // Why the `i`-th rep is out at layer `index` (`None`: a candidate there).
    let why = |index: usize, layer: &Layer, i: usize, rep: &RepSnapshot, base: &Option<Why>| {
        base.or_else(|| {
            layer
                .conditions
                .iter()
                .enumerate()
                .position(|(ci, c)| {
                    !c.is_lead_condition()
                        && !compiled
                            .and_then(|cx| cx.holds(index, ci, i, c, &places))
                            .unwrap_or_else(|| rep_matches(c, rep, &lead.tags))
                })
                .map(Why::Condition)
        })
    };
    let reasons_at = |index: usize, layer: &Layer| -> Vec<Option<Why>> {
        reps.iter()
            .zip(&base)
            .enumerate()
            .map(|(i, (r, b))| why(index, layer, i, r, b))
            .collect()
    };
    // The first layer that matched the lead: if none decides, its reasons are the record's.
    let mut first_lead_match: Option<usize> = None;
    for (index, layer) in rules.layers.iter().enumerate() {
        let failed = layer
            .conditions
            .iter()
            .position(|c| c.is_lead_condition() && !lead_matches(c, &lead.tags));
        if failed.is_some() {
            layers.push(Tried {
                index,
                failed_lead_condition: failed,
                candidates: 0,
            });
            continue;
        }
        // A layer's reasons are only worked out if it decides (or, at the end, for the first
        // layer that matched the lead): look for one candidate first — most targeted layers have
        // none — among the reps that pass the layer's fixed conditions when they are known.
        let any_candidate = match compiled.and_then(|cx| cx.survivors.get(index)?.as_ref()) {
            Some(survivors) => survivors.iter().any(|&i| {
                matches!((reps.get(i), base.get(i)), (Some(r), Some(b)) if why(index, layer, i, r, b).is_none())
            }),
            None => reps
                .iter()
                .zip(&base)
                .enumerate()
                .any(|(i, (r, b))| why(index, layer, i, r, b).is_none()),
        };
        if !any_candidate {
            layers.push(Tried {
                index,
                failed_lead_condition: None,
                candidates: 0,
            });
            first_lead_match.get_or_insert(index);
            continue;
        }
        let reasons = reasons_at(index, layer);
        layers.push(Tried {
            index,
            failed_lead_condition: None,
            candidates: reasons.iter().filter(|r| r.is_none()).count(),
        });
        return finish(lead, reps, rules, now, layers, index, reasons);
    }
    let (deciding_layer, reason, reasons) = match first_lead_match {
        Some(index) => (
            Some(index),
            PoolReason::NoEligibleRep,
            rules
                .layers
                .get(index)
                .map_or_else(|| base.clone(), |layer| reasons_at(index, layer)),
        ),
        // No layer looked at reps; still say who was ineligible anyway.
        None => (None, PoolReason::NoLayerMatchesLead, base.clone()),
    };
    Decided {
        outcome: Outcome::Pool { reason },
        layers,
        deciding_layer,
        ranked: Vec::new(),
        reasons,
        decided_at: now,
    }
}

fn finish(
    lead: &Lead,
    reps: &[RepSnapshot],
    rules: &RuleSet,
    now: OffsetDateTime,
    layers: Vec<Tried>,
    layer: usize,
    reasons: Vec<Option<Why>>,
) -> Decided {
    let mut ranked: Vec<Ranked> = reps
        .iter()
        .zip(&reasons)
        .enumerate()
        .filter(|(_, (_, r))| r.is_none())
        .map(|(i, (rep, _))| Ranked {
            rep: i,
            load_milli: rep.load_milli(),
            capacity: rep.capacity,
            last_assigned_at: rep.last_assigned_at,
            last_nanos: rep
                .last_assigned_at
                .map(OffsetDateTime::unix_timestamp_nanos),
            tie_break: tie_break(&lead.key, &rep.id),
        })
        .collect();
    // The roster position last makes the order total, so an unstable sort gives what a stable
    // one over the roster order would.
    ranked.sort_unstable_by(|a, b| rank_order(a, b).then(a.rep.cmp(&b.rep)));
    let winner = ranked
        .first()
        .and_then(|r| reps.get(r.rep))
        .map(|r| r.id.clone())
        .unwrap_or_default();
    let hours = rules.protection_hours_of(layer);
    let outcome = Outcome::Assigned {
        rep_id: winner,
        layer,
        layer_name: rules.layers[layer].name.clone(),
        protection_hours: hours,
        protection_ends_at: now + Duration::hours(i64::from(hours)),
    };
    Decided {
        outcome,
        layers,
        deciding_layer: Some(layer),
        ranked,
        reasons,
        decided_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{Fen, Seniority};
    use crate::leads::rules::{Layer, RuleContext};
    use crate::leads::tags::{Industry, Region, ResponseSpeed, SourceChannel};
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-26 09:00 UTC);

    fn lead(key: &str, fen: i64) -> Lead {
        Lead {
            key: key.into(),
            tags: LeadTags {
                industry: Industry::Manufacturing,
                source: SourceChannel::Website,
                annual_purchase: Fen::new(fen).unwrap(),
                seniority: Seniority::Director,
                region: Region::new("浙江省", "杭州市"),
                response_speed: ResponseSpeed::Unknown,
                products: vec![],
            },
        }
    }

    fn rep(id: &str, team: &str, capacity: u32, protected: u32) -> RepSnapshot {
        RepSnapshot {
            id: id.into(),
            team_id: Some(format!("{team}-id")),
            team_name: Some(team.into()),
            regions: vec!["浙江".into()],
            product_expertise: vec!["pumps".into()],
            capacity,
            available: true,
            protected_leads: protected,
            pending_leads: protected,
            deal_load_milli: 0,
            last_assigned_at: None,
        }
    }

    fn rules(json: serde_json::Value) -> RuleSet {
        let teams = vec![
            ("KA-id".to_owned(), "KA".to_owned()),
            ("SMB-id".to_owned(), "SMB".to_owned()),
        ];
        RuleSet::parse(&json, &RuleContext { teams: &teams }).unwrap()
    }

    #[test]
    fn first_layer_with_candidates_wins_and_explains_the_rest() {
        let rules = rules(serde_json::json!({"layers": [
            {"name": "big", "conditions": [{"field": "annual_purchase_fen", "at_least": 80000000}, {"field": "rep_team", "in": ["KA"]}]},
            {"name": "rest", "conditions": []}
        ]}));
        let mut away = rep("ka-away", "KA", 10, 0);
        away.available = false;
        let reps = [
            rep("ka1", "KA", 10, 3),
            rep("ka2", "KA", 10, 1),
            rep("smb", "SMB", 10, 0),
            away,
        ];
        let d = assign(&lead("L1", 90_000_000), &reps, &rules, NOW);
        assert_eq!(d.rep_id(), Some("ka2"));
        assert_eq!(d.deciding_layer, Some(0));
        assert_eq!(d.candidates.len(), 2);
        assert!(matches!(d.verdict_for("ka1"), RepVerdict::Outranked { .. }));
        assert_eq!(
            d.verdict_for("smb"),
            RepVerdict::Excluded {
                reason: &Exclusion::Condition {
                    index: 1,
                    field: "rep_team".into()
                }
            }
        );
        assert_eq!(
            d.verdict_for("ka-away"),
            RepVerdict::Excluded {
                reason: &Exclusion::Unavailable
            }
        );
        assert_eq!(d.verdict_for("ghost"), RepVerdict::NotConsidered);

        // A small lead fails layer 0 on the lead side and falls to the next layer.
        let d = assign(&lead("L2", 1_000), &reps, &rules, NOW);
        assert_eq!(d.deciding_layer, Some(1));
        assert_eq!(
            d.layers[0]
                .failed_lead_condition
                .as_ref()
                .map(|f| f.field.as_str()),
            Some("annual_purchase_fen")
        );
        assert_eq!(d.rep_id(), Some("smb"));
    }

    #[test]
    fn load_is_relative_to_capacity() {
        let rules = RuleSet::everyone();
        // 4 of 20 (20%) beats 1 of 2 (50%).
        let reps = [rep("small", "KA", 2, 1), rep("large", "KA", 20, 4)];
        assert_eq!(
            assign(&lead("L", 0), &reps, &rules, NOW).rep_id(),
            Some("large")
        );
    }

    #[test]
    fn a_tie_goes_to_who_waited_longest_not_to_id_order() {
        let rules = RuleSet::everyone();
        let mut a = rep("a", "KA", 10, 1);
        let mut b = rep("b", "KA", 10, 1);
        a.last_assigned_at = Some(NOW - Duration::minutes(5));
        b.last_assigned_at = Some(NOW - Duration::hours(5));
        assert_eq!(
            assign(&lead("L", 0), &[a.clone(), b.clone()], &rules, NOW).rep_id(),
            Some("b")
        );
        b.last_assigned_at = Some(NOW);
        assert_eq!(
            assign(&lead("L", 0), &[a, b], &rules, NOW).rep_id(),
            Some("a")
        );
    }

    #[test]
    fn nobody_eligible_leaves_the_lead_in_the_pool() {
        let rules = rules(
            serde_json::json!({"layers": [{"name": "ka", "conditions": [{"field": "rep_team", "in": ["KA"]}]}]}),
        );
        let full = rep("full", "KA", 2, 2);
        let d = assign(&lead("L", 0), &[full, rep("smb", "SMB", 5, 0)], &rules, NOW);
        assert_eq!(
            d.outcome,
            Outcome::Pool {
                reason: PoolReason::NoEligibleRep
            }
        );
        assert_eq!(
            d.verdict_for("full"),
            RepVerdict::Excluded {
                reason: &Exclusion::AtCapacity
            }
        );
        let only_website = rules_source_only();
        let mut l = lead("L", 0);
        l.tags.source = SourceChannel::TradeShow;
        let d = assign(&l, &[rep("x", "KA", 5, 0)], &only_website, NOW);
        assert_eq!(
            d.outcome,
            Outcome::Pool {
                reason: PoolReason::NoLayerMatchesLead
            }
        );
    }

    fn rules_source_only() -> RuleSet {
        rules(
            serde_json::json!({"layers": [{"name": "web", "conditions": [{"field": "source", "in": ["website"]}]}]}),
        )
    }

    #[test]
    fn layer_protection_overrides_the_default() {
        let rules = RuleSet {
            layers: vec![Layer {
                name: "vip".into(),
                conditions: vec![],
                protection_hours: Some(48),
            }],
            protection_hours: 24,
        };
        let d = assign(&lead("L", 0), &[rep("a", "KA", 5, 0)], &rules, NOW);
        assert!(
            matches!(d.outcome, Outcome::Assigned { protection_hours: 48, protection_ends_at, .. } if protection_ends_at == NOW + Duration::hours(48))
        );
    }

    #[test]
    fn deal_weights_fall_with_progress() {
        assert_eq!(deal_weight_milli(Some(0), 12), 1000);
        assert_eq!(deal_weight_milli(Some(11), 12), 250);
        assert_eq!(deal_weight_milli(None, 12), 500);
    }

    fn arb_rep() -> impl Strategy<Value = RepSnapshot> {
        (
            "[a-z]{1,6}",
            0u32..8,
            0u32..10,
            any::<bool>(),
            proptest::option::of(0i64..10_000),
            0u64..3000,
        )
            .prop_map(|(id, cap, prot, avail, waited, deals)| RepSnapshot {
                id,
                team_id: None,
                team_name: None,
                regions: vec![],
                product_expertise: vec![],
                capacity: cap,
                available: avail,
                protected_leads: prot,
                pending_leads: prot,
                deal_load_milli: deals,
                last_assigned_at: waited.map(|w| NOW - Duration::minutes(w)),
            })
    }

    proptest! {
        #[test]
        fn the_winner_is_eligible_and_no_candidate_beats_it(reps in proptest::collection::vec(arb_rep(), 0..12), key in "[a-z0-9]{1,8}") {
            let mut reps = reps;
            reps.sort_by(|a, b| a.id.cmp(&b.id));
            reps.dedup_by(|a, b| a.id == b.id);
            let d = assign(&lead(&key, 0), &reps, &RuleSet::everyone(), NOW);
            match d.rep_id() {
                Some(id) => {
                    let winner = reps.iter().find(|r| r.id == id).unwrap();
                    prop_assert!(winner.available && winner.has_room());
                    for other in reps.iter().filter(|r| r.available && r.has_room()) {
                        // winner.load / winner.cap <= other.load / other.cap
                        prop_assert!(u128::from(winner.load_milli()) * u128::from(other.capacity) <= u128::from(other.load_milli()) * u128::from(winner.capacity));
                    }
                }
                None => prop_assert!(reps.iter().all(|r| !r.available || !r.has_room())),
            }
            // Deterministic: same inputs, same decision; input order does not matter.
            let mut reversed = reps.clone();
            reversed.reverse();
            let again = assign(&lead(&key, 0), &reversed, &RuleSet::everyone(), NOW);
            prop_assert_eq!(again.rep_id(), d.rep_id());
        }

        #[test]
        fn candidates_are_ranked_by_load_then_wait_then_hash_then_roster_position(
            shapes in proptest::collection::vec((0u32..3, 0u64..2, 0u8..3, any::<bool>()), 1..40),
            key in "[a-z0-9]{1,8}",
        ) {
            // Few distinct loads and waits, so that many candidates tie on both and the hash
            // (worked out only for them) decides.
            let reps: Vec<RepSnapshot> = shapes
                .iter()
                .enumerate()
                .map(|(i, &(protected, deals, waited, small))| {
                    let mut r = rep(&format!("r{i}"), "KA", if small { 5 } else { 10 }, protected);
                    r.deal_load_milli = deals * 1000;
                    r.last_assigned_at = [None, Some(NOW - Duration::hours(1)), Some(NOW - Duration::hours(2))][usize::from(waited)];
                    r
                })
                .collect();
            let d = assign(&lead(&key, 0), &reps, &RuleSet::everyone(), NOW);
            let position = |id: &str| reps.iter().position(|r| r.id == id).unwrap();
            let mut expected: Vec<&Candidate> = d.candidates.iter().collect();
            expected.sort_by(|a, b| {
                (u128::from(a.load_milli) * u128::from(b.capacity))
                    .cmp(&(u128::from(b.load_milli) * u128::from(a.capacity)))
                    .then(match (a.last_assigned_at, b.last_assigned_at) {
                        (None, None) => Ordering::Equal,
                        (None, Some(_)) => Ordering::Less,
                        (Some(_), None) => Ordering::Greater,
                        (Some(x), Some(y)) => x.cmp(&y),
                    })
                    .then(tie_break(&key, &a.rep_id).cmp(&tie_break(&key, &b.rep_id)))
                    .then(position(&a.rep_id).cmp(&position(&b.rep_id)))
            });
            let got: Vec<&str> = d.candidates.iter().map(|c| c.rep_id.as_str()).collect();
            let want: Vec<&str> = expected.iter().map(|c| c.rep_id.as_str()).collect();
            prop_assert_eq!(got, want);
            for (i, c) in d.candidates.iter().enumerate() {
                prop_assert_eq!(c.rank, i + 1);
                prop_assert_eq!(c.tie_break, tie_break(&key, &c.rep_id));
            }
            // The stored record ranks the same way.
            let batch = crate::leads::record::Batch::new(&reps, &RuleSet::everyone());
            let stored = crate::leads::record::assign_stored(&lead(&key, 0), &reps, &RuleSet::everyone(), NOW, &batch);
            let roster: Vec<String> = reps.iter().map(|r| r.id.clone()).collect();
            prop_assert_eq!(stored.candidates(&key, &roster), d.candidates.clone());
        }

        #[test]
        fn equal_reps_share_leads_without_favouring_an_id(n in 2usize..6) {
            // n identical, never-assigned reps: over many leads each gets a fair share, whatever
            // their ids sort like (the hash, not the id order, breaks the tie).
            let reps: Vec<RepSnapshot> = (0..n).map(|i| rep(&format!("rep{i}"), "KA", 10, 0)).collect();
            let mut wins = vec![0usize; n];
            for k in 0..(200 * n) {
                let d = assign(&lead(&format!("lead-{k}"), 0), &reps, &RuleSet::everyone(), NOW);
                let id = d.rep_id().unwrap();
                wins[reps.iter().position(|r| r.id == id).unwrap()] += 1;
            }
            for w in wins {
                prop_assert!(w > 100, "a rep got only {w} of {} leads", 200 * n);
            }
        }
    }
}
