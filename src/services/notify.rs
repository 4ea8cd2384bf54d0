//! `notify`: the one call a producer (stall alarms, approvals, …) makes to tell people something.
//!
//! It only writes rows — inbox entries and outbox messages for the team's chat robots — on the
//! connection it is given, so it joins the producer's transaction: the notice exists exactly when
//! the change that caused it commits. The network is touched later, by `jobs::outbox`.
//!
//! Idempotent by `dedup_key`: calling again with the same key adds nothing (unique indexes and
//! `ON CONFLICT DO NOTHING`, the same on SQLite and PostgreSQL), so a producer that retries or
//! runs on several instances at once cannot notify twice.

use crate::db::{self, notifications, outbox, team_webhooks};
use crate::services::chat_robots::RobotMessage;
use sea_orm::{ConnectionTrait, DbErr};

/// Something to tell some people, in both languages.
#[derive(Debug, Clone)]
pub struct Notice {
    pub org_id: String,
    /// Users whose inbox gets it; deactivated accounts are skipped, ids outside `org_id` are
    /// ignored (and logged).
    pub recipients: Vec<String>,
    /// When set, every active webhook of this team (of `org_id`) gets the message too.
    pub team_id: Option<String>,
    /// Stable machine name, e.g. `stall_alarm`.
    pub kind: String,
    pub title_en: String,
    pub title_zh: String,
    pub body_en: String,
    pub body_zh: String,
    /// Where the app should take the reader, e.g. `/api/v1/deals/{id}`.
    pub link: Option<String>,
    /// Names the event (e.g. `stall:{node_run_id}`): the same key never lands twice in one inbox
    /// nor twice in one webhook's queue. `None`: every call is a new event.
    pub dedup_key: Option<String>,
}

/// What one call added (zero and zero on a repeated `dedup_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notified {
    pub inbox_added: usize,
    pub webhooks_queued: usize,
}

/// Write the inbox rows and queue one outbox message per active webhook of the team.
pub async fn notify<C: ConnectionTrait>(db: &C, notice: Notice) -> Result<Notified, DbErr> {
    let mut recipients = notice.recipients.clone();
    recipients.sort();
    recipients.dedup();
    let members = active_members(db, &notice.org_id, &recipients, &notice.kind).await?;

    let rows: Vec<notifications::NewNotification> = members
        .iter()
        .map(|user_id| inbox_row(&notice, &notice.org_id, user_id))
        .collect();
    let mut result = Notified {
        inbox_added: usize::try_from(notifications::insert_many_unless_duplicate(db, &rows).await?)
            .unwrap_or(usize::MAX),
        ..Notified::default()
    };

    let Some(team_id) = &notice.team_id else {
        return Ok(result);
    };
    let message = RobotMessage {
        kind: notice.kind.clone(),
        title_en: notice.title_en.clone(),
        title_zh: notice.title_zh.clone(),
        body_en: notice.body_en.clone(),
        body_zh: notice.body_zh.clone(),
        link: notice.link.clone(),
    };
    let payload = serde_json::to_value(&message).map_err(|e| DbErr::Custom(e.to_string()))?;
    for hook in team_webhooks::active_for_team(db, &notice.org_id, team_id).await? {
        let dedup_key = match &notice.dedup_key {
            Some(key) => format!("{}:{}:{key}", outbox::TOPIC_TEAM_WEBHOOK, hook.id),
            None => db::new_id(),
        };
        let queued = outbox::enqueue(
            db,
            outbox::NewOutboxRow {
                org_id: notice.org_id.clone(),
                topic: outbox::TOPIC_TEAM_WEBHOOK,
                target_id: hook.id,
                payload: payload.clone(),
                dedup_key,
                // Chat messages are independent: one robot failing does not hold up the next.
                sequence_key: None,
            },
        )
        .await?;
        result.webhooks_queued += usize::from(queued);
    }
    Ok(result)
}

