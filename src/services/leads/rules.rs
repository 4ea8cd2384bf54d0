//! Versioned rule sets: every save is a new version; the highest version is in force. Decisions
//! record the version they used, so an old decision is explained against its own rules.

use crate::db::{self, leads as repo};
use anyhow::Context;
use fieldproof_domain::leads::RuleSet;
use fieldproof_domain::leads::rules::{RuleContext, RuleError};
use sea_orm::ConnectionTrait;
use serde_json::Value;

/// The teams of the org as `(id, name)`, what `rep_team` conditions may name.
pub async fn context_teams<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    Ok(db::teams::list(db, org_id)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

/// The rule set in force and its version; version 0 is the built-in "every available rep".
pub async fn active<C: ConnectionTrait>(db: &C, org_id: &str) -> anyhow::Result<(i32, RuleSet)> {
    let Some(row) = repo::latest_rules(db, org_id).await? else {
        return Ok((0, RuleSet::everyone()));
    };
    // Stored rules were valid when saved; a team deleted since then must not stop intake, so
    // stored rules are read with every team name allowed.
    let rules: RuleSet =
        serde_json::from_value(row.rules.clone()).context("lead_rule_sets.rules")?;
    Ok((row.version, rules))
}

/// The rule set of `version` (0: the built-in one), to name the layers of an old decision.
pub async fn of_version<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    version: i32,
) -> anyhow::Result<Option<RuleSet>> {
    if version == 0 {
        return Ok(Some(RuleSet::everyone()));
    }
    repo::rules_version(db, org_id, version)
        .await?
        .map(|row| serde_json::from_value(row.rules).context("lead_rule_sets.rules"))
        .transpose()
}

/// Validate a draft against the org's teams.
pub async fn validate<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    json: &Value,
) -> anyhow::Result<Result<RuleSet, Vec<RuleError>>> {
    let teams = context_teams(db, org_id).await?;
    Ok(RuleSet::parse(json, &RuleContext { teams: &teams }))
}

/// Save a valid rule set as the next version (retrying if another save took the number).
pub async fn save<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    user_id: &str,
    rules: &RuleSet,
) -> anyhow::Result<i32> {
    let json = serde_json::to_value(rules)?;
    for _ in 0..5 {
        let next = repo::latest_rules(db, org_id)
            .await?
            .map_or(1, |r| r.version + 1);
        match repo::insert_rules(db, org_id, next, json.clone(), user_id).await {
            Ok(_) => return Ok(next),
            Err(e) if db::is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("could not take a rule-set version after 5 attempts")
}
