//! Persistence: the connection, entities (rows) and repositories (queries + row → domain).
//! Handlers never build queries; they call the repository functions here.

pub mod audit;
pub mod console_sessions;
pub mod customers;
pub mod deals;
pub mod devices;
pub mod entities;
pub mod evidence;
pub mod leads;
pub mod notifications;
pub mod orgs;
pub mod outbox;
pub mod quotes;
pub mod rate_limits;
pub mod sessions;
pub mod team_webhooks;
pub mod teams;
pub mod templates;
pub mod uploads;
pub mod users;

use crate::config::Settings;
use anyhow::Context;
use fieldproof_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, SqlErr};
use secrecy::ExposeSecret;
use std::time::Duration;
use time::OffsetDateTime;

/// The options both pools share: timeouts, no statement logging, and a ping of a pooled
/// connection only after it sat idle for 30 s (dropped by the server or a firewall, the usual
/// failure), not on every checkout: the default ping doubled the round trips of every short query
/// (a lead intake burst on PostgreSQL spent most of its time so).
fn pool_options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options.test_before_acquire_if_idle_for(Duration::from_secs(30));
    options
        .max_connections(max_connections)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    options
}

/// 16 MiB of SQLite page cache instead of the default 2 MiB: the lead turn reads rep loads and
/// dedup keys from indexes of tables with a million rows; with the default cache every batch
/// re-read those pages from the OS (a third of the SQLite thread in a profile).
const SQLITE_CACHE_KIB: &str = "-16384";

/// Rows a SQLite connection's thread may hand over before it waits for the task reading them
/// (sqlx's default is 50). Past the buffer, the thread and the task take turns row by row, two
/// context switches per row: a lead batch reads ~2,000 rows of rep loads, an upload up to 2,000
/// near-duplicate candidates. With room for them (the rows are collected whole anyway), at 1M
/// leads: server CPU 0.32–0.35 → 0.27–0.29 ms per lead, intake p50 48 → 40 ms.
const SQLITE_ROW_BUFFER: usize = 4096;

/// WAL pages after which the writer checkpoints inside its own commit. In `serve` the WAL is
/// copied into the database by [`spawn_checkpointer`] on a connection of its own, so this is a
/// safety net (a stalled checkpointer, the CLI): at SQLite's default of 1,000 pages a burst of
/// lead intake checkpointed in nearly every batch, and the copy and its fsync sat in the commit
/// every waiting request had to wait for (commit 83 → 44 µs per lead with the copy moved off).
const SQLITE_WRITER_CHECKPOINT_PAGES: &str = "10000";

/// A WAL file grown past this by a burst is truncated back to it when the WAL restarts.
const SQLITE_WAL_KEEP_BYTES: &str = "67108864";

/// How often the checkpointer looks at the writer; a look is a couple of atomic loads.
const SQLITE_CHECKPOINT_POLL: Duration = Duration::from_millis(10);

/// Under writes that never pause, the WAL is still copied at least this often.
const SQLITE_CHECKPOINT_AT_LEAST_EVERY: Duration = Duration::from_millis(500);

