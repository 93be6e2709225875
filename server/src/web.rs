//! The dashboard: server-rendered Leptos pages, and the embedded client bundle
//! and static files under content-hashed URLs.
//!
//! Caching: `/pkg/{hash}/…` and `/static/{hash}/…` never change for a given
//! hash, so they are `immutable` for a year; HTML is `no-cache` so a new build
//! is picked up at once.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};

use crate::accept_encoding;
use crate::error::Path;
use crate::security::CspNonce;
use crate::state::AppState;

/// Leptos options built in code: no config file is read at run time.
pub fn leptos_options() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("ui")
        .site_pkg_dir(format!("pkg/{}", assets::BUNDLE_HASH))
        .site_root("/")
        .build()
}

/// URL prefix of the static files of this build.
pub fn static_base() -> String {
    format!("/static/{}", assets::BUNDLE_HASH)
}

pub fn router(state: &AppState) -> Router<AppState> {
    let options = state.leptos.clone();
    let routes = generate_route_list(ui::App);
    let render = {
        let options = options.clone();
        move || ui::shell(options.clone(), static_base())
    };
    let not_found = leptos_axum::render_app_to_stream_with_context(use_csp_nonce, render.clone());
    Router::new()
        .route(
            "/pkg/{hash}/{*path}",
            get(|p: Path<(String, String)>, h: HeaderMap| embedded("pkg", p, h)),
        )
        .route(
            "/static/{hash}/{*path}",
            get(|p: Path<(String, String)>, h: HeaderMap| embedded("static", p, h)),
        )
        .leptos_routes_with_context(state, routes, use_csp_nonce, render)
        .fallback(move |req| {
            let not_found = not_found.clone();
            async move { not_found(req).await }
        })
}

/// Renders with the nonce that `security::browser_guard` put on the request
/// (and names in the answer's Content-Security-Policy) instead of the one
/// leptos_axum makes up, so the page's inline scripts carry it.
fn use_csp_nonce() {
    use leptos::prelude::{provide_context, use_context};
    let nonce = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(nonce)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

async fn embedded(
    area: &'static str,
    Path((hash, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if hash != assets::BUNDLE_HASH || path.contains("..") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let accept = headers.get(header::ACCEPT_ENCODING);
    let accepts = |coding: &str| accept_encoding::accepts(accept, coding);
    let Some(asset) = assets::get(&format!("{area}/{path}"), accepts("br"), accepts("gzip")) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut response = asset.body.into_owned().into_response();
    let h = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(&asset.mime) {
        h.insert(header::CONTENT_TYPE, mime);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(enc) = asset.encoding.header() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    response
}
