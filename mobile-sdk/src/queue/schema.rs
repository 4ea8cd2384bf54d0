//! The queue database's schema, one step per version, tracked in `PRAGMA user_version`.
//! Each step runs in one transaction with the version bump, so an upgrade interrupted by a
//! kill leaves the previous version intact. Never edit a released step: add the next one.

use crate::error::SdkError;
use rusqlite::Connection;

/// Version 1, as first released: one table of captures.
pub const V1: &str = "
CREATE TABLE captures (
    capture_id    TEXT PRIMARY KEY,
    deal_id       TEXT NOT NULL,
    node_key      TEXT NOT NULL,
    photo_file    TEXT NOT NULL,
    manifest_json TEXT NOT NULL,
    signature     TEXT NOT NULL,
    state         TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
";

/// Version 2: reasons and evidence ids from the server, resumable upload ids, pre-check
/// results, tags, a key-value table for the session, and the offline deal cache. The photo's
/// hash moves into its own column, filled from the signed manifest for existing rows.
const V2: &str = "
ALTER TABLE captures ADD COLUMN tags_json     TEXT NOT NULL DEFAULT '[]';
ALTER TABLE captures ADD COLUMN sha256        TEXT NOT NULL DEFAULT '';
ALTER TABLE captures ADD COLUMN size_bytes    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE captures ADD COLUMN precheck_json TEXT;
ALTER TABLE captures ADD COLUMN phash         TEXT;
ALTER TABLE captures ADD COLUMN reasons_json  TEXT NOT NULL DEFAULT '[]';
ALTER TABLE captures ADD COLUMN evidence_id   TEXT;
ALTER TABLE captures ADD COLUMN upload_id     TEXT;
ALTER TABLE captures ADD COLUMN attempts      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE captures ADD COLUMN last_error    TEXT;
ALTER TABLE captures ADD COLUMN photo_deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE captures ADD COLUMN updated_at    TEXT NOT NULL DEFAULT '';
UPDATE captures SET sha256 = json_extract(manifest_json, '$.sha256'),
                    updated_at = created_at;
CREATE INDEX captures_by_state ON captures(state, created_at);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE deals (deal_id TEXT PRIMARY KEY, json TEXT NOT NULL, fetched_at TEXT NOT NULL);
";

/// Version 3: where and when the rules placed each capture (EXIF GPS or the manifest's fix;
/// the judged capture instant), so later pre-checks see the same travel history the server
/// keeps. Rows from before stay NULL and fall back to the manifest.
const V3: &str = "
ALTER TABLE captures ADD COLUMN capture_lat REAL;
ALTER TABLE captures ADD COLUMN capture_lon REAL;
ALTER TABLE captures ADD COLUMN captured_at TEXT;
";

/// Every step after version 0, in order: `STEPS[i]` takes the database to version `i + 1`.
const STEPS: [&str; 3] = [V1, V2, V3];

/// The version this build writes.
pub const CURRENT: u32 = STEPS.len() as u32;

/// Brings the database up to [`CURRENT`]; refuses a database from a newer SDK.
pub fn upgrade(conn: &mut Connection) -> Result<u32, SdkError> {
    let mut version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT {
        return Err(SdkError::Corrupt(format!(
            "the queue was written by a newer SDK (schema {version}, this one knows {CURRENT})"
        )));
    }
    while version < CURRENT {
        let tx = conn.transaction()?;
        tx.execute_batch(STEPS[version as usize])?;
        version += 1;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(version)
}
