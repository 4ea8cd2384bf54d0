//! Customers, their contacts and sites, and explicit shares of a customer with other users.
//!
//! A site is stored as entered (latitude, longitude and the coordinate system of the map picker
//! that produced them) so nothing is lost to an approximate GCJ-02/BD-09 inverse.

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
                    .table(Customers::Table)
                    .col(string(Customers::Id).primary_key())
                    .col(string(Customers::OrgId))
                    .col(string(Customers::Name))
                    .col(string(Customers::Industry))
                    .col(big_integer(Customers::AnnualPurchaseFen))
                    .col(json(Customers::Tags))
                    .col(string(Customers::OwnerId))
                    .col(string_null(Customers::TeamId))
                    .col(timestamp_with_time_zone(Customers::CreatedAt))
                    .col(timestamp_with_time_zone(Customers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Customers::Table, Customers::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Customers::Table, Customers::OwnerId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Customers::Table, Customers::TeamId)
                            .to(Teams::Table, Teams::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("customers_owner_idx", Customers::OwnerId),
            ("customers_team_idx", Customers::TeamId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Customers::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(CustomerShares::Table)
                    .col(string(CustomerShares::CustomerId))
                    .col(string(CustomerShares::UserId))
                    .col(timestamp_with_time_zone(CustomerShares::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(CustomerShares::CustomerId)
                            .col(CustomerShares::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CustomerShares::Table, CustomerShares::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CustomerShares::Table, CustomerShares::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("customer_shares_user_idx")
                    .table(CustomerShares::Table)
                    .col(CustomerShares::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .col(string(Contacts::Id).primary_key())
                    .col(string(Contacts::CustomerId))
                    .col(string(Contacts::Name))
                    .col(string(Contacts::Title))
                    .col(string(Contacts::Seniority))
                    .col(string_null(Contacts::Phone))
                    .col(timestamp_with_time_zone(Contacts::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Contacts::Table, Contacts::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("contacts_customer_idx")
                    .table(Contacts::Table)
                    .col(Contacts::CustomerId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sites::Table)
                    .col(string(Sites::Id).primary_key())
                    .col(string(Sites::CustomerId))
                    .col(string(Sites::Name))
                    .col(string(Sites::Address))
                    .col(double(Sites::Lat))
                    .col(double(Sites::Lon))
                    .col(string(Sites::Crs))
                    .col(double(Sites::RadiusM))
                    .col(integer(Sites::UtcOffsetMinutes))
                    .col(timestamp_with_time_zone(Sites::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sites::Table, Sites::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sites_customer_idx")
                    .table(Sites::Table)
                    .col(Sites::CustomerId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Sites::Table.into_iden(),
            Contacts::Table.into_iden(),
            CustomerShares::Table.into_iden(),
            Customers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
    OrgId,
    Name,
    Industry,
    AnnualPurchaseFen,
    Tags,
    OwnerId,
    TeamId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CustomerShares {
    Table,
    CustomerId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    CustomerId,
    Name,
    Title,
    Seniority,
    Phone,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sites {
    Table,
    Id,
    CustomerId,
    Name,
    Address,
    Lat,
    Lon,
    Crs,
    RadiusM,
    UtcOffsetMinutes,
    CreatedAt,
}
