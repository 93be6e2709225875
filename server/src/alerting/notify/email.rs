//! Email over SMTP (`lettre`, blocking, run on the blocking pool): plain
//! text with a subject, STARTTLS (default, port 587), implicit TLS (465) or
//! none. The host goes through the [outbound guard](crate::outbound) like
//! every HTTP channel: it is resolved and checked here, and the connection
//! is made to the checked address (the certificate is still checked
//! against the host name), so no second lookup can answer differently.
//! Errors are fixed phrases (`SMTP 550`, `timeout`, `TLS error`, …).

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};
use storage::catalog::ChannelRecord;

use crate::outbound::{Caller, Failure, OutboundGuard, ResolveError};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    StartTls,
    Tls,
    None,
}

impl Security {
    pub fn parse(text: &str) -> Option<Security> {
        match text {
            "" | "starttls" => Some(Security::StartTls),
            "tls" => Some(Security::Tls),
            "none" => Some(Security::None),
            _ => None,
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }
}

/// At most this many recipients per channel.
pub const MAX_RECIPIENTS: usize = 10;

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, String)>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub subject: String,
    pub body: String,
    pub caller: Caller,
}

/// The addresses of a comma-separated list, or the first that is invalid.
pub fn parse_addresses(text: &str) -> Result<Vec<Mailbox>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| a.parse::<Mailbox>().map_err(|_| a.to_string()))
        .collect()
}

/// The mail `channel` sends for `subject` and `body`; `None` when its
/// settings are incomplete (the API refuses such a channel).
pub fn mail(channel: &ChannelRecord, subject: &str, body: &str, caller: Caller) -> Option<Mail> {
    let security = Security::parse(channel.field("security").unwrap_or(""))?;
    let port = match channel.field("port") {
        Some(p) => p.parse().ok().filter(|p| *p > 0)?,
        None => security.default_port(),
    };
    let credentials = channel.field("username").map(|u| {
        (
            u.to_string(),
            channel.field("password").unwrap_or("").to_string(),
        )
    });
    Some(Mail {
        host: channel.field("host")?.to_string(),
        port,
        security,
        credentials,
        from: channel.field("from")?.parse().ok()?,
        to: parse_addresses(channel.field("to")?).ok()?,
        subject: subject.chars().take(200).collect(),
        body: body.to_string(),
        caller,
    })
}

fn fixed(phrase: &str, transient: bool) -> Failure {
    Failure {
        phrase: phrase.to_string(),
        transient,
    }
}

/// A TLS failure during the STARTTLS handshake surfaces as an I/O error
/// (`InvalidData`, rustls's error inside) of the connection.
fn tls_in_chain(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::InvalidData
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Sends `mail`, trusting `roots` besides the public CAs. Blocking.
pub fn send(
    guard: &Arc<OutboundGuard>,
    mail: &Mail,
    timeout: Duration,
    roots: &[Vec<u8>],
) -> Result<(), Failure> {
    let host = mail.host.trim_start_matches('[').trim_end_matches(']');
    let addrs = guard
        .resolve(host, mail.port, mail.caller)
        .map_err(|e| match e {
            ResolveError::NotFound => fixed("host not found", true),
            ResolveError::Refused(r) => fixed(&r.to_string(), false),
        })?;
    let addr = addrs[0];
    let tls = || -> Result<TlsParameters, Failure> {
        let mut params = TlsParameters::builder(host.to_string());
        for pem in roots {
            if let Ok(cert) = Certificate::from_pem(pem) {
                params = params.add_root_certificate(cert);
            }
        }
        params.build_rustls().map_err(|_| fixed("TLS error", false))
    };
    let tls = match mail.security {
        Security::StartTls => Tls::Required(tls()?),
        Security::Tls => Tls::Wrapper(tls()?),
        Security::None => Tls::None,
    };
    let mut transport = SmtpTransport::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .timeout(Some(timeout))
        .hello_name(ClientId::Domain("statusmonitor".into()))
        .tls(tls);
    if let Some((user, password)) = &mail.credentials {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let mut builder = Message::builder()
        .from(mail.from.clone())
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN);
    for to in &mail.to {
        builder = builder.to(to.clone());
    }
    let message = builder
        .body(mail.body.clone())
        .map_err(|_| fixed("invalid message", false))?;
    transport.build().send(&message).map(|_| ()).map_err(|e| {
        if e.is_timeout() {
            fixed("timeout", true)
        } else if e.is_tls() || tls_in_chain(&e) {
            fixed("TLS error", true)
        } else if let Some(code) = e.status() {
            fixed(&format!("SMTP {code}"), e.is_transient())
        } else if e.is_client() {
            fixed("SMTP client error", false)
        } else {
            fixed("SMTP connection failed", true)
        }
    })
}
