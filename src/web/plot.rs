//! A small self-drawn map of where a photo was taken: the customer site's circle, the photo's
//! EXIF point and the phone's own fix, with their distances. No tile server: the plot is plain
//! SVG in metres east/north of the site centre.
//!
//! Points are compared the way the rules compare them (`fieldproof_domain::geo`): each WGS-84
//! point is converted forward into the site's coordinate system before it is placed, and the
//! distances printed are the domain's geodesic distances.

use super::session::Lang;
use fieldproof_domain::geo::{LatLon, SitePoint};
use maud::{Markup, html};

/// A WGS-84 point with its reported accuracy.
#[derive(Debug, Clone, Copy)]
pub struct Fix {
    pub point: LatLon,
    pub accuracy_m: Option<f64>,
}

const SIZE: f64 = 240.0;
const HALF: f64 = SIZE / 2.0;

/// Metres east and north of `origin` (equirectangular; exact enough over a few kilometres).
fn offset_m(origin: LatLon, p: LatLon) -> (f64, f64) {
    let lat0 = origin.lat().to_radians();
    let east = (p.lon() - origin.lon()).to_radians() * 6_378_137.0 * lat0.cos();
    let north = (p.lat() - origin.lat()).to_radians() * 6_378_137.0;
    (east, north)
}

fn metres(lang: Lang, m: f64) -> String {
    if m >= 10_000.0 {
        format!("{:.0} {}", m / 1000.0, lang.t("公里", "km"))
    } else if m >= 1_000.0 {
        format!("{:.1} {}", m / 1000.0, lang.t("公里", "km"))
    } else {
        format!("{:.0} {}", m, lang.t("米", "m"))
    }
}

/// A round length for the scale bar, about a quarter of the plot.
fn scale_length(extent_m: f64) -> f64 {
    let target = extent_m / 2.0;
    let magnitude = 10f64.powf(target.log10().floor());
    [5.0, 2.0, 1.0]
        .iter()
        .map(|f| f * magnitude)
        .find(|len| *len <= target)
        .unwrap_or(magnitude)
}

