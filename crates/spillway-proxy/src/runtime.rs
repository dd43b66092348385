//! The proxy's own threads: single-threaded tokio runtimes ("workers") that run every listener,
//! client session and server connection of the process's proxies. One worker unless a proxy
//! asks for more (`workers = N`); the others start when a listener first needs them.
//!
//! Why single-threaded runtimes, as PgBouncer is one thread: a transaction is a handful of
//! small reads and writes, and on a multi-threaded runtime a good share of its cost was the
//! runtime itself — waking the other worker, stealing tasks, contended atomics — plus a server
//! socket's readiness arriving on one worker for a session running on another. Measured on the
//! 2-core benchmark machine at 50 pgbench clients, the same code used 25–28 µs of CPU per
//! transaction on one such thread against 33–39 µs on tokio's two-worker runtime, with the same
//! or better throughput (see docs/BENCHMARKS.md). So a worker owns what it serves: a client
//! stays on the worker whose listener socket accepted it (each worker has its own, SO_REUSEPORT),
//! its sessions' tasks never move, and a server connection's socket is registered with the
//! worker of the session using it (`pool.rs` moves the registration when it hands a connection
//! across workers). The rest of spillway (gateway, functions, queues) stays on the
//! multi-threaded runtime, and a busy gateway cannot delay a database transaction.

use std::cell::Cell;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};
use tokio::task::JoinHandle;

/// The most workers a process runs: one per core of a large machine, with room. A bound keeps a
/// stack file's typo from starting a thousand threads.
pub const MAX_WORKERS: usize = 64;

/// The workers started so far, by index.
static WORKERS: Mutex<Vec<Handle>> = Mutex::new(Vec::new());
/// Their number, read without the lock on every borrow (the pool skips its per-worker choices
/// while there is one).
static STARTED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's worker index; 0 on threads that are not workers (tests, other runtimes),
    /// which then count as worker 0.
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The worker this thread is (0 when it is none).
pub fn current_worker() -> usize {
    WORKER.with(Cell::get)
}

/// How many workers have started (at least 1).
pub fn workers() -> usize {
    STARTED.load(Ordering::Relaxed).max(1)
}

fn lock_workers() -> std::sync::MutexGuard<'static, Vec<Handle>> {
    // A panic while holding the lock leaves a valid list behind.
    WORKERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `fut` on the first worker, starting it on first use.
pub fn spawn<F>(fut: F) -> std::io::Result<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_on(0, fut)
}

/// Runs `fut` on worker `worker` (below [`MAX_WORKERS`]), starting it and any before it.
pub fn spawn_on<F>(worker: usize, fut: F) -> std::io::Result<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if worker >= MAX_WORKERS {
        return Err(std::io::Error::other(format!(
            "at most {MAX_WORKERS} proxy workers run in one process"
        )));
    }
    let mut workers = lock_workers();
    while workers.len() <= worker {
        let index = workers.len();
        workers.push(start(index).map_err(std::io::Error::other)?);
        STARTED.store(workers.len(), Ordering::Relaxed);
    }
    Ok(workers[worker].spawn(fut))
}

fn start(index: usize) -> Result<Handle, String> {
    let runtime = Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a proxy runtime: {e}"))?;
    let handle = runtime.handle().clone();
    let name = match index {
        0 => "spillway-proxy".to_owned(),
        i => format!("spillway-proxy-{i}"),
    };
    std::thread::Builder::new()
        .name(name)
        // Lives as long as the process: tasks end on their own shutdown signals, and the
        // thread holds no resources a clean exit needs back.
        .spawn(move || {
            WORKER.with(|w| w.set(index));
            runtime.block_on(std::future::pending::<()>())
        })
        .map_err(|e| format!("cannot start a proxy thread: {e}"))?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    fn here() -> (Option<String>, usize) {
        let name = std::thread::current().name().map(str::to_owned);
        (name, super::current_worker())
    }

    #[tokio::test]
    async fn tasks_run_on_the_worker_they_are_given() {
        let a = super::spawn(async move { here() }).unwrap_or_else(|e| panic!("{e}"));
        let b = super::spawn(async move { here() }).unwrap_or_else(|e| panic!("{e}"));
        let c = super::spawn_on(1, async move { here() }).unwrap_or_else(|e| panic!("{e}"));
        let (a, b, c) = (a.await.ok(), b.await.ok(), c.await.ok());
        assert_eq!(a, Some((Some("spillway-proxy".to_owned()), 0)));
        assert_eq!(a, b);
        assert_eq!(c, Some((Some("spillway-proxy-1".to_owned()), 1)));
        assert!(super::workers() >= 2);
        assert!(super::spawn_on(super::MAX_WORKERS, async {}).is_err());
        // A thread that is no worker counts as the first.
        assert_eq!(super::current_worker(), 0);
    }
}
