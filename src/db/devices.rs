//! Enrolled devices: a user's phone and the Ed25519 public key its capture manifests are
//! signed with.

use super::entities::device;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

pub async fn find<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    device_id: &str,
) -> Result<Option<device::Model>, DbErr> {
    device::Entity::find()
        .filter(device::Column::UserId.eq(user_id))
        .filter(device::Column::DeviceId.eq(device_id))
        .one(db)
        .await
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    user_id: &str,
    device_id: &str,
    public_key_b64: &str,
) -> Result<device::Model, DbErr> {
    device::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(org_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        device_id: Set(device_id.to_owned()),
        public_key: Set(public_key_b64.to_owned()),
        created_at: Set(super::now()),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}
