//! Status pages of the caller: `/api/status-pages`, `/api/status-pages/{id}`
//! and their incidents. The public side is `crate::status`.
//!
//! Someone else's page is a 404. A slug that is taken is a 409, one that is
//! not URL-safe a 422 (`slug: ...`). A private page's secret key is made by
//! the server and shown once, in the answer that made the page private;
//! only its SHA-256 is kept; `POST /api/status-pages/{id}/key` replaces it
//! (the old link stops working). Saving a page reloads the maintenance windows
//! that mute its items' alerts.

use axum::extract::State;
use axum::http::StatusCode;
use storage::catalog::StatusPageRecord;
use storage::model::{Incident, IncidentRequest, IncidentUpdate, StatusPageInfo, StatusPageSpec};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::auth::tokens::{hash_token, new_token};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::state::AppState;
use crate::status::{INCIDENTS_MAX, MESSAGE_MAX, UPDATES_MAX, check_spec, load_maintenance};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, replace, remove))
        .routes(routes!(open_incident))
        .routes(routes!(update_incident))
        .routes(routes!(new_key))
}

/// Most status pages per account (the admin too).
const PAGES_MAX: usize = 20;

fn page_not_found() -> ApiError {
    ApiError::NotFound("no such status page".into())
}

fn slug_taken() -> ApiError {
    ApiError::Conflict("slug: another status page has this address".into())
}

fn info(r: StatusPageRecord, key: Option<String>) -> StatusPageInfo {
    StatusPageInfo {
        id: r.id,
        spec: r.spec,
        incidents: r.incidents,
        created_ms: r.created_ms,
        updated_ms: r.updated_ms,
        key,
    }
}

async fn owned_page(state: &AppState, owner: u64, id: &str) -> ApiResult<StatusPageRecord> {
    let id = id.parse::<u64>().map_err(|_| page_not_found())?;
    state
        .catalog(move |c| c.status_page(id))
        .await?
        .filter(|p| p.owner_id == owner)
        .ok_or_else(page_not_found)
}

async fn reload(state: &AppState) -> ApiResult<()> {
    let alerting = state.alerting.clone();
    state.catalog(move |c| load_maintenance(c, &alerting)).await
}

#[utoipa::path(
    get,
    path = "/api/status-pages",
    operation_id = "listStatusPages",
    tag = "status pages",
    summary = "Your status pages",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::StatusPageInfo>), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<StatusPageInfo>>> {
    let owner = user.user_id;
    let pages = state.catalog(|c| c.all_status_pages()).await?;
    Ok(Json(
        pages
            .into_iter()
            .filter(|p| p.owner_id == owner)
            .map(|p| info(p, None))
            .collect(),
    ))
}

#[utoipa::path(
    post,
    path = "/api/status-pages",
    operation_id = "createStatusPage",
    tag = "status pages",
    summary = "Create a status page (a private one's key is in this answer only)",
    request_body = storage::model::StatusPageSpec,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = storage::model::StatusPageInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 409, description = "The slug is taken", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(spec): Json<StatusPageSpec>,
) -> ApiResult<(StatusCode, Json<StatusPageInfo>)> {
    let owner = user.user_id;
    let now = state.clock.now_ms();
    let key = spec.private.then(|| new_token("sp_"));
    let key_hash = key.as_deref().map(hash_token);
    let _creating = state.quota.creating().await;
    let created = state
        .catalog(move |c| {
            let spec = match check_spec(c, owner, spec) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            let count = c
                .all_status_pages()?
                .iter()
                .filter(|p| p.owner_id == owner)
                .count();
            if count >= PAGES_MAX {
                return Ok(Err(ApiError::Invalid(format!(
                    "status_pages: an account may have at most {PAGES_MAX}"
                ))));
            }
            let record = StatusPageRecord {
                id: 0,
                owner_id: owner,
                spec,
                key_hash,
                incidents: Vec::new(),
                created_ms: now,
                updated_ms: now,
            };
            Ok(c.create_status_page(&record)?.ok_or_else(slug_taken))
        })
        .await??;
    reload(&state).await?;
    Ok((StatusCode::CREATED, Json(info(created, key))))
}

