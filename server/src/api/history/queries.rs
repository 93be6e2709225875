//! What bounds the history queries in flight: a per-user limit on how many
//! run at once (a query beyond it waits up to [`MAX_QUEUE_WAIT`] for one of
//! them to end, then 429), a server-wide limit on how many do work at
//! once (a query waits a bounded time for one of those slots, then 503 with
//! `Retry-After`), a time budget per query (503 after it), and
//! cancellation when the client goes away or the server shuts down.
//!
//! A query runs on a thread of its own at a lower CPU priority (nice
//! [`QUERY_NICE`]), so however many clients flood the history routes, at most
//! `max_running` cores' worth of query work competes with ingest, and it
//! yields to it. The query checks its [`QueryBudget`] between blocks; the
//! budget's cancel flags are set by a guard that the handler's future owns
//! (dropped when the client's connection closes) and by
//! [`HistoryQueries::shut_down`], so neither a gone client nor a stopping
//! server waits on a query for more than a block's worth of work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use storage::tsdb::QueryBudget;
use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};

/// The nice value of the query threads: ingest (nice 0) gets about nine
/// tenths of a core that both want.
pub const QUERY_NICE: i32 = 10;

/// The longest a query waits for a server-wide slot before 503 (and at
/// most half its time budget).
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The longest a query beyond its user's limit waits for one of their
/// queries to end before 429 (and at most a quarter of its time budget).
/// A dashboard that asks for a few charts more than the limit at once is
/// served a moment later instead of refused; a client that ignores
/// `Retry-After` and asks again at once gets at most one answer per wait
/// per connection, so a flood of refusals costs the server sleeping
/// futures, not a core.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// The history queries of every user.
#[derive(Debug)]
pub struct HistoryQueries {
    per_user: usize,
    budget: Duration,
    /// Queries doing work at once, server-wide.
    max_running: usize,
    slots: Arc<Semaphore>,
    /// How long a query waits for a slot.
    wait: Duration,
    /// How long a query beyond its user's limit waits for one of theirs to end.
    queue_wait: Duration,
    /// Queries running per user id (waiting for a slot included). Held only
    /// to count, never across I/O.
    running: Mutex<HashMap<u64, usize>>,
    /// Woken whenever a query of any user ends.
    ended: tokio::sync::Notify,
    shutdown: Arc<AtomicBool>,
    /// Queries the engine stopped before their end because nobody waited
    /// for them any more (client gone, server stopping).
    cancelled: AtomicU64,
}

