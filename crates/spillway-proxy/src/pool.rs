//! Server connection pools.
//!
//! A [`Target`] is one database server seen by one proxy. It caps the server connections the
//! proxy opens there (RDS Proxy's MaxConnectionsPercent) across all of its pools, one pool per
//! (database, user) since a server connection is logged in as one user.
//!
//! Borrowing takes an idle connection of the pool, else opens one if the cap allows, else closes
//! an idle connection of another pool to make room, else waits. Waiters of one pool are served
//! in FIFO order; pools with waiters are served round-robin, so a tenant with 500 waiting
//! clients does not starve a tenant with one. A wait ends at `borrow_timeout` with an error.
//!
//! A borrowed connection is a [`Guard`]: dropping it gives the connection back (or, if marked
//! broken, closes it and hands its slot to the next waiter), so no path can leak a slot.
//! Sessions resolve their pool to a [`PoolId`] once at login, so a transaction's borrow and
//! return cost one uncontended lock and no hashing.
//!
//! With several proxy workers (`runtime.rs`) the cap, the queues and the round-robin stay one,
//! under the one lock; what is per worker is where a connection's socket is registered. A
//! borrow takes an idle connection of its own worker first, opens one while the cap allows,
//! and only then takes another worker's idle connection, which moves (`Backend::rehome`). A
//! returned connection goes to the first waiter of its own worker in the pool's queue, passing
//! over a waiter of another worker at the head at most `PASS_LIMIT_PER_WORKER` times per
//! worker before that waiter gets it: the queue stays first-come first-served within that
//! bound, and a hand-over crosses threads only when one worker's demand outruns what it holds.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::metrics::TargetMetrics;
use crate::pg::backend::{BackendError, ServerConn};
use crate::pg::topology::Topology;
use crate::server::ServerTarget;

/// What the pool keeps on every server connection, whatever its protocol.
#[derive(Clone, Copy, Debug)]
pub struct Pooled {
    pub created: Instant,
    pub last_used: Instant,
    /// Which of its target's servers the connection is on (see `Route`); 0 when the target
    /// has one server.
    pub server_index: usize,
    /// The proxy worker whose runtime the connection's socket is registered with (see
    /// `runtime.rs`): its sessions are served without a thread hop.
    pub worker: usize,
}

impl Pooled {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            created: now,
            last_used: now,
            server_index: 0,
            worker: crate::runtime::current_worker(),
        }
    }
}

impl Default for Pooled {
    fn default() -> Self {
        Self::new()
    }
}

/// What the pool needs of a server connection, whatever protocol it speaks: how to open one,
/// whether it still looks usable, and the times and server the pool's policies read. PostgreSQL
/// (`pg::backend`) and MySQL (`mysql::backend`) implement it, so both engines share one pool:
/// one cap, one fairness rule, one set of metrics.
pub trait Backend: Send + Sized + 'static {
    type Error: std::error::Error + Send + Sync + 'static;
    fn connect(server: &ServerTarget) -> impl Future<Output = Result<Self, Self::Error>> + Send;
    /// Whether a failure to connect may pass soon (a server restarting, a failover).
    fn is_transient(e: &Self::Error) -> bool;
    /// Usable without a round trip (nothing unread, not closed).
    fn looks_alive(&self) -> bool;
    fn pooled(&self) -> &Pooled;
    fn pooled_mut(&mut self) -> &mut Pooled;
    /// Registers the connection's socket with the calling thread's runtime (see
    /// `Socket::rehome`), when it moves to a session on another worker.
    fn rehome(&mut self) -> std::io::Result<()>;
}

/// Where a target's new connections go.
pub enum Route {
    /// To the address in the pool's own `ServerTarget` (a database without replicas).
    Fixed,
    /// To whichever server of the set is the writer now (a read-write endpoint).
    Writer(Arc<Topology>),
    /// Spread over the set's healthy readers (a read-only endpoint).
    Readers(Arc<Topology>),
}

impl Route {
    /// Whether a connection to server `i` may still serve this route.
    fn keeps(&self, i: usize) -> bool {
        match self {
            Route::Fixed => true,
            Route::Writer(t) => t.is_writer(i),
            Route::Readers(t) => t.is_reader(i),
        }
    }
}

