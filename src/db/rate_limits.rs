//! Request limits shared by every instance: hits are counted per (scope, subject) in one-minute
//! windows in the database, and a request is allowed while the sliding estimate — the previous
//! window's hits weighted by how much of it still overlaps the last minute, plus this window's —
//! stays within the limit. A burst that straddles a window boundary is therefore judged as one
//! burst, not as two halves. Rejected requests count too (a flood stays refused).

use super::entities::rate_limit_window::{self, Column, Entity};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
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
