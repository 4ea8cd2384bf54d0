//! `team_webhooks.paused_until`: a chat robot that answered "too many messages" (WeCom and
//! DingTalk allow 20 a minute) is left alone until then by every instance's outbox worker, so a
//! backlog drains at the robot's pace instead of meeting a refusal per message.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("team_webhooks"))
                    .add_column(timestamp_with_time_zone_null(Alias::new("paused_until")))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("team_webhooks"))
                    .drop_column(Alias::new("paused_until"))
                    .to_owned(),
            )
            .await
    }
}
