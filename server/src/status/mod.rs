//! Public status pages: `/status/{slug}` (server-rendered HTML, no script),
//! `/status/{slug}.json`, `/status/{slug}/badge/{n}.svg` (the n-th item,
//! from 1), and the rules their owners' input must follow.
//!
//! A page shows only what its owner chose: per item a label (default the
//! check's or agent's name), up/down, 90 daily uptime bars (checks), CPU and
//! memory (agents, if ticked) and the check's target (if "show target" is
//! ticked). Never an id, a hostname, an address, an error text or a body.
//! Public pages are cacheable for [`CACHE_S`] seconds; a private page needs
//! its secret key (`?key=`, compared by SHA-256) and is never cached.
//! Maintenance windows mute the alerts of the page's items (see
//! [`load_maintenance`]) and the page says so.

pub mod render;

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use storage::catalog::{Catalog, CatalogError, StatusPageRecord};
use storage::model::{CheckState, Incident, MaintenanceWindow, StatusItemKind, StatusPageSpec};

use crate::alerting::Alerting;
use crate::api::checks::{UPTIME_DAYS, daily_uptime, uptime_pct};
use crate::auth::tokens::hash_token;
use crate::error::{ApiError, ApiResult, Path, Query};
use crate::state::AppState;

/// Seconds a public page may be cached.
pub const CACHE_S: u32 = 5;
pub const SLUG_MAX: usize = 48;
const TITLE_MAX: usize = 100;
const DESCRIPTION_MAX: usize = 2_000;
const SECTIONS_MAX: usize = 20;
const ITEMS_MAX: usize = 100;
const WINDOWS_MAX: usize = 50;
pub const INCIDENTS_MAX: usize = 50;
pub const UPDATES_MAX: usize = 50;
/// Longest incident message, characters.
pub const MESSAGE_MAX: usize = 2_000;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/status/{slug}", get(page))
        .route("/status/{slug}/badge/{item}", get(badge))
        .route("/status/_/style.css", get(style))
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::Invalid(format!("{field}: {why}"))
}

fn text(field: &str, value: &str, max: usize, required: bool) -> ApiResult<String> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(invalid(field, "required"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(field, "control characters are not allowed"));
    }
    if let Some(problem) = crate::text::hidden_problem(value) {
        return Err(invalid(field, problem));
    }
    Ok(value.to_string())
}

