//! The stored form of a rule decision: everything [`Decision`](super::Decision) says, at a size
//! that does not grow with the org's rep count times the lead count.
//!
//! A full decision names every rep of the org (the candidates with their scores, everyone else
//! grouped by why they were out) and every layer by name: ~40 KB of JSON per lead at 1,000 reps
//! and 50 layers, which is what made a burst of intakes slow to write. Here
//! - the reps decided over are a **roster**, stored once per distinct membership under its
//!   content id; reps are named by their position in it;
//! - every candidate is kept, ranked, as a tuple `[roster index, load_milli, capacity,
//!   last_assigned_at (unix s) | null]`; its tie-break is a hash of the lead id and rep id,
//!   recomputed when read (records written before it was dropped carry it as a fifth element);
//! - every exclusion group is a bitset over the roster (125 bytes at 1,000 reps);
//! - each layer tried is a tuple `[index, first failing lead condition | null, candidates]`;
//!   names come from the rule-set version the decision records,
//!
//! so "why did rep X (not) get this lead" is still answered for every rep of the org, with the
//! same numbers.

use super::assign::{
    Candidate, Compiled, Exclusion, LayerTrace, Lead, Outcome, RepSnapshot, RepVerdict, Tried, Why,
    decide, tie_break,
};
use super::rules::RuleSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// A set of reps as a bitset over a roster (bit `i` = the roster's `i`-th rep), written as hex.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RepSet(String);

impl RepSet {
    #[cfg(test)]
    fn from_indices(indices: impl IntoIterator<Item = usize>, size: usize) -> RepSet {
        let mut bits = vec![0u8; size.div_ceil(8)];
        for i in indices {
            if let Some(byte) = bits.get_mut(i / 8) {
                *byte |= 1 << (i % 8);
            }
        }
        RepSet::from_bits(&bits)
    }

