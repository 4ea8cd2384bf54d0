//! The photo's own GPS fix, read leniently from EXIF and validated strictly: a latitude of
//! 213° or a 0/0 rational is a typed invalid state, never a number that reaches a check.

use crate::geo::LatLon;
use exif::{Exif, Field, In, Tag, Value};
use serde::{Deserialize, Serialize};

/// A WGS-84 fix as the photo states it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GpsFix {
    pub point: LatLon,
    /// Metres above sea level (negative below), when stated and valid.
    pub alt_m: Option<f64>,
    /// GPSHPositioningError: the horizontal accuracy radius in metres.
    pub accuracy_m: Option<f64>,
}

/// Why EXIF GPS that is present cannot be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpsInvalid {
    /// A rational with denominator 0.
    ZeroDenominator,
    LatitudeOutOfRange,
    LongitudeOutOfRange,
    NotANumber,
    /// Exactly 0,0: what phones write when they had no fix.
    NullIsland,
    /// Latitude without longitude or the other way round.
    Incomplete,
    /// A value of a type no GPS coordinate can have.
    Malformed,
}

impl GpsInvalid {
    pub fn as_str(self) -> &'static str {
        match self {
            GpsInvalid::ZeroDenominator => "zero_denominator",
            GpsInvalid::LatitudeOutOfRange => "latitude_out_of_range",
            GpsInvalid::LongitudeOutOfRange => "longitude_out_of_range",
            GpsInvalid::NotANumber => "not_a_number",
            GpsInvalid::NullIsland => "null_island",
            GpsInvalid::Incomplete => "incomplete",
            GpsInvalid::Malformed => "malformed",
        }
    }
}

/// What the file says about where it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GpsFact {
    /// No GPS IFD, or only empty / count-0 coordinate entries.
    Missing,
    Invalid {
        reason: GpsInvalid,
    },
    Valid(GpsFix),
}

impl GpsFact {
    pub fn valid(&self) -> Option<&GpsFix> {
        match self {
            GpsFact::Valid(fix) => Some(fix),
            GpsFact::Missing | GpsFact::Invalid { .. } => None,
        }
    }
}

/// Numbers of a field, whatever numeric type the camera chose (RATIONAL per spec, SRATIONAL,
/// LONG or DOUBLE in the wild). `Ok(empty)` means "present but empty".
fn numbers(field: &Field) -> Result<Vec<f64>, GpsInvalid> {
    fn ratio(num: f64, denom: f64) -> Result<f64, GpsInvalid> {
        if denom == 0.0 {
            Err(GpsInvalid::ZeroDenominator)
        } else {
            Ok(num / denom)
        }
    }
    let values: Vec<f64> = match &field.value {
        Value::Rational(v) => v
            .iter()
            .map(|r| ratio(f64::from(r.num), f64::from(r.denom)))
            .collect::<Result<_, _>>()?,
        Value::SRational(v) => v
            .iter()
            .map(|r| ratio(f64::from(r.num), f64::from(r.denom)))
            .collect::<Result<_, _>>()?,
        Value::Double(v) => v.clone(),
        Value::Float(v) => v.iter().map(|f| f64::from(*f)).collect(),
        Value::Long(v) => v.iter().map(|n| f64::from(*n)).collect(),
        Value::Short(v) => v.iter().map(|n| f64::from(*n)).collect(),
        Value::Ascii(v) if v.iter().all(|s| s.iter().all(|c| *c == b' ' || *c == 0)) => Vec::new(),
        _ => return Err(GpsInvalid::Malformed),
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(GpsInvalid::NotANumber);
    }
    Ok(values)
}

fn ascii_first(field: &Field) -> Option<u8> {
    match &field.value {
        Value::Ascii(v) => v.first()?.first().copied(),
        _ => None,
    }
}

/// Degrees from [deg, min, sec] (or fewer parts), signed by the ref letter or by a negative
/// component (SRATIONAL writers sometimes sign the degrees and omit the ref).
fn coordinate(
    exif: &Exif,
    value: Tag,
    reference: Tag,
    negative_ref: u8,
) -> Option<Result<f64, GpsInvalid>> {
    let field = exif.get_field(value, In::PRIMARY)?;
    let parts = match numbers(field) {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    if parts.is_empty() {
        return None;
    }
    let magnitude: f64 = parts
        .iter()
        .take(3)
        .zip([1.0, 60.0, 3600.0])
        .map(|(v, div)| v.abs() / div)
        .sum();
    let negative_value = parts.iter().take(3).any(|v| *v < 0.0);
    let negative_ref = exif
        .get_field(reference, In::PRIMARY)
        .and_then(ascii_first)
        .is_some_and(|c| c.eq_ignore_ascii_case(&negative_ref));
    Some(Ok(if negative_value || negative_ref {
        -magnitude
    } else {
        magnitude
    }))
}

fn positive_number(exif: &Exif, tag: Tag) -> Option<f64> {
    let v = *numbers(exif.get_field(tag, In::PRIMARY)?).ok()?.first()?;
    (v >= 0.0).then_some(v)
}

/// Reads and validates the GPS IFD.
pub fn read(exif: &Exif) -> GpsFact {
    let lat = coordinate(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S');
    let lon = coordinate(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W');
    let (lat, lon) = match (lat, lon) {
        (None, None) => return GpsFact::Missing,
        (Some(Err(reason)), _) | (_, Some(Err(reason))) => return GpsFact::Invalid { reason },
        (Some(Ok(_)), None) | (None, Some(Ok(_))) => {
            return GpsFact::Invalid {
                reason: GpsInvalid::Incomplete,
            };
        }
        (Some(Ok(lat)), Some(Ok(lon))) => (lat, lon),
    };
    validate(lat, lon).map_or_else(
        |reason| GpsFact::Invalid { reason },
        |point| {
            let below_sea = exif
                .get_field(Tag::GPSAltitudeRef, In::PRIMARY)
                .and_then(|f| f.value.get_uint(0))
                == Some(1);
            let alt_m =
                positive_number(exif, Tag::GPSAltitude).map(|a| if below_sea { -a } else { a });
            let accuracy_m = positive_number(exif, Tag::GPSHPositioningError);
            GpsFact::Valid(GpsFix {
                point,
                alt_m,
                accuracy_m,
            })
        },
    )
}

/// Range and null-island validation shared with the capture manifest's fix.
pub fn validate(lat: f64, lon: f64) -> Result<LatLon, GpsInvalid> {
    if !lat.is_finite() || !lon.is_finite() {
        return Err(GpsInvalid::NotANumber);
    }
    if lat == 0.0 && lon == 0.0 {
        return Err(GpsInvalid::NullIsland);
    }
    LatLon::new(lat, lon).map_err(|e| match e {
        crate::geo::InvalidPoint::Latitude => GpsInvalid::LatitudeOutOfRange,
        crate::geo::InvalidPoint::Longitude => GpsInvalid::LongitudeOutOfRange,
    })
}
