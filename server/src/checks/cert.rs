//! Days until an HTTPS server's certificate expires: a TLS handshake of its
//! own (ureq does not show the peer's certificate), through the outbound
//! guard like every connection, that accepts any certificate (it only reads
//! the leaf's `notAfter`; it sends no request), bounded by the check's
//! timeout. The scheduler runs it at most hourly per check.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use super::probe::resolve;
use super::validate::{Host, parse_host};
use crate::outbound::{Caller, OutboundGuard};

const DAY_MS: f64 = 86_400_000.0;

/// Days from `now_ms` until the certificate of the `https://` URL `target`
/// expires (negative once expired); `None` when it cannot be read.
pub fn days_left(
    guard: &OutboundGuard,
    target: &str,
    caller: Caller,
    timeout: Duration,
    now_ms: i64,
) -> Option<f64> {
    let url = url::Url::parse(target).ok()?;
    if url.scheme() != "https" {
        return None;
    }
    let port = url.port_or_known_default()?;
    let host_text = url.host_str()?;
    let host = parse_host(host_text)?;
    let addr = *resolve(guard, &host, port, caller).ok()?.first()?;
    let started = Instant::now();
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).ok()?;
    let left = timeout.checked_sub(started.elapsed())?;
    tcp.set_read_timeout(Some(left)).ok()?;
    tcp.set_write_timeout(Some(left)).ok()?;
    let name = match &host {
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Host::Name(n) => ServerName::try_from(n.clone()).ok()?,
    };
    let mut conn = ClientConnection::new(config()?, name).ok()?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).ok()?;
        if started.elapsed() > timeout {
            return None;
        }
    }
    let leaf = conn.peer_certificates()?.first()?;
    let not_after = not_after_ms(leaf.as_ref())?;
    Some((not_after - now_ms) as f64 / DAY_MS)
}

fn config() -> Option<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(ReadOnly(provider.clone()));
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Some(Arc::new(config))
}

/// Accepts every certificate: the handshake is only to read it, nothing is
/// sent over the connection afterwards. Signatures are still checked
/// against the presented key, so the peer must hold it.
#[derive(Debug)]
struct ReadOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One DER element: (tag, contents, rest).
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// `notAfter` of an X.509 certificate (RFC 5280 4.1: Certificate →
/// tbsCertificate → [version], serialNumber, signature, issuer, validity),
/// in ms since the epoch. Reads only those few elements; any other shape
/// is `None`.
pub fn not_after_ms(der: &[u8]) -> Option<i64> {
    const SEQUENCE: u8 = 0x30;
    let (tag, cert, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _, mut rest) = element(tbs)?;
    if tag == 0xa0 {
        // explicit version; the serial number follows
        rest = element(rest)?.2;
    }
    let (_signature, _, rest) = element(rest)?;
    let (_issuer, _, rest) = element(rest)?;
    let (tag, validity, _) = element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after) = element(validity)?;
    let (tag, time, _) = element(after)?;
    let text = std::str::from_utf8(time).ok()?;
    let (year, rest) = match tag {
        // UTCTime: YYMMDDHHMMSSZ, years 1950-2049
        0x17 => {
            let yy: i32 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        // GeneralizedTime: YYYYMMDDHHMMSSZ
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 11 || !rest.ends_with('Z') {
        return None;
    }
    let rfc3339 = format!(
        "{year:04}-{}-{}T{}:{}:{}Z",
        rest.get(0..2)?,
        rest.get(2..4)?,
        rest.get(4..6)?,
        rest.get(6..8)?,
        rest.get(8..10)?
    );
    storage::model::time::parse_rfc3339_ms(&rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_certificates_are_none_not_a_panic() {
        assert_eq!(not_after_ms(&[]), None);
        assert_eq!(not_after_ms(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(not_after_ms(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = not_after_ms(&junk);
        }
    }

    #[test]
    fn the_agent_test_certificate_expires_in_2126() {
        use rustls::pki_types::pem::PemObject;
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/tls/server.pem");
        let cert = CertificateDer::pem_file_iter(path)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        // notAfter=Nov 12 07:41:28 2126 GMT
        assert_eq!(
            not_after_ms(cert.as_ref()),
            storage::model::time::parse_rfc3339_ms("2126-11-12T07:41:28Z").ok()
        );
    }
}