    /// Bit `i` of `bits` (least significant first within a byte) is the roster's `i`-th rep.
    fn from_bits(bits: &[u8]) -> RepSet {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(bits.len() * 2);
        for b in bits {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        RepSet(text)
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

/// The reps and rules of a batch, prepared once: roster id and [`Compiled`] conditions.
pub struct Batch {
    pub roster: String,
    compiled: Compiled,
}

impl Batch {
    pub fn new(reps: &[RepSnapshot], rules: &RuleSet) -> Batch {
        let ids: Vec<&str> = reps.iter().map(|r| r.id.as_str()).collect();
        Batch {
            roster: roster_id(&ids),
            compiled: Compiled::new(reps, rules),
        }
    }
}

/// A layer tried: `[index, first failing lead condition | null, candidates]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLayer(pub usize, pub Option<usize>, pub usize);

/// A candidate: `[roster index, load_milli, capacity, last_assigned_at | null]`. The tie-break
/// is not written (a fifth of a 1,000-rep record): it is a function of the lead and rep ids
/// ([`StoredDecision::candidates`]); records from before carry it and it is used as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCandidate(
    pub usize,
    pub u64,
    pub u32,
    pub Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")] pub Option<u64>,
);

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
    pub layers: Vec<StoredLayer>,
    pub deciding_layer: Option<usize>,
    /// Every candidate of the deciding layer, best first.
    pub candidates: Vec<StoredCandidate>,
    /// Content id of the roster the indices point into, and its length.
    pub roster: String,
    pub roster_size: usize,
    pub excluded: Vec<StoredExclusion>,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
}

/// Decide like [`assign`](super::assign) and write the compact record; `batch` was made from
/// these `reps` (their loads may have changed since) and `rules`.
pub fn assign_stored(
    lead: &Lead,
    reps: &[RepSnapshot],
    rules: &RuleSet,
    now: OffsetDateTime,
    batch: &Batch,
) -> StoredDecision {
    let decided = decide(lead, reps, rules, now, Some(&batch.compiled));
    let size = reps.len();
    // One pass over the roster: each reason's count and bitset (a decision has a handful of
    // distinct reasons, so a linear search beats sorting a thousand of them).
    let mut groups: Vec<(Why, usize, Vec<u8>)> = Vec::new();
    for (i, why) in decided
        .reasons
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|w| (i, w)))
    {
        let at = match groups.iter().position(|g| g.0 == why) {
            Some(at) => at,
            None => {
                groups.push((why, 0, vec![0u8; size.div_ceil(8)]));
                groups.len() - 1
            }
        };
        if let Some((_, count, bits)) = groups.get_mut(at) {
            *count += 1;
            if let Some(byte) = bits.get_mut(i / 8) {
                *byte |= 1 << (i % 8);
            }
        }
    }
    groups.sort_unstable_by_key(|g| g.0);
    let excluded = groups
        .into_iter()
        .map(|(why, count, bits)| StoredExclusion {
            reason: decided.exclusion(rules, why),
            count,
            reps: RepSet::from_bits(&bits),
        })
        .collect();
    StoredDecision {
        candidates: decided
            .ranked
            .iter()
            .map(|c| {
                StoredCandidate(
                    c.rep,
                    c.load_milli,
                    c.capacity,
                    c.last_assigned_at.map(OffsetDateTime::unix_timestamp),
                    None,
                )
            })
            .collect(),
        layers: decided
            .layers
            .iter()
            .map(|l| StoredLayer(l.index, l.failed_lead_condition, l.candidates))
            .collect(),
        outcome: decided.outcome,
        deciding_layer: decided.deciding_layer,
        roster: batch.roster.clone(),
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

    /// Every candidate, ranked, with its rep id from `roster` and its full score; `lead_key` is
    /// the key the lead was decided under (its id), which the tie-breaks are derived from.
    pub fn candidates(&self, lead_key: &str, roster: &[String]) -> Vec<Candidate> {
        self.candidates
            .iter()
            .enumerate()
            .map(|(rank, c)| {
                let last =
                    c.3.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
                let rep_id = roster.get(c.0).cloned().unwrap_or_default();
                Candidate {
                    tie_break: c.4.unwrap_or_else(|| tie_break(lead_key, &rep_id)),
                    rep_id,
                    rank: rank + 1,
                    load_milli: c.1,
                    capacity: c.2,
                    load_permille: c.1 * 1000 / u64::from(c.2.max(1)),
                    last_assigned_at: last,
                    waited_secs: last.map(|t| (self.decided_at - t).whole_seconds()),
                }
            })
            .collect()
    }

    /// The layers tried, named from the rule set the decision used.
    pub fn layers(&self, rules: &RuleSet) -> Vec<LayerTrace> {
        self.layers
            .iter()
            .map(|l| {
                Tried {
                    index: l.0,
                    failed_lead_condition: l.1,
                    candidates: l.2,
                }
                .trace(rules)
            })
            .collect()
    }

    /// How `rep_id` fared; `candidates` is [`Self::candidates`] and `roster` the stored roster.
    pub fn verdict_for<'a>(
        &'a self,
        rep_id: &str,
        roster: &[String],
        candidates: &'a [Candidate],
    ) -> RepVerdict<'a> {
        if let Some(candidate) = candidates.iter().find(|c| c.rep_id == rep_id) {
            return match candidates.first() {
                Some(winner) if winner.rep_id != rep_id => {
                    RepVerdict::Outranked { candidate, winner }
                }
                _ => RepVerdict::Chosen { candidate },
            };
        }
        let Some(index) = roster.iter().position(|r| r == rep_id) else {
            return RepVerdict::NotConsidered;
        };
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
        // The same text records written before carry (hex of the bytes, low bits first).
        let mut bits = vec![0u8; 125];
        bits[0] = 0b1000_0001;
        bits[1] = 0b0000_0001;
        bits[124] = 0b1000_0000;
        assert_eq!(set.0, hex::encode(&bits));
        for i in 0..1000 {
            assert_eq!(set.contains(i), [0, 7, 8, 999].contains(&i), "{i}");
        }
        assert!(!set.contains(5000));
        assert!(!RepSet::default().contains(0));
    }

    #[test]
    fn a_batch_context_decides_like_the_plain_rules_as_loads_change() {
        let rules = rules();
        let mut reps: Vec<RepSnapshot> = (0..40)
            .map(|i| rep(i, 0, i % 7 != 0, ["浙江省", " 杭州 ", "江苏"][i % 3]))
            .collect();
        let batch = Batch::new(&reps, &rules);
        for k in 0..60 {
            let l = lead(&format!("L{k}"));
            let full = assign(&l, &reps, &rules, NOW);
            let stored = assign_stored(&l, &reps, &rules, NOW, &batch);
            assert_eq!(stored.outcome, full.outcome, "lead {k}");
            if let Some(id) = full.rep_id() {
                let r = reps.iter_mut().find(|r| r.id == id).unwrap();
                r.protected_leads += 1;
                r.pending_leads += 1;
            }
        }
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
            let roster: Vec<String> = reps.iter().map(|r| r.id.clone()).collect();
            let rules = rules();
            let full = assign(&lead(&key), &reps, &rules, NOW);
            let stored = assign_stored(&lead(&key), &reps, &rules, NOW, &Batch::new(&reps, &rules));
            prop_assert_eq!(stored.rep_id(), full.rep_id());
            prop_assert_eq!(&stored.outcome, &full.outcome);
            prop_assert_eq!(stored.layers(&rules), full.layers.clone());
            let candidates = stored.candidates(&key, &roster);
            prop_assert_eq!(&candidates, &full.candidates);
            for id in roster.iter().map(String::as_str).chain(["ghost"]) {
                prop_assert_eq!(full.verdict_for(id), stored.verdict_for(id, &roster, &candidates));
            }
        }
    }

    #[test]
    fn a_thousand_rep_decision_stays_small() {
        let reps: Vec<RepSnapshot> = (0..1000)
            .map(|i| rep(i, (i % 6) as u32, i % 25 != 0, ["浙江", "江苏"][i % 2]))
            .collect();
        let rules = rules();
        let stored = assign_stored(&lead("L"), &reps, &rules, NOW, &Batch::new(&reps, &rules));
        let full = assign(&lead("L"), &reps, &rules, NOW);
        let stored_len = serde_json::to_string(&stored).unwrap().len();
        let full_len = serde_json::to_string(&full).unwrap().len();
        assert_eq!(stored.candidates.len(), full.candidates.len());
        assert!(
            stored_len * 4 < full_len,
            "stored {stored_len} bytes vs full {full_len}"
        );
    }

    /// Candidates are written without their tie-break (four elements) and read back with the
    /// one the decision used; a record written with the tie-break (five elements) reads the same.
    #[test]
    fn tie_breaks_are_recomputed_and_old_records_still_read() {
        let reps: Vec<RepSnapshot> = (0..40).map(|i| rep(i, 0, true, "浙江")).collect();
        let roster: Vec<String> = reps.iter().map(|r| r.id.clone()).collect();
        let rules = rules();
        let stored = assign_stored(&lead("L-7"), &reps, &rules, NOW, &Batch::new(&reps, &rules));
        let full = assign(&lead("L-7"), &reps, &rules, NOW);
        let json = serde_json::to_value(&stored).unwrap();
        let written = json["candidates"].as_array().unwrap();
        assert!(written.len() > 1);
        assert!(written.iter().all(|c| c.as_array().unwrap().len() == 4));
        assert_eq!(stored.candidates("L-7", &roster), full.candidates);

        let mut old = json.clone();
        for (c, f) in old["candidates"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .zip(&full.candidates)
        {
            c.as_array_mut().unwrap().push(f.tie_break.into());
        }
        let old: StoredDecision = serde_json::from_value(old).unwrap();
        assert_eq!(old.candidates("another key", &roster), full.candidates);
    }
}