#[utoipa::path(
    get,
    path = "/api/status-pages/{id}",
    operation_id = "getStatusPage",
    tag = "status pages",
    summary = "One status page",
    params(("id" = u64, Path, description = "Status page id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::StatusPageInfo), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn one(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<StatusPageInfo>> {
    Ok(Json(info(
        owned_page(&state, user.user_id, &id).await?,
        None,
    )))
}

#[utoipa::path(
    put,
    path = "/api/status-pages/{id}",
    operation_id = "replaceStatusPage",
    tag = "status pages",
    summary = "Replace a status page (making it private makes a new key, shown once)",
    params(("id" = u64, Path, description = "Status page id")),
    request_body = storage::model::StatusPageSpec,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::StatusPageInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 409, description = "The slug is taken", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn replace(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(spec): Json<StatusPageSpec>,
) -> ApiResult<Json<StatusPageInfo>> {
    let owner = user.user_id;
    let old = owned_page(&state, owner, &id).await?;
    let now = state.clock.now_ms();
    let key = (spec.private && old.key_hash.is_none()).then(|| new_token("sp_"));
    let key_hash = match (&key, spec.private) {
        (Some(k), _) => Some(hash_token(k)),
        (None, true) => old.key_hash,
        (None, false) => None,
    };
    let record = state
        .catalog(move |c| {
            let spec = match check_spec(c, owner, spec) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            let record = StatusPageRecord {
                spec,
                key_hash,
                updated_ms: now,
                ..old
            };
            Ok(match c.update_status_page(&record)? {
                None => Err(page_not_found()),
                Some(false) => Err(slug_taken()),
                Some(true) => Ok(record),
            })
        })
        .await??;
    reload(&state).await?;
    Ok(Json(info(record, key)))
}

#[utoipa::path(
    delete,
    path = "/api/status-pages/{id}",
    operation_id = "deleteStatusPage",
    tag = "status pages",
    summary = "Delete a status page",
    params(("id" = u64, Path, description = "Status page id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let owner = user.user_id;
    let id = owned_page(&state, owner, &id).await?.id;
    if !state
        .catalog(move |c| c.delete_status_page(owner, id))
        .await?
    {
        return Err(page_not_found());
    }
    reload(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn message(text: &str) -> ApiResult<String> {
    let t = text.trim();
    if t.is_empty()
        || t.chars().count() > MESSAGE_MAX
        || t.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ApiError::Invalid(format!(
            "message: 1 to {MESSAGE_MAX} characters, no control characters"
        )));
    }
    Ok(t.to_string())
}

async fn save(state: &AppState, record: StatusPageRecord) -> ApiResult<StatusPageRecord> {
    state
        .catalog(move |c| {
            Ok(match c.update_status_page(&record)? {
                Some(true) => Ok(record),
                _ => Err(page_not_found()),
            })
        })
        .await?
}

#[utoipa::path(
    post,
    path = "/api/status-pages/{id}/incidents",
    operation_id = "openIncident",
    tag = "status pages",
    summary = "Open an incident on a status page",
    params(("id" = u64, Path, description = "Status page id")),
    request_body = storage::model::IncidentRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = storage::model::StatusPageInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn open_incident(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<IncidentRequest>,
) -> ApiResult<(StatusCode, Json<StatusPageInfo>)> {
    let mut page = owned_page(&state, user.user_id, &id).await?;
    let title = req.title.as_deref().unwrap_or("").trim().to_string();
    if title.is_empty() || title.chars().count() > 100 || title.chars().any(char::is_control) {
        return Err(ApiError::Invalid("title: 1 to 100 characters".into()));
    }
    let text = message(&req.message)?;
    let now = state.clock.now_ms();
    if page.incidents.len() >= INCIDENTS_MAX {
        // The oldest resolved one makes room; with none resolved, refuse.
        let Some(i) = page.incidents.iter().position(|i| i.resolved_ms.is_some()) else {
            return Err(ApiError::Invalid(format!(
                "incidents: at most {INCIDENTS_MAX} open; resolve one first"
            )));
        };
        page.incidents.remove(i);
    }
    let next = page.incidents.iter().map(|i| i.id).max().unwrap_or(0) + 1;
    page.incidents.push(Incident {
        id: next,
        title,
        created_ms: now,
        resolved_ms: req.resolved.then_some(now),
        updates: vec![IncidentUpdate {
            ts_ms: now,
            message: text,
        }],
    });
    let page = save(&state, page).await?;
    Ok((StatusCode::CREATED, Json(info(page, None))))
}

#[utoipa::path(
    post,
    path = "/api/status-pages/{id}/incidents/{incident}",
    operation_id = "updateIncident",
    tag = "status pages",
    summary = "Add an update to an incident, and resolve it with resolved: true",
    params(("id" = u64, Path, description = "Status page id"), ("incident" = u64, Path, description = "Incident id")),
    request_body = storage::model::IncidentRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::StatusPageInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn update_incident(
    State(state): State<AppState>,
    user: AuthUser,
    Path((id, incident)): Path<(String, String)>,
    Json(req): Json<IncidentRequest>,
) -> ApiResult<Json<StatusPageInfo>> {
    let mut page = owned_page(&state, user.user_id, &id).await?;
    let text = message(&req.message)?;
    let now = state.clock.now_ms();
    let incident_id = incident.parse::<u64>().ok();
    let Some(found) = page
        .incidents
        .iter_mut()
        .find(|i| Some(i.id) == incident_id)
    else {
        return Err(ApiError::NotFound("no such incident".into()));
    };
    if found.updates.len() >= UPDATES_MAX {
        return Err(ApiError::Invalid(format!(
            "message: an incident has at most {UPDATES_MAX} updates"
        )));
    }
    found.updates.push(IncidentUpdate {
        ts_ms: now,
        message: text,
    });
    if req.resolved && found.resolved_ms.is_none() {
        found.resolved_ms = Some(now);
    }
    let page = save(&state, page).await?;
    Ok(Json(info(page, None)))
}

#[utoipa::path(
    post,
    path = "/api/status-pages/{id}/key",
    operation_id = "newStatusPageKey",
    tag = "status pages",
    summary = "Replace a private page's secret key (the old link stops working; the new key is in this answer only)",
    params(("id" = u64, Path, description = "Status page id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::StatusPageInfo), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "The page is public", body = storage::model::ErrorBody))
)]
async fn new_key(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<StatusPageInfo>> {
    let mut page = owned_page(&state, user.user_id, &id).await?;
    if page.key_hash.is_none() {
        return Err(ApiError::Invalid(
            "private: the page is public; make it private to give it a key".into(),
        ));
    }
    let key = new_token("sp_");
    page.key_hash = Some(hash_token(&key));
    page.updated_ms = state.clock.now_ms();
    let page = save(&state, page).await?;
    Ok(Json(info(page, Some(key))))
}
