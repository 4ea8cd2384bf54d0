//! Quotes on a deal: drafts, issuing (system number, frozen content, PDF, customer link) and
//! the customer's decision, each one transaction with the deal row locked, the audit event and
//! the stage engine's `advance`.
//!
//! **Binding.** Once a deal has a quote, the newest revision's content hash *is* the deal's
//! `quote_hash`: price approvals name it, so editing a draft or starting a new revision changes
//! it and voids them, and a deal already past the price approval goes back to it.
//!
//! **Facts for the engine.** Issuing writes a `quote_number` record on the current node (issuing
//! is only allowed when the current node asks for a quote number, i.e. after the price was
//! approved). A customer's confirmation writes `customer_confirmation` on the current node when
//! that node asks for it; otherwise the decision is kept on the quote and carried onto the node
//! when the deal next moves forward into it ([`carry_facts`]), as long as it confirms the
//! deal's current revision. Moving *back* into such a node (a return) never carries anything:
//! whoever returned it wants the step redone.

use crate::auth::Caller;
use crate::db::entities::{deal, node_run, quote, quote_decision};
use crate::db::{self, audit, deals as deal_repo, quotes as repo};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::services::deals::{self as engine};
use crate::services::notify::{self, Notice};
use crate::services::quote_pdf;
use crate::state::AppState;
use crate::storage::BlobKey;
use fieldproof_domain::pipeline::{NodeTemplate, Requirement};
use fieldproof_domain::quote::{
    QuoteContent, QuoteLine, QuoteLineInput, QuoteTotals, compute_totals, quote_number,
};
use rand::RngCore;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Set, TransactionTrait};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use time::{Date, OffsetDateTime, UtcOffset};

pub const CURRENCY: &str = "CNY";
/// Outbox topic of ERP hand-off messages; `target_id` is the quote id.
pub const TOPIC_ERP_QUOTE: &str = "erp_quote";

/// Dates on quotes (validity, the numbering year) are China's calendar: UTC+8, no DST.
const CHINA: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

pub fn china_date(at: OffsetDateTime) -> Date {
    at.to_offset(CHINA).date()
}

/// A quote valid until a date may be confirmed until that day ends in China.
pub fn expiry_of(valid_until: Date) -> OffsetDateTime {
    let next_day = valid_until.next_day().unwrap_or(valid_until);
    next_day
        .midnight()
        .assume_offset(CHINA)
        .to_offset(UtcOffset::UTC)
}

/// Content as the client sends it.
pub struct ContentInput {
    pub lines: Vec<QuoteLineInput>,
    pub tax_rate_bp: i64,
    /// `YYYY-MM-DD`.
    pub valid_until: String,
}

/// Checked content with its amounts.
pub struct Content {
    pub lines: Vec<QuoteLine>,
    pub tax_rate_bp: i64,
    pub valid_until: Date,
    pub totals: QuoteTotals,
}

const DATE_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

pub fn format_date(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

/// Parse and price the content. The validity runs from today (China) to at most a year ahead.
pub fn parse_content(input: ContentInput, today: Date) -> ApiResult<Content> {
    let invalid = |e: fieldproof_domain::quote::QuoteError| {
        ApiError::invalid_field(e.field, e.reason, e.reason_zh)
    };
    let lines = input
        .lines
        .into_iter()
        .map(QuoteLine::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let totals = compute_totals(&lines, input.tax_rate_bp).map_err(invalid)?;
    let valid_until = Date::parse(&input.valid_until, DATE_FORMAT)
        .ok()
        .filter(|d| *d >= today && *d <= today.saturating_add(time::Duration::days(366)))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "valid_until",
                "a date YYYY-MM-DD from today to one year ahead",
                "须为今天起一年内的日期（YYYY-MM-DD）",
            )
        })?;
    Ok(Content {
        lines,
        tax_rate_bp: input.tax_rate_bp,
        valid_until,
        totals,
    })
}

pub fn lines_of(row: &quote::Model) -> Vec<QuoteLine> {
    serde_json::from_value(row.lines.clone()).unwrap_or_default()
}

fn content_of(row: &quote::Model) -> ApiResult<Content> {
    let lines = lines_of(row);
    let totals = compute_totals(&lines, row.tax_rate_bp)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored quote {} invalid: {e}", row.id)))?;
    let valid_until = Date::parse(&row.valid_until, DATE_FORMAT).map_err(ApiError::internal)?;
    Ok(Content {
        lines,
        tax_rate_bp: row.tax_rate_bp,
        valid_until,
        totals,
    })
}

fn hash_of(deal_id: &str, revision: i32, content: &Content) -> String {
    QuoteContent {
        deal_id,
        revision,
        currency: CURRENCY,
        tax_rate_bp: content.tax_rate_bp,
        valid_until: &format_date(content.valid_until),
        lines: &content.lines,
        totals: &content.totals,
    }
    .content_hash()
}

