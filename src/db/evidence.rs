//! Evidence rows, their perceptual-hash bands, and the queries the checks need as history.
//!
//! Near-duplicate search at scale (multi-index hashing): the 64-bit perceptual hash is cut into
//! four 16-bit quarters, each indexed by (org, band, value) with the whole hash beside it. Two
//! hashes within Hamming distance `k` have a quarter within `k / 4` bits of the other's, so a
//! lookup of every value within that radius, quarter by quarter, finds every such hash through
//! the index; the exact distance is computed from the index entries, and only the near ones'
//! evidence rows are read (docs/check-codes.md, "How duplicates are found").

use super::entities::{evidence, evidence_band, upload_lease};
use fieldproof_domain::evidence::PerceptualHash;
use fieldproof_domain::evidence::phash::{MAX_NEAR_DISTANCE, band_neighbours, band_radius};
use sea_orm::sea_query::{Expr, SelectStatement, UnionType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set, Statement, TryIntoModel,
};
use time::OffsetDateTime;

pub const REVIEW_NONE: &str = "none";
pub const REVIEW_PENDING: &str = "pending";
pub const REVIEW_APPROVED: &str = "approved";
pub const REVIEW_REJECTED: &str = "rejected";

/// The nearest hashes whose evidence rows are read.
const NEAR_KEEP: usize = 50;

pub async fn find_by_capture<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    capture_id: &str,
) -> Result<Option<evidence::Model>, DbErr> {
    evidence::Entity::find()
        .filter(evidence::Column::OrgId.eq(org_id))
        .filter(evidence::Column::CaptureId.eq(capture_id))
        .one(db)
        .await
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<evidence::Model>, DbErr> {
    evidence::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Insert the row and its bands (inside the caller's transaction): two statements, nothing
/// read back (every column of `row` is set, so the stored row is `row` itself).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: evidence::ActiveModel,
    phash: Option<u64>,
) -> Result<evidence::Model, DbErr> {
    let model = row.clone().try_into_model()?;
    evidence::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    if let Some(phash) = phash {
        evidence_band::Entity::insert_many(band_rows(&model.id, &model.org_id, phash))
            .exec_without_returning(db)
            .await?;
    }
    Ok(model)
}

/// The band index rows of a piece of evidence with perceptual hash `phash`: one per quarter
/// (`PerceptualHash::bands`), each with the whole hash.
pub fn band_rows(
    evidence_id: &str,
    org_id: &str,
    phash: u64,
) -> impl Iterator<Item = evidence_band::ActiveModel> + use<> {
    let (evidence_id, org_id) = (evidence_id.to_owned(), org_id.to_owned());
    PerceptualHash(phash)
        .bands()
        .into_iter()
        .enumerate()
        .map(move |(band, value)| evidence_band::ActiveModel {
            evidence_id: Set(evidence_id.clone()),
            org_id: Set(org_id.clone()),
            band: Set(band as i32),
            value: Set(i32::from(value)),
            // The hash's bits as a signed 64-bit integer (the column's type).
            phash: Set(phash as i64),
        })
}

/// Store the response an upload was answered with (replayed to a retry of the same capture).
pub async fn set_response<C: ConnectionTrait>(
    db: &C,
    id: &str,
    response: serde_json::Value,
) -> Result<(), DbErr> {
    evidence::Entity::update_many()
        .col_expr(evidence::Column::Response, Expr::value(response))
        .filter(evidence::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// What the duplicate checks read of an earlier piece of evidence: id, SHA-256 (hex) and
/// perceptual hash (hex). Only these columns: a whole row carries its facts, checks and stored
/// response (kilobytes of JSON to decode).
pub type PriorRow = (String, String, Option<String>);

/// What the travel check reads of an earlier capture: id, time, latitude, longitude.
pub type CaptureRow = (String, Option<OffsetDateTime>, Option<f64>, Option<f64>);

/// Other evidence of the org with exactly these bytes.
pub async fn same_bytes<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    sha256: &str,
    capture_id: &str,
) -> Result<Vec<PriorRow>, DbErr> {
    same_bytes_query(org_id, sha256, capture_id)
        .into_tuple()
        .all(db)
        .await
}

/// The statement of [`same_bytes`].
pub fn same_bytes_query(
    org_id: &str,
    sha256: &str,
    capture_id: &str,
) -> sea_orm::Select<evidence::Entity> {
    evidence::Entity::find()
        .select_only()
        .columns([
            evidence::Column::Id,
            evidence::Column::Sha256,
            evidence::Column::Phash,
        ])
        .filter(evidence::Column::OrgId.eq(org_id))
        .filter(evidence::Column::Sha256.eq(sha256))
        .filter(evidence::Column::CaptureId.ne(capture_id))
        .limit(20)
}

/// The index search of [`near_candidates`]: the band entries (evidence id, whole hash) of the
/// org whose quarter is within the radius of the same quarter of `phash`. One arm per band,
/// joined by `UNION ALL`, so that each is a read of the index alone (PostgreSQL turned the four
/// as one `OR` into a bitmap scan reading every entry's table row: 26 ms at a million photos).
/// Not capped: every entry is read, or a hash near only in a later quarter could go unseen.
/// Uniform hashes give ~548 × N ÷ 65,536 entries for the default distance (~8,400 at a million
/// photos); hashes that cluster in a quarter give more, and the search takes longer, not less
/// care.
pub fn near_band_query(org_id: &str, phash: u64, max_distance: u32) -> SelectStatement {
    // Templates are refused above MAX_NEAR_DISTANCE; one stored before that rule is searched
    // as if it said that much.
    let radius = band_radius(max_distance.min(MAX_NEAR_DISTANCE));
    let [first, rest @ ..] = PerceptualHash(phash).bands();
    let arm = |band: usize, value: u16| {
        evidence_band::Entity::find()
            .select_only()
            .columns([
                evidence_band::Column::EvidenceId,
                evidence_band::Column::Phash,
            ])
            .filter(evidence_band::Column::OrgId.eq(org_id))
            .filter(evidence_band::Column::Band.eq(band as i32))
            .filter(
                evidence_band::Column::Value
                    .is_in(band_neighbours(value, radius).into_iter().map(i32::from)),
            )
            .into_query()
    };
    let mut union = arm(0, first);
    for (i, value) in rest.into_iter().enumerate() {
        union.union(UnionType::All, arm(i + 1, value));
    }
    union
}

/// The band entries [`near_band_query`] reads: (evidence id, whole hash).
pub async fn near_band_entries<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    phash: u64,
    max_distance: u32,
) -> Result<Vec<(String, i64)>, DbErr> {
    let statement = db
        .get_database_backend()
        .build(&near_band_query(org_id, phash, max_distance));
    db.query_all_raw(statement)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("", "evidence_id")?, row.try_get("", "phash")?)))
        .collect()
}

