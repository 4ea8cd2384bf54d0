//! Lead use cases: intake (API, capture form, CSV), dedup routing, rule-based assignment with
//! its decision record, protection and the pool, health figures and what-if replays.
//!
//! Assignment runs in batches (`dispatch`): one transaction per batch of an org's leads whose
//! first statement takes the org's turn (`db::leads::take_turn`), so two processes never read
//! the same loads and both act on them: no lead is assigned twice and no rep is pushed past
//! capacity. The pure decision is `fieldproof_domain::leads::record::assign_stored`.

pub mod dispatch;
pub mod import;
pub mod insight;
pub mod protection;
pub mod rules;

use crate::db::{self, entities::lead, leads as repo};
use crate::services::notify::{self, Notice};
use anyhow::Context;
use fieldproof_domain::leads::import::LeadDraft;
use fieldproof_domain::leads::{LeadTags, Region, ResponseSpeed, company_key, phone_key};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use time::OffsetDateTime;

/// Where a new lead came from (beyond its source channel).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_id: Option<String>,
    pub import_id: Option<String>,
}

/// A new lead as parsed: it waits in the pool until assigned.
pub fn new_lead(
    org_id: &str,
    draft: LeadDraft,
    origin: &Origin,
    now: OffsetDateTime,
) -> lead::Model {
    let company = draft.company.into_string();
    lead::Model {
        id: db::new_id(),
        org_id: org_id.to_owned(),
        company_key: company_key(&company),
        company,
        contact_name: draft.contact_name,
        contact_title: draft.contact_title,
        phone_key: draft.phone.as_deref().and_then(phone_key),
        phone: draft.phone,
        industry: draft.industry.as_str().to_owned(),
        source: draft.source.as_str().to_owned(),
        annual_purchase_fen: draft.annual_purchase.get(),
        seniority: draft.seniority.as_str().to_owned(),
        province: draft.region.province,
        city: draft.region.city,
        response_speed: ResponseSpeed::Unknown.as_str().to_owned(),
        products: json!(draft.products),
        notes: draft.notes,
        status: repo::POOL.to_owned(),
        owner_id: None,
        team_id: None,
        first_team_id: None,
        customer_id: None,
        source_id: origin.source_id.clone(),
        import_id: origin.import_id.clone(),
        assigned_by: None,
        protection_ends_at: None,
        assigned_at: None,
        first_activity_at: None,
        converted_at: None,
        moved_team: false,
        previous_owner_id: None,
        reclaim_blocked_until: None,
        needs_assignment: true,
        created_at: now,
        updated_at: now,
    }
}

/// The row to insert for a parsed lead (every column set).
pub fn new_row(
    org_id: &str,
    draft: LeadDraft,
    origin: &Origin,
    now: OffsetDateTime,
) -> lead::ActiveModel {
    insertable(new_lead(org_id, draft, origin, now))
}

/// An ActiveModel that inserts every column of `row`.
pub fn insertable(row: lead::Model) -> lead::ActiveModel {
    use sea_orm::ActiveModelTrait;
    lead::ActiveModel::from(row).reset_all()
}

/// Store a new lead and assign it: it joins the next batch of this process's dispatcher, which
/// stores and assigns a whole burst of intakes in one transaction. If that transaction fails
/// the lead is stored alone and the background job assigns it later: nothing received is lost.
pub async fn intake(
    dispatcher: &dispatch::Dispatcher,
    org_id: &str,
    draft: LeadDraft,
    origin: Origin,
) -> anyhow::Result<lead::Model> {
    let row = new_lead(org_id, draft, &origin, db::now());
    dispatcher.submit(dispatch::Prepared::new(row)).await
}

/// [`intake`] for a request whose account the dispatcher checks with its batch
/// ([`dispatch::Dispatcher::submit_in_session`]): `None` when the account is inactive or the
/// session revoked (nothing stored).
pub async fn intake_in_session(
    dispatcher: &dispatch::Dispatcher,
    user_id: &str,
    session_id: &str,
    draft: LeadDraft,
) -> anyhow::Result<Option<(lead::Model, db::users::User)>> {
    // The org is the account's, set by the dispatcher once it has read the account.
    let row = new_lead("", draft, &Origin::default(), db::now());
    dispatcher
        .submit_in_session(
            dispatch::Prepared::new(row),
            user_id.to_owned(),
            session_id.to_owned(),
        )
        .await
}

