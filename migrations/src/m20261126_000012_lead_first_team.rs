//! The team a lead was first assigned to (`leads.first_team_id`): the team whose distribution the
//! health figures judge. Scoping them by the lead's current team counted a lead a manager moved
//! from East to South as South's cross-group move and dropped it from East's figures, so a
//! team's mis-assignment rate could not show its own mis-assignments.
//!
//! Existing rows, from their decisions: a lead first assigned by a manager takes the team that
//! reassignment names; any other takes the team of the rep its first rule, existing-owner or
//! claim decision named (that rep's team today: the best the stored rows tell); a lead whose
//! decisions name no team keeps its current one.

use sea_orm_migration::sea_orm::{ConnectionTrait, JsonValue, Statement};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Leads::Table)
                    .add_column(string_null(Leads::FirstTeamId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("leads_org_first_team_created_idx")
                    .table(Leads::Table)
                    .col(Leads::OrgId)
                    .col(Leads::FirstTeamId)
                    .col(Leads::CreatedAt)
                    .to_owned(),
            )
            .await?;
        backfill(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("leads_org_first_team_created_idx")
                    .table(Leads::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Leads::Table)
                    .drop_column(Leads::FirstTeamId)
                    .to_owned(),
            )
            .await
    }
}

async fn backfill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    // 1. Leads whose first decision was a manager's reassignment: the team it names (read from
    //    the record, in Rust: JSON access differs between the databases; such leads are few).
    let by_hand = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT d.lead_id, d.record FROM lead_decisions d \
             WHERE d.kind = 'reassign' AND NOT EXISTS ( \
               SELECT 1 FROM lead_decisions e WHERE e.lead_id = d.lead_id \
               AND e.kind IN ('rule', 'existing_owner', 'claim', 'reassign') \
               AND (e.decided_at < d.decided_at OR (e.decided_at = d.decided_at AND e.id < d.id)))",
        ))
        .await?;
    for row in by_hand {
        let lead_id: String = row.try_get_by_index(0)?;
        let record: JsonValue = row.try_get_by_index(1)?;
        let Some(team) = record["from_team"]
            .as_str()
            .or(record["to_team"].as_str())
            .map(str::to_owned)
        else {
            continue;
        };
        db.execute(
            &Query::update()
                .table(Leads::Table)
                .value(Leads::FirstTeamId, team)
                .and_where(Expr::col(Leads::Id).eq(lead_id))
                .to_owned(),
        )
        .await?;
    }
    // 2. The rest: the team of the rep their first rule, existing-owner or claim decision named
    //    (that rep's team today: the best the stored rows tell). One statement, on the
    //    decisions' (lead_id, decided_at) index.
    db.execute_unprepared(
        "UPDATE leads SET first_team_id = ( \
           SELECT u.team_id FROM lead_decisions d JOIN users u ON u.id = d.rep_id \
           WHERE d.lead_id = leads.id AND d.kind IN ('rule', 'existing_owner', 'claim') \
           ORDER BY d.decided_at, d.id LIMIT 1) \
         WHERE first_team_id IS NULL",
    )
    .await?;
    // 3. Whatever the decisions do not tell: the current team.
    db.execute_unprepared(
        "UPDATE leads SET first_team_id = team_id \
         WHERE first_team_id IS NULL AND team_id IS NOT NULL",
    )
    .await?;
    Ok(())
}

#[derive(DeriveIden, Clone, Copy)]
enum Leads {
    Table,
    Id,
    OrgId,
    FirstTeamId,
    CreatedAt,
}