/// Evidence of the org whose perceptual hash is within `max_distance` bits of `phash`, nearest
/// first (at most 50): the distances come from the band index alone (multi-index hashing, see
/// `PerceptualHash::bands`), and only the evidence rows of the hashes that are near are read.
pub async fn near_candidates<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    phash: u64,
    capture_id: &str,
    max_distance: u32,
) -> Result<Vec<PriorRow>, DbErr> {
    let entries = near_band_entries(db, org_id, phash, max_distance).await?;
    let mut near: Vec<(u32, String)> = entries
        .into_iter()
        .filter_map(|(id, other)| {
            let distance = PerceptualHash(other as u64).distance(PerceptualHash(phash));
            (distance <= max_distance).then_some((distance, id))
        })
        .collect();
    // An id found through two bands has the same distance both times: neighbours once sorted.
    near.sort_unstable();
    near.dedup();
    near.truncate(NEAR_KEEP);
    if near.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<PriorRow> = evidence::Entity::find()
        .select_only()
        .columns([
            evidence::Column::Id,
            evidence::Column::Sha256,
            evidence::Column::Phash,
        ])
        .filter(evidence::Column::Id.is_in(near.iter().map(|(_, id)| id.clone())))
        .filter(evidence::Column::CaptureId.ne(capture_id))
        .into_tuple()
        .all(db)
        .await?;
    let rank = |id: &str| near.iter().position(|(_, n)| n == id);
    rows.sort_by_key(|(id, _, _)| rank(id));
    Ok(rows)
}

/// The uploader's captures within `window` of `at` that have a time and a place.
pub async fn captures_around<C: ConnectionTrait>(
    db: &C,
    uploader_id: &str,
    at: OffsetDateTime,
    window: time::Duration,
    capture_id: &str,
) -> Result<Vec<CaptureRow>, DbErr> {
    captures_around_query(uploader_id, at, window, capture_id)
        .into_tuple()
        .all(db)
        .await
}

/// The statement of [`captures_around`].
pub fn captures_around_query(
    uploader_id: &str,
    at: OffsetDateTime,
    window: time::Duration,
    capture_id: &str,
) -> sea_orm::Select<evidence::Entity> {
    evidence::Entity::find()
        .select_only()
        .columns([
            evidence::Column::Id,
            evidence::Column::CapturedAt,
            evidence::Column::CaptureLat,
            evidence::Column::CaptureLon,
        ])
        .filter(evidence::Column::UploaderId.eq(uploader_id))
        .filter(evidence::Column::CapturedAt.gte((at - window).to_offset(time::UtcOffset::UTC)))
        .filter(evidence::Column::CapturedAt.lte((at + window).to_offset(time::UtcOffset::UTC)))
        .filter(evidence::Column::CaptureLat.is_not_null())
        .filter(evidence::Column::CaptureId.ne(capture_id))
        .limit(200)
}

