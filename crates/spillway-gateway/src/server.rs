//! The listener side: HTTP/1.1 and HTTP/2 (prior knowledge, or ALPN under TLS) on an
//! already-bound listener, with limits on header size and time and on connections held at
//! once, until the shutdown signal; then in-flight requests get a grace period to finish.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::gateway::Gateway;
pub use crate::limits::HEADER_TIMEOUT;
use crate::limits::{ConnectionLimit, ListenerLimits};

/// The read buffer bounds the request line and headers; API Gateway allows 10 KB of headers,
/// spillway a little more, and answers 431 beyond.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long in-flight requests may run on after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

fn builder(header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    b
}

/// Runs `conn` to its end unless no request head has arrived (`seen`) by `deadline`: then it
/// is dropped, which closes the socket. hyper's HTTP/1 header timeout only starts once the
/// auto builder has read enough bytes to tell HTTP/1 from HTTP/2, so a client that sends
/// nothing (or a slow fragment of the HTTP/2 preface) would otherwise be held forever. After
/// the first request, hyper's own timeouts (HTTP/1 headers, HTTP/2 keep-alive pings) apply.
pub async fn until_first_request<F: Future>(conn: F, seen: &AtomicBool, deadline: Instant) {
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = &mut conn => return,
        _ = tokio::time::sleep_until(deadline) => {}
    }
    if seen.load(Ordering::Acquire) {
        conn.await;
    }
}

/// Serves `gateway` on `listener` (plaintext; `tls` wraps each connection when the API has
/// custom domains) until `shutdown` turns true, holding at most `limits.max_connections`
/// connections at once.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ListenerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Arc::new(builder(limits.header_timeout));
    let cap = ConnectionLimit::new(
        format!("api {}", gateway.spec().name),
        limits.max_connections,
    );
    loop {
        // A slot first, then the accept: see ConnectionLimit::acquire.
        let permit = tokio::select! {
            p = cap.acquire() => p,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(api = %gateway.spec().name, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // The clock for the first request head starts at accept, TLS handshake included.
        let deadline = Instant::now() + limits.header_timeout;
        let _ = stream.set_nodelay(true);
        let seen = Arc::new(AtomicBool::new(false));
        let gw = Arc::clone(&gateway);
        let svc = service_fn({
            let seen = Arc::clone(&seen);
            move |req| {
                seen.store(true, Ordering::Release);
                let gw = Arc::clone(&gw);
                async move { Ok::<_, Infallible>(gw.handle(req, peer).await) }
            }
        });
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let name = gateway.spec().name.clone();
        // The handshake runs on the connection's task: a slow client cannot hold up the accept
        // loop. The permit lives as long as the task, so the slot frees when the socket closes.
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => {
                    let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), svc));
                    until_first_request(conn, &seen, deadline).await;
                }
                Some(acceptor) => {
                    let tls = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::info!(api = %name, %peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = watcher.watch(builder.serve_connection(TokioIo::new(tls), svc));
                    until_first_request(conn, &seen, deadline).await;
                }
            }
        });
    }
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}
