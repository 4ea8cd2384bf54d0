//! A version per org's rep roster, bumped by the database itself on every change the roster is
//! made of: a user's org, team, role or active flag, a rep profile, a team's name. Each process
//! keeps the roster it last read with its version and reads it again only when the version
//! moved (a 1,000-rep roster was 3–12 ms of every batch of lead intakes, twice a burst).
//!
//! Triggers, not application code, so that no write path — an admin endpoint, the CLI, a
//! migration, a hand-written `UPDATE` — can change a rep without the cache hearing of it.

use crate::util::execute_all as run;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "CREATE TABLE roster_versions (
    org_id varchar NOT NULL PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    version bigint NOT NULL
)";
const FILL: &str = "INSERT INTO roster_versions (org_id, version) SELECT id, 0 FROM orgs";

/// SQLite: one trigger per table and event (a trigger body cannot branch on the event).
const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER orgs_roster_version AFTER INSERT ON orgs BEGIN
        INSERT INTO roster_versions (org_id, version) VALUES (NEW.id, 0); END",
    "CREATE TRIGGER users_roster_insert AFTER INSERT ON users BEGIN
        UPDATE roster_versions SET version = version + 1 WHERE org_id = NEW.org_id; END",
    "CREATE TRIGGER users_roster_update AFTER UPDATE OF org_id, team_id, role, active ON users BEGIN
        UPDATE roster_versions SET version = version + 1 WHERE org_id IN (OLD.org_id, NEW.org_id); END",
    "CREATE TRIGGER users_roster_delete AFTER DELETE ON users BEGIN
        UPDATE roster_versions SET version = version + 1 WHERE org_id = OLD.org_id; END",
    "CREATE TRIGGER teams_roster_insert AFTER INSERT ON teams BEGIN
        UPDATE roster_versions SET version = version + 1 WHERE org_id = NEW.org_id; END",
    "CREATE TRIGGER teams_roster_update AFTER UPDATE OF org_id, name ON teams BEGIN
        UPDATE roster_versions SET version = version + 1 WHERE org_id IN (OLD.org_id, NEW.org_id); END",
    "CREATE TRIGGER teams_roster_delete AFTER DELETE ON teams BEGIN
        UPDATE roster_versions SET version = version + 1 WHERE org_id = OLD.org_id; END",
    "CREATE TRIGGER rep_profiles_roster_insert AFTER INSERT ON rep_profiles BEGIN
        UPDATE roster_versions SET version = version + 1
        WHERE org_id = (SELECT org_id FROM users WHERE id = NEW.user_id); END",
    "CREATE TRIGGER rep_profiles_roster_update AFTER UPDATE ON rep_profiles BEGIN
        UPDATE roster_versions SET version = version + 1
        WHERE org_id IN (SELECT org_id FROM users WHERE id IN (OLD.user_id, NEW.user_id)); END",
    "CREATE TRIGGER rep_profiles_roster_delete AFTER DELETE ON rep_profiles BEGIN
        UPDATE roster_versions SET version = version + 1
        WHERE org_id = (SELECT org_id FROM users WHERE id = OLD.user_id); END",
];
const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS orgs_roster_version",
    "DROP TRIGGER IF EXISTS users_roster_insert",
    "DROP TRIGGER IF EXISTS users_roster_update",
    "DROP TRIGGER IF EXISTS users_roster_delete",
    "DROP TRIGGER IF EXISTS teams_roster_insert",
    "DROP TRIGGER IF EXISTS teams_roster_update",
    "DROP TRIGGER IF EXISTS teams_roster_delete",
    "DROP TRIGGER IF EXISTS rep_profiles_roster_insert",
    "DROP TRIGGER IF EXISTS rep_profiles_roster_update",
    "DROP TRIGGER IF EXISTS rep_profiles_roster_delete",
    "DROP TABLE IF EXISTS roster_versions",
];

const POSTGRES_UP: &[&str] = &[
    "CREATE FUNCTION roster_version_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO roster_versions (org_id, version) VALUES (NEW.id, 0);
        RETURN NULL;
    END $$",
    "CREATE FUNCTION roster_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        before_org varchar;
        after_org varchar;
    BEGIN
        IF TG_TABLE_NAME = 'rep_profiles' THEN
            IF TG_OP <> 'DELETE' THEN SELECT org_id INTO after_org FROM users WHERE id = NEW.user_id; END IF;
            IF TG_OP <> 'INSERT' THEN SELECT org_id INTO before_org FROM users WHERE id = OLD.user_id; END IF;
        ELSE
            IF TG_OP <> 'DELETE' THEN after_org := NEW.org_id; END IF;
            IF TG_OP <> 'INSERT' THEN before_org := OLD.org_id; END IF;
        END IF;
        UPDATE roster_versions SET version = version + 1 WHERE org_id IN (before_org, after_org);
        RETURN NULL;
    END $$",
    "CREATE TRIGGER orgs_roster_version AFTER INSERT ON orgs
        FOR EACH ROW EXECUTE FUNCTION roster_version_row()",
    "CREATE TRIGGER users_roster AFTER INSERT OR DELETE OR UPDATE OF org_id, team_id, role, active ON users
        FOR EACH ROW EXECUTE FUNCTION roster_version_bump()",
    "CREATE TRIGGER teams_roster AFTER INSERT OR DELETE OR UPDATE OF org_id, name ON teams
        FOR EACH ROW EXECUTE FUNCTION roster_version_bump()",
    "CREATE TRIGGER rep_profiles_roster AFTER INSERT OR DELETE OR UPDATE ON rep_profiles
        FOR EACH ROW EXECUTE FUNCTION roster_version_bump()",
];
const POSTGRES_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS orgs_roster_version ON orgs",
    "DROP TRIGGER IF EXISTS users_roster ON users",
    "DROP TRIGGER IF EXISTS teams_roster ON teams",
    "DROP TRIGGER IF EXISTS rep_profiles_roster ON rep_profiles",
    "DROP FUNCTION IF EXISTS roster_version_bump()",
    "DROP FUNCTION IF EXISTS roster_version_row()",
    "DROP TABLE IF EXISTS roster_versions",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &[TABLE, FILL]).await?;
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => run(manager, POSTGRES_UP).await,
            _ => run(manager, SQLITE_UP).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => run(manager, POSTGRES_DOWN).await,
            _ => run(manager, SQLITE_DOWN).await,
        }
    }
}