/// The default server-wide limit: half the cores, at least one, so history
/// work always leaves ingest a core.
pub fn default_max_running() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl HistoryQueries {
    /// At most `per_user` queries of one user and `max_running` of all
    /// users at once, each stopped after `budget`.
    pub fn new(per_user: usize, max_running: usize, budget: Duration) -> HistoryQueries {
        let max_running = max_running.max(1);
        HistoryQueries {
            per_user,
            budget,
            max_running,
            slots: Arc::new(Semaphore::new(max_running)),
            wait: (budget / 2).min(MAX_WAIT),
            queue_wait: (budget / 4).min(MAX_QUEUE_WAIT),
            running: Mutex::new(HashMap::new()),
            ended: tokio::sync::Notify::new(),
            shutdown: Arc::new(AtomicBool::new(false)),
            cancelled: AtomicU64::new(0),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<u64, usize>> {
        // The map only holds counts, consistent after any panic.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for one query of `user`, or 429 when they have `per_user`
    /// running. Takes no I/O: call it before any catalog work.
    pub fn start(self: &Arc<Self>, user: u64) -> ApiResult<QueryPermit> {
        let mut running = self.running();
        let n = running.entry(user).or_insert(0);
        if *n >= self.per_user {
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "{} history queries of yours are running already; retry when one is done",
                    self.per_user
                ),
                retry_after_s: 1,
            });
        }
        *n += 1;
        Ok(QueryPermit {
            queries: Arc::clone(self),
            user,
        })
    }

    /// A slot for one query of `user`; when they have `per_user` running,
    /// waits up to [`MAX_QUEUE_WAIT`] for one of those to end, then 429.
    /// Takes no I/O: call it before any catalog work.
    pub async fn admit(self: &Arc<Self>, user: u64) -> ApiResult<QueryPermit> {
        let deadline = tokio::time::Instant::now() + self.queue_wait;
        loop {
            // Registered before the attempt, so an end between the attempt
            // and the wait still wakes this one.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let refused = match self.start(user) {
                Ok(permit) => return Ok(permit),
                Err(refused) => refused,
            };
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return Err(refused);
            }
        }
    }

    /// Queries of `user` running now.
    pub fn running_of(&self, user: u64) -> usize {
        self.running().get(&user).copied().unwrap_or(0)
    }

    /// Queries doing work now, server-wide (on their threads).
    pub fn working(&self) -> usize {
        self.max_running
            .saturating_sub(self.slots.available_permits())
    }

    /// Queries stopped before their end since the start because nobody
    /// waited for their answer any more.
    pub fn cancelled(&self) -> u64 {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Stop every query in flight and every later one (graceful shutdown).
    pub fn shut_down(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// Runs `query` within the time budget on a low-priority thread once a
    /// server-wide slot is free (503 after waiting [`MAX_WAIT`] or half the
    /// budget, whichever is shorter), holding `permit` until the query has
    /// really stopped. If the returned future is dropped (the client went
    /// away), the query is told to stop.
    pub async fn run<T: Send + 'static>(
        &self,
        permit: QueryPermit,
        query: impl FnOnce(&QueryBudget) -> T + Send + 'static,
    ) -> ApiResult<T> {
        let slot = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => {
                return Err(ApiError::Busy {
                    message: format!(
                        "the server is busy with other history queries ({} at once); retry in a moment",
                        self.max_running
                    ),
                    retry_after_s: 1,
                });
            }
        };
        let cancel = CancelOnDrop::default();
        let budget = QueryBudget::unlimited()
            .with_time(self.budget)
            .with_cancel(cancel.0.clone())
            .with_cancel(self.shutdown.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("history-query".into())
            .spawn(move || {
                lower_priority();
                let answer = query(&budget);
                // Both slots are free before anyone learns the answer.
                drop(slot);
                drop(permit);
                // The receiver is gone when the client left; nothing to do.
                let _ = tx.send(answer);
            })
            .map_err(ApiError::internal)?;
        let answer = rx
            .await
            .map_err(|_| ApiError::internal(anyhow::anyhow!("a history query thread panicked")))?;
        drop(cancel);
        Ok(answer)
    }

    /// The answer for a query the engine stopped (budget, shutdown, client
    /// gone), counting the cancelled ones.
    pub fn stopped(&self, e: storage::Error) -> ApiError {
        if matches!(e, storage::Error::QueryCancelled) {
            self.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        stopped(e)
    }
}

/// Lowers the calling thread's CPU priority to [`QUERY_NICE`] (on Linux the
/// nice value is per thread). A failure only costs the priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(None, QUERY_NICE) {
        tracing::debug!(error = %e, "cannot lower a history query's priority");
    }
}

/// One running query of a user; the slot is freed on drop.
#[derive(Debug)]
pub struct QueryPermit {
    queries: Arc<HistoryQueries>,
    user: u64,
}

impl Drop for QueryPermit {
    fn drop(&mut self) {
        let mut running = self.queries.running();
        if let Some(n) = running.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.user);
            }
        }
        drop(running);
        self.queries.ended.notify_waiters();
    }
}

