//! Deals as downloaded for offline use: the deal's site, visit window and each node's evidence
//! policy (from its pipeline template), so a capture can be pre-checked with no signal.

use fieldproof_domain::evidence::{NodePolicy, VisitWindow};
use fieldproof_domain::geo::{Crs, SitePoint};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A customer site as the server lists it (`GET /api/v1/customers/{id}/sites`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedSite {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub crs: String,
    pub radius_m: f64,
    #[serde(default = "china_offset")]
    pub utc_offset_minutes: i32,
}

fn china_offset() -> i32 {
    480
}

impl CachedSite {
    /// The site as the rules take it; `None` if the stored numbers are not a valid site.
    pub fn site_point(&self) -> Option<SitePoint> {
        let crs: Crs = self.crs.parse().ok()?;
        SitePoint::new(self.lat, self.lon, crs, self.radius_m).ok()
    }
}

/// The booked visit (`visit: {starts_at, ends_at}` in the deal view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
}

/// Everything capture and pre-check need about a deal, cached at download time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedDeal {
    pub id: String,
    pub title: String,
    pub customer_id: String,
    pub current_node: Option<String>,
    pub site: Option<CachedSite>,
    pub visit: Option<Visit>,
    /// Evidence policy of each node with a `photo_set` requirement, from the deal's template.
    #[serde(default)]
    pub node_policies: BTreeMap<String, NodePolicy>,
    #[serde(with = "time::serde::rfc3339")]
    pub fetched_at: OffsetDateTime,
}

impl CachedDeal {
    /// The policy a photo for `node_key` is judged by: the node's own, with the visit window
    /// and the site's zone filled in.
    pub fn policy_for(&self, node_key: &str) -> NodePolicy {
        let mut policy = self
            .node_policies
            .get(node_key)
            .cloned()
            .unwrap_or_default();
        if let Some(visit) = self.visit {
            policy.visit_window = Some(VisitWindow {
                start: Some(visit.starts_at),
                end: Some(visit.ends_at),
            });
        }
        if let Some(offset) = self
            .site
            .as_ref()
            .and_then(|s| i16::try_from(s.utc_offset_minutes).ok())
        {
            policy.site_utc_offset_min = offset;
        }
        policy
    }
}
