//! The checks: each yields `pass | warn | fail` under a stable snake_case code, with the
//! numbers behind it in a structured `detail`, so a verdict can be explained and re-run.

mod content;
mod place;
mod timing;

pub(crate) use content::content_checks;
pub(crate) use place::place_checks;
pub(crate) use timing::{capture_instant, time_checks};

use super::capture_time::CaptureSource;
use super::format::Format;
use crate::geo::Crs;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How one check came out. `fail` is hard (rejects), `warn` is soft (needs review).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

/// Every check code. Stable: stored in evidence rows and shown in API error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckCode {
    UnsupportedFormat,
    GpsMissing,
    GpsInvalid,
    ManifestMissing,
    OutsideSite,
    CoarseAccuracy,
    DeviceFixDisagrees,
    MockLocation,
    ImpossibleTravel,
    CaptureTimeMissing,
    CaptureTimeInvalid,
    CapturedBeforeWindow,
    CapturedAfterWindow,
    CapturedInFuture,
    StaleCapture,
    EditedBySoftware,
    DuplicateExact,
    DuplicateNear,
    NoPixels,
    PixelsUnreadable,
}

impl CheckCode {
    pub const ALL: [CheckCode; 20] = [
        CheckCode::UnsupportedFormat,
        CheckCode::GpsMissing,
        CheckCode::GpsInvalid,
        CheckCode::ManifestMissing,
        CheckCode::OutsideSite,
        CheckCode::CoarseAccuracy,
        CheckCode::DeviceFixDisagrees,
        CheckCode::MockLocation,
        CheckCode::ImpossibleTravel,
        CheckCode::CaptureTimeMissing,
        CheckCode::CaptureTimeInvalid,
        CheckCode::CapturedBeforeWindow,
        CheckCode::CapturedAfterWindow,
        CheckCode::CapturedInFuture,
        CheckCode::StaleCapture,
        CheckCode::EditedBySoftware,
        CheckCode::DuplicateExact,
        CheckCode::DuplicateNear,
        CheckCode::NoPixels,
        CheckCode::PixelsUnreadable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckCode::UnsupportedFormat => "unsupported_format",
            CheckCode::GpsMissing => "gps_missing",
            CheckCode::GpsInvalid => "gps_invalid",
            CheckCode::ManifestMissing => "manifest_missing",
            CheckCode::OutsideSite => "outside_site",
            CheckCode::CoarseAccuracy => "coarse_accuracy",
            CheckCode::DeviceFixDisagrees => "device_fix_disagrees",
            CheckCode::MockLocation => "mock_location",
            CheckCode::ImpossibleTravel => "impossible_travel",
            CheckCode::CaptureTimeMissing => "capture_time_missing",
            CheckCode::CaptureTimeInvalid => "capture_time_invalid",
            CheckCode::CapturedBeforeWindow => "captured_before_window",
            CheckCode::CapturedAfterWindow => "captured_after_window",
            CheckCode::CapturedInFuture => "captured_in_future",
            CheckCode::StaleCapture => "stale_capture",
            CheckCode::EditedBySoftware => "edited_by_software",
            CheckCode::DuplicateExact => "duplicate_exact",
            CheckCode::DuplicateNear => "duplicate_near",
            CheckCode::NoPixels => "no_pixels",
            CheckCode::PixelsUnreadable => "pixels_unreadable",
        }
    }
}

/// Which witness a place or time figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Witness {
    Exif,
    Manifest,
}

/// The numbers behind a check. Only the fields that check uses are set (and serialized).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub radius_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_accuracy_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_crs: Option<Crs>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub captured_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_at_source: Option<CaptureSource>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub limit_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_evidence_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hamming_distance: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_hamming_distance: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_speed_kmh: Option<f64>,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub code: CheckCode,
    pub outcome: Outcome,
    pub detail: CheckDetail,
}

impl Check {
    pub(crate) fn new(code: CheckCode, outcome: Outcome, detail: CheckDetail) -> Check {
        Check {
            code,
            outcome,
            detail,
        }
    }

    pub(crate) fn pass(code: CheckCode) -> Check {
        Check::new(code, Outcome::Pass, CheckDetail::default())
    }

    /// English and Simplified Chinese explanations with this check's numbers.
    pub fn message(&self) -> super::messages::Message {
        super::messages::render(self)
    }
}

/// Metres rounded to 0.1 m: stable output, and no false precision.
pub(crate) fn round_m(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
