//! Customers, shares, contacts and sites, always read through the caller's scope.
//!
//! Scope: an admin sees the org; a manager or supervisor sees their team's customers; everyone
//! sees what they own and what was shared with them. Anything outside the scope is simply not
//! found, so a 404 never confirms that another rep's customer exists.

use super::entities::{contact, customer, customer_share, site};
use super::{Page, PageRequest};
use crate::auth::Caller;
use fieldproof_domain::customer::{Fen, Name, Seniority};
use fieldproof_domain::geo::SitePoint;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

/// The customers a caller may read.
fn visible_to(caller: &Caller) -> Condition {
    let in_org = Condition::all().add(customer::Column::OrgId.eq(caller.org_id.as_str()));
    if caller.is_admin() {
        return in_org;
    }
    let shared_with_me = Query::select()
        .column(customer_share::Column::CustomerId)
        .from(customer_share::Entity)
        .and_where(customer_share::Column::UserId.eq(caller.user_id.as_str()))
        .to_owned();
    let mut mine = Condition::any()
        .add(customer::Column::OwnerId.eq(caller.user_id.as_str()))
        .add(customer::Column::Id.in_subquery(shared_with_me));
    if caller.leads_team()
        && let Some(team) = &caller.team_id
    {
        mine = mine.add(customer::Column::TeamId.eq(team.as_str()));
    }
    in_org.add(mine)
}

/// Whether a caller may change a customer they can see (shared users only read).
pub fn may_edit(caller: &Caller, row: &customer::Model) -> bool {
    caller.is_admin()
        || row.owner_id == caller.user_id
        || (caller.leads_team() && caller.team_id.is_some() && row.team_id == caller.team_id)
}

/// A customer by id, unscoped: for printing its name on a quote the caller already reached.
pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<customer::Model>, DbErr> {
    customer::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
) -> Result<Option<customer::Model>, DbErr> {
    customer::Entity::find_by_id(id.to_owned())
        .filter(visible_to(caller))
        .one(db)
        .await
}

pub async fn list_visible<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    page: &PageRequest,
) -> Result<Page<customer::Model>, DbErr> {
    let mut query = customer::Entity::find().filter(visible_to(caller));
    if let Some(after) = &page.after {
        query = query.filter(customer::Column::Id.gt(after.as_str()));
    }
    let rows = query
        .order_by_asc(customer::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |c| c.id.clone()))
}

/// A customer to create, already parsed.
pub struct NewCustomer {
    pub org_id: String,
    pub name: Name,
    pub industry: String,
    pub annual_purchase: Fen,
    pub tags: Vec<String>,
    pub owner_id: String,
    pub team_id: Option<String>,
}

pub async fn create<C: ConnectionTrait>(
    db: &C,
    new: NewCustomer,
) -> Result<customer::Model, DbErr> {
    let now = super::now();
    let name = new.name.into_string();
    customer::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(new.org_id),
        company_key: Set(Some(fieldproof_domain::leads::company_key(&name))),
        name: Set(name),
        industry: Set(new.industry),
        annual_purchase_fen: Set(new.annual_purchase.get()),
        tags: Set(serde_json::json!(new.tags)),
        owner_id: Set(new.owner_id),
        team_id: Set(new.team_id),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// Changes to a customer; `None` leaves a field as it is.
#[derive(Default)]
pub struct CustomerChanges {
    pub name: Option<Name>,
    pub industry: Option<String>,
    pub annual_purchase: Option<Fen>,
    pub tags: Option<Vec<String>>,
    /// New owner and their team.
    pub owner: Option<(String, Option<String>)>,
}

pub async fn update<C: ConnectionTrait>(
    db: &C,
    row: customer::Model,
    changes: CustomerChanges,
) -> Result<customer::Model, DbErr> {
    let mut active: customer::ActiveModel = row.into();
    if let Some(name) = changes.name {
        let name = name.into_string();
        active.company_key = Set(Some(fieldproof_domain::leads::company_key(&name)));
        active.name = Set(name);
    }
    if let Some(industry) = changes.industry {
        active.industry = Set(industry);
    }
    if let Some(amount) = changes.annual_purchase {
        active.annual_purchase_fen = Set(amount.get());
    }
    if let Some(tags) = changes.tags {
        active.tags = Set(serde_json::json!(tags));
    }
    if let Some((owner_id, team_id)) = changes.owner {
        active.owner_id = Set(owner_id);
        active.team_id = Set(team_id);
    }
    active.updated_at = Set(super::now());
    active.update(db).await
}

pub async fn share<C: ConnectionTrait>(
    db: &C,
    customer_id: &str,
    user_id: &str,
) -> Result<(), DbErr> {
    let exists = customer_share::Entity::find_by_id((customer_id.to_owned(), user_id.to_owned()))
        .one(db)
        .await?
        .is_some();
    if !exists {
        customer_share::ActiveModel {
            customer_id: Set(customer_id.to_owned()),
            user_id: Set(user_id.to_owned()),
            created_at: Set(super::now()),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

pub async fn contacts<C: ConnectionTrait>(
    db: &C,
    customer_id: &str,
) -> Result<Vec<contact::Model>, DbErr> {
    contact::Entity::find()
        .filter(contact::Column::CustomerId.eq(customer_id))
        .order_by_asc(contact::Column::Id)
        .all(db)
        .await
}

pub struct NewContact {
    pub customer_id: String,
    pub name: Name,
    pub title: String,
    pub seniority: Seniority,
    pub phone: Option<String>,
}

pub async fn create_contact<C: ConnectionTrait>(
    db: &C,
    new: NewContact,
) -> Result<contact::Model, DbErr> {
    contact::ActiveModel {
        id: Set(super::new_id()),
        customer_id: Set(new.customer_id),
        name: Set(new.name.into_string()),
        title: Set(new.title),
        seniority: Set(new.seniority.as_str().to_owned()),
        phone_key: Set(new
            .phone
            .as_deref()
            .and_then(fieldproof_domain::leads::phone_key)),
        phone: Set(new.phone),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await
}

pub async fn sites<C: ConnectionTrait>(
    db: &C,
    customer_id: &str,
) -> Result<Vec<site::Model>, DbErr> {
    site::Entity::find()
        .filter(site::Column::CustomerId.eq(customer_id))
        .order_by_asc(site::Column::Id)
        .all(db)
        .await
}

pub struct NewSite {
    pub customer_id: String,
    pub name: Name,
    pub address: String,
    pub place: SitePoint,
    pub utc_offset_minutes: i32,
}

pub async fn create_site<C: ConnectionTrait>(db: &C, new: NewSite) -> Result<site::Model, DbErr> {
    site::ActiveModel {
        id: Set(super::new_id()),
        customer_id: Set(new.customer_id),
        name: Set(new.name.into_string()),
        address: Set(new.address),
        lat: Set(new.place.point.lat()),
        lon: Set(new.place.point.lon()),
        crs: Set(new.place.crs.as_str().to_owned()),
        radius_m: Set(new.place.radius_m),
        utc_offset_minutes: Set(new.utc_offset_minutes),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await
}
