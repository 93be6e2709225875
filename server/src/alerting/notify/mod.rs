//! Delivery of alert notifications to a user's channels (Telegram, ntfy,
//! Discord, Slack, Gotify, Pushover, Matrix, email, webhook).
//!
//! Routing: an event goes to the channels its rule names
//! ([`Catalog::rule_notify`]) that still exist, or, when it names none (or
//! none of them is left), to the owner's default channels. A muted owner
//! gets nothing (each delivery recorded as skipped, "muted"); during the
//! owner's quiet hours only urgent rules notify, the others are held and
//! sent as one summary per channel when the quiet hours end ([`quiet`]).
//!
//! Every channel of every event is its own tokio task, so a slow or dead
//! channel delays nothing else. An attempt is a blocking `ureq` (or SMTP)
//! call on the blocking pool, bounded by a semaphore
//! ([`MAX_CONCURRENT_ATTEMPTS`]); the waits between retries hold no permit.
//! 5xx, 429, timeouts and connection errors are retried, each retry after a
//! random wait of up to its configured delay (full jitter,
//! [`storage::model::retry`], so channels that failed together do not retry
//! together); other 4xx answers fail at once (retrying a bad chat id does
//! not help). The final outcome of each channel is written to the event in
//! the history and to the channel's health (failing after
//! [`storage::model::FAILING_AFTER`] failures in a row).
//!
//! Every request goes through the [outbound guard](crate::outbound): a
//! non-admin's channel may not reach loopback, link-local, private (unless
//! allowed) or the server's own address, checked on the addresses it resolves
//! to at send time (SMTP hosts too, see [`email`]). Errors are recorded as
//! fixed phrases (`HTTP 403`, `connection refused`, `timeout`, `refused by
//! the outbound guard: …`): nothing the remote end sent is kept or shown.

pub mod email;
pub mod kinds;
pub mod quiet;
pub mod telegram;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use storage::catalog::{
    AlertRecord, Catalog, CatalogError, ChannelRecord, DeliveryRecord, DeliveryTargets,
};
use storage::clock::Clock;
use storage::model::retry::Backoff;
use storage::model::{
    AlertMetric, AlertState, Channel, DeliveryStatus, WebhookAgent, WebhookPayload,
};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::outbound::{self, Caller, OutboundGuard};
use kinds::Text;

/// HTTP attempts in flight at once, over all users and channels.
pub const MAX_CONCURRENT_ATTEMPTS: usize = 64;
/// Held alerts listed one by one in a quiet-hours summary.
pub const SUMMARY_LINES: usize = 20;

/// One HTTP request to make.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// A secret inside `url` that must not reach recorded errors or logs.
    pub redact: Option<String>,
    /// Whom the request is made for: the guard's rules follow.
    pub caller: Caller,
    /// `POST`, or `PUT` for Matrix.
    pub method: &'static str,
}

/// What one delivery sends.
#[derive(Debug, Clone)]
pub enum Send {
    Http(Outgoing),
    Mail(email::Mail),
}

/// The outcome of one attempt.
enum Attempt {
    Sent,
    /// Worth retrying (5xx, 429, timeout, connection failure).
    Retry(String),
    /// Retrying will not help (other 4xx, invalid URL, refused by the guard).
    Fatal(String),
}

/// The deliveries of a new event: one per target channel, in order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub deliveries: Vec<DeliveryRecord>,
    pub targets: Vec<ChannelRecord>,
    /// Held for the quiet-hours summary.
    pub held: bool,
}

pub struct Notifier {
    /// Weak: delivery tasks may outlive the app state (tests restart it),
    /// and must not keep the catalog file open.
    catalog: Weak<Catalog>,
    clock: Arc<dyn Clock>,
    runtime: Option<Handle>,
    /// `--telegram-bot-token`.
    telegram_config_token: Option<String>,
    /// The token an admin set in the dashboard; takes precedence.
    telegram_dashboard_token: RwLock<Option<String>>,
    telegram_api_base: String,
    pushover_api_base: String,
    /// Extra CA certificates (PEM) trusted for SMTP servers.
    smtp_roots: Vec<Vec<u8>>,
    timeout: Duration,
    dashboard_url: String,
    retry_delays: Vec<Duration>,
    permits: Arc<Semaphore>,
    /// Requests the guard does not restrict: the admin's channels and the
    /// server's own Telegram / Pushover API base.
    http_admin: ureq::Agent,
    /// Requests for other users, through the guard's resolver.
    http_user: ureq::Agent,
    guard: Arc<OutboundGuard>,
    /// Alert deliveries sent and failed (after retries), for `/metrics`.
    outcomes: [AtomicU64; 2],
    /// Matrix transaction ids: unique per process run and message.
    txn_seq: AtomicU64,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("telegram", &self.telegram_configured())
            .finish()
    }
}

