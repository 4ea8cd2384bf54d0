//! The folder store: one file per key under a root folder (default `<data_dir>/blobs`).
//!
//! A write goes to a staging file in `<root>/.~staging/` (same file system as its target), is
//! fsynced, then published with `link(2)`, which fails if the target exists. Unlike `rename`,
//! that never replaces a blob, so of N concurrent writers of one key exactly one wins and a
//! reader never sees a half-written file. All file I/O runs on tokio's blocking pool so the HTTP
//! workers stay free.

use super::{BlobEntry, BlobKey, BlobStore, BlobStream, PutOutcome, StoreError, validate_prefix};
use async_trait::async_trait;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

/// Staging folder name: it starts with `.`, which no key segment may, so it can never collide
/// with a blob and listing skips it.
const STAGING: &str = ".~staging";

/// Staging files older than this are leftovers of a crash; younger ones may belong to another
/// process writing into the same folder right now.
const STALE_STAGING: Duration = Duration::from_secs(24 * 60 * 60);

/// Chunk size for streamed reads.
const READ_CHUNK: usize = 64 * 1024;

pub struct FsStore {
    root: PathBuf,
    /// Folders this process has fsynced together with every folder above them up to the root:
    /// their entries are on disk, so a later blob in one of them needs only its own folder
    /// synced (one fsync instead of one per level: three for an original, two for a thumbnail).
    /// The store never removes a folder; one removed and made again from outside while the
    /// process runs (a restore by hand) would not be noticed until the next start.
    durable: Arc<Mutex<HashSet<PathBuf>>>,
}

impl FsStore {
    /// Use (and create if needed) `root`; clears staging files a crash left behind.
    pub fn open(root: impl Into<PathBuf>) -> anyhow::Result<FsStore> {
        use anyhow::Context;
        let root = root.into();
        let staging = root.join(STAGING);
        fs::create_dir_all(&staging)
            .with_context(|| format!("creating blob folder {}", staging.display()))?;
        remove_stale_staging(&staging);
        Ok(FsStore {
            root,
            durable: Arc::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &BlobKey) -> PathBuf {
        // BlobKey allows only relative, dot-free segments, so this stays under root.
        self.root.join(key.as_str())
    }

    fn staging_path(&self) -> PathBuf {
        self.root
            .join(STAGING)
            .join(uuid::Uuid::new_v4().simple().to_string())
    }
}

fn remove_stale_staging(staging: &Path) {
    let Ok(entries) = fs::read_dir(staging) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age > STALE_STAGING);
        if stale && let Err(e) = fs::remove_file(entry.path()) {
            tracing::warn!(path = %entry.path().display(), error = %e, "could not remove stale staging file");
        }
    }
}

/// Removes the staging file however the write ends (published, refused, failed or panicked).
struct StagingFile(PathBuf);

impl Drop for StagingFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn io_error(context: impl Into<String>, e: io::Error) -> StoreError {
    StoreError::other(context, e)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::other("blob store I/O task failed", e))?
}

/// Publish a fully written, fsynced staging file under `target` unless something is there.
fn publish(
    root: &Path,
    durable: &Mutex<HashSet<PathBuf>>,
    staging: &StagingFile,
    target: &Path,
) -> Result<PutOutcome, StoreError> {
    let parent = target.parent().unwrap_or(root);
    fs::create_dir_all(parent)
        .map_err(|e| io_error(format!("creating {}", parent.display()), e))?;
    match fs::hard_link(&staging.0, target) {
        Ok(()) => {
            sync_dirs(root, durable, parent)?;
            Ok(PutOutcome::Created)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => existing_durable(root, durable, target),
        Err(e) => Err(io_error(format!("publishing {}", target.display()), e)),
    }
}

/// A key that is already taken by a blob, answered only once its entry is on disk: the writer
/// that linked it may not have synced its folder yet (a retry racing its first attempt), and
/// the caller is about to record the blob as stored.
fn existing_durable(
    root: &Path,
    durable: &Mutex<HashSet<PathBuf>>,
    target: &Path,
) -> Result<PutOutcome, StoreError> {
    let outcome = existing_blob(target)?;
    sync_dirs(root, durable, target.parent().unwrap_or(root))?;
    Ok(outcome)
}

/// A key that is already taken: fine if it is a blob, an error if it names a folder.
fn existing_blob(target: &Path) -> Result<PutOutcome, StoreError> {
    let metadata =
        fs::metadata(target).map_err(|e| io_error(format!("reading {}", target.display()), e))?;
    if metadata.is_file() {
        Ok(PutOutcome::AlreadyExisted)
    } else {
        Err(StoreError::other(
            format!("{} is a folder, not a blob", target.display()),
            "key names a folder",
        ))
    }
}

/// fsync the folder that got the new link, and each folder above it whose entry may be new,
/// so the new blob (and any folders `create_dir_all` just made) survive a power cut. The climb
/// stops at a folder known durable: one this process synced before together with the folder
/// holding its entry, so that entry is on disk already. A folder made meanwhile by someone else
/// (another writer of this process still climbing, another process) is not known, and its
/// parent is synced too.
fn sync_dirs(
    root: &Path,
    durable: &Mutex<HashSet<PathBuf>>,
    from: &Path,
) -> Result<Vec<PathBuf>, StoreError> {
    let known = |dir: &Path| {
        durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(dir)
    };
    let mut synced = Vec::new();
    let mut dir = Some(from);
    while let Some(current) = dir {
        File::open(current)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(format!("syncing {}", current.display()), e))?;
        synced.push(current.to_path_buf());
        if current == root || known(current) {
            break;
        }
        dir = current.parent().filter(|p| p.starts_with(root));
    }
    durable
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(synced.iter().cloned());
    Ok(synced)
}

