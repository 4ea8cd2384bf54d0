//! Users, their roles and rep profiles.

use super::entities::{refresh_token, rep_profile, user};
use crate::auth::Caller;
use anyhow::Context;
use fieldproof_domain::account::Role;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A user as the rest of the server sees it (never with the password hash).
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub team_id: Option<String>,
    pub active: bool,
    pub created_at: OffsetDateTime,
}

impl TryFrom<user::Model> for User {
    type Error = DbErr;
    fn try_from(row: user::Model) -> Result<Self, DbErr> {
        let role = row
            .role
            .parse()
            .map_err(|e| DbErr::Type(format!("users.role of {}: {e}", row.id)))?;
        Ok(User {
            id: row.id,
            org_id: row.org_id,
            username: row.username,
            display_name: row.display_name,
            role,
            team_id: row.team_id,
            active: row.active,
            created_at: row.created_at,
        })
    }
}

/// The active users among `sessions` (`(user id, session id)`) whose session has not been
/// revoked — [`find_active_in_session`] for a whole batch of requests in two statements.
pub async fn active_in_sessions<C: ConnectionTrait>(
    db: &C,
    sessions: &[(&str, &str)],
) -> Result<std::collections::HashMap<(String, String), User>, DbErr> {
    use std::collections::{HashMap, HashSet};
    let user_ids: Vec<&str> = sessions.iter().map(|(u, _)| *u).collect();
    let families: Vec<&str> = sessions.iter().map(|(_, s)| *s).collect();
    let mut users: HashMap<String, User> = HashMap::new();
    for list in super::in_lists(&user_ids) {
        for row in user::Entity::find()
            .filter(user::Column::Id.is_in(list))
            .filter(user::Column::Active.eq(true))
            .all(db)
            .await?
        {
            let user = User::try_from(row)?;
            users.insert(user.id.clone(), user);
        }
    }
    let mut revoked: HashSet<String> = HashSet::new();
    for list in super::in_lists(&families) {
        revoked.extend(
            refresh_token::Entity::find()
                .select_only()
                .column(refresh_token::Column::FamilyId)
                .filter(refresh_token::Column::FamilyId.is_in(list))
                .filter(refresh_token::Column::RevokedAt.is_not_null())
                .into_tuple::<String>()
                .all(db)
                .await?,
        );
    }
    Ok(sessions
        .iter()
        .filter(|(_, s)| !revoked.contains(*s))
        .filter_map(|(u, s)| {
            users
                .get(*u)
                .map(|user| ((u.to_string(), s.to_string()), user.clone()))
        })
        .collect())
}

/// Which of `ids` are users of `org_id` (only the active ones with `active_only`): a producer's
/// recipient list is checked, not trusted; a lead goes to its customer's owner only while they
/// are active.
pub async fn of_org_among<C: ConnectionTrait, S: AsRef<str>>(
    db: &C,
    org_id: &str,
    ids: &[S],
    active_only: bool,
) -> Result<Vec<String>, DbErr> {
    Ok(of_org_with_state(db, org_id, ids)
        .await?
        .into_iter()
        .filter_map(|(id, active)| (active || !active_only).then_some(id))
        .collect())
}

