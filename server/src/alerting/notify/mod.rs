//! Delivery of alert notifications to a user's channels (Telegram, webhook).
//!
//! Every channel of every event is its own tokio task, so a slow or dead
//! channel delays nothing else. An attempt is a blocking `ureq` call on the
//! blocking pool, bounded by a semaphore ([`MAX_CONCURRENT_ATTEMPTS`]); the
//! waits between retries hold no permit. 5xx, 429, timeouts and connection
//! errors are retried, each retry after a random wait of up to its configured
//! delay (full jitter, [`storage::model::retry`], so channels that failed
//! together do not retry together); other 4xx answers fail at once (retrying
//! a bad chat id does not help). The final outcome of each
//! channel is written to the event in the history.
//!
//! Every request goes through the [outbound guard](crate::outbound): a
//! non-admin's webhook may not reach loopback, link-local, private (unless
//! allowed) or the server's own address, checked on the addresses it resolves
//! to at send time. Errors are recorded as fixed phrases (`HTTP 403`,
//! `connection refused`, `timeout`, `refused by the outbound guard: …`):
//! nothing the remote end sent is kept or shown.

pub mod telegram;
pub mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use storage::catalog::{AlertRecord, Catalog, DeliveryRecord, RecipientRecord};
use storage::model::retry::Backoff;
use storage::model::{
    AlertMetric, AlertState, Channel, DeliveryStatus, WebhookAgent, WebhookPayload,
};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::outbound::{self, Caller, OutboundGuard};

/// HTTP attempts in flight at once, over all users and channels.
pub const MAX_CONCURRENT_ATTEMPTS: usize = 64;

/// One HTTP POST to make.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// A secret inside `url` that must not reach recorded errors or logs.
    pub redact: Option<String>,
    /// Whom the request is made for: the guard's rules follow.
    pub caller: Caller,
}

/// The outcome of one attempt.
enum Attempt {
    Sent,
    /// Worth retrying (5xx, 429, timeout, connection failure).
    Retry(String),
    /// Retrying will not help (other 4xx, invalid URL, refused by the guard).
    Fatal(String),
}

pub struct Notifier {
    /// Weak: delivery tasks may outlive the app state (tests restart it),
    /// and must not keep the catalog file open.
    catalog: Weak<Catalog>,
    runtime: Option<Handle>,
    telegram: Option<(String, String)>,
    dashboard_url: String,
    retry_delays: Vec<Duration>,
    permits: Arc<Semaphore>,
    /// Requests the guard does not restrict: the admin's webhooks and the
    /// server's own Telegram API base.
    http_admin: ureq::Agent,
    /// Requests for other users, through the guard's resolver.
    http_user: ureq::Agent,
    guard: Arc<OutboundGuard>,
    /// Alert deliveries sent and failed (after retries), for `/metrics`.
    outcomes: [AtomicU64; 2],
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("telegram", &self.telegram.is_some())
            .finish()
    }
}