/// SQLite only: a task that copies committed WAL frames into the database file (a `PASSIVE`
/// checkpoint: it never waits for, nor blocks, the writer or the readers) on its own
/// connection, so the copy and the database file's fsync happen beside the writer instead of in
/// one of its commits. It copies once the writer has written and then sat idle for two looks
/// (~20 ms: a burst of intake is over), or after [`SQLITE_CHECKPOINT_AT_LEAST_EVERY`] whatever
/// the writer does: a copy and its fsync running beside a burst's batches compete with them for
/// the cores (a copy every 100 ms instead, one run each of 20 bursts × 200 intakes at 1M leads:
/// p50 49 → 42 ms, p99 80 → 74 ms, the slowest bursts' p50 58–72 → ≤ 58 ms). It also copies
/// at once when `writer_idle` is notified — the lead dispatcher has written a batch and nothing
/// waits — so a burst's frames are in the file before the next burst's first write, and that
/// write starts the WAL over. Without it back-to-back bursts never left the writer idle for
/// two looks, the WAL never started over, and ~2,500 leads in the writer's own safety net
/// ([`SQLITE_WRITER_CHECKPOINT_PAGES`]) copied half a second of frames inside one batch's commit
/// (that burst's p99 60–100 ms against 35–55 ms for the others). Stops when the handle is
/// aborted. `None` for PostgreSQL.
pub fn spawn_checkpointer(
    settings: &Settings,
    writer: &DatabaseConnection,
    writer_idle: std::sync::Arc<tokio::sync::Notify>,
) -> Option<tokio::task::JoinHandle<()>> {
    if writer.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return None;
    }
    let url = settings.database_url().expose_secret().to_owned();
    let writer = writer.get_sqlite_connection_pool().clone();
    Some(tokio::spawn(async move {
        let mut options = pool_options(&url, 1);
        options.map_sqlx_sqlite_opts(|o| o.synchronous(SqliteSynchronous::Full));
        let conn = match Database::connect(options).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "no WAL checkpointer: the writer checkpoints in its commits");
                return;
            }
        };
        let mut tick = tokio::time::interval(SQLITE_CHECKPOINT_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut wrote, mut idle_looks) = (false, 0u32);
        let mut last = tokio::time::Instant::now();
        let mut failing = false;
        loop {
            // The lead dispatcher says when it has written a batch and nothing waits: copy
            // then, before the next burst's first write, so the WAL can start over there.
            let told = tokio::select! {
                _ = tick.tick() => false,
                _ = writer_idle.notified() => true,
            };
            // The writer pool has one connection: checked out means a statement or a
            // transaction is under way.
            let writing = writer.size() as usize > writer.num_idle();
            wrote |= writing;
            idle_looks = if writing { 0 } else { idle_looks + 1 };
            if !(told || (wrote && idle_looks >= 2))
                && last.elapsed() < SQLITE_CHECKPOINT_AT_LEAST_EVERY
            {
                continue;
            }
            (wrote, last) = (false, tokio::time::Instant::now());
            match conn
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                Ok(_) => failing = false,
                // Logged once per run of failures, not at every look.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                }
                Err(_) => {}
            }
        }
    }))
}

/// Lengths an `IN (…)` list of bound values is padded to (its last value repeated; an `IN` list
/// means the same with a value twice). Both databases keep a prepared statement per distinct
/// SQL text and connection, and a list of each new length is a new text: on PostgreSQL a parse,
/// an analysis and an extra round trip, on SQLite a fresh compile, every time a batch of leads
/// looks up its ~200 keys. Padded, a handful of texts serve every batch.
const IN_LIST_LENGTHS: [usize; 7] = [8, 16, 32, 64, 128, 256, 512];

/// `items` as `IN` lists of the lengths above (at most 512 values each): each value once, in
/// sorted order (a batch's keys repeat — one integration account's 200 leads, one owner of many
/// customers — and an `IN` list needs each only once). Empty input gives no list.
pub fn in_lists<T: Clone + Ord>(items: &[T]) -> impl Iterator<Item = Vec<T>> {
    let longest = IN_LIST_LENGTHS[IN_LIST_LENGTHS.len() - 1];
    let mut unique = items.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let lists: Vec<Vec<T>> = unique
        .chunks(longest)
        .map(|chunk| {
            let length = IN_LIST_LENGTHS
                .iter()
                .copied()
                .find(|&l| l >= chunk.len())
                .unwrap_or(longest);
            let mut list = chunk.to_vec();
            if let Some(last) = chunk.last() {
                list.resize(length, last.clone());
            }
            list
        })
        .collect();
    lists.into_iter()
}

/// Row counts of a multi-row `INSERT`, largest first: any number of rows is written as a few
/// statements of these shapes, so the statement texts repeat (see [`IN_LIST_LENGTHS`]) instead
/// of being new for every batch size.
const INSERT_ROWS: [usize; 4] = [64, 16, 4, 1];

