//! What the server knows from before, supplied as input so the checks stay pure: other
//! evidence to compare against (duplicates) and the rep's recent captures (travel).

use super::hash::ContentHash;
use super::pixels::PerceptualHash;
use crate::geo::LatLon;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Another piece of evidence in the organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorEvidence {
    pub id: String,
    pub sha256: ContentHash,
    pub phash: Option<PerceptualHash>,
}

/// One of the same rep's recent captures: when and where (WGS-84).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorCapture {
    pub evidence_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub point: LatLon,
}

/// History the checks compare against; empty is valid (first photo ever, or a pre-check).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    pub evidence: Vec<PriorEvidence>,
    pub recent_captures: Vec<PriorCapture>,
}