impl Notifier {
    pub fn new(config: &Config, catalog: &Arc<Catalog>) -> Notifier {
        let timeout =
            Duration::from_millis(u64::try_from(config.notify_timeout_ms).unwrap_or(10_000));
        let http = || {
            ureq::Agent::config_builder()
                .timeout_global(Some(timeout))
                .http_status_as_error(false)
                // A redirect is an answer like any other non-2xx: not followed.
                .max_redirects(0)
                .user_agent(concat!("StatusMonitor/", env!("CARGO_PKG_VERSION")))
        };
        let guard = Arc::new(OutboundGuard::from_config(config));
        Notifier {
            catalog: Arc::downgrade(catalog),
            runtime: Handle::try_current().ok(),
            telegram: config
                .telegram_bot_token
                .as_ref()
                .map(|t| t.expose().to_owned())
                .filter(|t| !t.is_empty())
                .map(|t| (config.telegram_api_base.clone(), t)),
            dashboard_url: config.dashboard_url(),
            retry_delays: config
                .notify_retry_delays_ms
                .iter()
                .map(|&ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
                .collect(),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_ATTEMPTS)),
            http_admin: guard.http_agent(Caller::Admin, http()),
            http_user: guard.http_agent(Caller::User, http()),
            guard,
            outcomes: Default::default(),
        }
    }

    /// Alert deliveries (not test messages) sent and failed so far.
    pub fn delivery_counts(&self) -> (u64, u64) {
        (
            self.outcomes[0].load(Ordering::Relaxed),
            self.outcomes[1].load(Ordering::Relaxed),
        )
    }

    /// The server has a Telegram bot token.
    pub fn telegram_configured(&self) -> bool {
        self.telegram.is_some()
    }

    /// The initial delivery list of a new event for `recipient`: pending for
    /// each configured channel, skipped for the others.
    pub fn plan(&self, recipient: &RecipientRecord) -> Vec<DeliveryRecord> {
        let entry = |channel, configured: bool| DeliveryRecord {
            channel,
            status: if configured {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::Skipped
            },
            attempts: 0,
            error: (!configured).then(|| match channel {
                Channel::Telegram if self.telegram.is_none() => {
                    "the server has no Telegram bot token".to_string()
                }
                Channel::Telegram => "no Telegram chat id set".to_string(),
                Channel::Webhook => "no webhook URL set".to_string(),
            }),
        };
        vec![
            entry(
                Channel::Telegram,
                self.telegram.is_some() && recipient.telegram_chat_id.is_some(),
            ),
            entry(Channel::Webhook, recipient.webhook_url.is_some()),
        ]
    }

    /// Starts delivering `event` of `owner_id` to each pending channel of its
    /// plan; returns at once.
    pub fn dispatch(
        self: &Arc<Self>,
        owner_id: u64,
        event: &AlertRecord,
        recipient: &RecipientRecord,
    ) {
        let Some(runtime) = &self.runtime else {
            tracing::error!("no async runtime: alert notifications cannot be sent");
            return;
        };
        let text = self.message(event);
        for planned in &event.deliveries {
            if planned.status != DeliveryStatus::Pending {
                continue;
            }
            let Some(mut outgoing) = self.outgoing(planned.channel, recipient, event, &text) else {
                continue;
            };
            let this = Arc::clone(self);
            let channel = planned.channel;
            let event_id = event.id;
            runtime.spawn(async move {
                if channel == Channel::Webhook {
                    // Whether the owner is the admin now, not when it was saved.
                    outgoing.caller = this.caller_of(owner_id).await;
                }
                let result = this.deliver(channel, outgoing, true).await;
                let failed = result.status == DeliveryStatus::Failed;
                this.outcomes[usize::from(failed)].fetch_add(1, Ordering::Relaxed);
                if result.status == DeliveryStatus::Failed {
                    tracing::warn!(
                        owner_id,
                        event_id,
                        channel = ?channel,
                        error = result.error.as_deref().unwrap_or(""),
                        "alert notification failed"
                    );
                }
                let Some(catalog) = this.catalog.upgrade() else {
                    return;
                };
                let saved = tokio::task::spawn_blocking(move || {
                    catalog.set_alert_delivery(owner_id, event_id, result)
                })
                .await;
                if let Ok(Err(e)) = saved {
                    tracing::error!(error = %e, event_id, "cannot record a delivery outcome");
                }
            });
        }
    }

    /// The guard's rules for user `owner_id`: [`Caller::User`] unless the
    /// catalog says they are the admin.
    async fn caller_of(&self, owner_id: u64) -> Caller {
        let Some(catalog) = self.catalog.upgrade() else {
            return Caller::User;
        };
        let user = tokio::task::spawn_blocking(move || catalog.user(owner_id)).await;
        match user {
            Ok(Ok(Some(user))) => Caller::of(user.is_admin),
            _ => Caller::User,
        }
    }

    /// The guard every outbound request of the notifier goes through.
    pub fn outbound(&self) -> &Arc<OutboundGuard> {
        &self.guard
    }

    /// Sends a test message to each configured channel, one attempt each,
    /// and answers per channel. `caller` is the recipient's owner.
    pub async fn send_test(
        &self,
        recipient: &RecipientRecord,
        caller: Caller,
    ) -> Vec<DeliveryRecord> {
        let text = format!(
            "StatusMonitor test message: alerts will reach this chat. Dashboard: {}",
            self.dashboard_url
        );
        let event = AlertRecord {
            id: 0,
            rule_id: 0,
            rule_name: None,
            agent_id: 0,
            agent_name: "StatusMonitor".into(),
            metric: AlertMetric::CpuPct,
            label: None,
            state: AlertState::Firing,
            value: 0.0,
            threshold: 0.0,
            comparison: None,
            ts_ms: 0,
            deliveries: Vec::new(),
        };
        let mut out = Vec::new();
        for planned in self.plan(recipient) {
            if planned.status != DeliveryStatus::Pending {
                out.push(planned);
                continue;
            }
            let outgoing = self.outgoing_test(planned.channel, recipient, &event, &text);
            match outgoing {
                Some(mut o) => {
                    if planned.channel == Channel::Webhook {
                        o.caller = caller;
                    }
                    out.push(self.deliver(planned.channel, o, false).await);
                }
                None => out.push(planned),
            }
        }
        out
    }

    fn outgoing_test(
        &self,
        channel: Channel,
        recipient: &RecipientRecord,
        event: &AlertRecord,
        text: &str,
    ) -> Option<Outgoing> {
        match channel {
            Channel::Webhook => {
                let mut payload = self.payload(event, text);
                payload.event = "test".into();
                payload.metric = "test".into();
                payload.url = self.dashboard_url.clone();
                Some(webhook::post(
                    recipient.webhook_url.as_deref()?,
                    recipient.webhook_secret.as_deref(),
                    &payload,
                ))
            }
            Channel::Telegram => self.outgoing(channel, recipient, event, text),
        }
    }

    fn outgoing(
        &self,
        channel: Channel,
        recipient: &RecipientRecord,
        event: &AlertRecord,
        text: &str,
    ) -> Option<Outgoing> {
        match channel {
            Channel::Telegram => {
                let (base, token) = self.telegram.as_ref()?;
                Some(telegram::send_message(
                    base,
                    token,
                    recipient.telegram_chat_id.as_deref()?,
                    text,
                ))
            }
            Channel::Webhook => Some(webhook::post(
                recipient.webhook_url.as_deref()?,
                recipient.webhook_secret.as_deref(),
                &self.payload(event, text),
            )),
        }
    }

    fn agent_url(&self, agent_id: u64) -> String {
        if crate::checks::is_check_series(agent_id) {
            let check = agent_id - crate::checks::CHECK_SERIES_BASE;
            return format!("{}/checks/{check}", self.dashboard_url);
        }
        format!("{}/agents/{agent_id}", self.dashboard_url)
    }

    fn payload(&self, event: &AlertRecord, text: &str) -> WebhookPayload {
        WebhookPayload {
            event: event.state.as_str().to_string(),
            agent: WebhookAgent {
                id: event.agent_id,
                name: event.agent_name.clone(),
            },
            metric: event.metric.as_str().to_string(),
            label: event.label.clone(),
            value: event.value,
            threshold: event.threshold,
            comparison: event.comparison,
            ts_ms: event.ts_ms,
            url: self.agent_url(event.agent_id),
            rule_id: (event.rule_id != 0).then_some(event.rule_id),
            message: text.to_string(),
        }
    }

    /// The human text of `event`: which machine, what, the value, the
    /// threshold, and a link to the agent's dashboard page.
    pub fn message(&self, event: &AlertRecord) -> String {
        let agent = &event.agent_name;
        let what = match &event.label {
            Some(label) => format!("{} {label}", event.metric.describe()),
            None => event.metric.describe().to_string(),
        };
        let value = format_value(event.metric, event.value);
        let threshold = format_value(event.metric, event.threshold);
        let cmp = event.comparison.map_or("", |c| c.symbol());
        let headline = match (event.state, event.metric) {
            (AlertState::Firing, AlertMetric::Offline) => {
                format!("🔴 {agent} is offline: no report for {value} (limit {threshold})")
            }
            (AlertState::Resolved, AlertMetric::Offline) => {
                format!("✅ {agent} is back online")
            }
            (AlertState::Firing, AlertMetric::ContainerDown) => {
                format!(
                    "🔴 {agent}: container {} is not running",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Resolved, AlertMetric::ContainerDown) => {
                format!(
                    "✅ {agent}: container {} is running again",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Firing, AlertMetric::ContainerUnhealthy) => {
                format!(
                    "🔴 {agent}: container {} is unhealthy",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Resolved, AlertMetric::ContainerUnhealthy) => {
                format!(
                    "✅ {agent}: container {} is healthy again",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Firing, AlertMetric::ServiceFailed) => {
                format!(
                    "🔴 {agent}: {} failed",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Resolved, AlertMetric::ServiceFailed) => {
                format!(
                    "✅ {agent}: {} is no longer failed",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Firing, AlertMetric::CheckDown) => format!("🔴 {agent} is down"),
            (AlertState::Resolved, AlertMetric::CheckDown) => format!("✅ {agent} is up again"),
            (AlertState::Firing, AlertMetric::CheckCertDays) => {
                format!("🔴 {agent}: the certificate expires in {value} ({cmp} {threshold})")
            }
            (AlertState::Firing, _) => {
                format!("🔴 {agent}: {what} is {value} ({cmp} {threshold})")
            }
            (AlertState::Resolved, _) => {
                format!("✅ {agent}: {what} is back to {value} (rule: {cmp} {threshold})")
            }
        };
        let rule = event
            .rule_name
            .as_deref()
            .map(|n| format!("\nRule: {n}"))
            .unwrap_or_default();
        format!("{headline}{rule}\n{}", self.agent_url(event.agent_id))
    }

    /// Attempts `outgoing` on `channel`, with the configured retries when
    /// `retry` is set.
    async fn deliver(&self, channel: Channel, outgoing: Outgoing, retry: bool) -> DeliveryRecord {
        let outgoing = Arc::new(outgoing);
        let mut attempts = 0u32;
        let mut jitter = Backoff::new(Duration::ZERO, Duration::ZERO);
        let mut delays = if retry {
            self.retry_delays.clone()
        } else {
            Vec::new()
        }
        .into_iter();
        loop {
            attempts += 1;
            let result = self.attempt(&outgoing).await;
            let error = match result {
                Attempt::Sent => {
                    return DeliveryRecord {
                        channel,
                        status: DeliveryStatus::Sent,
                        attempts,
                        error: None,
                    };
                }
                Attempt::Fatal(e) => Some(e),
                Attempt::Retry(e) => match delays.next() {
                    Some(delay) => {
                        tracing::debug!(channel = ?channel, attempts, error = %e, "notification attempt failed; retrying");
                        tokio::time::sleep(jitter.jitter(delay)).await;
                        None
                    }
                    None => Some(e),
                },
            };
            if let Some(error) = error {
                return DeliveryRecord {
                    channel,
                    status: DeliveryStatus::Failed,
                    attempts,
                    error: Some(error),
                };
            }
        }
    }

    async fn attempt(&self, outgoing: &Arc<Outgoing>) -> Attempt {
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::Fatal("shutting down".into());
        };
        // The URL as the guard reads it (WHATWG-normalised: `2130706433`
        // is 127.0.0.1 here too); the guarded agent's resolver checks every
        // address the host resolves to, literal addresses included.
        let Ok(url) = outbound::normalise(&outgoing.url) else {
            return Attempt::Fatal("invalid URL".into());
        };
        let http = match outgoing.caller {
            Caller::Admin => self.http_admin.clone(),
            Caller::User => self.http_user.clone(),
        };
        let o = Arc::clone(outgoing);
        let result = tokio::task::spawn_blocking(move || {
            let mut request = http
                .post(url.as_str())
                .header("Content-Type", "application/json");
            for (name, value) in &o.headers {
                request = request.header(*name, value);
            }
            // Only the status is looked at: the body, whatever it says,
            // is neither recorded nor shown.
            let failure = match request.send(&o.body[..]) {
                Ok(response) if response.status().is_success() => return Attempt::Sent,
                Ok(response) => outbound::describe_status(response.status().as_u16()),
                Err(e) => outbound::describe(&e),
            };
            if failure.transient {
                Attempt::Retry(failure.phrase)
            } else {
                Attempt::Fatal(failure.phrase)
            }
        })
        .await
        .unwrap_or_else(|_| Attempt::Retry("delivery task failed".into()));
        match (result, &outgoing.redact) {
            (Attempt::Retry(e), Some(secret)) => Attempt::Retry(e.replace(secret, "<token>")),
            (Attempt::Fatal(e), Some(secret)) => Attempt::Fatal(e.replace(secret, "<token>")),
            (other, _) => other,
        }
    }
}

/// A value with its unit, rounded to what is meaningful.
pub fn format_value(metric: AlertMetric, value: f64) -> String {
    match metric {
        AlertMetric::CpuPct
        | AlertMetric::MemoryPct
        | AlertMetric::SwapPct
        | AlertMetric::DiskPct => {
            format!("{value:.1}%")
        }
        AlertMetric::Load1m | AlertMetric::Load5m | AlertMetric::Load15m => format!("{value:.2}"),
        AlertMetric::NetRxBps | AlertMetric::NetTxBps => {
            const UNITS: [&str; 5] = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
            let mut v = value;
            let mut unit = 0;
            while v.abs() >= 1000.0 && unit + 1 < UNITS.len() {
                v /= 1000.0;
                unit += 1;
            }
            if unit == 0 {
                format!("{v:.0} {}", UNITS[unit])
            } else {
                format!("{v:.1} {}", UNITS[unit])
            }
        }
        AlertMetric::TemperatureC => format!("{value:.1} °C"),
        AlertMetric::Offline => format!("{value:.0} s"),
        AlertMetric::ContainerCpuPct | AlertMetric::ContainerMemoryPct => format!("{value:.1}%"),
        AlertMetric::ContainerRestarts => format!("{value:.0}"),
        AlertMetric::ContainerDown
        | AlertMetric::ContainerUnhealthy
        | AlertMetric::ServiceFailed => if value > 0.5 { "yes" } else { "no" }.to_string(),
        AlertMetric::CheckDown => String::new(),
        AlertMetric::CheckLatencyMs => format!("{value:.0} ms"),
        AlertMetric::CheckCertDays => format!("{value:.1} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_units() {
        assert_eq!(format_value(AlertMetric::CpuPct, 95.04), "95.0%");
        assert_eq!(format_value(AlertMetric::NetRxBps, 1_500_000.0), "1.5 MB/s");
        assert_eq!(format_value(AlertMetric::NetTxBps, 999.0), "999 B/s");
        assert_eq!(format_value(AlertMetric::Offline, 45.2), "45 s");
        assert_eq!(format_value(AlertMetric::ContainerDown, 1.0), "yes");
        assert_eq!(
            format_value(AlertMetric::ContainerMemoryPct, 91.26),
            "91.3%"
        );
    }
}
