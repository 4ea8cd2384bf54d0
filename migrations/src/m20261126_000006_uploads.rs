//! Resumable upload sessions: one row per (user, capture) while a large file arrives in pieces.
//! The bytes themselves live in the blob store (`uploads/{id}/{offset}`); the row holds only how
//! far they have come, so any API process can take the next piece.

use crate::m20261126_000001_accounts::{Orgs, Users};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UploadSessions::Table)
                    .col(string(UploadSessions::Id).primary_key())
                    .col(string(UploadSessions::OrgId))
                    .col(string(UploadSessions::UserId))
                    .col(string(UploadSessions::CaptureId))
                    .col(big_integer(UploadSessions::Size))
                    .col(string(UploadSessions::Sha256))
                    .col(big_integer(UploadSessions::Received))
                    .col(timestamp_with_time_zone(UploadSessions::CreatedAt))
                    .col(timestamp_with_time_zone(UploadSessions::ExpiresAt))
                    .col(timestamp_with_time_zone_null(UploadSessions::CompletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(UploadSessions::Table, UploadSessions::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(UploadSessions::Table, UploadSessions::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("upload_sessions_capture_uniq")
                    .table(UploadSessions::Table)
                    .col(UploadSessions::UserId)
                    .col(UploadSessions::CaptureId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The expiry sweep reads the oldest deadlines first.
        manager
            .create_index(
                Index::create()
                    .name("upload_sessions_expires_idx")
                    .table(UploadSessions::Table)
                    .col(UploadSessions::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UploadSessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UploadSessions {
    Table,
    Id,
    OrgId,
    UserId,
    CaptureId,
    Size,
    Sha256,
    Received,
    CreatedAt,
    ExpiresAt,
    CompletedAt,
}
