//! Where: EXIF GPS and the manifest fix against the policy's witness requirement, the site
//! (forward-converted into the site's system, widened by accuracy), each other, and the
//! rep's recent captures.

use super::{Check, CheckCode, CheckDetail, Outcome, Witness, round_m};
use crate::evidence::gps::{self, GpsFact};
use crate::evidence::history::History;
use crate::evidence::manifest::ManifestFix;
use crate::evidence::policy::{NodePolicy, WitnessRequirement};
use crate::geo::{LatLon, SitePoint};
use time::OffsetDateTime;

/// A place as one witness states it.
#[derive(Debug, Clone, Copy)]
struct Place {
    point: LatLon,
    accuracy_m: Option<f64>,
    witness: Witness,
}

pub(crate) fn place_checks(
    exif_gps: &GpsFact,
    manifest: Option<&ManifestFix>,
    policy: &NodePolicy,
    site: Option<&SitePoint>,
    history: &History,
    captured_at: Option<OffsetDateTime>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let manifest_place = manifest.and_then(|m| {
        // The server parsed the point already; null island is still a no-fix placeholder.
        gps::validate(m.point.lat(), m.point.lon())
            .ok()
            .map(|point| Place {
                point,
                accuracy_m: m.accuracy_m.filter(|a| a.is_finite() && *a >= 0.0),
                witness: Witness::Manifest,
            })
    });
    let exif_place = exif_gps.valid().map(|fix| Place {
        point: fix.point,
        accuracy_m: fix.accuracy_m,
        witness: Witness::Exif,
    });
    let requirement = policy.witnesses;
    let exif_required = matches!(
        requirement,
        WitnessRequirement::ExifGps | WitnessRequirement::Both
    );
    // When EXIF GPS is not strictly required, a manifest fix covers for it.
    let covered = !exif_required && manifest_place.is_some()
        || requirement == WitnessRequirement::ManifestFix;
    let covered_detail = || CheckDetail {
        witness: manifest_place.map(|p| p.witness),
        ..CheckDetail::default()
    };

    match exif_gps {
        GpsFact::Valid(_) => checks.push(Check::pass(CheckCode::GpsMissing)),
        GpsFact::Missing if covered => checks.push(Check::new(
            CheckCode::GpsMissing,
            Outcome::Pass,
            covered_detail(),
        )),
        GpsFact::Missing => checks.push(Check::new(
            CheckCode::GpsMissing,
            Outcome::Fail,
            CheckDetail::default(),
        )),
        GpsFact::Invalid { reason } => checks.push(Check::new(
            CheckCode::GpsInvalid,
            if covered {
                Outcome::Warn
            } else {
                Outcome::Fail
            },
            CheckDetail {
                reason: Some(reason.as_str().to_owned()),
                ..covered_detail()
            },
        )),
    }

    let manifest_required = matches!(
        requirement,
        WitnessRequirement::ManifestFix | WitnessRequirement::Both
    );
    if manifest_required {
        let outcome = if manifest_place.is_some() {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        checks.push(Check::new(
            CheckCode::ManifestMissing,
            outcome,
            CheckDetail::default(),
        ));
    }
    if let Some(m) = manifest {
        let outcome = if m.is_mock {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
        checks.push(Check::new(
            CheckCode::MockLocation,
            outcome,
            CheckDetail::default(),
        ));
    }

    // EXIF is the photo's own statement, so it is judged first; the manifest stands in for it.
    let Some(primary) = exif_place.or(manifest_place) else {
        return checks;
    };
    if let Some(site) = site {
        checks.push(outside_site(primary, site, policy));
    }
    if let Some(accuracy) = primary.accuracy_m {
        let outcome = if accuracy > policy.max_accuracy_m {
            Outcome::Warn
        } else {
            Outcome::Pass
        };
        checks.push(Check::new(
            CheckCode::CoarseAccuracy,
            outcome,
            CheckDetail {
                witness: Some(primary.witness),
                accuracy_m: Some(round_m(accuracy)),
                max_accuracy_m: Some(policy.max_accuracy_m),
                ..CheckDetail::default()
            },
        ));
    }
    if let (Some(e), Some(m)) = (exif_place, manifest_place) {
        checks.push(fixes_agree(e, m, policy));
    }
    if let Some(at) = captured_at {
        checks.push(travel(primary.point, at, history, policy));
    }
    checks
}

/// Pass when `distance − min(accuracy, max_accuracy) ≤ radius`: the fix's error circle may
/// touch the site, but no more accuracy is credited than the policy trusts.
fn outside_site(place: Place, site: &SitePoint, policy: &NodePolicy) -> Check {
    let radius = policy.radius_override_m.unwrap_or(site.radius_m);
    let distance = site.distance_from_wgs84_m(place.point);
    let credit = place.accuracy_m.unwrap_or(0.0).min(policy.max_accuracy_m);
    let outcome = if distance - credit <= radius {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    Check::new(
        CheckCode::OutsideSite,
        outcome,
        CheckDetail {
            witness: Some(place.witness),
            distance_m: Some(round_m(distance)),
            radius_m: Some(round_m(radius)),
            accuracy_m: place.accuracy_m.map(|_| round_m(credit)),
            site_crs: Some(site.crs),
            ..CheckDetail::default()
        },
    )
}

fn fixes_agree(exif: Place, manifest: Place, policy: &NodePolicy) -> Check {
    let distance = exif.point.distance_m(manifest.point);
    let slack = exif.accuracy_m.unwrap_or(0.0) + manifest.accuracy_m.unwrap_or(0.0);
    let allowed = policy.fix_agreement_m.max(slack);
    let outcome = if distance > allowed {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    Check::new(
        CheckCode::DeviceFixDisagrees,
        outcome,
        CheckDetail {
            reason: Some("place".to_owned()),
            distance_m: Some(round_m(distance)),
            radius_m: Some(round_m(allowed)),
            ..CheckDetail::default()
        },
    )
}

/// The fastest implied speed to any recent capture. Jumps under 1 km are ignored (GPS
/// wander), and intervals are floored at one minute so two shots a second apart don't
/// divide by zero.
fn travel(point: LatLon, at: OffsetDateTime, history: &History, policy: &NodePolicy) -> Check {
    let worst = history
        .recent_captures
        .iter()
        .filter_map(|prior| {
            let distance = point.distance_m(prior.point);
            if distance < 1000.0 {
                return None;
            }
            let seconds = (at - prior.at).abs().as_seconds_f64().max(60.0);
            Some((distance / seconds * 3.6, distance, prior))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match worst {
        Some((speed, distance, prior)) if speed > policy.max_travel_kmh => Check::new(
            CheckCode::ImpossibleTravel,
            Outcome::Warn,
            CheckDetail {
                other_evidence_id: Some(prior.evidence_id.clone()),
                distance_m: Some(round_m(distance)),
                speed_kmh: Some(speed.round()),
                max_speed_kmh: Some(policy.max_travel_kmh),
                ..CheckDetail::default()
            },
        ),
        _ => Check::pass(CheckCode::ImpossibleTravel),
    }
}
