//! Extraction agrees with ExifTool on every real-device file in `fixtures/corpus/`
//! (`truth.exiftool.json`, ExifTool 12.57 with `-n`).

use fieldproof_domain::evidence::{
    CaptureTime, ContentHash, Format, GpsFact, GpsInvalid, LocalTime, extract_facts,
    extract_facts_hashed,
};
use serde_json::Value;
use std::path::PathBuf;
use time::macros::offset;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/corpus")
}

fn truth() -> Vec<Value> {
    let text = std::fs::read_to_string(corpus_dir().join("truth.exiftool.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// ExifTool prints numeric-looking strings as numbers (`Software: 4.1`, `SubSec: 18`).
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What we decided for the files whose GPS ExifTool cannot turn into a place.
fn expected_invalid_gps(file: &str) -> Option<GpsInvalid> {
    match file {
        // GPS IFD with refs but 0/0 rationals for every coordinate part (ExifTool: "").
        "drewnoakes__jpg__Nikon_D5000.jpg" => Some(GpsInvalid::ZeroDenominator),
        "immich__metadata__gps-position__empty_gps.jpg" => Some(GpsInvalid::ZeroDenominator),
        // A "fix" of exactly 0,0 written by a phone that had none.
        "drewnoakes__jpg__Samsung_GT-I9000__Galaxy_S_.jpg" => Some(GpsInvalid::NullIsland),
        _ => None,
    }
}

#[test]
fn every_corpus_file_agrees_with_exiftool() {
    let entries = truth();
    assert_eq!(entries.len(), 15, "the corpus has 15 files");
    for t in &entries {
        let file = t["SourceFile"].as_str().unwrap();
        let bytes = std::fs::read(corpus_dir().join(file)).unwrap();
        let facts = extract_facts(&bytes);
        let ctx = |what: &str| format!("{file}: {what}");

        let want_format = match t["File:FileType"].as_str().unwrap() {
            "JPEG" => Format::Jpeg,
            "HEIC" | "HEIF" => Format::Heic,
            "Extended WEBP" | "WEBP" => Format::Webp,
            other => panic!("unexpected type {other}"),
        };
        assert_eq!(facts.format, want_format, "{}", ctx("format"));

        // GPS within 1e-6 degrees of the signed Composite values.
        match (expected_invalid_gps(file), &t["Composite:GPSLatitude"]) {
            (Some(reason), _) => {
                assert_eq!(facts.gps, GpsFact::Invalid { reason }, "{}", ctx("gps"))
            }
            (None, Value::Number(lat)) => {
                let fix = facts
                    .gps
                    .valid()
                    .unwrap_or_else(|| panic!("{}", ctx("gps valid")));
                let lon = t["Composite:GPSLongitude"].as_f64().unwrap();
                assert!(
                    (fix.point.lat() - lat.as_f64().unwrap()).abs() < 1e-6,
                    "{}",
                    ctx("lat")
                );
                assert!((fix.point.lon() - lon).abs() < 1e-6, "{}", ctx("lon"));
                match t.get("Composite:GPSAltitude").and_then(Value::as_f64) {
                    Some(alt) => assert!((fix.alt_m.unwrap() - alt).abs() < 1e-6, "{}", ctx("alt")),
                    None => assert_eq!(fix.alt_m, None, "{}", ctx("alt")),
                }
                let acc = t.get("GPS:GPSHPositioningError").and_then(Value::as_f64);
                assert_eq!(fix.accuracy_m, acc, "{}", ctx("accuracy"));
            }
            (None, Value::Null) => assert_eq!(facts.gps, GpsFact::Missing, "{}", ctx("gps")),
            (None, other) => panic!("{}: undecided GPS truth {other}", file),
        }

        // Same local DateTimeOriginal, offset and sub-seconds.
        match t.get("ExifIFD:DateTimeOriginal").and_then(Value::as_str) {
            Some(dto) => match &facts.capture.local {
                LocalTime::Present { datetime, .. } => {
                    let fmt = time::macros::format_description!(
                        "[year]:[month]:[day] [hour]:[minute]:[second]"
                    );
                    assert_eq!(datetime.format(fmt).unwrap(), dto, "{}", ctx("local time"));
                }
                other => panic!("{}: {other:?}", ctx("local time")),
            },
            None => assert_eq!(facts.capture.local, LocalTime::Missing, "{}", ctx("local")),
        }
        let want_offset = t
            .get("ExifIFD:OffsetTimeOriginal")
            .and_then(Value::as_str)
            .map(|s| s.to_owned());
        assert_eq!(
            facts.capture.offset.map(|o| {
                let (h, m, _) = o.as_hms();
                format!(
                    "{}{:02}:{:02}",
                    if o.is_negative() { '-' } else { '+' },
                    h.abs(),
                    m.abs()
                )
            }),
            want_offset,
            "{}",
            ctx("offset")
        );
        let want_subsec = t
            .get("ExifIFD:SubSecTimeOriginal")
            .and_then(as_text)
            .map(|s| {
                let padded = format!("{s:0<3}");
                padded[..3].parse::<u16>().unwrap()
            });
        assert_eq!(facts.capture.subsec_ms, want_subsec, "{}", ctx("subsec"));

        // GPS UTC time only when both the date and the time stamps exist.
        let gps_date = t.get("GPS:GPSDateStamp").and_then(Value::as_str);
        let gps_time = t.get("GPS:GPSTimeStamp").and_then(Value::as_str);
        match (gps_date, gps_time) {
            (Some(d), Some(tm)) => {
                let got = facts
                    .capture
                    .gps_utc
                    .unwrap_or_else(|| panic!("{}", ctx("gps utc")));
                let fmt = time::macros::format_description!(
                    "[year]:[month]:[day] [hour]:[minute]:[second]"
                );
                assert_eq!(
                    got.format(fmt).unwrap(),
                    format!("{d} {}", &tm[..8]),
                    "{}",
                    ctx("gps utc")
                );
            }
            _ => assert_eq!(facts.capture.gps_utc, None, "{}", ctx("gps utc")),
        }

        for (key, got) in [
            ("IFD0:Make", &facts.make),
            ("IFD0:Model", &facts.model),
            ("IFD0:Software", &facts.software),
        ] {
            assert_eq!(got, &t.get(key).and_then(as_text), "{}", ctx(key));
        }
        let width = t
            .get("File:ImageWidth")
            .or(t.get("RIFF:ImageWidth"))
            .and_then(Value::as_u64);
        let height = t
            .get("File:ImageHeight")
            .or(t.get("RIFF:ImageHeight"))
            .and_then(Value::as_u64);
        assert_eq!(facts.width.map(u64::from), width, "{}", ctx("width"));
        assert_eq!(facts.height.map(u64::from), height, "{}", ctx("height"));
        let orientation = t.get("IFD0:Orientation").and_then(Value::as_u64);
        assert_eq!(
            facts.orientation.map(u64::from),
            orientation,
            "{}",
            ctx("orientation")
        );
    }
}

#[test]
fn capture_instants_resolve_from_the_best_source() {
    let read = |f: &str| extract_facts(&std::fs::read(corpus_dir().join(f)).unwrap());
    // GPS UTC wins over the local time (HTC: local 09:59:48 in Italy, GPS 07:59:48Z).
    let htc = read("drewnoakes__jpg__HTC_Desire.jpg");
    assert_eq!(
        htc.capture.resolve(offset!(+8)),
        CaptureTime::Resolved {
            at: time::macros::datetime!(2011-05-06 07:59:48 UTC),
            source: fieldproof_domain::evidence::CaptureSource::Gps
        }
    );
    // Local + OffsetTimeOriginal (iPhone 11 Pro HEIC, -04:00, .644 s).
    let iphone = read("drewnoakes__heic__IMG_2927.HEIC");
    assert_eq!(
        iphone.capture.resolve(offset!(+8)),
        CaptureTime::Resolved {
            at: time::macros::datetime!(2020-05-04 22:39:11.644 UTC),
            source: fieldproof_domain::evidence::CaptureSource::Offset
        }
    );
    // No offset, no GPS time: the site's zone is assumed and flagged.
    let falcon = read("immich__albums__nature__prairie_falcon.jpg");
    assert_eq!(
        falcon.capture.resolve(offset!(+8)),
        CaptureTime::Resolved {
            at: time::macros::datetime!(2022-03-31 03:31:56.180 UTC),
            source: fieldproof_domain::evidence::CaptureSource::AssumedZone
        }
    );
    // A GPS date without a GPS time is not a GPS instant.
    let dates = read("immich__metadata__dates__date-priority-test.jpg");
    assert_eq!(dates.capture.gps_utc, None);
    assert_eq!(
        read("immich__metadata__dates__gps-datetime.jpg")
            .capture
            .resolve(offset!(+8)),
        CaptureTime::Missing
    );
}

#[test]
fn facts_with_a_hash_known_from_streaming_are_the_same_facts() {
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let streamed: ContentHash = hex_of(&bytes).parse().unwrap();
        assert_eq!(
            extract_facts_hashed(&bytes, streamed),
            extract_facts(&bytes),
            "{}",
            path.display()
        );
    }
}

/// Hex SHA-256 as the server's receive step computes it while the upload streams in.
fn hex_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