/// Filters of the review queue.
#[derive(Debug, Default)]
pub struct QueueFilter {
    pub org_id: String,
    /// None: the whole org (admins).
    pub team_id: Option<String>,
    pub rep_id: Option<String>,
    pub check: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// Pending evidence, newest first; `before` is the last id of the previous page.
pub async fn review_queue<C: ConnectionTrait>(
    db: &C,
    filter: &QueueFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<evidence::Model>, DbErr> {
    let mut query = evidence::Entity::find()
        .filter(evidence::Column::OrgId.eq(filter.org_id.as_str()))
        .filter(evidence::Column::ReviewState.eq(REVIEW_PENDING));
    if let Some(team) = &filter.team_id {
        query = query.filter(evidence::Column::TeamId.eq(team.as_str()));
    }
    if let Some(rep) = &filter.rep_id {
        query = query.filter(evidence::Column::UploaderId.eq(rep.as_str()));
    }
    if let Some(code) = &filter.check {
        query = query.filter(evidence::Column::Findings.contains(format!(",{code},")));
    }
    if let Some(from) = filter.from {
        query = query.filter(evidence::Column::ReceivedAt.gte(super::utc(from)));
    }
    if let Some(to) = filter.to {
        query = query.filter(evidence::Column::ReceivedAt.lt(super::utc(to)));
    }
    if let Some(before) = before {
        query = query.filter(evidence::Column::Id.lt(before));
    }
    query
        .order_by_desc(evidence::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Every piece of evidence on a deal, oldest first (the deal page lists them under their node).
pub async fn of_deal<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
) -> Result<Vec<evidence::Model>, DbErr> {
    evidence::Entity::find()
        .filter(evidence::Column::DealId.eq(deal_id))
        .order_by_asc(evidence::Column::Id)
        .limit(500)
        .all(db)
        .await
}

/// Record that an upload of these bytes is under way (`services::evidence::sweep::lease`, which
/// keeps it apart from the orphan sweep in this process). On PostgreSQL the insert also takes
/// the bytes' advisory lock in shared mode in the same statement (one round trip) and holds it
/// until it commits, so a sweep of another instance holding it exclusively
/// ([`lock_bytes_exclusive`]) finishes its look and deletes first, or sees this lease.
pub async fn lease<C: ConnectionTrait>(db: &C, sha256: &str) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO upload_leases (id, sha256, created_at) SELECT $1, $2, $3 \
             FROM (SELECT pg_advisory_xact_lock_shared(hashtextextended($2, 0))) AS locked",
            [super::new_id().into(), sha256.into(), super::now().into()],
        ))
        .await?;
        return Ok(());
    }
    upload_lease::ActiveModel {
        id: Set(super::new_id()),
        sha256: Set(sha256.to_owned()),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// PostgreSQL, inside the sweep's transaction before it looks at these bytes: wait for leases of
/// them being written and keep new ones out until the transaction ends (see [`lease`]). A no-op
/// elsewhere.
pub async fn lock_bytes_exclusive<C: ConnectionTrait>(txn: &C, sha256: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [sha256.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Whether a blob of these bytes is claimed: referenced by evidence, or leased since `since`.
pub async fn sha_in_use<C: ConnectionTrait>(
    db: &C,
    sha256: &str,
    since: OffsetDateTime,
) -> Result<bool, DbErr> {
    let referenced = evidence::Entity::find()
        .filter(evidence::Column::Sha256.eq(sha256))
        .one(db)
        .await?
        .is_some();
    if referenced {
        return Ok(true);
    }
    Ok(upload_lease::Entity::find()
        .filter(upload_lease::Column::Sha256.eq(sha256))
        .filter(upload_lease::Column::CreatedAt.gte(since))
        .one(db)
        .await?
        .is_some())
}

/// Leases taken before `before`, oldest first: `(lease id, SHA-256)`.
pub async fn leases_before<C: ConnectionTrait>(
    db: &C,
    before: OffsetDateTime,
    limit: u64,
) -> Result<Vec<(String, String)>, DbErr> {
    upload_lease::Entity::find()
        .select_only()
        .column(upload_lease::Column::Id)
        .column(upload_lease::Column::Sha256)
        .filter(upload_lease::Column::CreatedAt.lt(before))
        .order_by_asc(upload_lease::Column::CreatedAt)
        .order_by_asc(upload_lease::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

/// Forget these leases.
pub async fn forget_leases<C: ConnectionTrait>(db: &C, ids: &[String]) -> Result<u64, DbErr> {
    let mut forgotten = 0;
    for list in super::in_lists(ids) {
        forgotten += upload_lease::Entity::delete_many()
            .filter(upload_lease::Column::Id.is_in(list))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(forgotten)
}

/// Set the review decision, only if still pending (two supervisors deciding at once: one wins).
pub async fn decide<C: ConnectionTrait>(
    db: &C,
    id: &str,
    state: &str,
    by: &str,
    reason: &str,
    at: OffsetDateTime,
) -> Result<bool, DbErr> {
    let result = evidence::Entity::update_many()
        .col_expr(evidence::Column::ReviewState, Expr::value(state))
        .col_expr(evidence::Column::ReviewedBy, Expr::value(by))
        .col_expr(evidence::Column::ReviewReason, Expr::value(reason))
        .col_expr(evidence::Column::ReviewedAt, Expr::value(at))
        .filter(evidence::Column::Id.eq(id))
        .filter(evidence::Column::ReviewState.eq(REVIEW_PENDING))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
