//! Background jobs that run inside `serve`, next to the HTTP server, in every instance.
//!
//! Each job keeps its state in the database and takes work with leases, so running it in N
//! processes at once is safe; `FIELDPROOF_JOBS=false` keeps a process to HTTP only.

pub mod leads;
pub mod maintenance;
pub mod outbox;
pub mod stalls;

use crate::state::AppState;
use tokio::task::JoinHandle;

/// The running jobs of one application; dropping it stops them (a half-sent message is picked
/// up again by any instance once its lease runs out).
#[derive(Default)]
pub struct Jobs {
    handles: Vec<JoinHandle<()>>,
}

impl Jobs {
    /// Start every job the settings enable, on the current tokio runtime.
    pub fn start(state: &AppState) -> anyhow::Result<Jobs> {
        let (db, settings) = (&state.db, &state.settings);
        let mut jobs = Jobs::default();
        // Storage upkeep of this process's own SQLite file, not a shared job: it runs even with
        // `FIELDPROOF_JOBS=false`.
        jobs.handles.extend(crate::db::spawn_checkpointer(
            settings,
            db,
            state.lead_dispatcher.went_idle(),
        ));
        if settings.jobs {
            jobs.handles.push(outbox::spawn(db.clone(), settings)?);
            jobs.handles.push(stalls::spawn(
                db.clone(),
                std::time::Duration::from_secs(settings.stall_scan_secs.max(1)),
                std::sync::Arc::new(crate::db::now),
            ));
            jobs.handles.push(leads::spawn(
                db.clone(),
                leads::LeadJob {
                    interval: std::time::Duration::from_secs(settings.lead_scan_secs.max(1)),
                    reclaim_block: time::Duration::hours(settings.lead_reclaim_block_hours.max(0)),
                },
            ));
            jobs.handles.push(maintenance::spawn(
                state.clone(),
                std::time::Duration::from_secs(settings.maintenance_interval_secs.max(1)),
            ));
        }
        Ok(jobs)
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}
