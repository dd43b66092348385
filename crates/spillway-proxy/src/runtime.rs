//! The proxy's own thread: one single-threaded tokio runtime that runs every listener, client
//! session and server connection of the process's proxies.
//!
//! Why one thread, as PgBouncer has: a transaction is a handful of small reads and writes, and
//! on a multi-threaded runtime a good share of its cost was the runtime itself — waking the
//! other worker, stealing tasks, contended atomics — plus a server socket's readiness arriving on
//! one worker for a session running on another. Measured on the 2-core benchmark machine at 50
//! pgbench clients, the same code used 25–28 µs of CPU per transaction here against 33–39 µs on
//! two workers, with the same or better throughput (see docs/BENCHMARKS.md). Everything the proxy owns
//! (sockets, timers) registers with this runtime, so no readiness event crosses threads. The
//! rest of spillway (gateway, functions, queues) stays on the multi-threaded runtime, and a busy
//! gateway cannot delay a database transaction. The cost is a ceiling of one core for the
//! proxies of one process; PgBouncer users know that trade and scale out with more processes.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle};
use tokio::task::JoinHandle;

static PROXY_RUNTIME: OnceLock<Result<Handle, String>> = OnceLock::new();

/// Runs `fut` on the proxy thread, starting that thread on first use.
pub fn spawn<F>(fut: F) -> std::io::Result<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = PROXY_RUNTIME
        .get_or_init(start)
        .as_ref()
        .map_err(|e| std::io::Error::other(e.clone()))?;
    Ok(handle.spawn(fut))
}

fn start() -> Result<Handle, String> {
    let runtime = Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the proxy's runtime: {e}"))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("spillway-proxy".into())
        // Lives as long as the process: tasks end on their own shutdown signals, and the
        // thread holds no resources a clean exit needs back.
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start the proxy's thread: {e}"))?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn tasks_run_on_the_one_proxy_thread() {
        let name = || std::thread::current().name().map(str::to_owned);
        let a = super::spawn(async move { name() }).unwrap_or_else(|e| panic!("{e}"));
        let b = super::spawn(async move { name() }).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (a.await.ok().flatten(), b.await.ok().flatten());
        assert_eq!(a.as_deref(), Some("spillway-proxy"));
        assert_eq!(a, b);
    }
}
