//! Batched assignment: a burst of intakes is stored and assigned in one transaction per org.
//!
//! Assignments of one org are serial across every process (the org's turn, `take_turn`): that
//! is what makes "never twice, never over capacity" hold with N instances. Taking the turn once
//! per lead made a burst of 200 intakes queue 200 transactions, each reading every rep's load
//! and writing its rows (seconds at the back of the queue). Here each process has one
//! [`Dispatcher`]: requests hand it their lead and wait; it takes whatever has queued up while
//! the previous batch ran (group commit) and whatever follows with no pause longer than a
//! millisecond ([`gather`], `LEAD_BATCH_GATHER_MS`), takes the turn once, reads the loads once,
//! decides the leads one after another in memory (each decision sees the loads the previous
//! ones added), and writes the leads, decisions, rep states and notices with multi-row
//! statements. A lone intake is a batch of one that waited one gap.
//!
//! The scheduler's pass over waiting leads (CSV imports, deferred intakes) uses the same
//! [`decide_batch`] for rows already stored, with a compare-and-set per row.
//!
//! The rep roster (profiles, teams) is kept per process in a [`RosterCache`] and read again only
//! when the org's roster version moved; loads are read inside the turn every batch.

use super::{
    ExistingOwner, assigned_notice, customer_history, customer_owners, insertable, rules, tags_of,
};
use crate::db::{self, entities::lead, leads as repo, users::User};
use crate::services::notify::{self, Notice};
use anyhow::Context;
use fieldproof_domain::leads::ResponseSpeed;
use fieldproof_domain::leads::assign::{Lead, Outcome, RepSnapshot};
use fieldproof_domain::leads::record::{Batch, assign_stored};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most leads one batch takes (one transaction; its multi-row statements are chunked anyway).
pub const MAX_BATCH: usize = 256;

/// A batch with at least this many leads to decide is decided and inserted in two halves (see
/// [`decide_batch`]); below it one more statement would cost more than the overlap saves.
const SPLIT_FROM: usize = 32;

/// Each org's rep roster as last read, with the roster version it was read at
/// ([`repo::roster_version`], bumped by database triggers on every change to the org's users,
/// rep profiles and teams). A batch reads the version (one row) and the roster only when the
/// version moved. Cheap to clone; clones share the entries.
#[derive(Clone, Default)]
pub struct RosterCache {
    rosters: Arc<Mutex<HashMap<String, VersionedRoster>>>,
    /// Per org, the content id of the roster a committed batch of this process stored last.
    saved: Arc<Mutex<HashMap<String, String>>>,
}

/// A roster and the roster version it was read at.
type VersionedRoster = (i64, Arc<Vec<RepSnapshot>>);

impl RosterCache {
    /// The org's current roster (loads not applied).
    pub async fn roster<C: ConnectionTrait>(
        &self,
        db: &C,
        org_id: &str,
    ) -> anyhow::Result<Vec<RepSnapshot>> {
        // Version first: a change committed between the two reads leaves a newer roster under
        // an older version (read again next time), never an older roster under a newer one.
        let Some(version) = repo::roster_version(db, org_id).await? else {
            return repo::rep_roster(db, org_id).await;
        };
        let cached = self
            .rosters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(org_id)
            .filter(|(at, _)| *at == version)
            .map(|(_, reps)| reps.clone());
        if let Some(reps) = cached {
            metrics::counter!("fieldproof_lead_roster_reads_total", "from" => "cache").increment(1);
            return Ok(reps.as_ref().clone());
        }
        let reps = repo::rep_roster(db, org_id).await?;
        metrics::counter!("fieldproof_lead_roster_reads_total", "from" => "database").increment(1);
        self.rosters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(org_id.to_owned(), (version, Arc::new(reps.clone())));
        Ok(reps)
    }

    /// Whether roster `id` of the org is known to be stored (a batch that saved it committed).
    fn is_saved(&self, org_id: &str, id: &str) -> bool {
        self.saved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(org_id)
            .is_some_and(|saved| saved == id)
    }

    /// Remember roster `id` as stored, once the batch that saved it (or found it) committed.
    fn saved(&self, org_id: &str, id: &str) {
        self.saved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(org_id.to_owned(), id.to_owned());
    }
}

