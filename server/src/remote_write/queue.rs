//! The bounded on-disk queue of one remote_write endpoint: a fjall keyspace
//! `q-<hash of the URL>` in `DATA_DIR/remote_write/`, key = sequence number
//! (u64 big-endian, so keys sort in order), value = one encoded, uncompressed
//! `WriteRequest` (one accepted ingest batch).
//!
//! Why fjall and not the agent's spool: the server already runs fjall for its
//! time series, whose journal gives crash safety for free (an entry is in the
//! journal, flushed to the OS, before `push` returns), and deleting
//! acknowledged entries is a key removal; the agent's spool is a file format
//! of its own, tied to the agent's error type and a single reader.
//!
//! Bound: when the values exceed `max_bytes`, the oldest entries are removed
//! and counted as dropped; nothing else is ever lost.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{Database, Keyspace, PersistMode};

/// Queued batches, oldest first: `(sequence, encoded WriteRequest)`.
pub type Entries = Vec<(u64, Vec<u8>)>;

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// The oldest entry still queued (or `next_seq` when empty). Reads start
    /// here, so they never walk over the tombstones of removed entries.
    front: u64,
    next_seq: u64,
    len: u64,
    bytes: u64,
}

pub struct Queue {
    db: Database,
    ks: Keyspace,
    max_bytes: u64,
    tally: Mutex<Tally>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("max_bytes", &self.max_bytes)
            .field("tally", &self.tally())
            .finish_non_exhaustive()
    }
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn seq_of(key: &[u8]) -> u64 {
    key.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

impl Queue {
    /// Opens (or creates) the queue `name` in `db`, counting what is left
    /// from before a restart.
    pub fn open(db: &Database, name: &str, max_bytes: u64) -> fjall::Result<Queue> {
        let ks = db.keyspace(name, fjall::KeyspaceCreateOptions::default)?;
        let mut tally = Tally::default();
        for item in ks.iter() {
            let (k, v) = item.into_inner()?;
            if tally.len == 0 {
                tally.front = seq_of(&k);
            }
            tally.len += 1;
            tally.bytes += v.len() as u64;
            tally.next_seq = seq_of(&k) + 1;
        }
        if tally.len == 0 {
            tally.front = tally.next_seq;
        }
        Ok(Queue {
            db: db.clone(),
            ks,
            max_bytes,
            tally: Mutex::new(tally),
            dropped: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends one batch; when the queue is then over its bound, drops the
    /// oldest. Returns once the batch is in the journal and handed to the OS.
    pub fn push(&self, payload: &[u8]) -> fjall::Result<()> {
        let mut t = self.lock();
        self.ks.insert(key(t.next_seq), payload)?;
        t.next_seq += 1;
        t.len += 1;
        t.bytes += payload.len() as u64;
        while t.bytes > self.max_bytes && t.len > 1 {
            let Some(first) = self.ks.range(key(t.front)..).next() else {
                break;
            };
            let (k, v) = first.into_inner()?;
            self.ks.remove(k.clone())?;
            t.front = seq_of(&k) + 1;
            t.len = t.len.saturating_sub(1);
            t.bytes = t.bytes.saturating_sub(v.len() as u64);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        drop(t);
        self.db.persist(PersistMode::Buffer)
    }

    /// The oldest batches, up to `max_bytes` in total (at least one).
    pub fn peek(&self, max_bytes: usize) -> fjall::Result<Entries> {
        let front = self.lock().front;
        let mut out = Vec::new();
        let mut size = 0usize;
        for item in self.ks.range(key(front)..) {
            let (k, v) = item.into_inner()?;
            if !out.is_empty() && size + v.len() > max_bytes {
                break;
            }
            size += v.len();
            out.push((seq_of(&k), v.to_vec()));
        }
        Ok(out)
    }

    /// Removes the batches `entries` (oldest first, as returned by
    /// [`Queue::peek`]) that are still there: sent, or refused for good.
    /// Those the bound dropped meanwhile are skipped.
    pub fn ack(&self, entries: &Entries) -> fjall::Result<()> {
        let mut t = self.lock();
        for (seq, v) in entries {
            if *seq < t.front {
                continue;
            }
            self.ks.remove(key(*seq))?;
            t.front = seq + 1;
            t.len = t.len.saturating_sub(1);
            t.bytes = t.bytes.saturating_sub(v.len() as u64);
        }
        Ok(())
    }

    /// Batches and bytes waiting.
    pub fn backlog(&self) -> (u64, u64) {
        let t = self.tally();
        (t.len, t.bytes)
    }

    fn tally(&self) -> Tally {
        *self.lock()
    }

    /// Batches dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &std::path::Path) -> Database {
        Database::builder(dir).open().unwrap()
    }

    #[test]
    fn survives_reopen_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = db(dir.path());
            let q = Queue::open(&db, "q", 1 << 20).unwrap();
            for i in 0..5u8 {
                q.push(&[i; 10]).unwrap();
            }
            let first = q.peek(25).unwrap();
            assert_eq!(first.len(), 2, "bounded by bytes");
            q.ack(&first).unwrap();
            assert_eq!(q.backlog(), (3, 30));
        }
        let db = db(dir.path());
        let q = Queue::open(&db, "q", 1 << 20).unwrap();
        assert_eq!(q.backlog(), (3, 30));
        q.push(&[9; 10]).unwrap();
        let all = q.peek(usize::MAX).unwrap();
        let firsts: Vec<u8> = all.iter().map(|(_, v)| v[0]).collect();
        assert_eq!(firsts, [2, 3, 4, 9]);
    }

    #[test]
    fn bound_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let q = Queue::open(&db, "q", 35).unwrap();
        for i in 0..6u8 {
            q.push(&[i; 10]).unwrap();
        }
        assert_eq!(q.backlog(), (3, 30));
        assert_eq!(q.dropped(), 3);
        let left: Vec<u8> = q
            .peek(usize::MAX)
            .unwrap()
            .iter()
            .map(|(_, v)| v[0])
            .collect();
        assert_eq!(left, [3, 4, 5]);
        // Acknowledging what was dropped meanwhile is harmless.
        let stale = vec![(0, vec![0; 10]), (3, vec![3; 10])];
        q.ack(&stale).unwrap();
        assert_eq!(q.backlog(), (2, 20));
        let left: Vec<u8> = q
            .peek(usize::MAX)
            .unwrap()
            .iter()
            .map(|(_, v)| v[0])
            .collect();
        assert_eq!(left, [4, 5]);
    }
}
