//! The outbound guard: the one place that decides whether the server may
//! open a connection a user asked for (webhooks today; notification channels
//! and service checks use the same guard).
//!
//! A non-admin's target may not be:
//!
//! | class | addresses |
//! | --- | --- |
//! | unspecified | `0.0.0.0/8`, `::` (Linux connects them to the machine itself) |
//! | loopback | `127.0.0.0/8`, `::1`, the names `localhost` and `*.localhost` |
//! | link-local | `169.254.0.0/16` (cloud metadata `169.254.169.254`), `fe80::/10` |
//! | private | `10/8`, `172.16/12`, `192.168/16`, `100.64/10` (CGNAT, Tailscale), `fc00::/7`, `fec0::/10` |
//! | multicast, broadcast, reserved | `224/4`, `255.255.255.255`, `240/4`, `ff00::/8` |
//! | the server's own address | the listen address and port (with a wildcard listen address: any of the machine's addresses on that port) |
//!
//! IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`,
//! compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged
//! by that IPv4 address. The admin's allow-list (`--outbound-allow`) opens
//! CIDR ranges to everyone (a home lab's own ntfy on `192.168.1.5`), except
//! unspecified addresses and the server's own address, which stay closed.
//! Admins may target anything.
//!
//! Two checks, one rule:
//!
//! - at save time, [`OutboundGuard::check_url`] parses the URL the WHATWG way
//!   (the `url` crate: `http://2130706433/`, `http://0177.0.0.1/`,
//!   `http://0x7f.1/`, `http://127.1/` all become `127.0.0.1`), refuses by
//!   the normalised address, and resolves a host name (bounded in time) to
//!   refuse names that point inward;
//! - at send time, the HTTP agent from [`OutboundGuard::http_agent`] resolves
//!   through [`GuardedResolver`], which checks every resolved address and
//!   hands exactly those to the connector: there is no second resolution a
//!   DNS rebinding could answer differently. Redirect hops go through the
//!   same resolver, so a followed redirect is checked as well (webhooks do
//!   not follow redirects at all). The guarded agent never uses a proxy: a
//!   proxy would resolve the name itself, out of the guard's sight.
//!
//! Failures are described by [`describe`] as a fixed phrase (`HTTP 403`,
//! `connection refused`, `timeout`, `refused by the outbound guard: loopback
//! address`), never with anything the remote end sent.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use ureq::http::Uri;
use ureq::typestate::AgentScope;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use url::{Host, Url};

use crate::config::Config;

/// How long the save-time check waits for DNS; a name that does not resolve
/// in time is accepted and checked again when it is used.
pub const SAVE_TIME_DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// Who a request is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The admin, or the server's own configuration (Telegram's API base,
    /// remote_write): no address is refused.
    Admin,
    /// Any other account: the table in the module docs applies.
    User,
}

impl Caller {
    pub fn of(is_admin: bool) -> Caller {
        if is_admin {
            Caller::Admin
        } else {
            Caller::User
        }
    }
}

/// Why the guard refused a target. `Display` is the phrase users see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    Unspecified,
    Loopback,
    LinkLocal,
    Private,
    Multicast,
    Reserved,
    OwnAddress,
}

impl Refusal {
    /// The class of address, e.g. `loopback address`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unspecified => "unspecified address",
            Refusal::Loopback => "loopback address",
            Refusal::LinkLocal => "link-local address",
            Refusal::Private => "private address (the admin can allow its range)",
            Refusal::Multicast => "multicast or broadcast address",
            Refusal::Reserved => "reserved address",
            Refusal::OwnAddress => "the server's own address",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused by the outbound guard: {}", self.reason())
    }
}

impl std::error::Error for Refusal {}

/// A URL the save-time check does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Not an absolute `http://` or `https://` URL.
    Invalid,
    /// A target the caller may not reach.
    Refused(Refusal),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Invalid => {
                f.write_str("an absolute http:// or https:// URL, e.g. https://example.com/hook")
            }
            UrlError::Refused(r) => r.fmt(f),
        }
    }
}

/// The policy: the admin's allow-list and the server's own address. Holds
/// no other state, so every part of the server can build it from the
/// [`Config`] and get the same answers.
#[derive(Debug, Clone)]
pub struct OutboundGuard {
    allow: Vec<IpNet>,
    own: SocketAddr,
}

