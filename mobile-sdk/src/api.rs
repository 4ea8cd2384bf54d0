//! The server's HTTP API as the SDK uses it (docs/uploads.md and the auth/deal routes), over
//! blocking reqwest with rustls. Each call returns either the parsed body or a [`CallError`]
//! that says whether trying again can help.

use reqwest::StatusCode;
use reqwest::blocking::{Body, Client, RequestBuilder, Response, multipart};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// No answer (connection refused or dropped, timeout): try again later.
    Transport(String),
    /// The server answered with an error body.
    Status {
        status: u16,
        code: String,
        message: String,
        message_zh: String,
        details: Value,
        retry_after: Option<Duration>,
    },
}

impl CallError {
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Transport(_) => None,
            CallError::Status { status, .. } => Some(*status),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            CallError::Transport(_) => "network",
            CallError::Status { code, .. } => code,
        }
    }

    /// Worth trying again with the same request: the network, overload, or a server hiccup.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Transport(_) => None,
            CallError::Status { retry_after, .. } => *retry_after,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "network: {e}"),
            CallError::Status {
                status,
                code,
                message,
                ..
            } => write!(f, "{status} {code}: {message}"),
        }
    }
}

pub type CallResult<T> = Result<T, CallError>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

/// `POST /api/v1/uploads` and `HEAD` answers: where the server is in a resumable upload.
#[derive(Debug, Clone, Deserialize)]
pub struct UploadState {
    pub upload_id: String,
    pub offset: u64,
    pub size: u64,
}

/// The parts of a one-shot (or finishing) evidence upload.
pub struct EvidenceUpload<'a> {
    pub deal_id: &'a str,
    pub node_key: &'a str,
    pub meta: Value,
    pub manifest_json: &'a str,
    pub signature: &'a str,
    /// The file to send; `None` when finishing a resumable upload.
    pub file: Option<&'a Path>,
}

/// A stored evidence's answer: 201 first time, 200 for a replay.
#[derive(Debug, Clone)]
pub struct EvidenceAnswer {
    pub status: u16,
    pub body: Value,
}

pub struct ApiClient {
    http: Client,
    base: String,
}

