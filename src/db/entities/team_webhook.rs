//! Row of `team_webhooks` (mirrors the migration; conversions live in the repositories).

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "team_webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub team_id: String,
    pub flavor: String,
    /// Carries the robot's access token: treated as a secret (never logged, never sent back).
    #[sea_orm(column_type = "Text")]
    pub url: String,
    pub secret: Option<String>,
    pub active: bool,
    pub created_at: TimeDateTimeWithTimeZone,
    /// Left alone by the outbox until then: the robot asked to slow down.
    pub paused_until: Option<TimeDateTimeWithTimeZone>,
}

// Hand-written so a stray `{:?}` can never print the URL's token or the signing secret.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("team_webhook::Model")
            .field("id", &self.id)
            .field("team_id", &self.team_id)
            .field("flavor", &self.flavor)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
