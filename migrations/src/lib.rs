//! Schema migrations of fieldproof. One file per change, each with a real `down`;
//! every migration runs on both SQLite (embedded default) and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_accounts;
mod m20261126_000002_customers;
mod m20261126_000003_pipeline;
mod m20261126_000004_notifications;
mod m20261126_000005_evidence;
mod m20261126_000006_uploads;
mod m20261126_000007_quotes;
mod m20261126_000008_leads;
mod m20261126_000009_console;
mod m20261126_000010_lead_rosters;
mod m20261126_000011_dedup_keys;
mod m20261126_000012_lead_first_team;
mod m20261126_000013_decision_records_text;
mod m20261126_000014_rate_limit_windows;
mod m20261126_000015_quote_pdf_key_index;
mod m20261126_000016_outbox_sequence;
mod m20261127_000017_lead_load_index;
mod m20261127_000018_roster_versions;
mod m20261127_000019_append_friendly_indexes;
mod m20261127_000020_drop_lead_owner_index;
mod m20261127_000021_deal_load_index;
mod m20261127_000022_lead_pool_index;
mod m20261127_000023_lead_team_index;
mod m20261127_000024_upload_lease_age_index;
mod m20261127_000025_open_deal_counts;
mod m20261127_000026_packed_decision_records;
mod m20261206_000027_deal_peak_value;
mod m20261206_000028_webhook_pause;
mod m20261206_000029_phash_quarter_bands;
mod util;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_accounts::Migration),
            Box::new(m20261126_000002_customers::Migration),
            Box::new(m20261126_000003_pipeline::Migration),
            Box::new(m20261126_000004_notifications::Migration),
            Box::new(m20261126_000005_evidence::Migration),
            Box::new(m20261126_000006_uploads::Migration),
            Box::new(m20261126_000007_quotes::Migration),
            Box::new(m20261126_000008_leads::Migration),
            Box::new(m20261126_000009_console::Migration),
            Box::new(m20261126_000010_lead_rosters::Migration),
            Box::new(m20261126_000011_dedup_keys::Migration),
            Box::new(m20261126_000012_lead_first_team::Migration),
            Box::new(m20261126_000013_decision_records_text::Migration),
            Box::new(m20261126_000014_rate_limit_windows::Migration),
            Box::new(m20261126_000015_quote_pdf_key_index::Migration),
            Box::new(m20261126_000016_outbox_sequence::Migration),
            Box::new(m20261127_000017_lead_load_index::Migration),
            Box::new(m20261127_000018_roster_versions::Migration),
            Box::new(m20261127_000019_append_friendly_indexes::Migration),
            Box::new(m20261127_000020_drop_lead_owner_index::Migration),
            Box::new(m20261127_000021_deal_load_index::Migration),
            Box::new(m20261127_000022_lead_pool_index::Migration),
            Box::new(m20261127_000023_lead_team_index::Migration),
            Box::new(m20261127_000024_upload_lease_age_index::Migration),
            Box::new(m20261127_000025_open_deal_counts::Migration),
            Box::new(m20261127_000026_packed_decision_records::Migration),
            Box::new(m20261206_000027_deal_peak_value::Migration),
            Box::new(m20261206_000028_webhook_pause::Migration),
            Box::new(m20261206_000029_phash_quarter_bands::Migration),
        ]
    }
}
