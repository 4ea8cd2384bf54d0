//! Quotes: revisions of a deal's quote (draft → issued → superseded), the per-org, per-year
//! counter that gives issued quotes gapless system numbers, the customer links (only a hash of
//! each token is stored) and the customers' decisions.

use crate::m20261126_000001_accounts::{Orgs, Users};
use crate::m20261126_000003_pipeline::Deals;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Quotes::Table)
                    .col(string(Quotes::Id).primary_key())
                    .col(string(Quotes::OrgId))
                    .col(string(Quotes::DealId))
                    .col(integer(Quotes::Revision))
                    .col(string(Quotes::Status))
                    .col(string_null(Quotes::Number))
                    .col(integer_null(Quotes::NumberYear))
                    .col(big_integer_null(Quotes::NumberSeq))
                    .col(json(Quotes::Lines))
                    .col(string(Quotes::Currency))
                    .col(big_integer(Quotes::TaxRateBp))
                    .col(big_integer(Quotes::GrossFen))
                    .col(big_integer(Quotes::DiscountFen))
                    .col(big_integer(Quotes::SubtotalFen))
                    .col(big_integer(Quotes::TaxFen))
                    .col(big_integer(Quotes::TotalFen))
                    .col(string(Quotes::ValidUntil))
                    .col(timestamp_with_time_zone(Quotes::ExpiresAt))
                    .col(string(Quotes::ContentHash))
                    .col(string_null(Quotes::PdfKey))
                    .col(string_null(Quotes::PdfSha256))
                    .col(string_null(Quotes::PdfMissingChars))
                    .col(string(Quotes::CreatedBy))
                    .col(timestamp_with_time_zone(Quotes::CreatedAt))
                    .col(timestamp_with_time_zone(Quotes::UpdatedAt))
                    .col(string_null(Quotes::IssuedBy))
                    .col(timestamp_with_time_zone_null(Quotes::IssuedAt))
                    .col(string_null(Quotes::SupersededBy))
                    .col(string_null(Quotes::Decision))
                    .col(timestamp_with_time_zone_null(Quotes::DecidedAt))
                    .col(string_null(Quotes::ErpOrderNumber))
                    .col(timestamp_with_time_zone_null(Quotes::ErpRecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Quotes::Table, Quotes::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Quotes::Table, Quotes::DealId)
                            .to(Deals::Table, Deals::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Quotes::Table, Quotes::CreatedBy)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per revision of a deal; two racing "new revision" requests cannot both win.
        manager
            .create_index(
                Index::create()
                    .name("quotes_deal_revision_uniq")
                    .table(Quotes::Table)
                    .col(Quotes::DealId)
                    .col(Quotes::Revision)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A number is never given twice in an org (drafts have none; NULLs do not collide).
        manager
            .create_index(
                Index::create()
                    .name("quotes_org_number_uniq")
                    .table(Quotes::Table)
                    .col(Quotes::OrgId)
                    .col(Quotes::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(QuoteCounters::Table)
                    .col(string(QuoteCounters::OrgId))
                    .col(integer(QuoteCounters::Year))
                    .col(big_integer(QuoteCounters::LastSeq))
                    .primary_key(
                        Index::create()
                            .col(QuoteCounters::OrgId)
                            .col(QuoteCounters::Year),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(QuoteCounters::Table, QuoteCounters::OrgId)
                            .to(Orgs::Table, Orgs::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(QuoteLinks::Table)
                    .col(string(QuoteLinks::Id).primary_key())
                    .col(string(QuoteLinks::OrgId))
                    .col(string(QuoteLinks::QuoteId))
                    .col(string(QuoteLinks::TokenHash).unique_key())
                    .col(string(QuoteLinks::CreatedBy))
                    .col(timestamp_with_time_zone(QuoteLinks::CreatedAt))
                    .col(timestamp_with_time_zone(QuoteLinks::ExpiresAt))
                    .col(timestamp_with_time_zone_null(QuoteLinks::UsedAt))
                    .col(timestamp_with_time_zone_null(QuoteLinks::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(QuoteLinks::Table, QuoteLinks::QuoteId)
                            .to(Quotes::Table, Quotes::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(QuoteDecisions::Table)
                    .col(string(QuoteDecisions::Id).primary_key())
                    .col(string(QuoteDecisions::OrgId))
                    .col(string(QuoteDecisions::QuoteId))
                    // Single use: a link decides once, enforced by the database too.
                    .col(string(QuoteDecisions::LinkId).unique_key())
                    .col(string(QuoteDecisions::Decision))
                    .col(string(QuoteDecisions::ContentHash))
                    .col(string(QuoteDecisions::CustomerName))
                    .col(string_null(QuoteDecisions::CustomerTitle))
                    .col(text_null(QuoteDecisions::Comment))
                    .col(string_null(QuoteDecisions::WechatOpenid))
                    .col(string_null(QuoteDecisions::Ip))
                    .col(text_null(QuoteDecisions::UserAgent))
                    .col(string(QuoteDecisions::Channel))
                    .col(timestamp_with_time_zone(QuoteDecisions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(QuoteDecisions::Table, QuoteDecisions::QuoteId)
                            .to(Quotes::Table, Quotes::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(QuoteDecisions::Table, QuoteDecisions::LinkId)
                            .to(QuoteLinks::Table, QuoteLinks::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("quote_decisions_quote_idx")
                    .table(QuoteDecisions::Table)
                    .col(QuoteDecisions::QuoteId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(QuoteDecisions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(QuoteLinks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(QuoteCounters::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Quotes::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Quotes {
    Table,
    Id,
    OrgId,
    DealId,
    Revision,
    Status,
    Number,
    NumberYear,
    NumberSeq,
    Lines,
    Currency,
    TaxRateBp,
    GrossFen,
    DiscountFen,
    SubtotalFen,
    TaxFen,
    TotalFen,
    ValidUntil,
    ExpiresAt,
    ContentHash,
    PdfKey,
    PdfSha256,
    PdfMissingChars,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    IssuedBy,
    IssuedAt,
    SupersededBy,
    Decision,
    DecidedAt,
    ErpOrderNumber,
    ErpRecordedAt,
}

#[derive(DeriveIden)]
enum QuoteCounters {
    Table,
    OrgId,
    Year,
    LastSeq,
}

#[derive(DeriveIden)]
enum QuoteLinks {
    Table,
    Id,
    OrgId,
    QuoteId,
    TokenHash,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum QuoteDecisions {
    Table,
    Id,
    OrgId,
    QuoteId,
    LinkId,
    Decision,
    ContentHash,
    CustomerName,
    CustomerTitle,
    Comment,
    WechatOpenid,
    Ip,
    UserAgent,
    Channel,
    CreatedAt,
}
