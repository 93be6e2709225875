//! Checking a [`CheckSpec`] before it is stored: every refusal is a 422
//! whose message starts with the field (`interval_s: ...`,
//! `target: refused by the outbound guard: loopback address`), and the
//! target passes the outbound guard at save time (after DNS for a name).

use std::net::{IpAddr, SocketAddr};

use storage::model::{
    CheckKind, CheckSpec, HttpCheckOptions, MAX_CHECK_HEADERS, MAX_CHECK_INTERVAL_S,
    MAX_CHECK_RETRIES, MAX_CHECK_TIMEOUT_MS, MAX_KEYWORD_CHARS, MIN_CHECK_INTERVAL_S,
    MIN_CHECK_TIMEOUT_MS,
};

use crate::error::{ApiError, ApiResult};
use crate::outbound::{Caller, OutboundGuard, Refusal, UrlError};

const NAME_MAX: usize = 64;
/// Longest target (URL or host), bytes.
pub const TARGET_MAX: usize = 2_048;
const HEADER_VALUE_MAX: usize = 4_096;
/// Methods an HTTP check may use.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

fn invalid(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::Invalid(format!("{field}: {why}"))
}

/// A host and port a TCP check or ping connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    /// The text to hand to a resolver.
    pub fn as_text(&self) -> String {
        match self {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(n) => n.clone(),
        }
    }
}

/// A host as a user typed it: an IP address (IPv6 with or without
/// brackets) or a DNS name (letters, digits, `-`, `_`, `.`; labels of 1-63
/// characters, 253 at most).
pub fn parse_host(text: &str) -> Option<Host> {
    let t = text.trim();
    let bare = t
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(t);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(Host::Ip(ip));
    }
    let name = t.trim_end_matches('.').to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    ok.then_some(Host::Name(name))
}

/// `host:port` (IPv6 in brackets), port 1-65535.
pub fn parse_host_port(text: &str) -> Option<(Host, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    if host.contains(':') && !host.starts_with('[') {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some((parse_host(host)?, port))
}

/// May `caller` reach `host` on `port`? The save-time rule: addresses by
/// the guard's table, `localhost` names refused, other names resolved
/// (bounded in time) and each address checked.
pub async fn check_host(
    guard: &OutboundGuard,
    host: &Host,
    port: u16,
    caller: Caller,
) -> Result<(), Refusal> {
    match host {
        Host::Ip(ip) => guard.check_addr(SocketAddr::new(*ip, port), caller),
        Host::Name(name) => {
            if caller == Caller::User && (name == "localhost" || name.ends_with(".localhost")) {
                return Err(Refusal::Loopback);
            }
            guard.check_resolved(name, port, caller).await
        }
    }
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!("must have 1 to {NAME_MAX} characters and no control characters"),
        ));
    }
    if let Some(problem) = crate::text::hidden_problem(name) {
        return Err(invalid("name", problem));
    }
    Ok(name.to_string())
}

/// `spec` checked and normalised for `caller`. `old` is the stored spec of
/// the check being replaced: a header sent with `value: null` keeps its
/// stored value.
pub async fn check_spec(
    guard: &OutboundGuard,
    spec: CheckSpec,
    caller: Caller,
    old: Option<&CheckSpec>,
) -> ApiResult<CheckSpec> {
    check_spec_on(guard, spec, caller, old, false).await
}

