//! The pool in id order: `leads_pool_idx (org_id, id) WHERE status = 'pool'`. A rep's lead list
//! is their own leads and the pool; read as one `OR`, SQLite walked the org's whole table for
//! every page (~190 ms at 1M leads) and PostgreSQL the primary key until a page had matched.
//! Now the two are read apart (`db::leads::list_queries`), the pool a page at a time from this
//! index. Partial: a lead assigned at intake — nearly every one — never enters it, so intake
//! writes no page of it; only leads that wait in the pool do.

use crate::util::drop_index;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A partial index: the same statement on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX leads_pool_idx ON leads (org_id, id) WHERE status = 'pool'",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, "leads", "leads_pool_idx").await
    }
}
