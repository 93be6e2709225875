use std::io::{IoSliceMut, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;

use super::light_ws::header;

struct Subscriber {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Report frames seen.
    got: usize,
}

pub struct Pool {
    epoll: Epoll,
    subscribers: Vec<Subscriber>,
}

impl Pool {
    /// Opens `n` WebSockets to `url` (`ws://host:port/path`).
    pub fn connect(url: &str, n: usize) -> Pool {
        let rest = url.strip_prefix("ws://").expect("ws:// URL");
        let (host, path) = rest.split_once('/').expect("path");
        let epoll = Epoll::new(EpollCreateFlags::empty()).expect("epoll");
        let mut subscribers = Vec::with_capacity(n);
        for i in 0..n {
            let mut stream = TcpStream::connect(host).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            write!(
                stream,
                "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .expect("upgrade");
            let mut buf = Vec::with_capacity(8 << 10);
            let end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).expect("read");
                assert!(n > 0, "closed during the upgrade");
                buf.extend_from_slice(&chunk[..n]);
            };
            assert!(buf.starts_with(b"HTTP/1.1 101"), "upgrade refused");
            buf.drain(..end);
            setsockopt(&stream, sockopt::ReceiveTimestampns, &true).expect("SO_TIMESTAMPNS");
            stream.set_nonblocking(true).expect("nonblocking");
            epoll
                .add(
                    stream.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, i as u64),
                )
                .expect("epoll add");
            subscribers.push(Subscriber {
                stream,
                buf,
                got: 0,
            });
        }
        Pool { epoll, subscribers }
    }

    /// Reads at `first`, then every `every`, until every subscriber has
    /// seen `reports` report frames (or 30 s past the reports' time);
    /// `latency(report ts, arrival ns since the Unix epoch)` gives a
    /// delivery's (report index, latency in ms).
    pub fn collect(
        &mut self,
        reports: usize,
        first: Instant,
        every: Duration,
        latency: impl Fn(i64, u64) -> Option<(usize, f64)>,
    ) -> Vec<(usize, f64)> {
        let mut out = Vec::with_capacity(reports * self.subscribers.len());
        let deadline = first + every * reports as u32 + Duration::from_secs(30);
        let mut done = 0;
        let mut unstamped = 0usize;
        let mut events = vec![EpollEvent::empty(); self.subscribers.len()];
        let mut chunk = vec![0u8; 64 << 10];
        let mut cmsg = nix::cmsg_space!(TimeSpec);
        let mut next = first;
        while done < self.subscribers.len() && Instant::now() < deadline {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next += every;
            let ready = self
                .epoll
                .wait(&mut events, EpollTimeout::ZERO)
                .expect("epoll wait");
            for event in &events[..ready] {
                let s = &mut self.subscribers[event.data() as usize];
                loop {
                    let mut iov = [IoSliceMut::new(&mut chunk)];
                    let (n, stamp) = match recvmsg::<()>(
                        std::os::fd::AsRawFd::as_raw_fd(&s.stream),
                        &mut iov,
                        Some(&mut cmsg),
                        MsgFlags::empty(),
                    ) {
                        Ok(msg) => {
                            let stamp = msg.cmsgs().ok().and_then(|mut c| {
                                c.find_map(|m| match m {
                                    ControlMessageOwned::ScmTimestampns(t) => {
                                        Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
                                    }
                                    _ => None,
                                })
                            });
                            (msg.bytes, stamp)
                        }
                        Err(nix::errno::Errno::EAGAIN) => break,
                        Err(e) => panic!("recvmsg: {e}"),
                    };
                    assert!(n > 0, "the server closed a socket");
                    s.buf.extend_from_slice(&chunk[..n]);
                    let drained = n < chunk.len();
                    // Frames this read completed: timed by it.
                    while let Some((opcode, start, len)) = header(&s.buf)
                        && s.buf.len() >= start + len
                    {
                        if opcode == 1
                            && let Some(ts) = super::report_ts(&s.buf[start..start + len])
                        {
                            s.got += 1;
                            if s.got == reports {
                                done += 1;
                            }
                            match stamp.and_then(|ns| latency(ts, ns)) {
                                Some(ms) => out.push(ms),
                                None => unstamped += 1,
                            }
                        }
                        s.buf.drain(..start + len);
                    }
                    // Level-triggered: a socket with more is ready again
                    // next round, so a short read needs no EAGAIN read.
                    if drained {
                        break;
                    }
                }
            }
        }
        assert_eq!(unstamped, 0, "report frames without a kernel timestamp");
        out
    }
}
