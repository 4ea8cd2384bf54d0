//! Draining the queue: each pending item is sent once (idempotent by `capture_id`, so a replay
//! after a lost answer returns the first result), large photos through the resumable offset
//! protocol (continuing from the server's offset, never from zero), with exponential backoff
//! and jitter between attempts, `Retry-After` obeyed, tokens refreshed, and a clean stop when
//! the session is revoked. Verdicts of items under review are pulled back afterwards.

use crate::api::{ApiClient, CallError, EvidenceAnswer, EvidenceUpload};
use crate::clock::Clocks;
use crate::error::SdkError;
use crate::queue::{ItemState, Pending, Queue, Reason};
use crate::session::Session;
use backon::BackoffBuilder;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// Knobs of a sync run. The defaults suit a phone on 4G.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Photos at or above this size go through `/api/v1/uploads` (resumable).
    pub resumable_threshold: u64,
    /// Bytes per PATCH. The server keeps the bytes of a cut PATCH (HEAD says how many), so
    /// this bounds a request's duration (against the request timeout), not what a drop costs.
    pub chunk_size: u64,
    /// Attempts per item per run before leaving it queued for the next run.
    pub max_attempts: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Longest `Retry-After` obeyed as given (longer ones are capped).
    pub max_retry_after: Duration,
    /// Delete a photo once the server acknowledged storing it.
    pub delete_acknowledged: bool,
    /// Ask the server about items still under review.
    pub pull_verdicts: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            resumable_threshold: 1024 * 1024,
            chunk_size: 8 * 1024 * 1024,
            max_attempts: 8,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            delete_acknowledged: true,
            pull_verdicts: true,
        }
    }
}

/// What a sync run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    pub attempted: u32,
    pub accepted: u32,
    pub needs_review: u32,
    pub rejected: u32,
    /// Left queued for a later run (network still down, attempts used up).
    pub still_pending: u32,
    /// Items whose review was decided since the last run.
    pub reviews_updated: u32,
    /// Server clock minus device clock, milliseconds (from the `Date` header), if measured.
    pub clock_offset_ms: Option<i64>,
    /// Why the run stopped early: `revoked`, `offline`.
    pub stopped: Option<String>,
}

/// Told about progress (the CLI draws a bar; apps update their UI).
pub trait SyncProgress {
    fn started(&self, _items: u64, _bytes: u64) {}
    fn item_started(&self, _capture_id: &str, _size: u64) {}
    fn bytes_sent(&self, _bytes: u64) {}
    fn item_finished(&self, _capture_id: &str, _state: Option<ItemState>) {}
    fn retrying(&self, _capture_id: &str, _error: &str, _delay: Duration) {}
}

/// Progress nobody watches.
pub struct NoProgress;
impl SyncProgress for NoProgress {}

enum Failure {
    /// Try again after a delay.
    Transient(Box<CallError>),
    /// The server refused for good: the item is rejected with this reason.
    Permanent(Box<CallError>),
    /// The access token was refused: refresh and try again at once.
    Unauthorized,
    /// Stop the whole run.
    Stop(SdkError),
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        match e.status() {
            Some(401) => Failure::Unauthorized,
            _ if e.is_transient() => Failure::Transient(Box::new(e)),
            _ => Failure::Permanent(Box::new(e)),
        }
    }
}

impl From<SdkError> for Failure {
    fn from(e: SdkError) -> Self {
        match e {
            SdkError::Network(m) => Failure::Transient(Box::new(CallError::Transport(m))),
            other => Failure::Stop(other),
        }
    }
}

pub struct Syncer<'a> {
    pub queue: &'a Queue,
    pub api: &'a ApiClient,
    pub clocks: &'a dyn Clocks,
    pub options: SyncOptions,
    pub progress: &'a dyn SyncProgress,
}

