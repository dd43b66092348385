//! What one listener may hold: how many connections at once (its share of the process's file
//! descriptors, so that one listener cannot starve the others) and how long a connection may
//! take to deliver its first request head. The stack's AWS endpoint uses the same type.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A client must finish sending its request headers within this time (slowloris), and a new
/// connection must have delivered its first request head (TLS handshake included) within it, or
/// it is closed: a client that connects and sends nothing holds a descriptor for no one.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a full listener says so in the log: a flood of connections must not become a
/// flood of log lines.
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections held at once; beyond it, new ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// See [`HEADER_TIMEOUT`]; shorter only in tests.
    pub header_timeout: Duration,
}

impl ListenerLimits {
    pub fn new(max_connections: usize) -> Self {
        Self {
            max_connections,
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

/// The connection cap of one listener: a permit per open connection, held by the connection's
/// task until the socket is closed.
#[derive(Debug)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    max: usize,
    /// `api web`, `the AWS endpoint`: for the log line.
    listener: String,
    /// When the last "full" warning was logged, and how many waits it left unlogged since.
    warned: Mutex<(Option<Instant>, u64)>,
}

impl ConnectionLimit {
    pub fn new(listener: impl Into<String>, max: usize) -> Self {
        // A cap of 0 would stop the listener for good.
        let max = max.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            listener: listener.into(),
            warned: Mutex::new((None, 0)),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// Waits for a free slot. The accept loop asks before it accepts: a full listener leaves
    /// new connections in the kernel's accept queue, where they cost this process no descriptor
    /// and are served in order as slots free up (silent ones free theirs within the header
    /// timeout), rather than being accepted only to be closed, which would fail real clients
    /// as surely as it fails hostile ones.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            return p;
        }
        self.warn_full();
        match Arc::clone(&self.permits).acquire_owned().await {
            Ok(p) => p,
            // The semaphore is never closed; if it were, waiting forever is what "full" means.
            Err(_) => std::future::pending().await,
        }
    }

    fn warn_full(&self) {
        let Ok(mut warned) = self.warned.lock() else {
            return;
        };
        let (last, unlogged) = &mut *warned;
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
            *unlogged += 1;
            return;
        }
        tracing::warn!(
            listener = %self.listener,
            max_connections = self.max,
            "{} holds its limit of {} connections; new connections wait to be accepted \
             (full {} more times since the last warning)",
            self.listener,
            self.max,
            *unlogged
        );
        *last = Some(now);
        *unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_limit_waits_until_a_connection_closes() {
        let limit = Arc::new(ConnectionLimit::new("test", 2));
        let a = limit.acquire().await;
        let _b = limit.acquire().await;
        assert_eq!(limit.open(), 2);
        let waiting = tokio::spawn({
            let limit = Arc::clone(&limit);
            async move { limit.acquire().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        let c = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(
            matches!(c, Ok(Ok(_))),
            "the waiter did not get the freed slot"
        );
        assert_eq!(limit.open(), 2);
    }

    #[test]
    fn a_cap_of_zero_still_admits_one() {
        assert_eq!(ConnectionLimit::new("test", 0).max(), 1);
    }
}
