//! The live fan-out: each new report of a watched agent, written to every
//! WebSocket that watches it.
//!
//! An agent's sockets are spread over a few shards, at most one per runtime
//! worker. A shard is one task: it receives the agent's reports from the
//! ring's broadcast and writes each, framed once for everyone
//! ([`Live::encoded`]), to its sockets in turn. A report wakes one task per
//! shard rather than one per socket, and the shards of a much-watched agent
//! write in parallel on the workers.
//!
//! A shard never waits for a socket. A frame a socket cannot take at once
//! stays queued in it and goes out as the client reads (the socket wakes the
//! shard); until then the socket is skipped, and if reports went by
//! meanwhile it gets a fresh snapshot once it has drained. A slow browser
//! holds up neither ingest nor the other browsers, and costs at most one
//! queued frame of memory.
//!
//! Each socket's reading half stays with its connection task
//! ([`super::stream`]), which waits for the client to close. When a shard
//! ends a stream (agent deleted, session revoked) it hands the writing half
//! back, and the connection task does the closing handshake.
//!
//! Ordering: a shard subscribes to the ring before it takes any snapshot, so
//! every report newer than a socket's snapshot is in the shard's queue;
//! reports the snapshot already holds are skipped by timestamp. A socket
//! gets its snapshot, then each newer report once, in order.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::Sink;
use futures_util::stream::SplitSink;
use storage::tsdb::Live;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Out, frame, snapshot};
use crate::auth::SecurityEvent;
use crate::state::AppState;

/// The writing half of a live socket.
pub type Sender = SplitSink<WebSocket, Message>;

/// Sockets a shard writes to between two yields to the runtime, so a fan-out
/// to thousands does not hold a worker for milliseconds at a stretch.
const CHUNK: usize = 64;

const AGENT_DELETED: &str = "the agent was deleted";
const SESSION_ENDED: &str = "the session ended; log in again";
const UNSHARED: &str = "the agent is no longer shared with you";
const SERVER_STOPPING: &str = "the server is stopping";

/// A socket to add to an agent's fan-out.
pub struct Subscriber {
    pub user_id: u64,
    /// The session that opened it: revoking the session closes it.
    pub session_id: u64,
    pub sender: Sender,
    /// Gets the writing half back when the fan-out ends the stream.
    pub done: oneshot::Sender<Handback>,
}

/// A writing half given back, and why: the connection task tells the client
/// and closes.
pub struct Handback {
    pub sender: Sender,
    pub reason: &'static str,
}

/// Proof of a [`Fanout::join`]: [`Ticket::leave`] takes the socket out again.
pub struct Ticket {
    control: mpsc::UnboundedSender<Control>,
    id: u64,
}

impl Ticket {
    /// The client went away: the shard drops its writing half.
    pub fn leave(self) {
        // A shard that is gone has dropped it already.
        let _ = self.control.send(Control::Leave(self.id));
    }
}

enum Control {
    Join(u64, Subscriber),
    Leave(u64),
}

#[derive(Clone)]
struct ShardHandle {
    control: mpsc::UnboundedSender<Control>,
    /// Sockets it has or is about to get: placement picks the lightest,
    /// `/metrics` adds them up.
    load: Arc<AtomicUsize>,
}

/// Every agent's shards.
#[derive(Default)]
pub struct Fanout {
    shards: Mutex<HashMap<u64, Vec<ShardHandle>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("subscribers", &self.subscribers())
            .finish()
    }
}

impl Fanout {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<ShardHandle>>> {
        self.shards
            .lock()
            .expect("fan-out lock is never held across a panic")
    }

    /// Adds a socket to `agent_id`'s fan-out: it gets a snapshot of the ring,
    /// then every new report. Must run inside the runtime (it may spawn a shard).
    pub fn join(&self, state: &AppState, agent_id: u64, subscriber: Subscriber) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let width = tokio::runtime::Handle::current().metrics().num_workers();
        let mut message = Control::Join(id, subscriber);
        // Sent under the lock: a shard retires only under it, after seeing
        // its queue empty, so a registered shard always gets the message.
        let mut shards = self.lock();
        let list = shards.entry(agent_id).or_default();
        loop {
            let lightest = list
                .iter()
                .min_by_key(|h| h.load.load(Ordering::Relaxed))
                .filter(|h| list.len() >= width || h.load.load(Ordering::Relaxed) == 0)
                .cloned();
            let handle = lightest.unwrap_or_else(|| {
                let handle = Shard::spawn(state, agent_id);
                list.push(handle.clone());
                handle
            });
            handle.load.fetch_add(1, Ordering::Relaxed);
            match handle.control.send(message) {
                Ok(()) => {
                    return Ticket {
                        control: handle.control,
                        id,
                    };
                }
                // Its task is gone (it panicked): forget it, place again.
                Err(mpsc::error::SendError(back)) => {
                    message = back;
                    list.retain(|h| !Arc::ptr_eq(&h.load, &handle.load));
                }
            }
        }
    }

    /// Called by a shard left with no sockets: unregisters it, unless a join
    /// is already on its way to it. True when it may end.
    fn retire(
        &self,
        agent_id: u64,
        load: &Arc<AtomicUsize>,
        control: &mpsc::UnboundedReceiver<Control>,
    ) -> bool {
        let mut shards = self.lock();
        if !control.is_empty() {
            return false;
        }
        if let Some(list) = shards.get_mut(&agent_id) {
            list.retain(|h| !Arc::ptr_eq(&h.load, load));
            if list.is_empty() {
                shards.remove(&agent_id);
            }
        }
        true
    }

    /// Open live sockets over all agents.
    pub fn subscribers(&self) -> usize {
        self.lock()
            .values()
            .flatten()
            .map(|h| h.load.load(Ordering::Relaxed))
            .sum()
    }
}

