//! Each rep's open deals counted per node by the database itself, kept up to date by triggers
//! on `deals`. Every batch of lead intakes weighs each rep's open deals into their load, inside
//! the org's turn; counting them there from `deals_org_status_owner_node_idx` read every open
//! deal's index entry (20,000 in the leads bench): 2–2.5 ms of every batch, twice a burst. The
//! counts are a few rows per rep.
//!
//! Triggers, not application code (as `roster_versions`, migration 000018): no write path — an
//! advance, a win, a reassignment, an import, a hand-written `UPDATE` — can move a deal without
//! its count following. A deal without a current node counts under `''`. On PostgreSQL a
//! transition that moves a count from one row to another updates the two rows in key order, so
//! two transactions moving deals of one rep in opposite directions cannot deadlock.

use crate::util::execute_all as run;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "CREATE TABLE open_deal_counts (
    org_id varchar NOT NULL,
    owner_id varchar NOT NULL,
    node_key varchar NOT NULL,
    deals bigint NOT NULL,
    PRIMARY KEY (org_id, owner_id, node_key)
)";
const FILL: &str = "INSERT INTO open_deal_counts (org_id, owner_id, node_key, deals)
    SELECT org_id, owner_id, COALESCE(current_node_key, ''), COUNT(*) FROM deals
    WHERE status = 'open' GROUP BY org_id, owner_id, COALESCE(current_node_key, '')";

/// SQLite: one trigger per event; an update takes the old count down, then the new one up.
const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER deals_open_count_insert AFTER INSERT ON deals WHEN NEW.status = 'open' BEGIN
        INSERT INTO open_deal_counts (org_id, owner_id, node_key, deals)
        VALUES (NEW.org_id, NEW.owner_id, COALESCE(NEW.current_node_key, ''), 1)
        ON CONFLICT (org_id, owner_id, node_key) DO UPDATE SET deals = deals + 1; END",
    "CREATE TRIGGER deals_open_count_delete AFTER DELETE ON deals WHEN OLD.status = 'open' BEGIN
        UPDATE open_deal_counts SET deals = deals - 1 WHERE org_id = OLD.org_id
        AND owner_id = OLD.owner_id AND node_key = COALESCE(OLD.current_node_key, ''); END",
    "CREATE TRIGGER deals_open_count_update
        AFTER UPDATE OF org_id, owner_id, status, current_node_key ON deals BEGIN
        UPDATE open_deal_counts SET deals = deals - 1 WHERE OLD.status = 'open'
        AND org_id = OLD.org_id AND owner_id = OLD.owner_id
        AND node_key = COALESCE(OLD.current_node_key, '');
        INSERT INTO open_deal_counts (org_id, owner_id, node_key, deals)
        SELECT NEW.org_id, NEW.owner_id, COALESCE(NEW.current_node_key, ''), 1
        WHERE NEW.status = 'open'
        ON CONFLICT (org_id, owner_id, node_key) DO UPDATE SET deals = deals + 1; END",
];
const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS deals_open_count_insert",
    "DROP TRIGGER IF EXISTS deals_open_count_delete",
    "DROP TRIGGER IF EXISTS deals_open_count_update",
    "DROP TABLE IF EXISTS open_deal_counts",
];

const POSTGRES_UP: &[&str] = &[
    "CREATE FUNCTION open_deal_count_add(o varchar, r varchar, n varchar, d bigint)
    RETURNS void LANGUAGE sql AS $$
        INSERT INTO open_deal_counts (org_id, owner_id, node_key, deals) VALUES (o, r, n, d)
        ON CONFLICT (org_id, owner_id, node_key)
        DO UPDATE SET deals = open_deal_counts.deals + EXCLUDED.deals
    $$",
    "CREATE FUNCTION open_deal_count_follow() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        was_open boolean := TG_OP <> 'INSERT' AND OLD.status = 'open';
        is_open boolean := TG_OP <> 'DELETE' AND NEW.status = 'open';
        old_key text;
        new_key text;
    BEGIN
        IF was_open THEN
            old_key := OLD.org_id || chr(1) || OLD.owner_id || chr(1) || COALESCE(OLD.current_node_key, '');
        END IF;
        IF is_open THEN
            new_key := NEW.org_id || chr(1) || NEW.owner_id || chr(1) || COALESCE(NEW.current_node_key, '');
        END IF;
        IF old_key IS NOT DISTINCT FROM new_key THEN
            RETURN NULL;
        END IF;
        -- Both rows in key order (see the module comment).
        IF was_open AND (NOT is_open OR old_key < new_key) THEN
            PERFORM open_deal_count_add(OLD.org_id, OLD.owner_id, COALESCE(OLD.current_node_key, ''), -1);
            old_key := NULL;
        END IF;
        IF is_open THEN
            PERFORM open_deal_count_add(NEW.org_id, NEW.owner_id, COALESCE(NEW.current_node_key, ''), 1);
        END IF;
        IF old_key IS NOT NULL THEN
            PERFORM open_deal_count_add(OLD.org_id, OLD.owner_id, COALESCE(OLD.current_node_key, ''), -1);
        END IF;
        RETURN NULL;
    END $$",
    "CREATE TRIGGER deals_open_count
        AFTER INSERT OR DELETE OR UPDATE OF org_id, owner_id, status, current_node_key ON deals
        FOR EACH ROW EXECUTE FUNCTION open_deal_count_follow()",
];
const POSTGRES_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS deals_open_count ON deals",
    "DROP FUNCTION IF EXISTS open_deal_count_follow()",
    "DROP FUNCTION IF EXISTS open_deal_count_add(varchar, varchar, varchar, bigint)",
    "DROP TABLE IF EXISTS open_deal_counts",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &[TABLE]).await?;
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => run(manager, POSTGRES_UP).await?,
            _ => run(manager, SQLITE_UP).await?,
        }
        run(manager, &[FILL]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => run(manager, POSTGRES_DOWN).await,
            _ => run(manager, SQLITE_DOWN).await,
        }
    }
}
