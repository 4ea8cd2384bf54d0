//! What: the format, the software that last wrote the file, duplicates of other evidence
//! (exact by SHA-256, near by perceptual hash), and whether the pixels could be read.

use super::{Check, CheckCode, CheckDetail, Outcome};
use crate::evidence::facts::PhotoFacts;
use crate::evidence::history::History;
use crate::evidence::pixels::PixelState;
use crate::evidence::policy::NodePolicy;

/// Image editors and beautifying apps, matched case-insensitively inside `Software`.
/// Camera firmware (`13.4.1`, `ELE-L29 10.1.0.150`, `HDR+ 1.0…`) matches none of these.
pub const EDITORS: [&str; 24] = [
    "photoshop",
    "lightroom",
    "adobe",
    "snapseed",
    "meitu",
    "美图",
    "picsart",
    "gimp",
    "facetune",
    "vsco",
    "pixlr",
    "canva",
    "polarr",
    "fotor",
    "photodirector",
    "luminar",
    "affinity",
    "pixelmator",
    "capture one",
    "darktable",
    "rawtherapee",
    "paint.net",
    "醒图",
    "天天p图",
];

pub(crate) fn content_checks(
    facts: &PhotoFacts,
    pixels: &PixelState,
    policy: &NodePolicy,
    history: &History,
) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(Check::new(
        CheckCode::UnsupportedFormat,
        if facts.format.is_photo() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        CheckDetail {
            format: Some(facts.format),
            ..CheckDetail::default()
        },
    ));
    checks.push(edited(facts.software.as_deref()));

    let exact = history.evidence.iter().find(|e| e.sha256 == facts.sha256);
    checks.push(match exact {
        Some(other) => Check::new(
            CheckCode::DuplicateExact,
            Outcome::Fail,
            CheckDetail {
                other_evidence_id: Some(other.id.clone()),
                ..CheckDetail::default()
            },
        ),
        None => Check::pass(CheckCode::DuplicateExact),
    });

    match pixels {
        PixelState::Hashed { phash, .. } => {
            let max = policy.near_duplicate_max_distance;
            let nearest = history
                .evidence
                .iter()
                .filter_map(|e| Some((e.phash?.distance(*phash), e)))
                .min_by_key(|(d, _)| *d);
            checks.push(match nearest {
                Some((distance, other)) if distance <= max => Check::new(
                    CheckCode::DuplicateNear,
                    Outcome::Fail,
                    CheckDetail {
                        other_evidence_id: Some(other.id.clone()),
                        hamming_distance: Some(distance),
                        max_hamming_distance: Some(max),
                        ..CheckDetail::default()
                    },
                ),
                _ => Check::pass(CheckCode::DuplicateNear),
            });
        }
        PixelState::NoPixels { reason } => checks.push(Check::new(
            CheckCode::NoPixels,
            Outcome::Pass,
            CheckDetail {
                reason: Some(reason.as_str().to_owned()),
                ..CheckDetail::default()
            },
        )),
        PixelState::Unreadable { reason } => checks.push(Check::new(
            CheckCode::PixelsUnreadable,
            Outcome::Fail,
            CheckDetail {
                reason: Some(reason.as_str().to_owned()),
                ..CheckDetail::default()
            },
        )),
        PixelState::NotAnalyzed => {}
    }
    checks
}

fn edited(software: Option<&str>) -> Check {
    let lower = software.map(str::to_lowercase);
    match lower
        .as_deref()
        .and_then(|s| EDITORS.iter().find(|e| s.contains(*e)))
    {
        Some(_) => Check::new(
            CheckCode::EditedBySoftware,
            Outcome::Warn,
            CheckDetail {
                software: software.map(str::to_owned),
                ..CheckDetail::default()
            },
        ),
        None => Check::pass(CheckCode::EditedBySoftware),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editors_are_caught_and_firmware_is_not() {
        for s in [
            "Adobe Photoshop 23.4 (Windows)",
            "Snapseed 2.0",
            "MEITU",
            "美图秀秀",
            "PicsArt",
        ] {
            assert_eq!(edited(Some(s)).outcome, Outcome::Warn, "{s}");
        }
        for s in [
            "13.4.1",
            "ELE-L29 10.1.0.150",
            "HDR+ 1.0.199571065z",
            "fw 05.15 prm 07.53",
        ] {
            assert_eq!(edited(Some(s)).outcome, Outcome::Pass, "{s}");
        }
        assert_eq!(edited(None).outcome, Outcome::Pass);
    }
}
