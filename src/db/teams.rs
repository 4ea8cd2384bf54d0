//! Teams (a region and a product line) of an org.

use super::entities::team;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

pub struct NewTeam<'a> {
    pub org_id: &'a str,
    pub name: &'a str,
    pub region: &'a str,
    pub product_line: &'a str,
}

pub async fn create<C: ConnectionTrait>(db: &C, new: NewTeam<'_>) -> Result<team::Model, DbErr> {
    team::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(new.org_id.to_owned()),
        name: Set(new.name.to_owned()),
        region: Set(new.region.to_owned()),
        product_line: Set(new.product_line.to_owned()),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await
}

pub async fn list<C: ConnectionTrait>(db: &C, org_id: &str) -> Result<Vec<team::Model>, DbErr> {
    team::Entity::find()
        .filter(team::Column::OrgId.eq(org_id))
        .order_by_asc(team::Column::Name)
        .all(db)
        .await
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    id: &str,
) -> Result<Option<team::Model>, DbErr> {
    team::Entity::find_by_id(id.to_owned())
        .filter(team::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

pub async fn find_by_name<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    name: &str,
) -> Result<Option<team::Model>, DbErr> {
    team::Entity::find()
        .filter(team::Column::OrgId.eq(org_id))
        .filter(team::Column::Name.eq(name))
        .one(db)
        .await
}
