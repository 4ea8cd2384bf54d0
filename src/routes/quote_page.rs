//! `/q/{token}`: the customer's H5 page, for a quote link opened in WeChat's built-in browser or
//! any phone browser. Server-rendered Chinese HTML with inline CSS and no script or external
//! asset (no CDN: it must work on any network), posting an ordinary form to the same service
//! as the JSON API. Every unusable token gets the same neutral "invalid or expired" page.

use super::quotes::{DecisionRequest, customer_view, decision_input, rate_limit};
use crate::error::{ApiError, ErrorCode};
use crate::services::quote_pdf::BUNDLED_FONT_GZ;
use crate::services::quotes as service;
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use fieldproof_domain::quote::format_yuan;
use serde::Deserialize;
use std::fmt::Write;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().limit(16 * 1024))
        .service(font)
        .service(page)
        .service(submit);
}

/// HTML-escape text for element content and quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
@font-face{font-family:"FPQuote";src:local("PingFang SC"),local("Microsoft YaHei"),local("Noto Sans CJK SC"),local("Source Han Sans SC"),local("WenQuanYi Micro Hei"),url(/q/assets/cjk.ttf) format("truetype");}
*{box-sizing:border-box}
body{margin:0;background:#f2f4f7;color:#1d2129;font:15px/1.5 -apple-system,BlinkMacSystemFont,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC","FPQuote",sans-serif}
main{max-width:560px;margin:0 auto;padding:16px 14px 32px}
header{background:linear-gradient(135deg,#1f5fd1,#3d8bfd);color:#fff;border-radius:14px;padding:18px 16px}
header .seller{opacity:.85;font-size:13px}
header h1{margin:4px 0 2px;font-size:22px}
header .no{font-size:14px;opacity:.95}
.card{background:#fff;border-radius:12px;margin-top:12px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.04)}
dl{margin:0;display:grid;grid-template-columns:5em 1fr;row-gap:6px}
dt{color:#86909c}dd{margin:0}
.line{display:grid;grid-template-columns:1fr auto;gap:2px 12px;padding:10px 0;border-bottom:1px solid #eef0f3}
.line .desc{font-weight:600}.line .meta{grid-column:1;color:#86909c;font-size:13px}
.line .amt{grid-row:1/3;grid-column:2;align-self:center;font-variant-numeric:tabular-nums}
.sum{display:flex;justify-content:space-between;padding-top:8px;color:#4e5969;font-variant-numeric:tabular-nums}
.total{font-size:20px;font-weight:700;color:#1d2129;border-top:1px solid #e5e6eb;margin-top:8px;padding-top:10px}
.pdf{display:block;text-align:center;margin-top:12px;color:#1f5fd1;text-decoration:none}
label{display:block;margin:10px 0 4px;color:#4e5969;font-size:14px}
input,textarea{width:100%;font:inherit;padding:10px 12px;border:1px solid #c9cdd4;border-radius:8px;background:#fff}
textarea{min-height:64px}
.buttons{display:grid;grid-template-columns:2fr 1fr;gap:10px;margin-top:16px}
button{font:inherit;font-size:17px;padding:12px;border-radius:10px;border:0}
.confirm{background:#00b42a;color:#fff;font-weight:600}.decline{background:#f2f3f5;color:#4e5969}
.banner{border-radius:12px;margin-top:12px;padding:14px 16px}
.ok{background:#e8ffea;color:#00691b}.warn{background:#fff7e8;color:#8a5200}.err{background:#ffece8;color:#a1151e}
footer{margin-top:18px;color:#a9aeb8;font-size:12px;text-align:center;word-break:break-all}
"#;

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1,viewport-fit=cover\">\
         <meta name=\"robots\" content=\"noindex\"><meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        esc(title)
    )
}

fn html(status: StatusCode, text: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // The page carries a capability token: no caching by proxies, no framing by others.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; font-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ))
        .body(text)
}

/// The one page every unusable link gets: nothing says whether the token ever existed.
fn not_found_page() -> HttpResponse {
    html(
        StatusCode::NOT_FOUND,
        document(
            "链接无效",
            "<div class=\"banner warn\"><b>链接无效或已过期</b><br>请联系您的销售人员重新获取报价确认链接。</div>",
        ),
    )
}

fn error_page(error: ApiError) -> HttpResponse {
    match error.code {
        ErrorCode::NotFound => not_found_page(),
        ErrorCode::RateLimited => {
            let mut response = html(
                StatusCode::TOO_MANY_REQUESTS,
                document(
                    "请稍后再试",
                    "<div class=\"banner warn\">请求过于频繁，请稍后再试。</div>",
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
            response
        }
        _ => {
            let body = error.body();
            html(
                error.code.status(),
                document(
                    "报价确认",
                    &format!("<div class=\"banner err\">{}</div>", esc(&body.message_zh)),
                ),
            )
        }
    }
}

/// A line discount as shown: "优惠 15%" rather than "八五折", which readers parse differently.
fn percent(bp: i64) -> String {
    if bp % 100 == 0 {
        format!("优惠 {}%", bp / 100)
    } else {
        format!("优惠 {}.{:02}%", bp / 100, bp % 100)
    }
}

fn china_time(at: time::OffsetDateTime) -> String {
    let local = at.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC));
    format!(
        "{} {:02}:{:02}",
        service::format_date(local.date()),
        local.hour(),
        local.minute()
    )
}

fn render(view: super::quotes::CustomerQuoteView, token: &str, notice: Option<&str>) -> String {
    let number = view.number.clone().unwrap_or_default();
    let mut body = String::new();
    let _ = write!(
        body,
        "<header><div class=\"seller\">{}</div><h1>报价确认</h1><div class=\"no\">报价单号 {} · 第 {} 版</div></header>",
        esc(&view.seller),
        esc(&number),
        view.revision
    );
    let _ = write!(
        body,
        "<section class=\"card\"><dl><dt>客户</dt><dd>{}</dd><dt>项目</dt><dd>{}</dd><dt>有效期至</dt><dd>{}</dd><dt>币种</dt><dd>人民币（元）</dd></dl></section>",
        esc(&view.customer),
        esc(&view.project),
        esc(&view.valid_until)
    );
    body.push_str("<section class=\"card\">");
    for line in &view.lines {
        let discount = if line.discount_bp > 0 {
            format!(" · {}", percent(line.discount_bp))
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<div class=\"line\"><div class=\"desc\">{}</div><div class=\"meta\">{} · {} × ¥{}{}</div><div class=\"amt\">¥{}</div></div>",
            esc(&line.description),
            esc(&line.sku),
            line.quantity,
            format_yuan(line.unit_price_fen),
            discount,
            format_yuan(line.net_fen)
        );
    }
    let tax = if view.tax_rate_bp % 100 == 0 {
        format!("{}%", view.tax_rate_bp / 100)
    } else {
        format!("{}.{:02}%", view.tax_rate_bp / 100, view.tax_rate_bp % 100)
    };
    let _ = write!(
        body,
        "<div class=\"sum\"><span>小计（不含税）</span><span>¥{}</span></div><div class=\"sum\"><span>税额（{}）</span><span>¥{}</span></div><div class=\"sum total\"><span>总计</span><span>¥{}</span></div></section>",
        format_yuan(view.subtotal_fen),
        tax,
        format_yuan(view.tax_fen),
        format_yuan(view.total_fen)
    );
    let _ = write!(
        body,
        "<a class=\"pdf\" href=\"/api/v1/public/quotes/{}/pdf\">查看 PDF 报价单</a>",
        esc(token)
    );
    if let Some(notice) = notice {
        let _ = write!(body, "<div class=\"banner err\">{}</div>", esc(notice));
    }
    match (view.state, &view.decision) {
        ("confirmed", Some(d)) => {
            let _ = write!(
                body,
                "<div class=\"banner ok\" id=\"result\"><b>已确认</b><br>{} 于 {} 确认了本报价，谢谢！</div>",
                esc(&d.customer_name),
                china_time(d.decided_at)
            );
        }
        ("declined", Some(d)) => {
            let _ = write!(
                body,
                "<div class=\"banner warn\" id=\"result\"><b>已拒绝</b><br>{} 于 {} 拒绝了本报价，销售人员会与您联系。</div>",
                esc(&d.customer_name),
                china_time(d.decided_at)
            );
        }
        ("superseded", _) => {
            body.push_str("<div class=\"banner warn\" id=\"result\"><b>已有更新的报价</b><br>本报价已作废，不能再确认。请联系您的销售人员获取最新报价的链接。</div>");
        }
        ("open", _) => {
            let _ = write!(
                body,
                "<form class=\"card\" method=\"post\" action=\"/q/{}\">\
                 <label for=\"name\">您的姓名（必填）</label><input id=\"name\" name=\"customer_name\" maxlength=\"50\" required autocomplete=\"name\">\
                 <label for=\"title\">职务</label><input id=\"title\" name=\"customer_title\" maxlength=\"50\" autocomplete=\"organization-title\">\
                 <label for=\"comment\">备注</label><textarea id=\"comment\" name=\"comment\" maxlength=\"1000\"></textarea>\
                 <div class=\"buttons\"><button class=\"confirm\" name=\"action\" value=\"confirm\" type=\"submit\">确认</button>\
                 <button class=\"decline\" name=\"action\" value=\"decline\" type=\"submit\">拒绝</button></div></form>",
                esc(token)
            );
        }
        _ => {}
    }
    let _ = write!(
        body,
        "<footer>内容校验码 {}</footer>",
        esc(&view.content_hash)
    );
    document(&format!("报价确认 {number}"), &body)
}

/// The quote page behind a customer link.
#[get("/q/{token}")]
async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    if let Err(e) = rate_limit(&state, &req).await {
        return error_page(e);
    }
    match service::open_link(&state, &token).await {
        Ok(view) => html(
            StatusCode::OK,
            render(customer_view(view, &token), &token, None),
        ),
        Err(e) => error_page(e),
    }
}

#[derive(Deserialize)]
struct DecisionForm {
    action: Option<String>,
    customer_name: Option<String>,
    customer_title: Option<String>,
    comment: Option<String>,
}

/// The form's post: confirm or decline, then the page again showing the outcome.
#[post("/q/{token}")]
async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> HttpResponse {
    if let Err(e) = rate_limit(&state, &req).await {
        return error_page(e);
    }
    let form = form.into_inner();
    let confirm = match form.action.as_deref() {
        Some("confirm") => true,
        Some("decline") => false,
        _ => return error_page(ApiError::new(ErrorCode::BadRequest)),
    };
    let request = DecisionRequest {
        customer_name: form.customer_name.unwrap_or_default(),
        customer_title: form.customer_title,
        comment: form.comment,
        openid: None,
    };
    let input = decision_input(&state, &req, request, confirm, "h5");
    let outcome = service::decide(&state, &token, input).await;
    let notice = match outcome {
        Ok(_) => None,
        // A refused name and the like: show the page again with the reason.
        Err(e) if e.code == ErrorCode::ValidationFailed => Some(e.body().message_zh),
        Err(e) => return error_page(e),
    };
    match service::open_link(&state, &token).await {
        Ok(view) => {
            let status = if notice.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            html(
                status,
                render(customer_view(view, &token), &token, notice.as_deref()),
            )
        }
        Err(e) => error_page(e),
    }
}

/// The bundled CJK font for phones without one the page names (the `@font-face` lists local
/// fonts first, so most phones never download it). Sent gzipped as stored.
#[get("/q/assets/cjk.ttf")]
async fn font() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("font/ttf")
        .insert_header((header::CONTENT_ENCODING, "gzip"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(BUNDLED_FONT_GZ)
}