impl ApiClient {
    pub fn new(base_url: &str) -> Result<ApiClient, crate::error::SdkError> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Whole-request cap: a stalled connection ends in a transient error, not a hang.
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| crate::error::SdkError::Network(e.to_string()))?;
        Ok(ApiClient {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    /// The server's clock, from the `Date` header of `GET /healthz` (one-second resolution).
    pub fn server_date(&self) -> CallResult<time::OffsetDateTime> {
        let response = send(self.http.get(format!("{}/healthz", self.base)))?;
        let date = response
            .headers()
            .get("Date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| CallError::Transport("no Date header".into()))?;
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        time::PrimitiveDateTime::parse(date, format)
            .map(|t| t.assume_utc())
            .map_err(|e| CallError::Transport(format!("unreadable Date header: {e}")))
    }

    pub fn login(&self, username: &str, password: &str, device_id: &str) -> CallResult<Tokens> {
        let body =
            serde_json::json!({"username": username, "password": password, "device_id": device_id});
        json(send(self.http.post(self.url("/auth/login")).json(&body))?)
    }

    pub fn refresh(&self, refresh_token: &str, device_id: &str) -> CallResult<Tokens> {
        let body = serde_json::json!({"refresh_token": refresh_token, "device_id": device_id});
        json(send(self.http.post(self.url("/auth/refresh")).json(&body))?)
    }

    pub fn register_device(
        &self,
        token: &str,
        device_id: &str,
        public_key: &str,
    ) -> CallResult<Value> {
        let body = serde_json::json!({"device_id": device_id, "public_key": public_key});
        json(send(
            self.http
                .post(self.url("/devices"))
                .bearer_auth(token)
                .header("Idempotency-Key", format!("enroll-{device_id}"))
                .json(&body),
        )?)
    }

    pub fn get(&self, token: &str, path: &str) -> CallResult<Value> {
        json(send(self.http.get(self.url(path)).bearer_auth(token))?)
    }

    pub fn create_upload(
        &self,
        token: &str,
        capture_id: &str,
        size: u64,
        sha256: &str,
    ) -> CallResult<UploadState> {
        let body = serde_json::json!({"capture_id": capture_id, "size": size, "sha256": sha256});
        json(send(
            self.http
                .post(self.url("/uploads"))
                .bearer_auth(token)
                .header("Idempotency-Key", format!("upload-{capture_id}"))
                .json(&body),
        )?)
    }

    /// The server's offset for an upload.
    pub fn upload_offset(&self, token: &str, upload_id: &str) -> CallResult<u64> {
        let response = send(
            self.http
                .head(self.url(&format!("/uploads/{upload_id}")))
                .bearer_auth(token),
        )?;
        header_u64(&response, "Upload-Offset")
            .ok_or_else(|| CallError::Transport("HEAD without Upload-Offset".into()))
    }

    /// Sends `len` bytes of `path` from `offset`; returns the server's new offset.
    pub fn patch_upload(
        &self,
        token: &str,
        upload_id: &str,
        path: &Path,
        offset: u64,
        len: u64,
    ) -> CallResult<u64> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| CallError::Transport(format!("opening the photo: {e}")))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| CallError::Transport(format!("seeking the photo: {e}")))?;
        let body = Body::sized(file.take(len), len);
        let response = send(
            self.http
                .patch(self.url(&format!("/uploads/{upload_id}")))
                .bearer_auth(token)
                .header("Upload-Offset", offset.to_string())
                .header("Content-Type", "application/offset+octet-stream")
                .body(body),
        )?;
        header_u64(&response, "Upload-Offset")
            .ok_or_else(|| CallError::Transport("PATCH without Upload-Offset".into()))
    }

    /// `POST /deals/{id}/nodes/{node}/evidence` (multipart, docs/uploads.md §3).
    pub fn upload_evidence(
        &self,
        token: &str,
        upload: &EvidenceUpload<'_>,
    ) -> CallResult<EvidenceAnswer> {
        let mut form = multipart::Form::new()
            .part(
                "meta",
                multipart::Part::text(upload.meta.to_string())
                    .mime_str("application/json")
                    .map_err(|e| CallError::Transport(e.to_string()))?,
            )
            .part(
                "manifest",
                multipart::Part::text(upload.manifest_json.to_owned())
                    .mime_str("application/json")
                    .map_err(|e| CallError::Transport(e.to_string()))?,
            )
            .text("signature", upload.signature.to_owned());
        if let Some(path) = upload.file {
            let file = std::fs::File::open(path)
                .map_err(|e| CallError::Transport(format!("opening the photo: {e}")))?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "photo".into());
            form = form.part(
                "file",
                multipart::Part::reader_with_length(file, len)
                    .file_name(name)
                    .mime_str("application/octet-stream")
                    .map_err(|e| CallError::Transport(e.to_string()))?,
            );
        }
        let capture_id = upload.meta["capture_id"].as_str().unwrap_or_default();
        let response = send(
            self.http
                .post(self.url(&format!(
                    "/deals/{}/nodes/{}/evidence",
                    upload.deal_id, upload.node_key
                )))
                .bearer_auth(token)
                .header("Idempotency-Key", capture_id)
                .multipart(form),
        )?;
        let status = response.status().as_u16();
        let body = json(response)?;
        Ok(EvidenceAnswer { status, body })
    }
}

fn header_u64(response: &Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sends and turns non-2xx answers into [`CallError::Status`].
fn send(request: RequestBuilder) -> CallResult<Response> {
    let response = request
        .send()
        .map_err(|e| CallError::Transport(error_chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(status_error(status, response))
}

fn status_error(status: StatusCode, response: Response) -> CallError {
    let retry_after = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body: Value = response.json().unwrap_or(Value::Null);
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
    CallError::Status {
        status: status.as_u16(),
        code: body["code"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("http_{}", status.as_u16())),
        message: text("message"),
        message_zh: text("message_zh"),
        details: body["details"].clone(),
        retry_after,
    }
}

fn json<T: serde::de::DeserializeOwned>(response: Response) -> CallResult<T> {
    // A body cut off mid-way is a network failure, not a protocol error.
    let bytes = response
        .bytes()
        .map_err(|e| CallError::Transport(error_chain(&e)))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CallError::Transport(format!("unreadable answer: {e}")))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
