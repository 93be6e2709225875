//! The live feed of one agent over `WebSocket /api/ws/{agent_id}`: a snapshot
//! of its recent reports, then every new one. Reconnects with a growing,
//! jittered delay (up to [`crate::recover::MAX_DELAY_MS`]) when the socket
//! drops, and at once when the tab becomes visible or the network comes back;
//! closes with the component that opened it. On the server it stays idle.

use leptos::prelude::*;
use storage::model::Report;

/// How much live history is kept in the browser.
pub const KEEP_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStatus {
    Connecting,
    Open,
    /// Dropped; a reconnect is scheduled.
    Retrying,
    /// The server ended the stream (agent deleted, session gone).
    Closed,
}

/// Reports of one agent, oldest first, and the state of the connection.
#[derive(Debug, Clone, Copy)]
pub struct LiveFeed {
    pub reports: RwSignal<Vec<Report>>,
    pub status: RwSignal<LiveStatus>,
}

impl LiveFeed {
    /// The newest report, if any.
    pub fn latest(&self) -> Option<Report> {
        self.reports.with(|r| r.last().cloned())
    }
}

/// Adds `incoming` to `kept` in time order and drops what is older than
/// [`KEEP_MS`] before the newest report.
pub fn merge(kept: &mut Vec<Report>, incoming: Vec<Report>) {
    for r in incoming {
        match kept.last() {
            Some(last) if last.ts_ms >= r.ts_ms => {
                // Replayed or out of order: insert in place, skip duplicates.
                match kept.binary_search_by_key(&r.ts_ms, |k| k.ts_ms) {
                    Ok(_) => {}
                    Err(at) => kept.insert(at, r),
                }
            }
            _ => kept.push(r),
        }
    }
    if let Some(newest) = kept.last().map(|r| r.ts_ms) {
        let cut = kept.partition_point(|r| r.ts_ms < newest - KEEP_MS);
        kept.drain(..cut);
    }
}

/// Opens the live feed of `agent_id` for as long as the calling component lives.
pub fn use_live(agent_id: u64) -> LiveFeed {
    let feed = LiveFeed {
        reports: RwSignal::new(Vec::new()),
        status: RwSignal::new(LiveStatus::Connecting),
    };
    #[cfg(feature = "hydrate")]
    client::open(agent_id, feed);
    #[cfg(not(feature = "hydrate"))]
    let _ = agent_id;
    feed
}

#[cfg(feature = "hydrate")]
mod client {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;
    use storage::model::LiveMessage;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::Closure;
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    #[derive(Default)]
    struct Conn {
        socket: Option<WebSocket>,
        on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
        on_close: Option<Closure<dyn FnMut(CloseEvent)>>,
        on_open: Option<Closure<dyn FnMut(web_sys::Event)>>,
        retry: Option<TimeoutHandle>,
        failures: u32,
        disposed: bool,
        ended: bool,
    }

    pub(super) fn open(agent_id: u64, feed: LiveFeed) {
        let conn = Rc::new(RefCell::new(Conn::default()));
        let stored = StoredValue::new_local(conn.clone());
        connect(agent_id, feed, conn.clone());
        crate::recover::on_wake(move || {
            let waiting = {
                let mut c = conn.borrow_mut();
                match c.retry.take() {
                    Some(t) if !c.disposed && !c.ended => {
                        t.clear();
                        c.failures = 0;
                        true
                    }
                    other => {
                        c.retry = other;
                        false
                    }
                }
            };
            if waiting {
                connect(agent_id, feed, conn.clone());
            }
        });
        on_cleanup(move || {
            stored.with_value(|conn| {
                let mut c = conn.borrow_mut();
                c.disposed = true;
                if let Some(t) = c.retry.take() {
                    t.clear();
                }
                if let Some(ws) = c.socket.take() {
                    ws.set_onmessage(None);
                    ws.set_onclose(None);
                    ws.set_onopen(None);
                    let _ = ws.close();
                }
                // Break the Rc cycle through the callbacks.
                c.on_message = None;
                c.on_close = None;
                c.on_open = None;
            });
        });
    }

    fn url(agent_id: u64) -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        Some(format!(
            "{scheme}://{}/api/ws/{agent_id}",
            location.host().ok()?
        ))
    }

    fn connect(agent_id: u64, feed: LiveFeed, conn: Rc<RefCell<Conn>>) {
        if conn.borrow().disposed {
            return;
        }
        // The timer that called this (if any) is spent.
        conn.borrow_mut().retry = None;
        let Some(url) = url(agent_id) else { return };
        let Ok(ws) = WebSocket::new(&url) else {
            schedule(agent_id, feed, conn);
            return;
        };
        feed.status.set(LiveStatus::Connecting);

        let on_open = {
            let conn = conn.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                conn.borrow_mut().failures = 0;
                feed.status.set(LiveStatus::Open);
            })
        };
        let on_message = {
            let conn = conn.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                let Some(text) = e.data().as_string() else {
                    return;
                };
                match serde_json::from_str::<LiveMessage>(&text) {
                    Ok(LiveMessage::Snapshot { reports, .. }) => {
                        feed.reports.update(|kept| merge(kept, reports));
                    }
                    Ok(LiveMessage::Report { report, .. }) => {
                        feed.reports.update(|kept| merge(kept, vec![*report]));
                    }
                    Ok(LiveMessage::Closed { .. }) => {
                        conn.borrow_mut().ended = true;
                        feed.status.set(LiveStatus::Closed);
                    }
                    Err(_) => {}
                }
            })
        };
        let on_close = {
            let conn = conn.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |_e: CloseEvent| {
                let ended = conn.borrow().ended;
                if ended {
                    feed.status.set(LiveStatus::Closed);
                } else {
                    schedule(agent_id, feed, conn.clone());
                }
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut c = conn.borrow_mut();
        c.socket = Some(ws);
        c.on_open = Some(on_open);
        c.on_message = Some(on_message);
        c.on_close = Some(on_close);
    }

    fn schedule(agent_id: u64, feed: LiveFeed, conn: Rc<RefCell<Conn>>) {
        let delay = {
            let mut c = conn.borrow_mut();
            if c.disposed {
                return;
            }
            c.failures = c.failures.saturating_add(1);
            crate::recover::backoff_ms(c.failures, js_sys::Math::random())
        };
        feed.status.set(LiveStatus::Retrying);
        let again = conn.clone();
        let handle = set_timeout_with_handle(
            move || connect(agent_id, feed, again),
            Duration::from_millis(delay),
        )
        .ok();
        conn.borrow_mut().retry = handle;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts_ms: i64) -> Report {
        Report {
            ts_ms,
            ..Default::default()
        }
    }

    #[test]
    fn merge_keeps_order_drops_duplicates_and_old_reports() {
        let mut kept = vec![at(1_000), at(2_000)];
        merge(&mut kept, vec![at(1_500), at(2_000), at(3_000)]);
        let ts: Vec<i64> = kept.iter().map(|r| r.ts_ms).collect();
        assert_eq!(ts, vec![1_000, 1_500, 2_000, 3_000]);
        merge(&mut kept, vec![at(3_000 + KEEP_MS)]);
        let ts: Vec<i64> = kept.iter().map(|r| r.ts_ms).collect();
        assert_eq!(ts, vec![3_000, 3_000 + KEEP_MS]);
    }
}
