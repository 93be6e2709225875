//! Alert rules of the caller: `/api/rules`, `/api/rules/{id}`.
//!
//! A rule on someone else's agent, or someone else's rule, answers 404 like
//! a missing one. Invalid values answer 422 with a message that starts with
//! the field's name. A new, edited or re-enabled rule is evaluated at once.
//! A rule watches one agent (`agent_id`) or every agent of its owner with a
//! tag (`target: {"tag": …}`, kept in the catalog's `rule_targets`; its
//! `agent_id` is 0 and `GET /api/rules?agent_id=` does not list it).
//! An account has at most `max_rules_per_user` rules (the admin is exempt);
//! `cooldown_s` is at least a minute (older rules are read with that minimum).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use storage::catalog::{RuleRecord, TAG_RULE_AGENT};
use storage::model::{
    AlertMetric, CreateRuleRequest, DEFAULT_COOLDOWN_S, MAX_RULE_SECONDS, MIN_COOLDOWN_S, Rule,
    UpdateRuleRequest,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::auth::extract::agent_not_found;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::{AppState, RING_WINDOW_MS};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, update, remove))
}

const NAME_MAX: usize = 100;
const DESCRIPTION_MAX: usize = 1000;
const LABEL_MAX: usize = 256;

fn rule_not_found() -> ApiError {
    ApiError::NotFound("no such rule".into())
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::Invalid(format!("{field}: {why}"))
}

