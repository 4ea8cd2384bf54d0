//! Lead decision records as bytes: JSON text, or a zstd frame of that text.
//!
//! A rule decision's record at 1,000 reps is ~4–5 KB of JSON (every candidate of the deciding
//! layer with its numbers). On PostgreSQL that is past TOAST's ~2 KB threshold even after LZ4
//! (~2.2 KB), so every record of a burst was compressed by the server and written out of line
//! as two TOAST chunks with their index entries, after ~800 KB per 200-lead burst had crossed
//! the wire. The application now compresses large records itself (zstd, ~1.1 KB): they travel
//! small and stay in their row. Which form a row holds is told by its first bytes (a zstd
//! frame starts `28 b5 2f fd`, JSON text with `{`), so rows written before stay as they are.
//!
//! PostgreSQL: the column becomes `bytea` (the text's UTF-8 bytes). SQLite keeps the declared
//! type: its TEXT affinity stores a blob as the blob it is given and hands old text rows to the
//! application as their bytes. Down writes every packed record back as JSON text first.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The first four bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE lead_decisions ALTER COLUMN record TYPE bytea \
                     USING convert_to(record, 'UTF8')",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        unpack_all(manager).await?;
        let sql = match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                "ALTER TABLE lead_decisions ALTER COLUMN record TYPE text \
                 USING convert_from(record, 'UTF8')"
            }
            // Records short enough to stay JSON were still written as blobs.
            _ => {
                "UPDATE lead_decisions SET record = CAST(record AS TEXT) WHERE typeof(record) = 'blob'"
            }
        };
        manager.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }
}

/// Rewrite every packed record as its JSON text, a page at a time (a rewritten row no longer
/// matches, so each page is the next one).
async fn unpack_all(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let (select, update) = match backend {
        DatabaseBackend::Postgres => (
            "SELECT id, record FROM lead_decisions \
             WHERE substring(record FROM 1 FOR 4) = '\\x28b52ffd'::bytea LIMIT 500",
            "UPDATE lead_decisions SET record = $1 WHERE id = $2",
        ),
        _ => (
            "SELECT id, record FROM lead_decisions \
             WHERE typeof(record) = 'blob' AND substr(record, 1, 4) = x'28b52ffd' LIMIT 500",
            "UPDATE lead_decisions SET record = ? WHERE id = ?",
        ),
    };
    loop {
        let rows = db
            .query_all_raw(Statement::from_string(backend, select))
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let packed: Vec<u8> = row.try_get("", "record")?;
            if !packed.starts_with(&ZSTD_MAGIC) {
                return Err(DbErr::Migration(format!(
                    "decision {id}: selected as packed but is not a zstd frame"
                )));
            }
            let text = zstd::stream::decode_all(packed.as_slice())
                .map_err(|e| DbErr::Migration(format!("decision {id}: {e}")))?;
            // Back as text on SQLite; as the same bytes (now JSON) on PostgreSQL's bytea.
            let value = match backend {
                DatabaseBackend::Postgres => Value::Bytes(Some(text)),
                _ => Value::String(Some(String::from_utf8(text).map_err(|e| {
                    DbErr::Migration(format!("decision {id}: record is not UTF-8: {e}"))
                })?)),
            };
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                update,
                [value, Value::String(Some(id))],
            ))
            .await?;
        }
    }
}
