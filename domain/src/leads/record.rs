//! The stored form of a rule decision: everything [`Decision`](super::Decision) says, at a size
//! that does not grow with the org's rep count for every lead.
//!
//! A full decision names every rep of the org (the candidates with their scores, everyone else
//! grouped by why they were out): ~40 KB of JSON per lead at 1,000 reps, which is what made a
//! burst of intakes slow to write. Here the reps decided over are a **roster**, stored once per
//! distinct membership under its content id, and each decision keeps
//! - the first [`STORED_CANDIDATES`] ranked candidates with their full scores,
//! - every candidate and every exclusion group as a bitset over the roster (125 bytes at 1,000 reps),
//!
//! so "why did rep X (not) get this lead" is still answered for every rep of the org.

use super::assign::{
    Candidate, Exclusion, LayerTrace, Lead, Outcome, RepSnapshot, RepVerdict, decide,
};
use super::rules::RuleSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Ranked candidates kept with their scores in a stored decision.
pub const STORED_CANDIDATES: usize = 20;

/// A set of reps as a bitset over a roster (bit `i` = the roster's `i`-th rep), written as hex.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RepSet(String);

impl RepSet {
    fn from_indices(indices: impl IntoIterator<Item = usize>, size: usize) -> RepSet {
        let mut bits = vec![0u8; size.div_ceil(8)];
        for i in indices {
            if let Some(byte) = bits.get_mut(i / 8) {
                *byte |= 1 << (i % 8);
            }
        }
        RepSet(hex::encode(bits))
    }

    pub fn contains(&self, index: usize) -> bool {
        let Some(pair) = self.0.get(index / 8 * 2..index / 8 * 2 + 2) else {
            return false;
        };
        u8::from_str_radix(pair, 16).is_ok_and(|byte| byte & (1 << (index % 8)) != 0)
    }
}

/// The content id of a roster: the same reps in the same order give the same id, on every
/// process, so it is stored once however many decisions use it.
pub fn roster_id(rep_ids: &[&str]) -> String {
    let mut hash = Sha256::new();
    for id in rep_ids {
        hash.update(id.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..16])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredExclusion {
    pub reason: Exclusion,
    pub count: usize,
    pub reps: RepSet,
}

/// A decision as stored with the lead (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDecision {
    pub outcome: Outcome,
    pub layers: Vec<LayerTrace>,
    pub deciding_layer: Option<usize>,
    /// The best [`STORED_CANDIDATES`], ranked, with their scores.
    pub candidates: Vec<Candidate>,
    pub candidates_total: usize,
    /// Content id of the roster the sets below index into, and its length.
    pub roster: String,
    pub roster_size: usize,
    /// Every candidate of the deciding layer.
    pub candidate_reps: RepSet,
    pub excluded: Vec<StoredExclusion>,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
}

/// Decide like [`assign`](super::assign) and write the compact record. `roster` is
/// [`roster_id`] of `reps`' ids (computed once by the caller for a batch of leads).
pub fn assign_stored(
    lead: &Lead,
    reps: &[RepSnapshot],
    rules: &RuleSet,
    now: OffsetDateTime,
    roster: &str,
) -> StoredDecision {
    let decided = decide(lead, reps, rules, now);
    let size = reps.len();
    let mut whys: Vec<_> = decided.reasons.iter().filter_map(|r| *r).collect();
    whys.sort_unstable();
    whys.dedup();
    let excluded = whys
        .into_iter()
        .map(|why| {
            let members = decided
                .reasons
                .iter()
                .enumerate()
                .filter(|(_, r)| **r == Some(why))
                .map(|(i, _)| i);
            let count = members.clone().count();
            StoredExclusion {
                reason: decided.exclusion(rules, why),
                count,
                reps: RepSet::from_indices(members, size),
            }
        })
        .collect();
    StoredDecision {
        candidate_reps: RepSet::from_indices(decided.ranked.iter().map(|(i, _)| *i), size),
        candidates_total: decided.ranked.len(),
        candidates: decided
            .ranked
            .into_iter()
            .take(STORED_CANDIDATES)
            .map(|(_, c)| c)
            .collect(),
        outcome: decided.outcome,
        layers: decided.layers,
        deciding_layer: decided.deciding_layer,
        roster: roster.to_owned(),
        roster_size: size,
        excluded,
        decided_at: decided.decided_at,
    }
}