/// `items` in consecutive chunks whose lengths are all [`INSERT_ROWS`] shapes.
pub fn insert_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        let n = INSERT_ROWS.iter().copied().find(|&n| n <= rest.len())?;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// Insert `rows` of one entity, with `on_conflict` if given; the rows affected.
///
/// On PostgreSQL the whole set is one statement, `INSERT … SELECT unnest($1), unnest($2), …`
/// with one array parameter per column, whatever the row count: one parse and plan per
/// connection, one round trip, a few dozen parameters. A multi-row `VALUES` binds a parameter
/// per cell (2,240 for 64 leads), and the chunks a batch of leads needed (64-, 16-, 4- and
/// 1-row statements, [`insert_chunks`]) cost more outside PostgreSQL's execution than in it.
/// Columns that can hold NULL travel as array literals (`{"a",NULL}`), the others as binary
/// arrays. SQLite (no arrays) inserts the chunks.
///
/// Every column of every row must be set (as `insert_many` with all values given).
pub async fn insert_rows<A, C>(
    db: &C,
    rows: Vec<A>,
    on_conflict: Option<sea_orm::sea_query::OnConflict>,
) -> Result<u64, DbErr>
where
    A: sea_orm::ActiveModelTrait + Send,
    C: ConnectionTrait,
{
    if rows.is_empty() {
        return Ok(0);
    }
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let statement = unnest_insert::<A>(&rows, on_conflict)?;
        return Ok(db.execute(&statement).await?.rows_affected());
    }
    let mut affected = 0;
    for chunk in insert_chunks(&rows) {
        let mut insert = <A::Entity as sea_orm::EntityTrait>::insert_many(chunk.to_vec());
        if let Some(on_conflict) = &on_conflict {
            insert = insert.on_conflict(on_conflict.clone());
        }
        affected += insert.exec_without_returning(db).await?;
    }
    Ok(affected)
}

/// The PostgreSQL statement of [`insert_rows`].
fn unnest_insert<A: sea_orm::ActiveModelTrait>(
    rows: &[A],
    on_conflict: Option<sea_orm::sea_query::OnConflict>,
) -> Result<sea_orm::sea_query::InsertStatement, DbErr> {
    use sea_orm::sea_query::{ArrayType, Expr, Query};
    use sea_orm::{ColumnTrait, ColumnType, EntityName, EntityTrait, IdenStatic, Iterable, Value};
    let mut insert = Query::insert();
    insert.into_table(A::Entity::default().table_ref());
    let mut select = Query::select();
    let mut columns = Vec::new();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        let def = column.def();
        let values = rows
            .iter()
            .map(|row| {
                row.get(column).into_value().ok_or_else(|| {
                    DbErr::Custom(format!("insert_rows: {} not set", column.as_str()))
                })
            })
            .collect::<Result<Vec<Value>, DbErr>>()?;
        // The column's PostgreSQL type, and the binary array the driver can bind for it.
        let (sql_type, binary) = match def.get_column_type() {
            ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => {
                ("text", Some(ArrayType::String))
            }
            ColumnType::BigInteger => ("int8", Some(ArrayType::BigInt)),
            ColumnType::Integer => ("int4", Some(ArrayType::Int)),
            ColumnType::Boolean => ("bool", Some(ArrayType::Bool)),
            ColumnType::TimestampWithTimeZone => {
                ("timestamptz", Some(ArrayType::TimeDateTimeWithTimeZone))
            }
            ColumnType::Blob | ColumnType::VarBinary(_) | ColumnType::Binary(_) => {
                ("bytea", Some(ArrayType::Bytes))
            }
            ColumnType::Json => ("json", None),
            ColumnType::JsonBinary => ("jsonb", None),
            other => {
                return Err(DbErr::Custom(format!(
                    "insert_rows: column {} of type {other:?} has no array form here",
                    column.as_str()
                )));
            }
        };
        let expr = match binary {
            Some(array_type) if !def.is_null() && values.iter().all(Value::is_some) => {
                Expr::cust_with_values(
                    format!("unnest($1::{sql_type}[])"),
                    [Value::Array(array_type, Some(Box::new(values)))],
                )
            }
            _ => Expr::cust_with_values(
                format!("unnest($1::text::{sql_type}[])"),
                [Value::String(Some(array_literal(&values)?))],
            ),
        };
        columns.push(column);
        select.expr(expr);
    }
    insert.columns(columns);
    insert
        .select_from(select)
        .map_err(|e| DbErr::Custom(format!("insert_rows: {e}")))?;
    if let Some(on_conflict) = on_conflict {
        insert.on_conflict(on_conflict);
    }
    Ok(insert)
}