/// A lead for a batch: new (the batch inserts it, already decided) or waiting in the pool.
pub struct Prepared {
    pub row: lead::Model,
    pub is_new: bool,
}

impl Prepared {
    pub fn new(row: lead::Model) -> Prepared {
        Prepared { row, is_new: true }
    }

    pub fn waiting(row: lead::Model) -> Prepared {
        Prepared { row, is_new: false }
    }
}

/// A decision waiting to be written with the batch.
struct PendingDecision {
    lead_id: String,
    kind: &'static str,
    version: Option<i32>,
    rep_id: Option<String>,
    /// JSON text, then as stored (`repo::RecordCodec`, while the leads insert runs).
    record: Vec<u8>,
}

/// What a batch did with one lead.
#[derive(Debug, Clone)]
pub struct Done {
    /// The lead as stored after the batch.
    pub row: lead::Model,
    /// Whether this batch decided it (`false`: it had been decided meanwhile).
    pub decided: bool,
}

/// Owned leads by company key and by phone key: the owner a new lead of the same customer goes
/// to. The first lead remembered under a key keeps it.
#[derive(Default)]
struct OwnedLeads {
    by_company: HashMap<String, ExistingOwner>,
    by_phone: HashMap<String, ExistingOwner>,
}

impl OwnedLeads {
    /// Owned leads read from the database, oldest first.
    fn from_rows(mut owned: Vec<lead::Model>) -> OwnedLeads {
        owned.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let mut leads = OwnedLeads::default();
        for row in &owned {
            leads.remember(row);
        }
        leads
    }

    fn remember(&mut self, row: &lead::Model) {
        let Some(owner) = row.owner_id.clone() else {
            return;
        };
        let existing = ExistingOwner {
            owner_id: owner,
            team_id: row.team_id.clone(),
            customer_id: row.customer_id.clone(),
            matched: json!({"kind": "lead", "id": row.id}),
        };
        if let Some(phone) = &row.phone_key {
            self.by_phone
                .entry(phone.clone())
                .or_insert_with(|| existing.clone());
        }
        self.by_company
            .entry(row.company_key.clone())
            .or_insert(existing);
    }

    /// The owner of this lead's customer: same company key first, then same phone key.
    fn owner_of(&self, row: &lead::Model) -> impl Iterator<Item = &ExistingOwner> {
        self.by_company
            .get(&row.company_key)
            .into_iter()
            .chain(row.phone_key.as_ref().and_then(|p| self.by_phone.get(p)))
    }

    fn owners(&self) -> impl Iterator<Item = &str> {
        self.by_company
            .values()
            .chain(self.by_phone.values())
            .map(|o| o.owner_id.as_str())
    }
}

/// Where a batch's time goes, phase by phase: `fieldproof_lead_batch_phase_seconds{phase}` on
/// `/metrics` (each phase's wall time, waiting included). An operator sees which part of an
/// intake burst grows (the commit, the loads, the inserts) without a special build.
struct Phases(std::time::Instant);

/// The phases a batch reports, in the order it runs them: the accounts of its sessions checked
/// (`check`, for the whole batch before it is split by org), then [`decide_batch`]'s.
pub const BATCH_PHASES: [&str; 10] = [
    "check",
    "reads",
    "turn",
    "loads",
    "decide",
    "insert_leads",
    "insert_decisions",
    "rep_states",
    "notices",
    "commit",
];

impl Phases {
    fn start() -> Phases {
        Phases(std::time::Instant::now())
    }

    /// Record the time since the previous mark as `phase`.
    fn mark(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        metrics::histogram!("fieldproof_lead_batch_phase_seconds", "phase" => phase)
            .record((now - self.0).as_secs_f64());
        self.0 = now;
    }
}

