//! An index on `quotes.pdf_key`: the orphan sweep asks, for every stored quote PDF, whether a
//! quote refers to it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("quotes_pdf_key_idx")
                    .table(Quotes::Table)
                    .col(Quotes::PdfKey)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("quotes_pdf_key_idx")
                    .table(Quotes::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Quotes {
    Table,
    PdfKey,
}
