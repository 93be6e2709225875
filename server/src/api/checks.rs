//! Uptime checks of the caller: `/api/checks`, `/api/checks/{id}` and its
//! `run`, `uptime`, `history` and `events`.
//!
//! Someone else's check answers 404 like a missing one. Invalid values
//! answer 422 naming the field; a target the outbound guard refuses for the
//! caller is a 422 that says why (see `crate::checks::validate`). An account
//! has at most `max_checks_per_user` checks (the admin is exempt). Header
//! values are never sent back. Results carry fixed phrases, never a body.
//!
//! `runner` in the body picks where a check runs: the server (absent or
//! `null`) or one of the caller's agents (another user's or an unknown
//! agent is a 404 `runner: no such agent`, like an agent a rule names; an
//! agent with `MAX_AGENT_CHECKS` checks a 422). See
//! `crate::checks::agent_run`.

use axum::extract::State;
use axum::http::StatusCode;
use storage::catalog::{CheckRecord, CheckSaved, RuleRecord};
use storage::model::{
    AlertMetric, CheckEvent, CheckHistory, CheckInfo, CheckPoint, CheckResult, CheckRuleRequest,
    CheckSpec, CheckState, CheckUptime, Comparison, DEFAULT_COOLDOWN_S, Rule,
};
use storage::tsdb::{Engine, QueryRequest, Tier};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::history::RangeParams;
use crate::api::history::queries::stopped;
use crate::auth::AuthUser;
use crate::checks::validate::check_spec_on;
use crate::checks::{SERIES_LATENCY, SERIES_UP, series_id};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::outbound::Caller;
use crate::state::{AppState, storage_error};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, replace, remove))
        .routes(routes!(run_now))
        .routes(routes!(uptime))
        .routes(routes!(history))
        .routes(routes!(events))
        .routes(routes!(list_rules, create_rule))
}

const DAY_MS: i64 = 86_400_000;
/// Days of the uptime bars.
pub const UPTIME_DAYS: i64 = 90;
/// Events answered by `GET /api/checks/{id}/events`.
const EVENTS_PAGE: usize = 100;

fn check_not_found() -> ApiError {
    ApiError::NotFound("no such check".into())
}

/// Check `id` (path text) if it is `owner`'s; 404 otherwise.
async fn owned_check(state: &AppState, owner: u64, id: &str) -> ApiResult<CheckRecord> {
    let id = id.parse::<u64>().map_err(|_| check_not_found())?;
    state
        .catalog(move |c| c.check(id))
        .await?
        .filter(|c| c.owner_id == owner)
        .ok_or_else(check_not_found)
}

/// A create or replace body: `runner` and the rest as a [`CheckSpec`]
/// (whose unknown fields are still refused), as [`storage::model::CheckRequest`]
/// describes it.
fn split_request(body: serde_json::Value) -> ApiResult<(CheckSpec, Option<u64>)> {
    let serde_json::Value::Object(mut map) = body else {
        return Err(ApiError::Invalid("the body must be a JSON object".into()));
    };
    let runner = match map.remove("runner") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            ApiError::Invalid("runner: an agent id, or null for the server".into())
        })?),
    };
    // Through axum's JSON reader, so refusals read as for any other body
    // (`kind: unknown variant …`).
    let bytes = serde_json::to_vec(&map).map_err(ApiError::internal)?;
    let spec = axum::Json::<CheckSpec>::from_bytes(&bytes)
        .map_err(|e| ApiError::Invalid(e.body_text()))?
        .0;
    Ok((spec, runner))
}

/// What a refused save answers.
fn not_saved(state: &AppState, saved: CheckSaved) -> ApiError {
    match saved {
        CheckSaved::LimitReached => {
            let max = state.config.max_checks_per_user;
            crate::api::quota::check_room("max_checks_per_user", "checks", usize::MAX, max)
                .err()
                .unwrap_or_else(|| ApiError::Invalid("max_checks_per_user: limit reached".into()))
        }
        CheckSaved::NoSuchAgent => ApiError::NotFound("runner: no such agent".into()),
        CheckSaved::AgentFull => ApiError::Invalid(format!(
            "runner: the agent runs {} checks already (the most one agent runs)",
            storage::model::MAX_AGENT_CHECKS
        )),
        CheckSaved::NotFound | CheckSaved::Saved(_) => check_not_found(),
    }
}

