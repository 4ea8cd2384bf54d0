//! When: the capture instant against the visit window, the receipt time and the manifest's
//! clock. Judged against the visit window, never against receipt: offline capture is normal.

use super::{Check, CheckCode, CheckDetail, Outcome, Witness};
use crate::evidence::capture_time::{CaptureClaims, CaptureSource, CaptureTime};
use crate::evidence::manifest::ManifestFix;
use crate::evidence::policy::{NodePolicy, WitnessRequirement};
use time::{Duration, OffsetDateTime};

/// The instant the checks judge: EXIF's resolved time, else the manifest's clock.
pub(crate) fn capture_instant(
    claims: &CaptureClaims,
    manifest: Option<&ManifestFix>,
    policy: &NodePolicy,
) -> Option<(OffsetDateTime, CaptureSource)> {
    match claims.resolve(policy.site_zone()) {
        CaptureTime::Resolved { at, source } => Some((at, source)),
        CaptureTime::Missing | CaptureTime::Invalid { .. } => manifest
            .and_then(|m| m.captured_at)
            .map(|at| (at, CaptureSource::Manifest)),
    }
}

pub(crate) fn time_checks(
    claims: &CaptureClaims,
    manifest: Option<&ManifestFix>,
    policy: &NodePolicy,
    received_at: OffsetDateTime,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let exif_time = claims.resolve(policy.site_zone());
    let manifest_time = manifest.and_then(|m| m.captured_at);
    let covered = policy.witnesses != WitnessRequirement::ExifGps
        && policy.witnesses != WitnessRequirement::Both
        && manifest_time.is_some();
    let covered_detail = || CheckDetail {
        witness: manifest_time.map(|_| Witness::Manifest),
        ..CheckDetail::default()
    };
    match &exif_time {
        CaptureTime::Resolved { .. } => checks.push(Check::pass(CheckCode::CaptureTimeMissing)),
        CaptureTime::Missing => checks.push(Check::new(
            CheckCode::CaptureTimeMissing,
            if covered {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            covered_detail(),
        )),
        CaptureTime::Invalid { raw } => checks.push(Check::new(
            CheckCode::CaptureTimeInvalid,
            if covered {
                Outcome::Warn
            } else {
                Outcome::Fail
            },
            CheckDetail {
                reason: Some(raw.clone()),
                ..covered_detail()
            },
        )),
    }

    let Some((at, source)) = capture_instant(claims, manifest, policy) else {
        return checks;
    };
    let detail = |limit_at: OffsetDateTime, minutes: i64| CheckDetail {
        captured_at: Some(at),
        captured_at_source: Some(source),
        limit_at: Some(limit_at),
        minutes: Some(minutes),
        ..CheckDetail::default()
    };
    let minutes = |d: Duration| d.whole_minutes().abs();
    let window = policy.visit_window.unwrap_or_default();
    if let Some(start) = window.start {
        checks.push(Check::new(
            CheckCode::CapturedBeforeWindow,
            if at < start {
                Outcome::Fail
            } else {
                Outcome::Pass
            },
            detail(start, minutes(start - at)),
        ));
    }
    if let Some(end) = window.end {
        checks.push(Check::new(
            CheckCode::CapturedAfterWindow,
            if at > end {
                Outcome::Fail
            } else {
                Outcome::Pass
            },
            detail(end, minutes(at - end)),
        ));
    }
    let latest = received_at + Duration::seconds(policy.max_future_skew_s);
    checks.push(Check::new(
        CheckCode::CapturedInFuture,
        if at > latest {
            Outcome::Fail
        } else {
            Outcome::Pass
        },
        detail(received_at, minutes(at - received_at)),
    ));
    let lag = received_at - at;
    let stale = lag > Duration::hours(policy.max_upload_lag_h);
    checks.push(Check::new(
        CheckCode::StaleCapture,
        if stale { Outcome::Warn } else { Outcome::Pass },
        detail(received_at, lag.whole_minutes().max(0)),
    ));

    // Both clocks seen: they must agree, unless EXIF's zone was only assumed.
    if let (
        CaptureTime::Resolved {
            at: exif_at,
            source,
        },
        Some(device_at),
    ) = (&exif_time, manifest_time)
        && *source != CaptureSource::AssumedZone
    {
        let apart = (*exif_at - device_at).abs();
        let outcome = if apart > Duration::seconds(policy.time_agreement_s) {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
        checks.push(Check::new(
            CheckCode::DeviceFixDisagrees,
            outcome,
            CheckDetail {
                reason: Some("time".to_owned()),
                captured_at: Some(*exif_at),
                captured_at_source: Some(*source),
                limit_at: Some(device_at),
                minutes: Some(apart.whole_minutes()),
                ..CheckDetail::default()
            },
        ));
    }
    checks
}
