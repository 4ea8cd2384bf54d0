//! The team a lead was first assigned to (`leads.first_team_id`): the team whose distribution the
//! health figures judge. Scoping them by the lead's current team counted a lead a manager moved
//! from East to South as South's cross-group move and dropped it from East's figures, so a
//! team's mis-assignment rate could not show its own mis-assignments.
//!
//! Existing rows: a lead never moved keeps its current team; a moved lead takes the `from_team`
//! of its first cross-team reassignment; a lead back in the pool takes the team of the rep its
//! first decision named (that rep's team today: the best the stored rows tell).

use sea_orm_migration::sea_orm::{ConnectionTrait, JsonValue};
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
    // Never moved: the current team is the first one.
    db.execute(
        &Query::update()
            .table(Leads::Table)
            .value(Leads::FirstTeamId, Expr::col(Leads::TeamId))
            .and_where(Expr::col(Leads::TeamId).is_not_null())
            .and_where(Expr::col(Leads::MovedTeam).eq(false))
            .to_owned(),
    )
    .await?;
    // The rest, from each lead's decisions, oldest first: a reassignment names the team it
    // moved the lead from; any other decision names the rep who got it.
    let decisions = Query::select()
        .column((LeadDecisions::Table, LeadDecisions::LeadId))
        .column((LeadDecisions::Table, LeadDecisions::Kind))
        .column((LeadDecisions::Table, LeadDecisions::Record))
        .column((Users::Table, Users::TeamId))
        .from(LeadDecisions::Table)
        .inner_join(
            Leads::Table,
            Expr::col((Leads::Table, Leads::Id))
                .equals((LeadDecisions::Table, LeadDecisions::LeadId)),
        )
        .left_join(
            Users::Table,
            Expr::col((Users::Table, Users::Id))
                .equals((LeadDecisions::Table, LeadDecisions::RepId)),
        )
        .and_where(Expr::col((Leads::Table, Leads::FirstTeamId)).is_null())
        .order_by((LeadDecisions::Table, LeadDecisions::DecidedAt), Order::Asc)
        .order_by((LeadDecisions::Table, LeadDecisions::Id), Order::Asc)
        .to_owned();
    let mut first: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for row in db.query_all(&decisions).await? {
        let lead_id: String = row.try_get_by_index(0)?;
        if seen.contains(&lead_id) {
            continue;
        }
        let kind: String = row.try_get_by_index(1)?;
        let record: JsonValue = row.try_get_by_index(2)?;
        let rep_team: Option<String> = row.try_get_by_index(3)?;
        let team = if kind == "reassign" {
            record["from_team"]
                .as_str()
                .or(record["to_team"].as_str())
                .map(str::to_owned)
        } else if kind == "pool" || kind == "expired" {
            None
        } else {
            rep_team
        };
        if let Some(team) = team {
            seen.insert(lead_id.clone());
            first.push((lead_id, team));
        }
    }
    for (lead_id, team) in first {
        db.execute(
            &Query::update()
                .table(Leads::Table)
                .value(Leads::FirstTeamId, team)
                .and_where(Expr::col(Leads::Id).eq(lead_id))
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

#[derive(DeriveIden, Clone, Copy)]
enum Leads {
    Table,
    Id,
    OrgId,
    TeamId,
    FirstTeamId,
    MovedTeam,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum LeadDecisions {
    Table,
    Id,
    LeadId,
    Kind,
    RepId,
    Record,
    DecidedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    TeamId,
}
