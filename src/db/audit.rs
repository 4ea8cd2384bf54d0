//! The audit trail: append-only events per deal, hash-chained. Each event's hash covers the
//! previous hash and the event's exact stored text, so altering or deleting a row breaks the
//! chain at that row and every later one.

use super::entities::audit_event;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn chain_hash(
    prev: &str,
    seq: i64,
    kind: &str,
    actor: Option<&str>,
    created_at: &str,
    payload: &str,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        prev,
        &seq.to_string(),
        kind,
        actor.unwrap_or("-"),
        created_at,
        payload,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Append an event. Call inside the transaction that makes the change it records, after
/// locking the deal, so events of one deal are strictly ordered.
pub async fn append<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    deal_id: &str,
    kind: &str,
    actor_id: Option<&str>,
    payload: Value,
) -> Result<audit_event::Model, DbErr> {
    let last = audit_event::Entity::find()
        .filter(audit_event::Column::DealId.eq(deal_id))
        .order_by_desc(audit_event::Column::Seq)
        .one(db)
        .await?;
    let (seq, prev) = match last {
        Some(e) => (e.seq + 1, e.hash),
        None => (1, GENESIS.to_owned()),
    };
    let created_at = super::now()
        .format(&Rfc3339)
        .map_err(|e| DbErr::Custom(format!("formatting audit time: {e}")))?;
    let payload = payload.to_string();
    let hash = chain_hash(&prev, seq, kind, actor_id, &created_at, &payload);
    audit_event::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(org_id.to_owned()),
        deal_id: Set(deal_id.to_owned()),
        seq: Set(seq),
        kind: Set(kind.to_owned()),
        actor_id: Set(actor_id.map(str::to_owned)),
        payload: Set(payload),
        prev_hash: Set(prev),
        hash: Set(hash),
        created_at: Set(created_at),
    }
    .insert(db)
    .await
}

pub async fn list<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
) -> Result<Vec<audit_event::Model>, DbErr> {
    audit_event::Entity::find()
        .filter(audit_event::Column::DealId.eq(deal_id))
        .order_by_asc(audit_event::Column::Seq)
        .all(db)
        .await
}

/// Where a chain breaks, if it does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ChainBreak {
    pub seq: i64,
    pub event_id: String,
    /// `hash_mismatch` (the row was altered), `prev_mismatch` (a row before it was removed or
    /// altered) or `seq_gap`.
    pub reason: &'static str,
}

/// Recompute the chain from the stored rows; the first broken link, or None.
pub fn verify(events: &[audit_event::Model]) -> Option<ChainBreak> {
    let mut prev = GENESIS.to_owned();
    for (index, e) in events.iter().enumerate() {
        let broken = |reason| ChainBreak {
            seq: e.seq,
            event_id: e.id.clone(),
            reason,
        };
        if e.seq != index as i64 + 1 {
            return Some(broken("seq_gap"));
        }
        if e.prev_hash != prev {
            return Some(broken("prev_mismatch"));
        }
        let expected = chain_hash(
            &e.prev_hash,
            e.seq,
            &e.kind,
            e.actor_id.as_deref(),
            &e.created_at,
            &e.payload,
        );
        if expected != e.hash {
            return Some(broken("hash_mismatch"));
        }
        prev = e.hash.clone();
    }
    None
}
