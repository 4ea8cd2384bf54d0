//! Building the application: the same code path for `serve`, `demo` and the tests (which bind
//! port 0 and read back the port they got).

use crate::auth::jwt::AccessTokens;
use crate::config::Settings;
use crate::error::{self, ApiError, ErrorCode};
use crate::jobs::Jobs;
use crate::state::AppState;
use crate::storage::{self, BlobStore};
use crate::{db, openapi, ops, routes, web as console};
use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use sea_orm::DatabaseConnection;
use std::net::TcpListener;
use std::sync::Arc;

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    /// Background jobs (`FIELDPROOF_JOBS`); they stop when the application is dropped.
    jobs: Jobs,
}

impl Application {
    /// Connect, migrate if configured, open the blob store, bind.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let db = db::connect(&settings).await?;
        if settings.migrate_on_start {
            db::migrate_up(&db).await?;
        }
        let blobs = storage::from_settings(&settings)?;
        // An unreachable store does not stop the process: state lives in S3 and the database,
        // so it may come back; until then /readyz says 503 and uploads answer 503.
        match blobs.check().await {
            Ok(()) => tracing::info!(store = blobs.kind(), "blob store ready"),
            Err(e) => {
                tracing::warn!(store = blobs.kind(), error = %crate::telemetry::cause_chain(&anyhow::Error::from(e)), "blob store not ready")
            }
        }
        Application::build_with_parts(settings, db, blobs).await
    }

    /// Build on an open connection (the blob store comes from `settings`, not yet checked) and
    /// start the background jobs the settings enable; must be called inside a tokio runtime.
    pub async fn build_with_db(
        settings: Settings,
        db: DatabaseConnection,
    ) -> anyhow::Result<Application> {
        let blobs = storage::from_settings(&settings)?;
        Application::build_with_parts(settings, db, blobs).await
    }

    pub async fn build_with_parts(
        settings: Settings,
        db: DatabaseConnection,
        blobs: Arc<dyn BlobStore>,
    ) -> anyhow::Result<Application> {
        let key = settings.jwt_key()?;
        let reads = db::connect_reader(&settings, &db).await?;
        let dispatcher = db::connect_dispatcher(&settings, &db).await?;
        // Where the dispatcher checks the accounts of a batch: beside SQLite's one writer, on
        // PostgreSQL on connections of its own (not queued behind the requests, nor behind
        // its transactions; they also read the rep loads).
        let checks = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => db::connect_dispatcher_reads(&settings).await?,
            _ => reads.clone(),
        };
        let state = AppState {
            reads,
            lead_dispatcher: crate::services::leads::dispatch::Dispatcher::start(
                dispatcher,
                checks,
                std::time::Duration::from_millis(settings.lead_batch_gather_ms),
            ),
            db,
            blobs,
            bytes_locks: Arc::default(),
            tokens: AccessTokens::new(&key, settings.access_token_ttl_secs),
            verifier: crate::services::evidence::verifier::Verifier::per_core()
                .context("starting the verification threads")?,
            url_signer: crate::state::UrlSigner::new(&key),
            limit_windows: Arc::default(),
            settings: Arc::new(settings),
        };
        let listener = TcpListener::bind((state.settings.host.as_str(), state.settings.port))
            .with_context(|| format!("binding {}:{}", state.settings.host, state.settings.port))?;
        let port = listener.local_addr()?.port();
        let server = run(listener, state.clone())?;
        let jobs = Jobs::start(&state)?;
        Ok(Application {
            port,
            server,
            state,
            jobs,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application { server, jobs, .. } = self;
        let result = server.await;
        drop(jobs);
        result
    }
}

fn run(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    let max_json = state.settings.max_json_bytes;
    let workers = state.settings.workers;
    let data = web::Data::new(state);
    // Install the recorder before the first request so no early metric is lost.
    ops::metrics_handle();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(error::json_config(max_json))
            .app_data(error::query_config())
            .app_data(error::path_config())
            .wrap_fn(ops::track)
            .configure(routes::health::configure)
            .configure(routes::configure_api)
            .configure(console::configure)
            .configure(routes::quote_page::configure)
            .service(openapi::docs())
            .default_service(web::to(unknown_route))
    });
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.listen(listener)?.run())
}

async fn unknown_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::RouteNotFound))
}
