//! Console sessions: one row per signed-in browser of the supervisor console. The cookie holds a
//! random token; the row holds only its SHA-256, the user, the CSRF token of that session and
//! its deadlines, so any process can check a cookie and a logout ends the session everywhere.

use crate::m20261126_000001_accounts::Users;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsoleSessions::Table)
                    .col(string(ConsoleSessions::Id).primary_key())
                    .col(string_uniq(ConsoleSessions::TokenHash))
                    .col(string(ConsoleSessions::UserId))
                    .col(string(ConsoleSessions::CsrfToken))
                    .col(timestamp_with_time_zone(ConsoleSessions::CreatedAt))
                    .col(timestamp_with_time_zone(ConsoleSessions::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ConsoleSessions::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ConsoleSessions::Table, ConsoleSessions::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The sweep deletes the oldest deadlines first.
        manager
            .create_index(
                Index::create()
                    .name("console_sessions_expires_idx")
                    .table(ConsoleSessions::Table)
                    .col(ConsoleSessions::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConsoleSessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ConsoleSessions {
    Table,
    Id,
    TokenHash,
    UserId,
    CsrfToken,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}
