//! `GET /api/history/{agent_id}/{cpu,memory,disk,network,summary}`: stored
//! metrics of one agent over a range, from the tier the range calls for.
//!
//! A range is bounded before any work: `stop` at most [`MAX_AHEAD_MS`]
//! after now, `start` clamped to the oldest data kept, and every time
//! parsed and computed with checked arithmetic (docs/api.md). Queries run
//! under [`queries::HistoryQueries`]: a per-user limit, a time budget, and
//! cancellation when the client leaves or the server stops.

pub mod queries;

use std::collections::BTreeMap;
use std::io::Write;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use storage::model::time::{parse_duration_ms, parse_rfc3339_ms};
use storage::model::{HistoryResponse, HistorySeries, SummaryMetric, SummaryResponse};
use storage::tsdb::{QueryRequest, QueryResult, Tier};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::history::queries::QueryPermit;
use crate::auth::extract::AuthUser;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::sharing::VisibleAgent;
use crate::state::AppState;

/// Points per series when the caller does not say.
pub const DEFAULT_MAX_POINTS: usize = 600;
/// The most points per series one request may ask for.
pub const MAX_POINTS_CAP: usize = 5_000;
/// How far after now `stop` may lie (agents' clocks run a little ahead).
pub const MAX_AHEAD_MS: i64 = 5 * 60_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(summary))
        .routes(routes!(history))
}

/// The metrics behind each chart.
pub fn metrics_of(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "cpu" => &[
            "cpu.total_pct",
            "cpu.core_pct",
            "cpu.core_mhz",
            "load.1m",
            "load.5m",
            "load.15m",
        ],
        "memory" => &[
            "mem.total_bytes",
            "mem.used_bytes",
            "mem.available_bytes",
            "swap.total_bytes",
            "swap.used_bytes",
        ],
        "disk" => &[
            "disk.total_bytes",
            "disk.used_bytes",
            "disk.available_bytes",
            "disk.read_bps",
            "disk.write_bps",
        ],
        "network" => &["net.rx_bps", "net.tx_bps"],
        "temperature" => &["temp.celsius"],
        _ => return None,
    })
}

/// What `summary` reports on: the figures of the dashboard's cards.
const SUMMARY_METRICS: &[&str] = &[
    "cpu.total_pct",
    "load.1m",
    "mem.used_bytes",
    "mem.total_bytes",
    "swap.used_bytes",
    "disk.used_bytes",
    "disk.total_bytes",
    "disk.read_bps",
    "disk.write_bps",
    "net.rx_bps",
    "net.tx_bps",
    "temp.celsius",
    // The names of the containers seen over the range (the rule form's
    // choices, the overview's count).
    "container.running",
];

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    pub start: Option<String>,
    pub stop: Option<String>,
    pub interval: Option<String>,
    pub max_points: Option<String>,
    pub tier: Option<String>,
}

/// A checked range.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub start_ms: i64,
    pub stop_ms: i64,
    pub interval_ms: Option<i64>,
    pub max_points: usize,
    pub tier: Option<Tier>,
}

fn bad(param: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("{param}: {problem}"))
}

/// `-5m`-style (before now), RFC 3339, or Unix milliseconds; then bounded:
/// not before 1970 (no data is older), not more than [`MAX_AHEAD_MS`] after now.
fn parse_time(param: &str, text: &str, now_ms: i64) -> ApiResult<i64> {
    let text = text.trim();
    let ms = if let Some(ago) = text.strip_prefix('-') {
        let d = parse_duration_ms(ago).map_err(|e| bad(param, e))?;
        now_ms
            .checked_sub(d)
            .ok_or_else(|| bad(param, format!("`{text}` reaches too far back")))?
    } else if text == "now" {
        now_ms
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse()
            .map_err(|_| bad(param, "is not a number of milliseconds"))?
    } else {
        parse_rfc3339_ms(text)
            .map_err(|e| bad(param, format!("{e}, or a duration before now like -1h")))?
    };
    if ms < 0 {
        return Err(bad(param, "is before 1970-01-01, older than any data"));
    }
    if ms > now_ms.saturating_add(MAX_AHEAD_MS) {
        return Err(bad(
            param,
            "must not be more than 5 minutes after now (no data is stored for the future)",
        ));
    }
    Ok(ms)
}

