//! sea-orm entities: one per table, mirroring the migrations. Queries live in the repositories.

pub mod activity;
pub mod audit_event;
pub mod contact;
pub mod customer;
pub mod customer_share;
pub mod deal;
pub mod device;
pub mod evidence;
pub mod evidence_band;
pub mod node_record;
pub mod node_run;
pub mod notification;
pub mod org;
pub mod outbox;
pub mod pipeline_template;
pub mod refresh_token;
pub mod rep_profile;
pub mod site;
pub mod stall_alarm;
pub mod team;
pub mod team_webhook;
pub mod upload_lease;
pub mod upload_session;
pub mod user;
