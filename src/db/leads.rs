//! Leads, their decisions, activities, access attempts, rule sets, capture sources and imports.
//!
//! Scope: an admin sees the org's leads; a manager or supervisor their team's and the pool; a
//! rep their own and the pool. A protected lead is simply not found for anyone else, so a 404
//! never confirms that another rep holds it.

use super::entities::{
    deal, lead, lead_access_attempt, lead_activity, lead_assign_turn, lead_decision, lead_import,
    lead_import_error, lead_rep_state, lead_roster, lead_rule_set, lead_source, rep_profile, team,
    user,
};
use super::{Page, PageRequest};
use crate::auth::Caller;
use anyhow::Context;
use fieldproof_domain::account::Role;
use fieldproof_domain::leads::RepSnapshot;
use fieldproof_domain::leads::assign::deal_weight_milli;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use std::collections::HashMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const POOL: &str = "pool";
pub const ASSIGNED: &str = "assigned";
pub const CONVERTED: &str = "converted";
/// Every status a lead can have.
pub const STATUSES: [&str; 3] = [POOL, ASSIGNED, CONVERTED];

/// The leads a caller may read.
fn visible_to(caller: &Caller) -> Condition {
    let in_org = Condition::all().add(lead::Column::OrgId.eq(caller.org_id.as_str()));
    if caller.is_admin() {
        return in_org;
    }
    let mut mine = Condition::any().add(lead::Column::OwnerId.eq(caller.user_id.as_str()));
    match caller.role {
        Role::Rep => mine = mine.add(lead::Column::Status.eq(POOL)),
        Role::Manager | Role::Supervisor => {
            mine = mine.add(lead::Column::Status.eq(POOL));
            if let Some(team) = &caller.team_id {
                mine = mine.add(lead::Column::TeamId.eq(team.as_str()));
            }
        }
        Role::Presales | Role::Finance | Role::Admin => {}
    }
    in_org.add(mine)
}

/// [`visible_to`] for a row already in hand (the intake answers from the row its batch wrote
/// instead of reading it back). The two must agree; a test compares them for every role.
pub fn is_visible_to(caller: &Caller, row: &lead::Model) -> bool {
    if row.org_id != caller.org_id {
        return false;
    }
    if caller.is_admin() || row.owner_id.as_deref() == Some(caller.user_id.as_str()) {
        return true;
    }
    match caller.role {
        Role::Rep => row.status == POOL,
        Role::Manager | Role::Supervisor => {
            row.status == POOL || (caller.team_id.is_some() && row.team_id == caller.team_id)
        }
        Role::Presales | Role::Finance | Role::Admin => false,
    }
}

pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
) -> Result<Option<lead::Model>, DbErr> {
    lead::Entity::find_by_id(id.to_owned())
        .filter(visible_to(caller))
        .one(db)
        .await
}

/// A lead of the caller's org whatever its scope: only to log an attempt on it.
pub async fn find_in_org<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    id: &str,
) -> Result<Option<lead::Model>, DbErr> {
    lead::Entity::find_by_id(id.to_owned())
        .filter(lead::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<lead::Model>, DbErr> {
    lead::Entity::find_by_id(id.to_owned()).one(db).await
}

pub async fn list_visible<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    status: Option<&str>,
    page: &PageRequest,
) -> Result<Page<lead::Model>, DbErr> {
    let mut rows = Vec::new();
    for query in list_queries(caller, status, page) {
        rows.extend(query.all(db).await?);
    }
    // Each statement gave its first page in id order; together they hold the first page of
    // the union (a manager's own lead in their team comes twice).
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.dedup_by(|a, b| a.id == b.id);
    rows.truncate(page.limit as usize + 1);
    Ok(Page::from_rows(rows, page.limit, |l| l.id.clone()))
}

/// The statements [`list_visible`] reads, each a page in id order (public so a test can check
/// their plans). A rep sees their own leads and the pool; a manager or supervisor also their
/// team's. Each part is read apart: their own through the load index `(org_id, status,
/// owner_id, …)` — the few thousand leads one person ever held, sorted —, the team's through
/// `leads_team_idx (team_id, id)` (migration 000023) and the pool through `leads_pool_idx`
/// (migration 000022), each a page at a time. As one `OR` SQLite walked the org's whole table
/// for every page (~190 ms at 1M leads). Admins (the whole org) and everyone else (their own
/// leads) read one statement.
pub fn list_queries(
    caller: &Caller,
    status: Option<&str>,
    page: &PageRequest,
) -> Vec<sea_orm::Select<lead::Entity>> {
    let team = match caller.role {
        Role::Rep => None,
        Role::Manager | Role::Supervisor => caller.team_id.as_deref(),
        Role::Presales | Role::Finance | Role::Admin => {
            return vec![list_query(caller, status, page)];
        }
    };
    let in_org = lead::Entity::find().filter(lead::Column::OrgId.eq(caller.org_id.as_str()));
    let mut queries = Vec::new();
    let held: Vec<&str> = match status {
        None => STATUSES.iter().copied().filter(|s| *s != POOL).collect(),
        Some(POOL) => Vec::new(),
        Some(other) => vec![other],
    };
    if !held.is_empty() {
        queries.push(
            in_org
                .clone()
                .filter(lead::Column::Status.is_in(held.clone()))
                .filter(lead::Column::OwnerId.eq(caller.user_id.as_str())),
        );
        if let Some(team) = team {
            queries.push(
                in_org
                    .clone()
                    .filter(lead::Column::TeamId.eq(team))
                    .filter(lead::Column::Status.is_in(held)),
            );
        }
    }
    if status.is_none_or(|s| s == POOL) {
        // A literal, not a parameter: what lets both planners use the partial index.
        queries.push(in_org.filter(Expr::cust("status = 'pool'")));
    }
    queries
        .into_iter()
        .map(|query| one_page(query, page))
        .collect()
}

/// The page of leads an admin, presales or finance user reads: one statement (see
/// [`list_queries`]).
pub fn list_query(
    caller: &Caller,
    status: Option<&str>,
    page: &PageRequest,
) -> sea_orm::Select<lead::Entity> {
    let mut query = lead::Entity::find().filter(visible_to(caller));
    if let Some(status) = status {
        query = query.filter(lead::Column::Status.eq(status));
    }
    one_page(query, page)
}

fn one_page(
    query: sea_orm::Select<lead::Entity>,
    page: &PageRequest,
) -> sea_orm::Select<lead::Entity> {
    let query = match &page.after {
        Some(after) => query.filter(lead::Column::Id.gt(after.as_str())),
        None => query,
    };
    query.order_by_asc(lead::Column::Id).limit(page.limit + 1)
}

pub async fn log_attempt<C: ConnectionTrait>(
    db: &C,
    row: &lead::Model,
    user_id: &str,
    action: &str,
) -> Result<(), DbErr> {
    lead_access_attempt::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(row.org_id.clone()),
        lead_id: Set(row.id.clone()),
        user_id: Set(user_id.to_owned()),
        action: Set(action.to_owned()),
        at: Set(super::now()),
    }
    .insert(db)
    .await
    .map(|_| ())
}

