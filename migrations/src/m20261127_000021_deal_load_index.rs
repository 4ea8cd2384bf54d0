//! Rep loads count each rep's open deals by node, and every lead batch reads them: without an
//! index on `(org_id, status)` that was a scan of the whole `deals` table per batch (SQLite:
//! `SCAN deals`), sent back a row per deal. `deals_org_status_owner_node_idx` covers the
//! grouped count (`org_id`, `status` = 'open', then `owner_id`, `current_node_key`), so it is
//! read from the index alone.

use crate::util::{drop_index, index};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                "deals_org_status_owner_node_idx",
                Alias::new("deals"),
                &["org_id", "status", "owner_id", "current_node_key"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, "deals", "deals_org_status_owner_node_idx").await
    }
}