/// `spec` as shown: header values blanked.
fn shown(spec: &CheckSpec) -> CheckSpec {
    let mut spec = spec.clone();
    if let Some(http) = &mut spec.http {
        for h in &mut http.headers {
            h.value = None;
        }
    }
    spec
}

/// Percent of `check_up` samples that were 1 over [start, stop), from the
/// tier that range calls for. Blocking.
pub fn uptime_pct(engine: &Engine, check_id: u64, start_ms: i64, stop_ms: i64) -> Option<f64> {
    let req = QueryRequest {
        agent: series_id(check_id),
        metrics: vec![SERIES_UP.to_string()],
        label_filter: None,
        start_ms,
        stop_ms,
        tier: None,
        interval_ms: Some(stop_ms - start_ms),
        max_points: 0,
    };
    let result = engine.query(&req).ok()?;
    let (sum, count) = result
        .series
        .iter()
        .flat_map(|s| &s.points)
        .fold((0.0, 0u64), |(s, c), p| (s + p.sum, c + p.count));
    (count > 0).then(|| 100.0 * sum / count as f64)
}

/// Percent up per UTC day for the `days` days up to the one holding `now_ms`.
pub fn daily_uptime(
    engine: &Engine,
    check_id: u64,
    now_ms: i64,
    days: i64,
) -> (i64, Vec<Option<f64>>) {
    let first = now_ms.div_euclid(DAY_MS) * DAY_MS - (days - 1) * DAY_MS;
    let mut out = vec![None; usize::try_from(days).unwrap_or(0)];
    let req = QueryRequest {
        agent: series_id(check_id),
        metrics: vec![SERIES_UP.to_string()],
        label_filter: None,
        start_ms: first,
        stop_ms: first + days * DAY_MS,
        tier: Some(Tier::Hour1),
        interval_ms: Some(DAY_MS),
        max_points: 0,
    };
    if let Ok(result) = engine.query(&req) {
        for p in result.series.iter().flat_map(|s| &s.points) {
            let i = (p.ts_ms - first).div_euclid(DAY_MS);
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i))
                && p.count > 0
            {
                *slot = Some(100.0 * p.sum / p.count as f64);
            }
        }
    }
    (first, out)
}

/// The API view of `record` with its live state and uptime (blocking reads
/// of the engine happen in the caller's blocking task).
async fn info(state: &AppState, record: CheckRecord) -> ApiResult<CheckInfo> {
    infos(state, vec![record], None)
        .await?
        .pop()
        .ok_or_else(check_not_found)
}

