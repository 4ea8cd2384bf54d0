//! A node's evidence policy: the numbers the checks judge by. Data, not code, so each
//! pipeline node can carry its own (serde with defaults for every field).

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};

/// Which witnesses of place and time a node needs (DESIGN.md §4 "Two witnesses").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WitnessRequirement {
    /// The photo's own EXIF GPS (and EXIF time) must be there.
    ExifGps,
    /// The signed capture manifest's fix must be there; EXIF may be stripped.
    ManifestFix,
    /// Either one is enough: the default, because pickers strip EXIF GPS for innocent reasons.
    Either,
    /// Both, and they must agree.
    Both,
}

/// The visit a photo must fall into; either bound may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitWindow {
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub start: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub end: Option<OffsetDateTime>,
}

/// Per-node evidence policy. `NodePolicy::default()` is the rule set's sane default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodePolicy {
    /// Replaces the site's own radius for this node (e.g. a plant gate needs more).
    pub radius_override_m: Option<f64>,
    pub visit_window: Option<VisitWindow>,
    /// How far a capture may be after the receipt time before it is "in the future".
    pub max_future_skew_s: i64,
    /// Offline capture is normal; beyond this lag a photo is flagged for review.
    pub max_upload_lag_h: i64,
    /// Fixes less precise than this are flagged, and no more than this much accuracy is
    /// credited when widening the site radius.
    pub max_accuracy_m: f64,
    /// EXIF fix and manifest fix further apart than max(this, sum of accuracies) disagree.
    pub fix_agreement_m: f64,
    /// EXIF time (GPS or with offset) and the manifest's clock further apart than this disagree.
    pub time_agreement_s: i64,
    /// Perceptual-hash Hamming distance at or below which two photos are near-duplicates.
    pub near_duplicate_max_distance: u32,
    /// Speeds above this between two captures of the same rep are impossible travel.
    pub max_travel_kmh: f64,
    pub witnesses: WitnessRequirement,
    /// Whether an unsigned capture manifest is accepted (checked by the server, which holds
    /// the device keys; here only so the whole policy is one document).
    pub allow_unsigned_manifest: bool,
    /// The sites' UTC offset in minutes, assumed for EXIF local times without an offset.
    /// China is +08:00 all year.
    pub site_utc_offset_min: i16,
}

impl Default for NodePolicy {
    fn default() -> Self {
        NodePolicy {
            radius_override_m: None,
            visit_window: None,
            max_future_skew_s: 300,
            max_upload_lag_h: 7 * 24,
            max_accuracy_m: 100.0,
            fix_agreement_m: 200.0,
            time_agreement_s: 600,
            near_duplicate_max_distance: 10,
            max_travel_kmh: 300.0,
            witnesses: WitnessRequirement::Either,
            allow_unsigned_manifest: false,
            site_utc_offset_min: 480,
        }
    }
}

impl NodePolicy {
    /// The zone EXIF local times are read in when they carry no offset.
    pub fn site_zone(&self) -> UtcOffset {
        UtcOffset::from_whole_seconds(i32::from(self.site_utc_offset_min) * 60)
            .unwrap_or(UtcOffset::UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_policy_document_takes_defaults_for_the_rest() {
        let p: NodePolicy =
            serde_json::from_str(r#"{"radius_override_m": 800, "witnesses": "both"}"#).unwrap();
        assert_eq!(p.radius_override_m, Some(800.0));
        assert_eq!(p.witnesses, WitnessRequirement::Both);
        assert_eq!(p.near_duplicate_max_distance, 10);
        assert_eq!(p.site_zone(), time::macros::offset!(+8));
    }
}
