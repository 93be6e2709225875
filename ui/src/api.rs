//! The browser side of the JSON API: `fetch` with the session cookie, JSON in
//! and out, and errors a person can read. On the server (SSR) these calls are
//! never made: actions and local resources only run after hydration.
//!
//! Sessions renew themselves: a 401 from any endpoint outside `/api/auth/`
//! triggers one `POST /api/auth/refresh` (shared by every request that failed
//! at the same time, because the refresh token rotates on use) and the request
//! is retried once. When the refresh fails too the browser goes to
//! `/login?next=<current path>`, and the login page brings it back.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

pub use storage::model::{HistoryResponse, HostFacts, LiveMessage, Report, SummaryResponse};

/// A failed API call, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status, 0 when the request never got an answer.
    pub status: u16,
    pub message: String,
}

impl ApiError {
    /// The server could not be reached or answered that it is not there
    /// (no answer at all, or a proxy's 502/503/504): worth asking again by
    /// itself, and shown as "reconnecting…" rather than as an error.
    pub fn transient(&self) -> bool {
        matches!(self.status, 0 | 502..=504)
    }

    fn local(message: impl Into<String>) -> Self {
        ApiError {
            status: 0,
            message: message.into(),
        }
    }
}

impl ApiError {
    /// The request field the server named (`threshold: …` → `threshold`),
    /// for a refusal of the request's values (400, 422).
    pub fn field(&self) -> Option<&str> {
        if !matches!(self.status, 400 | 422) {
            return None;
        }
        let (field, _) = self.message.split_once(": ")?;
        // A name (`threshold`) or a path into the body (`target.tag`,
        // `sections[0].items[1].label`).
        field
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.[]".contains(&b))
            .then_some(field)
            .filter(|f| !f.is_empty())
    }

    /// The message as a sentence for people: without the field id in front
    /// (the form shows it next to that field), without code quotes,
    /// capitalised and ended. The API's own message stays in `message`.
    pub fn sentence(&self) -> String {
        let text = match self.field() {
            Some(field) => &self.message[field.len() + 2..],
            None => self.message.as_str(),
        };
        let text = text.replace('`', "");
        let mut out: String = text.trim().to_string();
        // ASCII only: `to_uppercase` would pull Unicode tables into the wasm.
        if let Some(first) = out.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        if !out.ends_with(['.', '!', '?']) {
            out.push('.');
        }
        out
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A server fault keeps its status (worth quoting in a report); a
        // refusal of what was sent is only the sentence.
        if self.status >= 500 {
            let s = self.sentence();
            write!(f, "{} (HTTP {}).", s.trim_end_matches('.'), self.status)
        } else {
            write!(f, "{}", self.sentence())
        }
    }
}

impl std::error::Error for ApiError {}

// The bodies of the auth and agents API live once, in `storage::model`.
pub use storage::model::{
    AgentInfo, AgentWithToken, ChangePasswordRequest, CreateAgentRequest, LoginRequest,
    RegisterRequest, RegistrationStatus, SessionInfo, TokenResponse, TokenState,
    UpdateAgentRequest, UserInfo as User,
};

/// A key that changes when anything shown about the host changes.
pub fn host_key(host: &Option<HostFacts>) -> String {
    host.as_ref()
        .map(|h| {
            let os = h.os.as_deref().unwrap_or_default();
            format!("{}|{os}|{}", h.hostname, h.cores.unwrap_or(0))
        })
        .unwrap_or_default()
}

/// A key of the token state (the model type is not `Hash`).
pub fn state_key(state: TokenState) -> u8 {
    match state {
        TokenState::Pending => 0,
        TokenState::Active => 1,
        TokenState::Expired => 2,
    }
}

// ---------------------------------------------------------------------------
// Endpoints.

pub async fn registration() -> Result<RegistrationStatus, ApiError> {
    get_json("/api/auth/registration").await
}

pub async fn register(request: &RegisterRequest) -> Result<User, ApiError> {
    post_json("/api/auth/register", request).await
}