/// [`check_spec`] for a check an agent runs (`on_agent`): the target is
/// only checked for its form. The agent connects from a machine its owner
/// controls and the server never does, so the outbound guard's address
/// table does not apply and names are not resolved here (they may exist
/// only on the agent's network).
pub async fn check_spec_on(
    guard: &OutboundGuard,
    spec: CheckSpec,
    caller: Caller,
    old: Option<&CheckSpec>,
    on_agent: bool,
) -> ApiResult<CheckSpec> {
    let mut spec = spec;
    spec.name = check_name(&spec.name)?;
    if !(MIN_CHECK_INTERVAL_S..=MAX_CHECK_INTERVAL_S).contains(&spec.interval_s) {
        return Err(invalid(
            "interval_s",
            format!("must be {MIN_CHECK_INTERVAL_S} to {MAX_CHECK_INTERVAL_S} seconds"),
        ));
    }
    if !(MIN_CHECK_TIMEOUT_MS..=MAX_CHECK_TIMEOUT_MS).contains(&spec.timeout_ms) {
        return Err(invalid(
            "timeout_ms",
            format!("must be {MIN_CHECK_TIMEOUT_MS} to {MAX_CHECK_TIMEOUT_MS} milliseconds"),
        ));
    }
    if u64::from(spec.timeout_ms) > u64::from(spec.interval_s) * 1000 {
        return Err(invalid(
            "timeout_ms",
            "must not be longer than the interval",
        ));
    }
    if spec.retries > MAX_CHECK_RETRIES {
        return Err(invalid(
            "retries",
            format!("must be 0 to {MAX_CHECK_RETRIES}"),
        ));
    }
    if spec.target.len() > TARGET_MAX {
        return Err(invalid("target", format!("at most {TARGET_MAX} bytes")));
    }
    if spec.kind != CheckKind::Http && spec.http.is_some() {
        return Err(invalid("http", "only for checks of kind http"));
    }
    if spec.kind != CheckKind::Dns && spec.dns_expected.is_some() {
        return Err(invalid("dns_expected", "only for checks of kind dns"));
    }
    match spec.kind {
        CheckKind::Http if on_agent => {
            let url = url::Url::parse(spec.target.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    invalid(
                        "target",
                        "an absolute http:// or https:// URL, e.g. https://example.com/health",
                    )
                })?;
            spec.target = url.to_string();
            let old_http = old.and_then(|o| o.http.as_ref());
            spec.http = Some(check_http(spec.http.take().unwrap_or_default(), old_http)?);
        }
        CheckKind::Http => {
            let url = guard
                .check_url(&spec.target, caller)
                .await
                .map_err(|e| match e {
                    UrlError::Invalid => invalid(
                        "target",
                        "an absolute http:// or https:// URL, e.g. https://example.com/health",
                    ),
                    UrlError::Refused(r) => invalid("target", r),
                })?;
            spec.target = url.to_string();
            let old_http = old.and_then(|o| o.http.as_ref());
            spec.http = Some(check_http(spec.http.take().unwrap_or_default(), old_http)?);
        }
        CheckKind::Tcp => {
            let (host, port) = parse_host_port(&spec.target).ok_or_else(|| {
                invalid(
                    "target",
                    "host:port, e.g. nas.example.com:22 or [2001:db8::1]:443",
                )
            })?;
            if !on_agent {
                check_host(guard, &host, port, caller)
                    .await
                    .map_err(|r| invalid("target", r))?;
            }
            spec.target = match host {
                Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
                other => format!("{}:{port}", other.as_text()),
            };
        }
        CheckKind::Ping => {
            let host = parse_host(&spec.target)
                .ok_or_else(|| invalid("target", "a host name or an IP address"))?;
            if !on_agent {
                check_host(guard, &host, 0, caller)
                    .await
                    .map_err(|r| invalid("target", r))?;
            }
            spec.target = host.as_text();
        }
        CheckKind::Dns => {
            // A DNS check connects to nothing: only the server's resolver is
            // asked, so the guard's address table does not apply.
            match parse_host(&spec.target) {
                Some(Host::Name(name)) => spec.target = name,
                _ => return Err(invalid("target", "a host name, e.g. nas.example.com")),
            }
            if let Some(expected) = &spec.dns_expected {
                let ip: IpAddr = expected
                    .trim()
                    .parse()
                    .map_err(|_| invalid("dns_expected", "an IPv4 or IPv6 address"))?;
                spec.dns_expected = Some(ip.to_string());
            }
        }
    }
    Ok(spec)
}

fn check_http(
    mut http: HttpCheckOptions,
    old: Option<&HttpCheckOptions>,
) -> ApiResult<HttpCheckOptions> {
    http.method = http.method.trim().to_ascii_uppercase();
    if !METHODS.contains(&http.method.as_str()) {
        return Err(invalid(
            "http.method",
            format!("one of {}", METHODS.join(", ")),
        ));
    }
    if !(100..=599).contains(&http.status_min) || !(100..=599).contains(&http.status_max) {
        return Err(invalid("http.status_min", "statuses are 100 to 599"));
    }
    if http.status_min > http.status_max {
        return Err(invalid("http.status_max", "must not be below status_min"));
    }
    if let Some(keyword) = &http.keyword {
        if keyword.is_empty()
            || keyword.chars().count() > MAX_KEYWORD_CHARS
            || keyword.chars().any(char::is_control)
        {
            return Err(invalid(
                "http.keyword",
                format!("1 to {MAX_KEYWORD_CHARS} characters, no control characters"),
            ));
        }
    } else if http.keyword_absent {
        return Err(invalid("http.keyword_absent", "needs a keyword"));
    }
    if http.headers.len() > MAX_CHECK_HEADERS {
        return Err(invalid(
            "http.headers",
            format!("at most {MAX_CHECK_HEADERS} headers"),
        ));
    }
    for (i, header) in http.headers.iter_mut().enumerate() {
        let name = ureq::http::HeaderName::from_bytes(header.name.trim().as_bytes())
            .map_err(|_| invalid(&format!("http.headers[{i}].name"), "not a header name"))?;
        if matches!(
            name.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection"
        ) {
            return Err(invalid(
                &format!("http.headers[{i}].name"),
                "set by the server, not by the check",
            ));
        }
        header.name = name.as_str().to_string();
        let value = match header.value.take() {
            Some(v) => v,
            None => old
                .and_then(|o| {
                    o.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(&header.name))
                })
                .and_then(|h| h.value.clone())
                .ok_or_else(|| invalid(&format!("http.headers[{i}].value"), "required"))?,
        };
        if value.len() > HEADER_VALUE_MAX || ureq::http::HeaderValue::from_str(&value).is_err() {
            return Err(invalid(
                &format!("http.headers[{i}].value"),
                format!("visible ASCII, at most {HEADER_VALUE_MAX} bytes"),
            ));
        }
        header.value = Some(value);
    }
    Ok(http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_parse_or_not() {
        assert_eq!(
            parse_host_port("nas.lan:22"),
            Some((Host::Name("nas.lan".into()), 22))
        );
        assert_eq!(
            parse_host_port("[::1]:443"),
            Some((Host::Ip("::1".parse().unwrap()), 443))
        );
        assert_eq!(parse_host_port("::1:443"), None);
        assert_eq!(parse_host_port("nas.lan:0"), None);
        assert_eq!(parse_host_port("nas.lan"), None);
        assert_eq!(parse_host_port("na s:80"), None);
        assert_eq!(parse_host("-bad.example"), None);
        assert_eq!(
            parse_host("Example.COM."),
            Some(Host::Name("example.com".into()))
        );
    }
}
