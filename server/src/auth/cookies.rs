//! Session cookies. `sm_access` (the JWT) goes to every path; `sm_refresh`
//! only to `/api/auth`, so it is not sent with ordinary requests. Both are
//! HttpOnly and SameSite=Strict, and Secure when the request arrived over TLS
//! (a reverse proxy says so with `X-Forwarded-Proto: https`).

use axum::http::{HeaderMap, HeaderValue, header};

use crate::auth::{ACCESS_TTL_S, REFRESH_TTL_MS};

pub const ACCESS_COOKIE: &str = "sm_access";
pub const REFRESH_COOKIE: &str = "sm_refresh";
const REFRESH_PATH: &str = "/api/auth";

/// The value of cookie `name` in the request, if any.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether the client reached us over TLS (directly or through a proxy).
pub fn is_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn cookie(name: &str, value: &str, path: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age_s}{secure}"
    );
    // Tokens are hex/base64url/dots only, so this cannot fail; stay safe anyway.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` values that store both tokens.
pub fn set_session(access: &str, refresh: &str, secure: bool) -> [HeaderValue; 2] {
    [
        cookie(ACCESS_COOKIE, access, "/", ACCESS_TTL_S as i64, secure),
        cookie(
            REFRESH_COOKIE,
            refresh,
            REFRESH_PATH,
            REFRESH_TTL_MS / 1000,
            secure,
        ),
    ]
}

/// `Set-Cookie` values that delete both.
pub fn clear_session(secure: bool) -> [HeaderValue; 2] {
    [
        cookie(ACCESS_COOKIE, "", "/", 0, secure),
        cookie(REFRESH_COOKIE, "", REFRESH_PATH, 0, secure),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_many() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sm_access=xyz; b=2"),
        );
        assert_eq!(get(&h, ACCESS_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(get(&h, REFRESH_COOKIE), None);
    }

    #[test]
    fn attributes() {
        let [a, r] = set_session("A", "R", true);
        assert_eq!(
            a.to_str().unwrap(),
            "sm_access=A; HttpOnly; SameSite=Strict; Path=/; Max-Age=900; Secure"
        );
        assert!(
            r.to_str()
                .unwrap()
                .contains("Path=/api/auth; Max-Age=2592000")
        );
        let [a, _] = clear_session(false);
        assert!(a.to_str().unwrap().contains("Max-Age=0"));
        assert!(!a.to_str().unwrap().contains("Secure"));
    }
}
