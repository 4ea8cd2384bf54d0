//! Notifications: the in-app inbox, team chat-robot webhooks, and the outbox that delivers to
//! them outside the request that caused a notice.
//!
//! Uniqueness does the idempotency work: `(user_id, dedup_key)` keeps one event out of an inbox
//! twice, `outbox.dedup_key` keeps one event from being queued twice for a webhook. Both are plain
//! unique indexes, so `INSERT … ON CONFLICT DO NOTHING` behaves the same on SQLite and PostgreSQL
//! (and NULL dedup keys never collide on either).

use crate::m20261126_000001_accounts::{Orgs, Teams, Users};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(string(Notifications::Id).primary_key())
                    .col(string(Notifications::OrgId))
                    .col(string(Notifications::UserId))
                    .col(string(Notifications::Kind))
                    .col(string(Notifications::TitleEn))
                    .col(string(Notifications::TitleZh))
                    .col(text(Notifications::BodyEn))
                    .col(text(Notifications::BodyZh))
                    .col(string_null(Notifications::Link))
                    .col(string_null(Notifications::DedupKey))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("notifications_user_dedup_key")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::DedupKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The inbox is read newest first per user; unread counts filter on read_at.
        manager
            .create_index(
                Index::create()
                    .name("notifications_user_id_idx")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("notifications_user_unread_idx")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::ReadAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TeamWebhooks::Table)
                    .col(string(TeamWebhooks::Id).primary_key())
                    .col(string(TeamWebhooks::OrgId))
                    .col(string(TeamWebhooks::TeamId))
                    .col(string(TeamWebhooks::Flavor))
                    .col(text(TeamWebhooks::Url))
                    .col(string_null(TeamWebhooks::Secret))
                    .col(boolean(TeamWebhooks::Active))
                    .col(timestamp_with_time_zone(TeamWebhooks::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TeamWebhooks::Table, TeamWebhooks::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(TeamWebhooks::Table, TeamWebhooks::TeamId)
                            .to(Teams::Table, Teams::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("team_webhooks_team_idx")
                    .table(TeamWebhooks::Table)
                    .col(TeamWebhooks::TeamId)
                    .to_owned(),
            )
            .await?;

        // No foreign key on target_id: a webhook deleted while its messages wait must not block
        // the delete; the worker gives those rows up with a recorded reason instead.
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(string(Outbox::Id).primary_key())
                    .col(string(Outbox::OrgId))
                    .col(string(Outbox::Topic))
                    .col(string(Outbox::TargetId))
                    .col(json(Outbox::Payload))
                    .col(string(Outbox::DedupKey))
                    .col(integer(Outbox::Attempts))
                    .col(timestamp_with_time_zone_null(Outbox::NextAttemptAt))
                    .col(string_null(Outbox::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Outbox::LeaseUntil))
                    .col(timestamp_with_time_zone_null(Outbox::DeliveredAt))
                    .col(timestamp_with_time_zone_null(Outbox::GaveUpAt))
                    .col(text_null(Outbox::LastError))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Outbox::Table, Outbox::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_dedup_key")
                    .table(Outbox::Table)
                    .col(Outbox::DedupKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The worker's scan: `next_attempt_at <= now` (NULL once delivered or given up, so
        // finished rows drop out of the range), then the lease columns.
        manager
            .create_index(
                Index::create()
                    .name("outbox_due_idx")
                    .table(Outbox::Table)
                    .col(Outbox::NextAttemptAt)
                    .col(Outbox::LeaseUntil)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outbox::Table.into_iden(),
            TeamWebhooks::Table.into_iden(),
            Notifications::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    OrgId,
    UserId,
    Kind,
    TitleEn,
    TitleZh,
    BodyEn,
    BodyZh,
    Link,
    DedupKey,
    CreatedAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum TeamWebhooks {
    Table,
    Id,
    OrgId,
    TeamId,
    Flavor,
    Url,
    Secret,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    OrgId,
    Topic,
    TargetId,
    Payload,
    DedupKey,
    Attempts,
    NextAttemptAt,
    LeaseOwner,
    LeaseUntil,
    DeliveredAt,
    GaveUpAt,
    LastError,
    CreatedAt,
}
