//! A team's leads in id order: `leads_team_idx (team_id, id)`. A manager's or supervisor's lead
//! list is their own leads, the pool and their team's; read as one `OR` it walked the org's whole
//! table on SQLite for every page. Cheap to keep up: a team's new leads have the newest ids, so
//! a burst of intake appends to the end of each team's range (a page per team, not per lead).

use crate::util::{drop_index, index};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                "leads_team_idx",
                Alias::new("leads"),
                &["team_id", "id"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, "leads", "leads_team_idx").await
    }
}