/// A socket as a shard sees it.
struct Watcher {
    id: u64,
    user_id: u64,
    session_id: u64,
    sender: Sender,
    done: oneshot::Sender<Handback>,
    /// The newest report the client has, or has queued in its socket.
    newest_ts: i64,
    /// A frame is still queued: the socket could not take it all.
    stalled: bool,
    /// Reports went by while it was stalled: a snapshot is owed.
    missed: bool,
    /// Its socket failed: dropped after the current pass.
    gone: bool,
}

impl Watcher {
    /// Offers `text`, which brings the client up to `newest_ts`, without
    /// waiting: written now, queued in the socket, or (stalled) owed later.
    fn offer(&mut self, text: &Utf8Bytes, newest_ts: i64, cx: &mut Context<'_>) {
        if self.gone {
            return;
        }
        if self.stalled {
            self.missed = true;
            return;
        }
        let mut sender = Pin::new(&mut self.sender);
        // The split sink is ready unless a frame of ours is still waiting,
        // which `stalled` rules out; start_send only fills its slot.
        match sender.as_mut().poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => {
                self.gone = true;
                return;
            }
            Poll::Pending => {
                self.stalled = true;
                self.missed = true;
                return;
            }
        }
        if sender
            .as_mut()
            .start_send(Message::Text(text.clone()))
            .is_err()
        {
            self.gone = true;
            return;
        }
        self.newest_ts = newest_ts;
        match sender.poll_flush(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => self.gone = true,
            // Queued: it goes out as the client reads; the socket (or the
            // lock of its two halves) wakes this task then.
            Poll::Pending => self.stalled = true,
        }
    }

    /// The live report at `ts`, unless the client has it already.
    fn deliver(&mut self, text: &Utf8Bytes, ts: i64, cx: &mut Context<'_>) {
        if ts > self.newest_ts {
            self.offer(text, ts, cx);
        }
    }
}

/// One task writing an agent's reports to some of its sockets.
struct Shard {
    state: AppState,
    agent_id: u64,
    load: Arc<AtomicUsize>,
    control: mpsc::UnboundedReceiver<Control>,
    reports: broadcast::Receiver<Arc<Live>>,
    events: broadcast::Receiver<SecurityEvent>,
    watchers: Vec<Watcher>,
    /// The ring's snapshot frame and its newest report, while no report has
    /// arrived since it was made (every joiner and resync shares it).
    snapshot: Option<(Utf8Bytes, i64)>,
}

impl Shard {
    fn spawn(state: &AppState, agent_id: u64) -> ShardHandle {
        let (tx, control) = mpsc::unbounded_channel();
        let load = Arc::new(AtomicUsize::new(0));
        let shard = Shard {
            state: state.clone(),
            agent_id,
            load: load.clone(),
            control,
            // Subscribed before any snapshot is taken (see the module doc).
            reports: state.ring.subscribe(agent_id),
            events: state.subscribe_security(),
            watchers: Vec::new(),
            snapshot: None,
        };
        tokio::spawn(shard.run());
        ShardHandle { control: tx, load }
    }

    async fn run(mut self) {
        loop {
            let stalled = self.watchers.iter().any(|w| w.stalled);
            tokio::select! {
                control = self.control.recv() => match control {
                    Some(Control::Join(id, subscriber)) => self.admit(id, subscriber).await,
                    Some(Control::Leave(id)) => self.remove(|w| w.id == id, None),
                    // The registry holds a sender while the shard is registered.
                    None => return,
                },
                report = self.reports.recv() => match report {
                    Ok(live) => self.deliver(&live).await,
                    // This shard fell behind: everyone starts again from the ring.
                    Err(RecvError::Lagged(_)) => {
                        self.snapshot = None;
                        for w in &mut self.watchers {
                            w.missed = true;
                        }
                        self.resync().await;
                    }
                    // The ring drops an agent's channel when the agent is deleted.
                    Err(RecvError::Closed) => self.remove(|_| true, Some(AGENT_DELETED)),
                },
                event = self.events.recv() => self.on_event(event),
                () = poll_fn(|cx| drained(&mut self.watchers, cx)), if stalled => self.resync().await,
            }
            self.remove(|w| w.gone, None);
            if self.watchers.is_empty()
                && self
                    .state
                    .fanout
                    .retire(self.agent_id, &self.load, &self.control)
            {
                return;
            }
        }
    }

