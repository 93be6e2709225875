//! `GET /install.sh`: the installer script (`install.sh` beside this file),
//! with this server's URL and the agent's systemd unit filled in.
//!
//! The URL is `--public-url` when set; else the scheme and `Host` of the
//! request (`https` when `X-Forwarded-Proto` says so, as for cookies). Only
//! a URL of letters, digits and `.:-[]` in the host gets into the script,
//! inside single quotes, so nothing a client sends can become shell code.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The script, with `__SERVER__` and `__UNIT__` to fill in.
const TEMPLATE: &str = include_str!("install.sh");
/// The agent's unit as shipped: the one source, also of `install-service`.
const UNIT: &str = include_str!("../../../packaging/systemd/statusmonitor-agent.service");

/// The URL the script downloads from and the agent reports to.
pub fn server_url(public_url: Option<&str>, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(url) = public_url {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| valid_host(h))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "the Host header is missing or is no host name: the script needs this server's \
                 address (or set --public-url)"
                    .into(),
            )
        })?;
    let scheme = if crate::auth::cookies::is_tls(headers) {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{host}"))
}

/// `host`, `host:port`, `[v6]:port`: nothing a shell or sed would read as
/// anything but text.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// The script for `server` (already checked: [`server_url`] or `--public-url`).
pub fn render(server: &str) -> String {
    // Inside an unquoted here-document only `\`, `$` and backquotes are
    // special; the unit has none, but stay safe. Then the two paths the
    // script chooses become its variables.
    let unit = UNIT
        .replace('\\', "\\\\")
        .replace('$', "\\$")
        .replace('`', "\\`")
        .replace(
            "ExecStart=/usr/local/bin/statusmonitor-agent ",
            "ExecStart=${BIN} ",
        )
        .replace(
            "ExecStartPre=-+/usr/local/bin/statusmonitor-agent ",
            "ExecStartPre=-+${BIN} ",
        )
        .replace(
            "EnvironmentFile=/etc/statusmonitor-agent/agent.env",
            "EnvironmentFile=${CONF}",
        );
    // Single-quoted in the script: no quote may get in.
    let server: String = server
        .chars()
        .filter(|c| !matches!(c, '\'' | '\\' | '\n' | '\r'))
        .collect();
    TEMPLATE
        .replace("__UNIT__", unit.trim_end())
        .replace("__SERVER__", &server)
}

pub async fn script(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let server = server_url(state.config.public_url.as_deref(), &headers)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/x-shellscript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        render(&server),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, proto: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(p) = proto {
            h.insert("x-forwarded-proto", HeaderValue::from_str(p).unwrap());
        }
        h
    }

    #[test]
    fn the_url_is_the_public_one_else_the_request_s() {
        let h = headers("nas.lan:8420", None);
        assert_eq!(
            server_url(Some("https://monitor.example/"), &h).unwrap(),
            "https://monitor.example"
        );
        assert_eq!(server_url(None, &h).unwrap(), "http://nas.lan:8420");
        let h = headers("[::1]:8420", Some("https"));
        assert_eq!(server_url(None, &h).unwrap(), "https://[::1]:8420");
    }

    #[test]
    fn a_host_that_could_be_shell_code_is_refused() {
        for host in ["a'b", "a;b", "$(id)", "a b", "a`b`", ""] {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(host) {
                h.insert(header::HOST, v);
            }
            assert!(server_url(None, &h).is_err(), "{host}");
        }
    }

    #[test]
    fn the_script_names_the_server_and_carries_the_unit_with_its_paths() {
        let s = render("http://nas.lan:8420");
        assert!(s.contains("SERVER='http://nas.lan:8420'"));
        assert!(!s.contains("__SERVER__") && !s.contains("__UNIT__"));
        assert!(s.contains("ExecStart=${BIN} run --spool-dir"), "{s}");
        assert!(s.contains("EnvironmentFile=${CONF}"));
        assert!(s.contains("DynamicUser=yes"));
    }
}
