//! The verdict: `passed` (every check passed), `needs_review` (only soft warnings) or
//! `rejected` (a hard failure), stamped with the rule-set version so it can be re-run and
//! explained later. `evaluate` is a pure function of its inputs.

use super::capture_time::CaptureSource;
use super::checks::{Check, Outcome, capture_instant, content_checks, place_checks, time_checks};
use super::facts::PhotoFacts;
use super::history::History;
use super::manifest::ManifestFix;
use super::pixels::PixelState;
use super::policy::NodePolicy;
use crate::geo::SitePoint;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Bumped whenever a check's logic or a default threshold changes meaning.
pub const RULE_SET_VERSION: &str = "evidence-rules/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictOutcome {
    Passed,
    NeedsReview,
    Rejected,
}

impl VerdictOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictOutcome::Passed => "passed",
            VerdictOutcome::NeedsReview => "needs_review",
            VerdictOutcome::Rejected => "rejected",
        }
    }
}

/// The judgement on one piece of evidence, with every check that led to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: VerdictOutcome,
    pub rule_set_version: String,
    /// The capture instant the checks judged, and which witness gave it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub captured_at: Option<OffsetDateTime>,
    pub captured_at_source: Option<CaptureSource>,
    pub checks: Vec<Check>,
}

impl Verdict {
    /// The checks that did not pass: what to show a rep or a reviewer first.
    pub fn findings(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome != Outcome::Pass)
    }
}

/// Judges a file's facts and pixels against the node policy, the customer site (if the
/// node has one), the capture manifest's fix (if any) and history. `received_at` is when the
/// server (or the phone, for a pre-check) received the bytes; the clock is never read here.
pub fn evaluate(
    facts: &PhotoFacts,
    pixels: &PixelState,
    manifest: Option<&ManifestFix>,
    policy: &NodePolicy,
    site: Option<&SitePoint>,
    history: &History,
    received_at: OffsetDateTime,
) -> Verdict {
    let instant = capture_instant(&facts.capture, manifest, policy);
    let mut checks = content_checks(facts, pixels, policy, history);
    checks.extend(place_checks(
        &facts.gps,
        manifest,
        policy,
        site,
        history,
        instant.map(|(at, _)| at),
    ));
    checks.extend(time_checks(&facts.capture, manifest, policy, received_at));
    let outcome =
        checks
            .iter()
            .map(|c| c.outcome)
            .fold(VerdictOutcome::Passed, |verdict, outcome| {
                match (verdict, outcome) {
                    (VerdictOutcome::Rejected, _) | (_, Outcome::Fail) => VerdictOutcome::Rejected,
                    (VerdictOutcome::NeedsReview, _) | (_, Outcome::Warn) => {
                        VerdictOutcome::NeedsReview
                    }
                    (VerdictOutcome::Passed, Outcome::Pass) => VerdictOutcome::Passed,
                }
            });
    Verdict {
        outcome,
        rule_set_version: RULE_SET_VERSION.to_owned(),
        captured_at: instant.map(|(at, _)| at),
        captured_at_source: instant.map(|(_, source)| source),
        checks,
    }
}