/// The plot, or a short note when there is nothing to place.
pub fn plot(
    lang: Lang,
    site: Option<&SitePoint>,
    exif: Option<Fix>,
    device: Option<Fix>,
) -> Markup {
    let Some(site) = site else {
        return html! { p.muted { (lang.t("商机未指定客户现场，无法绘图。", "The deal names no customer site: nothing to plot.")) } };
    };
    // Forward into the site's system, then metres from its centre.
    let place = |fix: Fix| {
        let (x, y) = offset_m(site.point, fix.point.wgs84_to(site.crs));
        (x, y, site.distance_from_wgs84_m(fix.point), fix.accuracy_m)
    };
    let exif = exif.map(place);
    let device = device.map(place);
    let mut extent = site.radius_m * 1.25;
    for (x, y, _, _) in exif.iter().chain(device.iter()) {
        extent = extent.max(x.abs() * 1.15).max(y.abs() * 1.15);
    }
    extent = extent.max(50.0);
    let scale = (HALF - 12.0) / extent;
    let sx = |x: f64| HALF + x * scale;
    let sy = |y: f64| HALF - y * scale;
    let ring = |acc: Option<f64>| acc.map(|a| (a * scale).clamp(0.0, SIZE));
    let bar = scale_length(extent);
    let bar_px = bar * scale;
    html! {
        svg.plot viewBox="0 0 240 264" role="img" aria-label=(lang.t("位置示意图", "Location plot")) {
            rect x="0" y="0" width="240" height="240" fill="#fbfcfe" {}
            // The site: its circle and centre.
            circle cx=(HALF) cy=(HALF) r=(format!("{:.1}", site.radius_m * scale)) fill="#0b5cad" fill-opacity="0.08" stroke="#0b5cad" stroke-dasharray="4 3" {}
            path d=(format!("M{} {}h10M{} {}v10", HALF - 5.0, HALF, HALF, HALF - 5.0)) stroke="#0b5cad" stroke-width="1.5" {}
            text x="4" y="12" { "N ↑" }
            @if let Some((x, y, d, acc)) = exif {
                line x1=(HALF) y1=(HALF) x2=(format!("{:.1}", sx(x))) y2=(format!("{:.1}", sy(y))) stroke="#c53030" stroke-width="1" stroke-dasharray="2 2" {}
                @if let Some(r) = ring(acc) {
                    circle cx=(format!("{:.1}", sx(x))) cy=(format!("{:.1}", sy(y))) r=(format!("{r:.1}")) fill="#c53030" fill-opacity="0.08" stroke="#c53030" stroke-opacity="0.4" {}
                }
                circle.exif cx=(format!("{:.1}", sx(x))) cy=(format!("{:.1}", sy(y))) r="5" fill="#c53030" stroke="#fff" stroke-width="1.5" {}
                text x=(format!("{:.1}", (sx(x) + 7.0).min(190.0))) y=(format!("{:.1}", (sy(y) - 6.0).max(24.0))) { (metres(lang, d)) }
            }
            @if let Some((x, y, d, acc)) = device {
                @if let Some(r) = ring(acc) {
                    circle cx=(format!("{:.1}", sx(x))) cy=(format!("{:.1}", sy(y))) r=(format!("{r:.1}")) fill="#b7791f" fill-opacity="0.08" stroke="#b7791f" stroke-opacity="0.4" {}
                }
                rect.fix x=(format!("{:.1}", sx(x) - 4.5)) y=(format!("{:.1}", sy(y) - 4.5)) width="9" height="9" transform=(format!("rotate(45 {:.1} {:.1})", sx(x), sy(y))) fill="#b7791f" stroke="#fff" stroke-width="1.5" {}
                text x=(format!("{:.1}", (sx(x) + 7.0).min(190.0))) y=(format!("{:.1}", (sy(y) + 14.0).min(236.0))) { (metres(lang, d)) }
            }
            // Scale bar.
            path d=(format!("M{} 232h{:.1}", 236.0 - bar_px, bar_px)) stroke="#3a4453" stroke-width="2" {}
            text x=(format!("{:.1}", 236.0 - bar_px)) y="227" { (metres(lang, bar)) }
            // Legend.
            circle cx="8" cy="253" r="4" fill="#c53030" {}
            text x="15" y="257" { (lang.t("照片 EXIF", "photo EXIF")) }
            rect x="84" y="249" width="8" height="8" transform="rotate(45 88 253)" fill="#b7791f" {}
            text x="97" y="257" { (lang.t("手机定位", "phone fix")) }
            circle cx="166" cy="253" r="4" fill="none" stroke="#0b5cad" stroke-dasharray="2 2" {}
            text x="173" y="257" { (lang.t("现场 ", "site ")) (metres(lang, site.radius_m)) }
            @if exif.is_none() && device.is_none() {
                text x="60" y="200" { (lang.t("照片没有位置信息", "The photo has no location")) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldproof_domain::geo::Crs;

    fn point(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).unwrap()
    }

    #[test]
    fn a_gcj02_site_and_a_wgs84_photo_of_the_same_place_plot_together() {
        let wgs = point(30.2281, 120.2986);
        let gcj = wgs.wgs84_to(Crs::Gcj02);
        let site = SitePoint::new(gcj.lat(), gcj.lon(), Crs::Gcj02, 300.0).unwrap();
        let svg = plot(
            Lang::Zh,
            Some(&site),
            Some(Fix {
                point: wgs,
                accuracy_m: Some(5.0),
            }),
            None,
        )
        .into_string();
        // Converted forward, the photo sits on the centre (0 m), not ~500 m off.
        assert!(svg.contains(">0 米<"), "{svg}");
        assert!(
            svg.contains("class=\"exif\" cx=\"120.0\" cy=\"120.0\""),
            "{svg}"
        );
    }

    #[test]
    fn a_far_photo_widens_the_plot_and_shows_its_distance() {
        let site = SitePoint::new(30.2281, 120.2986, Crs::Wgs84, 300.0).unwrap();
        let svg = plot(
            Lang::En,
            Some(&site),
            Some(Fix {
                point: point(30.2281 + 0.0045, 120.2986),
                accuracy_m: None,
            }),
            Some(Fix {
                point: point(30.2281, 120.2986),
                accuracy_m: Some(8.0),
            }),
        )
        .into_string();
        assert!(svg.contains(">499 m<") || svg.contains(">500 m<"), "{svg}");
        assert!(svg.contains("class=\"fix\""));
        assert!(svg.contains("site 300 m"));
    }

    #[test]
    fn scale_bars_are_round_numbers() {
        assert_eq!(scale_length(375.0), 100.0);
        assert_eq!(scale_length(600.0), 200.0);
        assert_eq!(scale_length(5_000.0), 2_000.0);
    }
}