pub async fn access_attempts<C: ConnectionTrait>(
    db: &C,
    lead_id: &str,
) -> Result<Vec<lead_access_attempt::Model>, DbErr> {
    lead_access_attempt::Entity::find()
        .filter(lead_access_attempt::Column::LeadId.eq(lead_id))
        .order_by_asc(lead_access_attempt::Column::Id)
        .all(db)
        .await
}

/// Serialise assignments of one org across every process: the first statement of the
/// assignment transaction is this UPDATE, which takes the row lock on PostgreSQL and the write
/// lock on SQLite, so the loads read after it cannot change under us until commit.
pub async fn take_turn<C: ConnectionTrait>(db: &C, org_id: &str) -> Result<(), DbErr> {
    let bump = || {
        lead_assign_turn::Entity::update_many()
            .col_expr(
                lead_assign_turn::Column::Turns,
                Expr::col(lead_assign_turn::Column::Turns).add(1),
            )
            .filter(lead_assign_turn::Column::OrgId.eq(org_id))
    };
    if bump().exec(db).await?.rows_affected == 1 {
        return Ok(());
    }
    lead_assign_turn::Entity::insert(lead_assign_turn::ActiveModel {
        org_id: Set(org_id.to_owned()),
        turns: Set(0),
    })
    .on_conflict(
        OnConflict::column(lead_assign_turn::Column::OrgId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    bump().exec(db).await.map(|_| ())
}

/// Every rep of the org with a profile, as assignment sees them at `now`.
pub async fn rep_snapshots<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Vec<RepSnapshot>> {
    let mut reps = rep_roster(db, org_id).await?;
    apply_loads(db, org_id, now, &mut reps).await?;
    Ok(reps)
}

/// The reps of the org with a profile and their attributes (team, regions, expertise, capacity,
/// availability), loads still zero. Reps without a profile are not set up for leads and are left
/// out (the decision says "not considered"). Read before the org's turn: attributes change
/// rarely, and keeping the 1,000-row read out of the serialised part is what keeps it short.
/// The org's roster version (migration 000018: bumped by triggers on every change to the
/// org's users, rep profiles and teams). `None` for an org without a version row, which a
/// caller must treat as "changed every time".
pub async fn roster_version<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
) -> Result<Option<i64>, DbErr> {
    use sea_orm::sea_query::{Alias, Query};
    let select = Query::select()
        .column(Alias::new("version"))
        .from(Alias::new("roster_versions"))
        .and_where(Expr::col(Alias::new("org_id")).eq(org_id))
        .to_owned();
    match db.query_one(&select).await? {
        Some(row) => Ok(Some(row.try_get_by_index(0)?)),
        None => Ok(None),
    }
}

pub async fn rep_roster<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
) -> anyhow::Result<Vec<RepSnapshot>> {
    use sea_orm::JoinType;
    // One joined read in a stable order (the roster's content id depends on it).
    let rows: Vec<(
        String,
        Option<String>,
        serde_json::Value,
        serde_json::Value,
        i32,
        bool,
    )> = rep_profile::Entity::find()
        .select_only()
        .column(rep_profile::Column::UserId)
        .column(user::Column::TeamId)
        .column(rep_profile::Column::Regions)
        .column(rep_profile::Column::ProductExpertise)
        .column(rep_profile::Column::Capacity)
        .column(rep_profile::Column::Available)
        .join(
            JoinType::InnerJoin,
            rep_profile::Entity::belongs_to(user::Entity)
                .from(rep_profile::Column::UserId)
                .to(user::Column::Id)
                .into(),
        )
        .filter(user::Column::OrgId.eq(org_id))
        .filter(user::Column::Role.eq(Role::Rep.as_str()))
        .filter(user::Column::Active.eq(true))
        .order_by_asc(rep_profile::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    let teams: HashMap<String, String> = team::Entity::find()
        .filter(team::Column::OrgId.eq(org_id))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    Ok(rows
        .into_iter()
        .map(
            |(id, team_id, regions, expertise, capacity, available)| RepSnapshot {
                team_name: team_id.as_ref().and_then(|t| teams.get(t).cloned()),
                team_id,
                regions: serde_json::from_value(regions).unwrap_or_default(),
                product_expertise: serde_json::from_value(expertise).unwrap_or_default(),
                capacity: u32::try_from(capacity).unwrap_or(0),
                available,
                protected_leads: 0,
                pending_leads: 0,
                deal_load_milli: 0,
                last_assigned_at: None,
                id,
            },
        )
        .collect())
}

/// The rows of `select` as one JSON array in one result row, decoded into `T` (a tuple of the
/// `columns`, in order). A batch reads a row per rep twice (last assignment, open-lead sums):
/// on SQLite every row is a message from the driver's database thread to the runtime, ~2.5 µs
/// each, 3–16 ms a batch for 1,000 reps; aggregated by the database it is one row.
async fn rows_as_one<T: serde::de::DeserializeOwned, C: ConnectionTrait>(
    db: &C,
    select: sea_orm::sea_query::SelectStatement,
    columns: &str,
) -> anyhow::Result<Vec<T>> {
    use sea_orm::DatabaseBackend;
    use sea_orm::sea_query::{Alias, Query};
    let aggregate = match db.get_database_backend() {
        DatabaseBackend::Postgres => format!("json_agg(json_build_array({columns}))::text"),
        _ => format!("json_group_array(json_array({columns}))"),
    };
    let one = Query::select()
        .expr(Expr::cust(aggregate))
        .from_subquery(select, Alias::new("rows"))
        .to_owned();
    let text: Option<String> = match db.query_one(&one).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    // PostgreSQL's json_agg of no rows is NULL.
    match text {
        Some(text) => serde_json::from_str(&text).context("decoding aggregated rows"),
        None => Ok(Vec::new()),
    }
}

/// Fill in the loads and last-assignment times: the part that must be read inside the org's turn.
pub async fn apply_loads<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    now: OffsetDateTime,
    reps: &mut [RepSnapshot],
) -> anyhow::Result<()> {
    read_loads(db, org_id, now).await?.apply(reps);
    Ok(())
}

