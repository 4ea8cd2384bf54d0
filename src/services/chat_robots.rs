//! Team chat robots: the request bodies and signatures of WeCom (企业微信群机器人), DingTalk
//! (钉钉自定义机器人) and Feishu/Lark (飞书自定义机器人), as pure functions of the message, the
//! webhook's settings and the clock. The delivery worker only sends what these build.
//!
//! Every message is bilingual, Chinese first: the teams that read these robots work in Chinese;
//! English follows for everyone else. See `docs/notifications.md` for the wire shapes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

/// Which vendor's robot a webhook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    WeCom,
    DingTalk,
    Feishu,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::WeCom => "wecom",
            Flavor::DingTalk => "dingtalk",
            Flavor::Feishu => "feishu",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown webhook flavor {0:?}: expected wecom, dingtalk or feishu")]
pub struct UnknownFlavor(pub String);

impl std::str::FromStr for Flavor {
    type Err = UnknownFlavor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wecom" => Ok(Flavor::WeCom),
            "dingtalk" => Ok(Flavor::DingTalk),
            "feishu" => Ok(Flavor::Feishu),
            other => Err(UnknownFlavor(other.to_owned())),
        }
    }
}

/// What a robot says: the notice's texts and link, as queued in the outbox payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobotMessage {
    pub kind: String,
    pub title_en: String,
    pub title_zh: String,
    pub body_en: String,
    pub body_zh: String,
    /// A path such as `/api/v1/deals/{id}`, or an absolute URL.
    pub link: Option<String>,
}

/// A request ready to send: where, and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotRequest {
    pub url: String,
    pub body: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("webhook URL is not a valid http(s) URL")]
    BadUrl,
    #[error("signing key rejected: {0}")]
    Key(#[from] hmac::digest::InvalidLength),
}

/// WeCom's documented byte limits: markdown content 4096, text content 2048.
const WECOM_MARKDOWN_MAX_BYTES: usize = 4096;
/// DingTalk and Feishu accept ~20 KB bodies; stay well inside.
const OTHER_MAX_BYTES: usize = 8000;

/// Build the request for one robot. `public_base_url` turns a relative link into one a chat
/// client can open; without it the path is shown as text.
pub fn build_request(
    flavor: Flavor,
    webhook_url: &str,
    secret: Option<&str>,
    message: &RobotMessage,
    public_base_url: Option<&str>,
    now: OffsetDateTime,
) -> Result<RobotRequest, BuildError> {
    let mut url = reqwest::Url::parse(webhook_url).map_err(|_| BuildError::BadUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BuildError::BadUrl);
    }
    let link = absolute_link(message.link.as_deref(), public_base_url);
    let body = match flavor {
        Flavor::WeCom => json!({
            "msgtype": "markdown",
            "markdown": { "content": truncate_bytes(&markdown(message, link.as_ref()), WECOM_MARKDOWN_MAX_BYTES) },
        }),
        Flavor::DingTalk => {
            if let Some(secret) = secret {
                let timestamp_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
                let sign = dingtalk_sign(secret, timestamp_ms)?;
                // `append_pair` form-encodes, which is exactly the urlEncode DingTalk asks for
                // (`+`, `/`, `=` of the base64 become %2B, %2F, %3D).
                url.query_pairs_mut()
                    .append_pair("timestamp", &timestamp_ms.to_string())
                    .append_pair("sign", &sign);
            }
            json!({
                "msgtype": "markdown",
                "markdown": {
                    "title": message.title_zh,
                    "text": truncate_bytes(&markdown(message, link.as_ref()), OTHER_MAX_BYTES),
                },
            })
        }
        Flavor::Feishu => {
            let mut body = json!({
                "msg_type": "post",
                "content": { "post": { "zh_cn": feishu_post(message, link.as_ref()) } },
            });
            if let Some(secret) = secret {
                let timestamp = now.unix_timestamp();
                body["timestamp"] = json!(timestamp.to_string());
                body["sign"] = json!(feishu_sign(secret, timestamp)?);
            }
            body
        }
    };
    Ok(RobotRequest {
        url: url.into(),
        body,
    })
}

/// DingTalk: base64(HmacSHA256(key = secret, message = "{timestamp_ms}\n{secret}")); the caller
/// URL-encodes it into the `sign` query parameter next to `timestamp`.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> Result<String, BuildError> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())?;
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    Ok(BASE64.encode(mac.finalize().into_bytes()))
}

/// Feishu: base64(HmacSHA256(key = "{timestamp_s}\n{secret}", message = empty)), sent in the
/// body as `sign` next to `timestamp` (seconds, as a string).
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> Result<String, BuildError> {
    let mac = HmacSha256::new_from_slice(format!("{timestamp_s}\n{secret}").as_bytes())?;
    Ok(BASE64.encode(mac.finalize().into_bytes()))
}

