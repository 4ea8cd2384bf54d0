//! sea-orm entities: one per table, mirroring the migrations. Queries live in the repositories.

pub mod contact;
pub mod customer;
pub mod customer_share;
pub mod notification;
pub mod org;
pub mod outbox;
pub mod refresh_token;
pub mod rep_profile;
pub mod site;
pub mod team;
pub mod team_webhook;
pub mod user;
