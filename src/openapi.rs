//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the docs page.
//! Swagger UI's files are compiled into the binary, so the page works with no internet access.

use crate::routes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fieldproof API",
        description = "Sales management where the pipeline moves only on proof. Errors are always \
                       `{code, message, message_zh, details}`; times are RFC 3339 UTC; money is integer fen."
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::users::me,
        routes::users::list_users,
        routes::users::get_user,
        routes::users::create_user,
        routes::users::get_rep_profile,
        routes::users::put_rep_profile,
        routes::teams::list_teams,
        routes::teams::create_team,
        routes::customers::list_customers,
        routes::customers::create_customer,
        routes::customers::get_customer,
        routes::customers::patch_customer,
        routes::customers::share_customer,
        routes::customers::list_contacts,
        routes::customers::create_contact,
        routes::customers::list_sites,
        routes::customers::create_site,
        routes::deals::list_deals,
        routes::deals::create_deal,
        routes::deals::get_deal,
        routes::deals::patch_deal,
        routes::deals::record_visit,
        routes::deals::record_checklist,
        routes::deals::record_approval,
        routes::deals::record_override,
        routes::deals::return_deal,
        routes::deals::list_activities,
        routes::deals::create_activity,
        routes::deals::get_audit,
        routes::deals::verify_audit,
        routes::templates::list_templates,
        routes::templates::get_template,
        routes::templates::create_template,
        routes::reports::heatmap,
        routes::integrations::esign_callback,
        routes::integrations::erp_order_callback,
        routes::quotes::list_quotes,
        routes::quotes::create_quote,
        routes::quotes::get_quote,
        routes::quotes::patch_quote,
        routes::quotes::issue_quote,
        routes::quotes::new_link,
        routes::quotes::quote_pdf,
        routes::quotes::public_view,
        routes::quotes::public_confirm,
        routes::quotes::public_decline,
        routes::quotes::public_pdf,
        routes::devices::enroll,
        routes::evidence::upload,
        routes::evidence::get_evidence,
        routes::evidence::thumbnail,
        routes::evidence::review_queue,
        routes::evidence::decide,
        routes::notifications::list_notifications,
        routes::notifications::unread_count,
        routes::notifications::mark_read,
        routes::notifications::mark_all_read,
        routes::team_webhooks::list_webhooks,
        routes::team_webhooks::create_webhook,
        routes::team_webhooks::delete_webhook,
        routes::uploads::create_upload,
        routes::uploads::head_upload,
        routes::uploads::patch_upload,
        routes::leads::list_leads,
        routes::leads::create_lead,
        routes::leads::get_lead,
        routes::leads::patch_lead,
        routes::leads::add_activity,
        routes::leads::claim_lead,
        routes::leads::convert_lead,
        routes::leads::reassign_lead,
        routes::leads::lead_decisions,
        routes::leads::explain_lead,
        routes::leads::access_attempts,
        routes::leads::lead_health,
        routes::lead_imports::import_leads,
        routes::lead_imports::import_errors,
        routes::lead_rules::get_rules,
        routes::lead_rules::get_version,
        routes::lead_rules::put_rules,
        routes::lead_rules::what_if,
        routes::lead_capture::create_source,
        routes::lead_capture::list_sources,
        routes::lead_capture::capture,
    ),
    modifiers(&ApiPrefix, &BearerAuth)
)]
pub struct ApiDoc;

/// Handlers are mounted under `/api/v1`; their annotations know only the path inside it.
struct ApiPrefix;

impl Modify for ApiPrefix {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = std::mem::take(&mut openapi.paths.paths);
        openapi.paths.paths = paths
            .into_iter()
            .map(|(path, item)| {
                let ops = ["/healthz", "/readyz", "/metrics"];
                if ops.contains(&path.as_str()) {
                    (path, item)
                } else {
                    (format!("/api/v1{path}"), item)
                }
            })
            .collect();
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `/api/openapi.json` and the human docs page at `/api/docs/`.
pub fn docs() -> SwaggerUi {
    SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", ApiDoc::openapi())
}