impl RangeParams {
    /// Checks the parameters at server time `now_ms`, with data kept for
    /// `retention_ms` (the longest tier's): a `start` older than that is
    /// clamped to it. Default range: the last hour.
    pub fn check(&self, now_ms: i64, retention_ms: i64) -> ApiResult<Range> {
        // `stop` is exclusive; by default it includes a report stamped this
        // very millisecond.
        let stop_ms = match &self.stop {
            Some(s) => parse_time("stop", s, now_ms)?,
            None => now_ms.saturating_add(1),
        };
        let start_ms = match &self.start {
            Some(s) => parse_time("start", s, now_ms)?,
            None => now_ms.saturating_sub(3_600_000),
        };
        if start_ms >= stop_ms {
            return Err(bad("start", "must be before stop"));
        }
        let oldest_ms = now_ms.saturating_sub(retention_ms);
        if stop_ms <= oldest_ms {
            return Err(bad(
                "stop",
                "is before the oldest data kept (see the retention settings)",
            ));
        }
        let start_ms = start_ms.max(oldest_ms);
        let max_points = match &self.max_points {
            None => DEFAULT_MAX_POINTS,
            Some(s) => match s.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_POINTS_CAP).contains(&n) => n,
                _ => {
                    return Err(bad(
                        "max_points",
                        format!("must be a whole number from 1 to {MAX_POINTS_CAP}"),
                    ));
                }
            },
        };
        let interval_ms = match &self.interval {
            None => None,
            Some(s) => {
                let ms = parse_duration_ms(s).map_err(|e| bad("interval", e))?;
                if ms < 5_000 {
                    return Err(bad(
                        "interval",
                        "must be at least 5s, the finest resolution stored",
                    ));
                }
                Some(ms)
            }
        };
        let tier = match &self.tier {
            None => None,
            Some(s) => Some(
                s.parse::<Tier>()
                    .map_err(|_| bad("tier", "must be 5s, 1m or 1h"))?,
            ),
        };
        Ok(Range {
            start_ms,
            stop_ms,
            interval_ms,
            max_points,
            tier,
        })
    }
}

/// The range of a request, checked against the server's clock and retention.
pub(crate) fn checked_range(state: &AppState, params: &RangeParams) -> ApiResult<Range> {
    let engine = state.engine();
    let config = engine.config();
    let retention_ms = Tier::ALL
        .into_iter()
        .map(|t| config.retention_ms(t))
        .max()
        .unwrap_or(0);
    params.check(state.clock.now_ms(), retention_ms)
}

pub(crate) async fn run_query(
    state: &AppState,
    permit: QueryPermit,
    req: QueryRequest,
) -> ApiResult<QueryResult> {
    let engine = state.engine();
    let queries = state.history.clone();
    state
        .history
        .run(permit, move |budget| engine.query_within(&req, budget))
        .await?
        .map_err(|e| queries.stopped(e))
}

/// The caller's slot for one history query, then the agent if they may
/// see it (theirs, or shared with them).
/// The per-user limit comes first, before any catalog work, so a user over
/// it costs the server a map lookup and a wait per request, no I/O.
pub(crate) async fn start(
    state: &AppState,
    user: AuthUser,
    agent_id: u64,
) -> ApiResult<(QueryPermit, VisibleAgent)> {
    let permit = state.history.admit(user.user_id).await?;
    let visible = VisibleAgent::load(state, user, agent_id).await?;
    Ok((permit, visible))
}

pub(crate) fn request(
    agent: u64,
    metrics: &[&str],
    range: &Range,
    max_points: usize,
) -> QueryRequest {
    QueryRequest {
        agent,
        metrics: metrics.iter().map(|m| m.to_string()).collect(),
        label_filter: None,
        start_ms: range.start_ms,
        stop_ms: range.stop_ms,
        tier: range.tier,
        interval_ms: range.interval_ms,
        max_points,
    }
}

pub(crate) fn labels(key: &storage::model::SeriesKey) -> BTreeMap<String, String> {
    key.labels.iter().cloned().collect()
}

