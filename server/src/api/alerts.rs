//! Alert history of the caller: `GET /api/alerts` (filter, sort, page) and
//! `DELETE /api/alerts` (all, or the same filters). Each user only ever
//! reads their own history; filtering by someone else's agent is a 404.

use axum::extract::State;
use storage::catalog::AlertRecord;
use storage::model::{
    AlertEvent, AlertPage, AlertQuery, AlertSort, AlertsDeleted, DEFAULT_ALERT_PAGE,
    MAX_ALERT_PAGE, SortOrder,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, clear))
}

fn query(q: Query<AlertQuery>) -> ApiResult<AlertQuery> {
    let Query(q) = q;
    if let (Some(since), Some(until)) = (q.since, q.until)
        && since > until
    {
        return Err(ApiError::Invalid("since: must not be after until".into()));
    }
    if q.limit.is_some_and(|l| l == 0 || l > MAX_ALERT_PAGE) {
        return Err(ApiError::Invalid(format!(
            "limit: between 1 and {MAX_ALERT_PAGE}"
        )));
    }
    Ok(q)
}

fn matches(q: &AlertQuery, e: &AlertRecord) -> bool {
    q.agent_id.is_none_or(|a| e.agent_id == a)
        && q.rule_id.is_none_or(|r| e.rule_id == r)
        && q.metric.is_none_or(|m| e.metric == m)
        && q.state.is_none_or(|s| e.state == s)
        && q.since.is_none_or(|t| e.ts_ms >= t)
        && q.until.is_none_or(|t| e.ts_ms < t)
}

/// Whose history to read: the caller's, or, when the filter names an agent
/// shared with the caller, its owner's (filtered to that agent). 404 when
/// the filter names an agent that is neither.
async fn history_owner(state: &AppState, user_id: u64, q: &AlertQuery) -> ApiResult<u64> {
    let Some(agent_id) = q.agent_id else {
        return Ok(user_id);
    };
    let (agent, _) = crate::sharing::access(state, user_id, agent_id).await?;
    Ok(agent.owner_id)
}

/// 404 when the filter names an agent that is not the caller's; 403 when it
/// is only shared with them (clearing history is the owner's).
async fn check_agent(state: &AppState, user_id: u64, q: &AlertQuery) -> ApiResult<()> {
    if history_owner(state, user_id, q).await? == user_id {
        Ok(())
    } else {
        Err(crate::sharing::read_only())
    }
}

#[utoipa::path(
    get,
    path = "/api/alerts",
    operation_id = "listAlerts",
    tag = "alerts",
    summary = "Alert history, newest first, filtered",
    params(storage::model::AlertQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::AlertPage), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    q: Query<AlertQuery>,
) -> ApiResult<Json<AlertPage>> {
    let q = query(q)?;
    let user_id = history_owner(&state, user.user_id, &q).await?;
    let mut events: Vec<AlertRecord> = state
        .catalog(move |c| c.alerts_of(user_id))
        .await?
        .into_iter()
        .filter(|e| matches(&q, e))
        .collect();
    // Stored oldest first; ties by id keep the order of recording.
    match q.sort.unwrap_or_default() {
        AlertSort::Time => events.sort_by_key(|e| (e.ts_ms, e.id)),
        AlertSort::Agent => events.sort_by(|a, b| {
            (a.agent_name.to_lowercase(), a.agent_id, a.ts_ms, a.id).cmp(&(
                b.agent_name.to_lowercase(),
                b.agent_id,
                b.ts_ms,
                b.id,
            ))
        }),
    }
    if q.order.unwrap_or_default() == SortOrder::Desc {
        events.reverse();
    }
    let total = events.len() as u64;
    let offset = q.offset.unwrap_or(0) as usize;
    let limit = q.limit.unwrap_or(DEFAULT_ALERT_PAGE) as usize;
    let mut items: Vec<AlertEvent> = events
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(AlertEvent::from)
        .collect();
    crate::api::channels::name_deliveries(&state, user_id, &mut items).await?;
    Ok(Json(AlertPage { total, items }))
}

#[utoipa::path(
    delete,
    path = "/api/alerts",
    operation_id = "deleteAlerts",
    tag = "alerts",
    summary = "Delete alert history matching the filter",
    params(storage::model::AlertQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::AlertsDeleted), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn clear(
    State(state): State<AppState>,
    user: AuthUser,
    q: Query<AlertQuery>,
) -> ApiResult<Json<AlertsDeleted>> {
    let q = query(q)?;
    check_agent(&state, user.user_id, &q).await?;
    let user_id = user.user_id;
    let deleted = state
        .catalog(move |c| c.delete_alerts_where(user_id, |e| matches(&q, e)))
        .await?;
    Ok(Json(AlertsDeleted { deleted }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Uri;
    use proptest::strategy::Strategy;

    /// Percent-encodes every byte but ASCII letters and digits.
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    proptest::proptest! {
        /// Any filter, of any field, with any text or number: a query or a
        /// 4xx, never a panic.
        #[test]
        fn any_alert_filter_is_an_answer_never_a_panic(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "agent_id", "rule_id", "metric", "state", "since", "until",
                        "sort", "order", "limit", "offset", "other",
                    ]),
                    proptest::prop_oneof![
                        "\\PC{0,20}",
                        proptest::num::i64::ANY.prop_map(|n| n.to_string()),
                        proptest::num::u64::ANY.prop_map(|n| n.to_string()),
                        proptest::sample::select(vec!["cpu_pct", "disk_pct", "firing", "resolved", "asc", "desc", "agent", "ts"]).prop_map(String::from),
                    ],
                ),
                0..6,
            ),
        ) {
            let qs: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            let uri: Uri = format!("/api/alerts?{}", qs.join("&")).parse().unwrap();
            if let Err(e) = crate::error::parse_query::<AlertQuery>(uri.query().unwrap_or("")).and_then(|q| query(Query(q))) {
                proptest::prop_assert!(e.status().is_client_error(), "{e:?}");
            }
        }
    }
}