/// The lead's tags as rules see them.
pub fn tags_of(row: &lead::Model) -> anyhow::Result<LeadTags> {
    use fieldproof_domain::leads::{Industry, SourceChannel};
    Ok(LeadTags {
        industry: Industry::parse_loose(&row.industry).context("leads.industry")?,
        source: SourceChannel::parse_loose(&row.source).context("leads.source")?,
        annual_purchase: fieldproof_domain::customer::Fen::new(row.annual_purchase_fen)
            .context("leads.annual_purchase_fen")?,
        seniority: row.seniority.parse().context("leads.seniority")?,
        region: Region {
            province: row.province.clone(),
            city: row.city.clone(),
        },
        response_speed: ResponseSpeed::parse_loose(&row.response_speed)
            .context("leads.response_speed")?,
        products: serde_json::from_value(row.products.clone()).unwrap_or_default(),
    })
}

/// Someone who already owns this customer (by normalised company name or phone).
#[derive(Debug, Clone)]
pub struct ExistingOwner {
    pub owner_id: String,
    pub team_id: Option<String>,
    pub customer_id: Option<String>,
    /// `customer` or `lead`, and the id matched.
    pub matched: serde_json::Value,
}

/// Dedup at intake against the org's customers, for a batch of leads: the customer with the
/// same company key, else one with a contact of the same phone key. Two indexed queries (and
/// one for the customers found by phone) whatever the batch size. Owned leads are matched
/// inside the org's turn (`dispatch`), where a lead another process just assigned is visible.
pub async fn customer_owners<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    rows: &[&lead::Model],
) -> anyhow::Result<std::collections::HashMap<String, ExistingOwner>> {
    use std::collections::HashMap;
    let company_keys: Vec<&str> = rows
        .iter()
        .map(|r| r.company_key.as_str())
        .filter(|k| !k.is_empty())
        .collect();
    let phone_keys: Vec<&str> = rows.iter().filter_map(|r| r.phone_key.as_deref()).collect();
    let mut by_company: HashMap<String, db::entities::customer::Model> = HashMap::new();
    for c in repo::customers_with_keys(db, org_id, &company_keys).await? {
        if let Some(key) = c.company_key.clone() {
            // The oldest customer of a name wins, whatever order the database returned.
            match by_company.get(&key) {
                Some(have) if (have.created_at, &have.id) <= (c.created_at, &c.id) => {}
                _ => {
                    by_company.insert(key, c);
                }
            }
        }
    }
    let mut phone_customer: HashMap<String, String> = HashMap::new();
    if !phone_keys.is_empty() {
        let mut pairs = repo::contacts_with_phone_keys(db, org_id, &phone_keys).await?;
        pairs.sort();
        for (key, customer) in pairs {
            if let Some(key) = key {
                phone_customer.entry(key).or_insert(customer);
            }
        }
    }
    let ids: Vec<&str> = phone_customer.values().map(String::as_str).collect();
    let by_id: HashMap<String, db::entities::customer::Model> = repo::customers_by_id(db, &ids)
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    let mut out = HashMap::new();
    for row in rows {
        let owner = match by_company.get(&row.company_key) {
            Some(c) => Some((c, "company")),
            None => row
                .phone_key
                .as_ref()
                .and_then(|p| phone_customer.get(p))
                .and_then(|id| by_id.get(id))
                .map(|c| (c, "phone")),
        };
        if let Some((c, by)) = owner {
            out.insert(
                row.id.clone(),
                ExistingOwner {
                    owner_id: c.owner_id.clone(),
                    team_id: c.team_id.clone(),
                    customer_id: Some(c.id.clone()),
                    matched: json!({"kind": "customer", "id": c.id, "by": by}),
                },
            );
        }
    }
    Ok(out)
}

