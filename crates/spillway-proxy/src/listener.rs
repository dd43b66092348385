//! Accepting clients: the `allow_from` check (standing in for security groups: a refused peer
//! is logged and counted, and never sees a byte), then a task per client, on the worker whose
//! socket accepted it (see [`bind`] and `runtime.rs`).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::EndpointMetrics;
use crate::pg::proxy::PgProxy;
use crate::pg::{handshake, session};

/// A protocol's side of a listener: who may connect, what a client's task does, and the pool
/// housekeeping the accept loop drives. PostgreSQL and MySQL proxies implement it.
pub trait Frontend: Send + Sync + 'static {
    fn allowed(&self, ip: IpAddr) -> bool;
    /// Closes idle server connections past their time.
    fn reap(&self);
    /// Closes every idle server connection (the listener stops).
    fn close_idle(&self);
    /// A client's login, resolving to its session (or to nothing: refused, a cancel request).
    /// Two boxes, not one future: the login's state (about 1.8 KB with its timers and SCRAM)
    /// is freed once the client is in, and the session's box is just the session. As one async
    /// block, the task would keep the larger of the two, and the login's arguments, for the
    /// session's whole life, in every idle client (measured: 2.0 KB of future per client).
    fn login(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        metrics: Arc<EndpointMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Login;
}

/// A session's future, boxed.
pub type SessionFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// A login's future, boxed, resolving to the session.
pub type Login = Pin<Box<dyn Future<Output = Option<SessionFuture>> + Send>>;

