//! Receiving a file: streamed to a temp file, hashed and size-capped while it arrives, its type
//! sniffed from the first bytes (never from the name). Nothing is held in memory whole.

use crate::error::{ApiError, ApiResult, ErrorCode};
use fieldproof_domain::evidence::{Format, sniff};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// A file received into a temp file (removed when this is dropped).
pub struct ReceivedFile {
    pub path: tempfile::TempPath,
    pub size: u64,
    pub sha256_hex: String,
    pub format: Format,
}

/// How many leading bytes the sniffer looks at.
const SNIFF_BYTES: usize = 64;

pub fn too_large(limit: u64) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge).with_details(json!({"limit_bytes": limit}))
}

pub fn unsupported(format: &str) -> ApiError {
    ApiError::new(ErrorCode::UnsupportedMediaType).with_details(
        json!({"detected": format, "accepted": ["jpeg", "heic", "png", "webp", "pdf"]}),
    )
}

/// Stream `chunks` into a temp file under `dir`, refusing more than `limit` bytes.
pub async fn receive<S, E>(mut chunks: S, dir: &Path, limit: u64) -> ApiResult<ReceivedFile>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    std::fs::create_dir_all(dir).map_err(ApiError::internal)?;
    let file = tempfile::NamedTempFile::new_in(dir).map_err(ApiError::internal)?;
    let (file, path) = file.into_parts();
    let mut writer = std::io::BufWriter::new(file);
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut size: u64 = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(ErrorCode::BadRequest)
                .with_details(json!({"reason": format!("upload interrupted: {e}")}))
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(limit));
        }
        if head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        // Small synchronous writes into the page cache; the fsync happens in the blob store.
        writer.write_all(&chunk).map_err(ApiError::internal)?;
    }
    writer.flush().map_err(ApiError::internal)?;
    if size == 0 {
        return Err(ApiError::invalid_field(
            "file",
            "the file is empty",
            "文件为空",
        ));
    }
    Ok(ReceivedFile {
        path,
        size,
        sha256_hex: hex::encode(hasher.finalize()),
        format: sniff(&head),
    })
}
