//! The orphan sweep: blobs no row refers to are removed once they are older than the grace
//! period — originals and thumbnails no evidence row (and no upload's lease) refers to (an upload
//! that failed after storing its bytes), and quote PDFs no quote refers to (an issue rolled back
//! after storing its PDF). Safe with N instances: deleting an object twice is harmless.

use crate::db::evidence as repo;
use crate::state::AppState;
use time::{Duration, OffsetDateTime};

/// The SHA-256 a blob key stands for (`originals/ab/<sha>` or `thumbs/<sha>.jpg`).
fn sha_of(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?;
    let sha = name.strip_suffix(".jpg").unwrap_or(name);
    (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sha)
}

/// How far back past the grace period a pass looks. Every pass (hourly by default, on every
/// instance) re-checking every blob ever stored against the database would be millions of
/// queries an hour at millions of photos; a blob is only an orphan candidate in the week after
/// its grace ended, which every pass of that week sees. (After more than a week without any
/// instance running, orphans from before stay: storage, not data.)
pub const LOOKBACK: Duration = Duration::days(7);

/// One pass; returns how many blobs were removed.
pub async fn sweep_orphans(
    state: &AppState,
    now: OffsetDateTime,
    grace: Duration,
) -> anyhow::Result<usize> {
    let cutoff = now - grace;
    let oldest = cutoff - LOOKBACK;
    let mut removed = 0;
    for prefix in ["originals/", "thumbs/", "quotes/"] {
        for entry in state.blobs.list(prefix).await? {
            if entry.last_modified > cutoff || entry.last_modified < oldest {
                continue;
            }
            let in_use = if prefix == "quotes/" {
                crate::db::quotes::pdf_in_use(&state.db, entry.key.as_str()).await?
            } else {
                let Some(sha) = sha_of(entry.key.as_str()) else {
                    continue;
                };
                repo::sha_in_use(&state.db, sha, cutoff).await?
            };
            if in_use {
                continue;
            }
            state.blobs.delete(&entry.key).await?;
            tracing::info!(key = %entry.key, "orphan blob removed");
            removed += 1;
        }
    }
    repo::prune_leases(&state.db, cutoff).await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::sha_of;

    #[test]
    fn keys_map_back_to_their_hash() {
        let sha = "a".repeat(64);
        assert_eq!(sha_of(&format!("originals/aa/{sha}")), Some(sha.as_str()));
        assert_eq!(sha_of(&format!("thumbs/{sha}.jpg")), Some(sha.as_str()));
        assert_eq!(sha_of("uploads/x/0000"), None);
    }
}