impl StoredDecision {
    pub fn rep_id(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Assigned { rep_id, .. } => Some(rep_id),
            Outcome::Pool { .. } => None,
        }
    }

    /// How `rep_id` fared; `roster` is the stored roster's rep ids (in order).
    pub fn verdict_for(&self, rep_id: &str, roster: &[String]) -> RepVerdict<'_> {
        if let Some(candidate) = self.candidates.iter().find(|c| c.rep_id == rep_id) {
            return match self.candidates.first() {
                Some(winner) if winner.rep_id != rep_id => {
                    RepVerdict::Outranked { candidate, winner }
                }
                _ => RepVerdict::Chosen { candidate },
            };
        }
        let Some(index) = roster.iter().position(|r| r == rep_id) else {
            return RepVerdict::NotConsidered;
        };
        if self.candidate_reps.contains(index)
            && let Some(winner) = self.candidates.first()
        {
            return RepVerdict::OutrankedUnlisted {
                below_rank: self.candidates.len(),
                winner,
            };
        }
        self.excluded
            .iter()
            .find(|g| g.reps.contains(index))
            .map_or(RepVerdict::NotConsidered, |g| RepVerdict::Excluded {
                reason: &g.reason,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{Fen, Seniority};
    use crate::leads::assign::assign;
    use crate::leads::rules::RuleContext;
    use crate::leads::tags::{Industry, LeadTags, Region, ResponseSpeed, SourceChannel};
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-26 09:00 UTC);

    fn lead(key: &str) -> Lead {
        Lead {
            key: key.into(),
            tags: LeadTags {
                industry: Industry::Manufacturing,
                source: SourceChannel::Website,
                annual_purchase: Fen::new(90_000_000).unwrap(),
                seniority: Seniority::Director,
                region: Region::new("浙江", "杭州"),
                response_speed: ResponseSpeed::Unknown,
                products: vec![],
            },
        }
    }

    fn rep(i: usize, protected: u32, available: bool, region: &str) -> RepSnapshot {
        RepSnapshot {
            id: format!("rep-{i}"),
            team_id: Some(format!("team-{}", i % 3)),
            team_name: Some(format!("T{}", i % 3)),
            regions: vec![region.into()],
            product_expertise: vec![],
            capacity: 5,
            available,
            protected_leads: protected,
            pending_leads: protected,
            deal_load_milli: 0,
            last_assigned_at: None,
        }
    }

    fn rules() -> RuleSet {
        let teams = vec![
            ("team-0".to_owned(), "T0".to_owned()),
            ("team-1".to_owned(), "T1".to_owned()),
        ];
        RuleSet::parse(
            &serde_json::json!({"layers": [
                {"name": "t0 in region", "conditions": [{"field": "rep_team", "in": ["T0"]}, {"field": "rep_covers_lead_region"}]},
                {"name": "region", "conditions": [{"field": "rep_covers_lead_region"}]}
            ]}),
            &RuleContext { teams: &teams },
        )
        .unwrap()
    }

    #[test]
    fn rep_sets_round_trip_through_hex() {
        let set = RepSet::from_indices([0, 7, 8, 999], 1000);
        assert_eq!(set.0.len(), 250);
        for i in 0..1000 {
            assert_eq!(set.contains(i), [0, 7, 8, 999].contains(&i), "{i}");
        }
        assert!(!set.contains(5000));
        assert!(!RepSet::default().contains(0));
    }

    #[test]
    fn roster_ids_depend_on_members_and_order() {
        assert_eq!(roster_id(&["a", "b"]), roster_id(&["a", "b"]));
        assert_ne!(roster_id(&["a", "b"]), roster_id(&["b", "a"]));
        assert_ne!(roster_id(&["ab"]), roster_id(&["a", "b"]));
        assert_eq!(roster_id(&["a"]).len(), 32);
    }

    proptest! {
        /// The compact record answers every rep exactly as the full decision does, except that
        /// candidates below the kept ranks are "outranked" without their own score.
        #[test]
        fn stored_verdicts_agree_with_the_full_decision(
            shape in proptest::collection::vec((0u32..7, any::<bool>(), 0usize..3), 0..60),
            key in "[a-z0-9]{1,8}",
        ) {
            let reps: Vec<RepSnapshot> = shape
                .iter()
                .enumerate()
                .map(|(i, (p, avail, region))| rep(i, *p, *avail, ["浙江", "江苏", "杭州"][*region]))
                .collect();
            let ids: Vec<&str> = reps.iter().map(|r| r.id.as_str()).collect();
            let roster: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
            let full = assign(&lead(&key), &reps, &rules(), NOW);
            let stored = assign_stored(&lead(&key), &reps, &rules(), NOW, &roster_id(&ids));
            prop_assert_eq!(stored.rep_id(), full.rep_id());
            prop_assert_eq!(&stored.outcome, &full.outcome);
            prop_assert_eq!(stored.candidates_total, full.candidates.len());
            for id in roster.iter().map(String::as_str).chain(["ghost"]) {
                let want = full.verdict_for(id);
                let got = stored.verdict_for(id, &roster);
                match (&want, &got) {
                    (RepVerdict::Outranked { candidate, winner }, RepVerdict::OutrankedUnlisted { below_rank, winner: w }) => {
                        prop_assert!(candidate.rank > *below_rank);
                        prop_assert_eq!(winner, w);
                    }
                    _ => prop_assert_eq!(want, got),
                }
            }
        }
    }

    #[test]
    fn a_thousand_rep_decision_stays_small() {
        let reps: Vec<RepSnapshot> = (0..1000)
            .map(|i| rep(i, (i % 6) as u32, i % 25 != 0, ["浙江", "江苏"][i % 2]))
            .collect();
        let ids: Vec<&str> = reps.iter().map(|r| r.id.as_str()).collect();
        let stored = assign_stored(&lead("L"), &reps, &rules(), NOW, &roster_id(&ids));
        let full = assign(&lead("L"), &reps, &rules(), NOW);
        let stored_len = serde_json::to_string(&stored).unwrap().len();
        let full_len = serde_json::to_string(&full).unwrap().len();
        assert!(stored.candidates_total > STORED_CANDIDATES);
        assert!(
            stored_len * 4 < full_len,
            "stored {stored_len} bytes vs full {full_len}"
        );
    }
}
