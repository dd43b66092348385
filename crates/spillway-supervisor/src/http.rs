//! spillway's own HTTP surface on the stack's endpoint: `/_spillway/health`,
//! `/_spillway/metrics` (Prometheus) and `/_spillway/pools` (a JSON view of every pool, like
//! PgBouncer's SHOW POOLS). Everything else goes to the AWS-compatible endpoint.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use spillway_gateway::limits::{ConnectionLimit, HEADER_TIMEOUT};
use spillway_proxy::metrics::Registry;
use spillway_proxy::pool::Target;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the endpoint reports on.
pub struct Observed {
    pub registry: Arc<Registry>,
    pub targets: Vec<(String, Arc<Target>)>,
    /// The function host, for its metrics.
    pub functions: Option<Arc<spillway_functions::FunctionHost>>,
    /// The stack's APIs, for their metrics.
    pub apis: Vec<Arc<spillway_gateway::Gateway>>,
    /// The AWS-compatible APIs (none in one-line proxy mode).
    pub aws: Option<Arc<spillway_aws::Endpoint>>,
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
            "borrowed": target.metrics.borrowed.get(),
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
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(aws) = &o.aws
        && !req.uri().path().starts_with("/_spillway/")
    {
        return Ok(aws.handle(req).await);
    }
    let r = match (req.method(), req.uri().path()) {
        (&Method::GET, "/_spillway/health") => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/_spillway/metrics") => {
            let mut text = o.registry.render();
            if let Some(f) = &o.functions {
                text.push_str(&f.render_metrics());
            }
            text.push_str(&spillway_gateway::metrics::render(
                o.apis.iter().map(|a| &a.metrics),
            ));
            respond(StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        (&Method::GET, "/_spillway/pools") => {
            respond(StatusCode::OK, "application/json", pools_json(&o))
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "application/json",
            "{\"message\":\"Not Found\"}".into(),
        ),
    };
    Ok(r)
}

/// Serves until `shutdown` turns true, holding at most `max_connections` connections at once
/// (its share of the process's descriptors; beyond it, new ones wait to be accepted).
pub async fn serve(
    listener: TcpListener,
    observed: Arc<Observed>,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let cap = ConnectionLimit::new("the AWS endpoint", max_connections);
    loop {
        let permit = tokio::select! {
            p = cap.acquire() => p,
            _ = shutdown.changed() => break,
        };
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed on the stack endpoint: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let o = Arc::clone(&observed);
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req| handle(req, Arc::clone(&o)));
            // A client gets HEADER_TIMEOUT to send its headers (slowloris). hyper's HTTP/1
            // server starts that clock when the connection starts, so it also closes a client
            // that sends nothing at all, and an idle keep-alive connection. The endpoint bounds
            // the body.
            let _ = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