/// A PostgreSQL array literal of `values`: each element quoted (`\` and `"` escaped), NULL
/// bare; times as RFC 3339 to the microsecond (what the binary encoding keeps).
fn array_literal(values: &[sea_orm::Value]) -> Result<String, DbErr> {
    use sea_orm::Value;
    let mut text = String::from("{");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let element = match value {
            _ if !value.is_some() => {
                text.push_str("NULL");
                continue;
            }
            Value::String(Some(s)) => s.clone(),
            Value::BigInt(Some(n)) => n.to_string(),
            Value::Int(Some(n)) => n.to_string(),
            Value::Bool(Some(b)) => if *b { "t" } else { "f" }.to_owned(),
            Value::Json(Some(j)) => j.to_string(),
            Value::TimeDateTimeWithTimeZone(Some(t)) => {
                let micro = t
                    .replace_nanosecond(t.nanosecond() / 1000 * 1000)
                    .unwrap_or(*t);
                micro
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| DbErr::Custom(format!("insert_rows: time {e}")))?
            }
            other => {
                return Err(DbErr::Custom(format!(
                    "insert_rows: no array literal for {other:?}"
                )));
            }
        };
        text.push('"');
        for c in element.chars() {
            if c == '"' || c == '\\' {
                text.push('\\');
            }
            text.push(c);
        }
        text.push('"');
    }
    text.push('}');
    Ok(text)
}

/// Open the pool described by the settings (SQLite file by default, PostgreSQL by URL).
pub async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url();
    let sqlite = url.expose_secret().starts_with("sqlite:");
    if sqlite {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data folder {}", settings.data_dir.display()))?;
    }
    // SQLite has one writer; a deferred transaction that reads and then writes can fail with
    // SQLITE_BUSY when another connection wrote in between. One connection serialises the
    // embedded default cleanly (plain reads go to `connect_reader`); PostgreSQL gets a real pool.
    let mut options = if sqlite {
        pool_options(url.expose_secret(), 1)
    } else {
        pool_options(url.expose_secret(), settings.database_max_connections)
    };
    if sqlite {
        // sqlx leaves `journal_mode` alone unless asked, and a new SQLite file starts in rollback
        // mode (DELETE): every commit then copies the old pages to a journal, fsyncs it, writes
        // the pages in place and fsyncs again, and readers block the writer's commit. WAL is
        // persistent in the file once set; the read-only pool relies on it (see
        // `connect_reader`). `synchronous = FULL` (sqlx's default, named here because it is a
        // decision): each commit's WAL frames are fsynced before the commit returns, so an
        // accepted lead or evidence row survives a power cut.
        options.map_sqlx_sqlite_opts(|o| {
            o.pragma("cache_size", SQLITE_CACHE_KIB)
                .row_buffer_size(SQLITE_ROW_BUFFER)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .pragma("wal_autocheckpoint", SQLITE_WRITER_CHECKPOINT_PAGES)
                .pragma("journal_size_limit", SQLITE_WAL_KEEP_BYTES)
        });
    }
    Database::connect(options)
        .await
        .context("connecting to the database (check FIELDPROOF_DATABASE_URL)")
}

/// A pool for plain reads outside any transaction (who is calling, a row read back for the
/// answer). With SQLite the writing pool has one connection (see [`connect`]), so every
/// request's account check queued behind whatever transaction held it — a batch of lead
/// assignments, an evidence upload; WAL lets read-only connections run beside the writer and see
/// every committed write. With PostgreSQL it is the same pool.
pub async fn connect_reader(
    settings: &Settings,
    writer: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url();
    if !url.expose_secret().starts_with("sqlite:") {
        return Ok(writer.clone());
    }
    let mut options = pool_options(url.expose_secret(), 4);
    options.map_sqlx_sqlite_opts(|o| {
        o.read_only(true)
            .pragma("cache_size", SQLITE_CACHE_KIB)
            .row_buffer_size(SQLITE_ROW_BUFFER)
    });
    Database::connect(options)
        .await
        .context("opening read connections to the database")
}

