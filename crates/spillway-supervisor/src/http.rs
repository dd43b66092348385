//! spillway's own HTTP surface on the stack's endpoint: `/_spillway/health`,
//! `/_spillway/metrics` (Prometheus) and `/_spillway/pools` (a JSON view of every pool, like
//! PgBouncer's SHOW POOLS). Everything else goes to the AWS-compatible endpoint.
//!
//! With `[stack] endpoint_tls` every connection from another machine must be TLS; plain HTTP
//! is still served to loopback peers (functions call the endpoint at `http://127.0.0.1`), and
//! the AWS services see which of the two a request came over (`aws:SecureTransport`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use spillway_gateway::limits::{ConnectionLimit, HEADER_TIMEOUT};
use spillway_proxy::metrics::Registry;
use spillway_proxy::pool::PoolView;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// What the endpoint reports on.
pub struct Observed {
    pub registry: Arc<Registry>,
    pub targets: Vec<(String, Arc<dyn PoolView>)>,
    /// The function host, for its metrics.
    pub functions: Option<Arc<spillway_functions::FunctionHost>>,
    /// The stack's APIs, for their metrics.
    pub apis: Vec<Arc<spillway_gateway::Gateway>>,
    /// The queues, for their metrics.
    pub queues: Option<Arc<spillway_queue::QueueService>>,
    /// The DynamoDB tables, for their metrics.
    pub tables: Option<Arc<spillway_tables::Tables>>,
    /// The AWS-compatible APIs (none in one-line proxy mode).
    pub aws: Option<Arc<spillway_aws::Endpoint>>,
    /// Who may read metrics and pools, when not everyone may (the endpoint is off loopback).
    pub guard: Option<crate::observe_auth::ObserverGuard>,
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn pools_json(o: &Observed) -> String {
    let mut rows = Vec::new();
    for (proxy, target) in &o.targets {
        let settings = target.settings();
        for (key, idle, waiting) in target.snapshot() {
            rows.push(serde_json::json!({
                "proxy": proxy,
                "database": key.database,
                "user": key.user,
                "idle": idle,
                "waiting": waiting,
            }));
        }
        rows.push(serde_json::json!({
            "proxy": proxy,
            "open": target.open(),
            "max_connections": settings.max_connections,
            "max_idle": settings.max_idle,
            "borrowed": target.metrics().borrowed.get(),
            "servers": target
                .servers()
                .into_iter()
                .map(|(addr, health)| serde_json::json!({"server": addr, "health": health.as_str()}))
                .collect::<Vec<_>>(),
        }));
    }
    serde_json::Value::Array(rows).to_string()
}

async fn handle(
    req: Request<Incoming>,
    o: Arc<Observed>,
    secure: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(aws) = &o.aws
        && !req.uri().path().starts_with("/_spillway/")
    {
        return Ok(aws.handle(req, secure).await);
    }
    let path = req.uri().path();
    // The queues' gauges need the store (async); read before the answer is assembled.
    let queue_metrics = match (&o.queues, path) {
        (Some(q), "/_spillway/metrics") => q.render_metrics().await,
        _ => String::new(),
    };
    if matches!(path, "/_spillway/metrics" | "/_spillway/pools")
        && let Some(guard) = &o.guard
    {
        let (parts, _) = req.into_parts();
        if !guard.allows(&parts, o.aws.as_ref().map(|a| &a.auth), secure) {
            return Ok(respond(
                StatusCode::FORBIDDEN,
                "application/json",
                crate::observe_auth::REFUSED.into(),
            ));
        }
        return Ok(observe(&parts.method, parts.uri.path(), &o, queue_metrics));
    }
    Ok(observe(req.method(), path, &o, queue_metrics))
}

/// The answers of spillway's own paths.
fn observe(
    method: &Method,
    path: &str,
    o: &Observed,
    queue_metrics: String,
) -> Response<Full<Bytes>> {
    match (method, path) {
        (&Method::GET, "/_spillway/health") => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/_spillway/metrics") => {
            let mut text = o.registry.render();
            if let Some(f) = &o.functions {
                text.push_str(&f.render_metrics());
            }
            text.push_str(&spillway_gateway::metrics::render(
                o.apis.iter().map(|a| &a.metrics),
            ));
            text.push_str(&queue_metrics);
            if let Some(t) = &o.tables {
                text.push_str(&t.render_metrics());
            }
            respond(StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        (&Method::GET, "/_spillway/pools") => {
            respond(StatusCode::OK, "application/json", pools_json(o))
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "application/json",
            "{\"message\":\"Not Found\"}".into(),
        ),
    }
}

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves until `shutdown` turns true, with `tls` as described in the module's comment, holding
/// at most `max_connections` connections at once (its share of the process's descriptors;
/// beyond it, new ones wait to be accepted).
pub async fn serve(
    listener: TcpListener,
    observed: Arc<Observed>,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let cap = ConnectionLimit::new("the AWS endpoint", max_connections);
    loop {
        let permit = tokio::select! {
            p = cap.acquire() => p,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed on the stack endpoint: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let o = Arc::clone(&observed);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(acceptor) = tls else {
                return connection(TokioIo::new(stream), o, false).await;
            };
            let mut first = [0u8; 1];
            let is_tls = match tokio::time::timeout(HEADER_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(1)) => first[0] == TLS_HANDSHAKE,
                _ => return,
            };
            if is_tls {
                match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => connection(TokioIo::new(s), o, true).await,
                    Ok(Err(e)) => {
                        tracing::info!(%peer, "TLS handshake failed on the stack endpoint: {e}")
                    }
                    Err(_) => {}
                }
            } else if peer.ip().to_canonical().is_loopback() {
                connection(TokioIo::new(stream), o, false).await;
            } else {
                refuse_plaintext(stream).await;
            }
        });
    }
}

/// One HTTP/1.1 connection, plain or decrypted.
async fn connection<I>(io: I, o: Arc<Observed>, secure: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| handle(req, Arc::clone(&o), secure));
    // The endpoint bounds the body; the headers are bounded here.
    let _ = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, svc)
        .await;
}

/// Plain HTTP from another machine to an https endpoint: one answer saying so, then close
/// (nothing of the request is read, so nothing secret is answered in clear).
async fn refuse_plaintext(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = "{\"message\":\"this endpoint requires https\"}";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(HEADER_TIMEOUT, stream.write_all(answer.as_bytes())).await;
    let _ = stream.shutdown().await;
}
