//! The supervisor console (`/console/...`): server-rendered pages (maud) for people who do not
//! use curl — the review queue, deals with their path and audit trail, the heatmap, the
//! distribution health of leads.
//!
//! It is a second front end over the same services as the API, never a second copy of a rule:
//! every page calls the functions the JSON routes call, with the same [`crate::auth::Caller`],
//! so roles and object scoping are identical (a supervisor sees only their teams; anything else
//! is not found). Sign-in uses a database-backed session cookie and every form a CSRF token
//! (see `session`). Stylesheet and script are compiled into the binary, pages allow nothing
//! else (Content-Security-Policy), so the console works on an intranet with no internet.
//!
//! Adding a page (as `health` did): a module with a handler taking [`session::ConsoleUser`],
//! calling the function the JSON route calls with `user.caller`, rendering through
//! [`layout::page`]; a route below; a `Nav` entry and a link in `layout::page`'s navigation,
//! shown to the roles the service lets in.

mod assets;
mod deals;
mod health;
mod heatmap;
mod layout;
mod login;
mod plot;
mod reviews;
pub mod session;

use actix_web::middleware::DefaultHeaders;
use actix_web::web;

/// Only this origin's own stylesheet, script, images and form targets; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .wrap(
                DefaultHeaders::new()
                    .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "same-origin")),
            )
            .route("", web::get().to(login::home))
            .route("/", web::get().to(login::home))
            .route("/login", web::get().to(login::show))
            .route("/login", web::post().to(login::submit))
            .route("/logout", web::post().to(login::logout))
            .route("/lang/{lang}", web::get().to(login::switch_language))
            .route("/static/{name}", web::get().to(assets::serve))
            .route("/reviews", web::get().to(reviews::queue))
            .route("/reviews/{id}/decision", web::post().to(reviews::decide))
            .route(
                "/evidence/{id}/thumbnail",
                web::get().to(reviews::thumbnail),
            )
            .route("/deals", web::get().to(deals::list))
            .route("/deals/{id}", web::get().to(deals::show))
            .route("/heatmap", web::get().to(heatmap::show))
            .route("/heatmap.csv", web::get().to(heatmap::csv))
            .route("/health", web::get().to(health::show))
            .default_service(web::to(layout::not_found)),
    );
}
