//! The perceptual-hash index as four 16-bit quarters instead of eight bytes, each row carrying
//! the whole hash.
//!
//! With bytes, a lookup asked for hashes sharing one of the eight bytes exactly. That finds
//! every hash within 7 bits (eight bytes cannot each hold one of 7 differences), but the
//! near-duplicate check allows 10 by default, and at a million photos an org's byte value is
//! shared by ~3,900 of them: a lookup read ~31,000 index entries and kept an arbitrary 2,000.
//! With quarters (multi-index hashing) the search looks up, in each quarter, every value within
//! `k / 4` bits (137 values for the default 10), which finds every hash within `k`; a quarter's
//! value is shared by ~15 photos in a million, and the hash in the row lets the distance be
//! computed from the index alone, before any evidence row is read.
//!
//! Up and down rebuild the table from `evidence.phash` (16 hex digits), a page at a time.

use crate::util::index;
use fieldproof_domain::evidence::PerceptualHash;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, string};
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EvidenceBands {
    Table,
    EvidenceId,
    OrgId,
    Band,
    Value,
    Phash,
}

const LOOKUP: &str = "evidence_bands_lookup_idx";
/// Evidence rows read per page of the rebuild.
const PAGE: u64 = 500;

/// The two layouts of the table: this migration's, and the one before it.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// Four 16-bit quarters, each row with the whole hash.
    Quarters,
    /// Eight bytes (migration 000005).
    Bytes,
}

impl Layout {
    fn index_columns(self) -> &'static [&'static str] {
        match self {
            // The id too: the search then reads the index alone (SQLite's rows have a rowid of
            // their own, so its index would otherwise point at the row).
            Layout::Quarters => &["org_id", "band", "value", "phash", "evidence_id"],
            Layout::Bytes => &["org_id", "band", "value"],
        }
    }

    fn values(self, phash: u64) -> Vec<i32> {
        match self {
            Layout::Quarters => PerceptualHash(phash).bands().map(i32::from).to_vec(),
            Layout::Bytes => (0..8).map(|i| ((phash >> (i * 8)) & 0xFF) as i32).collect(),
        }
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too (sea-orm-migration makes one only on PostgreSQL): a
    /// process stopped between the drop and the rebuild leaves the table as it was.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, Layout::Quarters).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, Layout::Bytes).await
    }
}

/// Drop the table and make it again in `layout`, filled from every evidence row with a
/// perceptual hash.
async fn recreate(manager: &SchemaManager<'_>, layout: Layout) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(EvidenceBands::Table).to_owned())
        .await?;
    let mut table = Table::create();
    table
        .table(EvidenceBands::Table)
        .col(string(EvidenceBands::EvidenceId))
        .col(string(EvidenceBands::OrgId))
        .col(integer(EvidenceBands::Band))
        .col(integer(EvidenceBands::Value));
    if layout == Layout::Quarters {
        table.col(big_integer(EvidenceBands::Phash));
    }
    table.primary_key(
        Index::create()
            .col(EvidenceBands::EvidenceId)
            .col(EvidenceBands::Band),
    );
    manager.create_table(table.to_owned()).await?;
    manager
        .create_index(index(
            LOOKUP,
            EvidenceBands::Table,
            layout.index_columns(),
            false,
        ))
        .await?;
    rebuild(manager, layout).await
}

/// Fill the (empty) table from every evidence row with a perceptual hash, a page at a time.
async fn rebuild(manager: &SchemaManager<'_>, layout: Layout) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let mut after = String::new();
    loop {
        let page = Query::select()
            .columns([Alias::new("id"), Alias::new("org_id"), Alias::new("phash")])
            .from(Alias::new("evidence"))
            .and_where(Expr::col(Alias::new("phash")).is_not_null())
            .and_where(Expr::col(Alias::new("id")).gt(after.clone()))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(PAGE)
            .to_owned();
        let rows = db.query_all_raw(backend.build(&page)).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.try_get("", "id")?;
        let mut columns = vec![
            EvidenceBands::EvidenceId,
            EvidenceBands::OrgId,
            EvidenceBands::Band,
            EvidenceBands::Value,
        ];
        if layout == Layout::Quarters {
            columns.push(EvidenceBands::Phash);
        }
        let mut insert = Query::insert();
        insert.into_table(EvidenceBands::Table).columns(columns);
        let mut any = false;
        for row in &rows {
            let id: String = row.try_get("", "id")?;
            let org: String = row.try_get("", "org_id")?;
            let hex: String = row.try_get("", "phash")?;
            // Written by the server as 16 hex digits; anything else was never searchable.
            let Ok(phash) = u64::from_str_radix(&hex, 16) else {
                continue;
            };
            for (band, value) in layout.values(phash).into_iter().enumerate() {
                let mut row: Vec<SimpleExpr> = vec![
                    id.clone().into(),
                    org.clone().into(),
                    (band as i32).into(),
                    value.into(),
                ];
                if layout == Layout::Quarters {
                    // The hash's bits as a signed 64-bit integer (the column's type).
                    row.push((phash as i64).into());
                }
                insert
                    .values(row)
                    .map_err(|e| DbErr::Migration(format!("bands of {id}: {e}")))?;
                any = true;
            }
        }
        if any {
            db.execute_raw(backend.build(&insert)).await?;
        }
    }
}