/// Several notices in one go (a batch of lead assignments): one membership query and one
/// multi-row insert for the inboxes, instead of two statements per notice. Notices that also
/// go to a team's webhooks take the one-by-one path.
pub async fn notify_all<C: ConnectionTrait>(db: &C, notices: Vec<Notice>) -> Result<(), DbErr> {
    notify_many(db, notices, true).await
}

/// [`notify_all`] for a producer whose inbox-only notices go only to users it has itself just
/// read as members of the notice's org (the lead dispatcher: the reps of the roster it assigned
/// from, the owners it found active, the org's managers): the same rows, without asking the
/// database again which recipients are members (a query per batch on the lead intake's path).
pub async fn notify_all_members<C: ConnectionTrait>(
    db: &C,
    notices: Vec<Notice>,
) -> Result<(), DbErr> {
    notify_many(db, notices, false).await
}

async fn notify_many<C: ConnectionTrait>(
    db: &C,
    notices: Vec<Notice>,
    check_members: bool,
) -> Result<(), DbErr> {
    let (webhooks, inbox_only): (Vec<Notice>, Vec<Notice>) =
        notices.into_iter().partition(|n| n.team_id.is_some());
    for notice in webhooks {
        notify(db, notice).await?;
    }
    let mut by_org: std::collections::BTreeMap<&str, Vec<&Notice>> = Default::default();
    for n in &inbox_only {
        by_org.entry(n.org_id.as_str()).or_default().push(n);
    }
    for (org_id, notices) in by_org {
        let members = if check_members {
            Some(members_among(db, org_id, &notices).await?)
        } else {
            None
        };
        let mut rows = Vec::new();
        for n in &notices {
            let mut recipients: Vec<&String> = n
                .recipients
                .iter()
                .filter(|r| members.as_ref().is_none_or(|m| m.contains(*r)))
                .collect();
            recipients.sort();
            recipients.dedup();
            rows.extend(
                recipients
                    .into_iter()
                    .map(|user_id| inbox_row(n, org_id, user_id)),
            );
        }
        notifications::insert_many_unless_duplicate(db, &rows).await?;
    }
    Ok(())
}

/// The recipients who are active users of `org_id`. A deactivated account (someone who left)
/// gets no inbox rows nobody will read; an id outside the org is a producer bug, never
/// delivered, and logged.
async fn active_members<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    recipients: &[String],
    kind: &str,
) -> Result<Vec<String>, DbErr> {
    let found = crate::db::users::of_org_with_state(db, org_id, recipients).await?;
    if found.len() != recipients.len() {
        tracing::warn!(
            kind,
            skipped = recipients.len() - found.len(),
            "notify: recipients outside the org were skipped"
        );
    }
    Ok(found
        .into_iter()
        .filter_map(|(id, active)| active.then_some(id))
        .collect())
}

/// Which of the notices' recipients are active members of `org_id` ([`active_members`]).
async fn members_among<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    notices: &[&Notice],
) -> Result<std::collections::HashSet<String>, DbErr> {
    let mut everyone: Vec<String> = notices
        .iter()
        .flat_map(|n| n.recipients.iter().cloned())
        .collect();
    everyone.sort();
    everyone.dedup();
    Ok(active_members(db, org_id, &everyone, "batch")
        .await?
        .into_iter()
        .collect())
}

/// The inbox entry of `notice` for one recipient.
fn inbox_row<'a>(
    notice: &'a Notice,
    org_id: &'a str,
    user_id: &'a str,
) -> notifications::NewNotification<'a> {
    notifications::NewNotification {
        org_id,
        user_id,
        kind: &notice.kind,
        title_en: &notice.title_en,
        title_zh: &notice.title_zh,
        body_en: &notice.body_en,
        body_zh: &notice.body_zh,
        link: notice.link.as_deref(),
        dedup_key: notice.dedup_key.as_deref(),
    }
}
