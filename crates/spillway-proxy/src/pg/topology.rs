//! Which of a database's servers is the writer and which are readers.
//!
//! A database with replicas is a set of servers, any of which may be the writer: a replica that
//! is promoted becomes one. A monitor keeps one connection per server and asks
//! `pg_is_in_recovery()` every [`PROBE_INTERVAL`]; a server that answers `false` is a writer,
//! `true` a reader, and one that does not answer is down. The read-write endpoint's pools open
//! connections to the current writer, the read-only endpoint's spread them over the readers.
//! When nothing fits (the writer is gone and no replica has been promoted yet), borrowers wait
//! within their borrow timeout, as RDS Proxy does during a failover, instead of failing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::backend::{ServerAddr, ServerConn, ServerTarget};

/// How often each server is asked whether it is in recovery.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one probe (connect, log in, query) may take before the server counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

const NONE: usize = usize::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet.
    Unknown,
    Writer,
    Reader,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Writer => "writer",
            Health::Reader => "reader",
            Health::Down => "down",
        }
    }
}

pub struct Topology {
    servers: Vec<ServerAddr>,
    health: Mutex<Vec<Health>>,
    /// Index of the current writer, or NONE; read on every borrow, so an atomic.
    writer: AtomicUsize,
    next_reader: AtomicUsize,
}

impl Topology {
    pub fn new(servers: Vec<ServerAddr>) -> Arc<Self> {
        let n = servers.len();
        Arc::new(Self {
            servers,
            health: Mutex::new(vec![Health::Unknown; n]),
            writer: AtomicUsize::new(NONE),
            next_reader: AtomicUsize::new(0),
        })
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Vec<Health>> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current writer.
    pub fn writer(&self) -> Option<(usize, &ServerAddr)> {
        let i = self.writer.load(Ordering::Acquire);
        self.servers.get(i).map(|a| (i, a))
    }

    /// The next healthy reader, round-robin.
    pub fn reader(&self) -> Option<(usize, &ServerAddr)> {
        let health = self.health();
        let readers: Vec<usize> = (0..self.servers.len())
            .filter(|&i| health[i] == Health::Reader)
            .collect();
        if readers.is_empty() {
            return None;
        }
        let i = readers[self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len()];
        Some((i, &self.servers[i]))
    }

    pub fn is_writer(&self, i: usize) -> bool {
        self.writer.load(Ordering::Acquire) == i
    }

    pub fn is_reader(&self, i: usize) -> bool {
        self.health().get(i) == Some(&Health::Reader)
    }

    /// (address, health) of every server, for the admin view.
    pub fn snapshot(&self) -> Vec<(String, Health)> {
        let health = self.health();
        self.servers
            .iter()
            .zip(health.iter())
            .map(|(a, h)| (a.to_string(), *h))
            .collect()
    }

    /// Records what a probe (or a failed connection attempt of a pool) found out.
    pub fn set(&self, i: usize, h: Health) {
        let mut health = self.health();
        if health.get(i) == Some(&h) || i >= health.len() {
            return;
        }
        if h == Health::Down || health[i] != Health::Unknown {
            tracing::warn!(server = %self.servers[i], "server is now {} (was {})", h.as_str(), health[i].as_str());
        }
        health[i] = h;
        // Keep the writer while it is one (two writers means an old primary came back after a
        // promotion; switching back and forth between them would be worse than either).
        let current = self.writer.load(Ordering::Acquire);
        if health.get(current) == Some(&Health::Writer) {
            return;
        }
        let next = health
            .iter()
            .position(|h| *h == Health::Writer)
            .unwrap_or(NONE);
        if next != current {
            match self.servers.get(next) {
                Some(a) => tracing::warn!(server = %a, "the writer is now {a}"),
                None => tracing::warn!("no server is the writer; new borrows wait"),
            }
            self.writer.store(next, Ordering::Release);
        }
    }

    /// Probes every server until `shutdown`, logging in with `login`'s credentials over the
    /// engine `C` (PostgreSQL's `ServerConn`, MySQL's `MyConn`).
    pub fn spawn_monitor<C: Probe>(
        self: &Arc<Self>,
        login: ServerTarget,
        shutdown: watch::Receiver<bool>,
    ) {
        for i in 0..self.servers.len() {
            let topology = Arc::clone(self);
            let mut login = login.clone();
            login.addr = self.servers[i].clone();
            login.connect_timeout = login.connect_timeout.min(PROBE_TIMEOUT);
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut conn: Option<C> = None;
                loop {
                    let health =
                        match tokio::time::timeout(PROBE_TIMEOUT, probe(&mut conn, &login)).await {
                            Ok(Ok(h)) => h,
                            Ok(Err(e)) => {
                                tracing::debug!(server = %login.addr, "probe failed: {e}");
                                conn = None;
                                Health::Down
                            }
                            Err(_) => {
                                conn = None;
                                Health::Down
                            }
                        };
                    topology.set(i, health);
                    tokio::select! {
                        _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            });
        }
    }
}

/// A server connection that can say whether its server is the writer.
pub trait Probe: crate::pool::Backend {
    fn role(&mut self) -> impl Future<Output = Result<Health, Self::Error>> + Send;
}

impl Probe for ServerConn {
    async fn role(&mut self) -> Result<Health, super::backend::BackendError> {
        let rows = self.simple_query("SELECT pg_is_in_recovery()").await?;
        Ok(
            match rows
                .first()
                .and_then(|r| r.first())
                .and_then(|v| v.as_deref())
            {
                Some("f") => Health::Writer,
                _ => Health::Reader,
            },
        )
    }
}

async fn probe<C: Probe>(conn: &mut Option<C>, login: &ServerTarget) -> Result<Health, C::Error> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(C::connect(login).await?),
    };
    c.role().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Arc<Topology> {
        Topology::new(vec![
            ServerAddr::tcp("a", 1),
            ServerAddr::tcp("b", 2),
            ServerAddr::tcp("c", 3),
        ])
    }

    #[test]
    fn the_writer_follows_promotion_and_stays_put_when_an_old_one_returns() {
        let t = topology();
        assert!(t.writer().is_none());
        t.set(0, Health::Writer);
        t.set(1, Health::Reader);
        t.set(2, Health::Reader);
        assert_eq!(t.writer().map(|w| w.0), Some(0));
        t.set(0, Health::Down);
        assert!(t.writer().is_none());
        t.set(2, Health::Writer);
        assert_eq!(t.writer().map(|w| w.0), Some(2));
        // The old primary comes back as a primary: the promoted one stays the writer.
        t.set(0, Health::Writer);
        assert_eq!(t.writer().map(|w| w.0), Some(2));
        assert!(t.is_writer(2) && !t.is_writer(0));
    }

    #[test]
    fn readers_are_taken_in_turn_and_only_when_healthy() {
        let t = topology();
        assert!(t.reader().is_none());
        t.set(0, Health::Writer);
        t.set(1, Health::Reader);
        t.set(2, Health::Reader);
        let picks: Vec<usize> = (0..4).filter_map(|_| t.reader().map(|r| r.0)).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 2);
        assert_eq!(picks.iter().filter(|&&i| i == 2).count(), 2);
        t.set(1, Health::Down);
        assert!((0..3).all(|_| t.reader().map(|r| r.0) == Some(2)));
        assert!(!t.is_reader(1) && t.is_reader(2));
    }
}
