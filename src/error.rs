//! The one error catalogue of the API.
//!
//! Every error a client sees is `{"code","message","message_zh","details"}`; the code is stable
//! and machine-readable, the status and both messages come from [`ErrorCode::spec`]. Causes are
//! logged with their chain and never sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt;

macro_rules! error_codes {
    ($( $variant:ident => $code:literal, $status:ident, $en:literal, $zh:literal; )*) => {
        /// Stable machine-readable error codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant, )* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// (code, status, English message, Simplified Chinese message)
            pub fn spec(self) -> (&'static str, StatusCode, &'static str, &'static str) {
                match self {
                    $( ErrorCode::$variant => ($code, StatusCode::$status, $en, $zh), )*
                }
            }
        }
    };
}

error_codes! {
    BadRequest => "bad_request", BAD_REQUEST,
        "The request is malformed.", "请求格式不正确。";
    InvalidJson => "invalid_json", BAD_REQUEST,
        "The request body is not valid JSON for this endpoint.", "请求体不是此接口可接受的 JSON。";
    InvalidQuery => "invalid_query", BAD_REQUEST,
        "A query parameter is missing or has the wrong type.", "查询参数缺失或类型错误。";
    InvalidPath => "invalid_path", BAD_REQUEST,
        "A path parameter has the wrong format.", "路径参数格式错误。";
    ValidationFailed => "validation_failed", UNPROCESSABLE_ENTITY,
        "A field has an invalid value.", "字段取值无效。";
    Unauthenticated => "unauthenticated", UNAUTHORIZED,
        "Sign in first: this request needs a bearer token.", "请先登录：此请求需要访问令牌。";
    TokenInvalid => "token_invalid", UNAUTHORIZED,
        "The access token is not valid.", "访问令牌无效。";
    TokenExpired => "token_expired", UNAUTHORIZED,
        "The access token has expired; refresh it.", "访问令牌已过期，请刷新。";
    InvalidCredentials => "invalid_credentials", UNAUTHORIZED,
        "Wrong username or password.", "用户名或密码错误。";
    RefreshTokenInvalid => "refresh_token_invalid", UNAUTHORIZED,
        "The refresh token is not valid; sign in again.", "刷新令牌无效，请重新登录。";
    RefreshTokenReused => "refresh_token_reused", UNAUTHORIZED,
        "This refresh token was already used; the session has been revoked for safety. Sign in again.",
        "该刷新令牌已被使用过，为安全起见会话已被吊销，请重新登录。";
    Forbidden => "forbidden", FORBIDDEN,
        "Your role does not allow this action.", "您的角色无权执行此操作。";
    NotFound => "not_found", NOT_FOUND,
        "Not found.", "未找到。";
    RouteNotFound => "route_not_found", NOT_FOUND,
        "No such API route.", "接口不存在。";
    MethodNotAllowed => "method_not_allowed", METHOD_NOT_ALLOWED,
        "This method is not allowed here.", "此接口不支持该请求方法。";
    Conflict => "conflict", CONFLICT,
        "The request conflicts with existing data.", "请求与现有数据冲突。";
    UsernameTaken => "username_taken", CONFLICT,
        "This username is already taken.", "该用户名已被占用。";
    NodeNotCurrent => "node_not_current", CONFLICT,
        "This step is not the deal's current step.", "该环节不是商机当前所在环节。";
    NodeNotOverridable => "node_not_overridable", CONFLICT,
        "A supervisor's override cannot stand in for what this step still lacks: the countersigned approval of the quoted price, the system's quote number or the customer's confirmation of the quote. details.requirements lists it.",
        "该环节尚缺的证明（报价的会签审批、系统报价单号或客户对报价的确认）不能由主管代为放行，details.requirements 列出了所缺项目。";
    DealClosed => "deal_closed", CONFLICT,
        "This deal is closed; nothing more can be recorded on it.", "该商机已关闭，不能再记录。";
    CallbackReplayed => "callback_replayed", CONFLICT,
        "This callback was already received.", "该回调已处理过，拒绝重放。";
    SignatureInvalid => "signature_invalid", UNAUTHORIZED,
        "The callback signature or timestamp is not valid.", "回调签名或时间戳无效。";
    UploadOffsetMismatch => "upload_offset_mismatch", CONFLICT,
        "Upload-Offset is not where this upload stands; ask for the offset (HEAD) and continue from details.offset.",
        "Upload-Offset 与该上传的当前进度不符，请先查询（HEAD）并从 details.offset 处继续。";
    UploadIncomplete => "upload_incomplete", CONFLICT,
        "This upload has not received all of its bytes yet.", "该上传尚未收齐全部数据。";
    UploadCorrupt => "upload_corrupt", UNPROCESSABLE_ENTITY,
        "The uploaded bytes do not match the declared size or SHA-256; upload the file again.",
        "上传的数据与声明的大小或 SHA-256 不符，请重新上传。";
    CaptureConflict => "capture_conflict", CONFLICT,
        "This capture id was already used for a different file.", "该拍摄编号已用于另一张照片。";
    ManifestInvalid => "manifest_invalid", UNPROCESSABLE_ENTITY,
        "The capture manifest is not valid.", "拍摄记录无效。";
    ReviewClosed => "review_closed", CONFLICT,
        "This evidence is not waiting for a review decision.", "该证据不在待审核状态。";
    QuoteDraftExists => "quote_draft_exists", CONFLICT,
        "This deal already has a draft quote; edit that one.", "该商机已有报价草稿，请直接修改该草稿。";
    QuoteNotDraft => "quote_not_draft", CONFLICT,
        "Only a draft quote can be issued; this one is already issued or superseded.",
        "只有报价草稿可以出具；该报价已出具或已作废。";
    QuoteNotLatest => "quote_not_latest", CONFLICT,
        "A newer revision of this quote exists; work on the latest one.", "该报价已有更新的版本，请在最新版本上操作。";
    QuoteSuperseded => "quote_superseded", CONFLICT,
        "A newer quote has been issued to you, so this one can no longer be confirmed. Please ask your sales contact for the link to the latest quote.",
        "已有更新的报价单，本报价已作废，不能再确认。请联系您的销售人员获取最新报价的链接。";
    QuoteDecided => "quote_decided", CONFLICT,
        "The customer has already decided on this quote.", "客户已对该报价作出决定。";
    QuoteNotConfirmed => "quote_not_confirmed", CONFLICT,
        "The customer has not confirmed this quote.", "客户尚未确认该报价。";
    ErpOrderConflict => "erp_order_conflict", CONFLICT,
        "A different ERP order number is already recorded for this quote.", "该报价已记录了另一个 ERP 订单号。";
    RuleSetInvalid => "rule_set_invalid", UNPROCESSABLE_ENTITY,
        "The rule set is not valid; details.errors lists each problem with its path.",
        "分配规则无效，details.errors 列出了每个问题及其位置。";
    LeadNotInPool => "lead_not_in_pool", CONFLICT,
        "This lead is not in the pool any more.", "该线索已不在公海池中。";
    LeadNotYours => "lead_not_yours", CONFLICT,
        "This lead is no longer yours to work: its protection window ended without a follow-up, or it was converted, moved or returned to the pool; details.status says where it stands.",
        "该线索已不归您跟进：保护期内未跟进已到期，或已被转化、改派或退回公海；details.status 为其当前状态。";
    LeadClaimLimit => "lead_claim_limit", CONFLICT,
        "You have reached your pool claims for the last 24 hours.", "您在 24 小时内的认领次数已达上限。";
    LeadReclaimBlocked => "lead_reclaim_blocked", CONFLICT,
        "This lead expired in your hands; you may claim it again after details.until.",
        "该线索在您名下到期未跟进，须在 details.until 之后才能重新认领。";
    RepAtCapacity => "rep_at_capacity", CONFLICT,
        "The rep has no room for another lead (on leave, at capacity or without a rep profile).",
        "该销售无法再接线索（休假、已满负荷或未设置销售档案）。";
    SourceKeyInvalid => "source_key_invalid", UNAUTHORIZED,
        "The lead source key is missing or not valid.", "线索来源密钥缺失或无效。";
    CsvInvalid => "csv_invalid", UNPROCESSABLE_ENTITY,
        "The file cannot be imported: details.reason says why.", "文件无法导入，原因见 details.reason。";
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE,
        "The request body is too large.", "请求体过大。";
    UnsupportedMediaType => "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE,
        "This content type is not accepted here.", "不支持该内容类型。";
    RateLimited => "rate_limited", TOO_MANY_REQUESTS,
        "Too many requests; retry later.", "请求过于频繁，请稍后再试。";
    Unavailable => "service_unavailable", SERVICE_UNAVAILABLE,
        "The service is temporarily unavailable; retry later.", "服务暂时不可用，请稍后再试。";
    Internal => "internal_error", INTERNAL_SERVER_ERROR,
        "Something went wrong on our side.", "服务器内部错误。";
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        self.spec().0
    }

    pub fn status(self) -> StatusCode {
        self.spec().1
    }
}

