//! Black-box API tests: the real application on port 0 with a fresh database per test.
//!
//! Backend: SQLite in a temporary folder by default; PostgreSQL when
//! `FIELDPROOF_TEST_DATABASE_URL` names a server (each test then creates its own database).
//! Blob store: a temporary folder by default; S3 when `FIELDPROOF_TEST_S3_ENDPOINT` names an
//! S3-compatible server (each test then creates its own bucket).

mod auth;
mod cli;
mod console;
mod console_browser;
mod crash;
mod customers;
mod deals;
mod errors;
mod evidence;
mod helpers;
mod leads;
mod notifications;
mod ops;
#[path = "../../domain/tests/support/mod.rs"]
mod photos;
mod quotes;
mod stalls;
mod storage;
mod uploads;