/// Decide and write a batch of one org's leads under one turn. Results are in input order.
/// `loads_from`: a pool the rep loads are read from once the turn is taken, beside the
/// transaction's own statements (PostgreSQL; never the pool `db`'s transactions hold a
/// connection of while they wait for it); `None`: read in the transaction.
pub async fn decide_batch(
    db: &DatabaseConnection,
    loads_from: Option<&DatabaseConnection>,
    rosters: &RosterCache,
    org_id: &str,
    items: Vec<Prepared>,
) -> anyhow::Result<Vec<Done>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut phases = Phases::start();
    // Reads that need no turn: rules, reps, and the customers these leads belong to (two
    // indexed queries for the whole batch), with those customers' response speed.
    let (version, rules) = rules::active(db, org_id).await?;
    let rows: Vec<&lead::Model> = items.iter().map(|p| &p.row).collect();
    let customers = customer_owners(db, org_id, &rows).await?;
    let mut speeds: HashMap<String, ResponseSpeed> = HashMap::new();
    for owner in customers.values() {
        if let Some(c) = &owner.customer_id
            && !speeds.contains_key(c)
        {
            let times = repo::customer_activity_times(db, c).await?;
            speeds.insert(c.clone(), ResponseSpeed::from_activity_times(&times));
        }
    }
    let mut reps = rosters.roster(db, org_id).await?;
    phases.mark("reads");
    let rep_ids: Vec<String> = reps.iter().map(|r| r.id.clone()).collect();
    let id_refs: Vec<&str> = rep_ids.iter().map(String::as_str).collect();
    let batch = Batch::new(&reps, &rules);
    let rep_index: HashMap<&str, usize> =
        id_refs.iter().enumerate().map(|(i, id)| (*id, i)).collect();

    let txn = db.begin().await?;
    repo::take_turn(&txn, org_id).await?;
    let now = db::now();
    // The roster is content-addressed: once a batch with it has committed, this process skips
    // the insert (~35 KB of rep ids at 1,000 reps).
    if !rosters.is_saved(org_id, &batch.roster) {
        repo::save_roster(&txn, org_id, &batch.roster, &id_refs, now).await?;
    }
    phases.mark("turn");

    // With the turn taken, every batch before this one (any process) has committed: on
    // PostgreSQL the rep loads are read from that committed state on other connections, side
    // by side with this transaction's own statements below (SQLite: queued with them).
    let loads_read = async {
        match loads_from {
            Some(pool) => repo::read_loads(pool, org_id, now).await,
            None => repo::read_loads(&txn, org_id, now).await,
        }
    };
    let in_turn = async {
        // Rows stored earlier may have been decided meanwhile: re-read them inside the turn.
        let mut done: Vec<Option<Done>> = Vec::with_capacity(items.len());
        let mut live: Vec<(usize, Prepared)> = Vec::new();
        for (position, mut item) in items.into_iter().enumerate() {
            if !item.is_new {
                match repo::find(&txn, &item.row.id).await? {
                    Some(row) if row.status == repo::POOL && row.needs_assignment => item.row = row,
                    Some(row) => {
                        done.push(Some(Done {
                            row,
                            decided: false,
                        }));
                        continue;
                    }
                    None => {
                        done.push(Some(Done {
                            row: item.row,
                            decided: false,
                        }));
                        continue;
                    }
                }
            }
            done.push(None);
            live.push((position, item));
        }
        // Dedup against owned leads, inside the turn: a lead of the same customer that another
        // process assigned a moment ago is visible here.
        let company_keys: Vec<&str> = live
            .iter()
            .map(|(_, p)| p.row.company_key.as_str())
            .collect();
        let phone_keys: Vec<&str> = live
            .iter()
            .filter_map(|(_, p)| p.row.phone_key.as_deref())
            .collect();
        let owned = OwnedLeads::from_rows(
            repo::owned_with_keys(&txn, org_id, &company_keys, &phone_keys).await?,
        );
        let maybe_owners: Vec<&str> = customers
            .values()
            .map(|c| c.owner_id.as_str())
            .chain(owned.owners())
            .collect();
        let active_owners: std::collections::HashSet<String> =
            db::users::of_org_among(&txn, org_id, &maybe_owners, true)
                .await?
                .into_iter()
                .collect();
        anyhow::Ok((done, live, owned, active_owners))
    };
    let (loads, in_turn) = tokio::join!(loads_read, in_turn);
    let (mut done, mut live, mut owned, mut active_owners) = in_turn?;
    loads?.apply(&mut reps);
    phases.mark("loads");

    let mut decisions: Vec<PendingDecision> = Vec::new();
    let mut codec = repo::RecordCodec::new()?;
    let mut notices: Vec<Notice> = Vec::new();
    let mut touched: Vec<String> = Vec::new();
    let mut managers: Option<Vec<String>> = None;
    let mut stats = (0u64, 0u64, 0u64);
    // Decide one lead (in order: each decision sees the loads the ones before it left); a new
    // lead's row to insert comes back.
    let mut decide = async |position: usize,
                            item: Prepared|
           -> anyhow::Result<Option<lead::ActiveModel>> {
        let mut row = item.row;
        let customer = customers.get(&row.id).cloned();
        let speed = customer
            .as_ref()
            .and_then(|c| c.customer_id.as_ref())
            .and_then(|c| speeds.get(c))
            .copied()
            .unwrap_or(ResponseSpeed::Unknown);
        let mut tags = tags_of(&row)?;
        tags.response_speed = speed;
        row.response_speed = speed.as_str().to_owned();
        let existing = customer
            .into_iter()
            .chain(owned.owner_of(&row).cloned())
            .find(|o| active_owners.contains(&o.owner_id));
        let kind;
        if let Some(owner) = existing {
            // Customer continuity beats load balancing: the owner hears about it even when full.
            let hours = rules.protection_hours;
            let ends = now + Duration::hours(i64::from(hours));
            kind = "existing_owner";
            set_assigned(
                &mut row,
                &owner.owner_id,
                owner.team_id.clone(),
                kind,
                now,
                ends,
            );
            if owner.customer_id.is_some() {
                row.customer_id = owner.customer_id.clone();
            }
            if let Some(&i) = rep_index.get(owner.owner_id.as_str()) {
                reps[i].protected_leads += 1;
                reps[i].pending_leads += 1;
            }
            let history = customer_history(&txn, row.customer_id.as_deref()).await?;
            notices.push(assigned_notice(&row, &owner.owner_id, history, ends, true));
            decisions.push(PendingDecision {
                lead_id: row.id.clone(),
                kind,
                version: None,
                rep_id: Some(owner.owner_id.clone()),
                record: json!({"inputs": {"lead": tags}, "existing_owner": owner.matched, "protection_hours": hours, "protection_ends_at": ends}).to_string().into_bytes(),
            });
            stats.0 += 1;
        } else {
            let decision = assign_stored(
                &Lead {
                    key: row.id.clone(),
                    tags: tags.clone(),
                },
                &reps,
                &rules,
                now,
                &batch,
            );
            match &decision.outcome {
                Outcome::Assigned {
                    rep_id,
                    protection_ends_at,
                    ..
                } => {
                    kind = "rule";
                    let i = *rep_index
                        .get(rep_id.as_str())
                        .context("the decision chose a rep outside the roster")?;
                    set_assigned(
                        &mut row,
                        rep_id,
                        reps[i].team_id.clone(),
                        kind,
                        now,
                        *protection_ends_at,
                    );
                    reps[i].protected_leads += 1;
                    reps[i].pending_leads += 1;
                    reps[i].last_assigned_at = Some(now);
                    touched.push(rep_id.clone());
                    notices.push(assigned_notice(
                        &row,
                        rep_id,
                        (0, 0),
                        *protection_ends_at,
                        false,
                    ));
                    stats.1 += 1;
                }
                Outcome::Pool { reason } => {
                    kind = "pool";
                    row.needs_assignment = false;
                    let managers = match &managers {
                        Some(m) => m.clone(),
                        None => {
                            let m = repo::managers_of_org(&txn, org_id).await?;
                            managers = Some(m.clone());
                            m
                        }
                    };
                    notices.push(unassigned_notice(
                        &row,
                        managers,
                        serde_json::to_value(reason)?,
                    ));
                    stats.2 += 1;
                }
            }
            decisions.push(PendingDecision {
                lead_id: row.id.clone(),
                kind,
                version: Some(version),
                rep_id: decision.rep_id().map(str::to_owned),
                record: rule_record(&tags, reps.len(), &decision)?,
            });
        }
        // Later leads of the same customer in this batch go to the same owner.
        if let Some(owner) = &row.owner_id {
            active_owners.insert(owner.clone());
            owned.remember(&row);
        }
        let insert = if item.is_new {
            Some(insertable(row.clone()))
        } else {
            write_waiting(&txn, &row).await?;
            None
        };
        done[position] = Some(Done { row, decided: true });
        Ok(insert)
    };
    // Deciding is this task's CPU, inserting is the database's: the first half's leads are
    // inserted while the second half is decided, and the second half's while the records are
    // packed. (`biased`: the insert is polled first, so its statement is on its way before the
    // deciding takes this thread; a lead of an existing owner whose history must be read waits
    // for the insert, the transaction's connection is one.)
    let second = live.split_off(if live.len() >= SPLIT_FROM {
        live.len() / 2
    } else {
        live.len()
    });
    let mut first_rows = Vec::with_capacity(live.len());
    for (position, item) in live {
        first_rows.extend(decide(position, item).await?);
    }
    let rows_left = if second.is_empty() {
        first_rows
    } else {
        let (inserted, decided) = tokio::join!(
            biased;
            repo::insert_leads(&txn, first_rows),
            async {
                let mut rows = Vec::with_capacity(second.len());
                for (position, item) in second {
                    rows.extend(decide(position, item).await?);
                }
                Ok::<_, anyhow::Error>(rows)
            }
        );
        inserted?;
        decided?
    };
    phases.mark("decide");
    // The large records are compressed (~8 µs each at 1,000 reps) while the leads left (the
    // second half, or a small batch's all) are inserted.
    let (inserted, packed) = tokio::join!(
        biased;
        repo::insert_leads(&txn, rows_left),
        async {
            decisions.iter_mut().try_for_each(|d| {
                d.record = codec.store(std::mem::take(&mut d.record))?;
                Ok::<_, std::io::Error>(())
            })
        }
    );
    inserted?;
    packed?;
    phases.mark("insert_leads");
    repo::insert_decisions(
        &txn,
        decisions
            .iter_mut()
            .map(|d| repo::NewDecision {
                org_id,
                lead_id: &d.lead_id,
                kind: d.kind,
                rule_set_version: d.version,
                rep_id: d.rep_id.as_deref(),
                record: std::mem::take(&mut d.record),
                at: now,
            })
            .collect(),
    )
    .await?;
    phases.mark("insert_decisions");
    touched.sort();
    touched.dedup();
    repo::touch_rep_states(&txn, &touched, now).await?;
    phases.mark("rep_states");
    // Every recipient is a member of the org as this batch read it: a rep of its roster, an
    // owner it found active in the org, one of the org's managers.
    notify::notify_all_members(&txn, notices).await?;
    phases.mark("notices");
    txn.commit().await?;
    rosters.saved(org_id, &batch.roster);
    phases.mark("commit");
    for (by, n) in [
        ("existing_owner", stats.0),
        ("rule", stats.1),
        ("pool", stats.2),
    ] {
        metrics::counter!("fieldproof_leads_assigned_total", "by" => by).increment(n);
    }
    done.into_iter()
        .map(|d| d.context("every lead of the batch has a result"))
        .collect()
}

