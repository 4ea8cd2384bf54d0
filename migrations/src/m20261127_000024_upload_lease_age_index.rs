//! Upload leases by age: `upload_leases_created_idx (created_at)`. The orphan sweep walks the
//! leases that outlived the grace period (an upload that stored its bytes but never its row)
//! instead of listing every blob in the store, and forgets them; both read leases by age.

use crate::util::{drop_index, index};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                "upload_leases_created_idx",
                Alias::new("upload_leases"),
                &["created_at"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, "upload_leases", "upload_leases_created_idx").await
    }
}