/// Trims `text`; empty means "none".
fn optional_text(field: &str, text: Option<String>, max: usize) -> ApiResult<Option<String>> {
    let Some(text) = text else { return Ok(None) };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > max {
        return Err(invalid(field, format!("at most {max} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(field, "control characters are not allowed"));
    }
    if let Some(problem) = crate::text::hidden_problem(text) {
        return Err(invalid(field, problem));
    }
    Ok(Some(text.to_string()))
}

/// Checks a whole rule (after defaults and merging a PATCH).
pub fn validate(rule: &RuleRecord) -> ApiResult<()> {
    let metric = rule.metric;
    if metric.is_check() != crate::checks::is_check_series(rule.agent_id) {
        return Err(invalid(
            "metric",
            if metric.is_check() {
                "check metrics are set on a check: POST /api/checks/{id}/rules"
            } else {
                "a check's rules watch check_down, check_latency_ms or check_cert_days"
            },
        ));
    }
    if let Some(label) = &rule.label {
        match metric.label_kind() {
            None => {
                return Err(invalid(
                    "label",
                    format!("{metric} has no mount, interface or sensor; leave the label out"),
                ));
            }
            Some(_) if label.chars().count() > LABEL_MAX => {
                return Err(invalid("label", format!("at most {LABEL_MAX} characters")));
            }
            Some(_) => {}
        }
    }
    match metric.threshold_range() {
        None => {
            if rule.comparison.is_some() {
                return Err(invalid(
                    "comparison",
                    format!("{metric} rules take no comparison"),
                ));
            }
            if rule.threshold.is_some() {
                return Err(invalid(
                    "threshold",
                    if metric == AlertMetric::Offline {
                        "offline rules take no threshold; set duration_s for the silence that counts as offline".to_string()
                    } else {
                        format!("{metric} rules take no threshold: they watch a condition")
                    },
                ));
            }
        }
        Some((min, max)) => {
            if rule.comparison.is_none() {
                return Err(invalid("comparison", "required: \"gt\" (>) or \"lt\" (<)"));
            }
            let Some(threshold) = rule.threshold else {
                return Err(invalid("threshold", "required"));
            };
            if !threshold.is_finite() || threshold < min || threshold > max {
                return Err(invalid(
                    "threshold",
                    format!("{metric} takes a threshold between {min} and {max}"),
                ));
            }
        }
    }
    if metric == AlertMetric::ContainerRestarts && rule.duration_s.is_none() {
        return Err(invalid(
            "duration_s",
            "required for container_restarts: the window the restarts are counted in",
        ));
    }
    if let Some(d) = rule.duration_s {
        let max = if metric == AlertMetric::Offline {
            MAX_RULE_SECONDS
        } else if metric == AlertMetric::ContainerRestarts {
            // Windows past the ring's are read from the stored counts.
            MAX_RESTART_WINDOW_S
        } else {
            // The window is read from the ring buffer, which keeps 15 minutes.
            u32::try_from(RING_WINDOW_MS / 1000).unwrap_or(900)
        };
        if d > max {
            return Err(invalid(
                "duration_s",
                format!("at most {max} seconds for {metric}"),
            ));
        }
    }
    if !(MIN_COOLDOWN_S..=MAX_RULE_SECONDS).contains(&rule.cooldown_s) {
        return Err(invalid(
            "cooldown_s",
            format!("between {MIN_COOLDOWN_S} and {MAX_RULE_SECONDS} seconds"),
        ));
    }
    Ok(())
}

/// The longest `container_restarts` window: 24 hours.
pub const MAX_RESTART_WINDOW_S: u32 = 86_400;

/// The API view of `rule` with its current firing labels.
pub(crate) fn rule_view(state: &AppState, rule: RuleRecord) -> Rule {
    Rule {
        firing: state.alerting.firing_of(rule.id),
        target: state
            .alerting
            .rule_tag(rule.id)
            .map(|tag| storage::model::RuleTarget { tag }),
        id: rule.id,
        agent_id: rule.agent_id,
        metric: rule.metric,
        label: rule.label,
        comparison: rule.comparison,
        threshold: rule.threshold,
        duration_s: rule.duration_s,
        // A rule stored before the minimum is evaluated with it.
        cooldown_s: rule.cooldown_s.max(MIN_COOLDOWN_S),
        enabled: rule.enabled,
        name: rule.name,
        description: rule.description,
        created_ms: rule.created_ms,
        updated_ms: rule.updated_ms,
    }
}

/// The tag of a rule's `target`, normalized like an agent's tags; 422
/// naming `target.tag` otherwise.
fn target_tag(tag: &str) -> ApiResult<String> {
    match crate::api::tags::normalize_tags(&[tag.to_string()]) {
        Ok(mut tags) if tags.len() == 1 => Ok(tags.remove(0)),
        _ => Err(invalid(
            "target.tag",
            format!(
                "{tag:?} is not a tag: 1 to {} characters, each a letter, a digit, `-`, `_` or `.`",
                crate::api::tags::TAG_MAX_CHARS
            ),
        )),
    }
}

/// The owner of agent `agent_id` when `user_id` may manage its rules: the
/// owner, or an editor it is shared with (a rule always belongs to the
/// agent's owner, whose notification settings it uses). 403 for a viewer,
/// 404 for anyone else.
async fn check_agent(state: &AppState, user_id: u64, agent_id: u64) -> ApiResult<u64> {
    crate::sharing::rules_owner(state, user_id, agent_id).await
}

/// Rule `id` if the caller owns it or edits its agent, else 404.
async fn owned_rule(state: &AppState, user_id: u64, id: u64) -> ApiResult<RuleRecord> {
    match state.catalog(move |c| c.rule(id)).await? {
        Some(rule) if rule.owner_id == user_id => Ok(rule),
        Some(rule)
            if check_agent(state, user_id, rule.agent_id)
                .await
                .is_ok_and(|owner| owner == rule.owner_id) =>
        {
            Ok(rule)
        }
        _ => Err(rule_not_found()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    agent_id: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/api/rules",
    operation_id = "listRules",
    tag = "rules",
    summary = "Your alert rules",
    params(("agent_id" = Option<u64>, Query, description = "Only the rules of this agent")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::Rule>), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<Rule>>> {
    // The rules of one agent are its owner's (also for an editor).
    let owner = match query.agent_id {
        Some(agent_id) => check_agent(&state, user.user_id, agent_id).await?,
        None => user.user_id,
    };
    let rules = state.catalog(move |c| c.rules_of(owner)).await?;
    Ok(Json(
        rules
            .into_iter()
            .filter(|r| query.agent_id.is_none_or(|a| a == r.agent_id))
            .map(|r| rule_view(&state, r))
            .collect(),
    ))
}

#[utoipa::path(
    get,
    path = "/api/rules/{id}",
    operation_id = "getRule",
    tag = "rules",
    summary = "One alert rule",
    params(("id" = u64, Path, description = "Rule id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::Rule), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn one(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Rule>> {
    let id = id.parse::<u64>().map_err(|_| rule_not_found())?;
    let rule = owned_rule(&state, user.user_id, id).await?;
    Ok(Json(rule_view(&state, rule)))
}

#[utoipa::path(
    post,
    path = "/api/rules",
    operation_id = "createRule",
    tag = "rules",
    summary = "Create an alert rule",
    request_body = storage::model::CreateRuleRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = storage::model::Rule), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<CreateRuleRequest>,
) -> ApiResult<(StatusCode, Json<Rule>)> {
    let now = state.clock.now_ms();
    let (agent_id, tag) = match (req.agent_id, req.target) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "target",
                "give agent_id (one agent) or target (every agent with a tag), not both",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "agent_id",
                "required, or a target: {\"tag\": \"vps\"} for every agent with that tag",
            ));
        }
        (Some(agent_id), None) => (agent_id, None),
        (None, Some(target)) => (TAG_RULE_AGENT, Some(target_tag(&target.tag)?)),
    };
    let mut rule = RuleRecord {
        id: 0,
        owner_id: user.user_id,
        agent_id,
        metric: req.metric,
        label: optional_text("label", req.label, LABEL_MAX)?,
        comparison: req.comparison,
        threshold: req.threshold,
        duration_s: req.duration_s.filter(|d| *d > 0),
        cooldown_s: req.cooldown_s.unwrap_or(DEFAULT_COOLDOWN_S),
        enabled: req.enabled.unwrap_or(true),
        name: optional_text("name", req.name, NAME_MAX)?,
        description: optional_text("description", req.description, DESCRIPTION_MAX)?,
        created_ms: now,
        updated_ms: now,
    };
    validate(&rule)?;
    if tag.is_none() {
        rule.owner_id = check_agent(&state, user.user_id, rule.agent_id).await?;
    }
    let owner = rule.owner_id;
    let admin = crate::api::quota::is_admin(&state, owner).await?;
    let _creating = state.quota.creating().await;
    if !admin {
        let count = state.catalog(move |c| c.rules_of(owner)).await?.len();
        let max = state.config.max_rules_per_user;
        crate::api::quota::check_room("max_rules_per_user", "alert rules", count, max)?;
    }
    let alerting = state.alerting.clone();
    let rule = tokio::task::spawn_blocking(move || match tag {
        Some(tag) => alerting.create_tag_rule(&rule, &tag),
        None => alerting.create_rule(&rule),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(crate::auth::catalog_error)?;
    Ok((StatusCode::CREATED, Json(rule_view(&state, rule))))
}

#[utoipa::path(
    patch,
    path = "/api/rules/{id}",
    operation_id = "updateRule",
    tag = "rules",
    summary = "Change an alert rule",
    params(("id" = u64, Path, description = "Rule id")),
    request_body = storage::model::UpdateRuleRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::Rule), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<UpdateRuleRequest>,
) -> ApiResult<Json<Rule>> {
    let id = id.parse::<u64>().map_err(|_| rule_not_found())?;
    let old = owned_rule(&state, user.user_id, id).await?;
    let mut rule = old.clone();
    // Stored before the minimum existed: saved with it from now on.
    rule.cooldown_s = rule.cooldown_s.max(MIN_COOLDOWN_S);
    if let Some(agent_id) = req.agent_id {
        if old.agent_id == TAG_RULE_AGENT {
            return Err(invalid(
                "agent_id",
                "this rule watches every agent with a tag; delete it and create one for an agent",
            ));
        }
        rule.agent_id = agent_id;
    }
    if let Some(metric) = req.metric {
        rule.metric = metric;
        if metric.is_condition() {
            // Switching to a condition: the old comparison/threshold no longer apply.
            rule.comparison = None;
            rule.threshold = None;
        }
        if metric.label_kind() != old.metric.label_kind() {
            rule.label = None;
        }
    }
    if req.label.is_some() {
        rule.label = optional_text("label", req.label, LABEL_MAX)?;
    }
    if let Some(c) = req.comparison {
        rule.comparison = Some(c);
    }
    if let Some(t) = req.threshold {
        rule.threshold = Some(t);
    }
    if let Some(d) = req.duration_s {
        rule.duration_s = (d > 0).then_some(d);
    }
    if let Some(c) = req.cooldown_s {
        rule.cooldown_s = c;
    }
    if let Some(e) = req.enabled {
        rule.enabled = e;
    }
    if req.name.is_some() {
        rule.name = optional_text("name", req.name, NAME_MAX)?;
    }
    if req.description.is_some() {
        rule.description = optional_text("description", req.description, DESCRIPTION_MAX)?;
    }
    rule.updated_ms = state.clock.now_ms();
    validate(&rule)?;
    if rule.agent_id != old.agent_id
        && check_agent(&state, user.user_id, rule.agent_id).await? != old.owner_id
    {
        // A rule stays with its owner: it cannot move to someone else's agent.
        return Err(agent_not_found());
    }
    let alerting = state.alerting.clone();
    let stored = rule.clone();
    let updated = tokio::task::spawn_blocking(move || alerting.update_rule(&stored))
        .await
        .map_err(ApiError::internal)?
        .map_err(crate::auth::catalog_error)?;
    if !updated {
        return Err(rule_not_found());
    }
    Ok(Json(rule_view(&state, rule)))
}

#[utoipa::path(
    delete,
    path = "/api/rules/{id}",
    operation_id = "deleteRule",
    tag = "rules",
    summary = "Delete an alert rule",
    params(("id" = u64, Path, description = "Rule id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = id.parse::<u64>().map_err(|_| rule_not_found())?;
    let user_id = owned_rule(&state, user.user_id, id).await?.owner_id;
    let alerting = state.alerting.clone();
    let deleted = tokio::task::spawn_blocking(move || alerting.delete_rule(user_id, id))
        .await
        .map_err(ApiError::internal)?
        .map_err(crate::auth::catalog_error)?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(rule_not_found())
    }
}