/// `records` as the API shows them; with `days`, each with its last
/// `days` daily bars (at most [`UPTIME_DAYS`], checked by the caller).
async fn infos(
    state: &AppState,
    records: Vec<CheckRecord>,
    days: Option<i64>,
) -> ApiResult<Vec<CheckInfo>> {
    let engine = state.engine();
    let now = state.clock.now_ms();
    let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    let uptimes = tokio::task::spawn_blocking(move || {
        ids.iter()
            .map(|&id| {
                (
                    uptime_pct(&engine, id, now - DAY_MS, now + 1),
                    uptime_pct(&engine, id, now - 30 * DAY_MS, now + 1),
                    days.map(|d| daily_uptime(&engine, id, now, d).1),
                )
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(records
        .into_iter()
        .zip(uptimes)
        .map(|(r, (uptime_24h, uptime_30d, days))| {
            let status = state.checks.status(r.id);
            let (st, since, failures, last) = match status {
                Some(s) => (s.state, s.since_ms, s.failures, s.last),
                None => (CheckState::Pending, None, 0, None),
            };
            CheckInfo {
                id: r.id,
                created_ms: r.created_ms,
                updated_ms: r.updated_ms,
                spec: shown(&r.spec),
                runner: state.checks.runner(r.id),
                state: st,
                state_since_ms: since,
                failures,
                last,
                uptime_24h,
                uptime_30d,
                days,
            }
        })
        .collect())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    days: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/checks",
    operation_id = "listChecks",
    tag = "checks",
    summary = "Your uptime checks with their state and uptime (and, with days, their daily bars)",
    params(("days" = Option<u32>, Query, description = "Add each check's percent up per UTC day for the last 1 to 90 days")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::CheckInfo>), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 422, description = "days is not 1 to 90", body = storage::model::ErrorBody))
)]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<CheckInfo>>> {
    let days = match query.days.map(i64::from) {
        Some(d) if !(1..=UPTIME_DAYS).contains(&d) => {
            return Err(ApiError::Invalid(format!(
                "days: 1 to {UPTIME_DAYS} (the daily bars that are kept)"
            )));
        }
        other => other,
    };
    let owner = user.user_id;
    let records = state.catalog(move |c| c.checks_of(owner)).await?;
    Ok(Json(infos(&state, records, days).await?))
}

#[utoipa::path(
    post,
    path = "/api/checks",
    operation_id = "createCheck",
    tag = "checks",
    summary = "Create an uptime check",
    request_body = storage::model::CheckRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = storage::model::CheckInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "runner: no such agent (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value, a target the outbound guard refuses, or too many checks", body = storage::model::ErrorBody))
)]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<CheckInfo>)> {
    let (spec, runner) = split_request(body)?;
    let owner = user.user_id;
    let admin = crate::api::quota::is_admin(&state, owner).await?;
    let caller = Caller::of(admin);
    let spec = check_spec_on(&state.outbound, spec, caller, None, runner.is_some()).await?;
    let max = (!admin).then_some(state.config.max_checks_per_user);
    let now = state.clock.now_ms();
    let record = match state
        .catalog(move |c| c.create_check_on(owner, &spec, now, max, runner))
        .await?
    {
        CheckSaved::Saved(record) => record,
        other => return Err(not_saved(&state, other)),
    };
    tracing::info!(
        check_id = record.id,
        owner_id = owner,
        runner,
        "check created"
    );
    state.checks.upsert_on(record.clone(), caller, runner);
    Ok((StatusCode::CREATED, Json(info(&state, record).await?)))
}