impl OutboundGuard {
    pub fn new(allow: Vec<IpNet>, own: SocketAddr) -> OutboundGuard {
        OutboundGuard { allow, own }
    }

    pub fn from_config(config: &Config) -> OutboundGuard {
        OutboundGuard::new(config.outbound_allow.clone(), config.listen)
    }

    /// May `caller` connect to `addr`?
    pub fn check_addr(&self, addr: SocketAddr, caller: Caller) -> Result<(), Refusal> {
        if caller == Caller::Admin {
            return Ok(());
        }
        let ip = canonical(addr.ip());
        if ip.is_unspecified() || matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 0) {
            return Err(Refusal::Unspecified);
        }
        if self.is_own(ip, addr.port()) {
            return Err(Refusal::OwnAddress);
        }
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match class(ip) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// The server's own listen address, or with a wildcard listen address
    /// any address of this machine, on the listen port.
    fn is_own(&self, ip: IpAddr, port: u16) -> bool {
        if port != self.own.port() {
            return false;
        }
        let own = canonical(self.own.ip());
        if own.is_unspecified() {
            // Binding succeeds only for an address of this machine.
            ip.is_loopback() || UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
        } else {
            ip == own
        }
    }

    /// Parses `text` as the URL a user typed and checks its scheme and, for
    /// an address or a `localhost` name, the target. No DNS: see
    /// [`OutboundGuard::check_url`]. The answer is the normalised URL, the
    /// one to store and to send to.
    pub fn parse_url(&self, text: &str, caller: Caller) -> Result<Url, UrlError> {
        let url = normalise(text)?;
        let port = url.port_or_known_default().ok_or(UrlError::Invalid)?;
        let ip = match url.host().ok_or(UrlError::Invalid)? {
            Host::Ipv4(v4) => IpAddr::V4(v4),
            Host::Ipv6(v6) => IpAddr::V6(v6),
            Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                if caller == Caller::User && (name == "localhost" || name.ends_with(".localhost")) {
                    return Err(UrlError::Refused(Refusal::Loopback));
                }
                return Ok(url);
            }
        };
        self.check_addr(SocketAddr::new(ip, port), caller)
            .map_err(UrlError::Refused)?;
        Ok(url)
    }

    /// The save-time check: [`OutboundGuard::parse_url`], then, for a host
    /// name, every address it resolves to within [`SAVE_TIME_DNS_TIMEOUT`].
    /// A name that does not resolve (yet) is accepted; the send-time check
    /// decides then.
    pub async fn check_url(&self, text: &str, caller: Caller) -> Result<Url, UrlError> {
        let url = self.parse_url(text, caller)?;
        if let (Some(Host::Domain(name)), Some(port)) = (url.host(), url.port_or_known_default()) {
            self.check_resolved(name, port, caller)
                .await
                .map_err(UrlError::Refused)?;
        }
        Ok(url)
    }

    /// Every address `name` resolves to within [`SAVE_TIME_DNS_TIMEOUT`]; a
    /// name that does not resolve in time passes.
    pub async fn check_resolved(
        &self,
        name: &str,
        port: u16,
        caller: Caller,
    ) -> Result<(), Refusal> {
        if caller == Caller::Admin {
            return Ok(());
        }
        let lookup = tokio::net::lookup_host((name.to_string(), port));
        if let Ok(Ok(addrs)) = tokio::time::timeout(SAVE_TIME_DNS_TIMEOUT, lookup).await {
            for addr in addrs {
                self.check_addr(addr, caller)?;
            }
        }
        Ok(())
    }

    /// Resolves `host` (a name or an address) and checks every address; for
    /// connections that are not HTTP (TCP checks, ping). Blocking.
    pub fn resolve(
        &self,
        host: &str,
        port: u16,
        caller: Caller,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|_| ResolveError::NotFound)?
            .collect();
        if addrs.is_empty() {
            return Err(ResolveError::NotFound);
        }
        for addr in &addrs {
            self.check_addr(*addr, caller)
                .map_err(ResolveError::Refused)?;
        }
        Ok(addrs)
    }

    /// An HTTP agent for `caller` with `config`'s timeouts and headers. For
    /// [`Caller::User`] it resolves through [`GuardedResolver`], follows no
    /// proxy, and so connects only to addresses the guard accepted.
    pub fn http_agent(
        self: &Arc<Self>,
        caller: Caller,
        config: ureq::config::ConfigBuilder<AgentScope>,
    ) -> ureq::Agent {
        let config = match caller {
            Caller::Admin => config.build(),
            Caller::User => config.proxy(None).build(),
        };
        ureq::Agent::with_parts(
            config,
            DefaultConnector::default(),
            GuardedResolver {
                guard: Arc::clone(self),
                caller,
            },
        )
    }
}

