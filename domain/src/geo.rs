//! Points on the earth and the coordinate systems Chinese map pickers use.
//!
//! Phone GNSS and EXIF are WGS-84; Amap/Tencent pickers give GCJ-02 and Baidu gives BD-09.
//! A site is stored as entered, with its system, so nothing is lost to an approximate inverse.
//! A photo's WGS-84 point is converted *forward* into the site's system (the forward formulas
//! are exact by definition; every published inverse is an approximation) and then compared on
//! the WGS-84 ellipsoid with a geodesic (Karney) distance.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The coordinate system a point was entered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crs {
    Wgs84,
    Gcj02,
    Bd09,
}

impl Crs {
    pub fn as_str(self) -> &'static str {
        match self {
            Crs::Wgs84 => "wgs84",
            Crs::Gcj02 => "gcj02",
            Crs::Bd09 => "bd09",
        }
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown coordinate system `{0}` (expected wgs84, gcj02 or bd09)")]
pub struct UnknownCrs(pub String);

impl FromStr for Crs {
    type Err = UnknownCrs;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "wgs84" | "wgs-84" => Ok(Crs::Wgs84),
            "gcj02" | "gcj-02" => Ok(Crs::Gcj02),
            "bd09" | "bd-09" => Ok(Crs::Bd09),
            _ => Err(UnknownCrs(s.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidPoint {
    #[error("latitude must be a finite number in [-90, 90]")]
    Latitude,
    #[error("longitude must be a finite number in [-180, 180]")]
    Longitude,
}

/// A latitude/longitude pair in decimal degrees that is known to be a place on the earth.
/// Which system it is in is carried by whoever holds it (see [`SitePoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLatLon")]
pub struct LatLon {
    lat: f64,
    lon: f64,
}

impl LatLon {
    pub fn new(lat: f64, lon: f64) -> Result<Self, InvalidPoint> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(InvalidPoint::Latitude);
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(InvalidPoint::Longitude);
        }
        Ok(LatLon { lat, lon })
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lon(self) -> f64 {
        self.lon
    }

    /// This WGS-84 point expressed in `crs`, by the forward formula (exact by definition).
    pub fn wgs84_to(self, crs: Crs) -> LatLon {
        match crs {
            Crs::Wgs84 => self,
            Crs::Gcj02 => wgs84_to_gcj02(self),
            Crs::Bd09 => gcj02_to_bd09(wgs84_to_gcj02(self)),
        }
    }

    /// Geodesic distance in metres on the WGS-84 ellipsoid (Karney's algorithm, via `geo`).
    pub fn distance_m(self, other: LatLon) -> f64 {
        use geo::{Distance, Geodesic, Point};
        Geodesic.distance(
            Point::new(self.lon, self.lat),
            Point::new(other.lon, other.lat),
        )
    }

    /// Builds a point from formula output, folding it back onto the globe instead of failing:
    /// BD-09 adds a constant shift that can push a point a hair past ±180° or ±90°.
    fn folded(lat: f64, lon: f64) -> LatLon {
        let lat = lat.clamp(-90.0, 90.0);
        let lon = if lon > 180.0 {
            lon - 360.0
        } else if lon < -180.0 {
            lon + 360.0
        } else {
            lon
        };
        LatLon { lat, lon }
    }
}

#[derive(Deserialize)]
struct RawLatLon {
    lat: f64,
    lon: f64,
}

impl TryFrom<RawLatLon> for LatLon {
    type Error = InvalidPoint;
    fn try_from(raw: RawLatLon) -> Result<Self, Self::Error> {
        LatLon::new(raw.lat, raw.lon)
    }
}

/// The bounding box every published GCJ-02 implementation uses for "inside China".
/// Outside it GCJ-02 equals WGS-84, which is what Amap/Tencent return abroad too.
pub fn is_outside_china(p: LatLon) -> bool {
    !(72.004..=137.8347).contains(&p.lon) || !(0.8293..=55.8271).contains(&p.lat)
}

/// Krasovsky 1940 semi-major axis and eccentricity² as used by the GCJ-02 formula.
const GCJ_A: f64 = 6_378_245.0;
const GCJ_EE: f64 = 0.006_693_421_622_965_943;

/// WGS-84 → GCJ-02 (the "Mars" offset of Chinese map providers); identity outside China.
pub fn wgs84_to_gcj02(p: LatLon) -> LatLon {
    use std::f64::consts::PI;
    if is_outside_china(p) {
        return p;
    }
    let x = p.lon - 105.0;
    let y = p.lat - 35.0;
    let common = (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    let mut d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    d_lat += common;
    d_lat += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    d_lat += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    let mut d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    d_lon += common;
    d_lon += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    d_lon += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;

    let rad_lat = p.lat / 180.0 * PI;
    let magic = 1.0 - GCJ_EE * rad_lat.sin() * rad_lat.sin();
    let sqrt_magic = magic.sqrt();
    d_lat = (d_lat * 180.0) / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sqrt_magic) * PI);
    d_lon = (d_lon * 180.0) / (GCJ_A / sqrt_magic * rad_lat.cos() * PI);
    LatLon::folded(p.lat + d_lat, p.lon + d_lon)
}

/// GCJ-02 → BD-09 (Baidu's extra rotation and shift, applied everywhere as Baidu does).
pub fn gcj02_to_bd09(p: LatLon) -> LatLon {
    const X_PI: f64 = std::f64::consts::PI * 3000.0 / 180.0;
    let (x, y) = (p.lon, p.lat);
    let z = (x * x + y * y).sqrt() + 0.000_02 * (y * X_PI).sin();
    let theta = y.atan2(x) + 0.000_003 * (x * X_PI).cos();
    LatLon::folded(z * theta.sin() + 0.006, z * theta.cos() + 0.0065)
}

/// A customer site as entered: a point in its own coordinate system and a radius in metres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSitePoint")]
pub struct SitePoint {
    pub point: LatLon,
    pub crs: Crs,
    pub radius_m: f64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidSite {
    #[error(transparent)]
    Point(#[from] InvalidPoint),
    #[error("radius must be between 10 and 50000 metres")]
    Radius,
}

impl SitePoint {
    pub fn new(lat: f64, lon: f64, crs: Crs, radius_m: f64) -> Result<Self, InvalidSite> {
        let point = LatLon::new(lat, lon)?;
        if !radius_m.is_finite() || !(10.0..=50_000.0).contains(&radius_m) {
            return Err(InvalidSite::Radius);
        }
        Ok(SitePoint {
            point,
            crs,
            radius_m,
        })
    }

    /// Geodesic distance in metres from a WGS-84 point to the site's centre, measured after
    /// converting the point forward into the site's system.
    pub fn distance_from_wgs84_m(&self, wgs84: LatLon) -> f64 {
        wgs84.wgs84_to(self.crs).distance_m(self.point)
    }
}

#[derive(Deserialize)]
struct RawSitePoint {
    point: LatLon,
    crs: Crs,
    radius_m: f64,
}

impl TryFrom<RawSitePoint> for SitePoint {
    type Error = InvalidSite;
    fn try_from(raw: RawSitePoint) -> Result<Self, Self::Error> {
        SitePoint::new(raw.point.lat, raw.point.lon, raw.crs, raw.radius_m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_places_are_refused() {
        assert_eq!(LatLon::new(213.0, 10.0), Err(InvalidPoint::Latitude));
        assert_eq!(LatLon::new(f64::NAN, 10.0), Err(InvalidPoint::Latitude));
        assert_eq!(LatLon::new(10.0, -180.5), Err(InvalidPoint::Longitude));
        assert!(LatLon::new(-33.9, 151.2).is_ok());
    }

    #[test]
    fn crs_names_parse_both_spellings() {
        assert_eq!("GCJ-02".parse::<Crs>(), Ok(Crs::Gcj02));
        assert_eq!("bd09".parse::<Crs>(), Ok(Crs::Bd09));
        assert!("utm".parse::<Crs>().is_err());
    }

    fn assert_close(got: LatLon, lat: f64, lon: f64, tol: f64) {
        assert!(
            (got.lat() - lat).abs() < tol && (got.lon() - lon).abs() < tol,
            "got ({}, {}), want ({lat}, {lon})",
            got.lat(),
            got.lon()
        );
    }

    #[test]
    fn gcj02_golden_vectors_match_the_reference_implementations() {
        // The issue's vector (eviltransform's Shanghai test case).
        let p = LatLon::new(31.1774276, 121.5272106).unwrap();
        assert_close(p.wgs84_to(Crs::Gcj02), 31.17530398, 121.53154186, 5e-9);
        // eviltransform: Shenzhen and Beijing.
        let p = LatLon::new(22.543847, 113.912316).unwrap();
        assert_close(
            p.wgs84_to(Crs::Gcj02),
            22.540796131694766,
            113.9171764808363,
            1e-9,
        );
        let p = LatLon::new(39.911954, 116.377817).unwrap();
        assert_close(
            p.wgs84_to(Crs::Gcj02),
            39.91334545536069,
            116.38404722455657,
            1e-9,
        );
        // wandergis/coordtransform (also hutool's CoordinateUtilTest).
        let p = LatLon::new(39.915, 116.404).unwrap();
        assert_close(
            p.wgs84_to(Crs::Gcj02),
            39.91640428150164,
            116.41024449916938,
            1e-9,
        );
    }

    #[test]
    fn bd09_golden_vectors_match_the_reference_implementations() {
        // wandergis/coordtransform as pinned by hutool's CoordinateUtilTest.
        let p = LatLon::new(39.915, 116.404).unwrap();
        assert_close(
            p.wgs84_to(Crs::Bd09),
            39.922699552216216,
            116.41662724378733,
            1e-9,
        );
        let p = LatLon::new(44.99804071, 122.99395597).unwrap();
        assert_close(
            p.wgs84_to(Crs::Bd09),
            45.0063690918959,
            123.00636516028885,
            1e-9,
        );
        let gcj = LatLon::new(39.915, 116.404).unwrap();
        assert_close(
            gcj02_to_bd09(gcj),
            39.92133699351022,
            116.41036949371029,
            1e-9,
        );
    }

    #[test]
    fn gcj02_leaves_points_outside_china_unchanged() {
        for (lat, lon) in [(48.8584, 2.2945), (-33.8568, 151.2153), (40.7128, -74.006)] {
            let p = LatLon::new(lat, lon).unwrap();
            assert_eq!(p.wgs84_to(Crs::Gcj02), p);
            assert_eq!(p.wgs84_to(Crs::Wgs84), p);
        }
    }

    #[test]
    fn mixing_systems_costs_hundreds_of_metres_and_forward_conversion_removes_it() {
        let wgs = LatLon::new(31.1774276, 121.5272106).unwrap();
        let gcj_site = SitePoint::new(31.17530398, 121.53154186, Crs::Gcj02, 300.0).unwrap();
        let naive = wgs.distance_m(gcj_site.point);
        assert!(naive > 400.0 && naive < 600.0, "naive offset {naive}");
        assert!(gcj_site.distance_from_wgs84_m(wgs) < 0.01);
    }

    #[test]
    fn geodesic_distance_is_right_at_city_scale() {
        // One degree of latitude at the equator is 110,574 m on WGS-84.
        let a = LatLon::new(0.0, 0.0).unwrap();
        let b = LatLon::new(1.0, 0.0).unwrap();
        assert!((a.distance_m(b) - 110_574.4).abs() < 1.0);
    }

    #[test]
    fn points_and_sites_deserialize_only_when_valid() {
        let ok: SitePoint = serde_json::from_str(
            r#"{"point":{"lat":31.2,"lon":121.5},"crs":"gcj02","radius_m":300}"#,
        )
        .unwrap();
        assert_eq!(ok.crs, Crs::Gcj02);
        assert!(serde_json::from_str::<LatLon>(r#"{"lat":213,"lon":1}"#).is_err());
    }

    #[test]
    fn site_radius_is_bounded() {
        assert_eq!(
            SitePoint::new(30.0, 120.0, Crs::Wgs84, 5.0),
            Err(InvalidSite::Radius)
        );
        assert!(SitePoint::new(30.0, 120.0, Crs::Gcj02, 300.0).is_ok());
    }
}
