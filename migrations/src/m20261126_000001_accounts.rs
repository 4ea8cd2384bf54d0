//! Organisations, teams, users with roles, rep profiles and device-bound refresh tokens.
//!
//! Identifiers are UUIDv7 strings: made by any API process without a shared sequence, time-ordered
//! for cursor paging, and identical in SQLite and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orgs::Table)
                    .col(string(Orgs::Id).primary_key())
                    .col(string(Orgs::Name))
                    .col(timestamp_with_time_zone(Orgs::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Teams::Table)
                    .col(string(Teams::Id).primary_key())
                    .col(string(Teams::OrgId))
                    .col(string(Teams::Name))
                    .col(string(Teams::Region))
                    .col(string(Teams::ProductLine))
                    .col(timestamp_with_time_zone(Teams::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Teams::Table, Teams::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("teams_org_name_uniq")
                    .table(Teams::Table)
                    .col(Teams::OrgId)
                    .col(Teams::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string(Users::Id).primary_key())
                    .col(string(Users::OrgId))
                    .col(string_uniq(Users::Username))
                    .col(string(Users::DisplayName))
                    .col(string(Users::PasswordHash))
                    .col(string(Users::Role))
                    .col(string_null(Users::TeamId))
                    .col(boolean(Users::Active))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Users::Table, Users::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Users::Table, Users::TeamId)
                            .to(Teams::Table, Teams::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_team_idx")
                    .table(Users::Table)
                    .col(Users::TeamId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RepProfiles::Table)
                    .col(string(RepProfiles::UserId).primary_key())
                    .col(json(RepProfiles::Regions))
                    .col(json(RepProfiles::ProductExpertise))
                    .col(integer(RepProfiles::Capacity))
                    .col(boolean(RepProfiles::Available))
                    .col(timestamp_with_time_zone(RepProfiles::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RepProfiles::Table, RepProfiles::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(string(RefreshTokens::Id).primary_key())
                    .col(string(RefreshTokens::UserId))
                    .col(string(RefreshTokens::DeviceId))
                    .col(string(RefreshTokens::FamilyId))
                    .col(string_uniq(RefreshTokens::TokenHash))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_tokens_family_idx")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RefreshTokens::Table.into_iden(),
            RepProfiles::Table.into_iden(),
            Users::Table.into_iden(),
            Teams::Table.into_iden(),
            Orgs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub(crate) enum Orgs {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Teams {
    Table,
    Id,
    OrgId,
    Name,
    Region,
    ProductLine,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    OrgId,
    Username,
    DisplayName,
    PasswordHash,
    Role,
    TeamId,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RepProfiles {
    Table,
    UserId,
    Regions,
    ProductExpertise,
    Capacity,
    Available,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    UserId,
    DeviceId,
    FamilyId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}
