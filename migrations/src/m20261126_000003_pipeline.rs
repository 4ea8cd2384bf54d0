//! The stage engine: pipeline templates (versioned, immutable once written), deals, node runs,
//! the facts recorded on a run, the activity log, the hash-chained audit trail and stall alarms.

use crate::m20261126_000001_accounts::{Orgs, Users};
use crate::util::index;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PipelineTemplates::Table)
                    .col(string(PipelineTemplates::Id).primary_key())
                    .col(string(PipelineTemplates::OrgId))
                    .col(string(PipelineTemplates::Name))
                    .col(integer(PipelineTemplates::Version))
                    .col(json(PipelineTemplates::Definition))
                    .col(string_null(PipelineTemplates::BasedOn))
                    .col(string_null(PipelineTemplates::CreatedBy))
                    .col(timestamp_with_time_zone(PipelineTemplates::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PipelineTemplates::Table, PipelineTemplates::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "pipeline_templates_version_uniq",
                PipelineTemplates::Table,
                &["org_id", "name", "version"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Deals::Table)
                    .col(string(Deals::Id).primary_key())
                    .col(string(Deals::OrgId))
                    .col(string(Deals::CustomerId))
                    .col(string_null(Deals::SiteId))
                    .col(string(Deals::OwnerId))
                    .col(string_null(Deals::TeamId))
                    .col(string_null(Deals::PresalesId))
                    .col(string(Deals::TemplateId))
                    .col(string(Deals::Title))
                    .col(json(Deals::Products))
                    .col(string(Deals::QuoteHash))
                    .col(big_integer(Deals::ExpectedValueFen))
                    .col(string(Deals::Status))
                    .col(string_null(Deals::CurrentNodeKey))
                    .col(timestamp_with_time_zone(Deals::CreatedAt))
                    .col(timestamp_with_time_zone(Deals::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Deals::Table, Deals::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Deals::Table, Deals::OwnerId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Deals::Table, Deals::TemplateId)
                            .to(PipelineTemplates::Table, PipelineTemplates::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("deals_owner_idx", Deals::Table, &["owner_id"], false))
            .await?;
        manager
            .create_index(index("deals_team_idx", Deals::Table, &["team_id"], false))
            .await?;
        manager
            .create_index(index(
                "deals_customer_idx",
                Deals::Table,
                &["customer_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(NodeRuns::Table)
                    .col(string(NodeRuns::Id).primary_key())
                    .col(string(NodeRuns::DealId))
                    .col(string(NodeRuns::NodeKey))
                    .col(integer(NodeRuns::RunNo))
                    .col(string(NodeRuns::OwnerId))
                    .col(string_null(NodeRuns::TeamId))
                    .col(timestamp_with_time_zone(NodeRuns::EnteredAt))
                    .col(timestamp_with_time_zone(NodeRuns::StallAt))
                    .col(timestamp_with_time_zone_null(NodeRuns::ClosedAt))
                    .col(string(NodeRuns::Outcome))
                    .col(boolean(NodeRuns::ByOverride))
                    .col(string_null(NodeRuns::ReturnReason))
                    .foreign_key(
                        ForeignKey::create()
                            .from(NodeRuns::Table, NodeRuns::DealId)
                            .to(Deals::Table, Deals::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "node_runs_deal_idx",
                NodeRuns::Table,
                &["deal_id", "node_key"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "node_runs_team_entered_idx",
                NodeRuns::Table,
                &["team_id", "entered_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "node_runs_stall_idx",
                NodeRuns::Table,
                &["outcome", "stall_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(NodeRecords::Table)
                    .col(string(NodeRecords::Id).primary_key())
                    .col(string(NodeRecords::DealId))
                    .col(string(NodeRecords::NodeRunId))
                    .col(string(NodeRecords::Kind))
                    .col(string_null(NodeRecords::ActorId))
                    .col(json(NodeRecords::Payload))
                    .col(string_null(NodeRecords::DedupKey))
                    .col(timestamp_with_time_zone(NodeRecords::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(NodeRecords::Table, NodeRecords::NodeRunId)
                            .to(NodeRuns::Table, NodeRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "node_records_run_idx",
                NodeRecords::Table,
                &["node_run_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "node_records_dedup_uniq",
                NodeRecords::Table,
                &["dedup_key"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Activities::Table)
                    .col(string(Activities::Id).primary_key())
                    .col(string(Activities::OrgId))
                    .col(string(Activities::DealId))
                    .col(string(Activities::ActorId))
                    .col(string(Activities::Channel))
                    .col(text(Activities::Summary))
                    .col(timestamp_with_time_zone(Activities::OccurredAt))
                    .col(timestamp_with_time_zone(Activities::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Activities::Table, Activities::DealId)
                            .to(Deals::Table, Deals::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "activities_deal_idx",
                Activities::Table,
                &["deal_id", "occurred_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(string(AuditEvents::Id).primary_key())
                    .col(string(AuditEvents::OrgId))
                    .col(string(AuditEvents::DealId))
                    .col(big_integer(AuditEvents::Seq))
                    .col(string(AuditEvents::Kind))
                    .col(string_null(AuditEvents::ActorId))
                    .col(text(AuditEvents::Payload))
                    .col(string(AuditEvents::PrevHash))
                    .col(string(AuditEvents::Hash))
                    .col(string(AuditEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "audit_events_deal_seq_uniq",
                AuditEvents::Table,
                &["deal_id", "seq"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(StallAlarms::Table)
                    .col(string(StallAlarms::NodeRunId).primary_key())
                    .col(timestamp_with_time_zone(StallAlarms::CreatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            StallAlarms::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            Activities::Table.into_iden(),
            NodeRecords::Table.into_iden(),
            NodeRuns::Table.into_iden(),
            Deals::Table.into_iden(),
            PipelineTemplates::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum PipelineTemplates {
    Table,
    Id,
    OrgId,
    Name,
    Version,
    Definition,
    BasedOn,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Deals {
    Table,
    Id,
    OrgId,
    CustomerId,
    SiteId,
    OwnerId,
    TeamId,
    PresalesId,
    TemplateId,
    Title,
    Products,
    QuoteHash,
    ExpectedValueFen,
    Status,
    CurrentNodeKey,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum NodeRuns {
    Table,
    Id,
    DealId,
    NodeKey,
    RunNo,
    OwnerId,
    TeamId,
    EnteredAt,
    StallAt,
    ClosedAt,
    Outcome,
    ByOverride,
    ReturnReason,
}

#[derive(DeriveIden)]
enum NodeRecords {
    Table,
    Id,
    DealId,
    NodeRunId,
    Kind,
    ActorId,
    Payload,
    DedupKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Activities {
    Table,
    Id,
    OrgId,
    DealId,
    ActorId,
    Channel,
    Summary,
    OccurredAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    OrgId,
    DealId,
    Seq,
    Kind,
    ActorId,
    Payload,
    PrevHash,
    Hash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum StallAlarms {
    Table,
    NodeRunId,
    CreatedAt,
}
