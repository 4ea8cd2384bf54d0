//! Dedup keys on customers and contacts: the normalised company name (`company_key`, as leads
//! have it) and the normalised phone (`phone_key`), indexed, so a batch of lead intakes finds
//! the customers it belongs to with one indexed `IN` query per kind of key instead of a
//! `name LIKE '%…%'` scan of the org's customers per lead. Existing rows are filled in here with
//! the same normalisation the application uses (`fieldproof_domain::leads`).

use fieldproof_domain::leads::{company_key, phone_key};
use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Customers::Table)
                    .add_column(string_null(Customers::CompanyKey))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Contacts::Table)
                    .add_column(string_null(Contacts::PhoneKey))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("customers_company_key_idx")
                    .table(Customers::Table)
                    .col(Customers::OrgId)
                    .col(Customers::CompanyKey)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("contacts_phone_key_idx")
                    .table(Contacts::Table)
                    .col(Contacts::PhoneKey)
                    .to_owned(),
            )
            .await?;
        backfill(
            manager,
            Customers::Table,
            Customers::Id,
            Customers::Name,
            Customers::CompanyKey,
            |name| Some(company_key(name)),
        )
        .await?;
        backfill(
            manager,
            Contacts::Table,
            Contacts::Id,
            Contacts::Phone,
            Contacts::PhoneKey,
            phone_key,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("contacts_phone_key_idx")
                    .table(Contacts::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("customers_company_key_idx")
                    .table(Customers::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Contacts::Table)
                    .drop_column(Contacts::PhoneKey)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Customers::Table)
                    .drop_column(Customers::CompanyKey)
                    .to_owned(),
            )
            .await
    }
}

/// Fill `key` from `source` for every row, with the application's normalisation.
async fn backfill(
    manager: &SchemaManager<'_>,
    table: impl IntoIden + Copy + 'static,
    id: impl IntoIden + Copy + 'static,
    source: impl IntoIden + Copy + 'static,
    key: impl IntoIden + Copy + 'static,
    normalise: impl Fn(&str) -> Option<String>,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let select = Query::select()
        .column(id)
        .column(source)
        .from(table)
        .to_owned();
    let rows = db.query_all(&select).await?;
    for row in rows {
        let row_id: String = row.try_get_by_index(0)?;
        let value: Option<String> = row.try_get_by_index(1)?;
        let Some(k) = value.as_deref().and_then(&normalise) else {
            continue;
        };
        let update = Query::update()
            .table(table)
            .value(key, k)
            .and_where(Expr::col(id).eq(row_id))
            .to_owned();
        db.execute(&update).await?;
    }
    Ok(())
}

#[derive(DeriveIden, Clone, Copy)]
enum Customers {
    Table,
    Id,
    OrgId,
    Name,
    CompanyKey,
}

#[derive(DeriveIden, Clone, Copy)]
enum Contacts {
    Table,
    Id,
    Phone,
    PhoneKey,
}
