//! Browser hardening: the headers every answer carries, and the `Host`
//! check against DNS rebinding (docs/security.md, "Browser hardening").
//!
//! - **Content-Security-Policy.** A page gets a policy that allows scripts
//!   only from this origin and the inline scripts that carry this answer's
//!   nonce (the SSR hydration script, the theme boot script, Leptos's
//!   streaming chunks), WebAssembly compilation, and connections to this
//!   origin (its WebSocket included); every other answer gets
//!   `default-src 'none'`. The nonce is made here, per request, and handed
//!   to the renderer as a request extension ([`CspNonce`]; `web.rs` puts it
//!   in Leptos's context, where `use_nonce()` finds it).
//! - **`Referrer-Policy: same-origin`, `X-Frame-Options: DENY`** on every
//!   answer (`frame-ancestors 'none'` says the same to newer browsers).
//! - **Host.** A page of an attacker's site can re-point its own DNS name at
//!   this server ("DNS rebinding") and then read it as its own origin. Such a
//!   request carries the attacker's name in `Host`. With `--public-url` set,
//!   every request must name the public URL's host, `localhost`, an IP
//!   address or this machine's host name, or it gets **421** in the usual
//!   JSON; without it, only creating the first account (which makes the
//!   admin) is held to that rule ([`check_first_account_host`]).

use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;

use crate::config::Config;
use crate::error::ApiError;

/// This answer's CSP script nonce (32 hex digits, 128 random bits).
#[derive(Debug, Clone)]
pub struct CspNonce(pub Arc<str>);

/// The policy of every answer that is not a page: nothing may load or run.
const NOT_A_PAGE: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// What the guard checks `Host` against; built once per app.
#[derive(Debug, Clone)]
pub struct BrowserPolicy {
    /// The host of `--public-url`, lower-case, without port; `None` when the
    /// option is unset (then `Host` is not checked on every request).
    public_host: Option<String>,
}

impl BrowserPolicy {
    pub fn new(config: &Config) -> BrowserPolicy {
        BrowserPolicy {
            public_host: config
                .public_url
                .as_deref()
                .and_then(url_host)
                .map(|h| h.to_string()),
        }
    }
}

/// The middleware: Host check, nonce, then the headers on the answer.
pub async fn browser_guard(
    State(policy): State<Arc<BrowserPolicy>>,
    mut req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let (Some(public), Some(host)) = (&policy.public_host, &host)
        && !host_is_ours(host, Some(public))
    {
        let mut response = ApiError::MisdirectedRequest(format!(
            "this server answers to `{public}` (its --public-url), `localhost`, its IP addresses{}; not to `{}`",
            machine_hostname()
                .map(|h| format!(" and its host name `{h}`"))
                .unwrap_or_default(),
            clip(host)
        ))
        .into_response();
        set_headers(response.headers_mut(), None);
        return response;
    }
    let nonce = may_be_a_page(req.uri().path()).then(new_nonce);
    if let Some(nonce) = &nonce {
        req.extensions_mut().insert(CspNonce(nonce.clone()));
    }
    let mut response = next.run(req).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let page = is_html.then(|| page_policy(nonce.as_deref(), host.as_deref()));
    set_headers(response.headers_mut(), page);
    response
}

/// Whether this request may render a dashboard page (and so needs a nonce):
/// anything outside the API, the bundle, the static files and `/metrics`.
fn may_be_a_page(path: &str) -> bool {
    !["/api/", "/pkg/", "/static/"]
        .iter()
        .any(|p| path.starts_with(p))
        && path != "/api"
        && path != "/metrics"
}

fn new_nonce() -> Arc<str> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes).into()
}

