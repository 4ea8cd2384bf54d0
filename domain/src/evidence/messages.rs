//! The one table of check messages: English and Simplified Chinese (for reps), rendered with
//! the check's numbers. `docs/check-codes.md` documents the same table; a test keeps them in
//! step.

use super::checks::{Check, CheckCode, Outcome, Witness};
use serde::{Deserialize, Serialize};

/// A check explained in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub en: String,
    pub zh: String,
}

fn m(en: impl Into<String>, zh: impl Into<String>) -> Message {
    Message {
        en: en.into(),
        zh: zh.into(),
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| format!("{}", v.round() as i64))
}

fn text(v: Option<&str>) -> String {
    v.unwrap_or("?").to_owned()
}

/// Renders a check's message. Passing checks get a short confirmation.
pub fn render(check: &Check) -> Message {
    let d = &check.detail;
    if check.outcome == Outcome::Pass {
        return match (check.code, d.witness) {
            (CheckCode::GpsMissing | CheckCode::CaptureTimeMissing, Some(Witness::Manifest)) => m(
                format!("{}: covered by the capture manifest", check.code.as_str()),
                format!("{}：由拍摄清单补足", check.code.as_str()),
            ),
            (CheckCode::NoPixels, _) => m(
                "No pixels to compare (HEIC or not an image); duplicate check skipped",
                "无法读取图像像素（HEIC 或非图片），已跳过重复照片检查",
            ),
            _ => m(
                format!("{}: passed", check.code.as_str()),
                format!("{}：通过", check.code.as_str()),
            ),
        };
    }
    let minutes = d.minutes.unwrap_or(0);
    let other = text(d.other_evidence_id.as_deref());
    match check.code {
        CheckCode::UnsupportedFormat => m(
            format!(
                "Not a photo format we accept ({})",
                d.format.map_or("unknown", |f| f.as_str())
            ),
            format!(
                "不支持的文件格式（{}），请上传 JPEG/HEIC/PNG/WebP 照片",
                d.format.map_or("unknown", |f| f.as_str())
            ),
        ),
        CheckCode::GpsMissing => m(
            "The photo has no GPS location and no capture manifest fix",
            "照片没有 GPS 位置信息，也没有拍摄时的定位记录",
        ),
        CheckCode::GpsInvalid => m(
            format!(
                "The photo's GPS location is invalid ({})",
                text(d.reason.as_deref())
            ),
            format!("照片的 GPS 位置无效（{}）", text(d.reason.as_deref())),
        ),
        CheckCode::ManifestMissing => m(
            "This step needs the app's capture record (location at the shutter); none was sent",
            "此环节需要 App 拍摄时的定位记录，但未收到",
        ),
        CheckCode::OutsideSite => m(
            format!(
                "Photo taken {} m from the customer site (allowed {} m)",
                num(d.distance_m),
                num(d.radius_m)
            ),
            format!(
                "照片拍摄地点距离客户现场 {} 米（允许 {} 米）",
                num(d.distance_m),
                num(d.radius_m)
            ),
        ),
        CheckCode::CoarseAccuracy => m(
            format!(
                "Location accuracy is only {} m (limit {} m)",
                num(d.accuracy_m),
                num(d.max_accuracy_m)
            ),
            format!(
                "定位精度仅 {} 米（要求 {} 米以内）",
                num(d.accuracy_m),
                num(d.max_accuracy_m)
            ),
        ),
        CheckCode::DeviceFixDisagrees if d.reason.as_deref() == Some("time") => m(
            format!("The photo's time and the phone's clock differ by {minutes} min"),
            format!("照片时间与手机拍摄记录相差 {minutes} 分钟"),
        ),
        CheckCode::DeviceFixDisagrees => m(
            format!(
                "The photo's GPS and the phone's own fix are {} m apart (allowed {} m)",
                num(d.distance_m),
                num(d.radius_m)
            ),
            format!(
                "照片 GPS 与手机定位相距 {} 米（允许 {} 米）",
                num(d.distance_m),
                num(d.radius_m)
            ),
        ),
        CheckCode::MockLocation => m(
            "The phone reported a mock (simulated) location",
            "手机使用了模拟定位",
        ),
        CheckCode::ImpossibleTravel => m(
            format!(
                "{} m from your capture {other} implies {} km/h (limit {} km/h)",
                num(d.distance_m),
                num(d.speed_kmh),
                num(d.max_speed_kmh)
            ),
            format!(
                "与您的另一张照片 {other} 相距 {} 米，推算速度 {} 公里/小时（上限 {} 公里/小时）",
                num(d.distance_m),
                num(d.speed_kmh),
                num(d.max_speed_kmh)
            ),
        ),
        CheckCode::CaptureTimeMissing => m(
            "The photo has no capture time and no capture manifest time",
            "照片没有拍摄时间，也没有拍摄时的时间记录",
        ),
        CheckCode::CaptureTimeInvalid => m(
            format!(
                "The photo's capture time is not a real date ({})",
                text(d.reason.as_deref())
            ),
            format!("照片的拍摄时间无效（{}）", text(d.reason.as_deref())),
        ),
        CheckCode::CapturedBeforeWindow => m(
            format!("Taken {minutes} min before the visit window opened"),
            format!("照片拍摄于拜访时间段开始前 {minutes} 分钟"),
        ),
        CheckCode::CapturedAfterWindow => m(
            format!("Taken {minutes} min after the visit window closed"),
            format!("照片拍摄于拜访时间段结束后 {minutes} 分钟"),
        ),
        CheckCode::CapturedInFuture => m(
            format!("Capture time is {minutes} min after the upload was received"),
            format!("拍摄时间晚于上传接收时间 {minutes} 分钟，时间不可信"),
        ),
        CheckCode::StaleCapture => m(
            format!("Uploaded {} h after it was taken", minutes / 60),
            format!("照片拍摄 {} 小时后才上传", minutes / 60),
        ),
        CheckCode::EditedBySoftware => m(
            format!(
                "The photo was saved by editing software ({})",
                text(d.software.as_deref())
            ),
            format!("照片经过编辑软件处理（{}）", text(d.software.as_deref())),
        ),
        CheckCode::DuplicateExact => m(
            format!("This exact file was already submitted as evidence {other}"),
            format!("该文件已作为证据 {other} 提交过"),
        ),
        CheckCode::DuplicateNear => m(
            format!(
                "Looks like evidence {other} (difference {} of 64, threshold {})",
                d.hamming_distance.unwrap_or(0),
                d.max_hamming_distance.unwrap_or(0)
            ),
            format!(
                "与已提交的照片 {other} 高度相似（差异 {}/64，阈值 {}）",
                d.hamming_distance.unwrap_or(0),
                d.max_hamming_distance.unwrap_or(0)
            ),
        ),
        CheckCode::NoPixels => m(
            "No pixels to compare; duplicate check skipped",
            "无法读取图像像素，已跳过重复照片检查",
        ),
        CheckCode::PixelsUnreadable => m(
            format!(
                "The image could not be decoded ({})",
                text(d.reason.as_deref())
            ),
            format!(
                "图片无法解码（{}），文件可能已损坏",
                text(d.reason.as_deref())
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::checks::CheckDetail;

    #[test]
    fn outside_site_reads_naturally_in_both_languages() {
        let check = Check {
            code: CheckCode::OutsideSite,
            outcome: Outcome::Fail,
            detail: CheckDetail {
                distance_m: Some(420.3),
                radius_m: Some(300.0),
                ..CheckDetail::default()
            },
        };
        let msg = render(&check);
        assert_eq!(msg.zh, "照片拍摄地点距离客户现场 420 米（允许 300 米）");
        assert_eq!(
            msg.en,
            "Photo taken 420 m from the customer site (allowed 300 m)"
        );
    }

    #[test]
    fn every_code_has_a_non_pass_message_and_is_documented() {
        let docs = include_str!("../../../docs/check-codes.md");
        for code in CheckCode::ALL {
            for outcome in [Outcome::Warn, Outcome::Fail] {
                let msg = render(&Check {
                    code,
                    outcome,
                    detail: CheckDetail::default(),
                });
                assert!(!msg.en.is_empty() && !msg.zh.is_empty());
            }
            assert!(
                docs.contains(&format!("`{}`", code.as_str())),
                "{} undocumented",
                code.as_str()
            );
        }
    }
}
