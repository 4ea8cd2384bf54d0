//! Lead distribution: leads with their typed tags and dedup keys, versioned rule sets, capture
//! sources (keys stored hashed), decision records, follow-up activities, logged access attempts
//! on protected leads, CSV imports with their per-row errors, and two small tables that make
//! assignment safe across processes: a per-org turn row every assignment updates first, and
//! each rep's last assignment time (the fairness clock).

use crate::m20261126_000001_accounts::{Orgs, Users};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(c);
    }
    if unique {
        idx.unique();
    }
    manager.create_index(idx.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LeadRuleSets::Table)
                    .col(string(LeadRuleSets::Id).primary_key())
                    .col(string(LeadRuleSets::OrgId))
                    .col(integer(LeadRuleSets::Version))
                    .col(json(LeadRuleSets::Rules))
                    .col(string(LeadRuleSets::CreatedBy))
                    .col(timestamp_with_time_zone(LeadRuleSets::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LeadRuleSets::Table, LeadRuleSets::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Two managers saving at once cannot both make version N: the loser retries.
        index(
            manager,
            "lead_rule_sets_version_uniq",
            LeadRuleSets::Table,
            vec![
                LeadRuleSets::OrgId.into_iden(),
                LeadRuleSets::Version.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(LeadSources::Table)
                    .col(string(LeadSources::Id).primary_key())
                    .col(string(LeadSources::OrgId))
                    .col(string(LeadSources::Name))
                    .col(string(LeadSources::Channel))
                    .col(string_uniq(LeadSources::KeyHash))
                    .col(boolean(LeadSources::Active))
                    .col(timestamp_with_time_zone(LeadSources::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LeadSources::Table, LeadSources::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Leads::Table)
                    .col(string(Leads::Id).primary_key())
                    .col(string(Leads::OrgId))
                    .col(string(Leads::Company))
                    .col(string(Leads::CompanyKey))
                    .col(string(Leads::ContactName))
                    .col(string(Leads::ContactTitle))
                    .col(string_null(Leads::Phone))
                    .col(string_null(Leads::PhoneKey))
                    .col(string(Leads::Industry))
                    .col(string(Leads::Source))
                    .col(big_integer(Leads::AnnualPurchaseFen))
                    .col(string(Leads::Seniority))
                    .col(string(Leads::Province))
                    .col(string(Leads::City))
                    .col(string(Leads::ResponseSpeed))
                    .col(json(Leads::Products))
                    .col(text(Leads::Notes))
                    .col(string(Leads::Status))
                    .col(string_null(Leads::OwnerId))
                    .col(string_null(Leads::TeamId))
                    .col(string_null(Leads::CustomerId))
                    .col(string_null(Leads::SourceId))
                    .col(string_null(Leads::ImportId))
                    .col(string_null(Leads::AssignedBy))
                    .col(timestamp_with_time_zone_null(Leads::ProtectionEndsAt))
                    .col(timestamp_with_time_zone_null(Leads::AssignedAt))
                    .col(timestamp_with_time_zone_null(Leads::FirstActivityAt))
                    .col(timestamp_with_time_zone_null(Leads::ConvertedAt))
                    .col(boolean(Leads::MovedTeam))
                    .col(string_null(Leads::PreviousOwnerId))
                    .col(timestamp_with_time_zone_null(Leads::ReclaimBlockedUntil))
                    .col(boolean(Leads::NeedsAssignment))
                    .col(timestamp_with_time_zone(Leads::CreatedAt))
                    .col(timestamp_with_time_zone(Leads::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Leads::Table, Leads::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Leads::Table, Leads::OwnerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            // dedup at intake
            (
                "leads_company_key_idx",
                vec![Leads::OrgId, Leads::CompanyKey],
            ),
            ("leads_phone_key_idx", vec![Leads::OrgId, Leads::PhoneKey]),
            // rep loads, the expiry scan, the pending queue, the dashboard and replay
            (
                "leads_owner_status_idx",
                vec![Leads::OwnerId, Leads::Status],
            ),
            (
                "leads_status_protection_idx",
                vec![Leads::Status, Leads::ProtectionEndsAt],
            ),
            (
                "leads_needs_assignment_idx",
                vec![Leads::NeedsAssignment, Leads::CreatedAt],
            ),
            (
                "leads_org_created_idx",
                vec![Leads::OrgId, Leads::CreatedAt],
            ),
        ] {
            index(
                manager,
                name,
                Leads::Table,
                cols.into_iter().map(IntoIden::into_iden).collect(),
                false,
            )
            .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(LeadDecisions::Table)
                    .col(string(LeadDecisions::Id).primary_key())
                    .col(string(LeadDecisions::OrgId))
                    .col(string(LeadDecisions::LeadId))
                    .col(string(LeadDecisions::Kind))
                    .col(integer_null(LeadDecisions::RuleSetVersion))
                    .col(string_null(LeadDecisions::RepId))
                    .col(json(LeadDecisions::Record))
                    .col(timestamp_with_time_zone(LeadDecisions::DecidedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LeadDecisions::Table, LeadDecisions::LeadId)
                            .to(Leads::Table, Leads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "lead_decisions_lead_idx",
            LeadDecisions::Table,
            vec![
                LeadDecisions::LeadId.into_iden(),
                LeadDecisions::DecidedAt.into_iden(),
            ],
            false,
        )
        .await?;
        // daily claim cap: claims of one rep since midnight
        index(
            manager,
            "lead_decisions_rep_idx",
            LeadDecisions::Table,
            vec![
                LeadDecisions::RepId.into_iden(),
                LeadDecisions::Kind.into_iden(),
                LeadDecisions::DecidedAt.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(LeadActivities::Table)
                    .col(string(LeadActivities::Id).primary_key())
                    .col(string(LeadActivities::LeadId))
                    .col(string(LeadActivities::ActorId))
                    .col(string(LeadActivities::Channel))
                    .col(string(LeadActivities::Summary))
                    .col(timestamp_with_time_zone(LeadActivities::OccurredAt))
                    .col(timestamp_with_time_zone(LeadActivities::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LeadActivities::Table, LeadActivities::LeadId)
                            .to(Leads::Table, Leads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "lead_activities_lead_idx",
            LeadActivities::Table,
            vec![LeadActivities::LeadId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(LeadAccessAttempts::Table)
                    .col(string(LeadAccessAttempts::Id).primary_key())
                    .col(string(LeadAccessAttempts::OrgId))
                    .col(string(LeadAccessAttempts::LeadId))
                    .col(string(LeadAccessAttempts::UserId))
                    .col(string(LeadAccessAttempts::Action))
                    .col(timestamp_with_time_zone(LeadAccessAttempts::At))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LeadAccessAttempts::Table, LeadAccessAttempts::LeadId)
                            .to(Leads::Table, Leads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "lead_access_attempts_lead_idx",
            LeadAccessAttempts::Table,
            vec![LeadAccessAttempts::LeadId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(LeadRepState::Table)
                    .col(string(LeadRepState::UserId).primary_key())
                    .col(timestamp_with_time_zone_null(LeadRepState::LastAssignedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LeadRepState::Table, LeadRepState::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LeadAssignTurns::Table)
                    .col(string(LeadAssignTurns::OrgId).primary_key())
                    .col(big_integer(LeadAssignTurns::Turns))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LeadImports::Table)
                    .col(string(LeadImports::Id).primary_key())
                    .col(string(LeadImports::OrgId))
                    .col(string(LeadImports::CreatedBy))
                    .col(string(LeadImports::Encoding))
                    .col(integer(LeadImports::Rows))
                    .col(integer(LeadImports::Accepted))
                    .col(integer(LeadImports::Rejected))
                    .col(timestamp_with_time_zone(LeadImports::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LeadImportErrors::Table)
                    .col(string(LeadImportErrors::Id).primary_key())
                    .col(string(LeadImportErrors::ImportId))
                    .col(integer(LeadImportErrors::RowNumber))
                    .col(string(LeadImportErrors::Field))
                    .col(string(LeadImportErrors::Code))
                    .col(string(LeadImportErrors::Message))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LeadImportErrors::Table, LeadImportErrors::ImportId)
                            .to(LeadImports::Table, LeadImports::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "lead_import_errors_import_idx",
            LeadImportErrors::Table,
            vec![
                LeadImportErrors::ImportId.into_iden(),
                LeadImportErrors::RowNumber.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LeadImportErrors::Table.into_iden(),
            LeadImports::Table.into_iden(),
            LeadAssignTurns::Table.into_iden(),
            LeadRepState::Table.into_iden(),
            LeadAccessAttempts::Table.into_iden(),
            LeadActivities::Table.into_iden(),
            LeadDecisions::Table.into_iden(),
            Leads::Table.into_iden(),
            LeadSources::Table.into_iden(),
            LeadRuleSets::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum LeadRuleSets {
    Table,
    Id,
    OrgId,
    Version,
    Rules,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LeadSources {
    Table,
    Id,
    OrgId,
    Name,
    Channel,
    KeyHash,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Leads {
    Table,
    Id,
    OrgId,
    Company,
    CompanyKey,
    ContactName,
    ContactTitle,
    Phone,
    PhoneKey,
    Industry,
    Source,
    AnnualPurchaseFen,
    Seniority,
    Province,
    City,
    ResponseSpeed,
    Products,
    Notes,
    Status,
    OwnerId,
    TeamId,
    CustomerId,
    SourceId,
    ImportId,
    AssignedBy,
    ProtectionEndsAt,
    AssignedAt,
    FirstActivityAt,
    ConvertedAt,
    MovedTeam,
    PreviousOwnerId,
    ReclaimBlockedUntil,
    NeedsAssignment,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LeadDecisions {
    Table,
    Id,
    OrgId,
    LeadId,
    Kind,
    RuleSetVersion,
    RepId,
    Record,
    DecidedAt,
}

#[derive(DeriveIden)]
enum LeadActivities {
    Table,
    Id,
    LeadId,
    ActorId,
    Channel,
    Summary,
    OccurredAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LeadAccessAttempts {
    Table,
    Id,
    OrgId,
    LeadId,
    UserId,
    Action,
    At,
}

#[derive(DeriveIden)]
enum LeadRepState {
    Table,
    UserId,
    LastAssignedAt,
}

#[derive(DeriveIden)]
enum LeadAssignTurns {
    Table,
    OrgId,
    Turns,
}

#[derive(DeriveIden)]
enum LeadImports {
    Table,
    Id,
    OrgId,
    CreatedBy,
    Encoding,
    Rows,
    Accepted,
    Rejected,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LeadImportErrors {
    Table,
    Id,
    ImportId,
    RowNumber,
    Field,
    Code,
    Message,
}
