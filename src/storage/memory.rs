//! A [`BlobStore`] in a map, for unit tests of code that stores blobs. It keeps the same
//! create-if-absent contract as the real backends so tests exercise the real semantics.

use super::{BlobEntry, BlobKey, BlobStore, BlobStream, PutOutcome, StoreError, validate_prefix};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<BlobKey, Stored>>,
}

struct Stored {
    bytes: bytes::Bytes,
    last_modified: OffsetDateTime,
}

impl MemoryStore {
    fn objects(&self) -> MutexGuard<'_, BTreeMap<BlobKey, Stored>> {
        // A panic while holding the lock cannot leave a half-written entry (inserts are single
        // calls), so the map is still consistent and poisoning can be ignored.
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn insert_if_absent(&self, key: &BlobKey, bytes: bytes::Bytes) -> PutOutcome {
        let mut objects = self.objects();
        if objects.contains_key(key) {
            return PutOutcome::AlreadyExisted;
        }
        objects.insert(
            key.clone(),
            Stored {
                bytes,
                last_modified: OffsetDateTime::now_utc(),
            },
        );
        PutOutcome::Created
    }

    fn bytes_of(&self, key: &BlobKey) -> Result<bytes::Bytes, StoreError> {
        self.objects()
            .get(key)
            .map(|stored| stored.bytes.clone())
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
            })
    }
}

#[async_trait]
impl BlobStore for MemoryStore {
    async fn put_file(
        &self,
        key: &BlobKey,
        path: &Path,
        _content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| StoreError::other(format!("reading {}", path.display()), e))?;
        Ok(self.insert_if_absent(key, bytes.into()))
    }

    async fn put_bytes(
        &self,
        key: &BlobKey,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        Ok(self.insert_if_absent(key, bytes.into()))
    }

    async fn get(&self, key: &BlobKey) -> Result<Vec<u8>, StoreError> {
        Ok(self.bytes_of(key)?.to_vec())
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<BlobStream, StoreError> {
        let bytes = self.bytes_of(key)?;
        Ok(Box::pin(futures_util::stream::iter([Ok(bytes)])))
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, StoreError> {
        Ok(self.objects().contains_key(key))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StoreError> {
        self.objects().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, StoreError> {
        validate_prefix(prefix)?;
        Ok(self
            .objects()
            .iter()
            .filter(|(key, _)| key.as_str().starts_with(prefix))
            .map(|(key, stored)| BlobEntry {
                key: key.clone(),
                size: stored.bytes.len() as u64,
                last_modified: stored.last_modified,
            })
            .collect())
    }

    async fn presigned_get(
        &self,
        _key: &BlobKey,
        _ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> BlobKey {
        BlobKey::parse(raw).unwrap()
    }

    #[tokio::test]
    async fn second_put_keeps_the_first_bytes() {
        let store = MemoryStore::default();
        let k = key("originals/ab");
        assert_eq!(
            store
                .put_bytes(&k, b"one".to_vec(), "image/jpeg")
                .await
                .unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store
                .put_bytes(&k, b"two".to_vec(), "image/jpeg")
                .await
                .unwrap(),
            PutOutcome::AlreadyExisted
        );
        assert_eq!(store.get(&k).await.unwrap(), b"one");
    }

    #[tokio::test]
    async fn list_filters_by_prefix_and_delete_is_idempotent() {
        let store = MemoryStore::default();
        store.put_bytes(&key("a/1"), vec![1], "x/y").await.unwrap();
        store
            .put_bytes(&key("b/1"), vec![1, 2], "x/y")
            .await
            .unwrap();
        let listed = store.list("a/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key.as_str(), "a/1");
        store.delete(&key("a/1")).await.unwrap();
        store.delete(&key("a/1")).await.unwrap();
        assert!(!store.exists(&key("a/1")).await.unwrap());
        assert!(matches!(
            store.get(&key("a/1")).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}
