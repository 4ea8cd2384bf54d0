//! The capture manifest: what the phone states at the shutter, signed with its device key, and
//! how the server re-anchors the phone's clock. Shared by the server and the mobile SDK so the
//! bytes one signs are the bytes the other verifies.

use crate::evidence::ManifestFix;
use crate::geo::{InvalidPoint, LatLon};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The phone's own location fix at the shutter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeviceFix {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f64>,
    /// The OS said the location came from a mock provider.
    #[serde(default)]
    pub is_mock: bool,
}

/// Signed by the device key over its exact JSON bytes (as sent in the `manifest` part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureManifest {
    /// UUID made on the phone at the shutter; the idempotency key of the upload.
    pub capture_id: String,
    /// The enrolled device that signed this.
    pub device_id: String,
    /// SHA-256 of the photo bytes, lowercase hex.
    pub sha256: String,
    pub fix: Option<DeviceFix>,
    /// The phone's wall clock at the shutter (may be wrong).
    #[serde(with = "time::serde::rfc3339")]
    pub wall_clock: OffsetDateTime,
    /// Milliseconds since boot at the shutter (immune to clock changes).
    pub monotonic_ms: u64,
    /// Identifies the boot the monotonic clock counts from.
    pub boot_id: String,
}

/// The phone's clocks as it sends the upload, so the server can re-anchor the capture time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceClock {
    #[serde(with = "time::serde::rfc3339")]
    pub wall_now: OffsetDateTime,
    pub monotonic_ms_now: u64,
    pub boot_id: String,
}

/// How the capture instant was put on the server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// Same boot: receipt time minus the monotonic time elapsed since the shutter. Exact up to
    /// network delay, whatever the phone's wall clock says.
    Monotonic,
    /// Rebooted since: the phone's wall clock at the shutter, corrected by its current skew.
    WallClockSkew,
    /// No clock report: the phone's wall clock as it was.
    WallClock,
}

/// The capture instant on the server's clock, and how it was found.
pub fn anchor_capture_time(
    manifest: &CaptureManifest,
    clock: Option<&DeviceClock>,
    received_at: OffsetDateTime,
) -> (OffsetDateTime, Anchor) {
    match clock {
        Some(c) if c.boot_id == manifest.boot_id && c.monotonic_ms_now >= manifest.monotonic_ms => {
            let elapsed = c.monotonic_ms_now - manifest.monotonic_ms;
            let elapsed = Duration::milliseconds(i64::try_from(elapsed).unwrap_or(i64::MAX));
            (received_at - elapsed, Anchor::Monotonic)
        }
        Some(c) => {
            let skew = received_at - c.wall_now;
            (manifest.wall_clock + skew, Anchor::WallClockSkew)
        }
        None => (manifest.wall_clock, Anchor::WallClock),
    }
}

impl CaptureManifest {
    /// The fix in the shape the evidence checks take, with the re-anchored capture time.
    pub fn manifest_fix(
        &self,
        captured_at: OffsetDateTime,
    ) -> Result<Option<ManifestFix>, InvalidPoint> {
        self.fix
            .map(|fix| {
                Ok(ManifestFix {
                    point: LatLon::new(fix.lat, fix.lon)?,
                    accuracy_m: fix.accuracy_m.filter(|a| a.is_finite() && *a >= 0.0),
                    is_mock: fix.is_mock,
                    captured_at: Some(captured_at),
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn manifest() -> CaptureManifest {
        CaptureManifest {
            capture_id: "c1".into(),
            device_id: "d1".into(),
            sha256: "00".into(),
            fix: Some(DeviceFix {
                lat: 30.0,
                lon: 120.0,
                accuracy_m: Some(8.0),
                is_mock: false,
            }),
            // The phone's clock is two hours fast.
            wall_clock: datetime!(2026-11-24 12:00 UTC),
            monotonic_ms: 1_000_000,
            boot_id: "boot-a".into(),
        }
    }

    #[test]
    fn same_boot_uses_monotonic_time_and_ignores_a_wrong_wall_clock() {
        let received = datetime!(2026-11-24 11:00 UTC);
        let clock = DeviceClock {
            wall_now: datetime!(2026-11-24 13:00 UTC),
            monotonic_ms_now: 1_000_000 + 3_600_000,
            boot_id: "boot-a".into(),
        };
        let (at, anchor) = anchor_capture_time(&manifest(), Some(&clock), received);
        assert_eq!(anchor, Anchor::Monotonic);
        assert_eq!(at, datetime!(2026-11-24 10:00 UTC));
    }

    #[test]
    fn after_a_reboot_the_current_skew_corrects_the_wall_clock() {
        let received = datetime!(2026-11-24 11:00 UTC);
        let clock = DeviceClock {
            wall_now: datetime!(2026-11-24 13:00 UTC),
            monotonic_ms_now: 5,
            boot_id: "boot-b".into(),
        };
        let (at, anchor) = anchor_capture_time(&manifest(), Some(&clock), received);
        assert_eq!(anchor, Anchor::WallClockSkew);
        assert_eq!(at, datetime!(2026-11-24 10:00 UTC));
    }

    #[test]
    fn an_impossible_fix_is_refused() {
        let mut m = manifest();
        m.fix = Some(DeviceFix {
            lat: 213.0,
            lon: 1.0,
            accuracy_m: None,
            is_mock: false,
        });
        assert!(m.manifest_fix(datetime!(2026-11-24 10:00 UTC)).is_err());
    }
}
