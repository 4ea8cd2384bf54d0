//! The outbox worker: sends queued chat-robot messages, retrying with backoff, safe with any
//! number of instances on one database.
//!
//! Each pass lists due rows, then claims each with a compare-and-set lease (`db::outbox::claim`):
//! exactly one worker owns an attempt. On the wire delivery is at-least-once — a worker can
//! crash after the receiver accepted but before `delivered_at` is written, and the row is sent
//! again when the lease runs out — so every request carries `X-Fieldproof-Delivery: <outbox id>`
//! for receivers that want to drop repeats. A delivered row is never sent again.
//!
//! Webhook URLs carry the robot's token and secrets sign requests: neither is ever logged or
//! stored in `last_error` (reqwest errors are stripped of their URL).

use crate::config::Settings;
use crate::db::{self, entities::outbox as row, outbox, team_webhooks};
use crate::services::chat_robots::{self, Flavor, RobotMessage};
use anyhow::Context;
use futures_util::StreamExt;
use rand::Rng;
use sea_orm::{DatabaseConnection, DbErr};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Header naming the outbox row, the same on every retry of one message.
pub const DELIVERY_HEADER: &str = "X-Fieldproof-Delivery";

/// Rows claimed per pass, and sent at once (one slow robot must not hold up the others).
const BATCH: u64 = 32;
const CONCURRENCY: usize = 8;

/// How long a robot that said "too many messages" is left alone by every instance
/// (`team_webhooks.paused_until`): the vendors count per minute (WeCom and DingTalk 20, Feishu
/// 100); a random extra of up to half of it keeps instances from coming back in step.
const THROTTLE_PAUSE: Duration = Duration::from_secs(60);
/// A message still refused for being too many this long after it was queued is given up.
const THROTTLE_GIVE_UP_AFTER: time::Duration = time::Duration::hours(24);

/// Tunables, from settings (tests shrink the delays).
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub poll_interval: Duration,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub http_timeout: Duration,
    pub public_base_url: Option<String>,
    /// The ERP's endpoint for quote events and the key that signs them.
    pub erp_webhook_url: Option<String>,
    pub erp_webhook_secret: Option<secrecy::SecretString>,
}

impl OutboxConfig {
    pub fn from_settings(s: &Settings) -> Self {
        OutboxConfig {
            poll_interval: Duration::from_millis(s.jobs_poll_ms.max(10)),
            max_attempts: s.webhook_max_attempts.max(1),
            retry_base: Duration::from_millis(s.webhook_retry_base_ms),
            retry_max: Duration::from_secs(s.webhook_retry_max_secs),
            http_timeout: Duration::from_secs(s.webhook_timeout_secs.max(1)),
            public_base_url: s.public_base_url.clone(),
            erp_webhook_url: s.erp_webhook_url.clone(),
            erp_webhook_secret: s.erp_webhook_secret.clone(),
        }
    }

    /// How long a claim lasts: longer than one request can take, so a live owner never loses
    /// its row to a second sender mid-request.
    fn lease(&self) -> Duration {
        self.http_timeout + Duration::from_secs(30)
    }
}

/// The clock the worker reads; replaceable so tests can move time forward.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub claimed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub gave_up: usize,
    /// Put back without counting an attempt: the robot asked us to slow down.
    pub deferred: usize,
}

enum Outcome {
    Delivered,
    Retry,
    GaveUp,
    Deferred,
}

pub struct OutboxWorker {
    db: DatabaseConnection,
    http: reqwest::Client,
    config: OutboxConfig,
    /// This worker's name in `lease_owner`: unique per process start.
    owner: String,
    clock: Clock,
}

