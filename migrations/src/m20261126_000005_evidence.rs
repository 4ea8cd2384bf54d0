//! Evidence intake: enrolled devices (their Ed25519 keys), evidence rows with their facts,
//! checks and verdict, perceptual-hash bands for near-duplicate search at scale, and upload
//! leases that keep the orphan sweep away from blobs an upload is about to claim.

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
                    .table(Devices::Table)
                    .col(string(Devices::Id).primary_key())
                    .col(string(Devices::OrgId))
                    .col(string(Devices::UserId))
                    .col(string(Devices::DeviceId))
                    .col(string(Devices::PublicKey))
                    .col(timestamp_with_time_zone(Devices::CreatedAt))
                    .col(timestamp_with_time_zone_null(Devices::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "devices_user_device_uniq",
                Devices::Table,
                &["user_id", "device_id"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Evidence::Table)
                    .col(string(Evidence::Id).primary_key())
                    .col(string(Evidence::OrgId))
                    .col(string(Evidence::DealId))
                    .col(string(Evidence::NodeRunId))
                    .col(string(Evidence::NodeKey))
                    .col(string(Evidence::UploaderId))
                    .col(string_null(Evidence::TeamId))
                    .col(string_null(Evidence::DeviceId))
                    .col(string(Evidence::CaptureId))
                    .col(string(Evidence::Kind))
                    .col(string(Evidence::Format))
                    .col(string(Evidence::Sha256))
                    .col(big_integer(Evidence::SizeBytes))
                    .col(string_null(Evidence::Phash))
                    .col(string(Evidence::BlobKey))
                    .col(string_null(Evidence::ThumbKey))
                    .col(json(Evidence::Tags))
                    .col(json(Evidence::Facts))
                    .col(json_null(Evidence::Manifest))
                    .col(json(Evidence::Checks))
                    .col(string(Evidence::Verdict))
                    .col(string(Evidence::Findings))
                    .col(string(Evidence::RuleSetVersion))
                    .col(timestamp_with_time_zone_null(Evidence::CapturedAt))
                    .col(double_null(Evidence::CaptureLat))
                    .col(double_null(Evidence::CaptureLon))
                    .col(timestamp_with_time_zone(Evidence::ReceivedAt))
                    .col(string(Evidence::ReviewState))
                    .col(string_null(Evidence::ReviewedBy))
                    .col(text_null(Evidence::ReviewReason))
                    .col(timestamp_with_time_zone_null(Evidence::ReviewedAt))
                    .col(json(Evidence::Response))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "evidence_capture_uniq",
                Evidence::Table,
                &["org_id", "capture_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "evidence_sha_idx",
                Evidence::Table,
                &["org_id", "sha256"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "evidence_uploader_time_idx",
                Evidence::Table,
                &["uploader_id", "captured_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "evidence_review_idx",
                Evidence::Table,
                &["team_id", "review_state", "verdict", "received_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "evidence_deal_idx",
                Evidence::Table,
                &["deal_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EvidenceBands::Table)
                    .col(string(EvidenceBands::EvidenceId))
                    .col(string(EvidenceBands::OrgId))
                    .col(integer(EvidenceBands::Band))
                    .col(integer(EvidenceBands::Value))
                    .primary_key(
                        Index::create()
                            .col(EvidenceBands::EvidenceId)
                            .col(EvidenceBands::Band),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "evidence_bands_lookup_idx",
                EvidenceBands::Table,
                &["org_id", "band", "value"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UploadLeases::Table)
                    .col(string(UploadLeases::Id).primary_key())
                    .col(string(UploadLeases::Sha256))
                    .col(timestamp_with_time_zone(UploadLeases::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "upload_leases_sha_idx",
                UploadLeases::Table,
                &["sha256"],
                false,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UploadLeases::Table.into_iden(),
            EvidenceBands::Table.into_iden(),
            Evidence::Table.into_iden(),
            Devices::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    OrgId,
    UserId,
    DeviceId,
    PublicKey,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Evidence {
    Table,
    Id,
    OrgId,
    DealId,
    NodeRunId,
    NodeKey,
    UploaderId,
    TeamId,
    DeviceId,
    CaptureId,
    Kind,
    Format,
    Sha256,
    SizeBytes,
    Phash,
    BlobKey,
    ThumbKey,
    Tags,
    Facts,
    Manifest,
    Checks,
    Verdict,
    Findings,
    RuleSetVersion,
    CapturedAt,
    CaptureLat,
    CaptureLon,
    ReceivedAt,
    ReviewState,
    ReviewedBy,
    ReviewReason,
    ReviewedAt,
    Response,
}

#[derive(DeriveIden)]
enum EvidenceBands {
    Table,
    EvidenceId,
    OrgId,
    Band,
    Value,
}

#[derive(DeriveIden)]
enum UploadLeases {
    Table,
    Id,
    Sha256,
    CreatedAt,
}
