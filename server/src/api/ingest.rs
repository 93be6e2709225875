//! `POST /api/ingest`: a batch of reports from an agent, authenticated by its
//! `X-Agent-Token`. The answer (200) comes only once the batch is durable in
//! the engine's journal; a refused batch (4xx) stored nothing.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use storage::model::{IngestAck, IngestBatch};
use storage::tsdb::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Json};
use crate::ingest::{decode_body, parse_batch, validate_batch};
use crate::state::AppState;

/// Bodies larger than this are decoded on the blocking pool.
const INLINE_DECODE_BYTES: usize = 64 << 10;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingest))
}

#[utoipa::path(
    post,
    path = "/api/ingest",
    operation_id = "ingestReports",
    tag = "ingest",
    summary = "A batch of reports from an agent (optionally gzip or zstd)",
    request_body = storage::model::IngestBatch,
    security(("agent_token" = [])),
    responses((status = 200, body = storage::model::IngestAck), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 413, description = "Body too large", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody), (status = 503, description = "The store is being reopened after a failed write; retry", body = storage::model::ErrorBody), (status = 507, description = "The server's disk is (nearly) full; retry later", body = storage::model::ErrorBody))
)]
async fn ingest(State(state): State<AppState>, request: Request) -> Response {
    let start = Instant::now();
    let response = store(&state, request).await.into_response();
    state.metrics.observe_ingest(start, response.status());
    response
}

/// Authenticates, decodes, validates and stores one request's batch; the
/// answer once it is durable.
async fn store(state: &AppState, request: Request) -> ApiResult<Json<IngestAck>> {
    // The three headers this needs, before the body takes the request (a
    // `HeaderMap` argument would be a copy of the whole map).
    let token = request.headers().get("x-agent-token").cloned();
    let slot = request
        .extensions()
        .get::<crate::serve::ConnectionSlot>()
        .cloned();
    let encoding = request.headers().get(header::CONTENT_ENCODING).cloned();
    let user_agent = request.headers().get(header::USER_AGENT).cloned();
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let body = Bytes::from_request(request, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "request body is larger than {} bytes",
                state.config.max_body_bytes
            ))
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })?;
    let token = token
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "missing X-Agent-Token header: pass the agent's token from the dashboard".into(),
            )
        })?;
    let auth = state.authenticate_agent(token).await?;
    if let Some(slot) = slot {
        slot.authenticated();
    }

    let limit = state.config.max_body_bytes;
    let decode = move || -> ApiResult<IngestBatch> {
        let encoding = encoding.as_ref().and_then(|v| v.to_str().ok());
        let raw = decode_body(encoding, &body, limit)?;
        parse_batch(&raw)
    };
    let batch = if length.is_some_and(|n| n <= INLINE_DECODE_BYTES) {
        decode()?
    } else {
        tokio::task::spawn_blocking(decode)
            .await
            .map_err(ApiError::internal)??
    };
    let now_ms = state.clock.now_ms();
    validate_batch(&batch, now_ms, state.config.raw_retention_ms)?;
    let agent_id = auth.agent_id;
    state.checks.check_agent_results(
        agent_id,
        &batch.check_results,
        now_ms,
        state.config.raw_retention_ms,
    )?;

    let IngestBatch {
        host,
        mut reports,
        check_results,
    } = batch;
    reports.sort_by_key(|r| r.ts_ms);
    // 507 while the disk is (nearly) full, before anything is written.
    let engine = state.tsdb.for_ingest().await?;
    let rows: Vec<Row> = reports.iter().map(|r| engine.report_row(r)).collect();
    // Group commit: concurrent requests share one journal write; this
    // resolves once the batch holding these rows is durable.
    let written = engine.write_grouped(agent_id, rows).await;
    drop(engine);
    written.map_err(|e| state.tsdb.write_failed(e))?;

    // Durable: now tell the live side. Replayed reports older than what the
    // ring already has are history, not news.
    let interval_ms = reports
        .iter()
        .rev()
        .find_map(|r| r.interval_ms)
        .map(i64::from);
    let accepted = reports.len();
    state.ingested(agent_id, host.as_ref(), &reports);
    state.ring.push_newer(agent_id, reports);
    // Memory only (written out by the catalog's housekeeping): no blocking task.
    state
        .catalog
        .record_report(agent_id, now_ms, interval_ms, host)
        .map_err(crate::auth::catalog_error)?;
    // Alert rules are evaluated on their own thread; this only queues.
    state.alerting.reports_arrived(agent_id);
    state.agent_versions.record(agent_id, user_agent.as_ref());
    // Checks the agent runs: stored like the server's runs, once the
    // reports are durable.
    if !check_results.is_empty() {
        state
            .checks
            .record_agent_results(agent_id, check_results)
            .await;
    }
    Ok(Json(IngestAck {
        accepted,
        checks_version: Some(state.checks.agent_version(agent_id)),
    }))
}
