//! `deals.peak_value_fen`: the highest expected value a deal has had. Whether an override needs
//! a second supervisor is judged on it, not on the value of the moment: lowering a deal's value
//! below the threshold for one override and raising it again afterwards gets no node past one
//! supervisor. Existing deals start at their current value.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("deals"))
                    .add_column(
                        ColumnDef::new(Alias::new("peak_value_fen"))
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE deals SET peak_value_fen = expected_value_fen")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("deals"))
                    .drop_column(Alias::new("peak_value_fen"))
                    .to_owned(),
            )
            .await
    }
}