#[utoipa::path(
    get,
    path = "/api/checks/{id}",
    operation_id = "getCheck",
    tag = "checks",
    summary = "One uptime check",
    params(("id" = u64, Path, description = "Check id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::CheckInfo), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn one(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<CheckInfo>> {
    let record = owned_check(&state, user.user_id, &id).await?;
    Ok(Json(info(&state, record).await?))
}

#[utoipa::path(
    put,
    path = "/api/checks/{id}",
    operation_id = "replaceCheck",
    tag = "checks",
    summary = "Replace an uptime check (a header with value null keeps its stored value)",
    params(("id" = u64, Path, description = "Check id")),
    request_body = storage::model::CheckRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::CheckInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such check or runner agent (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value or a target the outbound guard refuses", body = storage::model::ErrorBody))
)]
async fn replace(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Json<CheckInfo>> {
    let owner = user.user_id;
    let old = owned_check(&state, owner, &id).await?;
    let (spec, runner) = split_request(body)?;
    let caller = Caller::of(crate::api::quota::is_admin(&state, owner).await?);
    let spec = check_spec_on(
        &state.outbound,
        spec,
        caller,
        Some(&old.spec),
        runner.is_some(),
    )
    .await?;
    let now = state.clock.now_ms();
    let id = old.id;
    let record = match state
        .catalog(move |c| c.update_check_on(owner, id, &spec, now, runner))
        .await?
    {
        CheckSaved::Saved(record) => record,
        other => return Err(not_saved(&state, other)),
    };
    state.checks.upsert_on(record.clone(), caller, runner);
    Ok(Json(info(&state, record).await?))
}

#[utoipa::path(
    delete,
    path = "/api/checks/{id}",
    operation_id = "deleteCheck",
    tag = "checks",
    summary = "Delete an uptime check with its results and events",
    params(("id" = u64, Path, description = "Check id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let owner = user.user_id;
    let id = owned_check(&state, owner, &id).await?.id;
    if !state.catalog(move |c| c.delete_check(owner, id)).await? {
        return Err(check_not_found());
    }
    state.checks.remove(id);
    let alerting = state.alerting.clone();
    tokio::task::spawn_blocking(move || alerting.agent_deleted(owner, series_id(id)))
        .await
        .map_err(ApiError::internal)?
        .map_err(crate::auth::catalog_error)?;
    let engine = state.engine();
    tokio::task::spawn_blocking(move || engine.delete_agent(series_id(id)))
        .await
        .map_err(ApiError::internal)?
        .map_err(storage_error)?;
    tracing::info!(check_id = id, "check deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/checks/{id}/run",
    operation_id = "runCheck",
    tag = "checks",
    summary = "Run a check now; the result is recorded like a scheduled run",
    params(("id" = u64, Path, description = "Check id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::CheckResult), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 409, description = "The check is running already, or an agent runs it", body = storage::model::ErrorBody))
)]
async fn run_now(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<CheckResult>> {
    let id = owned_check(&state, user.user_id, &id).await?.id;
    if let Some(agent) = state.checks.runner(id) {
        return Err(ApiError::Conflict(format!(
            "agent {agent} runs this check: its next result comes with the agent's reports"
        )));
    }
    state
        .checks
        .run_now(id)
        .await
        .map(Json)
        .ok_or_else(|| ApiError::Conflict("the check is running already; try again".into()))
}

#[utoipa::path(
    get,
    path = "/api/checks/{id}/uptime",
    operation_id = "checkUptime",
    tag = "checks",
    summary = "Uptime over 24 h, 7 d, 30 d, 1 y and per day for 90 days",
    params(("id" = u64, Path, description = "Check id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::CheckUptime), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn uptime(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<CheckUptime>> {
    let id = owned_check(&state, user.user_id, &id).await?.id;
    let engine = state.engine();
    let now = state.clock.now_ms();
    let answer = tokio::task::spawn_blocking(move || {
        let pct = |days: i64| uptime_pct(&engine, id, now - days * DAY_MS, now + 1);
        let (days_start_ms, days) = daily_uptime(&engine, id, now, UPTIME_DAYS);
        CheckUptime {
            h24: pct(1),
            d7: pct(7),
            d30: pct(30),
            y1: pct(365),
            days,
            days_start_ms,
        }
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(answer))
}

#[utoipa::path(
    get,
    path = "/api/checks/{id}/history",
    operation_id = "checkHistory",
    tag = "checks",
    summary = "Latency and percent up over a range (the agents' range parameters)",
    params(("id" = u64, Path, description = "Check id"), RangeParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::CheckHistory), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<RangeParams>,
) -> ApiResult<Json<CheckHistory>> {
    let owner = user.user_id;
    let id = owned_check(&state, owner, &id).await?.id;
    let engine = state.engine();
    let retention_ms = Tier::ALL
        .into_iter()
        .map(|t| engine.config().retention_ms(t))
        .max()
        .unwrap_or(0);
    let range = params.check(state.clock.now_ms(), retention_ms)?;
    let req = QueryRequest {
        agent: series_id(id),
        metrics: vec![SERIES_UP.to_string(), SERIES_LATENCY.to_string()],
        label_filter: None,
        start_ms: range.start_ms,
        stop_ms: range.stop_ms,
        tier: range.tier,
        interval_ms: range.interval_ms,
        max_points: range.max_points,
    };
    let permit = state.history.admit(owner).await?;
    let result = state
        .history
        .run(permit, move |budget| engine.query_within(&req, budget))
        .await?
        .map_err(stopped)?;
    let mut by_ts: std::collections::BTreeMap<i64, CheckPoint> = Default::default();
    for series in &result.series {
        for p in &series.points {
            let point = by_ts.entry(p.ts_ms).or_insert(CheckPoint {
                ts_ms: p.ts_ms,
                latency_ms: None,
                up_pct: None,
            });
            if p.count == 0 {
                continue;
            }
            if series.key.metric == SERIES_UP {
                point.up_pct = Some(100.0 * p.sum / p.count as f64);
            } else if series.key.metric == SERIES_LATENCY {
                point.latency_ms = Some(p.avg());
            }
        }
    }
    Ok(Json(CheckHistory {
        start_ms: result.start_ms,
        stop_ms: result.stop_ms,
        interval_ms: result.interval_ms,
        points: by_ts.into_values().collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/checks/{id}/events",
    operation_id = "checkEvents",
    tag = "checks",
    summary = "The check's last 100 changes between up and down, newest first",
    params(("id" = u64, Path, description = "Check id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::CheckEvent>), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<CheckEvent>>> {
    let id = owned_check(&state, user.user_id, &id).await?.id;
    let records = state
        .catalog(move |c| c.check_events(id, EVENTS_PAGE + 1))
        .await?;
    // How long the state before each event lasted: the gap to the older one.
    let out = records
        .iter()
        .take(EVENTS_PAGE)
        .enumerate()
        .map(|(i, r)| CheckEvent {
            ts_ms: r.ts_ms,
            state: r.state,
            error: r.error.clone(),
            previous_ms: records.get(i + 1).map(|older| r.ts_ms - older.ts_ms),
        })
        .collect();
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/api/checks/{id}/rules",
    operation_id = "listCheckRules",
    tag = "checks",
    summary = "The alert rules of a check",
    params(("id" = u64, Path, description = "Check id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::Rule>), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn list_rules(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Rule>>> {
    let owner = user.user_id;
    let id = owned_check(&state, owner, &id).await?.id;
    let rules = state.catalog(move |c| c.rules_of(owner)).await?;
    Ok(Json(
        rules
            .into_iter()
            .filter(|r| r.agent_id == series_id(id))
            .map(|r| crate::api::rules::rule_view(&state, r))
            .collect(),
    ))
}

#[utoipa::path(
    post,
    path = "/api/checks/{id}/rules",
    operation_id = "createCheckRule",
    tag = "checks",
    summary = "Alert when the check is down, slow, or its certificate expires soon",
    params(("id" = u64, Path, description = "Check id")),
    request_body = storage::model::CheckRuleRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = storage::model::Rule), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value or too many rules", body = storage::model::ErrorBody))
)]
async fn create_rule(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<CheckRuleRequest>,
) -> ApiResult<(StatusCode, Json<Rule>)> {
    let owner = user.user_id;
    let check = owned_check(&state, owner, &id).await?;
    if !req.metric.is_check() {
        return Err(ApiError::Invalid(
            "metric: check_down, check_latency_ms or check_cert_days".into(),
        ));
    }
    let comparison = match req.metric {
        AlertMetric::CheckDown => req.comparison,
        AlertMetric::CheckCertDays => req.comparison.or(Some(Comparison::Lt)),
        _ => req.comparison.or(Some(Comparison::Gt)),
    };
    let now = state.clock.now_ms();
    let name = match req
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
    {
        Some(n) if n.chars().count() > 100 || n.chars().any(char::is_control) => {
            return Err(ApiError::Invalid(
                "name: at most 100 characters, no control characters".into(),
            ));
        }
        other => other,
    };
    let rule = RuleRecord {
        id: 0,
        owner_id: owner,
        agent_id: series_id(check.id),
        metric: req.metric,
        label: None,
        comparison,
        threshold: req.threshold,
        duration_s: req.duration_s.filter(|d| *d > 0),
        cooldown_s: req.cooldown_s.unwrap_or(DEFAULT_COOLDOWN_S),
        enabled: true,
        name,
        description: None,
        created_ms: now,
        updated_ms: now,
    };
    crate::api::rules::validate(&rule)?;
    let admin = crate::api::quota::is_admin(&state, owner).await?;
    let _creating = state.quota.creating().await;
    if !admin {
        let count = state.catalog(move |c| c.rules_of(owner)).await?.len();
        let max = state.config.max_rules_per_user;
        crate::api::quota::check_room("max_rules_per_user", "alert rules", count, max)?;
    }
    let alerting = state.alerting.clone();
    let check_id = check.id;
    let rule = tokio::task::spawn_blocking(move || alerting.create_check_rule(&rule, check_id))
        .await
        .map_err(ApiError::internal)?
        .map_err(crate::auth::catalog_error)?;
    tracing::info!(rule_id = rule.id, check_id, "check rule created");
    Ok((
        StatusCode::CREATED,
        Json(crate::api::rules::rule_view(&state, rule)),
    ))
}
