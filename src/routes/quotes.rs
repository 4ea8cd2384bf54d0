//! `/api/v1/deals/{id}/quotes`, `/api/v1/quotes/{id}`: quotes for staff (bearer token, scoped
//! through the deal); `/api/v1/public/quotes/{token}`: the customer's JSON door, meant for a
//! WeChat mini-program, where the token is the only credential and grants this one revision.

use crate::auth::Caller;
use crate::db::entities::quote;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::services::quotes::{self as service, ContentInput, DecisionInput, Edit};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use fieldproof_domain::quote::{QuoteLineInput, compute_totals};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use time::OffsetDateTime;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_quotes)
        .service(create_quote)
        .service(get_quote)
        .service(patch_quote)
        .service(issue_quote)
        .service(new_link)
        .service(quote_pdf)
        .service(public_view)
        .service(public_confirm)
        .service(public_decline)
        .service(public_pdf);
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineInput {
    pub sku: String,
    pub description: String,
    pub quantity: i64,
    pub unit_price_fen: i64,
    /// Discount in basis points of the line's gross: 1000 = 10 % off. Default 0.
    #[serde(default)]
    pub discount_bp: i64,
}

impl From<LineInput> for QuoteLineInput {
    fn from(l: LineInput) -> Self {
        QuoteLineInput {
            sku: l.sku,
            description: l.description,
            quantity: l.quantity,
            unit_price_fen: l.unit_price_fen,
            discount_bp: l.discount_bp,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LineView {
    pub sku: String,
    pub description: String,
    pub quantity: i64,
    pub unit_price_fen: i64,
    pub discount_bp: i64,
    pub gross_fen: i64,
    pub discount_fen: i64,
    pub net_fen: i64,
}

pub fn line_views(row: &quote::Model) -> Vec<LineView> {
    let lines = service::lines_of(row);
    let amounts = compute_totals(&lines, row.tax_rate_bp)
        .map(|t| t.lines)
        .unwrap_or_default();
    lines
        .iter()
        .zip(amounts)
        .map(|(l, a)| LineView {
            sku: l.sku().to_owned(),
            description: l.description().to_owned(),
            quantity: l.quantity(),
            unit_price_fen: l.unit_price_fen(),
            discount_bp: l.discount_bp(),
            gross_fen: a.gross_fen,
            discount_fen: a.discount_fen,
            net_fen: a.net_fen,
        })
        .collect()
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteView {
    pub id: String,
    pub deal_id: String,
    pub revision: i32,
    /// `draft`, `issued` or `superseded`.
    pub status: String,
    /// System number, e.g. `Q2026-000123`, once issued.
    pub number: Option<String>,
    pub currency: String,
    pub lines: Vec<LineView>,
    /// 1300 = 13 % VAT.
    pub tax_rate_bp: i64,
    pub gross_fen: i64,
    pub discount_fen: i64,
    pub subtotal_fen: i64,
    pub tax_fen: i64,
    pub total_fen: i64,
    /// Last day of validity (China), `YYYY-MM-DD`.
    pub valid_until: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// SHA-256 of the content; price approvals are bound to it.
    pub content_hash: String,
    /// `/api/v1/quotes/{id}/pdf` once issued.
    pub pdf_url: Option<String>,
    pub pdf_sha256: Option<String>,
    /// Characters the PDF font could not draw (rare hanzi without a full font installed).
    pub pdf_missing_chars: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub issued_at: Option<OffsetDateTime>,
    pub superseded_by: Option<String>,
    /// `confirmed` or `declined` by the customer.
    pub decision: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    pub erp_order_number: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<quote::Model> for QuoteView {
    fn from(q: quote::Model) -> Self {
        QuoteView {
            lines: line_views(&q),
            pdf_url: q
                .pdf_key
                .as_ref()
                .map(|_| format!("/api/v1/quotes/{}/pdf", q.id)),
            id: q.id,
            deal_id: q.deal_id,
            revision: q.revision,
            status: q.status,
            number: q.number,
            currency: q.currency,
            tax_rate_bp: q.tax_rate_bp,
            gross_fen: q.gross_fen,
            discount_fen: q.discount_fen,
            subtotal_fen: q.subtotal_fen,
            tax_fen: q.tax_fen,
            total_fen: q.total_fen,
            valid_until: q.valid_until,
            expires_at: q.expires_at,
            content_hash: q.content_hash,
            pdf_sha256: q.pdf_sha256,
            pdf_missing_chars: q.pdf_missing_chars,
            issued_at: q.issued_at,
            superseded_by: q.superseded_by,
            decision: q.decision,
            decided_at: q.decided_at,
            erp_order_number: q.erp_order_number,
            created_at: q.created_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateQuoteRequest {
    pub lines: Vec<LineInput>,
    /// Basis points, 0-3000 (1300 = 13 % VAT).
    pub tax_rate_bp: i64,
    /// `YYYY-MM-DD`, today to a year ahead (China dates).
    pub valid_until: String,
}

/// Every revision of the deal's quote, oldest first.
#[utoipa::path(tag = "quotes", responses((status = 200, body = Vec<QuoteView>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/deals/{id}/quotes")]
async fn list_quotes(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<QuoteView>>> {
    let deal = crate::db::deals::find_visible(&state.db, &caller, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let rows = crate::db::quotes::of_deal(&state.db, &deal.id).await?;
    Ok(web::Json(rows.into_iter().map(QuoteView::from).collect()))
}

/// Start the next revision of the deal's quote as a draft. Its content hash becomes the deal's
/// quote hash: price approvals bound to the old one stop counting.
#[utoipa::path(tag = "quotes", request_body = CreateQuoteRequest, responses((status = 201, body = QuoteView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/deals/{id}/quotes")]
async fn create_quote(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<CreateQuoteRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let input = ContentInput {
        lines: body.lines.into_iter().map(Into::into).collect(),
        tax_rate_bp: body.tax_rate_bp,
        valid_until: body.valid_until,
    };
    let created = service::create(&state, &caller, &id, input).await?;
    Ok(HttpResponse::Created().json(QuoteView::from(created)))
}

#[utoipa::path(tag = "quotes", responses((status = 200, body = QuoteView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/quotes/{id}")]
async fn get_quote(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<QuoteView>> {
    let (quote, _) = service::visible_quote(&state, &caller, &id).await?;
    Ok(web::Json(quote.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PatchQuoteRequest {
    pub lines: Option<Vec<LineInput>>,
    pub tax_rate_bp: Option<i64>,
    pub valid_until: Option<String>,
}

/// Edit the latest revision. A draft changes in place (200); an issued quote is frozen, so the
/// edit becomes a new draft revision (201) and the issued one is superseded.
#[utoipa::path(tag = "quotes", request_body = PatchQuoteRequest, responses((status = 200, body = QuoteView), (status = 201, body = QuoteView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[patch("/quotes/{id}")]
async fn patch_quote(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<PatchQuoteRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let edit = Edit {
        lines: body
            .lines
            .map(|lines| lines.into_iter().map(Into::into).collect()),
        tax_rate_bp: body.tax_rate_bp,
        valid_until: body.valid_until,
    };
    let (quote, new_revision) = service::edit(&state, &caller, &id, edit).await?;
    let view = QuoteView::from(quote);
    Ok(if new_revision {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerLink {
    /// The customer's token: shown once, stored only as a hash.
    pub token: String,
    /// The H5 page to send the customer (WeChat's browser, any phone browser).
    pub page_url: String,
    /// The JSON endpoint for a mini-program.
    pub api_url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

fn customer_link(state: &AppState, token: String, expires_at: OffsetDateTime) -> CustomerLink {
    let base = state
        .settings
        .public_base_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/');
    CustomerLink {
        page_url: format!("{base}/q/{token}"),
        api_url: format!("{base}/api/v1/public/quotes/{token}"),
        token,
        expires_at,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuedQuote {
    pub quote: QuoteView,
    pub customer_link: CustomerLink,
    /// The deal's current node after issuing (normally `quote_confirmed`).
    pub deal_current_node: Option<String>,
}

/// Issue the draft: system number (gapless per org and year), frozen content, PDF in the blob
/// store, a customer link, and the `quote_number` fact on the current node. Only at the node
/// that asks for a quote number (after price approval).
#[utoipa::path(tag = "quotes", responses((status = 200, body = IssuedQuote), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
#[post("/quotes/{id}/issue")]
async fn issue_quote(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<IssuedQuote>> {
    let issued = service::issue(&state, &caller, &id).await?;
    let link = customer_link(&state, issued.token, issued.quote.expires_at);
    Ok(web::Json(IssuedQuote {
        quote: issued.quote.into(),
        customer_link: link,
        deal_current_node: issued.deal.current_node_key,
    }))
}

/// A new customer link for an issued, undecided quote; earlier unused links stop working.
#[utoipa::path(tag = "quotes", responses((status = 200, body = CustomerLink), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
#[post("/quotes/{id}/link")]
async fn new_link(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<CustomerLink>> {
    let (quote, token) = service::new_link(&state, &caller, &id).await?;
    Ok(web::Json(customer_link(&state, token, quote.expires_at)))
}

fn pdf_response(quote: &quote::Model, bytes: Vec<u8>) -> HttpResponse {
    let name = quote.number.clone().unwrap_or_else(|| "quote".into());
    HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{name}.pdf\""),
        ))
        .body(bytes)
}

/// The issued quote's PDF.
#[utoipa::path(tag = "quotes", responses((status = 200, content_type = "application/pdf"), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/quotes/{id}/pdf")]
async fn quote_pdf(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (quote, _) = service::visible_quote(&state, &caller, &id).await?;
    let bytes = service::pdf_bytes(&state, &quote).await?;
    Ok(pdf_response(&quote, bytes))
}

// ---------------------------------------------------------------------------------------------
// The customer's door.

/// The address the rate limit counts against and a decision records: behind the reverse proxy
/// (`trust_forwarded_for`) the one it reports, otherwise the peer's.
pub fn client_ip(state: &AppState, req: &HttpRequest) -> Option<IpAddr> {
    if state.settings.trust_forwarded_for
        && let Some(ip) = forwarded_client(req.headers())
    {
        return Some(ip);
    }
    req.peer_addr().map(|a| a.ip())
}

/// The address the proxy in front saw: the **last** `X-Forwarded-For` entry, which it wrote
/// (overwriting or appending, as nginx's `$proxy_add_x_forwarded_for` does). Entries before it
/// came from the client and prove nothing, and so does a `Forwarded` header, which is not read:
/// actix's `realip_remote_addr` prefers `Forwarded` and takes the first entry, so a client could
/// pick the address it was counted and recorded as.
fn forwarded_client(headers: &actix_web::http::header::HeaderMap) -> Option<IpAddr> {
    let last_line = headers.get_all("x-forwarded-for").last()?;
    last_line
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Count one customer-facing request per client address; 429 with `Retry-After` past the
/// allowance. Counted like the lead-capture form ([`crate::db::rate_limits`]): on PostgreSQL in
/// the database, so the allowance holds across every instance behind the load balancer; on
/// SQLite (one `serve` process per file) in this process's memory.
pub async fn rate_limit(state: &AppState, req: &HttpRequest) -> ApiResult<()> {
    let Some(ip) = client_ip(state, req) else {
        return Ok(());
    };
    crate::db::rate_limits::hit_shared_or_local(
        &state.db,
        &state.limit_windows,
        "public_quote",
        &ip.to_string(),
        state.settings.public_rate_limit_per_minute,
        crate::db::now(),
    )
    .await?
    .map_err(|wait| {
        metrics::counter!("fieldproof_public_rate_limited_total").increment(1);
        ApiError::new(ErrorCode::RateLimited).retry_after(wait)
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerDecisionView {
    /// `confirmed` or `declined`.
    pub decision: String,
    pub customer_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
}

/// What the customer sees: the quote and the names on it, nothing of the deal or the rep.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerQuoteView {
    pub number: Option<String>,
    pub revision: i32,
    /// `open` (awaiting the decision), `confirmed`, `declined`, or `superseded` (a newer quote
    /// exists: this one can no longer be confirmed).
    pub state: &'static str,
    pub seller: String,
    pub customer: String,
    pub project: String,
    pub currency: String,
    pub lines: Vec<LineView>,
    pub tax_rate_bp: i64,
    pub gross_fen: i64,
    pub discount_fen: i64,
    pub subtotal_fen: i64,
    pub tax_fen: i64,
    pub total_fen: i64,
    pub valid_until: String,
    pub content_hash: String,
    pub decision: Option<CustomerDecisionView>,
    /// Relative URL of the PDF for this token.
    pub pdf_url: String,
}

pub fn customer_view(view: service::CustomerView, token: &str) -> CustomerQuoteView {
    let q = view.quote;
    let state = match (q.status.as_str(), q.decision.as_deref()) {
        (_, Some("confirmed")) => "confirmed",
        (_, Some(_)) => "declined",
        ("superseded", None) => "superseded",
        _ => "open",
    };
    CustomerQuoteView {
        lines: line_views(&q),
        number: q.number,
        revision: q.revision,
        state,
        seller: view.seller,
        customer: view.buyer,
        project: view.deal_title,
        currency: q.currency,
        tax_rate_bp: q.tax_rate_bp,
        gross_fen: q.gross_fen,
        discount_fen: q.discount_fen,
        subtotal_fen: q.subtotal_fen,
        tax_fen: q.tax_fen,
        total_fen: q.total_fen,
        valid_until: q.valid_until,
        content_hash: q.content_hash,
        decision: view.decision.map(|d| CustomerDecisionView {
            decision: d.decision,
            customer_name: d.customer_name,
            decided_at: d.created_at,
        }),
        pdf_url: format!("/api/v1/public/quotes/{token}/pdf"),
    }
}

/// The quote behind a customer token. Unknown, revoked or expired: 404, always the same.
#[utoipa::path(tag = "customer", responses((status = 200, body = CustomerQuoteView), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[get("/public/quotes/{token}")]
async fn public_view(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    rate_limit(&state, &req).await?;
    let view = service::open_link(&state, &token).await?;
    // What a bearer link opened is kept by no cache (a shared proxy, the WebView's).
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(customer_view(view, &token)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DecisionRequest {
    /// The customer's name as they sign (1-50 characters).
    pub customer_name: String,
    pub customer_title: Option<String>,
    pub comment: Option<String>,
    /// The WeChat openid the mini-program obtained (`wx.login` → code2Session), if any.
    pub openid: Option<String>,
}

fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub fn decision_input(
    state: &AppState,
    req: &HttpRequest,
    body: DecisionRequest,
    confirm: bool,
    channel: &'static str,
) -> DecisionInput {
    DecisionInput {
        confirm,
        customer_name: body.customer_name,
        customer_title: body.customer_title,
        comment: body.comment,
        wechat_openid: body.openid,
        ip: client_ip(state, req).map(|ip| ip.to_string()),
        user_agent: user_agent(req),
        channel,
    }
}

async fn decide(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
    body: DecisionRequest,
    confirm: bool,
) -> ApiResult<web::Json<CustomerQuoteView>> {
    rate_limit(state, req).await?;
    let input = decision_input(state, req, body, confirm, "api");
    service::decide(state, token, input).await?;
    let view = service::open_link(state, token).await?;
    Ok(web::Json(customer_view(view, token)))
}

/// The customer confirms this revision (single use). Passes `quote_confirmed` when it confirms
/// the deal's current revision; a superseded revision answers 409 `quote_superseded`.
#[utoipa::path(tag = "customer", request_body = DecisionRequest, responses((status = 200, body = CustomerQuoteView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[post("/public/quotes/{token}/confirm")]
async fn public_confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<DecisionRequest>,
) -> ApiResult<web::Json<CustomerQuoteView>> {
    decide(&state, &req, &token, body.into_inner(), true).await
}

/// The customer declines this revision (single use), optionally saying why.
#[utoipa::path(tag = "customer", request_body = DecisionRequest, responses((status = 200, body = CustomerQuoteView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[post("/public/quotes/{token}/decline")]
async fn public_decline(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<DecisionRequest>,
) -> ApiResult<web::Json<CustomerQuoteView>> {
    decide(&state, &req, &token, body.into_inner(), false).await
}

/// The PDF of the quote behind a customer token.
#[utoipa::path(tag = "customer", responses((status = 200, content_type = "application/pdf"), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[get("/public/quotes/{token}/pdf")]
async fn public_pdf(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    rate_limit(&state, &req).await?;
    let view = service::open_link(&state, &token).await?;
    let bytes = service::pdf_bytes(&state, &view.quote).await?;
    let mut response = pdf_response(&view.quote, bytes);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::forwarded_client;
    use actix_web::test::TestRequest;

    #[test]
    fn the_proxys_own_entry_counts_not_what_the_client_sent() {
        let req = TestRequest::default()
            .insert_header(("forwarded", "for=203.0.113.9"))
            .insert_header(("x-forwarded-for", "198.51.100.7, 192.0.2.44"))
            .to_http_request();
        assert_eq!(
            forwarded_client(req.headers()),
            Some("192.0.2.44".parse().unwrap())
        );
        let req = TestRequest::default()
            .append_header(("x-forwarded-for", "198.51.100.7"))
            .append_header(("x-forwarded-for", "2001:db8::5"))
            .to_http_request();
        assert_eq!(
            forwarded_client(req.headers()),
            Some("2001:db8::5".parse().unwrap())
        );
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "not an address"))
            .to_http_request();
        assert_eq!(forwarded_client(req.headers()), None);
    }
}
