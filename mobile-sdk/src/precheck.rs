//! The on-device pre-check: the server's own rules (`fieldproof_domain::evidence`) run on the
//! phone with the cached site, visit window and node policy, and the queue's earlier captures
//! as history, so the rep learns "no GPS", "420 m outside the site" or "you already sent this
//! one" while still standing there. The server remains the authority.

use crate::deals::CachedDeal;
use crate::queue::{Placed, PriorRow, Reason};
use fieldproof_domain::capture::{CaptureManifest, DeviceClock, anchor_capture_time};
use fieldproof_domain::evidence::{
    History, Outcome, PerceptualHash, PixelLimits, PixelState, PriorCapture, PriorEvidence,
    analyze, evaluate, extract_facts,
};
use fieldproof_domain::geo::LatLon;
use serde::{Deserialize, Serialize};

/// The pre-check's answer, stored with the queue item and shown at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecheckReport {
    /// `passed | needs_review | rejected`: what the server is expected to say.
    pub outcome: String,
    /// The checks that did not pass, with their messages.
    pub findings: Vec<Reason>,
    pub rule_set_version: String,
    /// Whether pixels were analysed (near-duplicates need them).
    pub pixels_analyzed: bool,
}

/// The result of a pre-check, plus the perceptual hash to remember for later duplicates.
#[derive(Debug, Clone)]
pub struct Precheck {
    pub report: PrecheckReport,
    pub phash: Option<PerceptualHash>,
    /// Where and when the rules placed the capture, as the server records it: EXIF GPS or the
    /// manifest's fix; the judged instant or the manifest's.
    pub placed: Option<Placed>,
}

/// Runs the server's rules on `photo` for `node_key` of `deal`. `clock` is the device's
/// clocks now; `analyze_pixels` runs the one reduced decode (perceptual hash).
pub fn precheck(
    photo: &[u8],
    manifest: &CaptureManifest,
    deal: &CachedDeal,
    node_key: &str,
    prior: &[PriorRow],
    clock: &DeviceClock,
    analyze_pixels: bool,
) -> Precheck {
    let facts = extract_facts(photo);
    let pixels = if analyze_pixels {
        analyze(photo, facts.orientation, &PixelLimits::default()).state
    } else {
        PixelState::NotAnalyzed
    };
    let now = clock.wall_now;
    // The same re-anchoring the server does, with "received" = now on this device.
    let (captured_at, _) = anchor_capture_time(manifest, Some(clock), now);
    let manifest_fix = manifest.manifest_fix(captured_at).ok().flatten();
    let policy = deal.policy_for(node_key);
    let site = deal.site.as_ref().and_then(|s| s.site_point());
    let history = history_from(prior);
    let verdict = evaluate(
        &facts,
        &pixels,
        manifest_fix.as_ref(),
        &policy,
        site.as_ref(),
        &history,
        now,
    );
    let findings = verdict
        .findings()
        .map(|check| {
            let message = check.message();
            Reason {
                code: check.code.as_str().to_owned(),
                outcome: match check.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Warn => "warn",
                    Outcome::Fail => "fail",
                }
                .to_owned(),
                message: message.en,
                message_zh: message.zh,
            }
        })
        .collect();
    let point = facts
        .gps
        .valid()
        .map(|g| g.point)
        .or(manifest_fix.as_ref().map(|m| m.point));
    let at = verdict
        .captured_at
        .or(manifest_fix.as_ref().and_then(|m| m.captured_at));
    let placed = match (point, at) {
        (Some(point), Some(at)) => Some(Placed {
            lat: point.lat(),
            lon: point.lon(),
            at,
        }),
        _ => None,
    };
    Precheck {
        placed,
        report: PrecheckReport {
            outcome: verdict.outcome.as_str().to_owned(),
            findings,
            rule_set_version: verdict.rule_set_version,
            pixels_analyzed: analyze_pixels,
        },
        phash: match pixels {
            PixelState::Hashed { phash } => Some(phash),
            PixelState::NotAnalyzed
            | PixelState::NoPixels { .. }
            | PixelState::Unreadable { .. } => None,
        },
    }
}

/// Earlier captures from the local queue as the rules' history: exact and near duplicates by
/// hash, and where/when each was taken (impossible travel).
pub fn history_from(prior: &[PriorRow]) -> History {
    let mut history = History::default();
    for row in prior {
        let id = row
            .evidence_id
            .clone()
            .unwrap_or_else(|| format!("local:{}", row.capture_id));
        if let Ok(sha256) = row.sha256.parse() {
            history.evidence.push(PriorEvidence {
                id: id.clone(),
                sha256,
                phash: row
                    .phash
                    .as_deref()
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .map(PerceptualHash),
            });
        }
        // Where the rules placed it; rows from before schema 3 fall back to the manifest.
        let placed = row.placed.map(|p| (p.lat, p.lon, p.at)).or_else(|| {
            let manifest = serde_json::from_str::<CaptureManifest>(&row.manifest_json).ok()?;
            manifest.fix.map(|f| (f.lat, f.lon, manifest.wall_clock))
        });
        if let Some((lat, lon, at)) = placed
            && let Ok(point) = LatLon::new(lat, lon)
        {
            history.recent_captures.push(PriorCapture {
                evidence_id: id,
                at,
                point,
            });
        }
    }
    history
}

/// For display: "passed", or the first finding's message.
pub fn summary(report: &PrecheckReport) -> String {
    match report.findings.first() {
        None => report.outcome.clone(),
        Some(first) => format!("{}: {}", report.outcome, first.message),
    }
}