#[utoipa::path(
    get,
    path = "/api/history/{agent_id}/{kind}",
    operation_id = "getHistory",
    tag = "history",
    summary = "Points of one chart: cpu, memory, disk, network or temperature",
    params(("agent_id" = u64, Path, description = "Agent id"), ("kind" = String, Path, description = "cpu, memory, disk, network or temperature"), RangeParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::HistoryResponse), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 429, description = "Too many history queries of this user at once", body = storage::model::ErrorBody), (status = 503, description = "The server is busy with other history queries (with Retry-After), the query ran past its time budget, or the server is stopping", body = storage::model::ErrorBody))
)]
async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    Path((agent_id, kind)): Path<(u64, String)>,
    Query(params): Query<RangeParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let metrics = metrics_of(&kind).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no history `{kind}`: use cpu, memory, disk, network, temperature or summary"
        ))
    })?;
    let range = checked_range(&state, &params)?;
    let (permit, owned) = start(&state, user, agent_id).await?;
    let agent_id = owned.agent.id;
    let req = request(agent_id, metrics, &range, range.max_points);
    let engine = state.engine();
    let queries = state.history.clone();
    let encoding = pick_encoding(headers.get(header::ACCEPT_ENCODING));
    // Query, JSON encoding and compression in one blocking task: a day of a
    // host's CPU is a few hundred KB of JSON, too much to format and
    // compress on an async worker.
    let (encoding, body) = state
        .history
        .run(permit, move |budget| -> ApiResult<_> {
            let result = engine
                .query_within(&req, budget)
                .map_err(|e| queries.stopped(e))?;
            let response = HistoryResponse {
                agent_id,
                tier: result.tier.to_string(),
                interval_ms: result.interval_ms,
                start_ms: result.start_ms,
                stop_ms: result.stop_ms,
                series: result
                    .series
                    .iter()
                    .map(|s| HistorySeries {
                        metric: s.key.metric.clone(),
                        labels: labels(&s.key),
                        points: s
                            .points
                            .iter()
                            .map(|p| (p.ts_ms, p.avg(), p.min, p.max))
                            .collect(),
                    })
                    .collect(),
            };
            // About 70 bytes a point: sized once instead of grown by copying.
            let points: usize = response.series.iter().map(|s| s.points.len()).sum();
            let mut body = Vec::with_capacity(256 + 128 * response.series.len() + 72 * points);
            serde_json::to_writer(&mut body, &response).map_err(ApiError::internal)?;
            compress(encoding, body)
        })
        .await??;
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(name) = encoding.name() {
        // The compression layer leaves a response with this header alone.
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
    }
    Ok(response)
}

/// How a history answer is compressed. The app's compression layer would
/// gzip or brotli it at their default levels, which for the few hundred KB
/// of a day's chart cost several times the query itself (gzip level 6:
/// ~30 ms for 24 h of CPU on the development VM, brotli ~15 ms); the fast
/// levels compress these repetitive numbers nearly as well in a few ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    /// zstd level 1 (current Chromium and Firefox accept it).
    Zstd,
    /// gzip level 1.
    Gzip,
}

impl Encoding {
    fn name(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Zstd => Some("zstd"),
            Encoding::Gzip => Some("gzip"),
        }
    }
}

/// Bodies smaller than this are sent as they are.
const COMPRESS_FROM_BYTES: usize = 1024;

/// zstd or gzip, as the client prefers them (`accept_encoding`), else none.
fn pick_encoding(accept: Option<&HeaderValue>) -> Encoding {
    match crate::accept_encoding::negotiate(accept, &["zstd", "gzip"]) {
        Some("zstd") => Encoding::Zstd,
        Some("gzip") => Encoding::Gzip,
        _ => Encoding::Identity,
    }
}

fn compress(encoding: Encoding, json: Vec<u8>) -> ApiResult<(Encoding, Vec<u8>)> {
    if json.len() < COMPRESS_FROM_BYTES {
        return Ok((Encoding::Identity, json));
    }
    let body = match encoding {
        Encoding::Identity => return Ok((Encoding::Identity, json)),
        Encoding::Zstd => zstd::bulk::compress(&json, 1).map_err(ApiError::internal)?,
        Encoding::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(json.len() / 4),
                flate2::Compression::fast(),
            );
            gz.write_all(&json).map_err(ApiError::internal)?;
            gz.finish().map_err(ApiError::internal)?
        }
    };
    Ok((encoding, body))
}

