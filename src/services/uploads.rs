//! Resumable uploads (docs/uploads.md §4): a large file arrives in pieces over a flaky link and
//! is put together only when the evidence endpoint asks for it.
//!
//! State lives only in the database (the session row and its `received` offset) and the blob
//! store (one object per piece, `uploads/{upload_id}/{offset:016}`), so any API process can take
//! the next piece. Two rules keep the pieces and the offset in agreement:
//!
//! - the offset only moves by compare-and-set from the value the request started at, and
//! - it moves by the size of the object actually stored at that offset's key. Blob writes are
//!   create-if-absent, so the request that created the object advances by its own length; a
//!   request that finds an object already there (a concurrent request, or an earlier one whose
//!   process died between storing and advancing) advances by that object's size and answers 409.
//!
//! A piece cut off mid-body is kept: the bytes that arrived are stored and the offset advances,
//! so HEAD tells the phone where to continue.

use crate::auth::Caller;
use crate::db::{self, entities::upload_session, uploads as repo};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;
use crate::storage::{BlobKey, PutOutcome, StoreError};
use anyhow::Context;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

/// How long a session lives after it is created.
pub const UPLOAD_TTL: time::Duration = time::Duration::hours(24);

/// A piece whose body goes silent this long is treated as cut off: what arrived is kept.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Sessions handled per sweep query.
const SWEEP_BATCH: u64 = 100;

/// A validated request to start (or resume) an upload.
#[derive(Debug, Clone)]
pub struct NewUpload {
    capture_id: String,
    size: u64,
    sha256: String,
}

impl NewUpload {
    /// `capture_id`: 1–128 visible ASCII characters; `size`: 1..=`max_bytes` (413 above);
    /// `sha256`: 64 hex digits (kept lowercase).
    pub fn parse(capture_id: &str, size: u64, sha256: &str, max_bytes: u64) -> ApiResult<Self> {
        if capture_id.is_empty()
            || capture_id.len() > 128
            || !capture_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ApiError::invalid_field(
                "capture_id",
                "1-128 visible ASCII characters",
                "须为 1-128 个可见 ASCII 字符",
            ));
        }
        if size == 0 {
            return Err(ApiError::invalid_field(
                "size",
                "must be at least 1 byte",
                "至少 1 字节",
            ));
        }
        if size > max_bytes {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge)
                .with_details(json!({"field": "size", "max_bytes": max_bytes})));
        }
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid_field(
                "sha256",
                "must be 64 hex digits (the SHA-256 of the whole file)",
                "须为 64 位十六进制（整个文件的 SHA-256）",
            ));
        }
        Ok(NewUpload {
            capture_id: capture_id.to_owned(),
            size,
            sha256: sha256.to_ascii_lowercase(),
        })
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub upload_id: String,
    pub offset: u64,
    pub size: u64,
    pub expires_at: OffsetDateTime,
}

impl From<&upload_session::Model> for UploadStatus {
    fn from(row: &upload_session::Model) -> Self {
        UploadStatus {
            upload_id: row.id.clone(),
            offset: stored_u64(row.received),
            size: stored_u64(row.size),
            expires_at: row.expires_at,
        }
    }
}

/// Sizes are written from `u64`s no larger than `max_upload_bytes`, so they are never negative.
fn stored_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> ApiResult<i64> {
    i64::try_from(value).map_err(|_| ApiError::internal(anyhow::anyhow!("{value} exceeds i64")))
}

/// What [`assemble`] put together and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    pub size: u64,
    pub sha256_hex: String,
    pub capture_id: String,
}

/// Start an upload, or find the caller's session for this capture (a phone that lost the first
/// answer). Returns the session and whether this call created it. The same capture with another
/// size or hash is 409 `conflict`; an expired session for it is replaced by a new one.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    new: &NewUpload,
    now: OffsetDateTime,
) -> ApiResult<(UploadStatus, bool)> {
    if let Some(existing) = repo::find_by_capture(&state.db, caller, &new.capture_id).await? {
        if existing.expires_at > now {
            return same_upload(&existing, new).map(|s| (s, false));
        }
        if repo::delete_expired(&state.db, &existing.id, now).await? {
            delete_chunks_logged(state, &existing.id).await;
        }
    }
    let inserted = repo::insert(
        &state.db,
        repo::NewSession {
            org_id: &caller.org_id,
            user_id: &caller.user_id,
            capture_id: &new.capture_id,
            size: to_i64(new.size)?,
            sha256: &new.sha256,
            created_at: now,
            expires_at: now + UPLOAD_TTL,
        },
    )
    .await;
    match inserted {
        Ok(row) => Ok((UploadStatus::from(&row), true)),
        // Two first requests for one capture raced: the other one's session is ours too.
        Err(e) if db::is_unique_violation(&e) => {
            let row = repo::find_by_capture(&state.db, caller, &new.capture_id)
                .await?
                .ok_or_else(|| ApiError::internal(e))?;
            same_upload(&row, new).map(|s| (s, false))
        }
        Err(e) => Err(e.into()),
    }
}

