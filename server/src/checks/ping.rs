//! ICMP echo through an unprivileged ping socket (`SOCK_DGRAM` +
//! `IPPROTO_ICMP`/`IPPROTO_ICMPV6`): Linux allows it to the groups in
//! `net.ipv4.ping_group_range` and fills in the identifier itself. No raw
//! socket, no capability, never a setuid helper; where the kernel refuses
//! the socket the check fails with a message that says which setting to
//! change.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::probe::{Probe, resolve};
use super::validate::Host;
use crate::outbound::{Caller, OutboundGuard};

/// The failure when the kernel refuses a ping socket.
pub const NOT_PERMITTED: &str = "ping not permitted: the server's group is not in net.ipv4.ping_group_range (sysctl -w net.ipv4.ping_group_range=\"0 2147483647\")";

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// An unprivileged ping socket for `ip`'s family, or why not.
pub fn socket(ip: IpAddr) -> Result<UdpSocket, &'static str> {
    let (domain, protocol) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(s) => Ok(s.into()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::Unsupported
            ) || e.raw_os_error() == Some(13)
                || e.raw_os_error() == Some(1) =>
        {
            Err(NOT_PERMITTED)
        }
        Err(_) => Err("ping socket not available"),
    }
}

/// One echo request to `host`, waiting up to `timeout` for the reply.
pub fn ping(guard: &OutboundGuard, host: &Host, caller: Caller, timeout: Duration) -> Probe {
    let addrs = match resolve(guard, host, 0, caller) {
        Ok(a) => a,
        Err(e) => return down(None, e),
    };
    let Some(addr) = addrs.first().copied() else {
        return down(None, "host not found".into());
    };
    let socket = match socket(addr.ip()) {
        Ok(s) => s,
        Err(e) => return down(None, e.into()),
    };
    let seq: u16 = rand::random();
    let request_type = if addr.is_ipv4() {
        ECHO_REQUEST_V4
    } else {
        ECHO_REQUEST_V6
    };
    let mut packet = [0u8; 16];
    packet[0] = request_type;
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..16].copy_from_slice(b"statusmo");
    if addr.is_ipv4() {
        // The kernel computes the checksum for ICMPv6 only.
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    let started = Instant::now();
    if socket
        .send_to(&packet, SocketAddr::new(addr.ip(), 0))
        .is_err()
    {
        return down(Some(started), "host unreachable".into());
    }
    let reply_type = if addr.is_ipv4() {
        ECHO_REPLY_V4
    } else {
        ECHO_REPLY_V6
    };
    let mut buf = [0u8; 1500];
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return down(Some(started), "timeout".into());
        }
        match socket.recv(&mut buf) {
            Ok(n) if n >= 8 && buf[0] == reply_type && buf[6..8] == seq.to_be_bytes() => {
                return Probe {
                    ok: true,
                    latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
                    error: None,
                };
            }
            Ok(_) => continue,
            Err(_) => return down(Some(started), "timeout".into()),
        }
    }
}

fn down(started: Option<Instant>, error: String) -> Probe {
    Probe {
        ok: false,
        latency_ms: started.map(|s| s.elapsed().as_secs_f64() * 1000.0),
        error: Some(error),
    }
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_of_a_packet_with_its_checksum_is_zero() {
        let mut p = [8u8, 0, 0, 0, 0, 1, 0, 7, b'a', b'b', b'c'];
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(checksum(&p), 0);
    }
}
