//! The durable offline queue: one SQLite database (WAL, `synchronous=FULL`) plus a folder of
//! photos, each copied in untouched and fsynced *before* its row is committed. A kill at any
//! point leaves either no row (and at worst an orphan file, swept later) or a whole item.
//! Photos are deleted only after the server acknowledged storing them.

pub mod schema;

use crate::error::SdkError;
use crate::precheck::PrecheckReport;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where an item is. `queued → uploading → accepted | needs_review | rejected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Queued,
    Uploading,
    /// The server stored it and its verdict is `passed` (or a supervisor approved it).
    Accepted,
    /// Stored; only soft warnings: a supervisor decides (sync pulls the decision).
    NeedsReview,
    /// A hard failure: the server's verdict, or a permanent refusal such as `node_not_current`.
    Rejected,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Queued => "queued",
            ItemState::Uploading => "uploading",
            ItemState::Accepted => "accepted",
            ItemState::NeedsReview => "needs_review",
            ItemState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Result<ItemState, SdkError> {
        match s {
            "queued" => Ok(ItemState::Queued),
            "uploading" => Ok(ItemState::Uploading),
            "accepted" => Ok(ItemState::Accepted),
            "needs_review" => Ok(ItemState::NeedsReview),
            "rejected" => Ok(ItemState::Rejected),
            other => Err(SdkError::Corrupt(format!("unknown item state `{other}`"))),
        }
    }

    /// Nothing more to send. (`needs_review` may still change on the server; sync polls it.)
    pub fn is_terminal(self) -> bool {
        match self {
            ItemState::Queued | ItemState::Uploading => false,
            ItemState::Accepted | ItemState::NeedsReview | ItemState::Rejected => true,
        }
    }
}

/// One reason behind a state: a server check code (or error code) with its message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    /// `pass | warn | fail` for checks; `error` for a refusal.
    pub outcome: String,
    pub message: String,
    pub message_zh: String,
}

/// A queued capture as the app shows it. Plain types only (FFI-ready).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    pub capture_id: String,
    pub deal_id: String,
    pub node_key: String,
    pub tags: Vec<String>,
    pub state: ItemState,
    pub reasons: Vec<Reason>,
    pub evidence_id: Option<String>,
    pub photo_path: String,
    pub photo_deleted: bool,
    pub sha256: String,
    pub size_bytes: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub precheck: Option<PrecheckReport>,
    pub created_at: String,
    pub updated_at: String,
}

/// What sync needs beyond the visible item: the signed manifest exactly as signed.
#[derive(Debug, Clone)]
pub struct Pending {
    pub item: QueueItem,
    pub manifest_json: String,
    pub signature: String,
    pub upload_id: Option<String>,
}

/// A capture to record; the photo is already in the queue folder at `photo_file`.
#[derive(Debug, Clone)]
pub struct NewCapture {
    pub capture_id: String,
    pub deal_id: String,
    pub node_key: String,
    pub tags: Vec<String>,
    pub photo_file: String,
    pub manifest_json: String,
    pub signature: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub phash: Option<String>,
    pub precheck: Option<PrecheckReport>,
    /// Where and when the pre-check placed the capture (for later travel checks).
    pub placed: Option<Placed>,
}

/// A capture's place (WGS-84) and instant as the rules judged them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    pub lat: f64,
    pub lon: f64,
    pub at: OffsetDateTime,
}

/// An earlier capture, as the pre-check's history.
#[derive(Debug, Clone)]
pub struct PriorRow {
    pub capture_id: String,
    pub evidence_id: Option<String>,
    pub sha256: String,
    pub phash: Option<String>,
    pub manifest_json: String,
    pub placed: Option<Placed>,
}

pub struct Queue {
    conn: Mutex<Connection>,
    dir: PathBuf,
}

const COLUMNS: &str = "capture_id, deal_id, node_key, tags_json, state, reasons_json, evidence_id,
    photo_file, photo_deleted, sha256, size_bytes, attempts, last_error, precheck_json,
    created_at, updated_at, manifest_json, signature, upload_id";

/// Orphan photos (copied, row never committed) younger than this may belong to a capture in
/// progress in another process, so the sweep leaves them.
const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

impl Queue {
    /// Opens (creating or upgrading) the queue in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Queue, SdkError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(dir.join("photos"))
            .map_err(|e| SdkError::io("creating the queue folder", e))?;
        let mut conn = Connection::open(dir.join("queue.sqlite3"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        schema::upgrade(&mut conn)?;
        let queue = Queue {
            conn: Mutex::new(conn),
            dir,
        };
        queue.sweep_orphans()?;
        Ok(queue)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn photos_dir(&self) -> PathBuf {
        self.dir.join("photos")
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, SdkError> {
        self.conn.lock().map_err(|_| SdkError::Poisoned)
    }

    /// Records a capture whose photo is already durable in the photos folder.
    pub fn insert(&self, c: &NewCapture) -> Result<(), SdkError> {
        let now = now_rfc3339();
        let tags = serde_json::to_string(&c.tags).map_err(|e| SdkError::Invalid(e.to_string()))?;
        let precheck = c
            .precheck
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| SdkError::Invalid(e.to_string()))?;
        self.conn()?.execute(
            "INSERT INTO captures (capture_id, deal_id, node_key, photo_file, manifest_json,
                signature, state, created_at, tags_json, sha256, size_bytes, precheck_json, phash,
                updated_at, capture_lat, capture_lon, captured_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9, ?10, ?11, ?12, ?7, ?13, ?14,
                ?15)",
            params![
                c.capture_id,
                c.deal_id,
                c.node_key,
                c.photo_file,
                c.manifest_json,
                c.signature,
                now,
                tags,
                c.sha256,
                c.size_bytes as i64,
                precheck,
                c.phash,
                c.placed.map(|p| p.lat),
                c.placed.map(|p| p.lon),
                c.placed.and_then(|p| p.at.format(&Rfc3339).ok()),
            ],
        )?;
        Ok(())
    }

    /// Every item, newest first.
    pub fn list(&self) -> Result<Vec<QueueItem>, SdkError> {
        Ok(self
            .select("1 ORDER BY created_at DESC, capture_id", [])?
            .into_iter()
            .map(|p| p.item)
            .collect())
    }

    pub fn get(&self, capture_id: &str) -> Result<Option<QueueItem>, SdkError> {
        Ok(self
            .select("capture_id = ?1", [capture_id])?
            .into_iter()
            .next()
            .map(|p| p.item))
    }

    /// Items still to send, oldest first.
    pub fn pending(&self) -> Result<Vec<Pending>, SdkError> {
        self.select(
            "state IN ('queued', 'uploading') ORDER BY created_at, capture_id",
            [],
        )
    }

    /// Items the server stored whose decision may still change (a supervisor's review).
    pub fn awaiting_review(&self) -> Result<Vec<QueueItem>, SdkError> {
        Ok(self
            .select(
                "state = 'needs_review' AND evidence_id IS NOT NULL ORDER BY created_at",
                [],
            )?
            .into_iter()
            .map(|p| p.item)
            .collect())
    }

    fn select<P: rusqlite::Params>(
        &self,
        where_clause: &str,
        params: P,
    ) -> Result<Vec<Pending>, SdkError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM captures WHERE {where_clause}"
        ))?;
        let rows = stmt.query_map(params, |row| Ok(self.row(row)))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    fn row(&self, row: &Row<'_>) -> Result<Pending, SdkError> {
        let json_err = |what: &str| SdkError::Corrupt(format!("{what} is not valid JSON"));
        let tags: String = row.get(3)?;
        let reasons: String = row.get(5)?;
        let precheck: Option<String> = row.get(13)?;
        let photo_file: String = row.get(7)?;
        let state: String = row.get(4)?;
        Ok(Pending {
            item: QueueItem {
                capture_id: row.get(0)?,
                deal_id: row.get(1)?,
                node_key: row.get(2)?,
                tags: serde_json::from_str(&tags).map_err(|_| json_err("tags"))?,
                state: ItemState::parse(&state)?,
                reasons: serde_json::from_str(&reasons).map_err(|_| json_err("reasons"))?,
                evidence_id: row.get(6)?,
                photo_path: self
                    .photos_dir()
                    .join(&photo_file)
                    .to_string_lossy()
                    .into_owned(),
                photo_deleted: row.get::<_, i64>(8)? != 0,
                sha256: row.get(9)?,
                size_bytes: row.get::<_, i64>(10)?.max(0) as u64,
                attempts: row.get::<_, i64>(11)?.max(0) as u32,
                last_error: row.get(12)?,
                precheck: precheck
                    .map(|p| serde_json::from_str(&p))
                    .transpose()
                    .map_err(|_| json_err("precheck"))?,
                created_at: row.get(14)?,
                updated_at: row.get(15)?,
            },
            manifest_json: row.get(16)?,
            signature: row.get(17)?,
            upload_id: row.get(18)?,
        })
    }

    /// Marks an item as being sent (counts the attempt).
    pub fn mark_uploading(&self, capture_id: &str) -> Result<(), SdkError> {
        self.conn()?.execute(
            "UPDATE captures SET state = 'uploading', attempts = attempts + 1, updated_at = ?2
             WHERE capture_id = ?1 AND state IN ('queued', 'uploading')",
            params![capture_id, now_rfc3339()],
        )?;
        Ok(())
    }

    /// Remembers the resumable upload so a later run continues it instead of starting over.
    pub fn set_upload_id(&self, capture_id: &str, upload_id: Option<&str>) -> Result<(), SdkError> {
        self.conn()?.execute(
            "UPDATE captures SET upload_id = ?2, updated_at = ?3 WHERE capture_id = ?1",
            params![capture_id, upload_id, now_rfc3339()],
        )?;
        Ok(())
    }

    /// A transient failure: stays pending, with the error shown.
    pub fn record_error(&self, capture_id: &str, error: &str) -> Result<(), SdkError> {
        self.conn()?.execute(
            "UPDATE captures SET last_error = ?2, updated_at = ?3 WHERE capture_id = ?1",
            params![capture_id, error, now_rfc3339()],
        )?;
        Ok(())
    }

    /// The server's answer: a terminal state with its reasons (and the evidence id if stored).
    pub fn record_outcome(
        &self,
        capture_id: &str,
        state: ItemState,
        reasons: &[Reason],
        evidence_id: Option<&str>,
    ) -> Result<(), SdkError> {
        let reasons =
            serde_json::to_string(reasons).map_err(|e| SdkError::Invalid(e.to_string()))?;
        self.conn()?.execute(
            "UPDATE captures SET state = ?2, reasons_json = ?3,
                evidence_id = COALESCE(?4, evidence_id), last_error = NULL, updated_at = ?5
             WHERE capture_id = ?1",
            params![
                capture_id,
                state.as_str(),
                reasons,
                evidence_id,
                now_rfc3339()
            ],
        )?;
        Ok(())
    }

    /// Deletes the local photo of an item the server acknowledged (it has an evidence id).
    /// Refuses for an item without one: nothing unacknowledged is ever deleted.
    pub fn delete_acknowledged_photo(&self, capture_id: &str) -> Result<bool, SdkError> {
        let conn = self.conn()?;
        let row: Option<(String, Option<String>)> = conn
            .query_row(
                "SELECT photo_file, evidence_id FROM captures WHERE capture_id = ?1
                 AND photo_deleted = 0",
                [capture_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((file, Some(_evidence))) = row else {
            return Ok(false);
        };
        // The flag first: a kill between the two leaves a stray file (swept), never a row
        // that points at a missing photo it still wants to send.
        conn.execute(
            "UPDATE captures SET photo_deleted = 1 WHERE capture_id = ?1",
            [capture_id],
        )?;
        match std::fs::remove_file(self.photos_dir().join(file)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(SdkError::io("deleting an acknowledged photo", e)),
        }
    }

    /// Earlier captures (for the pre-check's duplicate and travel history).
    pub fn prior_captures(&self, exclude_capture_id: &str) -> Result<Vec<PriorRow>, SdkError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT capture_id, evidence_id, sha256, phash, manifest_json, capture_lat,
                    capture_lon, captured_at FROM captures
             WHERE capture_id <> ?1 ORDER BY created_at DESC LIMIT 500",
        )?;
        let rows = stmt.query_map([exclude_capture_id], |r| {
            let lat: Option<f64> = r.get(5)?;
            let lon: Option<f64> = r.get(6)?;
            let at: Option<String> = r.get(7)?;
            let at = at.and_then(|a| OffsetDateTime::parse(&a, &Rfc3339).ok());
            Ok(PriorRow {
                placed: match (lat, lon, at) {
                    (Some(lat), Some(lon), Some(at)) => Some(Placed { lat, lon, at }),
                    _ => None,
                },
                capture_id: r.get(0)?,
                evidence_id: r.get(1)?,
                sha256: r.get(2)?,
                phash: r.get(3)?,
                manifest_json: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>, SdkError> {
        Ok(self
            .conn()?
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), SdkError> {
        let conn = self.conn()?;
        match value {
            Some(v) => conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )?,
            None => conn.execute("DELETE FROM settings WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    /// Caches a deal (with its site, window and policy) for offline capture.
    pub fn put_deal(&self, deal_id: &str, json: &str) -> Result<(), SdkError> {
        self.conn()?.execute(
            "INSERT INTO deals (deal_id, json, fetched_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(deal_id) DO UPDATE SET json = excluded.json,
                fetched_at = excluded.fetched_at",
            params![deal_id, json, now_rfc3339()],
        )?;
        Ok(())
    }

    pub fn deal(&self, deal_id: &str) -> Result<Option<String>, SdkError> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT json FROM deals WHERE deal_id = ?1",
                [deal_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn deals(&self) -> Result<Vec<String>, SdkError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT json FROM deals ORDER BY deal_id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes half-copied photos and photos no row points to (older than the grace period).
    fn sweep_orphans(&self) -> Result<(), SdkError> {
        let known: std::collections::HashSet<String> = {
            let conn = self.conn()?;
            let mut stmt = conn.prepare("SELECT photo_file FROM captures")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let entries = std::fs::read_dir(self.photos_dir())
            .map_err(|e| SdkError::io("listing the queue's photos", e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if known.contains(&name) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > ORPHAN_GRACE);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

pub(crate) fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests;
