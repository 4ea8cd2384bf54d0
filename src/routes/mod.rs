//! HTTP routes, one module per resource, each with its own `configure`.

pub mod auth;
pub mod customers;
pub mod deals;
pub mod devices;
pub mod evidence;
pub mod health;
pub mod integrations;
pub mod lead_capture;
pub mod lead_imports;
pub mod lead_rules;
pub mod leads;
pub mod notifications;
pub mod quote_page;
pub mod quotes;
pub mod reports;
pub mod team_webhooks;
pub mod teams;
pub mod templates;
pub mod uploads;
pub mod users;

use crate::db::PageRequest;
use crate::error::{ApiError, ErrorCode};
use actix_web::web;
use serde::Deserialize;

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .configure(auth::configure)
            .configure(users::configure)
            .configure(teams::configure)
            .configure(customers::configure)
            .configure(deals::configure)
            .configure(devices::configure)
            .configure(evidence::configure)
            .configure(templates::configure)
            .configure(reports::configure)
            .configure(integrations::configure)
            .configure(notifications::configure)
            .configure(team_webhooks::configure)
            .configure(uploads::configure)
            .configure(quotes::configure)
            .configure(leads::configure)
            .configure(lead_rules::configure)
            .configure(lead_capture::configure),
    );
}

/// Cursor paging: `?limit=50&cursor=<next_cursor of the previous page>`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// 1–200, default 50.
    pub limit: Option<u64>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn parse(self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::new(ErrorCode::InvalidQuery)
                .with_details(serde_json::json!({"field": "limit", "reason": "must be 1-200"})));
        }
        Ok(PageRequest {
            after: self.cursor.filter(|c| !c.is_empty()),
            limit,
        })
    }
}

/// A page of items as sent to clients.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PageOf<T: utoipa::ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}