/// Write `fill`'s output to a new staging file and fsync it.
fn stage(
    staging: &StagingFile,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), StoreError> {
    let context = || format!("writing {}", staging.0.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&staging.0)
        .map_err(|e| io_error(context(), e))?;
    fill(&mut file).map_err(|e| io_error(context(), e))?;
    file.sync_all().map_err(|e| io_error(context(), e))
}

fn not_found_or(key: &BlobKey, context: String, e: io::Error) -> StoreError {
    if e.kind() == ErrorKind::NotFound {
        StoreError::NotFound {
            key: key.to_string(),
        }
    } else {
        io_error(context, e)
    }
}

#[async_trait]
impl BlobStore for FsStore {
    async fn put_file(
        &self,
        key: &BlobKey,
        path: &Path,
        _content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        let (root, target, staging) = (self.root.clone(), self.path_of(key), self.staging_path());
        let durable = self.durable.clone();
        let source = path.to_path_buf();
        blocking(move || {
            // A retried upload of a photo already stored needs no copy at all.
            if target.exists() {
                return existing_durable(&root, &durable, &target);
            }
            let staging = StagingFile(staging);
            // The received file is usually on the same file system (the data folder): link it
            // instead of copying it, and fsync it where it is. Its writer is done with it, and
            // removing the temp name later leaves the blob.
            if fs::hard_link(&source, &staging.0).is_ok() {
                File::open(&staging.0)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| io_error(format!("syncing {}", staging.0.display()), e))?;
                return publish(&root, &durable, &staging, &target);
            }
            stage(&staging, |file| {
                // std::io::copy between files uses copy_file_range on Linux: no user-space buffer
                // for the whole file, and a reflink where the file system offers one.
                let mut from = File::open(&source)?;
                io::copy(&mut from, file).map(|_| ())
            })?;
            publish(&root, &durable, &staging, &target)
        })
        .await
    }

    async fn put_bytes(
        &self,
        key: &BlobKey,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        let (root, target, staging) = (self.root.clone(), self.path_of(key), self.staging_path());
        let durable = self.durable.clone();
        blocking(move || {
            if target.exists() {
                return existing_durable(&root, &durable, &target);
            }
            let staging = StagingFile(staging);
            stage(&staging, |file| io::Write::write_all(file, &bytes))?;
            publish(&root, &durable, &staging, &target)
        })
        .await
    }

    async fn get(&self, key: &BlobKey) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(key);
        tokio::fs::read(&path)
            .await
            .map_err(|e| not_found_or(key, format!("reading {}", path.display()), e))
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<BlobStream, StoreError> {
        use tokio::io::AsyncReadExt;
        let path = self.path_of(key);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| not_found_or(key, format!("opening {}", path.display()), e))?;
        let stream =
            futures_util::stream::try_unfold((file, path), |(mut file, path)| async move {
                let mut chunk = vec![0u8; READ_CHUNK];
                let read = file
                    .read(&mut chunk)
                    .await
                    .map_err(|e| io_error(format!("reading {}", path.display()), e))?;
                if read == 0 {
                    return Ok(None);
                }
                chunk.truncate(read);
                Ok(Some((bytes::Bytes::from(chunk), (file, path))))
            });
        Ok(Box::pin(stream))
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, StoreError> {
        let path = self.path_of(key);
        match tokio::fs::metadata(&path).await {
            Ok(metadata) => Ok(metadata.is_file()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            // "a/b" when "a" is a file: no such blob either.
            Err(e) if e.kind() == ErrorKind::NotADirectory => Ok(false),
            Err(e) => Err(io_error(format!("reading {}", path.display()), e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StoreError> {
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(()),
            Err(e) => Err(io_error(format!("removing {}", path.display()), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, StoreError> {
        validate_prefix(prefix)?;
        let (root, prefix) = (self.root.clone(), prefix.to_owned());
        blocking(move || list_blocking(&root, &prefix)).await
    }

    async fn presigned_get(
        &self,
        _key: &BlobKey,
        _ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    async fn check(&self) -> Result<(), StoreError> {
        let staging = self.staging_path();
        blocking(move || {
            let probe = StagingFile(staging);
            stage(&probe, |file| io::Write::write_all(file, b"ready?"))
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "fs"
    }
}

/// Walk only the folder the prefix points into, skipping dot entries (staging) and anything
/// whose relative path is not a valid key.
fn list_blocking(root: &Path, prefix: &str) -> Result<Vec<BlobEntry>, StoreError> {
    let start_rel = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
    let mut pending = vec![(root.join(start_rel), start_rel.to_owned())];
    let mut found = Vec::new();
    while let Some((dir, rel)) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                continue;
            }
            Err(e) => return Err(io_error(format!("listing {}", dir.display()), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error(format!("listing {}", dir.display()), e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            // Skip whole subtrees that cannot contain a match.
            if !(child_rel.starts_with(prefix) || prefix.starts_with(&child_rel)) {
                continue;
            }
            let metadata = match entry.metadata() {
                Ok(m) => m,
                // Deleted between read_dir and stat: the sweep raced a delete, nothing to list.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(format!("reading {}", entry.path().display()), e)),
            };
            if metadata.is_dir() {
                pending.push((entry.path(), child_rel));
            } else if metadata.is_file()
                && child_rel.starts_with(prefix)
                && let Ok(key) = BlobKey::parse(child_rel)
            {
                let modified = metadata
                    .modified()
                    .map_err(|e| io_error(format!("reading {}", entry.path().display()), e))?;
                found.push(BlobEntry {
                    key,
                    size: metadata.len(),
                    last_modified: OffsetDateTime::from(modified),
                });
            }
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn staging_files_never_show_up_as_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join(STAGING).join("leftover"), b"x").unwrap();
        std::fs::write(dir.path().join("NOT-A-KEY"), b"x").unwrap();
        let key = BlobKey::parse("originals/aa").unwrap();
        store
            .put_bytes(&key, b"photo".to_vec(), "image/jpeg")
            .await
            .unwrap();
        let listed = store.list("").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, key);
        assert_eq!(listed[0].size, 5);
    }

    #[tokio::test]
    async fn a_key_naming_a_folder_is_no_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let child = BlobKey::parse("a/b").unwrap();
        store.put_bytes(&child, b"x".to_vec(), "x/y").await.unwrap();
        let folder = BlobKey::parse("a").unwrap();
        assert!(!store.exists(&folder).await.unwrap());
        assert!(
            store
                .put_bytes(&folder, b"y".to_vec(), "x/y")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn no_staging_file_is_left_after_a_refused_put() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let key = BlobKey::parse("k").unwrap();
        store.put_bytes(&key, b"1".to_vec(), "x/y").await.unwrap();
        // Skip the fast path: write a staging file and lose the publish race.
        let staging = StagingFile(store.staging_path());
        stage(&staging, |f| io::Write::write_all(f, b"2")).unwrap();
        let outcome = publish(dir.path(), &store.durable, &staging, &store.path_of(&key)).unwrap();
        assert_eq!(outcome, PutOutcome::AlreadyExisted);
        drop(staging);
        let left = std::fs::read_dir(dir.path().join(STAGING)).unwrap().count();
        assert_eq!(left, 0);
        assert_eq!(store.get(&key).await.unwrap(), b"1");
    }

    #[test]
    fn only_folders_whose_entry_may_be_new_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let durable = Mutex::default();
        let sync = |rel: &str| {
            let folder = root.join(rel);
            std::fs::create_dir_all(&folder).unwrap();
            sync_dirs(root, &durable, &folder)
                .unwrap()
                .into_iter()
                .map(|d| d.strip_prefix(root).unwrap().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        // The first blob under a new folder: every level up to the root.
        assert_eq!(sync("originals/ab"), ["originals/ab", "originals", ""]);
        // The next one in the same folder: that folder only.
        assert_eq!(sync("originals/ab"), ["originals/ab"]);
        // A new sibling folder: it, and the parent that got its entry.
        assert_eq!(sync("originals/cd"), ["originals/cd", "originals"]);
        // A folder someone else made is not known: its parent is synced as well.
        std::fs::create_dir_all(root.join("originals/ef")).unwrap();
        assert_eq!(sync("originals/ef"), ["originals/ef", "originals"]);
        assert_eq!(sync("thumbs"), ["thumbs", ""]);
        assert_eq!(sync("thumbs"), ["thumbs"]);
    }

    #[tokio::test]
    async fn a_blob_found_already_stored_has_its_folder_synced_before_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        // Linked by another writer that has not synced its folder yet.
        std::fs::create_dir_all(dir.path().join("originals/ab")).unwrap();
        std::fs::write(dir.path().join("originals/ab/x"), b"photo").unwrap();
        let key = BlobKey::parse("originals/ab/x").unwrap();
        let outcome = store
            .put_bytes(&key, b"photo".to_vec(), "image/jpeg")
            .await
            .unwrap();
        assert_eq!(outcome, PutOutcome::AlreadyExisted);
        let durable = store.durable.lock().unwrap();
        assert!(durable.contains(&dir.path().join("originals/ab")));
        assert!(durable.contains(&dir.path().join("originals")));
    }
}