/// How many times per worker a returned connection may pass over the waiter at the head of a
/// pool's queue for a later waiter on its own worker (see the module's comment): the head is
/// passed over at most 8 × workers times (about a millisecond at 20,000 transactions a second)
/// before it is served, so the queue moves on by at least one place in every 8 × workers + 1
/// hand-overs. Measured with 2 workers, 50 pgbench clients and 20 connections: 15% of
/// transactions moved a connection between workers at 2 per worker, 13% at 8. So most moves
/// are not this rule's; by elimination they are borrows at the cap that find only another
/// worker's idle connection, taken rather than left idle while a client waits.
const PASS_LIMIT_PER_WORKER: u32 = 8;

/// While no server fits a route (failover in progress), borrowers look again this often.
const REROUTE_INTERVAL: Duration = Duration::from_millis(100);

/// Idle connections unused for longer than this are probed before being handed out.
const RECHECK_AFTER: Duration = Duration::from_secs(2);

/// Idle connections beyond `max_idle` are closed once unused for this long, not at once. Under
/// a steady load spread over many pools (report 004: a pool per tenant, each used about once a
/// second) a good share of the connections is idle at any instant; trimming those on every
/// reaper pass closed a third of the pool every 5 s and opened it again moments later
/// (measured: 11–20 pooled connections under a steady load, against a cap of 20). A connection
/// used within this window is the load's, not surplus.
const TRIM_AFTER: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub database: String,
    pub user: String,
    /// Protocol options a server connection is fixed to at login and that change what clients
    /// see (MySQL's CLIENT_FOUND_ROWS, CLIENT_MULTI_STATEMENTS, CLIENT_IGNORE_SPACE); 0 for
    /// PostgreSQL. Clients asking for different options cannot share a connection.
    pub options: u32,
}

/// A pool of a target, resolved once per client session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolId(usize);

#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Most server connections open at once, over all pools.
    pub max_connections: usize,
    /// Most idle connections kept, over all pools.
    pub max_idle: usize,
    pub borrow_timeout: Duration,
    /// Idle connections older than this are closed.
    pub idle_timeout: Duration,
    /// Connections older than this are closed when next idle.
    pub lifetime: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BorrowError<E: std::error::Error = BackendError> {
    #[error("timed out after {0:?} waiting for a database connection")]
    Timeout(Duration),
    #[error(transparent)]
    Connect(E),
}

enum Grant<C> {
    Conn(Box<C>),
    /// A slot under the cap: the receiver opens a connection itself.
    Slot,
}

struct Pool<C> {
    /// Shared with the pool's sessions (one allocation, not two strings per client).
    key: Arc<PoolKey>,
    /// Boxed once when opened: a connection moves on every borrow and hand-over (idle list,
    /// oneshot, guard), and a pointer moves in one instruction where the struct, past 256
    /// bytes, took a memcpy loop (measured: the largest part of a 7% rise in instructions per
    /// transaction when the struct grew). The box is the point, not the heap.
    #[allow(clippy::vec_box)]
    idle: Vec<Box<C>>,
    waiters: VecDeque<Waiting<C>>,
    /// How many hand-overs passed over the waiter now at the head of `waiters`.
    head_passed: u32,
    server: ServerTarget,
}

/// A borrower in a pool's queue, and the worker its session runs on.
struct Waiting<C> {
    tx: oneshot::Sender<Grant<C>>,
    worker: usize,
}

impl<C> Pool<C> {
    /// Takes the next live waiter. With `prefer` (a connection of that worker is being handed
    /// over), the first waiter of that worker, unless the head has been passed over enough.
    fn next_waiter(&mut self, prefer: Option<usize>) -> Option<Waiting<C>> {
        if crate::runtime::workers() == 1 {
            return self.waiters.pop_front();
        }
        while self.waiters.front().is_some_and(|w| w.tx.is_closed()) {
            self.waiters.pop_front();
            self.head_passed = 0;
        }
        let head = self.waiters.front()?;
        if let Some(worker) = prefer
            && head.worker != worker
            && self.head_passed < PASS_LIMIT_PER_WORKER * crate::runtime::workers() as u32
            && let Some(i) = self
                .waiters
                .iter()
                // Bounded: a queue of a thousand waiters of other workers is not searched
                // on every hand-over.
                .take(64)
                .position(|w| w.worker == worker && !w.tx.is_closed())
        {
            self.head_passed += 1;
            return self.waiters.remove(i);
        }
        self.head_passed = 0;
        self.waiters.pop_front()
    }
}

struct State<C> {
    /// Kept under the same lock as the pools: a borrow and a return each take one lock.
    settings: PoolSettings,
    /// Connections open or being opened, over all pools.
    open: usize,
    pools: Vec<Pool<C>>,
    /// Where each key's pool is in `pools` (consulted at login, not per transaction).
    index: HashMap<PoolKey, usize>,
    /// Pools with waiters, in the order they are served.
    turn: VecDeque<usize>,
}

