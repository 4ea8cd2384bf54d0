//! The lead scheduler: assigns leads waiting for a decision (CSV imports, intakes whose inline
//! assignment failed) and returns leads whose protection window ended with no follow-up.
//!
//! Safe with N instances: assignment takes the org's turn and compare-and-sets the lead's
//! status; expiry is a compare-and-set UPDATE that re-checks every condition, so whichever
//! instance loses simply sees zero rows changed and sends nothing.

use crate::services::leads::{self, protection};
use sea_orm::DatabaseConnection;
use std::time::Duration;

pub struct LeadJob {
    pub interval: Duration,
    pub reclaim_block: time::Duration,
}

/// Run both passes every `interval` forever; errors are logged and the next pass retries.
pub fn spawn(db: DatabaseConnection, job: LeadJob) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match leads::assign_pending(&db, 200).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(leads = n, "waiting leads assigned"),
                Err(e) => {
                    tracing::warn!(error = %crate::telemetry::cause_chain(&e), "lead assignment pass failed")
                }
            }
            match protection::expire(&db, crate::db::now(), job.reclaim_block).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(leads = n, "unworked leads returned to the pool"),
                Err(e) => tracing::warn!(error = %e, "lead expiry pass failed"),
            }
            tokio::time::sleep(job.interval).await;
        }
    })
}