/// The deal (visible to the caller) and quote, or 404 for anything the caller may not see.
pub async fn visible_quote(
    state: &AppState,
    caller: &Caller,
    quote_id: &str,
) -> ApiResult<(quote::Model, deal::Model)> {
    let quote = repo::find(&state.db, quote_id)
        .await?
        .filter(|q| q.org_id == caller.org_id)
        .ok_or_else(ApiError::not_found)?;
    let deal = deal_repo::find_visible(&state.db, caller, &quote.deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok((quote, deal))
}

/// Lock the deal for a change by `caller` (who must be allowed to work on it).
async fn lock_for_change(
    state: &AppState,
    caller: &Caller,
    deal_id: &str,
) -> ApiResult<(
    DatabaseTransaction,
    deal::Model,
    db::templates::StoredTemplate,
)> {
    let visible = deal_repo::find_visible(&state.db, caller, deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !engine::may_work_on(caller, &visible) {
        return Err(ApiError::forbidden());
    }
    let template = engine::template_of(&state.db, &visible).await?;
    let txn = state.db.begin().await?;
    let row = deal_repo::lock(&txn, deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if row.status != engine::STATUS_OPEN {
        return Err(ApiError::new(ErrorCode::DealClosed));
    }
    Ok((txn, row, template))
}

/// Point the deal at a new quote hash (and value), voiding approvals bound to the old one.
async fn rebind(
    txn: &DatabaseTransaction,
    row: deal::Model,
    template: &db::templates::StoredTemplate,
    quote: &quote::Model,
    actor: &str,
) -> ApiResult<deal::Model> {
    if row.quote_hash == quote.content_hash && row.expected_value_fen == quote.subtotal_fen {
        return Ok(row);
    }
    let old_hash = row.quote_hash.clone();
    let peak = row.peak_value_fen.max(quote.subtotal_fen);
    let mut active: deal::ActiveModel = row.into();
    active.quote_hash = Set(quote.content_hash.clone());
    active.expected_value_fen = Set(quote.subtotal_fen);
    active.peak_value_fen = Set(peak);
    active.updated_at = Set(db::now());
    let row = deal_repo::save(txn, active).await?;
    audit::append(txn, &row.org_id, &row.id, "quote_hash_changed", Some(actor), json!({"old_quote_hash": old_hash, "quote_hash": quote.content_hash, "quote_id": quote.id, "revision": quote.revision, "expected_value_fen": quote.subtotal_fen})).await?;
    if old_hash == quote.content_hash {
        return Ok(row);
    }
    engine::void_quote_approvals(txn, row, template, "quote_changed").await
}

fn quote_row(
    row: &deal::Model,
    revision: i32,
    content: &Content,
    caller: &Caller,
    now: OffsetDateTime,
) -> ApiResult<quote::ActiveModel> {
    Ok(quote::ActiveModel {
        id: Set(db::new_id()),
        org_id: Set(row.org_id.clone()),
        deal_id: Set(row.id.clone()),
        revision: Set(revision),
        status: Set(repo::DRAFT.to_owned()),
        number: Set(None),
        number_year: Set(None),
        number_seq: Set(None),
        lines: Set(serde_json::to_value(&content.lines).map_err(ApiError::internal)?),
        currency: Set(CURRENCY.to_owned()),
        tax_rate_bp: Set(content.tax_rate_bp),
        gross_fen: Set(content.totals.gross_fen),
        discount_fen: Set(content.totals.discount_fen),
        subtotal_fen: Set(content.totals.subtotal_fen),
        tax_fen: Set(content.totals.tax_fen),
        total_fen: Set(content.totals.total_fen),
        valid_until: Set(format_date(content.valid_until)),
        expires_at: Set(expiry_of(content.valid_until)),
        content_hash: Set(hash_of(&row.id, revision, content)),
        pdf_key: Set(None),
        pdf_sha256: Set(None),
        pdf_missing_chars: Set(None),
        created_by: Set(caller.user_id.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        issued_by: Set(None),
        issued_at: Set(None),
        superseded_by: Set(None),
        decision: Set(None),
        decided_at: Set(None),
        erp_order_number: Set(None),
        erp_recorded_at: Set(None),
    })
}

/// Start the next revision with `content`. An issued previous revision is superseded at once:
/// its customer link now answers "a newer quote exists".
async fn new_revision(
    state: &AppState,
    txn: &DatabaseTransaction,
    caller: &Caller,
    row: deal::Model,
    template: &db::templates::StoredTemplate,
    previous: Option<quote::Model>,
    content: &Content,
) -> ApiResult<(quote::Model, deal::Model)> {
    // The ERP has booked an order on this quote: a new price would leave the two disagreeing.
    if let Some(ordered) = previous
        .as_ref()
        .filter(|p| p.status == repo::ISSUED && p.erp_order_number.is_some())
    {
        return Err(ApiError::new(ErrorCode::QuoteDecided).with_details(json!({
            "quote_id": ordered.id,
            "erp_order_number": ordered.erp_order_number,
        })));
    }
    let now = db::now();
    let revision = previous.as_ref().map_or(1, |p| p.revision + 1);
    let created = repo::insert(txn, quote_row(&row, revision, content, caller, now)?).await?;
    if let Some(previous) = previous
        && previous.status == repo::ISSUED
    {
        let mut active: quote::ActiveModel = previous.clone().into();
        active.status = Set(repo::SUPERSEDED.to_owned());
        active.superseded_by = Set(Some(created.id.clone()));
        active.updated_at = Set(now);
        let superseded = repo::save(txn, active).await?;
        // The ERP had this quote issued (perhaps confirmed): it is void now.
        queue_erp(state, txn, &superseded, "quote.superseded").await?;
        audit::append(txn, &row.org_id, &row.id, "quote_superseded", Some(&caller.user_id), json!({"quote_id": previous.id, "number": previous.number, "superseded_by": created.id})).await?;
    }
    audit::append(txn, &row.org_id, &row.id, "quote_drafted", Some(&caller.user_id), json!({"quote_id": created.id, "revision": revision, "content_hash": created.content_hash, "total_fen": created.total_fen})).await?;
    let row = rebind(txn, row, template, &created, &caller.user_id).await?;
    Ok((created, row))
}

/// `POST /deals/{id}/quotes`: the next revision of the deal's quote, as a draft.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    deal_id: &str,
    input: ContentInput,
) -> ApiResult<quote::Model> {
    let content = parse_content(input, china_date(db::now()))?;
    let (txn, row, template) = lock_for_change(state, caller, deal_id).await?;
    let latest = repo::latest_of_deal(&txn, &row.id).await?;
    if let Some(draft) = latest.as_ref().filter(|q| q.status == repo::DRAFT) {
        return Err(
            ApiError::new(ErrorCode::QuoteDraftExists).with_details(json!({"quote_id": draft.id}))
        );
    }
    let (created, _) = new_revision(state, &txn, caller, row, &template, latest, &content).await?;
    txn.commit().await?;
    Ok(created)
}

/// Fields of an edit; the ones left out keep their value.
pub struct Edit {
    pub lines: Option<Vec<QuoteLineInput>>,
    pub tax_rate_bp: Option<i64>,
    pub valid_until: Option<String>,
}

/// `PATCH /quotes/{id}`: a draft changes in place; an issued quote is frozen, so the edit becomes
/// a new draft revision (returned; `true` says a revision was made). An edit that changes
/// nothing returns the quote as it is.
pub async fn edit(
    state: &AppState,
    caller: &Caller,
    quote_id: &str,
    edit: Edit,
) -> ApiResult<(quote::Model, bool)> {
    let (visible, _) = visible_quote(state, caller, quote_id).await?;
    let (txn, row, template) = lock_for_change(state, caller, &visible.deal_id).await?;
    let current = repo::find(&txn, quote_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let latest = repo::latest_of_deal(&txn, &row.id).await?;
    if latest.as_ref().map(|l| &l.id) != Some(&current.id) {
        return Err(ApiError::new(ErrorCode::QuoteNotLatest)
            .with_details(json!({"latest_quote_id": latest.map(|l| l.id)})));
    }
    let old = content_of(&current)?;
    let input = ContentInput {
        lines: match edit.lines {
            Some(lines) => lines,
            None => old
                .lines
                .iter()
                .map(|l| QuoteLineInput {
                    sku: l.sku().to_owned(),
                    description: l.description().to_owned(),
                    quantity: l.quantity(),
                    unit_price_fen: l.unit_price_fen(),
                    discount_bp: l.discount_bp(),
                })
                .collect(),
        },
        tax_rate_bp: edit.tax_rate_bp.unwrap_or(old.tax_rate_bp),
        valid_until: edit
            .valid_until
            .unwrap_or_else(|| format_date(old.valid_until)),
    };
    let content = parse_content(input, china_date(db::now()))?;
    // Nothing changed (an empty edit, a retried one): the quote stays as it is. For an issued
    // quote a new revision would void the customer's link and the price approvals.
    let hash = hash_of(&row.id, current.revision, &content);
    if hash == current.content_hash {
        return Ok((current, false));
    }
    if current.status != repo::DRAFT {
        let (created, _) =
            new_revision(state, &txn, caller, row, &template, Some(current), &content).await?;
        txn.commit().await?;
        return Ok((created, true));
    }
    let mut active: quote::ActiveModel = current.into();
    active.lines = Set(serde_json::to_value(&content.lines).map_err(ApiError::internal)?);
    active.tax_rate_bp = Set(content.tax_rate_bp);
    active.gross_fen = Set(content.totals.gross_fen);
    active.discount_fen = Set(content.totals.discount_fen);
    active.subtotal_fen = Set(content.totals.subtotal_fen);
    active.tax_fen = Set(content.totals.tax_fen);
    active.total_fen = Set(content.totals.total_fen);
    active.valid_until = Set(format_date(content.valid_until));
    active.expires_at = Set(expiry_of(content.valid_until));
    active.content_hash = Set(hash);
    active.updated_at = Set(db::now());
    let updated = repo::save(&txn, active).await?;
    audit::append(&txn, &row.org_id, &row.id, "quote_edited", Some(&caller.user_id), json!({"quote_id": updated.id, "revision": updated.revision, "content_hash": updated.content_hash, "total_fen": updated.total_fen})).await?;
    rebind(&txn, row, &template, &updated, &caller.user_id).await?;
    txn.commit().await?;
    Ok((updated, false))
}

/// A fresh customer token: 256 random bits, URL-safe. Only its SHA-256 is stored.
fn new_token() -> (String, String) {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn wants(node: &NodeTemplate, pred: fn(&Requirement) -> bool) -> bool {
    node.requirements.iter().any(pred)
}

/// The deal's current step, if it is the one that asks for a quote number (where a quote is
/// issued).
fn quote_step<'a>(
    template: &'a db::templates::StoredTemplate,
    deal: &deal::Model,
) -> Option<&'a NodeTemplate> {
    deal.current_node_key
        .as_deref()
        .and_then(|key| template.definition.node(key))
        .filter(|n| wants(n, is_quote_number))
}

fn is_quote_number(r: &Requirement) -> bool {
    matches!(r, Requirement::QuoteNumber)
}

fn is_confirmation(r: &Requirement) -> bool {
    matches!(r, Requirement::CustomerConfirmation)
}

/// The result of issuing: the frozen quote and the customer's token (shown this once).
pub struct Issued {
    pub quote: quote::Model,
    pub token: String,
    pub deal: deal::Model,
}

/// What an issued quote's PDF shows besides its content: who, under which number, on which day.
#[derive(Clone, PartialEq, Eq)]
struct PdfFacts {
    seller: String,
    buyer: String,
    deal_title: String,
    number: String,
    issued_on: Date,
    revision: i32,
    content_hash: String,
}

/// A PDF rendered for `facts` and in the blob store.
struct StoredPdf {
    facts: PdfFacts,
    key: BlobKey,
    sha256: String,
    missing_chars: String,
}

/// Render the PDF of `draft` as `facts` say and store it. Content-addressed: a retry, or a
/// second render of the same facts, rewrites nothing; an issue that then fails leaves at most
/// an unreferenced PDF under `quotes/`, never a row without bytes.
async fn render_and_store(
    state: &AppState,
    font: &Arc<quote_pdf::QuoteFont>,
    draft: &quote::Model,
    facts: PdfFacts,
) -> ApiResult<StoredPdf> {
    let content = content_of(draft)?;
    let rendered = {
        let (font, facts) = (font.clone(), facts.clone());
        let issued_on = format_date(facts.issued_on);
        let valid_until = format_date(content.valid_until);
        tokio::task::spawn_blocking(move || {
            quote_pdf::render(
                &quote_pdf::QuoteDocument {
                    seller: &facts.seller,
                    buyer: &facts.buyer,
                    deal_title: &facts.deal_title,
                    number: &facts.number,
                    revision: facts.revision,
                    issued_on: &issued_on,
                    valid_until: &valid_until,
                    currency: CURRENCY,
                    tax_rate_bp: content.tax_rate_bp,
                    lines: &content.lines,
                    totals: &content.totals,
                    content_hash: &facts.content_hash,
                },
                &font,
            )
        })
        .await
        .map_err(ApiError::internal)??
    };
    if !rendered.missing_chars.is_empty() {
        tracing::warn!(quote_id = %draft.id, missing = %rendered.missing_chars, "quote PDF font lacks characters; install fonts-wqy-microhei or set FIELDPROOF_QUOTE_FONT_PATH");
    }
    let sha256 = hex::encode(Sha256::digest(&rendered.bytes));
    let key = BlobKey::parse(format!("quotes/{}/{sha256}.pdf", &sha256[..2]))?;
    state
        .blobs
        .put_bytes(&key, rendered.bytes, "application/pdf")
        .await?;
    Ok(StoredPdf {
        facts,
        key,
        sha256,
        missing_chars: rendered.missing_chars,
    })
}

/// The facts of `draft`'s PDF issued at `now` under `number`.
async fn pdf_facts<C: ConnectionTrait>(
    db: &C,
    row: &deal::Model,
    draft: &quote::Model,
    number: String,
    now: OffsetDateTime,
) -> ApiResult<PdfFacts> {
    Ok(PdfFacts {
        seller: db::orgs::find(db, &row.org_id)
            .await?
            .map(|o| o.name)
            .unwrap_or_default(),
        buyer: db::customers::find(db, &row.customer_id)
            .await?
            .map(|c| c.name)
            .unwrap_or_default(),
        deal_title: row.title.clone(),
        number,
        issued_on: china_date(now),
        revision: draft.revision,
        content_hash: draft.content_hash.clone(),
    })
}

/// `POST /quotes/{id}/issue`: freeze the draft, number it, render and store its PDF, open a
/// customer link, record the number on the current node and let the engine advance.
///
/// The PDF is rendered and stored before the transaction, for the number the org's counter will
/// most likely give: a slow blob store (S3 over a bad link) or the render never holds the deal's
/// lock or, on SQLite, the one writer connection every other write waits for. Inside, only if
/// the facts turned out different (another quote of the org numbered meanwhile, midnight in
/// China, an edit) is it rendered again there, so the PDF always shows what was committed.
pub async fn issue(state: &AppState, caller: &Caller, quote_id: &str) -> ApiResult<Issued> {
    let (visible, visible_deal) = visible_quote(state, caller, quote_id).await?;
    let font = quote_pdf::font(state.settings.quote_font_path.as_deref())?;
    // Only for an issue the transaction will most likely accept: a refused one stores nothing.
    let at_quote_step = || async {
        let template = engine::template_of(&state.reads, &visible_deal).await?;
        Ok::<_, ApiError>(quote_step(&template, &visible_deal).is_some())
    };
    let prepared = if visible.status == repo::DRAFT
        && visible_deal.status == engine::STATUS_OPEN
        && engine::may_work_on(caller, &visible_deal)
        && visible_deal.quote_hash == visible.content_hash
        && db::now() < visible.expires_at
        && at_quote_step().await?
    {
        // On the read pool: on SQLite these reads never queue behind the writer's transactions.
        // The number is the one the org's counter would give next (read, not taken).
        let now = db::now();
        let year = now.to_offset(CHINA).year();
        let next = repo::last_number(&state.reads, &visible_deal.org_id, year).await? + 1;
        let facts = pdf_facts(
            &state.reads,
            &visible_deal,
            &visible,
            quote_number(year, next),
            now,
        )
        .await?;
        Some(render_and_store(state, &font, &visible, facts).await?)
    } else {
        None
    };
    let (txn, row, template) = lock_for_change(state, caller, &visible.deal_id).await?;
    let draft = repo::find(&txn, quote_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if draft.status != repo::DRAFT {
        return Err(
            ApiError::new(ErrorCode::QuoteNotDraft).with_details(json!({"status": draft.status}))
        );
    }
    if row.quote_hash != draft.content_hash {
        return Err(ApiError::internal(anyhow::anyhow!(
            "deal {} is bound to {} but its draft quote hashes to {}",
            row.id,
            row.quote_hash,
            draft.content_hash
        )));
    }
    let node = quote_step(&template, &row)
        .ok_or_else(|| {
            ApiError::new(ErrorCode::NodeNotCurrent)
                .with_message(
                    "A quote is issued at the step that asks for a quote number, after the price is approved.",
                    "报价单须在价格审批通过后、“报价单生成”环节出具。",
                )
                .with_details(json!({"current": row.current_node_key, "needs": "quote_number"}))
        })?
        .clone();
    let now = db::now();
    if now >= draft.expires_at {
        return Err(ApiError::invalid_field(
            "valid_until",
            "the validity date has passed; edit it first",
            "有效期已过，请先修改有效期",
        ));
    }
    let year = now.to_offset(CHINA).year();
    let seq = repo::next_number(&txn, &row.org_id, year).await?;
    let number = quote_number(year, seq);
    let facts = pdf_facts(&txn, &row, &draft, number.clone(), now).await?;
    let pdf = match prepared {
        Some(pdf) if pdf.facts == facts => pdf,
        _ => render_and_store(state, &font, &draft, facts).await?,
    };
    let mut active: quote::ActiveModel = draft.into();
    active.status = Set(repo::ISSUED.to_owned());
    active.number = Set(Some(number.clone()));
    active.number_year = Set(Some(year));
    active.number_seq = Set(Some(seq));
    active.pdf_key = Set(Some(pdf.key.to_string()));
    active.pdf_sha256 = Set(Some(pdf.sha256.clone()));
    active.pdf_missing_chars = Set(Some(pdf.missing_chars.clone()).filter(|m| !m.is_empty()));
    active.issued_by = Set(Some(caller.user_id.clone()));
    active.issued_at = Set(Some(now));
    active.updated_at = Set(now);
    let issued = repo::save(&txn, active).await?;
    let (token, hash) = new_token();
    repo::insert_link(
        &txn,
        repo::NewLink {
            org_id: &issued.org_id,
            quote_id: &issued.id,
            token_hash: hash,
            created_by: &caller.user_id,
            expires_at: issued.expires_at,
        },
    )
    .await?;
    let run = deal_repo::open_run_of(&txn, &row.id, &node.key)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no open run of {}", node.key)))?;
    let fact = json!({"number": number, "quote_id": issued.id, "revision": issued.revision, "content_hash": issued.content_hash});
    deal_repo::insert_record(
        &txn,
        deal_repo::NewRecord {
            deal_id: &row.id,
            node_run_id: &run.id,
            kind: "quote_number",
            actor_id: Some(&caller.user_id),
            payload: fact.clone(),
            dedup_key: None,
        },
    )
    .await?;
    audit::append(&txn, &row.org_id, &row.id, "quote_issued", Some(&caller.user_id), json!({"node": node.key, "run": run.run_no, "fact": fact, "pdf_sha256": pdf.sha256, "total_fen": issued.total_fen})).await?;
    queue_erp(state, &txn, &issued, "quote.issued").await?;
    let deal = engine::advance(state, &txn, row, &template).await?;
    txn.commit().await?;
    metrics::counter!("fieldproof_quotes_issued_total").increment(1);
    Ok(Issued {
        quote: issued,
        token,
        deal,
    })
}

/// `POST /quotes/{id}/link`: a new customer link for an issued, undecided, unexpired quote; the
/// previous unused links stop working.
pub async fn new_link(
    state: &AppState,
    caller: &Caller,
    quote_id: &str,
) -> ApiResult<(quote::Model, String)> {
    let (visible, _) = visible_quote(state, caller, quote_id).await?;
    let (txn, _row, _) = lock_for_change(state, caller, &visible.deal_id).await?;
    let quote = repo::find(&txn, quote_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    match quote.status.as_str() {
        repo::ISSUED => {}
        repo::SUPERSEDED => return Err(ApiError::new(ErrorCode::QuoteNotLatest)),
        _ => {
            return Err(ApiError::new(ErrorCode::QuoteNotDraft)
                .with_message("Issue the quote first.", "请先出具报价单。"));
        }
    }
    if quote.decision.is_some() {
        return Err(ApiError::new(ErrorCode::QuoteDecided));
    }
    let now = db::now();
    if now >= quote.expires_at {
        return Err(ApiError::invalid_field(
            "valid_until",
            "the quote has expired; make a new revision",
            "报价已过有效期，请生成新版本",
        ));
    }
    repo::revoke_links(&txn, &quote.id, now).await?;
    let (token, hash) = new_token();
    repo::insert_link(
        &txn,
        repo::NewLink {
            org_id: &quote.org_id,
            quote_id: &quote.id,
            token_hash: hash,
            created_by: &caller.user_id,
            expires_at: quote.expires_at,
        },
    )
    .await?;
    audit::append(
        &txn,
        &quote.org_id,
        &quote.deal_id,
        "quote_link_created",
        Some(&caller.user_id),
        json!({"quote_id": quote.id}),
    )
    .await?;
    txn.commit().await?;
    Ok((quote, token))
}

async fn queue_erp(
    state: &AppState,
    txn: &DatabaseTransaction,
    quote: &quote::Model,
    event: &str,
) -> ApiResult<()> {
    if state.settings.erp_webhook_url.is_none() {
        return Ok(());
    }
    let payload = json!({
        "event": event,
        "quote_id": quote.id,
        "deal_id": quote.deal_id,
        "number": quote.number,
        "revision": quote.revision,
        "content_hash": quote.content_hash,
        "currency": quote.currency,
        "lines": quote.lines,
        "tax_rate_bp": quote.tax_rate_bp,
        "subtotal_fen": quote.subtotal_fen,
        "tax_fen": quote.tax_fen,
        "total_fen": quote.total_fen,
        "valid_until": quote.valid_until,
        "decision": quote.decision,
    });
    db::outbox::enqueue(
        txn,
        db::outbox::NewOutboxRow {
            org_id: quote.org_id.clone(),
            topic: TOPIC_ERP_QUOTE,
            target_id: quote.id.clone(),
            payload,
            dedup_key: format!("erp:{event}:{}", quote.id),
            // The ERP gets a quote's events in order: `confirmed` never before `issued`.
            sequence_key: Some(format!("erp:{}", quote.id)),
        },
    )
    .await?;
    Ok(())
}

/// What a valid customer link opens: one quote revision and the names printed on it.
pub struct CustomerView {
    pub quote: quote::Model,
    pub link_used: bool,
    pub seller: String,
    pub buyer: String,
    pub deal_title: String,
    /// The decision made through this link, if any.
    pub decision: Option<quote_decision::Model>,
}

/// Resolve a customer token. Unknown, revoked and expired tokens are all the same 404.
pub async fn open_link(state: &AppState, token: &str) -> ApiResult<CustomerView> {
    let link = find_live_link(state, token).await?;
    let quote = repo::find(&state.db, &link.quote_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let deal = deal_repo::find(&state.db, &quote.deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let seller = db::orgs::find(&state.db, &quote.org_id)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let buyer = db::customers::find(&state.db, &deal.customer_id)
        .await?
        .map(|c| c.name)
        .unwrap_or_default();
    let decision = repo::decisions_of(&state.db, &quote.id)
        .await?
        .into_iter()
        .find(|d| d.link_id == link.id);
    Ok(CustomerView {
        link_used: link.used_at.is_some(),
        quote,
        seller,
        buyer,
        deal_title: deal.title,
        decision,
    })
}

async fn find_live_link(
    state: &AppState,
    token: &str,
) -> ApiResult<crate::db::entities::quote_link::Model> {
    // Tokens are 43 URL-safe characters; anything else cannot match, so skip the lookup.
    if token.len() != 43
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::not_found());
    }
    repo::link_by_token_hash(&state.db, &token_hash(token))
        .await?
        .filter(|l| l.revoked_at.is_none() && db::now() < l.expires_at)
        .ok_or_else(ApiError::not_found)
}

/// The customer's answer and where it came from.
pub struct DecisionInput {
    pub confirm: bool,
    pub customer_name: String,
    pub customer_title: Option<String>,
    pub comment: Option<String>,
    pub wechat_openid: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `api` (mini-program) or `h5` (the web page).
    pub channel: &'static str,
}

fn parse_decision(input: &mut DecisionInput) -> ApiResult<()> {
    let name = input.customer_name.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(ApiError::invalid_field(
            "customer_name",
            "1-50 characters",
            "请填写姓名（1-50 个字）",
        ));
    }
    input.customer_name = name.to_owned();
    input.customer_title = input
        .customer_title
        .take()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if input
        .customer_title
        .as_ref()
        .is_some_and(|t| t.chars().count() > 50)
    {
        return Err(ApiError::invalid_field(
            "customer_title",
            "at most 50 characters",
            "职务最多 50 个字",
        ));
    }
    input.comment = input
        .comment
        .take()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if input
        .comment
        .as_ref()
        .is_some_and(|t| t.chars().count() > 1000)
    {
        return Err(ApiError::invalid_field(
            "comment",
            "at most 1000 characters",
            "备注最多 1000 个字",
        ));
    }
    if let Some(openid) = &input.wechat_openid
        && (openid.is_empty()
            || openid.len() > 128
            || !openid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(ApiError::invalid_field(
            "openid",
            "a WeChat openid (letters, digits, - and _)",
            "须为微信 openid（字母、数字、- 和 _）",
        ));
    }
    input.user_agent = input
        .user_agent
        .take()
        .map(|ua| ua.chars().take(512).collect());
    Ok(())
}

/// The customer confirms or declines through a link. Single use: the link is spent in the same
/// transaction as the decision, so a replay (or a race of two taps) finds it spent: 404.
pub async fn decide(
    state: &AppState,
    token: &str,
    mut input: DecisionInput,
) -> ApiResult<quote::Model> {
    let link = find_live_link(state, token).await?;
    if link.used_at.is_some() {
        return Err(ApiError::not_found());
    }
    parse_decision(&mut input)?;
    let peek = repo::find(&state.db, &link.quote_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let txn = state.db.begin().await?;
    let row = deal_repo::lock(&txn, &peek.deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let quote = repo::find(&txn, &link.quote_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if quote.status == repo::SUPERSEDED {
        return Err(ApiError::new(ErrorCode::QuoteSuperseded));
    }
    if quote.status != repo::ISSUED || quote.decision.is_some() {
        return Err(ApiError::not_found());
    }
    let now = db::now();
    if !repo::spend_link(&txn, &link.id, now).await? {
        return Err(ApiError::not_found());
    }
    let decision = if input.confirm {
        repo::CONFIRMED
    } else {
        repo::DECLINED
    };
    let recorded = repo::insert_decision(
        &txn,
        quote_decision::ActiveModel {
            id: Set(db::new_id()),
            org_id: Set(quote.org_id.clone()),
            quote_id: Set(quote.id.clone()),
            link_id: Set(link.id.clone()),
            decision: Set(decision.to_owned()),
            content_hash: Set(quote.content_hash.clone()),
            customer_name: Set(input.customer_name.clone()),
            customer_title: Set(input.customer_title.clone()),
            comment: Set(input.comment.clone()),
            wechat_openid: Set(input.wechat_openid.clone()),
            ip: Set(input.ip.clone()),
            user_agent: Set(input.user_agent.clone()),
            channel: Set(input.channel.to_owned()),
            created_at: Set(now),
        },
    )
    .await?;
    let mut active: quote::ActiveModel = quote.clone().into();
    active.decision = Set(Some(decision.to_owned()));
    active.decided_at = Set(Some(now));
    active.updated_at = Set(now);
    let quote = repo::save(&txn, active).await?;
    let evidence = decision_evidence(&quote, &recorded);
    audit::append(
        &txn,
        &row.org_id,
        &row.id,
        if input.confirm {
            "quote_confirmed_by_customer"
        } else {
            "quote_declined_by_customer"
        },
        None,
        evidence.clone(),
    )
    .await?;
    let (title_en, title_zh) = if input.confirm {
        ("Customer confirmed the quote", "客户已确认报价")
    } else {
        ("Customer declined the quote", "客户拒绝了报价")
    };
    notify::notify(
        &txn,
        Notice {
            org_id: row.org_id.clone(),
            recipients: vec![row.owner_id.clone()],
            team_id: None,
            kind: format!("quote_{decision}"),
            title_en: title_en.into(),
            title_zh: title_zh.into(),
            body_en: format!(
                "{} ({}) on {}",
                quote.number.clone().unwrap_or_default(),
                recorded.customer_name,
                row.title
            ),
            body_zh: format!(
                "{}（{}）：{}",
                quote.number.clone().unwrap_or_default(),
                recorded.customer_name,
                row.title
            ),
            link: Some(format!("/api/v1/quotes/{}", quote.id)),
            dedup_key: Some(format!("quote_decision:{}", quote.id)),
        },
    )
    .await?;
    if input.confirm {
        queue_erp(state, &txn, &quote, "quote.confirmed").await?;
        let template = engine::template_of(&txn, &row).await?;
        let current = row
            .current_node_key
            .as_deref()
            .and_then(|k| template.definition.node(k))
            .filter(|n| wants(n, is_confirmation))
            .cloned();
        // Counts only for the revision the deal is bound to (it is, unless superseded above).
        if let Some(node) = current
            && row.quote_hash == quote.content_hash
            && row.status == engine::STATUS_OPEN
        {
            let run = deal_repo::open_run_of(&txn, &row.id, &node.key)
                .await?
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no open run")))?;
            record_confirmation(&txn, &row, &run, evidence).await?;
            engine::advance(state, &txn, row, &template).await?;
        }
    }
    txn.commit().await?;
    Ok(quote)
}

fn decision_evidence(quote: &quote::Model, d: &quote_decision::Model) -> serde_json::Value {
    json!({
        "quote_id": quote.id,
        "number": quote.number,
        "revision": quote.revision,
        "content_hash": d.content_hash,
        "decision_id": d.id,
        "decision": d.decision,
        "link_id": d.link_id,
        "customer_name": d.customer_name,
        "customer_title": d.customer_title,
        "comment": d.comment,
        "wechat_openid": d.wechat_openid,
        "ip": d.ip,
        "user_agent": d.user_agent,
        "channel": d.channel,
        "at": d.created_at.unix_timestamp(),
    })
}

async fn record_confirmation(
    txn: &DatabaseTransaction,
    row: &deal::Model,
    run: &node_run::Model,
    evidence: serde_json::Value,
) -> ApiResult<()> {
    deal_repo::insert_record(
        txn,
        deal_repo::NewRecord {
            deal_id: &row.id,
            node_run_id: &run.id,
            kind: "customer_confirmation",
            actor_id: None,
            payload: evidence.clone(),
            dedup_key: None,
        },
    )
    .await?;
    audit::append(
        txn,
        &row.org_id,
        &row.id,
        "customer_confirmation",
        None,
        json!({"node": run.node_key, "run": run.run_no, "fact": evidence}),
    )
    .await?;
    Ok(())
}

/// Called by the engine when a deal moves *forward* into `node`: a quote number or customer
/// confirmation already made for the deal's current revision counts on the new run.
pub async fn carry_facts(
    txn: &DatabaseTransaction,
    row: &deal::Model,
    node: &NodeTemplate,
    run: &node_run::Model,
) -> ApiResult<()> {
    let (number, confirmation) = (wants(node, is_quote_number), wants(node, is_confirmation));
    if !number && !confirmation {
        return Ok(());
    }
    let Some(quote) = repo::latest_of_deal(txn, &row.id).await? else {
        return Ok(());
    };
    if quote.status != repo::ISSUED || quote.content_hash != row.quote_hash {
        return Ok(());
    }
    if number {
        let fact = json!({"number": quote.number, "quote_id": quote.id, "revision": quote.revision, "content_hash": quote.content_hash, "carried": true});
        deal_repo::insert_record(
            txn,
            deal_repo::NewRecord {
                deal_id: &row.id,
                node_run_id: &run.id,
                kind: "quote_number",
                actor_id: None,
                payload: fact.clone(),
                dedup_key: None,
            },
        )
        .await?;
        audit::append(
            txn,
            &row.org_id,
            &row.id,
            "quote_number",
            None,
            json!({"node": run.node_key, "run": run.run_no, "fact": fact}),
        )
        .await?;
    }
    if confirmation && quote.decision.as_deref() == Some(repo::CONFIRMED) {
        let decisions = repo::decisions_of(txn, &quote.id).await?;
        if let Some(d) = decisions.iter().find(|d| d.decision == repo::CONFIRMED) {
            let mut evidence = decision_evidence(&quote, d);
            evidence["carried"] = json!(true);
            record_confirmation(txn, row, run, evidence).await?;
        }
    }
    Ok(())
}

/// The ERP's order number for a confirmed quote. The same number again is a no-op (the ERP may
/// retry); a different one is a conflict.
pub async fn record_erp_order(
    state: &AppState,
    quote_id: &str,
    order_number: &str,
) -> ApiResult<quote::Model> {
    let order_number = order_number.trim();
    if order_number.is_empty() || order_number.chars().count() > 64 {
        return Err(ApiError::invalid_field(
            "order_number",
            "1-64 characters",
            "订单号须为 1-64 个字符",
        ));
    }
    let peek = repo::find(&state.db, quote_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let txn = state.db.begin().await?;
    let row = deal_repo::lock(&txn, &peek.deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let quote = repo::find(&txn, quote_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if quote.decision.as_deref() != Some(repo::CONFIRMED) {
        return Err(ApiError::new(ErrorCode::QuoteNotConfirmed));
    }
    if quote.status == repo::SUPERSEDED {
        return Err(ApiError::new(ErrorCode::QuoteSuperseded)
            .with_details(json!({"superseded_by": quote.superseded_by})));
    }
    match quote.erp_order_number.as_deref() {
        Some(existing) if existing == order_number => return Ok(quote),
        Some(existing) => {
            return Err(ApiError::new(ErrorCode::ErpOrderConflict)
                .with_details(json!({"recorded": existing})));
        }
        None => {}
    }
    let now = db::now();
    let mut active: quote::ActiveModel = quote.into();
    active.erp_order_number = Set(Some(order_number.to_owned()));
    active.erp_recorded_at = Set(Some(now));
    active.updated_at = Set(now);
    let quote = repo::save(&txn, active).await?;
    audit::append(
        &txn,
        &row.org_id,
        &row.id,
        "erp_order_recorded",
        None,
        json!({"quote_id": quote.id, "number": quote.number, "order_number": order_number}),
    )
    .await?;
    txn.commit().await?;
    Ok(quote)
}

/// The stored PDF of an issued quote.
pub async fn pdf_bytes(state: &AppState, quote: &quote::Model) -> ApiResult<Vec<u8>> {
    let key = quote.pdf_key.clone().ok_or_else(|| {
        ApiError::not_found().with_message("The quote has not been issued.", "报价单尚未出具。")
    })?;
    Ok(state.blobs.get(&BlobKey::parse(key)?).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_expires_when_its_last_day_ends_in_china() {
        let date = Date::from_calendar_date(2026, time::Month::December, 31).unwrap();
        let expiry = expiry_of(date);
        // 2027-01-01 00:00 +08:00 is 2026-12-31 16:00 UTC.
        assert_eq!(expiry, time::macros::datetime!(2026-12-31 16:00 UTC));
        assert_eq!(
            china_date(time::macros::datetime!(2026-12-31 15:59 UTC)),
            date
        );
    }

    #[test]
    fn tokens_are_long_random_and_only_their_hash_is_kept() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(ha, token_hash(&a));
        assert_ne!(ha, a);
    }
}
