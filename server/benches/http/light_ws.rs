use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Socket {
    stream: TcpStream,
    buf: Vec<u8>,
    /// When the bytes in `buf` (those not yet consumed) arrived.
    at: Instant,
}

/// Opens `ws://host:port/path` and reads the 101 answer.
pub async fn connect(url: &str) -> Socket {
    let rest = url.strip_prefix("ws://").expect("ws:// URL");
    let (host, path) = rest.split_once('/').expect("path");
    let mut stream = TcpStream::connect(host).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("upgrade");
    let mut buf = Vec::with_capacity(8 << 10);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        assert!(stream.read_buf(&mut buf).await.expect("read") > 0, "closed");
    };
    assert!(buf.starts_with(b"HTTP/1.1 101"), "upgrade refused");
    buf.drain(..end);
    Socket {
        stream,
        buf,
        at: Instant::now(),
    }
}

impl Socket {
    /// The next text frame's payload and when its last byte was read.
    pub async fn next_text(&mut self) -> Option<(Vec<u8>, Instant)> {
        loop {
            if let Some((opcode, start, len)) = header(&self.buf)
                && self.buf.len() >= start + len
            {
                let payload = self.buf[start..start + len].to_vec();
                self.buf.drain(..start + len);
                match opcode {
                    1 => return Some((payload, self.at)),
                    8 => return None,
                    _ => continue,
                }
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(64 << 10);
            }
            if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
            self.at = Instant::now();
        }
    }
}

/// (opcode, payload offset, payload length) of a complete frame header.
pub fn header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    assert!(b0 & 0x80 != 0, "fragmented frames are not expected");
    let (start, len) = match b1 & 0x7f {
        126 => (4, usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]))),
        127 => (
            10,
            u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize,
        ),
        n => (2, usize::from(n)),
    };
    Some((b0 & 0x0f, start, len))
}
