//! Two indexes every lead assignment wrote a random page of, reshaped so that a burst of
//! assignments appends to them instead (a batch's commit is mostly writing the pages its rows
//! touched, one WAL frame per page):
//! - `notifications_user_dedup_key` `(user_id, dedup_key)` becomes `notifications_dedup_key_user`
//!   `(dedup_key, user_id)`: still the unique key the inbox's `ON CONFLICT` names (a conflict
//!   target is a set of columns on both databases), but keys such as `lead_assigned:<lead id>`
//!   grow with time-ordered ids, so new entries land on the last page of their range instead of
//!   on one random page per recipient.
//! - `lead_decisions_rep_idx` `(rep_id, kind, decided_at)` only ever served the daily claim cap
//!   (claims of one rep since midnight); it becomes `lead_decisions_claims_idx`
//!   `(rep_id, decided_at) WHERE kind = 'claim'`, so rule and owner decisions — nearly all of
//!   them — no longer enter it at all.

use crate::util::{drop_index, index};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                "notifications_dedup_key_user",
                Alias::new("notifications"),
                &["dedup_key", "user_id"],
                true,
            ))
            .await?;
        drop_index(manager, "notifications", "notifications_user_dedup_key").await?;
        // A partial index: the same statement on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX lead_decisions_claims_idx ON lead_decisions (rep_id, decided_at) \
                 WHERE kind = 'claim'",
            )
            .await?;
        drop_index(manager, "lead_decisions", "lead_decisions_rep_idx").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                "lead_decisions_rep_idx",
                Alias::new("lead_decisions"),
                &["rep_id", "kind", "decided_at"],
                false,
            ))
            .await?;
        drop_index(manager, "lead_decisions", "lead_decisions_claims_idx").await?;
        manager
            .create_index(index(
                "notifications_user_dedup_key",
                Alias::new("notifications"),
                &["user_id", "dedup_key"],
                true,
            ))
            .await?;
        drop_index(manager, "notifications", "notifications_dedup_key_user").await
    }
}
