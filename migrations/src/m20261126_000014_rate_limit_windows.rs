//! Request counts per one-minute window, shared by every instance: the public lead-capture
//! form's limit per source and client address holds across N processes behind a load balancer
//! (an in-process counter let a client through N times the limit).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateLimitWindows::Table)
                    .col(string(RateLimitWindows::Scope))
                    .col(string(RateLimitWindows::Subject))
                    .col(timestamp_with_time_zone(RateLimitWindows::WindowStart))
                    .col(big_integer(RateLimitWindows::Hits))
                    .primary_key(
                        Index::create()
                            .col(RateLimitWindows::Scope)
                            .col(RateLimitWindows::Subject)
                            .col(RateLimitWindows::WindowStart),
                    )
                    .to_owned(),
            )
            .await?;
        // The sweep deletes old windows by their start.
        manager
            .create_index(
                Index::create()
                    .name("rate_limit_windows_start_idx")
                    .table(RateLimitWindows::Table)
                    .col(RateLimitWindows::WindowStart)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateLimitWindows::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RateLimitWindows {
    Table,
    Scope,
    Subject,
    WindowStart,
    Hits,
}