/// Logs in; the browser keeps the session in its HttpOnly cookies and this
/// code keeps only the user.
pub async fn login(request: &LoginRequest) -> Result<User, ApiError> {
    post_json::<TokenResponse>("/api/auth/token", request)
        .await
        .map(|a| a.user)
}

/// Browsers send the refresh cookie and no body.
pub async fn logout() -> Result<(), ApiError> {
    send::<serde::de::IgnoredAny>("POST", "/api/auth/logout", None, Unauthorized::Return)
        .await
        .map(|_| ())
}

pub async fn logout_all() -> Result<(), ApiError> {
    send::<serde::de::IgnoredAny>("POST", "/api/auth/logout-all", None, Unauthorized::Redirect)
        .await
        .map(|_| ())
}

pub async fn sessions() -> Result<Vec<SessionInfo>, ApiError> {
    get_json("/api/auth/sessions").await
}

pub async fn revoke_session(id: u64) -> Result<(), ApiError> {
    delete(&format!("/api/auth/sessions/{id}")).await
}

pub async fn change_password(change: &ChangePasswordRequest) -> Result<(), ApiError> {
    send::<serde::de::IgnoredAny>(
        "POST",
        "/api/users/me/password",
        Some(encode_body(change)?),
        Unauthorized::Redirect,
    )
    .await
    .map(|_| ())
}

