//! Single sign-on through a reverse proxy (Authelia, Authentik,
//! oauth2-proxy): the proxy authenticates the person and passes their name
//! in a header (`--trusted-auth-header Remote-User`). The header is believed
//! only on a request whose TCP peer is one of `--trusted-proxies`; from any
//! other address it is ignored, since any client can send any header.
//!
//! It is consulted at one place, `POST /api/auth/sso`, which starts an
//! ordinary session (cookies, refresh, revocable); everything after that is
//! the usual session. The proxy is the authority for that log-in, so no
//! password or two-factor code of ours is asked; a disabled account is still
//! refused.

use std::net::IpAddr;

use anyhow::bail;
use axum::http::{HeaderMap, HeaderName};

/// The resolved `--trusted-auth-*` settings.
#[derive(Debug, Clone)]
pub struct TrustedAuth {
    pub header: HeaderName,
    pub proxies: Vec<ipnet::IpNet>,
    /// Create an account for a name seen for the first time.
    pub create_users: bool,
}

impl TrustedAuth {
    /// `None` when off; an error when only half of it is given.
    pub fn resolve(
        header: Option<String>,
        proxies: Vec<String>,
        create_users: bool,
    ) -> anyhow::Result<Option<TrustedAuth>> {
        let proxies = crate::outbound::parse_allow_list(&proxies.join(","))
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        match header
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
        {
            None if proxies.is_empty() && !create_users => Ok(None),
            None => bail!(
                "trusted_proxies and trusted_auth_create_users need trusted_auth_header (the \
                 header the proxy names the user in, e.g. Remote-User)"
            ),
            Some(_) if proxies.is_empty() => bail!(
                "trusted_auth_header needs trusted_proxies: the addresses of the reverse \
                 proxies whose header is believed (e.g. 127.0.0.1/32)"
            ),
            Some(h) => {
                let header =
                    HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(|_| {
                        anyhow::anyhow!("trusted_auth_header: `{h}` is not a header name")
                    })?;
                Ok(Some(TrustedAuth {
                    header,
                    proxies,
                    create_users,
                }))
            }
        }
    }

    /// Whether a request from `peer` may vouch for a user.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.proxies.iter().any(|net| net.contains(&peer))
    }

    /// The name in the header, if present and readable.
    pub fn name<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers
            .get(&self.header)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_setting_is_an_error_and_peers_are_matched_by_cidr() {
        assert!(TrustedAuth::resolve(None, vec![], false).unwrap().is_none());
        assert!(TrustedAuth::resolve(Some("Remote-User".into()), vec![], false).is_err());
        assert!(TrustedAuth::resolve(None, vec!["10.0.0.0/8".into()], false).is_err());
        assert!(
            TrustedAuth::resolve(Some("bad header".into()), vec!["10.0.0.1".into()], false)
                .is_err()
        );
        let t = TrustedAuth::resolve(Some("Remote-User".into()), vec!["10.0.0.0/8".into()], true)
            .unwrap()
            .unwrap();
        assert!(t.trusts("10.1.2.3".parse().unwrap()));
        assert!(t.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!t.trusts("192.168.1.2".parse().unwrap()));
        let mut h = HeaderMap::new();
        h.insert("remote-user", "alice".parse().unwrap());
        assert_eq!(t.name(&h), Some("alice"));
    }
}
