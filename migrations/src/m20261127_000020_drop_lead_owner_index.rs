//! `leads_owner_status_idx` `(owner_id, status)` goes. Every assigned lead wrote a random page of
//! it (one per owner's range: 1.14 WAL frames per lead in a burst, the largest single share of
//! what an intake commit writes), and no query needs it: a rep's leads of a status are found
//! through `leads_org_status_owner_load_idx` `(org_id, status, owner_id, …)` — SQLite's planner
//! chose that one already, PostgreSQL's takes it for the owner branch of the listing once this
//! one is gone (same plan shape, a bitmap OR with the pool branch).
//! Users are deactivated, never deleted, so the `owner_id` foreign key is not checked from the
//! users side.

use crate::util::{drop_index, index};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, "leads", "leads_owner_status_idx").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                "leads_owner_status_idx",
                Alias::new("leads"),
                &["owner_id", "status"],
                false,
            ))
            .await
    }
}
