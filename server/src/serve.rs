//! The accept loop: HTTP/1.1 connections (with upgrades, for the WebSocket)
//! served by hyper with two defences against clients that hold connections
//! without using them.
//!
//! - **Request-head timeout** ([`ConnectionLimits::header_timeout`]): a
//!   connection has this long, from being opened or from the end of its
//!   previous answer, to send a complete request head. hyper runs one timer
//!   from the moment it starts waiting for a head until the head is parsed,
//!   and bytes arriving do not reset it, so the same limit closes a silent
//!   connection, one that drips a header line every few seconds, and an idle
//!   keep-alive connection. An agent that reports more often than this keeps
//!   its connection; a request body and the answer are not limited by it
//!   (`max_body_bytes` bounds the body).
//! - **Unauthenticated connections per IP**
//!   ([`ConnectionLimits::max_unauthenticated_per_ip`]): each connection
//!   counts against its peer address until one of its requests is
//!   authenticated (a session token or an agent token, see
//!   [`ConnectionSlot::authenticated`]); beyond the limit a new connection
//!   is answered `429` with the usual JSON body and closed. Logged-in
//!   browsers, WebSockets and reporting agents therefore never count, however
//!   many share an address behind NAT.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Extensions, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// What [`serve`] enforces per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a complete request head, from opening the connection or
    /// from the end of the previous answer.
    pub header_timeout: Duration,
    /// Connections per peer address that have not carried an authenticated
    /// request; 0: no limit.
    pub max_unauthenticated_per_ip: usize,
}

/// Per peer address: connections that count, and whether refusals were
/// already logged (one line when refusing starts, one when it ends).
#[derive(Debug, Default)]
struct PerIp {
    open: usize,
    refusing: bool,
}

#[derive(Debug, Default)]
struct Unauthenticated {
    per_ip: Mutex<HashMap<IpAddr, PerIp>>,
}

impl Unauthenticated {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, PerIp>> {
        // Each update is one small change to one entry: a panic cannot leave
        // it half-made.
        self.per_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection from `ip`, or `None` when `ip` has
    /// `limit` unauthenticated connections open already.
    fn admit(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<ConnectionSlot> {
        if limit > 0 {
            let mut map = self.lock();
            let entry = map.entry(ip).or_default();
            if entry.open >= limit {
                if !entry.refusing {
                    entry.refusing = true;
                    tracing::warn!(
                        %ip,
                        limit,
                        "refusing new connections from this address: it holds the most \
                         unauthenticated connections allowed (max_unauthenticated_connections_per_ip)"
                    );
                }
                return None;
            }
            entry.open += 1;
        }
        Some(ConnectionSlot(Arc::new(SlotInner {
            ip,
            counted: AtomicBool::new(limit > 0),
            table: self.clone(),
        })))
    }

    fn release(&self, ip: IpAddr) {
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(&ip) {
            entry.open = entry.open.saturating_sub(1);
            if entry.refusing {
                entry.refusing = false;
                tracing::info!(%ip, "accepting connections from this address again");
            }
            if entry.open == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// One connection's place in the count of unauthenticated connections of
/// its address. Every request of the connection carries a clone in its
/// extensions; the place is given back when the connection closes or, earlier,
/// by [`ConnectionSlot::authenticated`].
#[derive(Clone)]
pub struct ConnectionSlot(Arc<SlotInner>);

struct SlotInner {
    ip: IpAddr,
    counted: AtomicBool,
    table: Arc<Unauthenticated>,
}

impl ConnectionSlot {
    /// A request of this connection was authenticated: the connection no
    /// longer counts against its address. Cheap after the first call.
    pub fn authenticated(&self) {
        self.0.release();
    }

    /// Marks the connection of the request with `extensions` as
    /// authenticated, if it came through [`serve`] (tests without a socket
    /// have no slot).
    pub fn mark(extensions: &Extensions) {
        if let Some(slot) = extensions.get::<ConnectionSlot>() {
            slot.authenticated();
        }
    }
}

impl SlotInner {
    fn release(&self) {
        if self.counted.load(Ordering::Relaxed) && self.counted.swap(false, Ordering::AcqRel) {
            self.table.release(self.ip);
        }
    }
}

impl Drop for SlotInner {
    fn drop(&mut self) {
        self.release();
    }
}

/// The answer to a connection beyond the per-address limit, written before
/// it is closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
content-type: application/json\r\n\
retry-after: 10\r\n\
connection: close\r\n\
content-length: 117\r\n\
\r\n\
{\"error\":\"too many connections from your address that are not logged in; close some and retry\",\"code\":\"rate_limited\"}";

async fn refuse(mut tcp: TcpStream) {
    let write = async {
        tcp.write_all(TOO_MANY).await?;
        tcp.shutdown().await
    };
    // The send buffer of a new socket takes this at once; a peer that does
    // not read cannot hold the task.
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets the open
/// connections finish their requests in flight (idle ones close at once) and
/// returns. Requests carry `ConnectInfo<SocketAddr>` and a [`ConnectionSlot`]
/// in their extensions.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let table = Arc::new(Unauthenticated::default());
    // Dropping `close_tx` asks every connection to finish; each holds a
    // `done_rx` clone until it has, so `done_tx.closed()` waits for all.
    let (close_tx, close_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: the accept queue
                    // keeps the clients; try again shortly instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers (an ingest acknowledgement, a live report) go out at
        // once instead of waiting for Nagle's algorithm.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let Some(slot) = table.admit(remote.ip(), limits.max_unauthenticated_per_ip) else {
            tokio::spawn(refuse(tcp));
            continue;
        };
        let mut close = close_rx.clone();
        let done = done_rx.clone();
        let service = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(remote));
            req.extensions_mut().insert(slot.clone());
            req
        });
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, %remote, "connection ended");
                    }
                }
                _ = close.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(done);
        });
    }
    drop(listener);
    drop(close_rx);
    drop(done_rx);
    drop(close_tx);
    done_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_one_well_formed_answer() {
        let text = std::str::from_utf8(TOO_MANY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], "rate_limited");
    }

    #[test]
    fn a_slot_counts_until_authenticated_or_dropped() {
        let table = Arc::new(Unauthenticated::default());
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = table.admit(ip, 2).unwrap();
        let b = table.admit(ip, 2).unwrap();
        assert!(table.admit(ip, 2).is_none(), "third refused");
        a.authenticated();
        a.authenticated(); // twice: counted once
        let c = table.admit(ip, 2).unwrap();
        assert!(table.admit(ip, 2).is_none());
        drop(b);
        drop(a); // authenticated already: gives nothing back twice
        let _d = table.admit(ip, 2).unwrap();
        assert!(table.admit(ip, 2).is_none());
        drop(c);
        assert!(
            table.admit([10, 0, 0, 2].into(), 2).is_some(),
            "per address"
        );
        assert!(table.admit(ip, 0).is_some(), "0: no limit");
    }
}
