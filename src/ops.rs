//! Operations surface shared by every route: request ids, access logs and Prometheus metrics.

use actix_web::Error;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The process-wide metrics recorder (one per process, shared by every app built in it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; metrics then go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A client-supplied request id is kept when it is short and printable; otherwise one is made.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Path prefixes whose next segment is a bearer secret: the customer's quote link. Whoever
/// holds it can confirm the quote, so access logs show `{token}` in its place.
const SECRET_SEGMENT_AFTER: [&str; 2] = ["/q/", "/api/v1/public/quotes/"];

/// `path` as the access log shows it: a customer's quote token replaced by `{token}`.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in SECRET_SEGMENT_AFTER {
        if let Some(rest) = path.strip_prefix(prefix) {
            let (token, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            if token.is_empty() || (prefix == "/q/" && token == "assets") {
                break;
            }
            return format!("{prefix}{{token}}{tail}").into();
        }
    }
    path.into()
}

/// Middleware: one span per request carrying its id, an access-log line, request metrics, and
/// the id echoed in `x-request-id`.
pub fn track<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
{
    let id = request_id(&req);
    let method = req.method().to_string();
    let span = tracing::info_span!("http", request_id = %id, method = %method, path = %loggable_path(req.path()));
    let started = Instant::now();
    let call = {
        let _entered = span.enter();
        srv.call(req)
    };
    async move {
        let mut res = call.await?;
        let status = res.status().as_u16();
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let elapsed = started.elapsed().as_secs_f64();
        metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
            .increment(1);
        metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
            .record(elapsed);
        tracing::info!(status, latency_ms = (elapsed * 1000.0).round(), "request");
        if let Ok(value) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(REQUEST_ID, value);
        }
        Ok(res)
    }
    .instrument(span.clone())
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn quote_tokens_never_reach_the_access_log() {
        let token = "k3Jx9_fQ2mVb7TzW1aLp4sYd8RhE6uNc0oGiBtXyZqA";
        for (path, logged) in [
            (format!("/q/{token}"), "/q/{token}"),
            (
                format!("/api/v1/public/quotes/{token}/confirm"),
                "/api/v1/public/quotes/{token}/confirm",
            ),
            (
                format!("/api/v1/public/quotes/{token}/pdf"),
                "/api/v1/public/quotes/{token}/pdf",
            ),
            ("/q/assets/cjk.ttf".to_owned(), "/q/assets/cjk.ttf"),
            ("/api/v1/deals/abc".to_owned(), "/api/v1/deals/abc"),
        ] {
            assert_eq!(loggable_path(&path), logged);
        }
    }
}