/// A rule decision's record, `{"inputs": {"lead": …, "reps_considered": n}, "decision": …}`,
/// serialised straight to JSON text: a batch writes a few hundred of these, and building a JSON
/// value tree first (then a second pass for the driver) cost more than deciding.
fn rule_record(
    tags: &fieldproof_domain::leads::LeadTags,
    reps_considered: usize,
    decision: &fieldproof_domain::leads::record::StoredDecision,
) -> anyhow::Result<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct Inputs<'a> {
        lead: &'a fieldproof_domain::leads::LeadTags,
        reps_considered: usize,
    }
    #[derive(serde::Serialize)]
    struct Record<'a> {
        inputs: Inputs<'a>,
        decision: &'a fieldproof_domain::leads::record::StoredDecision,
    }
    Ok(serde_json::to_vec(&Record {
        inputs: Inputs {
            lead: tags,
            reps_considered,
        },
        decision,
    })?)
}

fn set_assigned(
    row: &mut lead::Model,
    owner: &str,
    team_id: Option<String>,
    assigned_by: &str,
    now: time::OffsetDateTime,
    ends: time::OffsetDateTime,
) {
    row.status = repo::ASSIGNED.to_owned();
    row.owner_id = Some(owner.to_owned());
    if row.first_team_id.is_none() {
        row.first_team_id = team_id.clone();
    }
    row.team_id = team_id;
    row.assigned_by = Some(assigned_by.to_owned());
    row.assigned_at = Some(now);
    row.protection_ends_at = Some(ends);
    row.first_activity_at = None;
    row.needs_assignment = false;
    row.updated_at = now;
}