impl OutboxWorker {
    pub fn new(db: DatabaseConnection, config: OutboxConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            // A redirect could carry the signed request somewhere the admin never configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fieldproof/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the webhook HTTP client")?;
        Ok(OutboxWorker {
            db,
            http,
            config,
            owner: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            clock: Arc::new(db::now),
        })
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Poll forever. Database errors are logged and the loop goes on: the next pass retries.
    pub async fn run(self) {
        tracing::info!(owner = %self.owner, "outbox worker started");
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "outbox pass failed");
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// One pass: claim what is due now and attempt it.
    pub async fn run_once(&self) -> Result<PassStats, DbErr> {
        let now = (self.clock)();
        let ids = outbox::due_ids(&self.db, now, BATCH).await?;
        // A robot paused meanwhile (below) makes its other listed rows unclaimable: `claim`
        // checks the pause as `due_ids` does.
        let outcomes: Vec<Result<Option<Outcome>, DbErr>> = futures_util::stream::iter(ids)
            .map(|id| self.claim_and_attempt(id))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut stats = PassStats::default();
        for outcome in outcomes {
            match outcome? {
                None => {}
                Some(o) => {
                    stats.claimed += 1;
                    match o {
                        Outcome::Delivered => stats.delivered += 1,
                        Outcome::Retry => stats.retried += 1,
                        Outcome::GaveUp => stats.gave_up += 1,
                        Outcome::Deferred => stats.deferred += 1,
                    }
                }
            }
        }
        Ok(stats)
    }

    async fn claim_and_attempt(&self, id: String) -> Result<Option<Outcome>, DbErr> {
        // Read the clock at claim time, not at the start of the pass: later ids of a batch wait
        // for earlier sends, and a lease measured from a stale instant could be over already.
        let now = (self.clock)();
        let lease_until = now + self.config.lease();
        let Some(claimed) = outbox::claim(&self.db, &id, &self.owner, now, lease_until).await?
        else {
            return Ok(None); // another worker got it first
        };
        let outcome = match self.send(&claimed).await {
            Ok(()) => {
                outbox::mark_delivered(&self.db, &claimed.id, (self.clock)()).await?;
                Outcome::Delivered
            }
            Err(Failure::Permanent(reason)) => {
                self.give_up(&claimed, &reason).await?;
                Outcome::GaveUp
            }
            Err(Failure::Throttled(reason)) => {
                let now = (self.clock)();
                let until = now + THROTTLE_PAUSE.mul_f64(1.0 + rand::rng().random::<f64>() / 2.0);
                team_webhooks::pause(&self.db, &claimed.target_id, until).await?;
                if now - claimed.created_at > THROTTLE_GIVE_UP_AFTER {
                    self.give_up(&claimed, &reason).await?;
                    Outcome::GaveUp
                } else {
                    // Not a failure of the message: the attempt is given back, so a backlog
                    // after downtime drains at the robot's pace instead of running out of
                    // attempts against its limit.
                    outbox::schedule_retry(
                        &self.db,
                        &claimed.id,
                        &self.owner,
                        until,
                        &reason,
                        true,
                    )
                    .await?;
                    Outcome::Deferred
                }
            }
            Err(Failure::Transient(reason)) => {
                let attempts = u32::try_from(claimed.attempts).unwrap_or(u32::MAX);
                if attempts >= self.config.max_attempts {
                    self.give_up(&claimed, &reason).await?;
                    Outcome::GaveUp
                } else {
                    let delay = retry_delay(
                        attempts,
                        self.config.retry_base,
                        self.config.retry_max,
                        rand::rng().random::<f64>(),
                    );
                    let next_at = (self.clock)() + delay;
                    tracing::info!(outbox_id = %claimed.id, webhook_id = %claimed.target_id, attempts, error = %reason, "webhook attempt failed; will retry");
                    outbox::schedule_retry(
                        &self.db,
                        &claimed.id,
                        &self.owner,
                        next_at,
                        &reason,
                        false,
                    )
                    .await?;
                    Outcome::Retry
                }
            }
        };
        let label = match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::GaveUp => "gave_up",
            Outcome::Deferred => "deferred",
        };
        metrics::counter!("fieldproof_outbox_attempts_total", "outcome" => label).increment(1);
        Ok(Some(outcome))
    }

    async fn give_up(&self, claimed: &row::Model, reason: &str) -> Result<(), DbErr> {
        tracing::warn!(outbox_id = %claimed.id, webhook_id = %claimed.target_id, attempts = claimed.attempts, error = %reason, "webhook message given up");
        outbox::give_up(&self.db, &claimed.id, &self.owner, (self.clock)(), reason).await
    }