fn same_upload(row: &upload_session::Model, new: &NewUpload) -> ApiResult<UploadStatus> {
    if stored_u64(row.size) != new.size || row.sha256 != new.sha256 {
        return Err(ApiError::new(ErrorCode::Conflict)
            .with_message(
                "An upload for this capture_id exists with another size or SHA-256.",
                "该 capture_id 已有大小或 SHA-256 不同的上传。",
            )
            .with_details(json!({"capture_id": row.capture_id, "upload_id": row.id})));
    }
    Ok(UploadStatus::from(row))
}

/// The caller's live session (not expired), or 404: another user's session does not exist.
async fn own_session(
    state: &AppState,
    caller: &Caller,
    upload_id: &str,
) -> ApiResult<upload_session::Model> {
    repo::find_own(&state.db, caller, upload_id)
        .await?
        .filter(|row| row.expires_at > db::now())
        .ok_or_else(ApiError::not_found)
}

/// Where the caller's upload stands (HEAD).
pub async fn status(state: &AppState, caller: &Caller, upload_id: &str) -> ApiResult<UploadStatus> {
    Ok(UploadStatus::from(
        &own_session(state, caller, upload_id).await?,
    ))
}

fn offset_mismatch(offset: u64) -> ApiError {
    ApiError::new(ErrorCode::UploadOffsetMismatch).with_details(json!({"offset": offset}))
}

fn too_many_bytes(offset: u64, size: u64) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge)
        .with_message(
            "This piece goes beyond the upload's declared size; nothing of it was kept.",
            "该分片超出上传声明的大小，已全部丢弃。",
        )
        .with_details(json!({"offset": offset, "size": size, "remaining": size - offset}))
}

fn already_completed(upload_id: &str) -> ApiError {
    ApiError::new(ErrorCode::Conflict)
        .with_message(
            "This upload has already been used for evidence.",
            "该上传已用于提交证据。",
        )
        .with_details(json!({"upload_id": upload_id, "reason": "completed"}))
}

/// The blob key of the piece that starts at `offset`.
pub fn chunk_key(upload_id: &str, offset: u64) -> ApiResult<BlobKey> {
    BlobKey::parse(format!("uploads/{upload_id}/{offset:016}")).map_err(ApiError::internal)
}

async fn current_offset(state: &AppState, upload_id: &str) -> ApiResult<u64> {
    let row = repo::find(&state.db, upload_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(stored_u64(row.received))
}

/// Take the next piece (PATCH): `claimed_offset` must be where the upload stands; the body is
/// streamed to a temp file (never held whole), refused whole with 413 if it goes past the
/// declared size, stored as one blob and the offset advanced. A body that breaks off or goes
/// silent keeps the bytes that arrived. Returns the new offset.
pub async fn receive<S, E>(
    state: &AppState,
    caller: &Caller,
    upload_id: &str,
    claimed_offset: u64,
    declared_len: Option<u64>,
    body: S,
) -> ApiResult<u64>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let session = own_session(state, caller, upload_id).await?;
    if session.completed_at.is_some() {
        return Err(already_completed(upload_id));
    }
    let (offset, size) = (stored_u64(session.received), stored_u64(session.size));
    if claimed_offset != offset {
        return Err(offset_mismatch(offset));
    }
    let remaining = size.saturating_sub(offset);
    if declared_len.is_some_and(|len| len > remaining) {
        return Err(too_many_bytes(offset, size));
    }
    let temp = TempPiece::create(&state.settings.data_dir, upload_id).await?;
    let (len, cut_off) = match temp.fill(body, remaining).await? {
        Filled::Bytes { len, cut_off } => (len, cut_off),
        Filled::TooMany => return Err(too_many_bytes(offset, size)),
    };
    if cut_off {
        tracing::info!(
            upload_id,
            offset,
            kept = len,
            "upload piece cut off; keeping what arrived"
        );
    }
    if len == 0 {
        return Ok(offset);
    }
    let key = chunk_key(upload_id, offset)?;
    match state
        .blobs
        .put_file(&key, temp.path(), "application/octet-stream")
        .await?
    {
        PutOutcome::Created => {
            if repo::advance(&state.db, upload_id, to_i64(offset)?, to_i64(offset + len)?).await? {
                return Ok(offset + len);
            }
            let row = match repo::find(&state.db, upload_id).await? {
                Some(row) if row.completed_at.is_none() => row,
                closed => {
                    // The session was used, or expired and swept, while the body streamed in:
                    // the listing that deletes its pieces may have run already and will not run
                    // again, so this piece goes now.
                    if let Err(e) = state.blobs.delete(&key).await {
                        tracing::warn!(%key, error = %crate::telemetry::cause_chain(&anyhow::Error::from(e)), "could not delete the piece of a closed upload");
                    }
                    return Err(match closed {
                        Some(row) if row.expires_at > db::now() => already_completed(upload_id),
                        _ => ApiError::not_found(),
                    });
                }
            };
            // A concurrent request found our piece and advanced by its size first (see the
            // module docs): our bytes count all the same. The object stays either way.
            let current = stored_u64(row.received);
            if current == offset + len {
                Ok(current)
            } else {
                Err(offset_mismatch(current))
            }
        }
        PutOutcome::AlreadyExisted => {
            let stored = stored_size(state, &key).await?;
            if stored == 0 || stored > remaining {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "piece {key} has {stored} bytes, {remaining} remain"
                )));
            }
            repo::advance(
                &state.db,
                upload_id,
                to_i64(offset)?,
                to_i64(offset + stored)?,
            )
            .await?;
            Err(offset_mismatch(current_offset(state, upload_id).await?))
        }
    }
}