pub struct Target<C: Backend = ServerConn> {
    state: Mutex<State<C>>,
    route: Route,
    pub metrics: Arc<TargetMetrics>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<C: Backend> Target<C> {
    pub fn new(settings: PoolSettings, metrics: Arc<TargetMetrics>) -> Arc<Self> {
        Self::with_route(settings, metrics, Route::Fixed)
    }

    pub fn with_route(
        settings: PoolSettings,
        metrics: Arc<TargetMetrics>,
        route: Route,
    ) -> Arc<Self> {
        metrics.max_allowed.set(settings.max_connections as i64);
        Arc::new(Self {
            state: Mutex::new(State {
                settings,
                open: 0,
                pools: Vec::new(),
                index: HashMap::new(),
                turn: VecDeque::new(),
            }),
            route,
            metrics,
        })
    }

    pub fn settings(&self) -> PoolSettings {
        lock(&self.state).settings.clone()
    }

    /// Applies new limits (on reload); connections above a lowered cap close as they come back.
    pub fn update_settings(&self, settings: PoolSettings) {
        self.metrics
            .max_allowed
            .set(settings.max_connections as i64);
        lock(&self.state).settings = settings;
    }

    /// The pool for `key`, made on first use with the credentials in `server`.
    pub fn pool(&self, key: &PoolKey, server: &ServerTarget) -> PoolId {
        let mut st = lock(&self.state);
        if let Some(&i) = st.index.get(key) {
            return PoolId(i);
        }
        let i = st.pools.len();
        st.pools.push(Pool {
            key: Arc::new(key.clone()),
            idle: Vec::new(),
            waiters: VecDeque::new(),
            head_passed: 0,
            server: server.clone(),
        });
        st.index.insert(key.clone(), i);
        PoolId(i)
    }

    /// Pool `id`'s key, shared: sessions keep it for their whole life.
    pub fn key(&self, id: PoolId) -> Arc<PoolKey> {
        Arc::clone(&lock(&self.state).pools[id.0].key)
    }

    /// How many pools the target has, and whether it has one for `key` (logins check before
    /// making one: pools live as long as the target).
    pub fn pool_count(&self) -> usize {
        lock(&self.state).pools.len()
    }

    pub fn has_pool(&self, key: &PoolKey) -> bool {
        lock(&self.state).index.contains_key(key)
    }

    /// Replaces the credentials new connections of a pool use (secret rotation, reload).
    pub fn update_server(&self, key: &PoolKey, server: ServerTarget) {
        let mut st = lock(&self.state);
        if let Some(&i) = st.index.get(key) {
            st.pools[i].server = server;
        }
    }

    /// New connections of every pool of `user` log in with `password` (secret rotation).
    pub fn update_password(&self, user: &str, password: &str) {
        let mut st = lock(&self.state);
        for pool in st.pools.iter_mut().filter(|p| p.key.user == user) {
            pool.server.password = password.to_owned();
        }
    }

    /// Borrows a server connection from pool `id`, opening one if it must.
    pub async fn borrow(self: &Arc<Self>, id: PoolId) -> Result<Guard<C>, BorrowError<C::Error>> {
        self.borrow_at(id, Instant::now()).await
    }

    /// [`borrow`](Self::borrow) for a caller that knows the time (a session has just read its
    /// client): the common case, an idle connection at hand, then reads no clock at all.
    pub async fn borrow_at(
        self: &Arc<Self>,
        id: PoolId,
        started: Instant,
    ) -> Result<Guard<C>, BorrowError<C::Error>> {
        let (rx, borrow_timeout) = {
            let mut locked = lock(&self.state);
            let st = &mut *locked;
            let (max_connections, borrow_timeout) =
                (st.settings.max_connections, st.settings.borrow_timeout);
            let worker = crate::runtime::current_worker();
            if let Some(conn) = self.pop_idle(st, id, started, Some(worker)) {
                return Ok(self.guard(id, conn, Duration::ZERO, false));
            }
            let rx = if st.open < max_connections {
                st.open += 1;
                None
            } else if let Some(conn) = self.pop_idle(st, id, started, None) {
                // At the cap, another worker's idle connection moves here (in `guard`, whose
                // system calls are no reason to hold the lock).
                drop(locked);
                return Ok(self.guard(id, conn, Duration::ZERO, false));
            } else if close_an_idle_elsewhere(st, id) {
                // The slot of the closed connection is ours.
                self.metrics.connections.add(-1);
                None
            } else {
                let (tx, rx) = oneshot::channel();
                st.pools[id.0].waiters.push_back(Waiting { tx, worker });
                if !st.turn.contains(&id.0) {
                    st.turn.push_back(id.0);
                }
                Some(rx)
            };
            (rx, borrow_timeout)
        };
        let grant = match rx {
            None => Grant::Slot,
            Some(rx) => {
                let mut waiter = Waiter {
                    rx,
                    target: self,
                    pool: id,
                };
                match tokio::time::timeout_at((started + borrow_timeout).into(), &mut waiter.rx)
                    .await
                {
                    Ok(Ok(g)) => g,
                    // Timed out (or the target went away): a grant that raced in is handed on
                    // when the waiter drops; otherwise our closed sender is skipped in turn.
                    _ => {
                        self.metrics.borrow_timeouts.inc();
                        return Err(BorrowError::Timeout(borrow_timeout));
                    }
                }
            }
        };
        match grant {
            Grant::Conn(conn) => Ok(self.guard(id, conn, started.elapsed(), true)),
            Grant::Slot => {
                // The slot goes back if this future is dropped while the connection opens (a
                // client leaving, a login timeout), not only on an error.
                let mut slot = SlotGuard(Some(self));
                // Boxed: opening a connection is rare, and its state inline would enlarge every
                // session's future (and so every idle client) by its size.
                match Box::pin(self.open_connection(id, started + borrow_timeout)).await {
                    Ok(conn) => {
                        slot.0 = None;
                        self.metrics.connections.add(1);
                        self.metrics.connects.inc();
                        Ok(self.guard(id, conn, started.elapsed(), true))
                    }
                    Err(e) => {
                        if matches!(e, BorrowError::Timeout(_)) {
                            self.metrics.borrow_timeouts.inc();
                        } else {
                            self.metrics.connect_failures.inc();
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    /// An idle connection of pool `id` if one is at hand: the borrow that needs no waiting,
    /// done without a future (a session awaits [`borrow_at`](Self::borrow_at) only when this
    /// finds nothing, and boxes that wait, so its state is no part of an idle client's task).
    pub fn take_idle(self: &Arc<Self>, id: PoolId, started: Instant) -> Option<Guard<C>> {
        let mut st = lock(&self.state);
        let conn = self.pop_idle(&mut st, id, started, Some(crate::runtime::current_worker()))?;
        drop(st);
        Some(self.guard(id, conn, Duration::ZERO, false))
    }

    /// Takes a usable idle connection of pool `id` (of worker `worker` only, if given; the most
    /// recently used first), closing the unusable ones it meets.
    fn pop_idle(
        &self,
        st: &mut State<C>,
        id: PoolId,
        started: Instant,
        worker: Option<usize>,
    ) -> Option<Box<C>> {
        let single = crate::runtime::workers() == 1;
        loop {
            let idle = &mut st.pools[id.0].idle;
            let conn = match worker {
                Some(w) if !single => {
                    let i = idle.iter().rposition(|c| c.pooled().worker == w)?;
                    idle.remove(i)
                }
                _ => idle.pop()?,
            };
            // Probing costs a syscall; a connection used moments ago is trusted, as
            // PgBouncer's server_check_delay does.
            if self.route.keeps(conn.pooled().server_index)
                && (started.saturating_duration_since(conn.pooled().last_used) < RECHECK_AFTER
                    || conn.looks_alive())
            {
                // Taken without waiting: the borrow latency is the lock's, well under the
                // metric's microsecond resolution, so no clock is read for it.
                return Some(conn);
            }
            st.open -= 1;
            self.metrics.connections.add(-1);
        }
    }

    /// Opens a connection for pool `id` on the server its route picks. With a topology, a server
    /// that cannot be reached is reported down and the attempt repeats until `deadline`, so
    /// clients ride out a failover instead of failing.
    async fn open_connection(
        &self,
        id: PoolId,
        deadline: Instant,
    ) -> Result<Box<C>, BorrowError<C::Error>> {
        let mut server = lock(&self.state).pools[id.0].server.clone();
        let topology = match &self.route {
            Route::Fixed => {
                return C::connect(&server)
                    .await
                    .map(Box::new)
                    .map_err(BorrowError::Connect);
            }
            Route::Writer(t) | Route::Readers(t) => t,
        };
        loop {
            let picked = match &self.route {
                Route::Readers(_) => topology.reader(),
                _ => topology.writer(),
            };
            if let Some((i, addr)) = picked {
                server.addr = addr.clone();
                match C::connect(&server).await {
                    Ok(mut conn) => {
                        conn.pooled_mut().server_index = i;
                        return Ok(Box::new(conn));
                    }
                    Err(e) if C::is_transient(&e) && Instant::now() < deadline => {
                        tracing::info!(server = %server.addr, "cannot open a connection ({e}); waiting for the topology to change");
                        topology.set(i, crate::pg::topology::Health::Down);
                    }
                    Err(e) => return Err(BorrowError::Connect(e)),
                }
            }
            if Instant::now() + REROUTE_INTERVAL > deadline {
                return Err(BorrowError::Timeout(self.settings().borrow_timeout));
            }
            tokio::time::sleep(REROUTE_INTERVAL).await;
        }
    }

    fn guard(
        self: &Arc<Self>,
        id: PoolId,
        mut conn: Box<C>,
        latency: Duration,
        waited: bool,
    ) -> Guard<C> {
        let worker = crate::runtime::current_worker();
        if crate::runtime::workers() > 1 && conn.pooled().worker != worker {
            // Registered with another worker's runtime: move it here, so that its readiness
            // reaches this session without crossing threads. If that fails (out of descriptors)
            // it is used where it is, correct but slower.
            match conn.rehome() {
                Ok(()) => {
                    conn.pooled_mut().worker = worker;
                    self.metrics.moved_between_workers.inc();
                }
                Err(e) => tracing::debug!("cannot move a server connection to this worker: {e}"),
            }
        }
        self.metrics.borrowed.add(1);
        self.metrics.borrow_latency.observe(latency);
        Guard {
            conn: Some(conn),
            target: Arc::clone(self),
            pool: id,
            broken: false,
            waited,
        }
    }

    /// A slot became free (a connection closed or failed to open): give it to the next waiter.
    fn release_slot(&self) {
        let mut st = lock(&self.state);
        if !hand_slot(&mut st) {
            st.open -= 1;
        }
    }

    fn give_back(&self, id: PoolId, mut conn: Box<C>, broken: bool) {
        self.metrics.borrowed.add(-1);
        let now = Instant::now();
        let mut st = lock(&self.state);
        let st = &mut *st;
        let (max_connections, lifetime) = (st.settings.max_connections, st.settings.lifetime);
        let expired = now.saturating_duration_since(conn.pooled().created) > lifetime
            || !self.route.keeps(conn.pooled().server_index);
        if broken || expired || st.open > max_connections {
            drop(conn);
            self.metrics.connections.add(-1);
            if st.open > max_connections || !hand_slot(st) {
                st.open -= 1;
            }
            return;
        }
        conn.pooled_mut().last_used = now;
        let worker = conn.pooled().worker;
        let mut conn = Some(conn);
        // Serve the pool whose turn it is.
        while let Some(turn) = st.turn.pop_front() {
            let pool = &mut st.pools[turn];
            while let Some(Waiting { tx, .. }) =
                pool.next_waiter((turn == id.0 && conn.is_some()).then_some(worker))
            {
                let grant = match (turn == id.0, conn.take()) {
                    (true, Some(c)) => Grant::Conn(c),
                    (_, c) => {
                        conn = c;
                        Grant::Slot
                    }
                };
                match tx.send(grant) {
                    Ok(()) => {
                        if let Some(c) = conn.take() {
                            // The slot moved to another pool; this connection closes.
                            drop(c);
                            self.metrics.connections.add(-1);
                        }
                        if !pool.waiters.is_empty() {
                            st.turn.push_back(turn);
                        }
                        return;
                    }
                    Err(Grant::Conn(c)) => conn = Some(c),
                    Err(Grant::Slot) => {}
                }
            }
        }
        if let Some(conn) = conn {
            st.pools[id.0].idle.push(conn);
        }
    }

    /// Closes idle connections that are too old, idle too long, or beyond the idle cap.
    pub fn reap(&self) {
        self.reap_at(Instant::now());
    }

    /// [`reap`](Self::reap) as if the time were `now`.
    fn reap_at(&self, now: Instant) {
        let mut st = lock(&self.state);
        let st = &mut *st;
        let settings = st.settings.clone();
        let mut closed = 0usize;
        for pool in st.pools.iter_mut() {
            pool.idle.retain(|c| {
                let keep = now.saturating_duration_since(c.pooled().last_used)
                    < settings.idle_timeout
                    && now.saturating_duration_since(c.pooled().created) < settings.lifetime
                    && c.looks_alive();
                if !keep {
                    closed += 1;
                }
                keep
            });
        }
        let mut idle: usize = st.pools.iter().map(|p| p.idle.len()).sum();
        while idle > settings.max_idle {
            // The pool with most idle connections gives up its least recently used one (idle
            // lists are pushed at the end), if that one has been unused for TRIM_AFTER.
            let unused = |p: &Pool<C>| {
                p.idle.first().is_some_and(|c| {
                    now.saturating_duration_since(c.pooled().last_used) >= TRIM_AFTER
                })
            };
            let Some(pool) = st
                .pools
                .iter_mut()
                .filter(|p| unused(p))
                .max_by_key(|p| p.idle.len())
            else {
                break;
            };
            pool.idle.remove(0);
            closed += 1;
            idle -= 1;
        }
        st.open -= closed;
        self.metrics.connections.add(-(closed as i64));
    }

    /// Closes every idle connection (on shutdown or when the server changed).
    pub fn close_idle(&self) {
        let mut st = lock(&self.state);
        let n: usize = st
            .pools
            .iter_mut()
            .map(|p| std::mem::take(&mut p.idle).len())
            .sum();
        st.open -= n;
        self.metrics.connections.add(-(n as i64));
    }

    /// (key, idle, waiting) per pool, for the admin view.
    pub fn snapshot(&self) -> Vec<(PoolKey, usize, usize)> {
        let st = lock(&self.state);
        st.pools
            .iter()
            .map(|p| {
                (
                    PoolKey::clone(&p.key),
                    p.idle.len(),
                    p.waiters.iter().filter(|w| !w.tx.is_closed()).count(),
                )
            })
            .collect()
    }

    /// The servers of this target's route and their health (empty for a single server).
    pub fn servers(&self) -> Vec<(String, crate::pg::topology::Health)> {
        match &self.route {
            Route::Fixed => Vec::new(),
            Route::Writer(t) | Route::Readers(t) => t.snapshot(),
        }
    }

    pub fn open(&self) -> usize {
        lock(&self.state).open
    }
}

/// What the admin view and the metrics read of a target, whatever its engine.
pub trait PoolView: Send + Sync {
    fn settings(&self) -> PoolSettings;
    fn snapshot(&self) -> Vec<(PoolKey, usize, usize)>;
    fn servers(&self) -> Vec<(String, crate::pg::topology::Health)>;
    fn open(&self) -> usize;
    fn metrics(&self) -> &TargetMetrics;
    fn update_settings(&self, settings: PoolSettings);
}

impl<C: Backend> PoolView for Target<C> {
    fn settings(&self) -> PoolSettings {
        Target::settings(self)
    }
    fn snapshot(&self) -> Vec<(PoolKey, usize, usize)> {
        Target::snapshot(self)
    }
    fn servers(&self) -> Vec<(String, crate::pg::topology::Health)> {
        Target::servers(self)
    }
    fn open(&self) -> usize {
        Target::open(self)
    }
    fn metrics(&self) -> &TargetMetrics {
        &self.metrics
    }
    fn update_settings(&self, settings: PoolSettings) {
        Target::update_settings(self, settings);
    }
}

/// Closes one idle connection of a pool other than `id`; true if one was closed (its slot is
/// then the caller's).
fn close_an_idle_elsewhere<C>(st: &mut State<C>, id: PoolId) -> bool {
    let victim = st
        .pools
        .iter_mut()
        .enumerate()
        .filter(|(i, p)| *i != id.0 && !p.idle.is_empty())
        .max_by_key(|(_, p)| p.idle.len());
    match victim {
        Some((_, p)) => {
            p.idle.remove(0);
            true
        }
        None => false,
    }
}

/// Gives a free slot to the next live waiter; false if nobody waits.
fn hand_slot<C>(st: &mut State<C>) -> bool {
    while let Some(turn) = st.turn.pop_front() {
        let pool = &mut st.pools[turn];
        while let Some(Waiting { tx, .. }) = pool.next_waiter(None) {
            if tx.send(Grant::Slot).is_ok() {
                if !pool.waiters.is_empty() {
                    st.turn.push_back(turn);
                }
                return true;
            }
        }
    }
    false
}

/// A place in a pool's queue. If it is dropped before its grant is taken (the borrow timed out,
/// or the waiting client went away), a grant that raced in is handed on, so no connection or
/// slot is lost.
struct Waiter<'a, C: Backend> {
    rx: oneshot::Receiver<Grant<C>>,
    target: &'a Target<C>,
    pool: PoolId,
}

impl<C: Backend> Drop for Waiter<'_, C> {
    fn drop(&mut self) {
        self.rx.close();
        match self.rx.try_recv() {
            Ok(Grant::Conn(conn)) => {
                // give_back counts a return of a borrowed connection; this one was never lent.
                self.target.metrics.borrowed.add(1);
                self.target.give_back(self.pool, conn, false);
            }
            Ok(Grant::Slot) => self.target.release_slot(),
            Err(_) => {}
        }
    }
}

/// A slot under the cap that a connection has not taken yet; dropped armed, it is given to the
/// next waiter or freed.
struct SlotGuard<'a, C: Backend>(Option<&'a Target<C>>);

impl<C: Backend> Drop for SlotGuard<'_, C> {
    fn drop(&mut self) {
        if let Some(target) = self.0 {
            target.release_slot();
        }
    }
}

/// A borrowed server connection; returns to its pool when dropped.
pub struct Guard<C: Backend = ServerConn> {
    conn: Option<Box<C>>,
    target: Arc<Target<C>>,
    pool: PoolId,
    /// Set when the connection must not be reused (protocol desync, mid-transaction loss).
    pub broken: bool,
    /// The borrower waited for the connection (a queue, or opening one).
    pub waited: bool,
}

impl<C: Backend> Guard<C> {
    pub fn conn(&mut self) -> &mut C {
        // Only Drop takes the connection out.
        match self.conn.as_deref_mut() {
            Some(c) => c,
            None => unreachable!("a guard always holds its connection until dropped"),
        }
    }

    pub fn conn_ref(&self) -> Option<&C> {
        self.conn.as_deref()
    }
}

impl<C: Backend> Drop for Guard<C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.target.give_back(self.pool, conn, self.broken);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::backend::ServerAddr;

    /// A server at `port` on loopback, logged in to as user `u`.
    fn test_server(port: u16) -> ServerTarget {
        ServerTarget {
            addr: ServerAddr::tcp("127.0.0.1", port),
            tls: None,
            database: "d".into(),
            user: "u".into(),
            password: "p".into(),
            init_query: None,
            connect_timeout: Duration::from_secs(30),
            options: 0,
        }
    }

    fn test_key() -> PoolKey {
        PoolKey {
            database: "d".into(),
            user: "u".into(),
            options: 0,
        }
    }

    /// A server that accepts connections and never says a word.
    async fn silent_server() -> (tokio::net::TcpListener, u16) {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or_default();
        (l, port)
    }

    #[tokio::test]
    async fn an_abandoned_borrow_gives_its_slot_back() {
        let (_server, port) = silent_server().await;
        let target: Arc<Target> = Target::new(
            PoolSettings {
                max_connections: 1,
                max_idle: 1,
                borrow_timeout: Duration::from_secs(60),
                idle_timeout: Duration::from_secs(60),
                lifetime: Duration::from_secs(60),
            },
            Arc::new(TargetMetrics::default()),
        );
        let id = target.pool(&test_key(), &test_server(port));
        // The first borrow takes the only slot and hangs in the server's silence; a second waits
        // in the queue. Both are abandoned (as when clients leave or a login times out).
        let first = tokio::time::timeout(Duration::from_millis(200), target.borrow(id));
        let second = tokio::time::timeout(Duration::from_millis(300), target.borrow(id));
        let (a, b) = tokio::join!(first, second);
        assert!(a.is_err() && b.is_err());
        assert_eq!(target.open(), 0, "a slot leaked");
        assert!(
            target
                .snapshot()
                .iter()
                .all(|(_, idle, waiting)| *idle == 0 && *waiting == 0)
        );
    }

    /// A connection that opens at once and is always usable.
    struct FakeConn(Pooled);

    impl Backend for FakeConn {
        type Error = std::io::Error;
        async fn connect(_: &ServerTarget) -> Result<Self, Self::Error> {
            Ok(FakeConn(Pooled::new()))
        }
        fn is_transient(_: &Self::Error) -> bool {
            false
        }
        fn looks_alive(&self) -> bool {
            true
        }
        fn pooled(&self) -> &Pooled {
            &self.0
        }
        fn pooled_mut(&mut self) -> &mut Pooled {
            &mut self.0
        }
        fn rehome(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn one_connection() -> PoolSettings {
        PoolSettings {
            max_connections: 1,
            max_idle: 1,
            borrow_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            lifetime: Duration::from_secs(3600),
        }
    }

    /// Waits (bounded) until pool `id` has `n` waiters.
    async fn until_waiting(target: &Target<FakeConn>, n: usize) {
        for _ in 0..500 {
            if target.snapshot().first().map(|(_, _, w)| *w) == Some(n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("never saw {n} waiters");
    }

    /// A session on proxy worker `worker` that borrows from `id`, notes who it is and which
    /// worker its connection is registered with, and gives it straight back.
    fn borrower(
        target: &Arc<Target<FakeConn>>,
        id: PoolId,
        worker: usize,
        name: &'static str,
        order: &Arc<Mutex<Vec<(&'static str, usize)>>>,
    ) -> tokio::task::JoinHandle<()> {
        let (target, order) = (Arc::clone(target), Arc::clone(order));
        crate::runtime::spawn_on(worker, async move {
            let mut g = target.borrow(id).await.unwrap_or_else(|e| panic!("{e}"));
            let on = g.conn().0.worker;
            order
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((name, on));
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn a_returned_connection_passes_a_waiter_of_another_worker_a_bounded_number_of_times() {
        // Workers 0, 1 and 2 exist before the bound is read (it scales with their number).
        for w in 0..3 {
            let started = crate::runtime::spawn_on(w, async {});
            started.unwrap_or_else(|e| panic!("{e}")).await.ok();
        }
        let limit = (PASS_LIMIT_PER_WORKER as usize) * crate::runtime::workers();
        let target: Arc<Target<FakeConn>> =
            Target::new(one_connection(), Arc::new(TargetMetrics::default()));
        let id = target.pool(&test_key(), &test_server(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        // The only connection, opened by a session on worker 1 and held.
        let held = crate::runtime::spawn_on(1, {
            let target = Arc::clone(&target);
            async move { target.borrow(id).await }
        });
        let held = held
            .unwrap_or_else(|e| panic!("{e}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        // First in the queue, a session on worker 2; behind it, sessions on worker 1.
        let mut tasks = vec![borrower(&target, id, 2, "far", &order)];
        until_waiting(&target, 1).await;
        for n in 0..limit + 2 {
            tasks.push(borrower(&target, id, 1, "near", &order));
            until_waiting(&target, n + 2).await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap_or_else(|e| panic!("{e}"));
        }
        let order = order.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let names: Vec<&str> = order.iter().map(|(n, _)| *n).collect();
        let far = names.iter().position(|n| *n == "far");
        // Worker 1's waiters go first, the head is passed over `limit` times and then served.
        assert_eq!(far, Some(limit), "{names:?}");
        // Every session got a connection registered with its own worker: the one hand-over to
        // worker 2 and the one back moved it.
        assert!(
            order
                .iter()
                .all(|(n, on)| *on == if *n == "far" { 2 } else { 1 }),
            "{order:?}"
        );
        assert_eq!(target.metrics.moved_between_workers.get(), 2);
        assert_eq!(target.open(), 1);
    }

    #[tokio::test]
    async fn at_the_cap_a_borrow_takes_another_workers_idle_connection() {
        let target: Arc<Target<FakeConn>> =
            Target::new(one_connection(), Arc::new(TargetMetrics::default()));
        let id = target.pool(&test_key(), &test_server(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        borrower(&target, id, 1, "first", &order)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Idle on worker 1; a session on worker 2 may not open a second one, so it takes it.
        borrower(&target, id, 2, "second", &order)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let order = order.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(order, vec![("first", 1), ("second", 2)]);
        assert_eq!(target.metrics.moved_between_workers.get(), 1);
        assert_eq!(target.metrics.connects.get(), 1);
    }

    #[tokio::test]
    async fn idle_connections_beyond_the_cap_close_only_once_unused_for_a_while() {
        let target: Arc<Target<FakeConn>> = Target::new(
            PoolSettings {
                max_connections: 4,
                max_idle: 1,
                borrow_timeout: Duration::from_secs(60),
                idle_timeout: Duration::from_secs(300),
                lifetime: Duration::from_secs(3600),
            },
            Arc::new(TargetMetrics::default()),
        );
        let id = target.pool(&test_key(), &test_server(1));
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(target.borrow(id).await.unwrap_or_else(|e| panic!("{e}")));
        }
        drop(held);
        assert_eq!(target.open(), 3);
        // Just used: the load's connections, kept although two are beyond max_idle.
        target.reap_at(Instant::now());
        assert_eq!(target.open(), 3);
        // Unused since: trimmed to max_idle.
        target.reap_at(Instant::now() + TRIM_AFTER + Duration::from_secs(1));
        assert_eq!(target.open(), 1);
        assert_eq!(target.metrics.connections.get(), 1);
    }
}