/// The lead dispatcher's own connections on PostgreSQL. Its batches are serial and every
/// request of a burst waits for them; on the shared pool each of a batch's statements queued
/// for a connection behind the burst's own account checks (200 requests, 10 connections).
/// SQLite: the writer itself (there is one).
pub async fn connect_dispatcher(
    settings: &Settings,
    writer: &DatabaseConnection,
) -> anyhow::Result<DatabaseConnection> {
    if writer.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(writer.clone());
    }
    let url = settings.database_url();
    Database::connect(pool_options(url.expose_secret(), DISPATCHER_CONNECTIONS))
        .await
        .context("opening the lead dispatcher's connections")
}

/// One per org batch running at once (batches of different orgs run side by side).
const DISPATCHER_CONNECTIONS: u32 = 2;

/// PostgreSQL: the lead dispatcher's reads outside its transactions — the accounts of a batch's
/// sessions and, once a batch has its turn, the rep loads (three statements side by side). A
/// pool of its own: a batch holding a transaction may wait for one of these, never the reverse.
pub async fn connect_dispatcher_reads(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url();
    Database::connect(pool_options(
        url.expose_secret(),
        DISPATCHER_READ_CONNECTIONS,
    ))
    .await
    .context("opening the lead dispatcher's read connections")
}

const DISPATCHER_READ_CONNECTIONS: u32 = 3;

pub async fn migrate_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("applying migrations")
}

/// A new time-ordered identifier (UUIDv7): made without coordination, sorts by creation.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current instant, truncated to microseconds so it survives a round trip through either
/// database unchanged.
pub fn now() -> OffsetDateTime {
    stored(OffsetDateTime::now_utc())
}

/// A time from outside (a client's, in any offset) as stored times are kept: on UTC, to the
/// microsecond. SQLite orders and compares the stored text, so a time kept in +08:00 would sort
/// eight hours off against the rest.
pub fn stored(t: OffsetDateTime) -> OffsetDateTime {
    let t = utc(t);
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

/// `t` on UTC, for a range filter on a stored time. Every stored time is UTC ([`now`]), and
/// SQLite keeps times as RFC 3339 text and compares them as text, so a bound in another offset
/// (a report week starting Monday 00:00 +08:00) would silently be off by that offset.
pub fn utc(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(time::UtcOffset::UTC)
}

/// Whether an error is a unique-constraint violation (a conflict the client can act on).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Page of results in id order, with the cursor for the next page.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Paging parameters, already bounded.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u64,
}

impl<T> Page<T> {
    /// Build a page from `limit + 1` fetched rows: the extra row only says whether more exist.
    pub fn from_rows(mut rows: Vec<T>, limit: u64, id_of: impl Fn(&T) -> String) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(&id_of) } else { None };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{in_lists, insert_chunks};

    #[test]
    fn in_lists_come_in_a_few_lengths_and_keep_every_value() {
        let items: Vec<u32> = (0..1200).collect();
        for n in [0, 1, 7, 8, 9, 100, 200, 512, 513, 1200] {
            let lists: Vec<Vec<u32>> = in_lists(&items[..n]).collect();
            let mut seen: Vec<u32> = lists.iter().flatten().copied().collect();
            seen.dedup();
            assert_eq!(seen, items[..n], "n = {n}");
            for list in &lists {
                assert!(
                    [8, 16, 32, 64, 128, 256, 512].contains(&list.len()),
                    "n = {n}: {}",
                    list.len()
                );
            }
        }
        assert_eq!(in_lists::<u32>(&[]).count(), 0);
    }

    #[test]
    fn insert_chunks_cover_the_rows_in_order_with_few_shapes() {
        let rows: Vec<u32> = (0..300).collect();
        for n in 0..300 {
            let chunks: Vec<&[u32]> = insert_chunks(&rows[..n]).collect();
            let joined: Vec<u32> = chunks.concat();
            assert_eq!(joined, rows[..n]);
            assert!(chunks.iter().all(|c| [64, 16, 4, 1].contains(&c.len())));
            assert!(
                chunks.len() <= n / 64 + 3 + 3 + 3,
                "n = {n}: {}",
                chunks.len()
            );
        }
    }
}