async fn stored_size(state: &AppState, key: &BlobKey) -> ApiResult<u64> {
    let listed = state.blobs.list(key.as_str()).await?;
    listed
        .into_iter()
        .find(|entry| &entry.key == key)
        .map(|entry| entry.size)
        .ok_or_else(|| {
            ApiError::from(StoreError::NotFound {
                key: key.to_string(),
            })
        })
}

enum Filled {
    Bytes { len: u64, cut_off: bool },
    TooMany,
}

/// A piece on its way in, in a temp file that is removed when this is dropped.
struct TempPiece {
    path: PathBuf,
}

impl TempPiece {
    async fn create(data_dir: &Path, upload_id: &str) -> ApiResult<TempPiece> {
        let dir = data_dir.join("tmp");
        tokio::fs::create_dir_all(&dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempPiece {
            path: dir.join(format!("upload-{upload_id}-{}.part", uuid::Uuid::new_v4())),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Copy the body into the file, at most `limit` bytes. An error or a long silence from the
    /// client ends the piece early (`cut_off`) with what arrived.
    async fn fill<S, E>(&self, body: S, limit: u64) -> ApiResult<Filled>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let mut body = std::pin::pin!(body);
        let mut file = tokio::fs::File::create(&self.path)
            .await
            .with_context(|| format!("creating {}", self.path.display()))?;
        let mut len: u64 = 0;
        let mut cut_off = false;
        loop {
            let bytes = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.next()).await {
                Ok(Some(Ok(bytes))) => bytes,
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "upload body broke off");
                    cut_off = true;
                    break;
                }
                Err(_) => {
                    cut_off = true;
                    break;
                }
            };
            len += bytes.len() as u64;
            if len > limit {
                return Ok(Filled::TooMany);
            }
            file.write_all(&bytes)
                .await
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        file.flush()
            .await
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(Filled::Bytes { len, cut_off })
    }
}

