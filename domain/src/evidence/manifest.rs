//! The second witness: the fix and clock the phone recorded at the shutter, from the capture
//! manifest. The server verifies the manifest's signature and hash before passing it here.

use crate::geo::LatLon;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The device's own fix and time at capture, already re-anchored for clock skew by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFix {
    /// WGS-84, as phone GNSS reports it.
    pub point: LatLon,
    pub accuracy_m: Option<f64>,
    /// The OS said the location came from a mock provider.
    pub is_mock: bool,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub captured_at: Option<OffsetDateTime>,
}