impl Syncer<'_> {
    /// Drains the queue once. Errors only for local trouble; server and network trouble is in
    /// the report and the items.
    pub fn run(&self) -> Result<SyncReport, SdkError> {
        let session = Session::new(self.queue, self.api)?;
        let pending = self.queue.pending()?;
        // No answer at all (twice): offline. Stop before spending any item's attempts.
        let offset = match self.measure_clock_offset() {
            Err(CallError::Transport(_)) => self.measure_clock_offset(),
            other => other,
        };
        if let Err(CallError::Transport(_)) = offset {
            return Ok(SyncReport {
                still_pending: pending.len() as u32,
                stopped: Some("offline".into()),
                ..SyncReport::default()
            });
        }
        let mut report = SyncReport {
            clock_offset_ms: offset.ok(),
            ..SyncReport::default()
        };
        if let Some(offset) = report.clock_offset_ms {
            self.queue
                .set_setting("clock_offset_ms", Some(&offset.to_string()))?;
        }
        self.progress.started(
            pending.len() as u64,
            pending.iter().map(|p| p.item.size_bytes).sum(),
        );
        for item in &pending {
            report.attempted += 1;
            self.progress
                .item_started(&item.item.capture_id, item.item.size_bytes);
            match self.send_with_retries(&session, item) {
                Ok(Some(state)) => {
                    match state {
                        ItemState::Accepted => report.accepted += 1,
                        ItemState::NeedsReview => report.needs_review += 1,
                        ItemState::Rejected => report.rejected += 1,
                        ItemState::Queued | ItemState::Uploading => report.still_pending += 1,
                    }
                    self.progress
                        .item_finished(&item.item.capture_id, Some(state));
                }
                Ok(None) => {
                    // Attempts used up on a transient failure: the network is likely down;
                    // leave the rest queued instead of burning their attempts too.
                    self.progress.item_finished(&item.item.capture_id, None);
                    report.still_pending = self.queue.pending()?.len() as u32;
                    report.stopped = Some("offline".into());
                    return Ok(report);
                }
                Err(SdkError::Revoked) => {
                    report.still_pending = self.queue.pending()?.len() as u32;
                    report.stopped = Some("revoked".into());
                    return Ok(report);
                }
                Err(other) => return Err(other),
            }
        }
        if self.options.pull_verdicts {
            report.reviews_updated = self.pull_verdicts(&session).unwrap_or(0);
        }
        Ok(report)
    }

    /// Server clock minus device clock, from the `Date` header of `GET /healthz`.
    fn measure_clock_offset(&self) -> Result<i64, CallError> {
        let before = self.clocks.wall_now();
        let server = self.api.server_date()?;
        let after = self.clocks.wall_now();
        let midpoint = before + (after - before) / 2;
        let offset: time::Duration = server - midpoint;
        Ok(i64::try_from(offset.whole_milliseconds()).unwrap_or(i64::MAX))
    }

    /// `Some(state)` when the item reached a terminal state, `None` when it stays queued.
    fn send_with_retries(
        &self,
        session: &Session<'_>,
        pending: &Pending,
    ) -> Result<Option<ItemState>, SdkError> {
        let capture_id = pending.item.capture_id.as_str();
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.options.min_delay)
            .with_max_delay(self.options.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempts = 0;
        let mut refreshed = false;
        let mut upload_id = pending.upload_id.clone();
        loop {
            self.queue.mark_uploading(capture_id)?;
            let failure = match self.send_once(session, pending, &mut upload_id) {
                Ok(answer) => return self.record_answer(capture_id, &answer).map(Some),
                Err(failure) => failure,
            };
            match failure {
                Failure::Stop(e) => return Err(e),
                Failure::Unauthorized if !refreshed => {
                    refreshed = true;
                    match session.refresh() {
                        Ok(_) => continue,
                        Err(SdkError::Network(m)) => {
                            self.queue.record_error(capture_id, &m)?;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Failure::Unauthorized => return Err(SdkError::Revoked),
                Failure::Permanent(e) => {
                    let reason = Reason {
                        code: e.code().to_owned(),
                        outcome: "error".into(),
                        message: match e.as_ref() {
                            CallError::Status { message, .. } => message.clone(),
                            CallError::Transport(m) => m.clone(),
                        },
                        message_zh: match e.as_ref() {
                            CallError::Status { message_zh, .. } => message_zh.clone(),
                            CallError::Transport(_) => String::new(),
                        },
                    };
                    self.queue
                        .record_outcome(capture_id, ItemState::Rejected, &[reason], None)?;
                    return Ok(Some(ItemState::Rejected));
                }
                Failure::Transient(e) => {
                    self.queue.record_error(capture_id, &e.to_string())?;
                    attempts += 1;
                    if attempts >= self.options.max_attempts {
                        return Ok(None);
                    }
                    let backoff = delays.next().unwrap_or(self.options.max_delay);
                    let delay = match e.retry_after() {
                        Some(server_says) => server_says.min(self.options.max_retry_after),
                        None => backoff,
                    };
                    self.progress.retrying(capture_id, &e.to_string(), delay);
                    std::thread::sleep(delay);
                }
            }
        }
    }

    fn send_once(
        &self,
        session: &Session<'_>,
        pending: &Pending,
        upload_id: &mut Option<String>,
    ) -> Result<EvidenceAnswer, Failure> {
        let item = &pending.item;
        let photo = Path::new(&item.photo_path);
        if item.photo_deleted || !photo.exists() {
            return Err(Failure::Stop(SdkError::Corrupt(format!(
                "the photo of {} is missing from the queue",
                item.capture_id
            ))));
        }
        let token = session.access_token()?;
        let meta = json!({
            "capture_id": item.capture_id,
            "tags": item.tags,
            "kind": "photo",
            "device_clock": self.clocks.device_clock(),
        });
        if item.size_bytes >= self.options.resumable_threshold {
            match self.send_resumable(&token, pending, photo, upload_id) {
                Ok(id) => {
                    let mut finishing = meta.clone();
                    finishing["upload_id"] = Value::String(id);
                    match self.upload(pending, finishing, None, &token) {
                        Err(Failure::Permanent(e)) if upload_completed(&e) => {}
                        other => return other,
                    }
                }
                Err(Failure::Permanent(e)) if upload_completed(&e) => {}
                Err(other) => return Err(other),
            }
            // The upload was already turned into evidence (its answer was lost): send the
            // photo once more in one piece; the server replays the first answer by capture_id.
            self.queue.set_upload_id(&item.capture_id, None)?;
            *upload_id = None;
        }
        let answer = self.upload(pending, meta, Some(photo), &token)?;
        self.progress.bytes_sent(item.size_bytes);
        Ok(answer)
    }

    fn upload(
        &self,
        pending: &Pending,
        meta: Value,
        file: Option<&Path>,
        token: &str,
    ) -> Result<EvidenceAnswer, Failure> {
        let upload = EvidenceUpload {
            deal_id: &pending.item.deal_id,
            node_key: &pending.item.node_key,
            meta,
            manifest_json: &pending.manifest_json,
            signature: &pending.signature,
            file,
        };
        Ok(self.api.upload_evidence(token, &upload)?)
    }

    /// Creates or continues the resumable upload until the server has every byte.
    fn send_resumable(
        &self,
        token: &str,
        pending: &Pending,
        photo: &Path,
        upload_id: &mut Option<String>,
    ) -> Result<String, Failure> {
        let item = &pending.item;
        let mut offset = match upload_id.as_deref() {
            Some(id) => match self.api.upload_offset(token, id) {
                Ok(offset) => Some(offset),
                // Expired or unknown: start a new upload (the same capture_id).
                Err(e) if e.status() == Some(404) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        if offset.is_none() {
            let state =
                self.api
                    .create_upload(token, &item.capture_id, item.size_bytes, &item.sha256)?;
            self.queue
                .set_upload_id(&item.capture_id, Some(&state.upload_id))?;
            *upload_id = Some(state.upload_id);
            offset = Some(state.offset);
        }
        let id = upload_id.clone().unwrap_or_default();
        let mut offset = offset.unwrap_or(0);
        while offset < item.size_bytes {
            let len = self.options.chunk_size.min(item.size_bytes - offset);
            match self.api.patch_upload(token, &id, photo, offset, len) {
                Ok(new_offset) => {
                    self.progress.bytes_sent(new_offset.saturating_sub(offset));
                    offset = new_offset;
                }
                Err(CallError::Status {
                    status: 409,
                    code,
                    details,
                    ..
                }) if code == "upload_offset_mismatch" => {
                    offset = match details["offset"].as_u64() {
                        Some(o) => o,
                        None => self.api.upload_offset(token, &id)?,
                    };
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(id)
    }

    fn record_answer(
        &self,
        capture_id: &str,
        answer: &EvidenceAnswer,
    ) -> Result<ItemState, SdkError> {
        let parsed = parse_evidence(&answer.body);
        self.queue.record_outcome(
            capture_id,
            parsed.state,
            &parsed.reasons,
            parsed.evidence_id.as_deref(),
        )?;
        if self.options.delete_acknowledged && parsed.evidence_id.is_some() {
            self.queue.delete_acknowledged_photo(capture_id)?;
        }
        Ok(parsed.state)
    }

    /// Asks about items under review; returns how many changed.
    fn pull_verdicts(&self, session: &Session<'_>) -> Result<u32, SdkError> {
        let mut changed = 0;
        for item in self.queue.awaiting_review()? {
            let Some(id) = item.evidence_id.as_deref() else {
                continue;
            };
            let token = session.access_token()?;
            let Ok(body) = self.api.get(&token, &format!("/evidence/{id}")) else {
                continue;
            };
            let parsed = parse_evidence(&body);
            if parsed.state != item.state {
                self.queue
                    .record_outcome(&item.capture_id, parsed.state, &parsed.reasons, None)?;
                changed += 1;
            }
        }
        Ok(changed)
    }
}

/// `409 conflict` with `reason: completed`: the upload was already used for evidence.
fn upload_completed(e: &CallError) -> bool {
    match e {
        CallError::Status {
            status: 409,
            details,
            ..
        } => details["reason"] == "completed",
        CallError::Status { .. } | CallError::Transport(_) => false,
    }
}

/// The evidence body, read for what the queue keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvidence {
    pub evidence_id: Option<String>,
    pub state: ItemState,
    pub reasons: Vec<Reason>,
}

/// Reads an evidence body: its id, its current state (a supervisor's decision wins over the
/// automatic verdict) and the checks that did not pass.
pub fn parse_evidence(body: &Value) -> ParsedEvidence {
    // A supervisor's decision (`review_state`) wins over the automatic verdict.
    let outcome = match body["review_state"].as_str() {
        Some("approved") => Some("passed"),
        Some("rejected") => Some("rejected"),
        _ => None,
    };
    let outcome = outcome
        .or_else(|| body["verdict"].as_str())
        .or_else(|| body["verdict"]["outcome"].as_str())
        .or_else(|| body["outcome"].as_str())
        .unwrap_or("needs_review");
    let state = match outcome {
        "passed" | "accepted" | "approved" => ItemState::Accepted,
        "rejected" => ItemState::Rejected,
        _ => ItemState::NeedsReview,
    };
    let checks = body["checks"]
        .as_array()
        .or_else(|| body["verdict"]["checks"].as_array())
        .cloned()
        .unwrap_or_default();
    let reasons = checks
        .iter()
        .filter(|c| c["outcome"].as_str().is_some_and(|o| o != "pass"))
        .map(|c| Reason {
            code: c["code"].as_str().unwrap_or_default().to_owned(),
            outcome: c["outcome"].as_str().unwrap_or_default().to_owned(),
            message: c["message"]
                .as_str()
                .or_else(|| c["message"]["en"].as_str())
                .unwrap_or_default()
                .to_owned(),
            message_zh: c["message_zh"]
                .as_str()
                .or_else(|| c["message"]["zh"].as_str())
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    ParsedEvidence {
        evidence_id: body["id"]
            .as_str()
            .or_else(|| body["evidence_id"].as_str())
            .map(str::to_owned),
        state,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: &str) -> CallError {
        CallError::Status {
            status,
            code: code.into(),
            message: String::new(),
            message_zh: String::new(),
            details: Value::Null,
            retry_after: None,
        }
    }

    #[test]
    fn failures_are_sorted_into_retry_refresh_and_give_up() {
        assert!(matches!(
            Failure::from(status(503, "service_unavailable")),
            Failure::Transient(_)
        ));
        assert!(matches!(
            Failure::from(status(429, "too_many_requests")),
            Failure::Transient(_)
        ));
        assert!(matches!(
            Failure::from(CallError::Transport("reset".into())),
            Failure::Transient(_)
        ));
        assert!(matches!(
            Failure::from(status(401, "unauthorized")),
            Failure::Unauthorized
        ));
        assert!(matches!(
            Failure::from(status(409, "capture_conflict")),
            Failure::Permanent(_)
        ));
        assert!(matches!(
            Failure::from(status(415, "unsupported_media_type")),
            Failure::Permanent(_)
        ));
    }

    #[test]
    fn an_evidence_body_gives_state_reasons_and_id() {
        let body = json!({
            "id": "ev-1", "verdict": "rejected",
            "checks": [
                {"code": "outside_site", "outcome": "fail", "message": "420 m outside", "message_zh": "超出"},
                {"code": "gps_missing", "outcome": "pass", "message": "", "message_zh": ""}
            ]
        });
        let parsed = parse_evidence(&body);
        assert_eq!(parsed.state, ItemState::Rejected);
        assert_eq!(parsed.evidence_id.as_deref(), Some("ev-1"));
        assert_eq!(parsed.reasons.len(), 1);
        assert_eq!(parsed.reasons[0].code, "outside_site");
        assert_eq!(
            parse_evidence(&json!({"verdict": "passed"})).state,
            ItemState::Accepted
        );
    }

    #[test]
    fn the_device_handle_can_cross_threads_and_an_ffi_boundary() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::FieldDevice>();
        send_sync::<crate::queue::Queue>();
    }
}