/// `text` parsed the WHATWG way, if it is an absolute `http`/`https` URL
/// with a host. What to send to: the guarded agent resolves its host (an
/// address too) through [`GuardedResolver`], which applies the check.
pub fn normalise(text: &str) -> Result<Url, UrlError> {
    let url = Url::parse(text.trim()).map_err(|_| UrlError::Invalid)?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || url.port_or_known_default().is_none()
    {
        return Err(UrlError::Invalid);
    }
    Ok(url)
}

/// Why [`OutboundGuard::resolve`] gave no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    NotFound,
    Refused(Refusal),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NotFound => f.write_str("host not found"),
            ResolveError::Refused(r) => r.fmt(f),
        }
    }
}

/// ureq's resolver with the guard's check on every address it returns.
#[derive(Debug)]
pub struct GuardedResolver {
    guard: Arc<OutboundGuard>,
    caller: Caller,
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = DefaultResolver::default()
            .resolve(uri, config, timeout)
            .map_err(|e| match e {
                // getaddrinfo's own words name the resolver, not the target.
                ureq::Error::Io(_) => ureq::Error::HostNotFound,
                other => other,
            })?;
        for addr in addrs.iter() {
            self.guard
                .check_addr(*addr, self.caller)
                .map_err(|r| ureq::Error::Io(io::Error::new(io::ErrorKind::PermissionDenied, r)))?;
        }
        Ok(addrs)
    }
}

/// The refusal inside an error of a guarded agent, if that is what it is.
pub fn refusal_of(error: &ureq::Error) -> Option<Refusal> {
    match error {
        ureq::Error::Io(e) => e.get_ref()?.downcast_ref::<Refusal>().copied(),
        _ => None,
    }
}

/// How an outbound request failed, in words that carry nothing the remote
/// end chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub phrase: String,
    /// Worth trying again later (timeouts, connection failures, 5xx, 429).
    pub transient: bool,
}

/// A non-2xx status: `HTTP 403`.
pub fn describe_status(status: u16) -> Failure {
    Failure {
        phrase: format!("HTTP {status}"),
        transient: storage::model::retry::worth_retrying(status),
    }
}

/// A transport error as a fixed phrase.
pub fn describe(error: &ureq::Error) -> Failure {
    let fixed = |phrase: &str, transient: bool| Failure {
        phrase: phrase.to_string(),
        transient,
    };
    if let Some(refusal) = refusal_of(error) {
        return Failure {
            phrase: refusal.to_string(),
            transient: false,
        };
    }
    match error {
        ureq::Error::StatusCode(status) => describe_status(*status),
        ureq::Error::Timeout(_) => fixed("timeout", true),
        ureq::Error::HostNotFound => fixed("host not found", true),
        ureq::Error::BadUri(_) => fixed("invalid URL", false),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            fixed("TLS error", true)
        }
        ureq::Error::Protocol(_) => fixed("invalid HTTP response", true),
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => {
            fixed("redirect not followed", false)
        }
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => fixed("connection refused", true),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => fixed("timeout", true),
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => fixed("connection reset", true),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                fixed("host unreachable", true)
            }
            _ => fixed("connection failed", true),
        },
        _ => fixed("connection failed", true),
    }
}