    /// Drops the watchers `which` selects; with a reason, hands each one's
    /// writing half back for the close.
    fn remove(&mut self, which: impl Fn(&Watcher) -> bool, reason: Option<&'static str>) {
        let mut i = 0;
        while i < self.watchers.len() {
            if !which(&self.watchers[i]) {
                i += 1;
                continue;
            }
            let w = self.watchers.swap_remove(i);
            self.load.fetch_sub(1, Ordering::Relaxed);
            if let Some(reason) = reason {
                // The connection task may be gone already (client closed).
                let _ = w.done.send(Handback {
                    sender: w.sender,
                    reason,
                });
            }
        }
    }

    fn snapshot(&mut self) -> (Utf8Bytes, i64) {
        self.snapshot
            .get_or_insert_with(|| snapshot(&self.state, self.agent_id))
            .clone()
    }

    async fn admit(&mut self, id: u64, s: Subscriber) {
        let mut w = Watcher {
            id,
            user_id: s.user_id,
            session_id: s.session_id,
            sender: s.sender,
            done: s.done,
            newest_ts: i64::MIN,
            stalled: false,
            missed: false,
            gone: false,
        };
        // A revocation between the upgrade's check and this shard's
        // subscription to the events would otherwise go unseen.
        if !self
            .state
            .catalog
            .is_session_active(w.session_id, w.user_id)
        {
            self.load.fetch_sub(1, Ordering::Relaxed);
            let _ = w.done.send(Handback {
                sender: w.sender,
                reason: SESSION_ENDED,
            });
            return;
        }
        let (text, newest) = self.snapshot();
        poll_fn(|cx| {
            w.offer(&text, newest, cx);
            Poll::Ready(())
        })
        .await;
        self.watchers.push(w);
    }

    /// Writes the report to every watcher, a chunk at a time.
    async fn deliver(&mut self, live: &Live) {
        self.snapshot = None;
        let agent_id = self.agent_id;
        let text: Utf8Bytes = live.encoded(|report| frame(&Out::Report { agent_id, report }));
        let ts = live.ts_ms;
        let mut start = 0;
        while start < self.watchers.len() {
            let end = (start + CHUNK).min(self.watchers.len());
            let chunk = &mut self.watchers[start..end];
            // Without tokio's budget: a write refused for budget would look
            // like a full socket.
            tokio::task::unconstrained(poll_fn(|cx| {
                for w in chunk.iter_mut() {
                    w.deliver(&text, ts, cx);
                }
                Poll::Ready(())
            }))
            .await;
            start = end;
            if start < self.watchers.len() {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Sends the snapshot to every drained watcher that missed reports.
    async fn resync(&mut self) {
        if !self.watchers.iter().any(|w| w.missed && !w.stalled) {
            return;
        }
        let (text, newest) = self.snapshot();
        let watchers = &mut self.watchers;
        tokio::task::unconstrained(poll_fn(|cx| {
            for w in watchers.iter_mut().filter(|w| w.missed && !w.stalled) {
                w.missed = false;
                w.offer(&text, newest, cx);
            }
            Poll::Ready(())
        }))
        .await;
    }

    fn on_event(&mut self, event: Result<SecurityEvent, RecvError>) {
        match event {
            Ok(SecurityEvent::AgentDeleted { agent_id, .. }) if agent_id == self.agent_id => {
                self.remove(|_| true, Some(AGENT_DELETED));
            }
            Ok(SecurityEvent::AgentUnshared { agent_id, user_id }) if agent_id == self.agent_id => {
                self.remove(|w| w.user_id == user_id, Some(UNSHARED));
            }
            Ok(SecurityEvent::SessionRevoked { session_id, .. }) => {
                self.remove(|w| w.session_id == session_id, Some(SESSION_ENDED));
            }
            Ok(_) => {}
            // Missed events: check what they could have said.
            Err(RecvError::Lagged(_)) => {
                let catalog = self.state.catalog.clone();
                self.remove(
                    |w| !catalog.is_session_active(w.session_id, w.user_id),
                    Some(SESSION_ENDED),
                );
            }
            Err(RecvError::Closed) => self.remove(|_| true, Some(SERVER_STOPPING)),
        }
    }
}

/// Writes out what stalled watchers have queued; ready once any of them is
/// done (or failed), pending (woken by their sockets) otherwise.
fn drained(watchers: &mut [Watcher], cx: &mut Context<'_>) -> Poll<()> {
    let mut progress = false;
    for w in watchers.iter_mut().filter(|w| w.stalled && !w.gone) {
        if let Poll::Ready(result) = Pin::new(&mut w.sender).poll_flush(cx) {
            progress = true;
            w.stalled = false;
            w.gone = result.is_err();
        }
    }
    if progress {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}
