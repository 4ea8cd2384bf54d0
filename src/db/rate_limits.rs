//! Request limits shared by every instance: hits are counted per (scope, subject) in one-minute
//! windows in the database, and a request is allowed while the sliding estimate — the previous
//! window's hits weighted by how much of it still overlaps the last minute, plus this window's —
//! stays within the limit. A burst that straddles a window boundary is therefore judged as one
//! burst, not as two halves. Rejected requests count too (a flood stays refused).

use super::entities::rate_limit_window::{self, Column, Entity};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use time::{Duration, OffsetDateTime};

const WINDOW_SECS: i64 = 60;

/// The start of the one-minute window `at` falls in.
fn window_of(at: OffsetDateTime) -> OffsetDateTime {
    let secs = at.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(secs - secs.rem_euclid(WINDOW_SECS)).unwrap_or(at)
}

/// Count one request of `subject` under `scope` at `now` and judge it against `per_minute`:
/// `Ok(())` or `Err(seconds to wait)`.
pub async fn hit<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    subject: &str,
    per_minute: u32,
    now: OffsetDateTime,
) -> Result<Result<(), u64>, DbErr> {
    use sea_orm::sea_query::ExprTrait;
    let start = window_of(now);
    let insert = Query::insert()
        .into_table(Entity)
        .columns([
            Column::Scope,
            Column::Subject,
            Column::WindowStart,
            Column::Hits,
        ])
        .values([scope.into(), subject.into(), start.into(), 1i64.into()])
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .on_conflict(
            OnConflict::columns([Column::Scope, Column::Subject, Column::WindowStart])
                .value(Column::Hits, Expr::col((Entity, Column::Hits)).add(1))
                .to_owned(),
        )
        .returning_col(Column::Hits)
        .to_owned();
    let current: i64 = match db.query_one(&insert).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => 1,
    };
    let previous = Entity::find()
        .filter(Column::Scope.eq(scope))
        .filter(Column::Subject.eq(subject))
        .filter(Column::WindowStart.eq(start - Duration::seconds(WINDOW_SECS)))
        .one(db)
        .await?
        .map_or(0, |w: rate_limit_window::Model| w.hits);
    Ok(judge(
        previous,
        current,
        (now - start).as_seconds_f64(),
        per_minute,
    ))
}

/// Count and judge one request like [`hit`]: in the database on PostgreSQL (shared by every
/// instance), in `local` on SQLite. An SQLite file has one `serve` process, and counting there
/// was a write transaction and an fsync on the one writer per request — a flood of refused
/// requests on a public form queued every intake and upload behind it.
pub async fn hit_shared_or_local<C: ConnectionTrait>(
    db: &C,
    local: &LocalWindows,
    scope: &str,
    subject: &str,
    per_minute: u32,
    now: OffsetDateTime,
) -> Result<Result<(), u64>, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => hit(db, scope, subject, per_minute, now).await,
        _ => Ok(local.hit(scope, subject, per_minute, now)),
    }
}

/// Subjects kept in memory before windows that no longer weigh are dropped.
const LOCAL_MAX_TRACKED: usize = 10_000;

/// The same one-minute windows as the `rate_limit_windows` table, in this process's memory.
#[derive(Default)]
pub struct LocalWindows(Mutex<HashMap<(String, String), LocalCounts>>);

#[derive(Clone, Copy)]
struct LocalCounts {
    /// Unix seconds of the current window's start.
    start: i64,
    current: i64,
    previous: i64,
}