/// The org's rep loads and last-assignment times as committed (or as `db`'s transaction sees
/// them), per rep id: what [`apply_loads`] fills in.
pub struct Loads {
    last: HashMap<String, Option<OffsetDateTime>>,
    protected: HashMap<String, u32>,
    pending: HashMap<String, u32>,
    deal_load: HashMap<String, u64>,
}

impl Loads {
    pub fn apply(&self, reps: &mut [RepSnapshot]) {
        for r in reps.iter_mut() {
            r.protected_leads = self.protected.get(&r.id).copied().unwrap_or(0);
            r.pending_leads = self.pending.get(&r.id).copied().unwrap_or(0);
            r.deal_load_milli = self.deal_load.get(&r.id).copied().unwrap_or(0);
            r.last_assigned_at = self.last.get(&r.id).copied().flatten();
        }
    }
}

/// Read [`Loads`]: three statements, sent side by side (on a pool each may run on a
/// connection of its own; in a transaction they queue on its one connection).
pub async fn read_loads<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Loads> {
    use sea_orm::QueryTrait;
    use sea_orm::sea_query::{CaseStatement, Func};
    // All of the org's rows (no IN list of 1,000 ids): one per rep that was ever assigned.
    let in_org = sea_orm::sea_query::Query::select()
        .column(user::Column::Id)
        .from(user::Entity)
        .and_where(user::Column::OrgId.eq(org_id))
        .to_owned();
    let states = lead_rep_state::Entity::find()
        .select_only()
        .column(lead_rep_state::Column::UserId)
        .column(lead_rep_state::Column::LastAssignedAt)
        .filter(lead_rep_state::Column::UserId.in_subquery(in_org))
        .into_query();
    // Open leads only, summed per owner by the database from the index alone
    // (`leads_org_status_owner_load_idx` carries both columns the sums look at): one row
    // per rep, however many leads they hold.
    let protected = Func::sum(
        CaseStatement::new()
            .case(lead::Column::ProtectionEndsAt.gt(now), 1)
            .finally(0),
    );
    let pending_sum = Func::sum(
        CaseStatement::new()
            .case(lead::Column::FirstActivityAt.is_null(), 1)
            .finally(0),
    );
    let sums = lead::Entity::find()
        .select_only()
        .column(lead::Column::OwnerId)
        .column_as(sea_orm::sea_query::SimpleExpr::from(protected), "protected")
        .column_as(sea_orm::sea_query::SimpleExpr::from(pending_sum), "pending")
        .filter(lead::Column::OrgId.eq(org_id))
        .filter(lead::Column::Status.eq(ASSIGNED))
        .group_by(lead::Column::OwnerId)
        .into_query();
    let (states, open, deals) = tokio::try_join!(
        rows_as_one::<(String, Option<String>), _>(db, states, "user_id, last_assigned_at"),
        rows_as_one::<(Option<String>, Option<i64>, Option<i64>), _>(
            db,
            sums,
            "owner_id, protected, pending"
        ),
        rows_as_one::<(String, String, u64), _>(
            db,
            open_deal_counts_query(org_id),
            "owner_id, node_key, deals"
        ),
    )?;
    let mut last: HashMap<String, Option<OffsetDateTime>> = HashMap::new();
    for (user, at) in states {
        let at = at
            .map(|t| OffsetDateTime::parse(&t, &Rfc3339))
            .transpose()
            .context("lead_rep_states.last_assigned_at")?;
        last.insert(user, at);
    }
    let mut protected: HashMap<String, u32> = HashMap::new();
    let mut pending: HashMap<String, u32> = HashMap::new();
    for (owner, in_window, unworked) in open {
        let Some(owner) = owner else { continue };
        let count = |n: Option<i64>| u32::try_from(n.unwrap_or(0)).unwrap_or(u32::MAX);
        protected.insert(owner.clone(), count(in_window));
        pending.insert(owner, count(unworked));
    }
    let template = fieldproof_domain::pipeline::default_template::default_template();
    let nodes = template.nodes.len();
    let mut deal_load: HashMap<String, u64> = HashMap::new();
    for (owner, node, count) in deals {
        let position = Some(node.as_str())
            .filter(|k| !k.is_empty())
            .and_then(|k| template.position(k));
        *deal_load.entry(owner).or_default() += deal_weight_milli(position, nodes) * count;
    }
    Ok(Loads {
        last,
        protected,
        pending,
        deal_load,
    })
}

