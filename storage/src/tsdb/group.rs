//! Group commit for [`Engine::write_grouped`](super::Engine::write_grouped).
//!
//! One thread per engine takes every write waiting in its queue, stages each
//! agent's rows under that agent's lock (agents locked in id order, so two
//! groups can never deadlock, and the compactor, which takes one agent lock
//! at a time, cannot either), commits them all in one fjall batch — one
//! journal write (one fsync with `Durability::SyncData`) for the group —
//! and only then makes them visible in memory and answers each writer. A
//! writer is therefore acknowledged exactly when its rows are as durable as
//! [`Engine::write`](super::Engine::write) makes them; nothing is
//! acknowledged before the commit that holds it.
//!
//! The commit runs on this thread, never on the caller's: fjall may put a
//! writer to sleep for back-pressure (10-100 ms when flushes fall behind),
//! which must not stall an async runtime's workers.
//!
//! Under light load a group is one write and costs what `write` costs plus
//! a thread hand-off; under heavy load the queue fills while a commit runs
//! and the next group takes all of it, so the per-write cost of the journal
//! falls with the load instead of rising.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak, mpsc};

use tokio::sync::oneshot;

use super::{Engine, Error, Row};

/// Most writes committed in one batch (bounds the batch's memory and the
/// wait of the first writer in it).
const MAX_GROUP: usize = 512;

pub(crate) struct Job {
    pub agent: u64,
    pub rows: Vec<Row>,
    pub done: oneshot::Sender<Result<(), Error>>,
}

pub(crate) fn stopped(dir: &Path) -> Error {
    Error::Io {
        path: dir.to_owned(),
        source: std::io::Error::other("the time-series writer has stopped"),
    }
}

/// Starts the writer thread of `engine`. It holds the engine only while a
/// group is being committed, so dropping the last `Arc<Engine>` drops the
/// sender and ends the thread.
pub(crate) fn start(engine: Weak<Engine>) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("tsdb-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                match engine.upgrade() {
                    Some(engine) => engine.commit_group(jobs),
                    // Unreachable in practice: the engine owns the sender.
                    None => break,
                }
            }
        });
    if let Err(e) = spawned {
        // The receiver is gone with the closure: every send fails, and each
        // write reports that the writer stopped.
        tracing::error!(error = %e, "cannot start the tsdb writer thread");
    }
    tx
}

impl Engine {
    /// Stage, commit in one batch, apply, answer.
    fn commit_group(&self, jobs: Vec<Job>) {
        let oldest = self.oldest_writable();
        // Jobs of one agent are staged together, in arrival order (so a later
        // write still wins), under one lock.
        let mut by_agent: BTreeMap<u64, Vec<Job>> = BTreeMap::new();
        for job in jobs {
            by_agent.entry(job.agent).or_default().push(job);
        }
        let agents: Vec<Arc<super::Agent>> = by_agent.keys().map(|id| self.agent(*id)).collect();
        let mut guards: Vec<_> = agents.iter().map(|a| a.lock()).collect();
        let mut ops = Vec::new();
        let mut staged = Vec::with_capacity(by_agent.len());
        let mut refused = Vec::new();
        for ((agent, jobs), guard) in by_agent.into_iter().zip(guards.iter_mut()) {
            let rows = jobs.iter().flat_map(|j| j.rows.iter());
            let result = self
                .revive(agent, guard, rows.clone())
                .and_then(|()| self.stage(agent, guard, rows, oldest, &mut ops));
            match result {
                Ok(s) => staged.push((guard, s, jobs)),
                Err(e) => refused.push((e, jobs)),
            }
        }
        let mut batch = self.db.batch().durability(Some(self.persist_mode()));
        self.fill_batch(&mut batch, ops);
        match batch.commit() {
            Ok(()) => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                for (guard, s, jobs) in staged {
                    // Durable: now make it visible in memory.
                    s.apply(guard);
                    for job in jobs {
                        let _ = job.done.send(Ok(()));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "tsdb group commit failed");
                let msg = e.to_string();
                // Every writer gets its own error, of the same kind: a full
                // disk stays recognisable as one (`ErrorKind::StorageFull`),
                // and a poisoned database as `fjall::Error::Poisoned`, so the
                // server can answer 507 and recover (server/src/store.rs).
                let poisoned = matches!(e, fjall::Error::Poisoned);
                let kind = match &e {
                    fjall::Error::Io(io) => io.kind(),
                    _ => std::io::ErrorKind::Other,
                };
                for (_, _, jobs) in staged {
                    for job in jobs {
                        let _ = job.done.send(Err(if poisoned {
                            Error::Fjall {
                                context: "commit write batch",
                                source: fjall::Error::Poisoned,
                            }
                        } else {
                            Error::Io {
                                path: self.dir.clone(),
                                source: std::io::Error::new(
                                    kind,
                                    format!("commit of the write batch failed: {msg}"),
                                ),
                            }
                        }));
                    }
                }
            }
        }
        drop(guards);
        for (e, jobs) in refused {
            for job in jobs {
                let _ = job.done.send(Err(same_error(&e)));
            }
        }
    }
}

/// A copy of a staging error (one per refused write of the agent).
fn same_error(e: &Error) -> Error {
    match e {
        Error::AgentDeleted { agent } => Error::AgentDeleted { agent: *agent },
        Error::InvalidRequest(msg) => Error::InvalidRequest(msg.clone()),
        other => Error::InvalidRequest(other.to_string()),
    }
}