/// Tell the new owner, with a background summary of the customer so the first call is informed.
pub(super) async fn tell_owner<C: ConnectionTrait>(
    db: &C,
    row: &lead::Model,
    owner: &str,
    customer_id: Option<&str>,
    ends: OffsetDateTime,
    existing: bool,
) -> anyhow::Result<()> {
    let history = customer_history(db, customer_id).await?;
    notify::notify(db, assigned_notice(row, owner, history, ends, existing)).await?;
    Ok(())
}

/// Past interactions and open deals of the matched customer (none without one).
pub(super) async fn customer_history<C: ConnectionTrait>(
    db: &C,
    customer_id: Option<&str>,
) -> anyhow::Result<(usize, u64)> {
    Ok(match customer_id {
        Some(c) => (
            repo::customer_activity_times(db, c).await?.len(),
            repo::open_deals_of_customer(db, c).await?,
        ),
        None => (0, 0),
    })
}

/// The `lead_assigned` notice: the lead's background and the end of the window.
pub(super) fn assigned_notice(
    row: &lead::Model,
    owner: &str,
    (interactions, open_deals): (usize, u64),
    ends: OffsetDateTime,
    existing: bool,
) -> Notice {
    let yuan = row.annual_purchase_fen / 100;
    let ends_text = ends
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (lead_en, lead_zh) = if existing {
        ("New lead for your customer", "您的客户有新线索")
    } else {
        ("New lead assigned to you", "新线索已分配给您")
    };
    Notice {
        org_id: row.org_id.clone(),
        recipients: vec![owner.to_owned()],
        team_id: None,
        kind: "lead_assigned".into(),
        title_en: format!("{lead_en}: {}", row.company),
        title_zh: format!("{lead_zh}：{}", row.company),
        body_en: format!(
            "Industry: {}. Estimated annual purchase: {yuan} CNY. Source: {}. Contact: {} {}. Past interactions: {interactions}. Open deals: {open_deals}. Yours exclusively until {ends_text}: follow up before then or it returns to the pool.",
            row.industry, row.source, row.contact_name, row.contact_title
        ),
        body_zh: format!(
            "行业：{}。预估年采购额：{yuan} 元。来源：{}。联系人：{} {}。历史互动：{interactions} 次。进行中商机：{open_deals} 个。保护期至 {ends_text}，期间仅您可见；到期未跟进将退回公海。",
            row.industry, row.source, row.contact_name, row.contact_title
        ),
        link: Some(format!("/api/v1/leads/{}", row.id)),
        dedup_key: Some(format!(
            "lead_assigned:{}:{owner}:{}",
            row.id,
            ends.unix_timestamp()
        )),
    }
}

/// Assign every lead waiting for a decision (imports, deferred intakes), oldest first, in
/// batches of `batch` per org turn. An org whose batch fails (its stored rule set unreadable,
/// say) is logged and left out for the rest of the pass: the other orgs' leads still move, even
/// when the failing org's are the oldest waiting.
pub async fn assign_pending(db: &DatabaseConnection, batch: u64) -> anyhow::Result<usize> {
    let mut done = 0;
    let rosters = dispatch::RosterCache::default();
    let mut failed: Vec<String> = Vec::new();
    loop {
        let waiting = repo::awaiting_assignment(db, batch, &failed).await?;
        if waiting.is_empty() {
            return Ok(done);
        }
        let mut by_org: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (id, org) in waiting {
            by_org.entry(org).or_default().push(id);
        }
        let mut progressed = 0;
        let failed_before = failed.len();
        for (org_id, ids) in by_org {
            let mut items = Vec::new();
            for id in ids {
                if let Some(row) = repo::find(db, &id).await? {
                    items.push(dispatch::Prepared::waiting(row));
                }
            }
            match dispatch::decide_batch(db, None, &rosters, &org_id, items).await {
                Ok(decided) => progressed += decided.iter().filter(|d| d.decided).count(),
                Err(e) => {
                    tracing::warn!(org = %org_id, error = %crate::telemetry::cause_chain(&e), "waiting leads of this org could not be assigned; the other orgs go on");
                    failed.push(org_id);
                }
            }
        }
        done += progressed;
        // Nothing moved and no org newly failed: what is left cannot move in this pass.
        if progressed == 0 && failed.len() == failed_before {
            return Ok(done);
        }
    }
}
