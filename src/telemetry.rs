//! Structured logs through `tracing`: human-readable by default, JSON lines for log shippers.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber once; later calls (tests) are no-ops.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Format an error with its whole cause chain, for logs only (never for clients).
pub fn cause_chain(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(|cause| cause.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