/// The logged-in user, or `None` when there is no session (after one silent
/// refresh attempt). Never redirects: public pages use it to choose a view.
pub async fn current_user() -> Result<Option<User>, ApiError> {
    match send::<User>("GET", "/api/users/me", None, Unauthorized::Return).await {
        Ok(user) => Ok(Some(user)),
        Err(e) if e.status == 401 => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn agents() -> Result<Vec<AgentInfo>, ApiError> {
    get_json("/api/agents").await
}

pub async fn agent(id: u64) -> Result<AgentInfo, ApiError> {
    get_json(&format!("/api/agents/{id}")).await
}

pub async fn create_agent(name: String) -> Result<AgentWithToken, ApiError> {
    post_json("/api/agents", &CreateAgentRequest { name }).await
}

pub async fn rename_agent(id: u64, name: String) -> Result<AgentInfo, ApiError> {
    patch_json(&format!("/api/agents/{id}"), &UpdateAgentRequest { name }).await
}

pub async fn delete_agent(id: u64) -> Result<(), ApiError> {
    delete(&format!("/api/agents/{id}")).await
}

pub async fn regenerate_token(id: u64) -> Result<AgentWithToken, ApiError> {
    send(
        "POST",
        &format!("/api/agents/{id}/regenerate-token"),
        None,
        Unauthorized::Redirect,
    )
    .await
}

// Alerting (docs/alerts.md).
pub use storage::model::{
    AlertEvent, AlertMetric, AlertPage, AlertQuery, AlertSort, AlertState, CHANNEL_KINDS, Channel,
    ChannelRequest, ChannelTestResult, Comparison, CreateRuleRequest, Delivery, DeliveryStatus,
    NotifyChannel, NotifySettings, QuietHours, Rule, RuleNotify, SortOrder, TelegramSettings,
    UpdateRuleRequest, fields_of,
};

pub async fn rules() -> Result<Vec<Rule>, ApiError> {
    get_json("/api/rules").await
}

pub async fn create_rule(rule: &CreateRuleRequest) -> Result<Rule, ApiError> {
    post_json("/api/rules", rule).await
}

pub async fn update_rule(id: u64, change: &UpdateRuleRequest) -> Result<Rule, ApiError> {
    patch_json(&format!("/api/rules/{id}"), change).await
}

pub async fn delete_rule(id: u64) -> Result<(), ApiError> {
    delete(&format!("/api/rules/{id}")).await
}

// Uptime checks (docs/checks.md).
pub use storage::model::{
    CheckEvent, CheckHistory, CheckInfo, CheckRequest, CheckResult, CheckSpec, CheckUptime,
};

/// The checks with their last `days` daily bars.
pub async fn checks(days: u32) -> Result<Vec<CheckInfo>, ApiError> {
    get_json(&format!("/api/checks?days={days}")).await
}

pub async fn check(id: u64) -> Result<CheckInfo, ApiError> {
    get_json(&format!("/api/checks/{id}")).await
}

pub async fn create_check(check: &CheckRequest) -> Result<CheckInfo, ApiError> {
    post_json("/api/checks", check).await
}

pub async fn update_check(id: u64, check: &CheckRequest) -> Result<CheckInfo, ApiError> {
    put_json(&format!("/api/checks/{id}"), check).await
}

pub async fn delete_check(id: u64) -> Result<(), ApiError> {
    delete(&format!("/api/checks/{id}")).await
}

pub async fn run_check(id: u64) -> Result<CheckResult, ApiError> {
    send(
        "POST",
        &format!("/api/checks/{id}/run"),
        None,
        Unauthorized::Redirect,
    )
    .await
}

pub async fn check_uptime(id: u64) -> Result<CheckUptime, ApiError> {
    get_json(&format!("/api/checks/{id}/uptime")).await
}

pub async fn check_events(id: u64) -> Result<Vec<CheckEvent>, ApiError> {
    get_json(&format!("/api/checks/{id}/events")).await
}

/// `GET /api/checks/{id}/history` from `start` (like `-24h`) to now.
pub async fn check_history(id: u64, start: &str) -> Result<CheckHistory, ApiError> {
    get_json(&format!(
        "/api/checks/{id}/history?start={}&max_points=600",
        encode(start)
    ))
    .await
}

// Status pages (docs/checks.md).
pub use storage::model::{IncidentRequest, StatusPageInfo, StatusPageSpec};

pub async fn status_pages() -> Result<Vec<StatusPageInfo>, ApiError> {
    get_json("/api/status-pages").await
}

pub async fn create_status_page(spec: &StatusPageSpec) -> Result<StatusPageInfo, ApiError> {
    post_json("/api/status-pages", spec).await
}

pub async fn update_status_page(
    id: u64,
    spec: &StatusPageSpec,
) -> Result<StatusPageInfo, ApiError> {
    put_json(&format!("/api/status-pages/{id}"), spec).await
}

/// A new secret key for a private page (in this answer only).
pub async fn new_status_page_key(id: u64) -> Result<StatusPageInfo, ApiError> {
    post_json(&format!("/api/status-pages/{id}/key"), &()).await
}

pub async fn delete_status_page(id: u64) -> Result<(), ApiError> {
    delete(&format!("/api/status-pages/{id}")).await
}

/// A new incident (`incident: None`, with a title) or an update of one.
pub async fn post_incident(
    id: u64,
    incident: Option<u64>,
    req: &IncidentRequest,
) -> Result<StatusPageInfo, ApiError> {
    match incident {
        Some(i) => post_json(&format!("/api/status-pages/{id}/incidents/{i}"), req).await,
        None => post_json(&format!("/api/status-pages/{id}/incidents"), req).await,
    }
}

/// `GET /api/alerts` with the filter, sort and page of `query`.
pub async fn alerts(query: &AlertQuery) -> Result<AlertPage, ApiError> {
    get_json(&format!("/api/alerts{}", alert_query_string(query))).await
}

/// `DELETE /api/alerts`: every event matching the filter of `query`.
pub async fn clear_alerts(query: &AlertQuery) -> Result<(), ApiError> {
    let filter = AlertQuery {
        sort: None,
        order: None,
        limit: None,
        offset: None,
        ..query.clone()
    };
    delete(&format!("/api/alerts{}", alert_query_string(&filter))).await
}

pub async fn channels() -> Result<Vec<NotifyChannel>, ApiError> {
    get_json("/api/channels").await
}

pub async fn create_channel(c: &ChannelRequest) -> Result<NotifyChannel, ApiError> {
    post_json("/api/channels", c).await
}

pub async fn update_channel(id: u64, c: &ChannelRequest) -> Result<NotifyChannel, ApiError> {
    patch_json(&format!("/api/channels/{id}"), c).await
}

pub async fn delete_channel(id: u64) -> Result<(), ApiError> {
    delete(&format!("/api/channels/{id}")).await
}

pub async fn test_channel(id: u64) -> Result<ChannelTestResult, ApiError> {
    send(
        "POST",
        &format!("/api/channels/{id}/test"),
        None,
        Unauthorized::Redirect,
    )
    .await
}

pub async fn notify_settings() -> Result<NotifySettings, ApiError> {
    get_json("/api/notify/settings").await
}

pub async fn set_notify_settings(s: &NotifySettings) -> Result<NotifySettings, ApiError> {
    put_json("/api/notify/settings", s).await
}

pub async fn rule_notify(id: u64) -> Result<RuleNotify, ApiError> {
    get_json(&format!("/api/rules/{id}/notify")).await
}

pub async fn set_rule_notify(id: u64, r: &RuleNotify) -> Result<RuleNotify, ApiError> {
    put_json(&format!("/api/rules/{id}/notify"), r).await
}

/// 403 for everyone but the admin.
pub async fn telegram_settings() -> Result<TelegramSettings, ApiError> {
    get_json("/api/admin/telegram").await
}

pub async fn set_telegram_settings(s: &TelegramSettings) -> Result<TelegramSettings, ApiError> {
    put_json("/api/admin/telegram", s).await
}

/// `?agent_id=3&state=firing…` for the set fields of `q` (empty when none).
pub fn alert_query_string(q: &AlertQuery) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut num = |k: &str, v: Option<i64>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    num("agent_id", q.agent_id.map(|v| v as i64));
    num("rule_id", q.rule_id.map(|v| v as i64));
    num("since", q.since);
    num("until", q.until);
    num("limit", q.limit.map(i64::from));
    num("offset", q.offset.map(i64::from));
    if let Some(m) = q.metric {
        parts.push(format!("metric={}", m.as_str()));
    }
    if let Some(s) = q.state {
        parts.push(format!("state={}", s.as_str()));
    }
    if let Some(s) = q.sort {
        parts.push(format!(
            "sort={}",
            if s == AlertSort::Agent {
                "agent"
            } else {
                "time"
            }
        ));
    }
    if let Some(o) = q.order {
        parts.push(format!(
            "order={}",
            if o == SortOrder::Asc { "asc" } else { "desc" }
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `GET /api/history/{id}/summary` over the last `start` (like `-15m`).
pub async fn summary(id: u64, start: &str) -> Result<SummaryResponse, ApiError> {
    get_json(&format!(
        "/api/history/{id}/summary?start={}",
        encode(start)
    ))
    .await
}

/// The mounts, interfaces and sensors an agent reported lately, by label
/// kind (`mount`, `iface`, `sensor`), each sorted.
pub fn labels_of(summary: &SummaryResponse, kind: &str) -> Vec<String> {
    let (metric, key) = match kind {
        "mount" => ("disk.used_bytes", kind),
        "iface" => ("net.rx_bps", kind),
        "container" => ("container.running", "name"),
        // Units are not series: the rule names one by hand, or every unit.
        "unit" => return Vec::new(),
        _ => ("temp.celsius", kind),
    };
    let mut out: Vec<String> = summary
        .metrics
        .iter()
        .filter(|m| m.metric == metric)
        .filter_map(|m| m.labels.get(key).cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `GET /api/history/{id}/{group}` with `start` like `-1h` (or RFC 3339).
pub async fn history(
    id: u64,
    group: &str,
    start: &str,
    stop: Option<&str>,
    max_points: u32,
) -> Result<HistoryResponse, ApiError> {
    let mut path = format!(
        "/api/history/{id}/{group}?start={}&max_points={max_points}",
        encode(start)
    );
    if let Some(stop) = stop {
        path.push_str("&stop=");
        path.push_str(&encode(stop));
    }
    get_json(&path).await
}

/// `GET /api/agents/{id}/containers`: what runs on the machine now (its
/// newest report's containers, processes and units).
pub async fn running(id: u64) -> Result<storage::model::ContainersResponse, ApiError> {
    get_json(&format!("/api/agents/{id}/containers")).await
}

/// The container names or units (`kind`) of `now`, sorted.
pub fn running_labels(now: &storage::model::ContainersResponse, kind: &str) -> Vec<String> {
    let mut out: Vec<String> = match kind {
        "container" => now
            .containers
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect(),
        "unit" => now
            .services
            .iter()
            .flatten()
            .map(|s| s.unit.clone())
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

/// `GET /api/history/{id}/containers?name=` over the range from `start`.
pub async fn container_history(
    id: u64,
    name: &str,
    start: &str,
    max_points: u32,
) -> Result<HistoryResponse, ApiError> {
    get_json(&format!(
        "/api/history/{id}/containers?name={}&start={}&max_points={max_points}",
        encode(name),
        encode(start)
    ))
    .await
}

/// Percent-encodes a query value (RFC 3339 times carry `:` and `+`), as
/// `application/x-www-form-urlencoded`, which the server's query parser reads.
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

// ---------------------------------------------------------------------------
// Transport.

/// What to do when the session is gone even after a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unauthorized {
    /// Go to the login page, which sends the user back here afterwards.
    Redirect,
    /// Hand the 401 to the caller.
    Return,
}

/// GET `path` and decode the JSON answer.
pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    send("GET", path, None, Unauthorized::Redirect).await
}

/// POST `body` as JSON to `path` and decode the JSON answer.
pub async fn post_json<T: DeserializeOwned>(
    path: &str,
    body: &impl Serialize,
) -> Result<T, ApiError> {
    send(
        "POST",
        path,
        Some(encode_body(body)?),
        Unauthorized::Redirect,
    )
    .await
}

/// PATCH `body` as JSON to `path` and decode the JSON answer.
pub async fn patch_json<T: DeserializeOwned>(
    path: &str,
    body: &impl Serialize,
) -> Result<T, ApiError> {
    send(
        "PATCH",
        path,
        Some(encode_body(body)?),
        Unauthorized::Redirect,
    )
    .await
}

/// PUT `body` as JSON to `path` and decode the JSON answer.
pub async fn put_json<T: DeserializeOwned>(
    path: &str,
    body: &impl Serialize,
) -> Result<T, ApiError> {
    send(
        "PUT",
        path,
        Some(encode_body(body)?),
        Unauthorized::Redirect,
    )
    .await
}

/// DELETE `path`; the answer body, if any, is ignored.
pub async fn delete(path: &str) -> Result<(), ApiError> {
    send::<serde::de::IgnoredAny>("DELETE", path, None, Unauthorized::Redirect)
        .await
        .map(|_| ())
}

fn encode_body(body: &impl Serialize) -> Result<String, ApiError> {
    serde_json::to_string(body)
        .map_err(|e| ApiError::local(format!("could not encode the request: {e}")))
}

/// Decodes an answer; an empty body reads as JSON `null` (so `()` works).
fn decode<T: DeserializeOwned>(status: u16, path: &str, text: &str) -> Result<T, ApiError> {
    let text = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(text).map_err(|e| ApiError {
        status,
        message: format!("unexpected answer from {}: {e}", short_path(path)),
    })
}

/// The error a failed answer carries, or a description of what failed.
fn error_of(status: u16, method: &str, path: &str, text: &str) -> ApiError {
    let message = serde_json::from_str::<storage::model::ErrorBody>(text)
        .map(|b| b.error)
        .unwrap_or_else(|_| match status {
            404 => format!("{} was not found", short_path(path)),
            502..=504 => "the server is not answering".to_string(),
            _ => format!("{method} {} failed", short_path(path)),
        });
    ApiError { status, message }
}

fn short_path(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// The current path and query, URL-encoded for `/login?next=`.
pub fn login_url_for(path_and_query: &str) -> String {
    if path_and_query.is_empty() || path_and_query == "/" || path_and_query.starts_with("/login") {
        "/login".to_string()
    } else {
        format!("/login?next={}", encode(path_and_query))
    }
}

/// Only same-site absolute paths are followed after login (no open redirect).
pub fn safe_next(next: Option<String>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n,
        _ => "/".to_string(),
    }
}

#[cfg(feature = "hydrate")]
mod transport {
    use super::*;
    use std::cell::RefCell;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    thread_local! {
        /// The refresh in flight, as a JS promise every request that got a
        /// 401 at the same time awaits (a promise can be awaited many times).
        static REFRESH: RefCell<Option<js_sys::Promise>> = const { RefCell::new(None) };
    }

    pub(super) async fn fetch(
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String), ApiError> {
        let network = || {
            ApiError::local(format!(
                "{}: the server could not be reached",
                short_path(path)
            ))
        };
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        init.set_credentials(web_sys::RequestCredentials::SameOrigin);
        if let Some(body) = body {
            init.set_body(&JsValue::from_str(body));
        }
        let request =
            web_sys::Request::new_with_str_and_init(path, &init).map_err(|_| network())?;
        let headers = request.headers();
        let _ = headers.set("Accept", "application/json");
        if body.is_some() {
            let _ = headers.set("Content-Type", "application/json");
        }
        let window = web_sys::window().ok_or_else(network)?;
        let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
            .await
            .map_err(|_| network())?
            .dyn_into()
            .map_err(|_| network())?;
        let status = response.status();
        let text = JsFuture::from(response.text().map_err(|_| network())?)
            .await
            .map_err(|_| network())?
            .as_string()
            .unwrap_or_default();
        Ok((status, text))
    }

    /// One refresh at a time; `true` when the session was renewed.
    pub(super) async fn refresh() -> bool {
        let promise = REFRESH.with(|slot| {
            slot.borrow_mut()
                .get_or_insert_with(|| {
                    wasm_bindgen_futures::future_to_promise(async {
                        let ok = matches!(
                            fetch("POST", "/api/auth/refresh", None).await,
                            Ok((200..=299, _))
                        );
                        REFRESH.with(|slot| slot.borrow_mut().take());
                        Ok(JsValue::from_bool(ok))
                    })
                })
                .clone()
        });
        JsFuture::from(promise)
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    pub(super) fn go_to_login() {
        if let Some(window) = web_sys::window() {
            let location = window.location();
            let here = format!(
                "{}{}",
                location.pathname().unwrap_or_default(),
                location.search().unwrap_or_default()
            );
            let _ = location.set_href(&login_url_for(&here));
        }
    }
}

#[cfg(feature = "hydrate")]
async fn send<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<String>,
    on_401: Unauthorized,
) -> Result<T, ApiError> {
    let (mut status, mut text) = transport::fetch(method, path, body.as_deref()).await?;
    if status == 401 && !path.starts_with("/api/auth/") {
        if transport::refresh().await {
            (status, text) = transport::fetch(method, path, body.as_deref()).await?;
        }
        if status == 401 && on_401 == Unauthorized::Redirect {
            transport::go_to_login();
        }
    }
    if (200..300).contains(&status) {
        decode(status, path, &text)
    } else {
        Err(error_of(status, method, path, &text))
    }
}

#[cfg(not(feature = "hydrate"))]
async fn send<T: DeserializeOwned>(
    _method: &str,
    path: &str,
    _body: Option<String>,
    _on_401: Unauthorized,
) -> Result<T, ApiError> {
    // Keep the helpers "used" in the server build too.
    let _ = (decode::<()>, error_of);
    Err(ApiError::local(format!(
        "{path} can only be fetched from the browser"
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            super::encode("2026-01-01T00:00:00+01:00"),
            "2026-01-01T00%3A00%3A00%2B01%3A00"
        );
        assert_eq!(
            super::encode("/agents/7?range=7d&x=é"),
            "%2Fagents%2F7%3Frange%3D7d%26x%3D%C3%A9"
        );
        assert_eq!(super::encode("-1h"), "-1h");
    }

    use super::*;

    #[test]
    fn errors_read_as_sentences_and_name_their_field() {
        let e = ApiError {
            status: 422,
            message: "threshold: cpu_pct takes a threshold between 0 and 100".into(),
        };
        assert_eq!(e.field(), Some("threshold"));
        let path = ApiError {
            status: 422,
            message: "sections[0].items[1].label: at most 64 characters".into(),
        };
        assert_eq!(path.field(), Some("sections[0].items[1].label"));
        assert_eq!(path.sentence(), "At most 64 characters.");
        assert_eq!(
            e.to_string(),
            "Cpu_pct takes a threshold between 0 and 100."
        );
        let e = ApiError {
            status: 409,
            message: "the name `nas` is taken".into(),
        };
        assert_eq!(e.field(), None);
        assert_eq!(e.to_string(), "The name nas is taken.");
        let e = ApiError {
            status: 500,
            message: "storage failed".into(),
        };
        assert_eq!(e.to_string(), "Storage failed (HTTP 500).");
        assert!(
            ApiError {
                status: 0,
                message: String::new()
            }
            .transient()
        );
        assert!(!e.transient());
    }

    #[test]
    fn next_is_only_a_local_path() {
        assert_eq!(
            safe_next(Some("/agents/3?range=1h".into())),
            "/agents/3?range=1h"
        );
        assert_eq!(safe_next(Some("//evil.example".into())), "/");
        assert_eq!(safe_next(Some("https://evil.example".into())), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn login_url_carries_the_way_back() {
        assert_eq!(login_url_for("/"), "/login");
        assert_eq!(
            login_url_for("/agents/3?r=1h"),
            "/login?next=%2Fagents%2F3%3Fr%3D1h"
        );
        assert_eq!(login_url_for("/login?next=x"), "/login");
    }

    #[test]
    fn empty_answers_decode_as_unit() {
        assert_eq!(decode::<()>(204, "/x", ""), Ok(()));
    }

    #[test]
    fn errors_use_the_server_message() {
        let e = error_of(
            409,
            "POST",
            "/api/agents",
            r#"{"error":"name taken","code":"conflict"}"#,
        );
        // The server's message, as a sentence (no status for a refusal).
        assert_eq!(e.message, "name taken");
        assert_eq!(e.to_string(), "Name taken.");
        let e = error_of(404, "GET", "/api/agents/9?x=1", "");
        assert_eq!(e.message, "/api/agents/9 was not found");
    }

    #[test]
    fn alert_queries_name_only_what_is_set() {
        assert_eq!(alert_query_string(&AlertQuery::default()), "");
        let q = AlertQuery {
            agent_id: Some(3),
            metric: Some(AlertMetric::DiskPct),
            state: Some(AlertState::Firing),
            since: Some(1000),
            sort: Some(AlertSort::Agent),
            order: Some(SortOrder::Asc),
            limit: Some(25),
            offset: Some(50),
            ..Default::default()
        };
        assert_eq!(
            alert_query_string(&q),
            "?agent_id=3&since=1000&limit=25&offset=50&metric=disk_pct&state=firing&sort=agent&order=asc"
        );
    }

    #[test]
    fn agent_info_reads_the_documented_shape() {
        let a: AgentInfo = serde_json::from_str(
            r#"{"id":3,"name":"nas","created_ms":1,"token_state":"active","online":true,
                "last_seen_ms":5,"host":{"hostname":"nas","cores":4}}"#,
        )
        .unwrap();
        assert_eq!(a.token_state, TokenState::Active);
        assert_eq!(a.host.unwrap().cores, Some(4));
    }
}

// Accounts: the admin's Users page, two-factor log-in, sharing and tags.
pub use storage::model::{
    AgentShare, CreateUserRequest, CreatedUser, ManagedUser, NewUserAccess, OneTimePassword,
    RecoveryCodes, ShareAccess, ShareAgentRequest, TwoFactorCode, TwoFactorEnrolment,
    TwoFactorStatus, UpdateUserRequest,
};

pub async fn users() -> Result<Vec<ManagedUser>, ApiError> {
    get_json("/api/admin/users").await
}

pub async fn create_user(req: &CreateUserRequest) -> Result<CreatedUser, ApiError> {
    post_json("/api/admin/users", req).await
}

pub async fn update_user(id: u64, req: &UpdateUserRequest) -> Result<ManagedUser, ApiError> {
    patch_json(&format!("/api/admin/users/{id}"), req).await
}

pub async fn reset_password(id: u64) -> Result<OneTimePassword, ApiError> {
    post_json(&format!("/api/admin/users/{id}/reset-password"), &()).await
}

pub async fn delete_user(id: u64, confirm_username: String) -> Result<(), ApiError> {
    send_json::<serde::de::IgnoredAny>(
        "DELETE",
        &format!("/api/admin/users/{id}"),
        &storage::model::DeleteUserRequest { confirm_username },
    )
    .await
    .map(|_| ())
}

pub async fn admin_settings() -> Result<storage::model::AdminSettings, ApiError> {
    get_json("/api/admin/settings").await
}

pub async fn set_admin_settings(
    s: &storage::model::AdminSettings,
) -> Result<storage::model::AdminSettings, ApiError> {
    put_json("/api/admin/settings", s).await
}

pub async fn invitations() -> Result<Vec<storage::model::PendingInvitation>, ApiError> {
    get_json("/api/admin/invitations").await
}

pub async fn revoke_invitation(username: &str) -> Result<(), ApiError> {
    delete(&format!("/api/admin/invitations/{}", encode(username))).await
}

pub async fn remove_user_two_factor(id: u64) -> Result<(), ApiError> {
    delete(&format!("/api/admin/users/{id}/two-factor")).await
}

pub async fn two_factor() -> Result<TwoFactorStatus, ApiError> {
    get_json("/api/users/me/two-factor").await
}

pub async fn enrol_two_factor() -> Result<TwoFactorEnrolment, ApiError> {
    post_json("/api/users/me/two-factor", &()).await
}

pub async fn confirm_two_factor(code: String) -> Result<RecoveryCodes, ApiError> {
    post_json("/api/users/me/two-factor/confirm", &TwoFactorCode { code }).await
}

pub async fn turn_off_two_factor(code: String) -> Result<(), ApiError> {
    send_json::<serde::de::IgnoredAny>(
        "DELETE",
        "/api/users/me/two-factor",
        &TwoFactorCode { code },
    )
    .await
    .map(|_| ())
}

pub async fn shares(id: u64) -> Result<Vec<AgentShare>, ApiError> {
    get_json(&format!("/api/agents/{id}/shares")).await
}

pub async fn share(id: u64, req: &ShareAgentRequest) -> Result<Vec<AgentShare>, ApiError> {
    send_json("PUT", &format!("/api/agents/{id}/shares"), req).await
}

pub async fn unshare(id: u64, user_id: u64) -> Result<(), ApiError> {
    delete(&format!("/api/agents/{id}/shares/{user_id}")).await
}

pub async fn set_tags(id: u64, tags: Vec<String>) -> Result<AgentInfo, ApiError> {
    send_json("PUT", &format!("/api/agents/{id}/tags"), &Tags { tags }).await
}

#[derive(Serialize)]
struct Tags {
    tags: Vec<String>,
}

/// Logs in through a trusted reverse proxy (when the server has it on).
pub async fn sso() -> Result<User, ApiError> {
    post_json::<TokenResponse>("/api/auth/sso", &())
        .await
        .map(|a| a.user)
}

/// Any method with a JSON body.
async fn send_json<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: &impl Serialize,
) -> Result<T, ApiError> {
    send(
        method,
        path,
        Some(encode_body(body)?),
        Unauthorized::Redirect,
    )
    .await
}