    /// One attempt at delivering a claimed row.
    async fn send(&self, claimed: &row::Model) -> Result<(), Failure> {
        if claimed.topic == crate::services::quotes::TOPIC_ERP_QUOTE {
            return self.send_erp(claimed).await;
        }
        if claimed.topic != outbox::TOPIC_TEAM_WEBHOOK {
            return Err(Failure::Permanent(format!(
                "unknown topic {:?}",
                claimed.topic
            )));
        }
        let message: RobotMessage = serde_json::from_value(claimed.payload.clone())
            .map_err(|e| Failure::Permanent(format!("unreadable payload: {e}")))?;
        let hook = team_webhooks::find(&self.db, &claimed.target_id)
            .await
            .map_err(|e| Failure::Transient(format!("database: {e}")))?
            .filter(|h| h.active)
            .ok_or_else(|| Failure::Permanent("webhook removed or disabled".into()))?;
        let flavor: Flavor = hook
            .flavor
            .parse()
            .map_err(|e: chat_robots::UnknownFlavor| Failure::Permanent(e.to_string()))?;
        let request = chat_robots::build_request(
            flavor,
            &hook.url,
            hook.secret.as_deref(),
            &message,
            self.config.public_base_url.as_deref(),
            (self.clock)(),
        )
        .map_err(|e| Failure::Permanent(e.to_string()))?;
        let response = self
            .http
            .post(&request.url)
            .header(DELIVERY_HEADER, &claimed.id)
            .json(&request.body)
            .send()
            .await
            .map_err(|e| Failure::Transient(describe(e)))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        chat_robots::accepted(status, &body).map_err(|reason| {
            if chat_robots::throttled(status, &body) {
                Failure::Throttled(reason)
            } else {
                Failure::Transient(reason)
            }
        })
    }
}

impl OutboxWorker {
    /// A quote event to the ERP: the payload as the JSON body, signed like the callbacks we
    /// accept (`X-Fieldproof-Signature: sha256=HMAC(secret, "{timestamp}.{body}")`), so the
    /// receiver can check origin and freshness. Only a 2xx counts as delivered.
    async fn send_erp(&self, claimed: &row::Model) -> Result<(), Failure> {
        use secrecy::ExposeSecret;
        let url = self
            .config
            .erp_webhook_url
            .as_deref()
            .ok_or_else(|| Failure::Permanent("ERP webhook no longer configured".into()))?;
        let body = serde_json::to_vec(&claimed.payload)
            .map_err(|e| Failure::Permanent(format!("unreadable payload: {e}")))?;
        let timestamp = (self.clock)().unix_timestamp();
        let mut request = self
            .http
            .post(url)
            .header(DELIVERY_HEADER, &claimed.id)
            .header("content-type", "application/json")
            .header("x-fieldproof-timestamp", timestamp.to_string());
        if let Some(secret) = &self.config.erp_webhook_secret {
            let signature = crate::routes::integrations::sign(
                secret.expose_secret().as_bytes(),
                timestamp,
                &body,
            );
            request = request.header("x-fieldproof-signature", format!("sha256={signature}"));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Transient(describe(e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure::Transient(format!(
                "ERP answered HTTP {}",
                status.as_u16()
            )))
        }
    }
}

enum Failure {
    /// Worth another attempt (network, 5xx, a robot's refusal other than a rate limit).
    Transient(String),
    /// No attempt can succeed (webhook deleted, bad URL, unreadable payload).
    Permanent(String),
    /// The robot asked us to slow down (its per-minute limit): try again after a pause,
    /// without counting the attempt.
    Throttled(String),
}

/// A reqwest error as text without the URL (it holds the robot's token).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let chain = crate::telemetry::cause_chain(&anyhow::Error::from(error.without_url()));
    format!("{kind}: {chain}")
}

/// Delay before the attempt after `attempts` failures: `base · 2^(attempts-1)`, capped at
/// `max`, then "equal jitter" — a random point in the upper half — so that many messages that
/// failed together (a robot outage) do not all come back in the same instant.
/// `unit` is a random number in [0, 1).
pub fn retry_delay(attempts: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let exponent = attempts.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exponent).min(max);
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// Start the worker on the current runtime.
pub fn spawn(
    db: DatabaseConnection,
    settings: &Settings,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let worker = OutboxWorker::new(db, OutboxConfig::from_settings(settings))?;
    Ok(tokio::spawn(worker.run()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_with_jitter_and_stays_capped() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(3600);
        assert_eq!(retry_delay(1, base, max, 0.0), Duration::from_secs(5));
        assert_eq!(retry_delay(1, base, max, 1.0), Duration::from_secs(10));
        assert_eq!(retry_delay(2, base, max, 0.0), Duration::from_secs(10));
        assert_eq!(retry_delay(3, base, max, 0.5), Duration::from_secs(30));
        for attempts in [10, 20, 64, u32::MAX] {
            let d = retry_delay(attempts, base, max, 0.999);
            assert!(d <= max && d >= max / 2, "{attempts}: {d:?}");
        }
    }
}