impl Notifier {
    pub fn new(config: &Config, catalog: &Arc<Catalog>, clock: Arc<dyn Clock>) -> Notifier {
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
        let dashboard_token = catalog.telegram_bot_token().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the Telegram bot token set in the dashboard");
            None
        });
        Notifier {
            catalog: Arc::downgrade(catalog),
            clock,
            runtime: Handle::try_current().ok(),
            telegram_config_token: config
                .telegram_bot_token
                .as_ref()
                .map(|t| t.expose().to_owned())
                .filter(|t| !t.is_empty()),
            telegram_dashboard_token: RwLock::new(dashboard_token),
            telegram_api_base: config.telegram_api_base.clone(),
            pushover_api_base: config.pushover_api_base.clone(),
            smtp_roots: config.smtp_ca_pem.clone(),
            timeout,
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
            txn_seq: AtomicU64::new(0),
        }
    }

    /// Alert deliveries (not test messages) sent and failed so far.
    pub fn delivery_counts(&self) -> (u64, u64) {
        (
            self.outcomes[0].load(Ordering::Relaxed),
            self.outcomes[1].load(Ordering::Relaxed),
        )
    }

    /// The server's own Telegram bot token: the dashboard's, else the
    /// configured one.
    fn server_telegram_token(&self) -> Option<String> {
        self.telegram_dashboard_token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .or_else(|| self.telegram_config_token.clone())
    }

    /// The server has a Telegram bot token.
    pub fn telegram_configured(&self) -> bool {
        self.server_telegram_token().is_some()
    }

    /// The server was started with a Telegram bot token.
    pub fn telegram_config_token_set(&self) -> bool {
        self.telegram_config_token.is_some()
    }

    /// An admin changed the dashboard's bot token (already stored).
    pub fn set_telegram_dashboard_token(&self, token: Option<String>) {
        *self
            .telegram_dashboard_token
            .write()
            .unwrap_or_else(PoisonError::into_inner) = token;
    }

    /// The guard every outbound request of the notifier goes through.
    pub fn outbound(&self) -> &Arc<OutboundGuard> {
        &self.guard
    }

    /// The channels an event of rule `rule_id` of `owner_id` goes to now:
    /// the rule's own that still exist, else the owner's defaults.
    pub fn targets(
        catalog: &Catalog,
        owner_id: u64,
        rule_id: u64,
    ) -> Result<(Vec<ChannelRecord>, bool), CatalogError> {
        let channels = catalog.channels_of(owner_id)?;
        let routing = catalog.rule_notify(rule_id)?;
        let named: Vec<ChannelRecord> = routing
            .channels
            .iter()
            .filter_map(|id| channels.iter().find(|c| c.id == *id).cloned())
            .collect();
        let targets = if named.is_empty() {
            channels.into_iter().filter(|c| c.default).collect()
        } else {
            named
        };
        Ok((targets, routing.urgent))
    }

    /// The deliveries of a new event of rule `rule_id` of `owner_id` at
    /// `now_ms`: pending per target channel, skipped when muted or when the
    /// channel cannot send (no bot token), held in quiet hours unless the
    /// rule is urgent. Blocking (catalog reads).
    pub fn plan(
        &self,
        catalog: &Catalog,
        owner_id: u64,
        rule_id: u64,
        now_ms: i64,
    ) -> Result<Plan, CatalogError> {
        let (targets, urgent) = Notifier::targets(catalog, owner_id, rule_id)?;
        let prefs = catalog.notify_prefs(owner_id)?;
        let muted = prefs.mute_until_ms.filter(|until| *until > now_ms);
        let held = muted.is_none() && !urgent && quiet::quiet_end(&prefs, now_ms).is_some();
        let deliveries = targets
            .iter()
            .map(|c| {
                let skip = |why: String| DeliveryRecord {
                    channel: c.kind,
                    status: DeliveryStatus::Skipped,
                    attempts: 0,
                    error: Some(why),
                };
                if let Some(until) = muted {
                    skip(format!("muted until {}", quiet::when(until)))
                } else if c.kind == Channel::Telegram
                    && c.field("bot_token").is_none()
                    && !self.telegram_configured()
                {
                    skip("the server has no Telegram bot token".into())
                } else if held {
                    skip(quiet::HELD.into())
                } else {
                    DeliveryRecord {
                        channel: c.kind,
                        status: DeliveryStatus::Pending,
                        attempts: 0,
                        error: None,
                    }
                }
            })
            .collect();
        Ok(Plan {
            deliveries,
            targets,
            held,
        })
    }

    /// Records which channel each delivery of `event` is for, holds it for
    /// the summary when so planned, and starts delivering each pending one;
    /// returns once the tasks are spawned. Blocking (catalog writes).
    pub fn dispatch(
        self: &Arc<Self>,
        owner_id: u64,
        event: &AlertRecord,
        plan: &Plan,
        since_ms: i64,
    ) {
        let Some(catalog) = self.catalog.upgrade() else {
            return;
        };
        let targets = DeliveryTargets {
            channels: plan
                .targets
                .iter()
                .map(|c| (c.id, c.name.clone()))
                .collect(),
        };
        if let Err(e) = catalog.set_delivery_targets(owner_id, event.id, &targets) {
            tracing::error!(error = %e, event_id = event.id, "cannot record the channels of an alert");
        }
        if plan.held {
            let ids: Vec<u64> = plan.targets.iter().map(|c| c.id).collect();
            if let Err(e) = catalog.hold_alert(owner_id, event.id, &ids) {
                tracing::error!(error = %e, event_id = event.id, "cannot hold an alert for the summary");
            }
            return;
        }
        let Some(runtime) = &self.runtime else {
            tracing::error!("no async runtime: alert notifications cannot be sent");
            return;
        };
        let text = self.text(event, since_ms);
        for (index, (planned, channel)) in event.deliveries.iter().zip(&plan.targets).enumerate() {
            if planned.status != DeliveryStatus::Pending {
                continue;
            }
            let this = Arc::clone(self);
            let channel = channel.clone();
            let event_id = event.id;
            let payload = self.payload(event, &text.plain());
            let text = text.clone();
            runtime.spawn(async move {
                // Whether the owner is the admin now, not when it was saved.
                let caller = this.caller_of(owner_id).await;
                let Some(send) = this.outgoing(&channel, &text, Some(payload), caller) else {
                    return;
                };
                let result = this.deliver(channel.kind, send, true).await;
                let failed = result.status == DeliveryStatus::Failed;
                this.outcomes[usize::from(failed)].fetch_add(1, Ordering::Relaxed);
                if failed {
                    tracing::warn!(
                        owner_id,
                        event_id,
                        channel_id = channel.id,
                        kind = channel.kind.as_str(),
                        error = result.error.as_deref().unwrap_or(""),
                        "alert notification failed"
                    );
                }
                this.record(owner_id, channel.id, vec![(event_id, index)], result)
                    .await;
            });
        }
    }

    /// Writes `result` as delivery `index` of each `(event, index)` and as
    /// the latest outcome of channel `channel_id`.
    async fn record(
        &self,
        owner_id: u64,
        channel_id: u64,
        slots: Vec<(u64, usize)>,
        result: DeliveryRecord,
    ) {
        let Some(catalog) = self.catalog.upgrade() else {
            return;
        };
        let now = self.clock.now_ms();
        let saved = tokio::task::spawn_blocking(move || {
            let error = (result.status == DeliveryStatus::Failed)
                .then(|| result.error.clone().unwrap_or_default());
            catalog.record_channel_outcome(channel_id, now, error.as_deref())?;
            for (event_id, index) in slots {
                catalog.set_alert_delivery_at(owner_id, event_id, index, result.clone())?;
            }
            Ok::<_, CatalogError>(())
        })
        .await;
        if let Ok(Err(e)) = saved {
            tracing::error!(error = %e, channel_id, "cannot record a delivery outcome");
        }
    }

    /// Sends the summary of the alerts `owner_id` had held, when their quiet
    /// hours are over at `now_ms`. Blocking (catalog); sends in the
    /// background.
    pub fn flush_summaries(self: &Arc<Self>, now_ms: i64) {
        let Some(catalog) = self.catalog.upgrade() else {
            return;
        };
        let prefs = match catalog.all_notify_prefs() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read quiet hours");
                return;
            }
        };
        for (owner_id, p) in prefs {
            // Still quiet, or muted: the summary waits.
            if quiet::quiet_end(&p, now_ms).is_some() || p.mute_until_ms.is_some_and(|t| t > now_ms)
            {
                continue;
            }
            if let Err(e) = self.summarise(&catalog, owner_id, now_ms) {
                tracing::error!(error = %e, owner_id, "cannot send the quiet-hours summary");
            }
        }
    }

    fn summarise(
        self: &Arc<Self>,
        catalog: &Catalog,
        owner_id: u64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let held = catalog.take_held_alerts(owner_id)?;
        if held.is_empty() {
            return Ok(());
        }
        let ids: Vec<u64> = held.iter().map(|(id, _)| *id).collect();
        let events: BTreeMap<u64, AlertRecord> = catalog
            .alerts_of(owner_id)?
            .into_iter()
            .filter(|e| ids.contains(&e.id))
            .map(|e| (e.id, e))
            .collect();
        if events.is_empty() {
            // Held events deleted meanwhile (with their agent, or cleared).
            return Ok(());
        }
        let targets = catalog.delivery_targets(owner_id, &ids)?;
        let mut lines: Vec<String> = events
            .values()
            .take(SUMMARY_LINES)
            .map(|e| {
                let t = self.text(e, e.ts_ms);
                format!("{} {}", quiet::when(e.ts_ms), t.title)
            })
            .collect();
        if events.len() > SUMMARY_LINES {
            lines.push(format!("… and {} more", events.len() - SUMMARY_LINES));
        }
        let text = Text {
            title: format!("{} alerts during quiet hours", events.len()),
            lines,
            url: format!("{}/alerts", self.dashboard_url),
            urgent: false,
            state: None,
            metric: None,
        };
        // Per channel, the (event, index) slots the summary stands for.
        let mut by_channel: BTreeMap<u64, Vec<(u64, usize)>> = BTreeMap::new();
        for (event_id, channels) in &held {
            let Some(t) = targets.get(event_id) else {
                continue;
            };
            for channel_id in channels {
                if let Some(index) = t.channels.iter().position(|(id, _)| id == channel_id) {
                    by_channel
                        .entry(*channel_id)
                        .or_default()
                        .push((*event_id, index));
                }
            }
        }
        let Some(runtime) = &self.runtime else {
            return Ok(());
        };
        let channels = catalog.channels_of(owner_id)?;
        tracing::debug!(
            owner_id,
            events = events.len(),
            now_ms,
            "quiet hours over: summary"
        );
        for (channel_id, slots) in by_channel {
            let Some(channel) = channels.iter().find(|c| c.id == channel_id).cloned() else {
                continue;
            };
            let this = Arc::clone(self);
            let text = text.clone();
            runtime.spawn(async move {
                let caller = this.caller_of(owner_id).await;
                let Some(send) = this.outgoing(&channel, &text, None, caller) else {
                    return;
                };
                let mut result = this.deliver(channel.kind, send, true).await;
                if result.status == DeliveryStatus::Sent {
                    result.error = Some(quiet::SUMMARISED.into());
                }
                this.record(owner_id, channel.id, slots, result).await;
            });
        }
        Ok(())
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

    /// Sends a test message to `channel` of a user the guard treats as
    /// `caller`: one attempt, the outcome recorded as the channel's health.
    pub async fn send_test(&self, channel: &ChannelRecord, caller: Caller) -> DeliveryRecord {
        let text = Text {
            title: "StatusMonitor test message".into(),
            lines: vec![format!(
                "Alerts will reach this {} channel \"{}\".",
                channel.kind.title(),
                channel.name
            )],
            url: self.dashboard_url.clone(),
            urgent: false,
            state: None,
            metric: None,
        };
        let mut payload = self.payload(&test_event(), &text.plain());
        payload.event = "test".into();
        payload.metric = "test".into();
        payload.url = self.dashboard_url.clone();
        let result = match self.outgoing(channel, &text, Some(payload), caller) {
            Some(send) => self.deliver(channel.kind, send, false).await,
            None => DeliveryRecord {
                channel: channel.kind,
                status: DeliveryStatus::Skipped,
                attempts: 0,
                error: Some(if channel.kind == Channel::Telegram {
                    "the server has no Telegram bot token".into()
                } else {
                    "the channel's settings are incomplete".into()
                }),
            },
        };
        if result.status != DeliveryStatus::Skipped {
            self.record(0, channel.id, Vec::new(), result.clone()).await;
        }
        result
    }

    /// The request that sends `text` to `channel`; `payload` is the
    /// webhook's body. `None` when the channel cannot send.
    fn outgoing(
        &self,
        channel: &ChannelRecord,
        text: &Text,
        payload: Option<WebhookPayload>,
        caller: Caller,
    ) -> Option<Send> {
        let http = match channel.kind {
            Channel::Telegram => {
                // The API base is the server's configuration: not guarded.
                let token = channel
                    .field("bot_token")
                    .map(str::to_string)
                    .or_else(|| self.server_telegram_token())?;
                kinds::telegram(
                    &self.telegram_api_base,
                    &token,
                    channel.field("chat_id")?,
                    text,
                )
            }
            Channel::Webhook => {
                let mut payload = payload?;
                payload.message = text.plain();
                let mut o = webhook::post(channel.field("url")?, channel.field("secret"), &payload);
                o.caller = caller;
                o
            }
            Channel::Ntfy => kinds::ntfy(channel, text, caller)?,
            Channel::Discord => kinds::discord(channel, text, caller)?,
            Channel::Slack => kinds::slack(channel, text, caller)?,
            Channel::Gotify => kinds::gotify(channel, text, caller)?,
            Channel::Pushover => {
                kinds::pushover(&self.pushover_api_base, channel, text, Caller::Admin)?
            }
            Channel::Matrix => {
                let txn = format!(
                    "sm{}-{}",
                    self.clock.now_ms(),
                    self.txn_seq.fetch_add(1, Ordering::Relaxed)
                );
                kinds::matrix(channel, text, &txn, caller)?
            }
            Channel::Email => {
                let subject = format!("[StatusMonitor] {}", text.title);
                return email::mail(channel, &subject, &text.plain(), caller).map(Send::Mail);
            }
        };
        Some(Send::Http(http))
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

    /// What every format says about `event`: which machine, what crossed
    /// what, the value, since when, and a link to the agent's page.
    pub fn text(&self, event: &AlertRecord, since_ms: i64) -> Text {
        let agent = &event.agent_name;
        let what = match &event.label {
            Some(label) => format!("{} {label}", event.metric.describe()),
            None => event.metric.describe().to_string(),
        };
        let value = format_value(event.metric, event.value);
        let threshold = format_value(event.metric, event.threshold);
        let cmp = event.comparison.map_or("", |c| c.symbol());
        let title = match (event.state, event.metric) {
            (AlertState::Firing, AlertMetric::Offline) => {
                format!("{agent} is offline: no report for {value} (limit {threshold})")
            }
            (AlertState::Resolved, AlertMetric::Offline) => format!("{agent} is back online"),
            (AlertState::Firing, AlertMetric::ContainerDown) => {
                format!(
                    "{agent}: container {} is not running",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Resolved, AlertMetric::ContainerDown) => {
                format!(
                    "{agent}: container {} is running again",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Firing, AlertMetric::ContainerUnhealthy) => {
                format!(
                    "{agent}: container {} is unhealthy",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Resolved, AlertMetric::ContainerUnhealthy) => {
                format!(
                    "{agent}: container {} is healthy again",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Firing, AlertMetric::ServiceFailed) => {
                format!("{agent}: {} failed", event.label.as_deref().unwrap_or("?"))
            }
            (AlertState::Resolved, AlertMetric::ServiceFailed) => {
                format!(
                    "{agent}: {} is no longer failed",
                    event.label.as_deref().unwrap_or("?")
                )
            }
            (AlertState::Firing, AlertMetric::CheckDown) => format!("{agent} is down"),
            (AlertState::Resolved, AlertMetric::CheckDown) => format!("{agent} is up again"),
            (AlertState::Firing, AlertMetric::CheckCertDays) => {
                format!("{agent}: the certificate expires in {value} ({cmp} {threshold})")
            }
            (AlertState::Firing, _) => format!("{agent}: {what} is {value} ({cmp} {threshold})"),
            (AlertState::Resolved, _) => {
                format!("{agent}: {what} is back to {value} (rule: {cmp} {threshold})")
            }
        };
        let mut lines = Vec::new();
        if let Some(n) = &event.rule_name {
            lines.push(format!("Rule: {n}"));
        }
        lines.push(match event.state {
            AlertState::Firing => format!("Since: {}", quiet::when(since_ms)),
            AlertState::Resolved => format!(
                "Firing from {} to {}",
                quiet::when(since_ms),
                quiet::when(event.ts_ms)
            ),
        });
        Text {
            title,
            lines,
            url: self.agent_url(event.agent_id),
            urgent: event.state == AlertState::Firing,
            state: Some(event.state),
            metric: Some(event.metric),
        }
    }

    /// The plain text of `event` (the webhook's `message`).
    pub fn message(&self, event: &AlertRecord, since_ms: i64) -> String {
        let t = self.text(event, since_ms);
        let icon = match event.state {
            AlertState::Firing => "🔴 ",
            AlertState::Resolved => "✅ ",
        };
        format!("{icon}{}", t.plain())
    }

    /// Attempts `send` on a channel of `kind`, with the configured retries
    /// when `retry` is set.
    async fn deliver(&self, kind: Channel, send: Send, retry: bool) -> DeliveryRecord {
        let send = Arc::new(send);
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
            let result = match &*send {
                Send::Http(o) => self.attempt(o).await,
                Send::Mail(_) => self.attempt_mail(&send).await,
            };
            let error = match result {
                Attempt::Sent => {
                    return DeliveryRecord {
                        channel: kind,
                        status: DeliveryStatus::Sent,
                        attempts,
                        error: None,
                    };
                }
                Attempt::Fatal(e) => Some(e),
                Attempt::Retry(e) => match delays.next() {
                    Some(delay) => {
                        tracing::debug!(kind = kind.as_str(), attempts, error = %e, "notification attempt failed; retrying");
                        tokio::time::sleep(jitter.jitter(delay)).await;
                        None
                    }
                    None => Some(e),
                },
            };
            if let Some(error) = error {
                return DeliveryRecord {
                    channel: kind,
                    status: DeliveryStatus::Failed,
                    attempts,
                    error: Some(error),
                };
            }
        }
    }

    async fn attempt_mail(&self, send: &Arc<Send>) -> Attempt {
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::Fatal("shutting down".into());
        };
        let (guard, roots, timeout, send) = (
            Arc::clone(&self.guard),
            self.smtp_roots.clone(),
            self.timeout,
            Arc::clone(send),
        );
        tokio::task::spawn_blocking(move || {
            let Send::Mail(mail) = &*send else {
                return Attempt::Fatal("not an email".into());
            };
            match email::send(&guard, mail, timeout, &roots) {
                Ok(()) => Attempt::Sent,
                Err(f) if f.transient => Attempt::Retry(f.phrase),
                Err(f) => Attempt::Fatal(f.phrase),
            }
        })
        .await
        .unwrap_or_else(|_| Attempt::Retry("delivery task failed".into()))
    }

    async fn attempt(&self, outgoing: &Outgoing) -> Attempt {
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
        let o = outgoing.clone();
        let result = tokio::task::spawn_blocking(move || {
            let response = if o.method == "PUT" {
                let mut request = http
                    .put(url.as_str())
                    .header("Content-Type", "application/json");
                for (name, value) in &o.headers {
                    request = request.header(*name, value);
                }
                request.send(&o.body[..])
            } else {
                let mut request = http
                    .post(url.as_str())
                    .header("Content-Type", "application/json");
                for (name, value) in &o.headers {
                    request = request.header(*name, value);
                }
                request.send(&o.body[..])
            };
            // Only the status is looked at: the body, whatever it says,
            // is neither recorded nor shown.
            let failure = match response {
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

/// The stand-in event of a test message's webhook payload.
fn test_event() -> AlertRecord {
    AlertRecord {
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