/// `ip`, with an IPv4 address carried inside an IPv6 one taken out: mapped
/// `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and
/// 6to4 `2002:aabb:ccdd::`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // `::` and `::1` are IPv6's own unspecified and loopback addresses.
    if s[..6] == [0; 6] && !v6.is_unspecified() && v6 != Ipv6Addr::LOCALHOST {
        return IpAddr::V4(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(low);
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    ip
}

/// The refused class of a canonical address, if any (unspecified and the
/// server's own address are decided before).
fn class(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some(Refusal::Loopback)
            } else if v4.is_link_local() {
                Some(Refusal::LinkLocal)
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some(Refusal::Private)
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some(Refusal::Multicast)
            } else if a >= 240 {
                Some(Refusal::Reserved)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some(Refusal::Loopback)
            } else if first & 0xffc0 == 0xfe80 {
                Some(Refusal::LinkLocal)
            } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
                Some(Refusal::Private)
            } else if v6.is_multicast() {
                Some(Refusal::Multicast)
            } else {
                None
            }
        }
    }
}

/// Parses `--outbound-allow`: comma-separated CIDRs or single addresses.
pub fn parse_allow_list(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| format!("`{s}` is not a CIDR range like 192.168.1.0/24"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server listening on 0.0.0.0:8420 with no allow-list.
    fn guard() -> OutboundGuard {
        OutboundGuard::new(Vec::new(), "0.0.0.0:8420".parse().unwrap())
    }

    fn refusal(url: &str) -> Option<Refusal> {
        match guard().parse_url(url, Caller::User) {
            Ok(_) => None,
            Err(UrlError::Refused(r)) => Some(r),
            Err(UrlError::Invalid) => panic!("{url} did not parse"),
        }
    }

    #[test]
    fn every_spelling_of_loopback_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://127.0.0.1:9000/hook",
            "http://127.255.255.254/",
            "http://2130706433/",          // decimal
            "http://0177.0.0.1/",          // octal
            "http://0177.0000.0000.0001/", // octal, padded
            "http://017700000001/",        // octal, one number
            "http://0x7f.0.0.1/",          // hex
            "http://0x7f000001/",          // hex, one number
            "http://0X7F.1/",              // hex, short
            "http://127.1/",               // short
            "http://127.0.1/",             // short
            "http://%31%32%37.0.0.1/",     // percent-encoded
            "http://１２７.０.０.１/",     // full-width digits (IDNA maps them)
            "http://[::1]/",
            "http://[0:0:0:0:0:0:0:1]/",
            "http://[::ffff:127.0.0.1]/", // IPv4-mapped
            "http://[::ffff:7f00:1]/",    // IPv4-mapped, hex
            "http://[0:0:0:0:0:ffff:127.0.0.1]/",
            "http://[::127.0.0.1]/",     // IPv4-compatible
            "http://[64:ff9b::7f00:1]/", // NAT64
            "http://[2002:7f00:1::]/",   // 6to4
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost:8080/",
        ] {
            assert_eq!(refusal(url), Some(Refusal::Loopback), "{url}");
        }
    }

    #[test]
    fn the_url_crate_normalises_numeric_hosts() {
        for url in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1/",
        ] {
            let parsed = guard().parse_url(url, Caller::Admin).unwrap();
            assert_eq!(parsed.as_str(), "http://127.0.0.1/", "{url}");
        }
    }

    #[test]
    fn link_local_unspecified_private_multicast_and_reserved_are_refused() {
        let cases = [
            (
                "http://169.254.169.254/latest/meta-data/",
                Refusal::LinkLocal,
            ),
            ("http://2852039166/", Refusal::LinkLocal), // 169.254.169.254 in decimal
            ("http://0251.0376.0251.0376/", Refusal::LinkLocal), // in octal
            ("http://[::ffff:169.254.169.254]/", Refusal::LinkLocal),
            ("http://[fe80::1]/", Refusal::LinkLocal),
            ("http://[febf::1]/", Refusal::LinkLocal),
            ("http://0.0.0.0/", Refusal::Unspecified),
            ("http://0/", Refusal::Unspecified),
            ("http://0.1.2.3/", Refusal::Unspecified),
            ("http://[::]/", Refusal::Unspecified),
            ("http://[::ffff:0.0.0.0]/", Refusal::Unspecified),
            ("http://10.0.0.1/", Refusal::Private),
            ("http://172.16.5.4/", Refusal::Private),
            ("http://172.31.255.255/", Refusal::Private),
            ("http://192.168.1.1/", Refusal::Private),
            ("http://3232235777/", Refusal::Private), // 192.168.1.1
            ("http://100.64.0.1/", Refusal::Private),
            ("http://[::ffff:10.0.0.1]/", Refusal::Private),
            ("http://[fd00::1]/", Refusal::Private),
            ("http://[fc00::1]/", Refusal::Private),
            ("http://224.0.0.1/", Refusal::Multicast),
            ("http://255.255.255.255/", Refusal::Multicast),
            ("http://[ff02::1]/", Refusal::Multicast),
            ("http://240.0.0.1/", Refusal::Reserved),
        ];
        for (url, expected) in cases {
            assert_eq!(refusal(url), Some(expected), "{url}");
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        for url in [
            "https://93.184.215.14/hook",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[2606:4700:4700::1111]/",
            "https://hooks.example.com/x?y=1",
            "http://localhost.example.com/",
        ] {
            assert_eq!(refusal(url), None, "{url}");
        }
    }

    #[test]
    fn only_http_and_https_parse() {
        for url in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "gopher://example.com/",
            "javascript:alert(1)",
            "/relative",
            "http://",
            "http://[::1/",
            "not a url",
        ] {
            assert_eq!(
                guard().parse_url(url, Caller::Admin),
                Err(UrlError::Invalid),
                "{url}"
            );
        }
    }

    #[test]
    fn admins_may_target_anything() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://169.254.169.254/",
            "http://[::1]:8420/",
            "http://localhost:8420/",
            "http://0.0.0.0/",
        ] {
            assert!(guard().parse_url(url, Caller::Admin).is_ok(), "{url}");
        }
    }

    #[test]
    fn the_servers_own_address_is_refused_even_when_allowed() {
        let g = OutboundGuard::new(
            parse_allow_list("192.0.2.0/24").unwrap(),
            "192.0.2.10:8420".parse().unwrap(),
        );
        let check = |a: &str| g.check_addr(a.parse().unwrap(), Caller::User);
        assert_eq!(check("192.0.2.10:8420"), Err(Refusal::OwnAddress));
        assert_eq!(check("[::ffff:192.0.2.10]:8420"), Err(Refusal::OwnAddress));
        assert_eq!(check("192.0.2.10:8421"), Ok(()));
        assert_eq!(check("192.0.2.11:8420"), Ok(()));
        // With a wildcard listen address, any address of this machine on the
        // listen port is the server itself.
        let g = OutboundGuard::new(
            parse_allow_list("127.0.0.0/8").unwrap(),
            "0.0.0.0:8420".parse().unwrap(),
        );
        let check = |a: &str| g.check_addr(a.parse().unwrap(), Caller::User);
        assert_eq!(check("127.0.0.1:8420"), Err(Refusal::OwnAddress));
        assert_eq!(check("127.0.0.1:9000"), Ok(()), "allowed by the list");
        assert_eq!(check("192.0.2.99:8420"), Ok(()), "not this machine");
    }

    #[test]
    fn the_allow_list_opens_its_ranges_and_nothing_else() {
        let g = OutboundGuard::new(
            parse_allow_list("192.168.1.0/24, 10.1.2.3, fd00::/8").unwrap(),
            "0.0.0.0:8420".parse().unwrap(),
        );
        let check = |a: &str| g.check_addr(a.parse().unwrap(), Caller::User);
        assert_eq!(check("192.168.1.5:80"), Ok(()));
        assert_eq!(check("[::ffff:192.168.1.5]:80"), Ok(()));
        assert_eq!(check("10.1.2.3:80"), Ok(()));
        assert_eq!(check("[fd00::5]:80"), Ok(()));
        assert_eq!(check("192.168.2.5:80"), Err(Refusal::Private));
        assert_eq!(check("10.1.2.4:80"), Err(Refusal::Private));
        assert_eq!(check("127.0.0.1:80"), Err(Refusal::Loopback));
        // Even 0.0.0.0/0 does not open the unspecified address.
        let g = OutboundGuard::new(
            parse_allow_list("0.0.0.0/0").unwrap(),
            "0.0.0.0:8420".parse().unwrap(),
        );
        assert_eq!(
            g.check_addr("0.0.0.0:80".parse().unwrap(), Caller::User),
            Err(Refusal::Unspecified)
        );
    }

    #[test]
    fn allow_lists_parse_or_name_the_bad_entry() {
        assert_eq!(parse_allow_list("").unwrap(), Vec::<IpNet>::new());
        assert_eq!(
            parse_allow_list("192.168.1.7/24").unwrap(),
            vec!["192.168.1.0/24".parse::<IpNet>().unwrap()]
        );
        let err = parse_allow_list("10.0.0.0/8,lan").unwrap_err();
        assert!(err.contains("`lan`"), "{err}");
        assert!(parse_allow_list("10.0.0.0/33").is_err());
    }

    #[test]
    fn resolve_checks_what_a_name_resolves_to() {
        let g = guard();
        assert_eq!(
            g.resolve("localhost", 80, Caller::User),
            Err(ResolveError::Refused(Refusal::Loopback))
        );
        assert_eq!(
            g.resolve("2130706433", 80, Caller::User),
            Err(ResolveError::Refused(Refusal::Loopback))
        );
        assert!(g.resolve("localhost", 80, Caller::Admin).is_ok());
    }

    #[tokio::test]
    async fn save_time_check_resolves_names() {
        let g = guard();
        // `localhost` is refused by its name, before any lookup...
        assert_eq!(
            g.check_url("http://localhost:9/", Caller::User).await,
            Err(UrlError::Refused(Refusal::Loopback))
        );
        // ...and by what it resolves to (`/etc/hosts`: 127.0.0.1), as any
        // name pointing inward is.
        assert_eq!(
            g.check_resolved("localhost", 9, Caller::User).await,
            Err(Refusal::Loopback)
        );
        assert_eq!(
            g.check_resolved("localhost", 9, Caller::Admin).await,
            Ok(())
        );
        // A name that does not resolve passes; the send-time check decides.
        assert_eq!(
            g.check_resolved("no-such-host.invalid", 9, Caller::User)
                .await,
            Ok(())
        );
    }

    /// A loopback HTTP server answering every request with 200.
    fn serve_once() -> (SocketAddr, std::thread::JoinHandle<bool>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let handle = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if let Ok((mut s, _)) = listener.accept() {
                    s.set_nonblocking(false).unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    return true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            false
        });
        (addr, handle)
    }

    #[test]
    fn the_guarded_agent_refuses_after_resolution_and_never_connects() {
        let guard = Arc::new(guard());
        let config = || {
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(5)))
                .http_status_as_error(false)
                .max_redirects(0)
        };
        let user = guard.http_agent(Caller::User, config());
        let admin = guard.http_agent(Caller::Admin, config());
        let (addr, server) = serve_once();
        for url in [
            format!("http://localhost:{}/", addr.port()),
            format!("http://127.0.0.1:{}/", addr.port()),
            format!("http://2130706433:{}/", addr.port()),
        ] {
            let err = user.get(&url).call().unwrap_err();
            assert_eq!(refusal_of(&err), Some(Refusal::Loopback), "{url}: {err}");
            assert_eq!(
                describe(&err).phrase,
                "refused by the outbound guard: loopback address"
            );
            assert!(!describe(&err).transient);
        }
        let ok = admin
            .get(&format!("http://localhost:{}/", addr.port()))
            .call();
        assert_eq!(ok.unwrap().status().as_u16(), 200);
        assert!(server.join().unwrap(), "only the admin's request arrived");
    }

    #[test]
    fn failures_are_fixed_phrases() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = l.local_addr().unwrap();
        drop(l);
        let agent = Arc::new(guard()).http_agent(
            Caller::Admin,
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))),
        );
        let err = agent.get(&format!("http://{dead}/")).call().unwrap_err();
        assert_eq!(describe(&err).phrase, "connection refused");
        assert!(describe(&err).transient);
        assert_eq!(
            describe(&ureq::Error::HostNotFound).phrase,
            "host not found"
        );
        let timeout = ureq::Error::Timeout(ureq::Timeout::Global);
        assert_eq!(describe(&timeout).phrase, "timeout");
        assert_eq!(describe_status(403).phrase, "HTTP 403");
        assert!(!describe_status(403).transient);
        assert!(describe_status(503).transient);
    }
}