impl LocalWindows {
    /// Count one request and judge it: `Ok(())` or `Err(seconds to wait)`.
    pub fn hit(
        &self,
        scope: &str,
        subject: &str,
        per_minute: u32,
        now: OffsetDateTime,
    ) -> Result<(), u64> {
        let window = window_of(now);
        let start = window.unix_timestamp();
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable.
        let mut windows = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= LOCAL_MAX_TRACKED {
            windows.retain(|_, c| c.start >= start - WINDOW_SECS);
        }
        let counts = windows
            .entry((scope.to_owned(), subject.to_owned()))
            .or_insert(LocalCounts {
                start,
                current: 0,
                previous: 0,
            });
        if counts.start != start {
            let previous = if counts.start == start - WINDOW_SECS {
                counts.current
            } else {
                0
            };
            *counts = LocalCounts {
                start,
                current: 0,
                previous,
            };
        }
        counts.current += 1;
        judge(
            counts.previous,
            counts.current,
            (now - window).as_seconds_f64(),
            per_minute,
        )
    }
}

/// The sliding estimate against the limit; `elapsed` is how far into the current window we are.
fn judge(previous: i64, current: i64, elapsed: f64, per_minute: u32) -> Result<(), u64> {
    let overlap = (1.0 - elapsed / WINDOW_SECS as f64).clamp(0.0, 1.0);
    let estimate = previous as f64 * overlap + current as f64;
    let limit = f64::from(per_minute.max(1));
    if estimate <= limit {
        return Ok(());
    }
    // When a retry passes: `τ` into the next window this window's hits weigh
    // `current · (1 − τ/60)` and the retry is the next window's first, so it passes once
    // `current · (1 − τ/60) + 1 ≤ limit`. Refused hits count, so a client that keeps
    // hammering is told to wait longer.
    let window = WINDOW_SECS as f64;
    let into_next = (window * (1.0 - (limit - 1.0) / current.max(1) as f64)).max(0.0);
    Err(((window - elapsed + into_next).ceil() as u64).max(1))
}

/// Forget windows that started before `before` (they no longer weigh on any estimate).
pub async fn prune<C: ConnectionTrait>(db: &C, before: OffsetDateTime) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::WindowStart.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows_start_on_the_minute() {
        assert_eq!(
            window_of(datetime!(2026-11-26 09:41:37.5 UTC)),
            datetime!(2026-11-26 09:41 UTC)
        );
    }

    #[test]
    fn local_windows_judge_like_the_table() {
        let local = LocalWindows::default();
        let t0 = datetime!(2026-11-26 09:41:59.5 UTC);
        for _ in 0..4 {
            assert_eq!(local.hit("s", "a", 4, t0), Ok(()));
        }
        // Just after the minute the four still weigh: refused, and the refusal counts.
        let after = datetime!(2026-11-26 09:42:00.5 UTC);
        assert!(local.hit("s", "a", 4, after).is_err());
        // Per subject and per scope.
        assert_eq!(local.hit("s", "b", 4, after), Ok(()));
        assert_eq!(local.hit("t", "a", 4, after), Ok(()));
        // Two minutes on nothing weighs any more.
        assert_eq!(
            local.hit("s", "a", 4, datetime!(2026-11-26 09:44:10 UTC)),
            Ok(())
        );
    }

    #[test]
    fn a_burst_across_a_window_boundary_is_judged_whole() {
        // Limit 4: four hits just before the minute, one just after → refused.
        assert!(judge(4, 1, 0.5, 4).is_err());
        // Within the limit in one window.
        assert_eq!(judge(0, 4, 10.0, 4), Ok(()));
        assert!(judge(0, 5, 10.0, 4).is_err());
        // A minute later the previous window no longer weighs.
        assert_eq!(judge(4, 1, 59.9, 4), Ok(()));
        // The wait: the rest of this window, then until its 9 hits weigh 3 (40 s): 85 s.
        assert_eq!(judge(0, 9, 15.0, 4), Err(85));
        // ...and a retry then passes: 9 · (1 − 40/60) + 1 = 4.
        assert_eq!(judge(9, 1, 40.0, 4), Ok(()));
        // Refused by the previous window's weight: the next window is soon enough.
        assert_eq!(judge(4, 1, 0.5, 4), Err(60));
    }
}
