//! The `statusmonitor` server: one axum app serving the JSON API under `/api`,
//! the live WebSocket, and the server-rendered Leptos dashboard with its
//! embedded client bundle, all on one port, with all state in one data
//! directory.

pub mod accept_encoding;
pub mod accounts;
pub mod alerting;
pub mod api;
pub mod auth;
pub mod checks;
pub mod config;
pub mod datadir;
pub mod download;
pub mod error;
pub mod ingest;
pub mod metrics;
pub mod ops;
pub mod outbound;
pub mod remote_write;
pub mod security;
pub mod serve;
pub mod sharing;
pub mod state;
pub mod status;
pub mod store;
pub mod text;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Response;
use axum::http::{HeaderValue, header};
use axum::routing::any;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::{Config, VERSION};
use crate::datadir::DataDir;
use crate::state::AppState;

/// Smallest answer body the server compresses.
pub const MIN_COMPRESSED_BYTES: u16 = 1024;

/// The whole HTTP app for `state`.
pub fn app(state: AppState) -> Router {
    app_with_routes(state, Router::new())
}

/// [`app`] with `extra` routes under the same layers: for tests that need a
/// route the product does not have (a handler that panics).
#[doc(hidden)]
pub fn app_with_routes(state: AppState, extra: Router<AppState>) -> Router {
    let body_limit = state.config.max_body_bytes;
    // One `layer` call for the whole stack: axum wraps every route once per
    // call and clones and boxes each wrapping on every request, so six calls
    // cost a dozen allocations and as many nested futures per request.
    // Inside the router, so the request span has the matched path.
    let layers = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let path = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path)
        }))
        .layer(DefaultBodyLimit::max(body_limit))
        // Answers under 1 KiB go out as they are: gzip would save a few
        // hundred bytes at most, and setting up a deflate stream (about
        // 256 KiB of zeroed state) cost each ingest answer more than
        // anything else in its handler (docs/BENCHMARKS.md, "Paced").
        .layer(
            CompressionLayer::new().compress_when(
                SizeAbove::new(MIN_COMPRESSED_BYTES)
                    .and(NotForContentType::GRPC)
                    .and(NotForContentType::IMAGES)
                    .and(NotForContentType::SSE),
            ),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            html_is_not_cached,
        ))
        // Inside the layers above, so a 421 it answers gets their headers.
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(security::BrowserPolicy::new(&state.config)),
            security::browser_guard,
        ))
        // Innermost: a handler's panic becomes a 500 in the usual JSON that
        // gets every header above, logged inside the request span.
        .layer(CatchPanicLayer::custom(error::panic_response));
    Router::new()
        .merge(api::router())
        .route("/api", any(api::no_such_endpoint))
        .route("/api/", any(api::no_such_endpoint))
        .route("/api/{*rest}", any(api::no_such_endpoint))
        .merge(metrics::router())
        .merge(download::router())
        .merge(status::router())
        .merge(web::router(&state))
        .merge(extra)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// Server-rendered pages must be revalidated on every load, so a new build is
/// picked up at once (the hashed bundle they point at is cached forever);
/// an answer that sets its own `Cache-Control` keeps it.
fn html_is_not_cached<B>(response: &Response<B>) -> Option<HeaderValue> {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
        .then(|| HeaderValue::from_static("no-cache"))
}

/// Opens the data directory, binds the port and serves until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let data_dir = DataDir::open(&config.data_dir)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let limits = config.connection_limits();
    let url = config.dashboard_url();
    let state = AppState::open(config, data_dir)?;
    // Without it only `statusmonitor backup` of the running server is lost
    // (e.g. a data-directory path too long for a socket): not worth refusing to start.
    #[cfg(unix)]
    let control = ops::control::spawn(state.clone())
        .map_err(|e| tracing::warn!(error = %format!("{e:#}"), "no control socket; `statusmonitor backup` will need the server stopped or POST /api/admin/backup"))
        .ok();
    tracing::info!(
        version = VERSION,
        data_dir = %state.data_dir.path().display(),
        listen = %listener.local_addr()?,
        "StatusMonitor is running; open {url}"
    );
    let shutdown = {
        // History queries in flight stop at their next block instead of
        // holding the shutdown until they finish.
        let history = state.history.clone();
        async move {
            shutdown_signal().await;
            history.shut_down();
        }
    };
    serve::serve(listener, app(state.clone()), limits, shutdown).await;
    state.flush()?;
    #[cfg(unix)]
    if let Some(control) = control {
        let _ = std::fs::remove_file(control);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
    // Give open WebSockets and long requests a moment; axum waits for them.
    tokio::time::sleep(Duration::from_millis(50)).await;
}
