//! The listener side: HTTP/1.1 and HTTP/2 (prior knowledge, or ALPN under TLS) on an
//! already-bound listener, with limits on header size and time, until the shutdown signal;
//! then in-flight requests get a grace period to finish.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::gateway::Gateway;

/// A client must finish sending its request headers within this time (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The read buffer bounds the request line and headers; API Gateway allows 10 KB of headers,
/// spillway a little more, and answers 431 beyond.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long in-flight requests may run on after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    b
}

/// Serves `gateway` on `listener` (plaintext; `tls` wraps each connection when the API has
/// custom domains) until `shutdown` turns true.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Arc::new(builder());
    loop {
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
        let _ = stream.set_nodelay(true);
        let gw = Arc::clone(&gateway);
        let svc = service_fn(move |req| {
            let gw = Arc::clone(&gw);
            async move { Ok::<_, Infallible>(gw.handle(req, peer).await) }
        });
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = Arc::clone(&builder);
                let name = gateway.spec().name.clone();
                // The handshake runs on the connection's task: a slow client cannot hold up
                // the accept loop. It is bounded like the headers are.
                tokio::spawn(async move {
                    let tls =
                        match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::info!(api = %name, %peer, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => return,
                        };
                    let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                });
            }
        }
    }
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}
