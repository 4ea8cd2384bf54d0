//! Where evidence bytes live: one small [`BlobStore`] port with three adapters, a local folder
//! ([`fs::FsStore`], the embedded default), an S3-compatible bucket ([`s3::S3Store`]) and memory
//! ([`memory::MemoryStore`], unit tests). The backend is chosen once from [`Settings`] by
//! [`from_settings`]; past that point the server only sees `Arc<dyn BlobStore>`.
//!
//! Blobs are immutable and content-addressed: a key is written once and never overwritten, so a
//! retried or concurrent upload of the same photo can never corrupt what is already stored, and
//! the database row that points at a key can trust its bytes.

pub mod fs;
pub mod memory;
pub mod s3;

mod key;

pub use key::{BlobKey, validate_prefix};

use crate::config::{BlobStoreKind, Settings};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use time::OffsetDateTime;

/// Chunks of a blob read as a stream, so large originals are never held in memory whole.
pub type BlobStream = BoxStream<'static, Result<bytes::Bytes, StoreError>>;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a create-if-absent write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// This call stored the bytes.
    Created,
    /// The key was already there; its bytes were kept and nothing was written.
    AlreadyExisted,
}

/// One stored object, as listed for the orphan sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub key: BlobKey,
    pub size: u64,
    pub last_modified: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key or prefix is not one the store accepts (see [`BlobKey`]).
    #[error("invalid blob key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("blob {key} not found")]
    NotFound { key: String },
    /// The backend cannot be reached right now (network, timeout, 5xx, throttling): worth a
    /// retry later, so callers answer 503 with `Retry-After`.
    #[error("blob store unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: BoxError,
    },
    /// Anything else (permissions, a full disk, a missing bucket): retrying will not help.
    #[error("blob store failed: {context}")]
    Other {
        context: String,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    pub(crate) fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            context: context.into(),
            source: source.into(),
        }
    }

    pub(crate) fn other(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Other {
            context: context.into(),
            source: source.into(),
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// One async lock per key in this process, dropped when nobody holds it: the S3 store's writes
/// of one key take turns on one; the orphan sweep and upload leases of one photo on another
/// (`AppState::bytes_locks`).
#[derive(Default)]
pub struct KeyLocks {
    held: Mutex<HashMap<BlobKey, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    pub async fn lock(&self, key: &BlobKey) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            // Nothing can panic while this is held, so a poisoned map is still consistent.
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            match held.get(key).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    held.retain(|_, lock| lock.strong_count() > 0);
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    held.insert(key.clone(), Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        mutex.lock_owned().await
    }
}

/// Immutable, content-addressed blob storage.
///
/// Every write is create-if-absent: of any number of concurrent writes of one key exactly one
/// returns [`PutOutcome::Created`], the rest [`PutOutcome::AlreadyExisted`], and the stored bytes
/// are never replaced. Keys are content hashes, so "already existed" means "same bytes".
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Store a finished file under `key` without reading it into memory. The file at `path` is
    /// left in place; the caller removes its own temp file and must not write to it again (the
    /// folder store links it instead of copying it when it can).
    async fn put_file(
        &self,
        key: &BlobKey,
        path: &Path,
        content_type: &str,
    ) -> Result<PutOutcome, StoreError>;

    /// Store a small object (a thumbnail) from memory.
    async fn put_bytes(
        &self,
        key: &BlobKey,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<PutOutcome, StoreError>;

    /// The whole object in memory: for small objects only.
    async fn get(&self, key: &BlobKey) -> Result<Vec<u8>, StoreError>;

    /// The object as a stream of chunks: for originals of any size.
    async fn get_stream(&self, key: &BlobKey) -> Result<BlobStream, StoreError>;

    async fn exists(&self, key: &BlobKey) -> Result<bool, StoreError>;

    /// Remove the object; removing a missing key succeeds (the sweep may race a retry).
    async fn delete(&self, key: &BlobKey) -> Result<(), StoreError>;

    /// Every object whose key starts with `prefix` (`""` for all), in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, StoreError>;

    /// A URL a client can GET the object from directly for `ttl`, where the backend can sign
    /// one (S3). `None` means the server must serve the bytes itself (folder and memory).
    async fn presigned_get(
        &self,
        key: &BlobKey,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError>;

    /// Readiness: the backend answers and can take writes. Fails fast (a few seconds) when it
    /// is unreachable, as [`StoreError::Unavailable`].
    async fn check(&self) -> Result<(), StoreError>;

    /// Short name for logs and `/readyz`: `fs`, `s3` or `memory`.
    fn kind(&self) -> &'static str;
}

/// The store configured in `settings`. Builds clients and folders but does no network I/O, so it
/// works where no runtime is driving futures yet; call [`BlobStore::check`] before serving
/// (it also creates the S3 bucket when `s3_create_bucket` is set).
pub fn from_settings(settings: &Settings) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match settings.blob_store {
        BlobStoreKind::Fs => Arc::new(fs::FsStore::open(settings.blob_dir())?),
        BlobStoreKind::S3 => Arc::new(s3::S3Store::new(&s3::S3Config::from_settings(settings)?)?),
        BlobStoreKind::Memory => Arc::new(memory::MemoryStore::default()),
    })
}
