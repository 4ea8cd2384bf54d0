//! Organisations. One deployment usually serves one org; the schema allows several.

use super::entities::org;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, QueryOrder, Set};

pub async fn first<C: ConnectionTrait>(db: &C) -> Result<Option<org::Model>, DbErr> {
    org::Entity::find()
        .order_by_asc(org::Column::CreatedAt)
        .one(db)
        .await
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<org::Model>, DbErr> {
    org::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn create<C: ConnectionTrait>(db: &C, name: &str) -> Result<org::Model, DbErr> {
    org::ActiveModel {
        id: Set(super::new_id()),
        name: Set(name.to_owned()),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await
}

/// The org to put new users in when none is named: the oldest, or a new one.
pub async fn first_or_create<C: ConnectionTrait>(db: &C, name: &str) -> Result<org::Model, DbErr> {
    match first(db).await? {
        Some(org) => Ok(org),
        None => create(db, name).await,
    }
}