/// Write the decision of a row that was already stored (read again inside this turn, so the
/// compare-and-set of `repo::assign` holds).
async fn write_waiting<C: ConnectionTrait>(db: &C, row: &lead::Model) -> anyhow::Result<()> {
    if let (Some(owner), Some(assigned_by), Some(at), Some(ends)) = (
        row.owner_id.as_deref(),
        row.assigned_by.as_deref(),
        row.assigned_at,
        row.protection_ends_at,
    ) {
        repo::assign(
            db,
            repo::Assignment {
                lead_id: &row.id,
                owner_id: owner,
                team_id: row.team_id.as_deref(),
                assigned_by,
                at,
                protection_ends_at: ends,
                customer_id: row.customer_id.as_deref(),
            },
        )
        .await?;
    } else {
        repo::leave_in_pool(db, &row.id).await?;
    }
    lead::Entity::update_many()
        .col_expr(
            lead::Column::ResponseSpeed,
            sea_orm::sea_query::Expr::value(row.response_speed.clone()),
        )
        .filter(lead::Column::Id.eq(row.id.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

fn unassigned_notice(
    row: &lead::Model,
    managers: Vec<String>,
    reason: serde_json::Value,
) -> Notice {
    let reason = reason.as_str().unwrap_or("no_eligible_rep").to_owned();
    Notice {
        org_id: row.org_id.clone(),
        recipients: managers,
        team_id: None,
        kind: "lead_unassigned".into(),
        title_en: format!("No rep could take the lead \"{}\"", row.company),
        title_zh: format!("线索「{}」无人可分配，已留在公海", row.company),
        body_en: format!("Reason: {reason}. It stays in the pool; assign it or adjust the rules."),
        body_zh: format!("原因：{reason}。线索留在公海池，请手动分配或调整规则。"),
        link: Some(format!("/api/v1/leads/{}", row.id)),
        dedup_key: Some(format!("lead_unassigned:{}", row.id)),
    }
}

struct Job {
    org_id: String,
    prepared: Prepared,
    submitter: Submitter,
    reply: oneshot::Sender<anyhow::Result<Answer>>,
}

/// Who submitted a lead, as far as the dispatcher knows.
enum Submitter {
    /// A caller checked elsewhere (the capture form's source key, a checked request).
    Known,
    /// An access token's `(user id, session id)`, whose account and session the dispatcher
    /// checks with the rest of its batch before the lead is stored.
    Unchecked(String, String),
    /// That account, found active in that session: the lead's org is the account's.
    Checked(User),
}

/// What a submitted lead came to.
enum Answer {
    /// Stored (and assigned, unless the batch failed and the scheduler will); with the account
    /// that submitted it when the dispatcher checked one.
    Stored(Box<lead::Model>, Option<User>),
    /// The account is inactive or the session revoked: nothing was stored.
    SessionRejected,
}

/// This process's assignment queue (see the module comment). Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    queue: mpsc::Sender<Job>,
    idle: Arc<tokio::sync::Notify>,
}

impl Dispatcher {
    /// Start the batching task on the current runtime. `checks` is where the accounts of
    /// submitted sessions are read (SQLite: the read-only pool, beside the writer; PostgreSQL:
    /// connections of their own, never the ones `db`'s transactions hold, which also read the
    /// rep loads once a batch has its turn: see [`decide_batch`]); `gather_gap` how long a
    /// forming batch waits for the next lead ([`gather`]).
    pub fn start(
        db: DatabaseConnection,
        checks: DatabaseConnection,
        gather_gap: std::time::Duration,
    ) -> Dispatcher {
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        let idle = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(run(
            db,
            checks,
            gather_gap,
            RosterCache::default(),
            jobs,
            idle.clone(),
        ));
        Dispatcher { queue, idle }
    }

    /// Notified each time the dispatcher has written a batch and finds no lead waiting: the
    /// moment for SQLite's WAL to be copied into the database (`db::spawn_checkpointer`).
    pub fn went_idle(&self) -> Arc<tokio::sync::Notify> {
        self.idle.clone()
    }

    async fn send(&self, prepared: Prepared, submitter: Submitter) -> anyhow::Result<Answer> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job {
                org_id: prepared.row.org_id.clone(),
                prepared,
                submitter,
                reply,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the lead dispatcher has stopped"))?;
        answer
            .await
            .context("the lead dispatcher dropped the lead")?
    }

    /// Store and assign a new lead with the next batch; answers with the stored row.
    pub async fn submit(&self, prepared: Prepared) -> anyhow::Result<lead::Model> {
        match self.send(prepared, Submitter::Known).await? {
            Answer::Stored(row, _) => Ok(*row),
            Answer::SessionRejected => anyhow::bail!("a lead without a session was rejected"),
        }
    }

    /// Like [`Dispatcher::submit`] for a lead sent with an access token whose account and
    /// session were not checked yet (`prepared`'s org is replaced by the account's): the batch
    /// checks the accounts of all its requests in two statements, where a check per request was
    /// most of an intake burst's front (one database round trip and two thread hand-offs each).
    /// `None`: the account is inactive or the session revoked, and nothing was stored. The
    /// check runs when the batch forms, as the per-request check ran when the request came in.
    pub async fn submit_in_session(
        &self,
        prepared: Prepared,
        user_id: String,
        session_id: String,
    ) -> anyhow::Result<Option<(lead::Model, User)>> {
        match self
            .send(prepared, Submitter::Unchecked(user_id, session_id))
            .await?
        {
            Answer::Stored(row, Some(user)) => Ok(Some((*row, user))),
            Answer::Stored(..) => anyhow::bail!("a checked lead came back without its account"),
            Answer::SessionRejected => Ok(None),
        }
    }
}

/// Check the accounts of the batch's sessions in one go: a job whose account is active and
/// session unrevoked takes the account's org; the others are answered at once, unstored.
async fn check_sessions(checks: &DatabaseConnection, batch: Vec<Job>) -> Vec<Job> {
    let sessions: Vec<(&str, &str)> = batch
        .iter()
        .filter_map(|j| match &j.submitter {
            Submitter::Unchecked(u, s) => Some((u.as_str(), s.as_str())),
            _ => None,
        })
        .collect();
    if sessions.is_empty() {
        return batch;
    }
    let found = match db::users::active_in_sessions(checks, &sessions).await {
        Ok(found) => found,
        Err(e) => {
            let e = anyhow::Error::new(e).context("checking the sessions of a lead batch");
            let mut kept = Vec::new();
            for job in batch {
                if let Submitter::Unchecked(..) = job.submitter {
                    let _ = job.reply.send(Err(anyhow::anyhow!("{e:#}")));
                } else {
                    kept.push(job);
                }
            }
            return kept;
        }
    };
    let mut kept = Vec::with_capacity(batch.len());
    for mut job in batch {
        let Submitter::Unchecked(user_id, session_id) =
            std::mem::replace(&mut job.submitter, Submitter::Known)
        else {
            kept.push(job);
            continue;
        };
        match found.get(&(user_id, session_id)) {
            Some(user) => {
                job.org_id = user.org_id.clone();
                job.prepared.row.org_id = user.org_id.clone();
                job.submitter = Submitter::Checked(user.clone());
                kept.push(job);
            }
            None => {
                let _ = job.reply.send(Ok(Answer::SessionRejected));
            }
        }
    }
    kept
}

/// A batch: `first` and the leads that follow it with no pause longer than `gap`, for at most
/// ten gaps in all and [`MAX_BATCH`] leads. A burst of intakes reaches the dispatcher over a few
/// milliseconds (two cores parsing 200 requests); a batch that started at the first lead took
/// the few that were there, and the rest waited for all of its fixed costs (the account check,
/// the reads, the turn, the rep loads, the commit) before their own batch paid them again. A
/// lone lead waits one gap. `gap` zero: whatever is queued.
async fn gather(first: Job, jobs: &mut mpsc::Receiver<Job>, gap: std::time::Duration) -> Vec<Job> {
    let until = tokio::time::Instant::now() + gap * 10;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) if gap.is_zero() || tokio::time::Instant::now() >= until => break,
            Err(_) => match tokio::time::timeout(gap, jobs.recv()).await {
                Ok(Some(job)) => batch.push(job),
                _ => break,
            },
        }
    }
    batch
}

