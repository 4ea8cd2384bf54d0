//! The console's stylesheet and script, compiled into the binary (the console must work on an
//! intranet with no internet: no CDN, no web fonts, no map tiles). URLs carry a content hash,
//! so browsers may keep them for a year and still see a new release at once.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..6])
}

static CSS_URL: LazyLock<String> =
    LazyLock::new(|| format!("/console/static/console.css?v={}", short_hash(CSS)));
static JS_URL: LazyLock<String> =
    LazyLock::new(|| format!("/console/static/console.js?v={}", short_hash(JS)));

pub fn css_url() -> &'static str {
    &CSS_URL
}

pub fn js_url() -> &'static str {
    &JS_URL
}

/// `GET /console/static/{name}`.
pub async fn serve(name: web::Path<String>) -> HttpResponse {
    let (body, content_type) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return super::layout::not_found().await,
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(body)
}