#[utoipa::path(
    get,
    path = "/api/history/{agent_id}/summary",
    operation_id = "getHistorySummary",
    tag = "history",
    summary = "Min, average and max of every dashboard metric over a range",
    params(("agent_id" = u64, Path, description = "Agent id"), RangeParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::SummaryResponse), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 429, description = "Too many history queries of this user at once", body = storage::model::ErrorBody), (status = 503, description = "The server is busy with other history queries (with Retry-After), the query ran past its time budget, or the server is stopping", body = storage::model::ErrorBody))
)]
async fn summary(
    State(state): State<AppState>,
    user: AuthUser,
    Path(agent_id): Path<u64>,
    Query(params): Query<RangeParams>,
) -> ApiResult<Json<SummaryResponse>> {
    let range = checked_range(&state, &params)?;
    let (permit, owned) = start(&state, user, agent_id).await?;
    let agent_id = owned.agent.id;
    // A handful of buckets per series; folded into one figure each below.
    let req = request(agent_id, SUMMARY_METRICS, &range, 8);
    let result = run_query(&state, permit, req).await?;
    let metrics = result
        .series
        .iter()
        .filter_map(|s| {
            let mut points = s.points.iter();
            let mut acc = *points.next()?;
            for p in points {
                acc.merge(p);
            }
            Some(SummaryMetric {
                metric: s.key.metric.clone(),
                labels: labels(&s.key),
                min: acc.min,
                avg: acc.avg(),
                max: acc.max,
                last: acc.last,
                count: acc.count,
            })
        })
        .collect();
    Ok(Json(SummaryResponse {
        agent_id,
        tier: result.tier.to_string(),
        start_ms: result.start_ms,
        stop_ms: result.stop_ms,
        metrics,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000;
    /// The default longest retention.
    const KEPT: i64 = 365 * 86_400_000;

    fn params(
        start: Option<&str>,
        stop: Option<&str>,
        interval: Option<&str>,
        max: Option<&str>,
    ) -> RangeParams {
        RangeParams {
            start: start.map(Into::into),
            stop: stop.map(Into::into),
            interval: interval.map(Into::into),
            max_points: max.map(Into::into),
            tier: None,
        }
    }

    #[test]
    fn relative_and_absolute_ranges() {
        let r = params(Some("-5m"), None, None, None)
            .check(NOW, KEPT)
            .unwrap();
        assert_eq!(
            (r.start_ms, r.stop_ms, r.max_points),
            (NOW - 300_000, NOW + 1, DEFAULT_MAX_POINTS)
        );
        let r = params(
            Some("2025-12-31T23:00:00Z"),
            Some("2026-01-01T00:00:00Z"),
            Some("1m"),
            Some("60"),
        )
        .check(NOW, KEPT)
        .unwrap();
        assert_eq!(
            (r.start_ms, r.stop_ms, r.interval_ms, r.max_points),
            (NOW - 3_600_000, NOW, Some(60_000), 60)
        );
        for start in ["-1h", "-24h", "-7d", "-30d", "-1y"] {
            params(Some(start), None, None, None)
                .check(NOW, KEPT)
                .unwrap();
        }
    }

    #[test]
    fn compression_follows_accept_encoding() {
        let pick = |v: &str| pick_encoding(Some(&HeaderValue::from_str(v).unwrap()));
        assert_eq!(pick_encoding(None), Encoding::Identity);
        assert_eq!(pick("gzip, deflate, br, zstd"), Encoding::Zstd);
        assert_eq!(pick("gzip"), Encoding::Gzip);
        assert_eq!(pick("zstd;q=0, GZIP;q=0.5"), Encoding::Gzip);
        assert_eq!(pick("br"), Encoding::Identity);
        assert_eq!(pick("identity"), Encoding::Identity);
        let json = serde_json::to_vec(&vec![[1.5f64, 2.25, 3.0]; 500]).unwrap();
        let (e, z) = compress(Encoding::Zstd, json.clone()).unwrap();
        assert_eq!(e, Encoding::Zstd);
        assert_eq!(zstd::decode_all(&z[..]).unwrap(), json);
        let (e, gz) = compress(Encoding::Gzip, json.clone()).unwrap();
        assert_eq!(e, Encoding::Gzip);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back).unwrap();
        assert_eq!(back, json);
        // Small answers are not worth it.
        assert_eq!(
            compress(Encoding::Gzip, b"{}".to_vec()).unwrap(),
            (Encoding::Identity, b"{}".to_vec())
        );
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let cases = [
            ("start", params(Some("yesterday"), None, None, None)),
            ("start", params(Some("-5"), None, None, None)),
            (
                "stop",
                params(None, Some("2026-13-01T00:00:00Z"), None, None),
            ),
            ("start", params(Some("-1m"), Some("-2m"), None, None)),
            ("interval", params(None, None, Some("1s"), None)),
            ("interval", params(None, None, Some("fast"), None)),
            ("max_points", params(None, None, None, Some("0"))),
            ("max_points", params(None, None, None, Some("100000"))),
            ("max_points", params(None, None, None, Some("many"))),
            // Out of bounds, or overflowing arithmetic.
            (
                "start",
                params(Some("-9223372036854775807ms"), None, None, None),
            ),
            ("start", params(Some("-25000y"), None, None, None)),
            (
                "stop",
                params(Some("0"), Some("9223372036854775807"), None, None),
            ),
            (
                "stop",
                params(
                    Some("9223372036854775806"),
                    Some("9223372036854775807"),
                    None,
                    None,
                ),
            ),
            (
                "stop",
                params(Some("-1h"), Some("9999-12-31T23:59:59Z"), None, None),
            ),
            ("stop", params(Some("-2y"), Some("-400d"), None, None)),
            // A multi-byte character inside an offset or a fraction.
            (
                "start",
                params(Some("2026-01-01T00:00:00\u{e9}1:00"), None, None, None),
            ),
            (
                "start",
                params(Some("2026-01-01T00:00:00+0\u{e9}00"), None, None, None),
            ),
            (
                "start",
                params(Some("2026-01-01T00:00:00+01\u{e9}0"), None, None, None),
            ),
            (
                "start",
                params(Some("2026-01-01T00:00:00.5\u{e9}1:00"), None, None, None),
            ),
        ];
        for (param, p) in cases {
            match p.check(NOW, KEPT) {
                Err(ApiError::BadRequest(msg)) => assert!(msg.starts_with(param), "{param}: {msg}"),
                other => panic!("{param}: {other:?}"),
            }
        }
    }

    /// `start` before the oldest data kept is moved up to it; a stop a
    /// little ahead of the clock is fine.
    #[test]
    fn old_starts_are_clamped_to_the_data_kept() {
        for start in ["0", "-50y", "1970-01-01T00:00:00Z"] {
            let r = params(Some(start), None, None, None)
                .check(NOW, KEPT)
                .unwrap();
            assert_eq!(r.start_ms, NOW - KEPT, "{start}");
        }
        let ahead = (NOW + MAX_AHEAD_MS).to_string();
        let r = params(Some("-1h"), Some(&ahead), None, None)
            .check(NOW, KEPT)
            .unwrap();
        assert_eq!(r.stop_ms, NOW + MAX_AHEAD_MS);
    }

    proptest::proptest! {
        /// Any text in any parameter is a range or a 400, never a panic.
        #[test]
        fn any_parameters_are_an_answer_never_a_panic(
            start in proptest::option::of("\\PC{0,30}"),
            stop in proptest::option::of("\\PC{0,30}"),
            interval in proptest::option::of("\\PC{0,12}"),
            max_points in proptest::option::of("\\PC{0,8}"),
            tier in proptest::option::of("\\PC{0,4}"),
            now in 0i64..=4_102_444_800_000,
        ) {
            let p = RangeParams { start, stop, interval, max_points, tier };
            if let Err(e) = p.check(now, KEPT) {
                proptest::prop_assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
            }
        }

        /// Numbers, signed durations and every unit at the edges of `i64`.
        #[test]
        fn any_numbers_are_an_answer_never_a_panic(
            a in proptest::num::i64::ANY,
            b in proptest::num::i64::ANY,
            unit in proptest::sample::select(vec!["", "ms", "s", "m", "h", "d", "w", "y"]),
            now in proptest::num::i64::ANY,
        ) {
            let p = RangeParams {
                start: Some(format!("{a}{unit}")),
                stop: Some(format!("{b}")),
                interval: Some(format!("{}{unit}", b.unsigned_abs())),
                max_points: Some(a.to_string()),
                tier: None,
            };
            let _ = p.check(now, KEPT);
            let p = RangeParams { start: Some(format!("-{}{unit}", a.unsigned_abs())), ..RangeParams::default() };
            let _ = p.check(now, KEPT);
        }
    }
}