impl Drop for TempPiece {
    fn drop(&mut self) {
        // The file may not exist (nothing arrived); that is fine.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn corrupt(reason: &str, upload_id: &str) -> ApiError {
    ApiError::new(ErrorCode::UploadCorrupt)
        .with_details(json!({"upload_id": upload_id, "reason": reason}))
}

/// Put the caller's complete upload together into `dest` (created or truncated), streaming the
/// pieces in order while hashing, and check the declared size and SHA-256.
///
/// 404 if the session is not the caller's (or expired), 409 `upload_incomplete` (with
/// `details.offset`) until every byte arrived, 409 `conflict` once [`finish`]ed, 422
/// `upload_corrupt` when a piece is missing or the bytes do not match; on any error `dest` is
/// removed. The session is left as it is: call [`finish`] once the evidence is recorded.
pub async fn assemble(
    state: &AppState,
    caller: &Caller,
    upload_id: &str,
    dest: &Path,
) -> ApiResult<Assembled> {
    let session = own_session(state, caller, upload_id).await?;
    if session.completed_at.is_some() {
        return Err(already_completed(upload_id));
    }
    let (received, size) = (stored_u64(session.received), stored_u64(session.size));
    if received != size {
        return Err(ApiError::new(ErrorCode::UploadIncomplete)
            .with_details(json!({"offset": received, "size": size})));
    }
    let written = write_pieces(state, upload_id, size, dest).await;
    let sha256_hex = match written {
        Ok(hash) => hash,
        Err(e) => {
            let _ = tokio::fs::remove_file(dest).await;
            return Err(e);
        }
    };
    if sha256_hex != session.sha256 {
        let _ = tokio::fs::remove_file(dest).await;
        return Err(corrupt("sha256", upload_id).with_details(json!({
            "upload_id": upload_id,
            "reason": "sha256",
            "expected": session.sha256,
            "actual": sha256_hex,
        })));
    }
    Ok(Assembled {
        size,
        sha256_hex,
        capture_id: session.capture_id,
    })
}

/// Stream the pieces `uploads/{id}/{offset}` from 0 to `size` into `dest`; returns the hex
/// SHA-256 of what was written.
async fn write_pieces(
    state: &AppState,
    upload_id: &str,
    size: u64,
    dest: &Path,
) -> ApiResult<String> {
    let mut file = tokio::fs::File::create(dest)
        .await
        .with_context(|| format!("creating {}", dest.display()))?;
    let mut hasher = Sha256::new();
    let mut offset: u64 = 0;
    while offset < size {
        let key = chunk_key(upload_id, offset)?;
        let mut piece = match state.blobs.get_stream(&key).await {
            Ok(stream) => stream,
            Err(StoreError::NotFound { .. }) => return Err(corrupt("missing_piece", upload_id)),
            Err(e) => return Err(e.into()),
        };
        let start = offset;
        while let Some(bytes) = piece.next().await {
            let bytes = match bytes {
                Ok(bytes) => bytes,
                Err(StoreError::NotFound { .. }) => {
                    return Err(corrupt("missing_piece", upload_id));
                }
                Err(e) => return Err(e.into()),
            };
            offset += bytes.len() as u64;
            if offset > size {
                return Err(corrupt("size", upload_id));
            }
            hasher.update(&bytes);
            file.write_all(&bytes)
                .await
                .with_context(|| format!("writing {}", dest.display()))?;
        }
        if offset == start {
            return Err(corrupt("empty_piece", upload_id));
        }
    }
    file.flush()
        .await
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Mark the upload used (its evidence is recorded) and delete its pieces, best effort: a piece
/// left behind is removed by [`sweep_expired`] when the session expires. Idempotent.
pub async fn finish(state: &AppState, caller: &Caller, upload_id: &str) -> ApiResult<()> {
    // Only the caller's own session, and its pieces only when this call closed it.
    if repo::mark_completed(&state.db, caller, upload_id, db::now()).await? {
        delete_chunks_logged(state, upload_id).await;
    }
    Ok(())
}

/// Delete every piece object of an upload; deleting what is already gone succeeds.
async fn delete_chunks(state: &AppState, upload_id: &str) -> Result<(), StoreError> {
    for entry in state.blobs.list(&format!("uploads/{upload_id}/")).await? {
        state.blobs.delete(&entry.key).await?;
    }
    Ok(())
}

async fn delete_chunks_logged(state: &AppState, upload_id: &str) {
    if let Err(e) = delete_chunks(state, upload_id).await {
        tracing::warn!(upload_id, error = %crate::telemetry::cause_chain(&anyhow::Error::from(e)), "could not delete upload pieces");
    }
}

/// Delete sessions that expired before `now`, with their pieces; returns how many rows this
/// call deleted. Safe with several processes sweeping at once: deleting a piece or a row twice
/// is harmless, and a row is deleted only after its pieces, so a sweep that fails half-way
/// (blob store down) leaves the row for the next one. A piece still streaming in when its
/// session goes is not left behind: the session is closed before its pieces are listed, and a
/// piece stored after that is deleted by its own request, which the closed session refuses.
pub async fn sweep_expired(state: &AppState, now: OffsetDateTime) -> anyhow::Result<usize> {
    let mut deleted = 0;
    loop {
        let batch = repo::expired(&state.db, now, SWEEP_BATCH)
            .await
            .context("listing expired uploads")?;
        let full = batch.len() as u64 == SWEEP_BATCH;
        let mut progressed = false;
        for session in batch {
            // No piece is added after this (see `close_expired`), so one listing finds them all.
            repo::close_expired(&state.db, &session.id, now)
                .await
                .context("closing an expired upload")?;
            if let Err(e) = delete_chunks(state, &session.id).await {
                tracing::warn!(upload_id = %session.id, error = %crate::telemetry::cause_chain(&anyhow::Error::from(e)), "expired upload kept for the next sweep");
                continue;
            }
            progressed = true;
            if repo::delete_expired(&state.db, &session.id, now)
                .await
                .context("deleting an expired upload")?
            {
                deleted += 1;
            }
        }
        if !full || !progressed {
            return Ok(deleted);
        }
    }
}