/// The policy of a dashboard page.
///
/// - `script-src`: the bundle (`/pkg/…`, same origin) and inline scripts with
///   this answer's nonce; `'wasm-unsafe-eval'` lets the bundle compile its
///   WebAssembly (nothing else is evaluated).
/// - `style-src 'self'` for the style sheets, and `style-src-attr
///   'unsafe-inline'`: the pages set widths of bars and the height of chart
///   boxes in `style` attributes (in the server's HTML, where CSSOM is not
///   available). That allows `style="…"` only, never a `<style>` element,
///   and `default-src 'self'` still keeps any `url(…)` in one on this origin.
/// - `connect-src`: this origin, and its WebSocket written out (`ws:`/`wss:`
///   with the request's `Host`), for browsers where `'self'` does not yet
///   cover WebSocket schemes.
fn page_policy(nonce: Option<&str>, host: Option<&str>) -> String {
    let nonce = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    let ws = host
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'{nonce} 'wasm-unsafe-eval'; \
         style-src 'self'; style-src-attr 'unsafe-inline'; connect-src 'self'{ws}; \
         img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

fn set_headers(h: &mut HeaderMap, page: Option<String>) {
    let csp = page
        .and_then(|p| HeaderValue::from_str(&p).ok())
        .unwrap_or(HeaderValue::from_static(NOT_A_PAGE));
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// Refuses creating the first account (the admin) from a request whose
/// `Host` is a name other than `localhost` or this machine's: on a fresh
/// install a rebinding page could otherwise claim the server. A request
/// without `Host` comes from no browser and passes; with `--public-url` set
/// the guard has already held every request to the public host.
pub fn check_first_account_host(headers: &HeaderMap, config: &Config) -> Result<(), ApiError> {
    let Some(host) = headers.get(header::HOST) else {
        return Ok(());
    };
    let host = host.to_str().unwrap_or("");
    let public = config.public_url.as_deref().and_then(url_host);
    if host_is_ours(host, public) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "the first account (the admin) can only be created at an IP address of this server, \
         `localhost`{} or the host of --public-url; this request came to `{}`",
        machine_hostname()
            .map(|h| format!(", its host name `{h}`"))
            .unwrap_or_default(),
        clip(host)
    )))
}

/// Whether `Host` names this server: an IP address, `localhost`, this
/// machine's host name, or `public` (the host of `--public-url`). The port
/// is not compared: a rebinding page has its own name, whatever the port.
pub fn host_is_ours(host: &str, public: Option<&str>) -> bool {
    let name = host_name(host);
    if name.is_empty() {
        return false;
    }
    name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || public.is_some_and(|p| p.eq_ignore_ascii_case(&name))
        || machine_hostname().is_some_and(|m| m == name)
}

/// The name of `host[:port]` (brackets of an IPv6 address dropped),
/// lower-case, without a trailing dot.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map(|(ip, _)| ip).unwrap_or("")
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The host of an absolute URL (`https://mon.example.org:8443/x` →
/// `mon.example.org`).
fn url_host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split_once(']').map(|(ip, _)| ip)?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// This machine's host name, lower-case (Linux: `/proc/sys/kernel/hostname`,
/// else `/etc/hostname`); read once, it is a fact of the machine.
pub fn machine_hostname() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// At most 100 characters of a header echoed back in an error.
fn clip(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_read_like_a_browser_writes_them() {
        assert_eq!(host_name("Mon.Example.org:8420"), "mon.example.org");
        assert_eq!(host_name("mon.example.org."), "mon.example.org");
        assert_eq!(host_name("[::1]:8420"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(
            url_host("https://mon.example.org:8443/x"),
            Some("mon.example.org")
        );
        assert_eq!(url_host("http://[::1]:8420"), Some("::1"));
        assert_eq!(url_host("nonsense"), None);
    }

    #[test]
    fn only_addresses_localhost_and_known_names_are_ours() {
        for ok in [
            "127.0.0.1:8420",
            "192.168.1.5",
            "[::1]:8420",
            "localhost:8420",
            "LOCALHOST",
        ] {
            assert!(host_is_ours(ok, None), "{ok}");
        }
        for bad in [
            "rebind.attacker.example:8420",
            "localhost.attacker.example",
            "",
            ":8420",
        ] {
            assert!(!host_is_ours(bad, None), "{bad}");
        }
        assert!(host_is_ours("mon.example.org:443", Some("mon.example.org")));
        assert!(!host_is_ours(
            "mon.example.org.attacker.example",
            Some("mon.example.org")
        ));
    }

    #[test]
    fn the_page_policy_names_the_nonce_and_the_websocket() {
        let p = page_policy(Some("abc"), Some("127.0.0.1:8420"));
        assert!(
            p.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"),
            "{p}"
        );
        assert!(
            p.contains("connect-src 'self' ws://127.0.0.1:8420 wss://127.0.0.1:8420;"),
            "{p}"
        );
        // A Host that could break out of the directive is left out.
        let p = page_policy(Some("abc"), Some("x; script-src *"));
        assert!(p.contains("connect-src 'self';"), "{p}");
    }
}
