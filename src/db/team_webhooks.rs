//! Chat-robot webhooks configured per team. The URL and secret leave this module only towards
//! the delivery worker; views get a redacted hint (see `routes::notifications`).

use super::entities::team_webhook;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

pub struct NewWebhook {
    pub org_id: String,
    pub team_id: String,
    pub flavor: String,
    pub url: String,
    pub secret: Option<String>,
    pub active: bool,
}

pub async fn create<C: ConnectionTrait>(
    db: &C,
    new: NewWebhook,
) -> Result<team_webhook::Model, DbErr> {
    team_webhook::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(new.org_id),
        team_id: Set(new.team_id),
        flavor: Set(new.flavor),
        url: Set(new.url),
        secret: Set(new.secret),
        active: Set(new.active),
        created_at: Set(super::now()),
        paused_until: Set(None),
    }
    .insert(db)
    .await
}

pub async fn list_for_team<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    team_id: &str,
) -> Result<Vec<team_webhook::Model>, DbErr> {
    team_webhook::Entity::find()
        .filter(team_webhook::Column::OrgId.eq(org_id))
        .filter(team_webhook::Column::TeamId.eq(team_id))
        .order_by_asc(team_webhook::Column::Id)
        .all(db)
        .await
}

pub async fn active_for_team<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    team_id: &str,
) -> Result<Vec<team_webhook::Model>, DbErr> {
    team_webhook::Entity::find()
        .filter(team_webhook::Column::OrgId.eq(org_id))
        .filter(team_webhook::Column::TeamId.eq(team_id))
        .filter(team_webhook::Column::Active.eq(true))
        .order_by_asc(team_webhook::Column::Id)
        .all(db)
        .await
}

/// The webhook a queued message is for (the worker's lookup; no caller scope).
pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<team_webhook::Model>, DbErr> {
    team_webhook::Entity::find_by_id(id.to_owned())
        .one(db)
        .await
}

/// Delete a team's webhook; `false` when the team has no such webhook.
pub async fn delete<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    team_id: &str,
    id: &str,
) -> Result<bool, DbErr> {
    let result = team_webhook::Entity::delete_many()
        .filter(team_webhook::Column::Id.eq(id))
        .filter(team_webhook::Column::OrgId.eq(org_id))
        .filter(team_webhook::Column::TeamId.eq(team_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Leave the robot alone until `until` (a later pause already set stays).
pub async fn pause<C: ConnectionTrait>(
    db: &C,
    id: &str,
    until: time::OffsetDateTime,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::{Condition, Expr};
    team_webhook::Entity::update_many()
        .col_expr(team_webhook::Column::PausedUntil, Expr::value(until))
        .filter(team_webhook::Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(team_webhook::Column::PausedUntil.is_null())
                .add(team_webhook::Column::PausedUntil.lt(until)),
        )
        .exec(db)
        .await?;
    Ok(())
}
