//! `fieldproof evidence inspect`: one JSON object explaining what a file claims and how the
//! default rules judge it, for people debugging a rejection and for scripts. No file IO here:
//! the CLI reads the file and prints the serialized [`InspectReport`].

use super::capture_time::{CaptureSource, CaptureTime, LocalTime};
use super::checks::Check;
use super::format::Format;
use super::policy::{NodePolicy, VisitWindow};
use super::verdict::VerdictOutcome;
use super::verify::{VerifyContext, verify};
use crate::geo::SitePoint;
use serde::Serialize;
use time::OffsetDateTime;

/// The CLI's optional flags, already parsed.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    /// `--site LAT,LON --crs … --radius M`.
    pub site: Option<SitePoint>,
    /// `--window-start RFC3339`.
    pub window_start: Option<OffsetDateTime>,
    /// `--window-end RFC3339`.
    pub window_end: Option<OffsetDateTime>,
}

/// The GPS fix as printed: WGS-84 decimal degrees, south/west negative.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectGps {
    pub lat: f64,
    pub lon: f64,
    pub alt: Option<f64>,
    pub accuracy_m: Option<f64>,
}

/// The facts as printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectFacts {
    #[serde(with = "time::serde::rfc3339::option")]
    pub captured_at: Option<OffsetDateTime>,
    pub captured_at_source: Option<CaptureSource>,
    /// `YYYY-MM-DDTHH:MM:SS`, the camera's zone-less local time.
    pub local_datetime: Option<String>,
    /// `null` when missing or invalid (the checks say which).
    pub gps: Option<InspectGps>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub software: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Exactly the object `fieldproof evidence inspect` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectReport {
    pub format: Format,
    pub facts: InspectFacts,
    pub checks: Vec<Check>,
    pub verdict: VerdictOutcome,
}

/// Inspects a file's bytes with the default policy (plus the given site and window), as if
/// received at `now`. Never fails: unreadable input yields `format: unknown` or a check.
pub fn inspect(bytes: &[u8], options: &InspectOptions, now: OffsetDateTime) -> InspectReport {
    let window =
        (options.window_start.is_some() || options.window_end.is_some()).then_some(VisitWindow {
            start: options.window_start,
            end: options.window_end,
        });
    let ctx = VerifyContext {
        policy: NodePolicy {
            visit_window: window,
            ..NodePolicy::default()
        },
        site: options.site,
        ..VerifyContext::default()
    };
    let result = verify(bytes, None, &ctx, now);
    let facts = &result.facts;
    let (captured_at, captured_at_source) = match facts.capture.resolve(ctx.policy.site_zone()) {
        CaptureTime::Resolved { at, source } => (Some(at), Some(source)),
        CaptureTime::Missing | CaptureTime::Invalid { .. } => (None, None),
    };
    let local_datetime = match &facts.capture.local {
        LocalTime::Present { datetime, .. } => datetime
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            ))
            .ok(),
        LocalTime::Missing | LocalTime::Invalid { .. } => None,
    };
    InspectReport {
        format: facts.format,
        facts: InspectFacts {
            captured_at,
            captured_at_source,
            local_datetime,
            gps: facts.gps.valid().map(|fix| InspectGps {
                lat: fix.point.lat(),
                lon: fix.point.lon(),
                alt: fix.alt_m,
                accuracy_m: fix.accuracy_m,
            }),
            make: facts.make.clone(),
            model: facts.model.clone(),
            software: facts.software.clone(),
            width: facts.width,
            height: facts.height,
        },
        checks: result.verdict.checks,
        verdict: result.verdict.outcome,
    }
}