/// Open deals of the org per owner and node, as the triggers of migration 000025 keep them
/// counted in `open_deal_counts` (a deal with no current node under `''`): a few rows per rep,
/// where counting the deals themselves read every open deal's index entry. Public so a test can
/// check its plan.
pub fn open_deal_counts_query(org_id: &str) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Alias, Query};
    Query::select()
        .columns([
            Alias::new("owner_id"),
            Alias::new("node_key"),
            Alias::new("deals"),
        ])
        .from(Alias::new("open_deal_counts"))
        .and_where(Expr::col(Alias::new("org_id")).eq(org_id))
        .and_where(Expr::col(Alias::new("deals")).gt(0))
        .to_owned()
}

pub async fn touch_rep_state<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    at: OffsetDateTime,
) -> Result<(), DbErr> {
    touch_rep_states(db, &[user_id.to_owned()], at).await
}

/// The last assignment time of several reps at once (one statement per chunk).
pub async fn touch_rep_states<C: ConnectionTrait>(
    db: &C,
    user_ids: &[String],
    at: OffsetDateTime,
) -> Result<(), DbErr> {
    let rows = user_ids
        .iter()
        .map(|id| lead_rep_state::ActiveModel {
            user_id: Set(id.clone()),
            last_assigned_at: Set(Some(at)),
        })
        .collect();
    super::insert_rows(
        db,
        rows,
        Some(
            OnConflict::column(lead_rep_state::Column::UserId)
                .update_column(lead_rep_state::Column::LastAssignedAt)
                .to_owned(),
        ),
    )
    .await?;
    Ok(())
}

/// Store a roster under its content id unless it is already there.
pub async fn save_roster<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    id: &str,
    rep_ids: &[&str],
    at: OffsetDateTime,
) -> Result<(), DbErr> {
    lead_roster::Entity::insert(lead_roster::ActiveModel {
        id: Set(id.to_owned()),
        org_id: Set(org_id.to_owned()),
        rep_ids: Set(serde_json::json!(rep_ids)),
        created_at: Set(at),
    })
    .on_conflict(
        OnConflict::column(lead_roster::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await
    .map(|_| ())
}

/// The rep ids of a stored roster, in order.
pub async fn roster<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    id: &str,
) -> Result<Option<Vec<String>>, DbErr> {
    Ok(lead_roster::Entity::find_by_id(id.to_owned())
        .filter(lead_roster::Column::OrgId.eq(org_id))
        .one(db)
        .await?
        .map(|r| serde_json::from_value(r.rep_ids).unwrap_or_default()))
}

/// Owned leads of the org matching any of the keys (the dedup of a batch, inside the org's
/// turn): one query per kind of key on its `(org_id, key)` index. Status and owner are checked
/// here, not in SQL: with them in the WHERE clause SQLite's planner prefers the
/// `(org_id, status, owner_id)` index and walks every converted lead of the org.
pub async fn owned_with_keys<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    company_keys: &[&str],
    phone_keys: &[&str],
) -> Result<Vec<lead::Model>, DbErr> {
    let mut out = Vec::new();
    for (column, keys) in [
        (lead::Column::CompanyKey, company_keys),
        (lead::Column::PhoneKey, phone_keys),
    ] {
        for list in super::in_lists(keys) {
            out.extend(
                lead::Entity::find()
                    .filter(lead::Column::OrgId.eq(org_id))
                    .filter(column.is_in(list))
                    .all(db)
                    .await?
                    .into_iter()
                    .filter(|l| {
                        (l.status == ASSIGNED || l.status == CONVERTED) && l.owner_id.is_some()
                    }),
            );
        }
    }
    Ok(out)
}

/// Give a pool lead to a rep: a compare-and-set on the status, so a lead is never assigned twice
/// however many processes try. Returns whether this call assigned it.
pub struct Assignment<'a> {
    pub lead_id: &'a str,
    pub owner_id: &'a str,
    pub team_id: Option<&'a str>,
    pub assigned_by: &'a str,
    pub at: OffsetDateTime,
    pub protection_ends_at: OffsetDateTime,
    pub customer_id: Option<&'a str>,
}

