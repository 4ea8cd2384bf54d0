//! The orphan sweep: bytes no row refers to are removed once they are older than the grace
//! period — a photo and its thumbnail whose upload failed after storing them, and quote PDFs no
//! quote refers to (an issue rolled back after storing its PDF). Safe with N instances: deleting
//! an object or a lease twice is harmless, and a photo's bytes are looked at and deleted while
//! an upload leasing the same bytes waits ([`lease`]).
//!
//! Photos are found through their **upload leases**, not by listing the store: every upload
//! leases its SHA-256 before it stores a byte ([`repo::lease`]), so a lease that outlived the
//! grace period is the only trace an orphan can have. A pass reads the expired leases (oldest
//! first, in pages), removes the bytes of those no evidence row (and no newer lease) claims, and
//! forgets the leases: its work grows with the uploads of the last interval, not with the
//! millions of photos in the store (listing them was thousands of `ListObjectsV2` calls per
//! pass, per instance, at a million photos).

use crate::db::evidence as repo;
use crate::state::AppState;
use crate::storage::BlobKey;
use sea_orm::{DbBackend, TransactionTrait};
use time::{Duration, OffsetDateTime};

/// How far back past the grace period a pass looks for quote PDFs, which have no lease and are
/// found by listing `quotes/` (one per issued quote: thousands, not millions). A PDF is only an
/// orphan candidate in the week after its grace ended, which every pass of that week sees.
pub const QUOTE_LOOKBACK: Duration = Duration::days(7);

/// The blobs an upload of these bytes may have stored: the original and its thumbnail (none for
/// a value that is not a SHA-256 in hex, which no upload leases).
fn keys_of(sha: &str) -> Option<[BlobKey; 2]> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some([super::original_key(sha).ok()?, super::thumb_key(sha).ok()?])
}

/// Remove the original and thumbnail of `sha` unless they are claimed: by an evidence row, or by
/// an upload of the same bytes that leased them since `cutoff`. Claimed bytes (nearly every
/// expired lease: its upload went through) are skipped on a plain read. Otherwise the look is
/// taken again and the deletes made while leases of these bytes wait ([`lease`]): without that,
/// a re-upload of the same bytes could lease, store (finding them still there) and commit its
/// row between the look and the delete, and lose its photo. In this process the wait is the
/// bytes' entry in `bytes_locks`; on PostgreSQL, for other instances too, their advisory lock,
/// held exclusively in a transaction. SQLite holds no transaction here: its one writer
/// connection stays free while the blob store is called.
async fn remove_if_unclaimed(
    state: &AppState,
    sha: &str,
    cutoff: OffsetDateTime,
) -> anyhow::Result<usize> {
    if repo::sha_in_use(&state.reads, sha, cutoff).await? {
        return Ok(0);
    }
    let Some(keys) = keys_of(sha) else {
        return Ok(0);
    };
    let _turn = state.bytes_locks.lock(&keys[0]).await;
    let txn = match state.db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = state.db.begin().await?;
            repo::lock_bytes_exclusive(&txn, sha).await?;
            Some(txn)
        }
        _ => None,
    };
    let claimed = match &txn {
        Some(txn) => repo::sha_in_use(txn, sha, cutoff).await?,
        None => repo::sha_in_use(&state.reads, sha, cutoff).await?,
    };
    let mut removed = 0;
    if !claimed {
        for key in &keys {
            if state.blobs.exists(key).await? {
                state.blobs.delete(key).await?;
                tracing::info!(key = %key, "orphan blob removed");
                removed += 1;
            }
        }
    }
    if let Some(txn) = txn {
        txn.commit().await?;
    }
    Ok(removed)
}

/// Record that an upload of `sha`'s bytes is under way, so the orphan sweep leaves them alone:
/// the lease is written while no sweep looks at or deletes these bytes, in this process
/// (`bytes_locks`) and, on PostgreSQL, in any ([`repo::lease`] takes their advisory lock in
/// shared mode). Once it is committed no sweep removes the bytes until it is past the grace
/// period, so an upload that stores them after its lease has them at its commit.
pub async fn lease(state: &AppState, sha: &str) -> Result<(), crate::error::ApiError> {
    let original = super::original_key(sha)?;
    let _turn = state.bytes_locks.lock(&original).await;
    repo::lease(&state.db, sha).await?;
    Ok(())
}

/// Expired leases read per page.
const LEASE_PAGE: u64 = 500;

/// One pass; returns how many blobs were removed.
pub async fn sweep_orphans(
    state: &AppState,
    now: OffsetDateTime,
    grace: Duration,
) -> anyhow::Result<usize> {
    let cutoff = now - grace;
    let mut removed = 0;
    loop {
        let leases = repo::leases_before(&state.db, cutoff, LEASE_PAGE).await?;
        for (_, sha) in &leases {
            removed += remove_if_unclaimed(state, sha, cutoff).await?;
        }
        let ids: Vec<String> = leases.iter().map(|(id, _)| id.clone()).collect();
        repo::forget_leases(&state.db, &ids).await?;
        if (leases.len() as u64) < LEASE_PAGE {
            break;
        }
    }
    let oldest = cutoff - QUOTE_LOOKBACK;
    for entry in state.blobs.list("quotes/").await? {
        if entry.last_modified > cutoff || entry.last_modified < oldest {
            continue;
        }
        if crate::db::quotes::pdf_in_use(&state.db, entry.key.as_str()).await? {
            continue;
        }
        state.blobs.delete(&entry.key).await?;
        tracing::info!(key = %entry.key, "orphan blob removed");
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::keys_of;

    #[test]
    fn a_leased_hash_names_its_original_and_thumbnail() {
        let sha = "a".repeat(64);
        let [original, thumb] = keys_of(&sha).unwrap();
        assert_eq!(original.as_str(), format!("originals/aa/{sha}"));
        assert_eq!(thumb.as_str(), format!("thumbs/{sha}.jpg"));
        assert!(keys_of("ab").is_none());
        assert!(keys_of(&"g".repeat(64)).is_none());
    }
}