async fn run(
    db: DatabaseConnection,
    checks: DatabaseConnection,
    gather_gap: std::time::Duration,
    rosters: RosterCache,
    mut jobs: mpsc::Receiver<Job>,
    idle: Arc<tokio::sync::Notify>,
) {
    // On SQLite the loads are read in the batch's transaction: the writer's own pages, where
    // the read-only connections would be other threads with colder caches.
    let loads_from =
        (checks.get_database_backend() == sea_orm::DbBackend::Postgres).then_some(&checks);
    while let Some(first) = jobs.recv().await {
        let batch = gather(first, &mut jobs, gather_gap).await;
        let mut phases = Phases::start();
        let batch = check_sessions(&checks, batch).await;
        phases.mark("check");
        let mut by_org: BTreeMap<String, Vec<Job>> = BTreeMap::new();
        for job in batch {
            by_org.entry(job.org_id.clone()).or_default().push(job);
        }
        futures_util::future::join_all(
            by_org
                .into_iter()
                .map(|(org_id, jobs)| run_batch(&db, loads_from, &rosters, org_id, jobs)),
        )
        .await;
        if jobs.is_empty() {
            idle.notify_one();
        }
    }
}

async fn run_batch(
    db: &DatabaseConnection,
    loads_from: Option<&DatabaseConnection>,
    rosters: &RosterCache,
    org_id: String,
    jobs: Vec<Job>,
) {
    let mut prepared = Vec::with_capacity(jobs.len());
    let mut replies = Vec::with_capacity(jobs.len());
    for job in jobs {
        prepared.push(job.prepared);
        let user = match job.submitter {
            Submitter::Checked(user) => Some(user),
            Submitter::Known | Submitter::Unchecked(..) => None,
        };
        replies.push((job.reply, user));
    }
    let rows: Vec<lead::Model> = prepared.iter().map(|p| p.row.clone()).collect();
    let started = std::time::Instant::now();
    // A panic in one batch must not stop this process's intake: it is caught here and the
    // batch's leads take the same path as a failed transaction.
    use futures_util::FutureExt;
    let result =
        std::panic::AssertUnwindSafe(decide_batch(db, loads_from, rosters, &org_id, prepared))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the batch panicked")));
    metrics::histogram!("fieldproof_lead_batch_size").record(rows.len() as f64);
    metrics::histogram!("fieldproof_lead_batch_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(done) => {
            for (d, (reply, user)) in done.into_iter().zip(replies) {
                // The requester may have gone (client timeout): the lead is stored regardless.
                let _ = reply.send(Ok(Answer::Stored(Box::new(d.row), user)));
            }
        }
        Err(e) => {
            tracing::warn!(org = %org_id, leads = rows.len(), error = %crate::telemetry::cause_chain(&e), "batch assignment failed; storing the leads for the background job");
            for (row, (reply, user)) in rows.into_iter().zip(replies) {
                let stored = store_alone(db, row).await;
                let _ = reply.send(stored.map(|row| Answer::Stored(Box::new(row), user)));
            }
        }
    }
}

/// Keep a lead whose batch failed: stored in the pool with `needs_assignment`, the scheduler
/// assigns it. Idempotent (the batch's commit may have landed after all).
async fn store_alone(db: &DatabaseConnection, row: lead::Model) -> anyhow::Result<lead::Model> {
    let id = row.id.clone();
    lead::Entity::insert(insertable(row))
        .on_conflict(OnConflict::column(lead::Column::Id).do_nothing().to_owned())
        .exec_without_returning(db)
        .await
        .context("storing the lead")?;
    repo::find(db, &id)
        .await?
        .context("the lead was not stored")
}
