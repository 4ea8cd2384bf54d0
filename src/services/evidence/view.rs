//! How evidence is shown to clients: the verdict, every check with its code, numbers and
//! messages in both languages. The first response to an upload is stored and replayed as is.

use crate::db::entities::evidence;
use fieldproof_domain::evidence::Check;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckView {
    pub code: String,
    /// pass | warn | fail
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub message: String,
    pub message_zh: String,
}

pub fn check_views(checks: &[Check]) -> Vec<CheckView> {
    checks
        .iter()
        .map(|c| {
            let raw = serde_json::to_value(c).unwrap_or(Value::Null);
            let message = c.message();
            CheckView {
                code: raw
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                outcome: raw
                    .get("outcome")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                detail: raw.get("detail").cloned().unwrap_or(Value::Null),
                message: message.en,
                message_zh: message.zh,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceView {
    pub id: String,
    pub capture_id: String,
    pub deal_id: String,
    pub node: String,
    /// photo | document
    pub kind: String,
    pub format: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub tags: Vec<String>,
    /// passed | needs_review | rejected
    pub verdict: String,
    pub rule_set_version: String,
    pub captured_at: Option<String>,
    /// gps | offset | assumed_zone | manifest
    pub captured_at_source: Option<String>,
    pub received_at: String,
    pub checks: Vec<CheckView>,
    /// none | pending | approved | rejected (a supervisor's decision)
    pub review_state: String,
    pub review_reason: Option<String>,
    /// The deal's current node right after this upload was processed.
    pub deal_current_node: Option<String>,
}

/// The stored first response, with the review fields brought up to date.
pub fn current_view(row: &evidence::Model) -> Value {
    let mut view = row.response.clone();
    if let Some(obj) = view.as_object_mut() {
        obj.insert("review_state".into(), Value::from(row.review_state.clone()));
        obj.insert(
            "review_reason".into(),
            row.review_reason
                .clone()
                .map(Value::from)
                .unwrap_or(Value::Null),
        );
    }
    view
}