/// Sets its flag when dropped: owned by the handler's future, so a query
/// learns that nobody waits for its answer any more.
#[derive(Debug, Default)]
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The answer for a query stopped by its budget or a shutdown.
pub fn stopped(e: storage::Error) -> ApiError {
    match e {
        storage::Error::QueryTimedOut { budget_ms } => ApiError::Unavailable(format!(
            "the query took longer than its budget of {budget_ms} ms and was stopped; \
             ask for a shorter range or fewer points"
        )),
        storage::Error::QueryCancelled => {
            ApiError::Unavailable("the query was stopped: the server is shutting down".into())
        }
        other => crate::state::storage_error(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    /// A "query" that spins until its budget stops it, reporting how it ended.
    fn spin(done: mpsc::Sender<storage::Error>) -> impl FnOnce(&QueryBudget) + Send + 'static {
        move |budget| {
            let started = Instant::now();
            let e = loop {
                if let Err(e) = budget.check() {
                    break e;
                }
                assert!(started.elapsed() < Duration::from_secs(30), "never stopped");
                std::thread::yield_now();
            };
            let _ = done.send(e);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_whose_client_went_away_stops_and_frees_its_slot() {
        let queries = Arc::new(HistoryQueries::new(1, 2, Duration::from_secs(600)));
        let permit = queries.start(7).unwrap();
        assert!(matches!(
            queries.start(7),
            Err(ApiError::TooManyRequests { .. })
        ));
        let (tx, rx) = mpsc::channel();
        let request = queries.run(permit, spin(tx));
        // The client leaves: the handler's future is dropped unfinished.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), request)
                .await
                .is_err()
        );
        let e = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)))
            .await
            .unwrap()
            .expect("the query stopped");
        assert!(matches!(e, storage::Error::QueryCancelled), "{e:?}");
        // The permit goes with the blocking task, right after it reports.
        let deadline = Instant::now() + Duration::from_secs(5);
        while queries.running_of(7) != 0 {
            assert!(Instant::now() < deadline, "slot never freed");
            tokio::task::yield_now().await;
        }
        queries.start(7).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutting_down_stops_the_queries_in_flight() {
        let queries = Arc::new(HistoryQueries::new(4, 2, Duration::from_secs(600)));
        let (tx, rx) = mpsc::channel();
        let running = {
            let queries = queries.clone();
            let permit = queries.start(1).unwrap();
            tokio::spawn(async move { queries.run(permit, spin(tx)).await })
        };
        queries.shut_down();
        let started = Instant::now();
        running.await.unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(matches!(rx.recv().unwrap(), storage::Error::QueryCancelled));
        assert!(matches!(
            stopped(storage::Error::QueryCancelled),
            ApiError::Unavailable(_)
        ));
    }

    /// Beyond the server-wide limit a query waits (half its budget at most
    /// here), then is refused with 503 `busy`, whoever asks; the one
    /// running runs on a thread of lower priority.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queries_beyond_the_server_wide_limit_wait_then_get_busy() {
        let queries = Arc::new(HistoryQueries::new(4, 1, Duration::from_millis(400)));
        let (tx, rx) = mpsc::channel();
        let first = {
            let queries = queries.clone();
            let permit = queries.start(1).unwrap();
            tokio::spawn(async move {
                queries
                    .run(permit, move |budget| {
                        #[cfg(target_os = "linux")]
                        assert_eq!(
                            rustix::process::getpriority_process(None).unwrap(),
                            QUERY_NICE
                        );
                        spin(tx)(budget)
                    })
                    .await
            })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while queries.working() != 1 {
            assert!(Instant::now() < deadline, "the first query never started");
            tokio::task::yield_now().await;
        }
        let permit = queries.start(2).unwrap();
        let waited = Instant::now();
        let refused = queries.run(permit, |_| ()).await;
        assert!(
            matches!(
                refused,
                Err(ApiError::Busy {
                    retry_after_s: 1,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(waited.elapsed() >= Duration::from_millis(200));
        first.await.unwrap().unwrap();
        assert!(matches!(
            rx.recv().unwrap(),
            storage::Error::QueryTimedOut { .. }
        ));
        // The slot is free again.
        let permit = queries.start(2).unwrap();
        queries.run(permit, |_| ()).await.unwrap();
        assert_eq!(queries.working(), 0);
    }

    /// Beyond the per-user limit a query waits for one of the user's
    /// queries to end and is then admitted; when none ends within the
    /// queue wait it is refused with 429, having waited that long (so a
    /// client that retries at once is paced, not answered in a busy loop).
    #[tokio::test]
    async fn a_query_beyond_the_user_limit_waits_for_a_slot_then_gets_429() {
        let queries = Arc::new(HistoryQueries::new(1, 2, Duration::from_secs(600)));
        assert_eq!(queries.queue_wait, MAX_QUEUE_WAIT);
        let first = queries.admit(3).await.unwrap();
        // Another user is not held up.
        drop(queries.admit(4).await.unwrap());
        let waiting = {
            let queries = queries.clone();
            tokio::spawn(async move { queries.admit(3).await.map(|_| Instant::now()) })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "it waits for the user's slot");
        let freed = Instant::now();
        drop(first);
        let admitted = waiting
            .await
            .unwrap()
            .expect("admitted once the slot is free");
        assert!(admitted >= freed);

        let held = queries.admit(3).await.unwrap();
        let asked = Instant::now();
        let refused = queries.admit(3).await;
        assert!(
            matches!(
                refused,
                Err(ApiError::TooManyRequests {
                    retry_after_s: 1,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(asked.elapsed() >= MAX_QUEUE_WAIT);
        drop(held);
        assert_eq!(queries.running_of(3), 0);
    }

    #[tokio::test]
    async fn a_query_stops_at_its_time_budget() {
        let queries = Arc::new(HistoryQueries::new(4, 2, Duration::from_millis(20)));
        let (tx, rx) = mpsc::channel();
        let permit = queries.start(1).unwrap();
        queries.run(permit, spin(tx)).await.unwrap();
        let e = rx.recv().unwrap();
        assert!(
            matches!(e, storage::Error::QueryTimedOut { budget_ms: 20 }),
            "{e:?}"
        );
        // Limits are per user.
        let _a = queries.start(1).unwrap();
        let _b = queries.start(2).unwrap();
    }
}