/// An error on its way to the client: a catalogue code, optional specific messages and details,
/// and (for the log only) the underlying cause.
pub struct ApiError {
    pub code: ErrorCode,
    message: Option<(String, String)>,
    details: Value,
    retry_after_secs: Option<u64>,
    source: Option<anyhow::Error>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`.
    pub code: &'static str,
    /// English message.
    pub message: String,
    /// Simplified Chinese message.
    pub message_zh: String,
    /// Structured context (field names, limits, ids).
    #[schema(value_type = Object)]
    pub details: Value,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            message: None,
            details: json!({}),
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn with_message(mut self, en: impl Into<String>, zh: impl Into<String>) -> Self {
        self.message = Some((en.into(), zh.into()));
        self
    }

    pub fn with_source(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn not_found() -> Self {
        ApiError::new(ErrorCode::NotFound)
    }

    pub fn forbidden() -> Self {
        ApiError::new(ErrorCode::Forbidden)
    }

    /// A field failed validation: names the field and says why in both languages.
    pub fn invalid_field(field: &str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        let (en, zh) = (en.into(), zh.into());
        ApiError::new(ErrorCode::ValidationFailed)
            .with_details(json!({ "field": field, "reason": en }))
            .with_message(format!("{field}: {en}"), format!("{field}：{zh}"))
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        ApiError::new(ErrorCode::Internal).with_source(source)
    }

    pub fn body(&self) -> ErrorBody {
        let (code, _, en, zh) = self.code.spec();
        let (message, message_zh) = match &self.message {
            Some((en, zh)) => (en.clone(), zh.clone()),
            None => (en.to_owned(), zh.to_owned()),
        };
        ErrorBody {
            code,
            message,
            message_zh,
            details: self.details.clone(),
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code.as_str())?;
        if let Some(source) = &self.source {
            write!(f, ": {}", crate::telemetry::cause_chain(source))?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        if self.code.status().is_server_error() {
            tracing::error!(error = ?self, "request failed");
        } else if let Some(source) = &self.source {
            tracing::info!(code = self.code.as_str(), cause = %crate::telemetry::cause_chain(source), "request refused");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        response.json(self.body())
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::internal(e)
    }
}

/// A blob store failure as the client sees it: a backend that may come back is 503 with
/// `Retry-After` (nothing was accepted, so the phone retries the same upload); a missing blob is
/// 404; the rest is ours to fix.
impl From<crate::storage::StoreError> for ApiError {
    fn from(e: crate::storage::StoreError) -> Self {
        use crate::storage::StoreError;
        match e {
            StoreError::Unavailable { .. } => ApiError::new(ErrorCode::Unavailable)
                .with_details(json!({"component": "blob_store"}))
                .retry_after(5)
                .with_source(e),
            StoreError::NotFound { .. } => ApiError::not_found().with_source(e),
            StoreError::InvalidKey { .. } | StoreError::Other { .. } => ApiError::internal(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Extractor configuration so malformed JSON, queries and paths use the catalogue body too.
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            use actix_web::error::JsonPayloadError;
            let api = match &err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => ApiError::new(ErrorCode::PayloadTooLarge),
                JsonPayloadError::ContentType => ApiError::new(ErrorCode::UnsupportedMediaType)
                    .with_details(json!({ "expected": "application/json" })),
                other => ApiError::new(ErrorCode::InvalidJson)
                    .with_details(json!({ "reason": other.to_string() })),
            };
            api.into()
        })
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::new(ErrorCode::InvalidQuery)
            .with_details(json!({ "reason": err.to_string() }))
            .into()
    })
}

pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|err, _req| {
        ApiError::new(ErrorCode::InvalidPath)
            .with_details(json!({ "reason": err.to_string() }))
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_bilingual() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let (name, status, en, zh) = code.spec();
            assert!(seen.insert(name), "duplicate code {name}");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(status.is_client_error() || status.is_server_error());
            assert!(!en.is_empty() && !zh.is_empty());
            assert!(
                zh.chars().any(|c| c as u32 > 0x2E80),
                "{name} zh is not Chinese"
            );
        }
    }

    #[test]
    fn the_documented_table_matches_the_catalogue() {
        let doc = include_str!("../docs/errors.md");
        for code in ErrorCode::ALL {
            let (name, status, en, zh) = code.spec();
            let row = format!("| `{name}` | {} | {en} | {zh} |", status.as_u16());
            assert!(
                doc.contains(&row),
                "docs/errors.md lacks or misstates: {row}"
            );
        }
        let rows = doc.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(
            rows,
            ErrorCode::ALL.len(),
            "docs/errors.md lists codes the catalogue lacks"
        );
    }
}