/// Whether the vendor accepted the message. All three answer HTTP 200 even for refusals
/// (bad signature, rate limit) and put the verdict in the body: `errcode` (WeCom, DingTalk),
/// `code` or the older `StatusCode` (Feishu); non-zero is a refusal. A body that is not JSON
/// (a custom receiver) counts as accepted when the status is 2xx.
pub fn accepted(status: u16, body: &str) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    let Ok(parsed) = serde_json::from_str::<Value>(body) else {
        return Ok(());
    };
    for (code_key, msg_key) in [
        ("errcode", "errmsg"),
        ("code", "msg"),
        ("StatusCode", "StatusMessage"),
    ] {
        if let Some(code) = parsed.get(code_key).and_then(Value::as_i64)
            && code != 0
        {
            let msg = parsed.get(msg_key).and_then(Value::as_str).unwrap_or("");
            return Err(truncate_bytes(
                &format!("robot refused: {code_key}={code} {msg}"),
                300,
            ));
        }
    }
    Ok(())
}

/// The vendors' "slow down" answers: WeCom `errcode` 45009 and DingTalk 130101 (both allow a
/// robot 20 messages a minute), Feishu `code` 9499 and 11232 (5 a second, 100 a minute), and
/// HTTP 429 from anyone. The message is fine; it only has to wait.
const THROTTLE_CODES: [i64; 4] = [45009, 130101, 9499, 11232];

/// Whether a refusal only asks the sender to slow down (see [`THROTTLE_CODES`]).
pub fn throttled(status: u16, body: &str) -> bool {
    if status == 429 {
        return true;
    }
    let Ok(parsed) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    ["errcode", "code", "StatusCode"].iter().any(|key| {
        parsed
            .get(*key)
            .and_then(Value::as_i64)
            .is_some_and(|code| THROTTLE_CODES.contains(&code))
    })
}

fn absolute_link(link: Option<&str>, base: Option<&str>) -> Option<Link> {
    let link = link?;
    if link.starts_with("http://") || link.starts_with("https://") {
        return Some(Link::Url(link.to_owned()));
    }
    match base {
        Some(base) => Some(Link::Url(format!("{}{}", base.trim_end_matches('/'), link))),
        None => Some(Link::Path(link.to_owned())),
    }
}

enum Link {
    /// Clickable.
    Url(String),
    /// Relative, with no public base URL configured: shown as text.
    Path(String),
}

/// Shared markdown for WeCom and DingTalk (both take `**bold**`, `[text](url)` and newlines).
fn markdown(m: &RobotMessage, link: Option<&Link>) -> String {
    let mut out = format!(
        "**{}**\n{}\n\n**{}**\n{}",
        m.title_zh, m.body_zh, m.title_en, m.body_en
    );
    match link {
        Some(Link::Url(url)) => out.push_str(&format!("\n\n[查看 / Open]({url})")),
        Some(Link::Path(path)) => out.push_str(&format!("\n\n链接 / Link: {path}")),
        None => {}
    }
    out
}

fn feishu_post(m: &RobotMessage, link: Option<&Link>) -> Value {
    let text = |t: &str| json!({ "tag": "text", "text": truncate_bytes(t, OTHER_MAX_BYTES / 4) });
    let mut content = vec![
        json!([text(&m.body_zh)]),
        json!([text(&format!("{}: {}", m.title_en, m.body_en))]),
    ];
    match link {
        Some(Link::Url(url)) => {
            content.push(json!([{ "tag": "a", "text": "查看 / Open", "href": url }]));
        }
        Some(Link::Path(path)) => content.push(json!([text(&format!("链接 / Link: {path}"))])),
        None => {}
    }
    json!({ "title": m.title_zh, "content": content })
}

