//! Accepting clients: the `allow_from` check (standing in for security groups: a refused peer
//! is logged and counted, and never sees a byte), then a task per client.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::EndpointMetrics;
use crate::pg::proxy::PgProxy;
use crate::pg::{handshake, session};

/// Serves PostgreSQL clients on `listener` until `shutdown` turns true, on the proxy's own
/// thread (see [`crate::runtime`]). The listener moves there, so its readiness, like that of
/// every client and server socket the proxy opens, is handled by that thread's runtime.
pub fn spawn(
    listener: TcpListener,
    proxy: Arc<PgProxy>,
    metrics: Arc<EndpointMetrics>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = listener.into_std()?;
    crate::runtime::spawn(async move {
        match TcpListener::from_std(listener) {
            Ok(listener) => serve(listener, proxy, metrics, shutdown).await,
            Err(e) => {
                tracing::error!(proxy = %metrics.proxy, "cannot listen on the proxy's thread: {e}")
            }
        }
    })
}

/// The accept loop, run by [`spawn`] on the proxy's thread.
async fn serve(
    listener: TcpListener,
    proxy: Arc<PgProxy>,
    metrics: Arc<EndpointMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let reaper = tokio::spawn({
        let target = Arc::clone(&proxy.target);
        let mut shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => target.reap(),
                    _ = shutdown.changed() => break,
                }
            }
        }
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
        let fut = async move {
            // Boxed: login runs once per client and its state is large; inline, every idle
            // client's task would carry that space for its whole life.
            match Box::pin(handshake::handshake(stream, &proxy, &metrics)).await {
                Ok(Some(login)) => session::run(login, proxy, metrics, shutdown).await,
                Ok(None) => {}
                Err(e) => tracing::info!(peer = %peer, "client login failed: {e}"),
            }
        };
        tokio::spawn(fut);
    }
    reaper.abort();
    proxy.target.close_idle();
}