/// Which of `ids` are users of `org_id`, each with whether the account is active.
pub async fn of_org_with_state<C: ConnectionTrait, S: AsRef<str>>(
    db: &C,
    org_id: &str,
    ids: &[S],
) -> Result<Vec<(String, bool)>, DbErr> {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    let mut found = Vec::new();
    for list in super::in_lists(&ids) {
        found.extend(
            user::Entity::find()
                .select_only()
                .column(user::Column::Id)
                .column(user::Column::Active)
                .filter(user::Column::OrgId.eq(org_id))
                .filter(user::Column::Id.is_in(list))
                .into_tuple::<(String, bool)>()
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

pub async fn find_active<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<User>, DbErr> {
    user::Entity::find_by_id(id.to_owned())
        .filter(user::Column::Active.eq(true))
        .one(db)
        .await?
        .map(User::try_from)
        .transpose()
}

/// The active user behind an access token whose session (refresh-token family) has not been
/// revoked: one indexed query per authenticated request.
pub async fn find_active_in_session<C: ConnectionTrait>(
    db: &C,
    id: &str,
    family_id: &str,
) -> Result<Option<User>, DbErr> {
    use sea_orm::sea_query::{ExprTrait, Query};
    let revoked = Query::select()
        .expr(sea_orm::sea_query::Expr::value(1))
        .from(refresh_token::Entity)
        .and_where(refresh_token::Column::FamilyId.eq(family_id))
        .and_where(refresh_token::Column::RevokedAt.is_not_null())
        .to_owned();
    user::Entity::find_by_id(id.to_owned())
        .filter(user::Column::Active.eq(true))
        .filter(sea_orm::sea_query::Expr::exists(revoked).not())
        .one(db)
        .await?
        .map(User::try_from)
        .transpose()
}

/// The user and their password hash, for login only.
pub async fn find_for_login<C: ConnectionTrait>(
    db: &C,
    username: &str,
) -> Result<Option<(User, String)>, DbErr> {
    let Some(row) = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .filter(user::Column::Active.eq(true))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let hash = row.password_hash.clone();
    Ok(Some((User::try_from(row)?, hash)))
}

pub struct NewUser<'a> {
    pub org_id: &'a str,
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: String,
    pub role: Role,
    pub team_id: Option<&'a str>,
}

pub async fn create<C: ConnectionTrait>(db: &C, new: NewUser<'_>) -> Result<User, DbErr> {
    user::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(new.org_id.to_owned()),
        username: Set(new.username.to_owned()),
        display_name: Set(new.display_name.to_owned()),
        password_hash: Set(new.password_hash),
        role: Set(new.role.as_str().to_owned()),
        team_id: Set(new.team_id.map(str::to_owned)),
        active: Set(true),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await
    .and_then(User::try_from)
}

/// Which users a caller may see: admins their org, everyone else themselves and their team.
fn visible_to(caller: &Caller) -> Condition {
    let in_org = Condition::all().add(user::Column::OrgId.eq(caller.org_id.as_str()));
    if caller.is_admin() {
        return in_org;
    }
    let mut mine = Condition::any().add(user::Column::Id.eq(caller.user_id.as_str()));
    if let Some(team) = &caller.team_id {
        mine = mine.add(user::Column::TeamId.eq(team.as_str()));
    }
    in_org.add(mine)
}

pub async fn list_visible<C: ConnectionTrait>(db: &C, caller: &Caller) -> Result<Vec<User>, DbErr> {
    user::Entity::find()
        .filter(visible_to(caller))
        .order_by_asc(user::Column::Username)
        .all(db)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
}

pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
) -> Result<Option<User>, DbErr> {
    user::Entity::find_by_id(id.to_owned())
        .filter(visible_to(caller))
        .one(db)
        .await?
        .map(User::try_from)
        .transpose()
}

/// What assignment needs to know about a rep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RepProfile {
    /// Provinces or cities the rep covers, e.g. `["浙江", "上海"]`.
    pub regions: Vec<String>,
    /// Product lines the rep knows.
    pub product_expertise: Vec<String>,
    /// How many open leads and deals the rep can carry.
    pub capacity: i32,
    /// False while on leave: assignment skips them.
    pub available: bool,
}

pub async fn rep_profile<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
) -> anyhow::Result<Option<RepProfile>> {
    let Some(row) = rep_profile::Entity::find_by_id(user_id.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(RepProfile {
        regions: serde_json::from_value(row.regions).context("rep_profiles.regions")?,
        product_expertise: serde_json::from_value(row.product_expertise)
            .context("rep_profiles.product_expertise")?,
        capacity: row.capacity,
        available: row.available,
    }))
}

pub async fn put_rep_profile<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    profile: &RepProfile,
) -> anyhow::Result<()> {
    let exists = rep_profile::Entity::find_by_id(user_id.to_owned())
        .one(db)
        .await?
        .is_some();
    let row = rep_profile::ActiveModel {
        user_id: Set(user_id.to_owned()),
        regions: Set(serde_json::to_value(&profile.regions)?),
        product_expertise: Set(serde_json::to_value(&profile.product_expertise)?),
        capacity: Set(profile.capacity),
        available: Set(profile.available),
        updated_at: Set(super::now()),
    };
    if exists {
        row.update(db).await?;
    } else {
        row.insert(db).await?;
    }
    Ok(())
}

/// Active users of a team with a given role (who to tell about the team's work).
pub async fn team_members_with_role<C: ConnectionTrait>(
    db: &C,
    team_id: &str,
    role: Role,
) -> Result<Vec<User>, DbErr> {
    user::Entity::find()
        .filter(user::Column::TeamId.eq(team_id))
        .filter(user::Column::Role.eq(role.as_str()))
        .filter(user::Column::Active.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
}
