//! `fieldproof evidence inspect`, run as the real binary on real-device photos.

use serde_json::Value;
use std::process::{Command, Output};

const IPHONE: &str = "fixtures/corpus/drewnoakes__jpg__Apple_iPhone_4.jpg";

fn fieldproof(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fieldproof"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run fieldproof")
}

fn report(args: &[&str]) -> Value {
    let out = fieldproof(args);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn check<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["code"] == code))
        .unwrap_or_else(|| panic!("no {code} check in {report}"))
}

#[test]
fn inspect_prints_facts_checks_and_verdict_for_a_real_photo() {
    let r = report(&[
        "evidence",
        "inspect",
        IPHONE,
        "--site=41.853,12.4888",
        "--radius",
        "300",
    ]);
    assert_eq!(r["format"], "jpeg");
    let facts = &r["facts"];
    assert_eq!(facts["local_datetime"], "2011-01-13T14:33:39");
    assert!((facts["gps"]["lat"].as_f64().unwrap() - 41.853).abs() < 1e-6);
    assert!((facts["gps"]["lon"].as_f64().unwrap() - 12.488833).abs() < 1e-5);
    assert_eq!(facts["make"], "Apple");
    assert_eq!(facts["model"], "iPhone 4");
    assert_eq!(facts["width"], 1296);
    assert_eq!(check(&r, "outside_site")["outcome"], "pass");
    assert!(["passed", "needs_review", "rejected"].contains(&r["verdict"].as_str().unwrap()));
}

#[test]
fn inspect_accepts_southern_and_western_sites_and_reports_the_distance() {
    let r = report(&["evidence", "inspect", IPHONE, "--site=-33.9,151.2"]);
    let outside = check(&r, "outside_site");
    assert_eq!(outside["outcome"], "fail");
    assert!(outside["detail"]["distance_m"].as_f64().unwrap() > 10_000_000.0);
    assert_eq!(outside["detail"]["radius_m"], 300.0);
    assert_eq!(r["verdict"], "rejected");
}

#[test]
fn inspect_judges_capture_time_against_the_visit_window() {
    let r = report(&[
        "evidence",
        "inspect",
        IPHONE,
        "--window-start",
        "2024-06-01T01:00:00Z",
        "--window-end",
        "2024-06-01T05:00:00Z",
    ]);
    assert_eq!(check(&r, "captured_before_window")["outcome"], "fail");
}

#[test]
fn a_file_that_cannot_be_read_still_gets_a_report() {
    let r = report(&["evidence", "inspect", "fixtures/no-such-file.jpg"]);
    assert_eq!(r["format"], "unknown");
    assert_eq!(r["facts"]["gps"], Value::Null);
    assert_eq!(r["verdict"], "rejected");
}

#[test]
fn only_usage_errors_exit_non_zero() {
    assert!(
        !fieldproof(&["evidence", "inspect", IPHONE, "--site", "north"])
            .status
            .success()
    );
    assert!(
        !fieldproof(&["evidence", "inspect", IPHONE, "--site=213,10"])
            .status
            .success()
    );
    assert!(
        !fieldproof(&["evidence", "inspect", IPHONE, "--crs", "utm"])
            .status
            .success()
    );
    assert!(!fieldproof(&["evidence", "inspect"]).status.success());
}

#[test]
fn time_reports_per_photo_verification_on_one_or_more_threads() {
    const OTHER: &str = "fixtures/corpus/drewnoakes__jpg__HTC_Desire.jpg";
    let one = report(&["evidence", "time", IPHONE, "--runs", "3"]);
    assert_eq!(one["photos"], 1);
    assert_eq!(one["runs"], 3);
    assert_eq!(one["threads"], 1);
    assert!(one["median_ms"].as_f64().unwrap() > 0.0);
    assert!(one["photos_per_second"].as_f64().unwrap() > 0.0);
    assert!(one["cpu_ms_per_photo"].is_number(), "{one}");
    let two = report(&[
        "evidence",
        "time",
        IPHONE,
        OTHER,
        "--runs",
        "4",
        "--threads",
        "2",
    ]);
    assert_eq!(two["photos"], 2);
    assert_eq!(two["threads"], 2);
    assert_eq!(two["runs"], 4);
    assert!(two["photos_per_second"].as_f64().unwrap() > 0.0);
    // A file it cannot read, or no runs, is a usage error.
    assert_eq!(
        fieldproof(&["evidence", "time", "fixtures/no-such-file.jpg"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        fieldproof(&["evidence", "time", IPHONE, "--runs", "0"])
            .status
            .code(),
        Some(2)
    );
}