/// Whether `slug` is a page address: 1-48 of `a-z`, `0-9` and `-`, not
/// starting or ending with `-`.
pub fn slug_ok(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= SLUG_MAX
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `spec` checked for `owner`: every item is one of the owner's checks or
/// agents. 422 naming the field otherwise.
pub fn check_spec(
    catalog: &Catalog,
    owner: u64,
    spec: StatusPageSpec,
) -> ApiResult<StatusPageSpec> {
    let mut spec = spec;
    if !slug_ok(&spec.slug) {
        return Err(invalid(
            "slug",
            format!("1 to {SLUG_MAX} of a-z, 0-9 and -, not starting or ending with -"),
        ));
    }
    spec.title = text("title", &spec.title, TITLE_MAX, true)?;
    spec.description = match &spec.description {
        Some(d) => Some(text("description", d, DESCRIPTION_MAX, false)?).filter(|d| !d.is_empty()),
        None => None,
    };
    if spec.sections.len() > SECTIONS_MAX {
        return Err(invalid("sections", format!("at most {SECTIONS_MAX}")));
    }
    let items: usize = spec.sections.iter().map(|s| s.items.len()).sum();
    if items > ITEMS_MAX {
        return Err(invalid(
            "sections",
            format!("at most {ITEMS_MAX} items in all"),
        ));
    }
    let checks: Vec<u64> = catalog
        .checks_of(owner)
        .map_err(crate::auth::catalog_error)?
        .iter()
        .map(|c| c.id)
        .collect();
    let agents: Vec<u64> = catalog
        .agents_of(owner)
        .map_err(crate::auth::catalog_error)?
        .iter()
        .map(|a| a.id)
        .collect();
    for (i, section) in spec.sections.iter_mut().enumerate() {
        section.title = text(
            &format!("sections[{i}].title"),
            &section.title,
            TITLE_MAX,
            false,
        )?;
        for (j, item) in section.items.iter_mut().enumerate() {
            let field = format!("sections[{i}].items[{j}]");
            let known = match item.kind {
                StatusItemKind::Check => checks.contains(&item.id),
                StatusItemKind::Agent => agents.contains(&item.id),
            };
            if !known {
                return Err(invalid(
                    &format!("{field}.id"),
                    "no such check or agent of yours",
                ));
            }
            if item.kind == StatusItemKind::Agent && item.show_target {
                return Err(invalid(&format!("{field}.show_target"), "only for checks"));
            }
            item.label = match &item.label {
                Some(l) => {
                    Some(text(&format!("{field}.label"), l, 64, false)?).filter(|l| !l.is_empty())
                }
                None => None,
            };
        }
    }
    if spec.maintenance.len() > WINDOWS_MAX {
        return Err(invalid(
            "maintenance",
            format!("at most {WINDOWS_MAX} windows"),
        ));
    }
    for (i, w) in spec.maintenance.iter_mut().enumerate() {
        w.title = text(
            &format!("maintenance[{i}].title"),
            &w.title,
            TITLE_MAX,
            true,
        )?;
        if w.end_ms <= w.start_ms {
            return Err(invalid(
                &format!("maintenance[{i}].end_ms"),
                "must be after start_ms",
            ));
        }
    }
    Ok(spec)
}

/// Hands every page's maintenance windows to alerting, by the engine id of
/// each item (agent id, or the check's series id). Blocking.
pub fn load_maintenance(catalog: &Catalog, alerting: &Alerting) -> Result<(), CatalogError> {
    let mut windows: HashMap<u64, Vec<(i64, i64)>> = HashMap::new();
    for page in catalog.all_status_pages()? {
        for item in page.spec.sections.iter().flat_map(|s| &s.items) {
            let id = match item.kind {
                StatusItemKind::Check => crate::checks::series_id(item.id),
                StatusItemKind::Agent => item.id,
            };
            windows
                .entry(id)
                .or_default()
                .extend(page.spec.maintenance.iter().map(|w| (w.start_ms, w.end_ms)));
        }
    }
    alerting.set_maintenance(windows);
    Ok(())
}

/// The page as the public sees it (`.json`, and what the HTML shows).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicPage {
    pub title: String,
    pub description: Option<String>,
    pub generated_ms: i64,
    /// `up` when every item is up, `down` when any is, else `unknown`;
    /// `maintenance` while a window is open.
    pub overall: String,
    pub sections: Vec<PublicSection>,
    pub incidents: Vec<Incident>,
    /// Windows now open or still to come.
    pub maintenance: Vec<MaintenanceWindow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicSection {
    pub title: String,
    pub items: Vec<PublicItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicItem {
    pub name: String,
    /// `up`, `down` or `unknown`.
    pub state: String,
    pub in_maintenance: bool,
    /// Checks: percent up over 30 days and per UTC day (90, oldest first).
    pub uptime_30d: Option<f64>,
    pub days: Vec<Option<f64>>,
    /// Checks with "show target" ticked.
    pub target: Option<String>,
    /// Agents with metrics ticked.
    pub cpu_pct: Option<f64>,
    pub memory_pct: Option<f64>,
}

/// Builds the public view. Blocking (catalog and engine reads).
pub fn public_page(state: &AppState, page: &StatusPageRecord) -> Result<PublicPage, CatalogError> {
    let now = state.clock.now_ms();
    let engine = state.engine();
    let mut sections = Vec::new();
    let mut any_down = false;
    let mut all_up = true;
    for section in &page.spec.sections {
        let mut items = Vec::new();
        for item in &section.items {
            let mut out = PublicItem {
                name: String::new(),
                state: "unknown".into(),
                in_maintenance: false,
                uptime_30d: None,
                days: Vec::new(),
                target: None,
                cpu_pct: None,
                memory_pct: None,
            };
            match item.kind {
                StatusItemKind::Check => {
                    let Some(check) = state
                        .catalog
                        .check(item.id)?
                        .filter(|c| c.owner_id == page.owner_id)
                    else {
                        continue;
                    };
                    out.name = item.label.clone().unwrap_or(check.spec.name.clone());
                    out.state = match state.checks.status(item.id).map(|s| s.state) {
                        Some(CheckState::Up) => "up",
                        Some(CheckState::Down) => "down",
                        _ => "unknown",
                    }
                    .into();
                    out.in_maintenance = state
                        .alerting
                        .in_maintenance(crate::checks::series_id(item.id), now);
                    out.uptime_30d = uptime_pct(&engine, item.id, now - 30 * 86_400_000, now + 1);
                    out.days = daily_uptime(&engine, item.id, now, UPTIME_DAYS).1;
                    if item.show_target {
                        out.target = Some(check.spec.target.clone());
                    }
                }
                StatusItemKind::Agent => {
                    let Some(agent) = state
                        .catalog
                        .agent(item.id)?
                        .filter(|a| a.owner_id == page.owner_id)
                    else {
                        continue;
                    };
                    out.name = item.label.clone().unwrap_or(agent.name.clone());
                    let info = crate::api::agents::agent_info(&agent, now);
                    out.state = if info.online { "up" } else { "down" }.into();
                    out.in_maintenance = state.alerting.in_maintenance(item.id, now);
                    if item.show_metrics
                        && let Some(report) = state.ring.latest(item.id)
                    {
                        out.cpu_pct = report.cpu.as_ref().map(|c| c.total_pct);
                        out.memory_pct = report.memory.as_ref().and_then(|m| m.used_pct());
                    }
                }
            }
            any_down |= out.state == "down";
            all_up &= out.state == "up";
            items.push(out);
        }
        sections.push(PublicSection {
            title: section.title.clone(),
            items,
        });
    }
    let maintenance: Vec<MaintenanceWindow> = page
        .spec
        .maintenance
        .iter()
        .filter(|w| w.end_ms > now)
        .cloned()
        .collect();
    let open = maintenance.iter().any(|w| w.start_ms <= now);
    let mut incidents = page.incidents.clone();
    incidents.sort_by_key(|i| std::cmp::Reverse(i.created_ms));
    Ok(PublicPage {
        title: page.spec.title.clone(),
        description: page.spec.description.clone(),
        generated_ms: now,
        overall: if open {
            "maintenance"
        } else if any_down {
            "down"
        } else if all_up {
            "up"
        } else {
            "unknown"
        }
        .into(),
        sections,
        incidents,
        maintenance,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyQuery {
    key: Option<String>,
}

/// The page `slug` if the request may see it: `Err` is the answer to give.
async fn visible(
    state: &AppState,
    slug: &str,
    key: Option<&str>,
) -> Result<StatusPageRecord, Response> {
    let not_found = || (StatusCode::NOT_FOUND, render::not_found()).into_response();
    if !slug_ok(slug) {
        return Err(not_found());
    }
    let slug = slug.to_string();
    let page = state
        .catalog(move |c| c.status_page_by_slug(&slug))
        .await
        .map_err(IntoResponse::into_response)?
        .ok_or_else(not_found)?;
    if let Some(hash) = &page.key_hash {
        let given = key.map(hash_token);
        // Both are SHA-256 digests: comparing them leaks nothing useful.
        if given.as_ref() != Some(hash) {
            let status = if key.is_some() {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            return Err(
                (status, render::private_form(&page.spec.slug, key.is_some())).into_response(),
            );
        }
    }
    Ok(page)
}

fn cache_control(page: &StatusPageRecord) -> HeaderValue {
    if page.key_hash.is_some() {
        HeaderValue::from_static("private, no-store")
    } else {
        HeaderValue::from_str(&format!("public, max-age={CACHE_S}"))
            .unwrap_or(HeaderValue::from_static("no-cache"))
    }
}

async fn built(
    state: &AppState,
    page: StatusPageRecord,
) -> Result<(StatusPageRecord, PublicPage), Response> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let view = public_page(&st, &page)?;
        Ok::<_, CatalogError>((page, view))
    })
    .await
    .map_err(|e| ApiError::internal(e).into_response())?
    .map_err(|e| crate::auth::catalog_error(e).into_response())
}

/// `GET /status/{slug}` (HTML) and `GET /status/{slug}.json`.
async fn page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Response {
    let (slug, json) = match slug.strip_suffix(".json") {
        Some(s) => (s.to_string(), true),
        None => (slug, false),
    };
    let page = match visible(&state, &slug, q.key.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (page, view) = match built(&state, page).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut response = if json {
        axum::Json(&view).into_response()
    } else {
        axum::response::Html(render::page(&view, q.key.as_deref())).into_response()
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, cache_control(&page));
    response
}

/// `GET /status/{slug}/badge/{n}.svg`: the n-th item's state (from 1).
async fn badge(
    State(state): State<AppState>,
    Path((slug, item)): Path<(String, String)>,
    Query(q): Query<KeyQuery>,
) -> Response {
    let n = item
        .strip_suffix(".svg")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n >= 1);
    let page = match visible(&state, &slug, q.key.as_deref()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (page, view) = match built(&state, page).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(item) = n.and_then(|n| view.sections.iter().flat_map(|s| &s.items).nth(n - 1)) else {
        return (StatusCode::NOT_FOUND, render::not_found()).into_response();
    };
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        )],
        render::badge(item),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, cache_control(&page));
    response
}

async fn style() -> Response {
    let mut r = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        render::STYLE,
    )
        .into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}
