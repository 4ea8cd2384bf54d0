//! Console sessions: one row per signed-in browser of the supervisor console. The cookie holds a
//! random token; the row holds only its SHA-256, the user, the CSRF token of that session and
//! its deadlines, so any process can check a cookie and a logout ends the session everywhere.
//!
//! Also the review queue's paging order: pending evidence of a team (or an org), newest id
//! first, read straight from an index instead of sorting every pending row for each page (a
//! 10,000-item queue took ~280 ms a page on SQLite without it).

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
            .await?;
        for (name, scope) in [
            ("evidence_queue_team_idx", Evidence::TeamId),
            ("evidence_queue_org_idx", Evidence::OrgId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Evidence::Table)
                        .col(scope)
                        .col(Evidence::ReviewState)
                        .col(Evidence::Id)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["evidence_queue_team_idx", "evidence_queue_org_idx"] {
            manager
                .drop_index(Index::drop().name(name).table(Evidence::Table).to_owned())
                .await?;
        }
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

#[derive(DeriveIden)]
enum Evidence {
    Table,
    Id,
    OrgId,
    TeamId,
    ReviewState,
}