impl Frontend for PgProxy {
    fn allowed(&self, ip: IpAddr) -> bool {
        PgProxy::allowed(self, ip)
    }
    fn reap(&self) {
        self.target.reap();
    }
    fn close_idle(&self) {
        self.target.close_idle();
    }
    fn login(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        metrics: Arc<EndpointMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Login {
        Box::pin(async move {
            match handshake::handshake(stream, &self, &metrics).await {
                Ok(Some(login)) => {
                    let session: SessionFuture =
                        Box::pin(session::run(login, self, metrics, shutdown));
                    Some(session)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::info!(peer = %peer, "client login failed: {e}");
                    None
                }
            }
        })
    }
}

impl Frontend for crate::mysql::proxy::MyProxy {
    fn allowed(&self, ip: IpAddr) -> bool {
        crate::mysql::proxy::MyProxy::allowed(self, ip)
    }
    fn reap(&self) {
        self.target.reap();
    }
    fn close_idle(&self) {
        self.target.close_idle();
    }
    fn login(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        metrics: Arc<EndpointMetrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Login {
        Box::pin(async move {
            match crate::mysql::handshake::handshake(stream, peer, &self, &metrics).await {
                Ok(Some(login)) => {
                    let session: SessionFuture =
                        Box::pin(crate::mysql::session::run(login, self, metrics, shutdown));
                    Some(session)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::info!(peer = %peer, "MySQL client login failed: {e}");
                    None
                }
            }
        })
    }
}

/// A client's task: its login, then its session. A hand-written future rather than an async
/// block: at 24 bytes it fits the task's cell beside tokio's own fields, where a block holding
/// both boxes grew every client's task from 128 to 256 bytes (tokio aligns the cell to 128).
enum Client {
    Login(Login),
    Session(SessionFuture),
}

impl Future for Client {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::task::Poll;
        loop {
            match &mut *self {
                Client::Login(login) => match login.as_mut().poll(cx) {
                    Poll::Ready(Some(session)) => *self = Client::Session(session),
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                },
                Client::Session(session) => return session.as_mut().poll(cx),
            }
        }
    }
}

/// A proxy's listening sockets on one address: one per worker. With more than one they share
/// the port through SO_REUSEPORT, and the kernel spreads new connections over them by a hash of
/// each client's address and port, so no thread hands clients to another. Linux lets only a
/// socket of the same user join such a group, so no other user's process can take a share of
/// the port.
pub struct Listeners {
    sockets: Vec<std::net::TcpListener>,
    addr: SocketAddr,
}

/// Connections the kernel queues for each socket before `accept`: well above std's 128, since
/// a fleet of functions starting together connects in one burst (the kernel caps it at
/// net.core.somaxconn).
const BACKLOG: i32 = 1024;

impl Listeners {
    /// The bound address (with the port the kernel picked, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `workers` (at least one) listening sockets to `addr`.
pub fn bind(addr: SocketAddr, workers: usize) -> std::io::Result<Listeners> {
    use socket2::{Domain, Socket, Type};
    let open = |addr: SocketAddr| -> std::io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        // As std does: a restarted proxy binds its port while old connections are in TIME_WAIT.
        socket.set_reuse_address(true)?;
        if workers > 1 {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    if workers > 1 && addr.port() != 0 {
        // Another process of this user listening on the port with SO_REUSEPORT (a second
        // stack with the same listen address and workers > 1) would otherwise be joined
        // silently, each taking a share of the clients. A plain bind first gets the error a
        // taken port gives with one worker; it is closed before the group binds.
        let probe = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        probe.set_reuse_address(true)?;
        probe.bind(&addr.into())?;
    }
    let first = open(addr)?;
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..workers.max(1) {
        sockets.push(open(addr)?);
    }
    Ok(Listeners { sockets, addr })
}

/// Serves a proxy's clients on `listeners` until `shutdown` turns true: socket `i` on proxy
/// worker `i` (see [`crate::runtime`]), so that its clients, and the server connections they
/// use, are that worker's. The returned task ends when every worker's accept loop has.
pub fn spawn<F: Frontend>(
    listeners: Listeners,
    proxy: Arc<F>,
    metrics: Arc<EndpointMetrics>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    let mut sockets = listeners.sockets.into_iter();
    let first = sockets
        .next()
        .ok_or_else(|| std::io::Error::other("a proxy needs a listening socket"))?;
    let mut others = Vec::new();
    for (i, socket) in sockets.enumerate() {
        let serving = accept_on(
            socket,
            Arc::clone(&proxy),
            Arc::clone(&metrics),
            shutdown.clone(),
            false,
        );
        others.push(crate::runtime::spawn_on(i + 1, serving)?);
    }
    crate::runtime::spawn(async move {
        accept_on(first, proxy, metrics, shutdown, true).await;
        for other in others {
            let _ = other.await;
        }
    })
}

/// One worker's accept loop on `socket`; the first worker's also runs the pool housekeeping.
async fn accept_on<F: Frontend>(
    socket: std::net::TcpListener,
    proxy: Arc<F>,
    metrics: Arc<EndpointMetrics>,
    shutdown: watch::Receiver<bool>,
    housekeeping: bool,
) {
    match TcpListener::from_std(socket) {
        Ok(listener) => serve(listener, proxy, metrics, shutdown, housekeeping).await,
        Err(e) => {
            tracing::error!(proxy = %metrics.proxy, "cannot listen on a proxy worker: {e}")
        }
    }
}

/// The accept loop, run by [`spawn`] on a proxy worker.
async fn serve<F: Frontend>(
    listener: TcpListener,
    proxy: Arc<F>,
    metrics: Arc<EndpointMetrics>,
    mut shutdown: watch::Receiver<bool>,
    housekeeping: bool,
) {
    // One reaper per proxy, not per worker: the pools are shared.
    let reaper = housekeeping.then(|| {
        tokio::spawn({
            let proxy = Arc::clone(&proxy);
            let mut shutdown = shutdown.clone();
            async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => proxy.reap(),
                        _ = shutdown.changed() => break,
                    }
                }
            }
        })
    });
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        metrics.client_connections_received.inc();
        if !proxy.allowed(peer.ip()) {
            metrics.client_connections_refused.inc();
            tracing::warn!(peer = %peer, proxy = %metrics.proxy, "refused a connection from outside allow_from");
            continue;
        }
        if let Err(e) = crate::socket::tune_tcp(&stream) {
            tracing::debug!(peer = %peer, "cannot set TCP options on a client connection: {e}");
        }
        let (proxy, metrics, shutdown) =
            (Arc::clone(&proxy), Arc::clone(&metrics), shutdown.clone());
        tokio::spawn(Client::Login(proxy.login(stream, peer, metrics, shutdown)));
    }
    if let Some(reaper) = reaper {
        reaper.abort();
    }
    proxy.close_idle();
}

#[cfg(test)]
mod tests {
    #[test]
    fn workers_do_not_join_another_process_on_the_same_port() {
        // Bound by someone else with SO_REUSEPORT, as another spillway with workers would.
        let other = super::bind("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")), 2)
            .unwrap_or_else(|e| panic!("{e}"));
        let taken = other.local_addr();
        let second = super::bind(taken, 2).map(|l| l.local_addr());
        assert_eq!(
            second.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::AddrInUse)
        );
        assert_eq!(
            super::bind(taken, 1)
                .map(|l| l.local_addr())
                .map_err(|e| e.kind()),
            Err(std::io::ErrorKind::AddrInUse)
        );
        // A free port is bound by every worker.
        drop(other);
        let again = super::bind(taken, 2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.sockets.len(), 2);
    }

    #[test]
    fn a_client_task_future_is_two_words_and_a_tag() {
        // What the comment on `Client` relies on: small enough for tokio's 128-byte task cell.
        assert_eq!(std::mem::size_of::<super::Client>(), 24);
    }
}