/// Cut to at most `max` bytes on a character boundary (vendors count UTF-8 bytes).
fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn message() -> RobotMessage {
        RobotMessage {
            kind: "stall_alarm".into(),
            title_en: "Deal stalled".into(),
            title_zh: "商机停滞".into(),
            body_en: "Site survey open 80 h".into(),
            body_zh: "现场勘测已停留 80 小时".into(),
            link: Some("/api/v1/deals/d1".into()),
        }
    }

    // Vectors computed independently with Python's hmac module and `openssl dgst -hmac`,
    // following each vendor's published signing recipe.
    #[test]
    fn dingtalk_signature_matches_the_documented_recipe() {
        assert_eq!(
            dingtalk_sign("this is secret", 1_577_262_236_757).unwrap(),
            "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="
        );
        assert_eq!(
            dingtalk_sign("SECa1b2c3d4e5f6", 1_700_000_000_000).unwrap(),
            "oJQpdCHfADjAvXpklWV1PzUEobyTlyhOkQWGlZgxWPE="
        );
    }

    #[test]
    fn feishu_signature_matches_the_documented_recipe() {
        assert_eq!(
            feishu_sign("feishu-secret-123", 1_700_000_000).unwrap(),
            "wAKC6MXbPqtffyEjIIFCeFvDIz3W7u9+zZzoj6JvcJE="
        );
    }

    #[test]
    fn dingtalk_signs_in_the_query_url_encoded() {
        let at = datetime!(2019-12-25 08:23:56.757 UTC);
        let req = build_request(
            Flavor::DingTalk,
            "https://oapi.dingtalk.com/robot/send?access_token=abc",
            Some("this is secret"),
            &message(),
            None,
            at,
        )
        .unwrap();
        assert_eq!(
            req.url,
            "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1577262236757\
             &sign=hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"
        );
        assert_eq!(req.body["msgtype"], "markdown");
        assert_eq!(req.body["markdown"]["title"], "商机停滞");
        let text = req.body["markdown"]["text"].as_str().unwrap();
        assert!(text.find("现场勘测").unwrap() < text.find("Site survey").unwrap());
    }

    #[test]
    fn dingtalk_without_secret_leaves_the_url_alone() {
        let req = build_request(
            Flavor::DingTalk,
            "https://oapi.dingtalk.com/robot/send?access_token=abc",
            None,
            &message(),
            None,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(
            req.url,
            "https://oapi.dingtalk.com/robot/send?access_token=abc"
        );
    }

    #[test]
    fn feishu_signs_in_the_body_with_seconds() {
        let req = build_request(
            Flavor::Feishu,
            "https://open.feishu.cn/open-apis/bot/v2/hook/xyz",
            Some("feishu-secret-123"),
            &message(),
            Some("https://crm.example.cn/"),
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        )
        .unwrap();
        assert_eq!(req.url, "https://open.feishu.cn/open-apis/bot/v2/hook/xyz");
        assert_eq!(req.body["timestamp"], "1700000000");
        assert_eq!(
            req.body["sign"],
            "wAKC6MXbPqtffyEjIIFCeFvDIz3W7u9+zZzoj6JvcJE="
        );
        assert_eq!(req.body["msg_type"], "post");
        let post = &req.body["content"]["post"]["zh_cn"];
        assert_eq!(post["title"], "商机停滞");
        assert_eq!(post["content"][0][0]["tag"], "text");
        assert_eq!(post["content"][0][0]["text"], "现场勘测已停留 80 小时");
        assert_eq!(post["content"][2][0]["tag"], "a");
        assert_eq!(
            post["content"][2][0]["href"],
            "https://crm.example.cn/api/v1/deals/d1"
        );
    }

    #[test]
    fn wecom_sends_markdown_chinese_first() {
        let req = build_request(
            Flavor::WeCom,
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            None,
            &message(),
            Some("https://crm.example.cn"),
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(
            req.body,
            json!({
                "msgtype": "markdown",
                "markdown": { "content": "**商机停滞**\n现场勘测已停留 80 小时\n\n**Deal stalled**\nSite survey open 80 h\n\n[查看 / Open](https://crm.example.cn/api/v1/deals/d1)" }
            })
        );
    }

    #[test]
    fn wecom_content_stays_inside_its_byte_limit() {
        let mut long = message();
        long.body_zh = "长".repeat(3000);
        let req = build_request(
            Flavor::WeCom,
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            None,
            &long,
            None,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        let content = req.body["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= WECOM_MARKDOWN_MAX_BYTES);
        assert!(content.ends_with('…'));
    }

    #[test]
    fn non_http_urls_are_refused() {
        for url in ["ftp://x/y", "file:///etc/passwd", "not a url"] {
            assert!(matches!(
                build_request(
                    Flavor::WeCom,
                    url,
                    None,
                    &message(),
                    None,
                    OffsetDateTime::UNIX_EPOCH
                ),
                Err(BuildError::BadUrl)
            ));
        }
    }

    #[test]
    fn vendor_refusals_in_a_200_body_are_failures() {
        assert!(accepted(200, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert!(accepted(200, r#"{"code":0,"msg":"success","data":{}}"#).is_ok());
        assert!(accepted(200, r#"{"StatusCode":0,"StatusMessage":"success"}"#).is_ok());
        assert!(accepted(204, "").is_ok());
        let refused = accepted(200, r#"{"errcode":310000,"errmsg":"sign not match"}"#);
        assert!(refused.unwrap_err().contains("310000"));
        assert!(accepted(200, r#"{"code":19021,"msg":"sign match fail"}"#).is_err());
        assert_eq!(accepted(500, "oops").unwrap_err(), "HTTP 500");
    }

    #[test]
    fn a_rate_limit_answer_is_told_apart_from_other_refusals() {
        assert!(throttled(
            200,
            r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#
        ));
        assert!(throttled(
            200,
            r#"{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}"#
        ));
        assert!(throttled(200, r#"{"code":9499,"msg":"too many request"}"#));
        assert!(throttled(429, ""));
        assert!(!throttled(
            200,
            r#"{"errcode":310000,"errmsg":"sign not match"}"#
        ));
        assert!(!throttled(500, "oops"));
        assert!(!throttled(200, r#"{"errcode":0,"errmsg":"ok"}"#));
    }
}
