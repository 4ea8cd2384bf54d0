//! fieldproof server: HTTP API, persistence and operations around the pure rules in
//! `fieldproof-domain`.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod jobs;
pub mod openapi;
pub mod ops;
pub mod routes;
pub mod services;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod web;