pub async fn assign<C: ConnectionTrait>(db: &C, a: Assignment<'_>) -> Result<bool, DbErr> {
    let mut update = lead::Entity::update_many()
        .col_expr(lead::Column::Status, Expr::value(ASSIGNED))
        .col_expr(lead::Column::OwnerId, Expr::value(a.owner_id))
        .col_expr(
            lead::Column::TeamId,
            Expr::value(a.team_id.map(str::to_owned)),
        )
        // The first team it went to stays (a claim after expiry is not a first assignment).
        .col_expr(
            lead::Column::FirstTeamId,
            sea_orm::sea_query::Func::coalesce([
                Expr::col(lead::Column::FirstTeamId),
                Expr::value(a.team_id.map(str::to_owned)),
            ])
            .into(),
        )
        .col_expr(lead::Column::AssignedBy, Expr::value(a.assigned_by))
        .col_expr(lead::Column::AssignedAt, Expr::value(a.at))
        .col_expr(
            lead::Column::ProtectionEndsAt,
            Expr::value(a.protection_ends_at),
        )
        .col_expr(
            lead::Column::FirstActivityAt,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(lead::Column::NeedsAssignment, Expr::value(false))
        .col_expr(lead::Column::UpdatedAt, Expr::value(a.at));
    if let Some(customer) = a.customer_id {
        update = update.col_expr(lead::Column::CustomerId, Expr::value(customer));
    }
    let result = update
        .filter(lead::Column::Id.eq(a.lead_id))
        .filter(lead::Column::Status.eq(POOL))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Mark a pool lead as decided without an owner (nobody qualified): it stays claimable.
pub async fn leave_in_pool<C: ConnectionTrait>(db: &C, lead_id: &str) -> Result<(), DbErr> {
    lead::Entity::update_many()
        .col_expr(lead::Column::NeedsAssignment, Expr::value(false))
        .filter(lead::Column::Id.eq(lead_id))
        .filter(lead::Column::Status.eq(POOL))
        .exec(db)
        .await
        .map(|_| ())
}

pub struct NewDecision<'a> {
    pub org_id: &'a str,
    pub lead_id: &'a str,
    /// `rule`, `existing_owner`, `claim`, `reassign`, `expired`.
    pub kind: &'a str,
    pub rule_set_version: Option<i32>,
    pub rep_id: Option<&'a str>,
    /// The record as stored: JSON text, or what [`RecordCodec::store`] made of it.
    pub record: Vec<u8>,
    pub at: OffsetDateTime,
}

/// The first four bytes of every zstd frame (JSON text starts with `{`).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How decision records are stored (`lead_decisions.record`, migration 000026): JSON text as
/// it is, or, from [`RecordCodec::PACK_FROM`] bytes on, a zstd frame of it. A rule decision at
/// 1,000 reps is ~4–5 KB of JSON and ~1.1 KB packed: a fifth of the bytes on the wire, and
/// small enough for PostgreSQL to keep in its row (past ~2 KB it compresses the value itself and
/// writes it out of line). One codec serves a batch: its compression context is reused.
pub struct RecordCodec(zstd::bulk::Compressor<'static>);

impl RecordCodec {
    /// Shorter records stay JSON text: packing a few hundred bytes saves little, and they stay
    /// readable in a SQL shell.
    pub const PACK_FROM: usize = 1024;
    /// zstd's level 1: its fastest regular level, ~4× on these records.
    const LEVEL: i32 = 1;

    pub fn new() -> std::io::Result<RecordCodec> {
        Ok(RecordCodec(zstd::bulk::Compressor::new(Self::LEVEL)?))
    }

    /// The bytes to store for the record `json`.
    pub fn store(&mut self, json: Vec<u8>) -> std::io::Result<Vec<u8>> {
        if json.len() < Self::PACK_FROM {
            return Ok(json);
        }
        let packed = self.0.compress(&json)?;
        Ok(if packed.len() < json.len() {
            packed
        } else {
            json
        })
    }
}

/// A stored record (either form) as JSON.
pub fn record_json(stored: &[u8]) -> anyhow::Result<serde_json::Value> {
    if stored.starts_with(&ZSTD_MAGIC) {
        let text = zstd::stream::decode_all(stored).context("decision record: zstd frame")?;
        return serde_json::from_slice(&text).context("decision record: JSON in the frame");
    }
    serde_json::from_slice(stored).context("decision record: JSON text")
}

fn decision_row(d: NewDecision<'_>) -> lead_decision::ActiveModel {
    lead_decision::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(d.org_id.to_owned()),
        lead_id: Set(d.lead_id.to_owned()),
        kind: Set(d.kind.to_owned()),
        rule_set_version: Set(d.rule_set_version),
        rep_id: Set(d.rep_id.map(str::to_owned)),
        record: Set(d.record),
        decided_at: Set(d.at),
    }
}

pub async fn insert_decision<C: ConnectionTrait>(
    db: &C,
    d: NewDecision<'_>,
) -> Result<lead_decision::Model, DbErr> {
    decision_row(d).insert(db).await
}

/// Several decisions in one statement per chunk (a batch of intakes).
pub async fn insert_decisions<C: ConnectionTrait>(
    db: &C,
    decisions: Vec<NewDecision<'_>>,
) -> Result<(), DbErr> {
    let rows: Vec<lead_decision::ActiveModel> = decisions.into_iter().map(decision_row).collect();
    super::insert_rows(db, rows, None).await?;
    Ok(())
}

pub async fn decisions_of<C: ConnectionTrait>(
    db: &C,
    lead_id: &str,
) -> Result<Vec<lead_decision::Model>, DbErr> {
    lead_decision::Entity::find()
        .filter(lead_decision::Column::LeadId.eq(lead_id))
        .order_by_asc(lead_decision::Column::DecidedAt)
        .order_by_asc(lead_decision::Column::Id)
        .all(db)
        .await
}

/// How many leads a rep claimed from the pool since `since`.
pub async fn claims_since<C: ConnectionTrait>(
    db: &C,
    rep_id: &str,
    since: OffsetDateTime,
) -> Result<u64, DbErr> {
    claims_query(rep_id, since).count(db).await
}

/// The claims of one rep since `since`. `kind = 'claim'` is written as a literal, not a
/// parameter: that is what lets both databases use the partial index
/// `lead_decisions_claims_idx` (migration 000019), which holds claims only.
pub fn claims_query(rep_id: &str, since: OffsetDateTime) -> sea_orm::Select<lead_decision::Entity> {
    lead_decision::Entity::find()
        .filter(lead_decision::Column::RepId.eq(rep_id))
        .filter(Expr::cust("kind = 'claim'"))
        .filter(lead_decision::Column::DecidedAt.gte(since))
}

/// When lead `lead_id` last expired in `rep_id`'s hands, if that was after `since`.
pub async fn last_expiry_in_hands_of<C: ConnectionTrait>(
    db: &C,
    lead_id: &str,
    rep_id: &str,
    since: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, DbErr> {
    lead_decision::Entity::find()
        .select_only()
        .column(lead_decision::Column::DecidedAt)
        .filter(lead_decision::Column::LeadId.eq(lead_id))
        .filter(lead_decision::Column::RepId.eq(rep_id))
        .filter(Expr::cust("kind = 'expired'"))
        .filter(lead_decision::Column::DecidedAt.gt(super::utc(since)))
        .order_by_desc(lead_decision::Column::DecidedAt)
        .into_tuple::<OffsetDateTime>()
        .one(db)
        .await
}

/// Leads whose protection ended with no follow-up: hints for the expiry scan.
pub async fn expired_unworked<C: ConnectionTrait>(
    db: &C,
    now: OffsetDateTime,
    limit: u64,
) -> Result<Vec<lead::Model>, DbErr> {
    lead::Entity::find()
        .filter(lead::Column::Status.eq(ASSIGNED))
        .filter(lead::Column::ProtectionEndsAt.lte(now))
        .filter(lead::Column::FirstActivityAt.is_null())
        .order_by_asc(lead::Column::ProtectionEndsAt)
        .limit(limit)
        .all(db)
        .await
}

/// Return one expired lead to the pool: true for exactly one caller across all instances (the
/// UPDATE re-checks every condition the scan saw).
pub async fn return_to_pool<C: ConnectionTrait>(
    db: &C,
    row: &lead::Model,
    now: OffsetDateTime,
    reclaim_blocked_until: OffsetDateTime,
) -> Result<bool, DbErr> {
    let Some(owner) = &row.owner_id else {
        return Ok(false);
    };
    let result = lead::Entity::update_many()
        .col_expr(lead::Column::Status, Expr::value(POOL))
        .col_expr(lead::Column::OwnerId, Expr::value(Option::<String>::None))
        .col_expr(lead::Column::TeamId, Expr::value(Option::<String>::None))
        .col_expr(
            lead::Column::AssignedBy,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            lead::Column::AssignedAt,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(
            lead::Column::ProtectionEndsAt,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(lead::Column::PreviousOwnerId, Expr::value(owner.as_str()))
        .col_expr(
            lead::Column::ReclaimBlockedUntil,
            Expr::value(reclaim_blocked_until),
        )
        .col_expr(lead::Column::UpdatedAt, Expr::value(now))
        .filter(lead::Column::Id.eq(row.id.as_str()))
        .filter(lead::Column::Status.eq(ASSIGNED))
        .filter(lead::Column::OwnerId.eq(owner.as_str()))
        .filter(lead::Column::FirstActivityAt.is_null())
        .filter(lead::Column::ProtectionEndsAt.lte(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn insert_activity<C: ConnectionTrait>(
    db: &C,
    row: lead_activity::ActiveModel,
) -> Result<lead_activity::Model, DbErr> {
    row.insert(db).await
}

pub async fn activities_of<C: ConnectionTrait>(
    db: &C,
    lead_id: &str,
) -> Result<Vec<lead_activity::Model>, DbErr> {
    lead_activity::Entity::find()
        .filter(lead_activity::Column::LeadId.eq(lead_id))
        .order_by_asc(lead_activity::Column::OccurredAt)
        .all(db)
        .await
}

/// Whether lead `lead_id` is still `owner_id`'s to work at `now`: assigned to them, and either
/// followed up already or inside its protection window (a lead whose window ended unworked is
/// the pool's, whether or not the expiry scan has reached it yet).
fn workable_by(lead_id: &str, owner_id: &str, now: OffsetDateTime) -> Condition {
    Condition::all()
        .add(lead::Column::Id.eq(lead_id))
        .add(lead::Column::OwnerId.eq(owner_id))
        .add(lead::Column::Status.eq(ASSIGNED))
        .add(
            Condition::any()
                .add(lead::Column::FirstActivityAt.is_not_null())
                .add(lead::Column::ProtectionEndsAt.gt(now)),
        )
}

/// The owner's follow-up at `at`, as a compare-and-set: stamps the first activity (the first
/// one stops the protection clock) only while the lead is still the owner's to work
/// ([`workable_by`]). False: it is not, and nothing changed. Run first in the follow-up's
/// transaction, so an expiry, claim or move racing it either sees the stamp or makes this fail.
pub async fn mark_followed_up<C: ConnectionTrait>(
    db: &C,
    lead_id: &str,
    owner_id: &str,
    at: OffsetDateTime,
) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Func;
    let result = lead::Entity::update_many()
        .col_expr(
            lead::Column::FirstActivityAt,
            Func::coalesce([Expr::col(lead::Column::FirstActivityAt), Expr::value(at)]).into(),
        )
        .col_expr(lead::Column::UpdatedAt, Expr::value(at))
        .filter(workable_by(lead_id, owner_id, at))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Mark the lead converted at `now`, as a compare-and-set on it being the owner's to work
/// ([`workable_by`]): false for the second of two racing conversions, or a lead that expired,
/// moved or was claimed since the caller read it.
pub async fn mark_converted<C: ConnectionTrait>(
    db: &C,
    lead_id: &str,
    owner_id: &str,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let result = lead::Entity::update_many()
        .col_expr(lead::Column::Status, Expr::value(CONVERTED))
        .col_expr(lead::Column::ConvertedAt, Expr::value(now))
        .col_expr(lead::Column::UpdatedAt, Expr::value(now))
        .filter(workable_by(lead_id, owner_id, now))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The lead, its row locked until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite has a
/// single writer): an expiry or claim that would change it waits, then re-checks its own
/// conditions against what this transaction wrote.
pub async fn find_for_update<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<lead::Model>, DbErr> {
    lead::Entity::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(db)
        .await
}

pub async fn save<C: ConnectionTrait>(
    db: &C,
    row: lead::ActiveModel,
) -> Result<lead::Model, DbErr> {
    row.update(db).await
}

pub async fn insert_leads<C: ConnectionTrait>(
    db: &C,
    rows: Vec<lead::ActiveModel>,
) -> Result<(), DbErr> {
    super::insert_rows(db, rows, None).await?;
    Ok(())
}

/// Leads waiting for a decision (from imports, or an intake whose inline assignment failed).
pub async fn awaiting_assignment<C: ConnectionTrait>(
    db: &C,
    limit: u64,
    except_orgs: &[String],
) -> Result<Vec<(String, String)>, DbErr> {
    let mut query = lead::Entity::find()
        .select_only()
        .column(lead::Column::Id)
        .column(lead::Column::OrgId)
        .filter(lead::Column::NeedsAssignment.eq(true))
        .filter(lead::Column::Status.eq(POOL));
    if !except_orgs.is_empty() {
        query = query.filter(lead::Column::OrgId.is_not_in(except_orgs.iter().map(String::as_str)));
    }
    query
        .order_by_asc(lead::Column::CreatedAt)
        .order_by_asc(lead::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

/// Leads of the org created in `[from, to)`, optionally of the team they were first assigned to,
/// oldest first.
pub async fn created_between<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    team_id: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<lead::Model>, DbErr> {
    let mut query = lead::Entity::find()
        .filter(lead::Column::OrgId.eq(org_id))
        .filter(lead::Column::CreatedAt.gte(super::utc(from)))
        .filter(lead::Column::CreatedAt.lt(super::utc(to)));
    if let Some(team) = team_id {
        query = query.filter(lead::Column::FirstTeamId.eq(team));
    }
    query
        .order_by_asc(lead::Column::CreatedAt)
        .order_by_asc(lead::Column::Id)
        .all(db)
        .await
}

/// The latest rule-made decision of each of `lead_ids` (what the replay compares against).
pub async fn rule_decisions_of<C: ConnectionTrait>(
    db: &C,
    lead_ids: &[String],
) -> Result<HashMap<String, lead_decision::Model>, DbErr> {
    let mut out = HashMap::new();
    for chunk in lead_ids.chunks(500) {
        let rows = lead_decision::Entity::find()
            .filter(lead_decision::Column::LeadId.is_in(chunk.iter().map(String::as_str)))
            .filter(lead_decision::Column::Kind.is_in(["rule", "existing_owner"]))
            .order_by_asc(lead_decision::Column::DecidedAt)
            .all(db)
            .await?;
        for r in rows {
            out.insert(r.lead_id.clone(), r);
        }
    }
    Ok(out)
}

pub async fn latest_rules<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
) -> Result<Option<lead_rule_set::Model>, DbErr> {
    lead_rule_set::Entity::find()
        .filter(lead_rule_set::Column::OrgId.eq(org_id))
        .order_by_desc(lead_rule_set::Column::Version)
        .one(db)
        .await
}

pub async fn rules_version<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    version: i32,
) -> Result<Option<lead_rule_set::Model>, DbErr> {
    lead_rule_set::Entity::find()
        .filter(lead_rule_set::Column::OrgId.eq(org_id))
        .filter(lead_rule_set::Column::Version.eq(version))
        .one(db)
        .await
}

pub async fn insert_rules<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    version: i32,
    rules: serde_json::Value,
    created_by: &str,
) -> Result<lead_rule_set::Model, DbErr> {
    lead_rule_set::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(org_id.to_owned()),
        version: Set(version),
        rules: Set(rules),
        created_by: Set(created_by.to_owned()),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await
}

pub async fn insert_source<C: ConnectionTrait>(
    db: &C,
    row: lead_source::ActiveModel,
) -> Result<lead_source::Model, DbErr> {
    row.insert(db).await
}

pub async fn sources<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
) -> Result<Vec<lead_source::Model>, DbErr> {
    lead_source::Entity::find()
        .filter(lead_source::Column::OrgId.eq(org_id))
        .order_by_asc(lead_source::Column::Id)
        .all(db)
        .await
}

pub async fn source_by_key_hash<C: ConnectionTrait>(
    db: &C,
    key_hash: &str,
) -> Result<Option<lead_source::Model>, DbErr> {
    lead_source::Entity::find()
        .filter(lead_source::Column::KeyHash.eq(key_hash))
        .filter(lead_source::Column::Active.eq(true))
        .one(db)
        .await
}

pub async fn insert_import<C: ConnectionTrait>(
    db: &C,
    row: lead_import::ActiveModel,
) -> Result<lead_import::Model, DbErr> {
    row.insert(db).await
}

pub async fn save_import<C: ConnectionTrait>(
    db: &C,
    row: lead_import::ActiveModel,
) -> Result<lead_import::Model, DbErr> {
    row.update(db).await
}

pub async fn find_import<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    id: &str,
) -> Result<Option<lead_import::Model>, DbErr> {
    lead_import::Entity::find_by_id(id.to_owned())
        .filter(lead_import::Column::OrgId.eq(org_id))
        .one(db)
        .await
}

pub async fn insert_import_errors<C: ConnectionTrait>(
    db: &C,
    rows: Vec<lead_import_error::ActiveModel>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    lead_import_error::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

pub async fn import_errors<C: ConnectionTrait>(
    db: &C,
    import_id: &str,
    page: &PageRequest,
) -> Result<Page<lead_import_error::Model>, DbErr> {
    let mut query =
        lead_import_error::Entity::find().filter(lead_import_error::Column::ImportId.eq(import_id));
    if let Some(after) = &page.after {
        query = query.filter(lead_import_error::Column::Id.gt(after.as_str()));
    }
    let rows = query
        .order_by_asc(lead_import_error::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |e| e.id.clone()))
}

/// Active managers of the org (who hear about leads nobody could take).
pub async fn managers_of_org<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
) -> Result<Vec<String>, DbErr> {
    user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::OrgId.eq(org_id))
        .filter(user::Column::Role.eq(Role::Manager.as_str()))
        .filter(user::Column::Active.eq(true))
        .into_tuple()
        .all(db)
        .await
}

/// Customers of the org with any of the company keys (`customers_company_key_idx`).
pub async fn customers_with_keys<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    keys: &[&str],
) -> Result<Vec<super::entities::customer::Model>, DbErr> {
    use super::entities::customer;
    let mut out = Vec::new();
    for list in super::in_lists(keys) {
        out.extend(
            customer::Entity::find()
                .filter(customer::Column::OrgId.eq(org_id))
                .filter(customer::Column::CompanyKey.is_in(list))
                .all(db)
                .await?,
        );
    }
    Ok(out)
}

/// `(phone key, customer id)` of the org's contacts with any of the phone keys
/// (`contacts_phone_key_idx`).
pub async fn contacts_with_phone_keys<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    keys: &[&str],
) -> Result<Vec<(Option<String>, String)>, DbErr> {
    use super::entities::{contact, customer};
    let mut out = Vec::new();
    for list in super::in_lists(keys) {
        let in_org = sea_orm::sea_query::Query::select()
            .column(customer::Column::Id)
            .from(customer::Entity)
            .and_where(customer::Column::OrgId.eq(org_id))
            .to_owned();
        out.extend(
            contact::Entity::find()
                .select_only()
                .column(contact::Column::PhoneKey)
                .column(contact::Column::CustomerId)
                .filter(contact::Column::PhoneKey.is_in(list))
                .filter(contact::Column::CustomerId.in_subquery(in_org))
                .into_tuple::<(Option<String>, String)>()
                .all(db)
                .await?,
        );
    }
    Ok(out)
}

/// Customers by id.
pub async fn customers_by_id<C: ConnectionTrait>(
    db: &C,
    ids: &[&str],
) -> Result<Vec<super::entities::customer::Model>, DbErr> {
    use super::entities::customer;
    let mut out = Vec::new();
    for list in super::in_lists(ids) {
        out.extend(
            customer::Entity::find()
                .filter(customer::Column::Id.is_in(list))
                .all(db)
                .await?,
        );
    }
    Ok(out)
}

pub async fn customer<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<super::entities::customer::Model>, DbErr> {
    super::entities::customer::Entity::find_by_id(id.to_owned())
        .one(db)
        .await
}

/// When the customer's past activities happened (their deals' activity log).
pub async fn customer_activity_times<C: ConnectionTrait>(
    db: &C,
    customer_id: &str,
) -> Result<Vec<OffsetDateTime>, DbErr> {
    use super::entities::activity;
    let deals = sea_orm::sea_query::Query::select()
        .column(deal::Column::Id)
        .from(deal::Entity)
        .and_where(deal::Column::CustomerId.eq(customer_id))
        .to_owned();
    activity::Entity::find()
        .select_only()
        .column(activity::Column::OccurredAt)
        .filter(activity::Column::DealId.in_subquery(deals))
        .order_by_desc(activity::Column::OccurredAt)
        .limit(200)
        .into_tuple()
        .all(db)
        .await
}

pub async fn open_deals_of_customer<C: ConnectionTrait>(
    db: &C,
    customer_id: &str,
) -> Result<u64, DbErr> {
    deal::Entity::find()
        .filter(deal::Column::CustomerId.eq(customer_id))
        .filter(deal::Column::Status.eq("open"))
        .count(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::{RecordCodec, ZSTD_MAGIC, record_json};
    use serde_json::json;

    #[test]
    fn a_large_record_is_stored_packed_and_reads_back_equal() {
        let candidates: Vec<_> = (0..120)
            .map(|i| json!([i * 7, 1000 + i, 1000, 1_795_790_037 - i]))
            .collect();
        let record = json!({"inputs": {"lead": {"industry": "制造业"}}, "decision": {"candidates": candidates}});
        let text = serde_json::to_vec(&record).unwrap();
        let stored = RecordCodec::new().unwrap().store(text.clone()).unwrap();
        assert!(stored.starts_with(&ZSTD_MAGIC));
        assert!(
            stored.len() * 2 < text.len(),
            "{} of {}",
            stored.len(),
            text.len()
        );
        assert_eq!(record_json(&stored).unwrap(), record);
    }

    #[test]
    fn a_small_record_and_one_stored_before_packing_stay_json_text() {
        let record = json!({"claimed_by": "u1", "load_milli": 250});
        let text = serde_json::to_vec(&record).unwrap();
        assert!(text.len() < RecordCodec::PACK_FROM);
        let stored = RecordCodec::new().unwrap().store(text.clone()).unwrap();
        assert_eq!(stored, text);
        assert_eq!(record_json(&stored).unwrap(), record);
        assert!(record_json(b"\x28\xb5\x2f\xfd not a frame").is_err());
        assert!(record_json(b"not json").is_err());
    }
}
