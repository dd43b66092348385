//! The Lambda Runtime API (2018-06-01) as one instance sees it: a long-polled `next`, then a
//! `response` or an `error` for that request id, and `init/error` before the first `next`.
//!
//! Every instance gets its own listener on 127.0.0.1 (its `AWS_LAMBDA_RUNTIME_API`): the API's
//! paths name no instance, so the address is what tells instances apart, and a crashed
//! instance's state dies with its listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::peer::Owner;

/// Lambda's limit on a buffered response (6 MB).
pub const MAX_RESPONSE: usize = 6 * 1024 * 1024;
/// Lambda's limit on a streamed response (20 MB).
pub const MAX_STREAMED_RESPONSE: usize = 20 * 1024 * 1024;
/// Runtime API connections whose peer is being checked at once, per instance.
const MAX_PEER_CHECKS: usize = 4;
/// Error documents are small; a runtime that sends more is cut off here.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// One invocation handed to the instance.
pub(crate) struct Delivery {
    pub request_id: String,
    pub payload: Bytes,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub trace_id: String,
    pub timeout: Duration,
    /// Told the deadline (epoch ms) when the runtime takes the event.
    pub delivered: oneshot::Sender<u64>,
    pub reply: oneshot::Sender<Reply>,
}

/// What the runtime answered.
#[derive(Debug)]
pub(crate) enum Reply {
    Response(Bytes),
    Error {
        error_type: String,
        body: Bytes,
    },
    /// The response was over the limit; the runtime was told 413.
    TooLarge {
        limit: usize,
    },
}

/// Where the instance is in its life, as the Runtime API saw it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Phase {
    Starting,
    /// It asked for an event at least once.
    Ready,
    /// It reported `init/error`: the error document to answer the first invocation with.
    InitFailed {
        error_type: String,
        body: Bytes,
    },
}

struct Current {
    request_id: String,
    reply: oneshot::Sender<Reply>,
}

pub(crate) struct RuntimeApi {
    function_arn: String,
    /// The instance's log: START is written as the event is handed over, before the function
    /// can print a line of its own.
    log: Arc<crate::logs::InstanceLog>,
    deliveries: tokio::sync::Mutex<mpsc::Receiver<Delivery>>,
    current: Mutex<Option<Current>>,
    pub phase: watch::Sender<Phase>,
}

type Resp = Response<Full<Bytes>>;

fn json(status: StatusCode, body: serde_json::Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(status: StatusCode, error_type: &str, message: &str) -> Resp {
    json(
        status,
        serde_json::json!({"errorMessage": message, "errorType": error_type}),
    )
}

fn accepted() -> Resp {
    json(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RuntimeApi {
    /// Binds a listener and starts serving; returns the API, its address, the sender of
    /// deliveries and the server task.
    pub async fn start(
        function_arn: &str,
        log: Arc<crate::logs::InstanceLog>,
        owner: watch::Receiver<Option<Owner>>,
    ) -> std::io::Result<(
        Arc<Self>,
        SocketAddr,
        mpsc::Sender<Delivery>,
        tokio::task::JoinHandle<()>,
    )> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1);
        let api = Arc::new(Self {
            function_arn: function_arn.to_owned(),
            log,
            deliveries: tokio::sync::Mutex::new(rx),
            current: Mutex::new(None),
            phase: watch::Sender::new(Phase::Starting),
        });
        let served = Arc::clone(&api);
        let checks = Arc::new(tokio::sync::Semaphore::new(MAX_PEER_CHECKS));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let api = Arc::clone(&served);
                let mut owner = owner.clone();
                // The check reads /proc and asks the kernel; it runs off the async workers, and
                // only a few at a time per listener, so that connections from outside (anyone
                // on the machine may connect) cannot tie up the host. Beyond that, a connection
                // is closed at once: the instance's own runtime holds one connection and
                // reconnects if it must.
                let Ok(checking) = Arc::clone(&checks).try_acquire_owned() else {
                    tracing::debug!(%peer, "too many Runtime API connections being checked; closed one");
                    continue;
                };
                tokio::spawn(async move {
                    // The instance connects as soon as it runs, possibly before its spawner has
                    // recorded who it is: wait for that (briefly).
                    let known: Option<Owner> = tokio::time::timeout(
                        Duration::from_secs(10),
                        owner.wait_for(Option::is_some),
                    )
                    .await
                    .ok()
                    .and_then(|r| r.ok().and_then(|o| o.clone()));
                    let allowed = match known {
                        Some(o) => tokio::task::spawn_blocking(move || {
                            crate::peer::belongs(addr, peer, &o)
                        })
                        .await
                        .unwrap_or(false),
                        None => false,
                    };
                    drop(checking);
                    if !allowed {
                        tracing::warn!(
                            function = %api.function_arn,
                            %peer,
                            "refused a Runtime API connection from a process outside the instance"
                        );
                        return;
                    }
                    let svc = service_fn(move |req| {
                        let api = Arc::clone(&api);
                        async move { Ok::<_, Infallible>(api.route(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok((api, addr, tx, task))
    }

    async fn route(&self, req: Request<Incoming>) -> Resp {
        let path = req.uri().path().to_owned();
        let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
            return error_response(StatusCode::NOT_FOUND, "NotFound", "unknown path");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match (req.method(), parts.as_slice()) {
            (&Method::GET, ["invocation", "next"]) => self.next().await,
            (&Method::POST, ["invocation", id, "response"]) => {
                let id = (*id).to_owned();
                self.response(&id, req).await
            }
            (&Method::POST, ["invocation", id, "error"]) => {
                let id = (*id).to_owned();
                self.error(&id, req).await
            }
            (&Method::POST, ["init", "error"]) => {
                let (error_type, body) = read_error(req).await;
                tracing::debug!(error_type, "a runtime reported an init error");
                self.phase
                    .send_replace(Phase::InitFailed { error_type, body });
                accepted()
            }
            _ => error_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                "unknown Runtime API operation",
            ),
        }
    }

    async fn next(&self) -> Resp {
        self.phase.send_if_modified(|p| {
            if *p == Phase::Starting {
                *p = Phase::Ready;
                true
            } else {
                false
            }
        });
        // A runtime asking again without answering abandons the current invocation: dropping
        // its reply sender tells the invoker.
        if let Ok(mut c) = self.current.lock() {
            c.take();
        }
        let Some(d) = self.deliveries.lock().await.recv().await else {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Runtime.ContainerError",
                "Container error. Non-recoverable state. Runtime should exit promptly.",
            );
        };
        let deadline = now_ms() + d.timeout.as_millis() as u64;
        if let Ok(mut c) = self.current.lock() {
            *c = Some(Current {
                request_id: d.request_id.clone(),
                reply: d.reply,
            });
        }
        self.log.platform(&format!(
            "START RequestId: {} Version: $LATEST",
            d.request_id
        ));
        let _ = d.delivered.send(deadline);
        let mut r = Response::new(Full::new(d.payload));
        let h = r.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        };
        set("content-type", "application/json");
        set("lambda-runtime-aws-request-id", &d.request_id);
        set("lambda-runtime-deadline-ms", &deadline.to_string());
        set("lambda-runtime-invoked-function-arn", &self.function_arn);
        set("lambda-runtime-trace-id", &d.trace_id);
        if let Some(c) = &d.client_context {
            set("lambda-runtime-client-context", c);
        }
        if let Some(c) = &d.cognito_identity {
            set("lambda-runtime-cognito-identity", c);
        }
        r
    }

    fn is_current(&self, id: &str) -> bool {
        self.current
            .lock()
            .is_ok_and(|c| c.as_ref().is_some_and(|c| c.request_id == id))
    }

    fn take_current(&self, id: &str) -> Option<oneshot::Sender<Reply>> {
        let mut c = self.current.lock().ok()?;
        if c.as_ref().is_some_and(|c| c.request_id == id) {
            c.take().map(|c| c.reply)
        } else {
            None
        }
    }

    async fn response(&self, id: &str, req: Request<Incoming>) -> Resp {
        if !self.is_current(id) {
            return unknown_request(id);
        }
        let streaming = req
            .headers()
            .get("lambda-runtime-function-response-mode")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"));
        let limit = if streaming {
            MAX_STREAMED_RESPONSE
        } else {
            MAX_RESPONSE
        };
        let collected = read_bounded(req.into_body(), limit).await;
        let Some(reply) = self.take_current(id) else {
            return unknown_request(id);
        };
        match collected {
            Ok((data, trailers)) => {
                // A streamed response that failed part-way says so in its trailers.
                let failure = trailers.as_ref().and_then(|t| {
                    let kind = t.get("lambda-runtime-function-error-type")?;
                    let body = t
                        .get("lambda-runtime-function-error-body")
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .unwrap_or_default();
                    Some((String::from_utf8_lossy(kind.as_bytes()).into_owned(), body))
                });
                let _ = reply.send(match failure {
                    Some((error_type, body)) => Reply::Error {
                        body: error_document(&error_type, &body),
                        error_type,
                    },
                    None => Reply::Response(data),
                });
                accepted()
            }
            Err(BodyError::TooLarge) => {
                let _ = reply.send(Reply::TooLarge { limit });
                error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    &format!("the response is larger than {limit} bytes"),
                )
            }
            Err(_) => {
                let _ = reply.send(Reply::Error {
                    error_type: "Runtime.InvalidResponse".into(),
                    body: error_document(
                        "Runtime.InvalidResponse",
                        b"the runtime's response body could not be read",
                    ),
                });
                error_response(
                    StatusCode::BAD_REQUEST,
                    "InvalidResponse",
                    "the body could not be read",
                )
            }
        }
    }

    async fn error(&self, id: &str, req: Request<Incoming>) -> Resp {
        if !self.is_current(id) {
            return unknown_request(id);
        }
        let (error_type, body) = read_error(req).await;
        let Some(reply) = self.take_current(id) else {
            return unknown_request(id);
        };
        let _ = reply.send(Reply::Error { error_type, body });
        accepted()
    }
}

fn unknown_request(id: &str) -> Resp {
    tracing::info!(
        request_id = id,
        "a runtime answered a request it does not hold"
    );
    error_response(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        "Invalid request ID",
    )
}

enum BodyError {
    TooLarge,
    Broken,
}

/// Reads a body of at most `limit` bytes, with its trailers. An oversized body is still read
/// to its end (up to four times the limit, then the connection is given up), so that the
/// runtime's keep-alive connection survives the 413 and it can take its next event.
async fn read_bounded(
    mut body: Incoming,
    limit: usize,
) -> Result<(Bytes, Option<hyper::HeaderMap>), BodyError> {
    let mut data = bytes::BytesMut::new();
    let mut seen = 0usize;
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        match frame.into_data() {
            Ok(chunk) => {
                seen += chunk.len();
                if seen > limit.saturating_mul(4) {
                    return Err(BodyError::TooLarge);
                }
                if seen <= limit {
                    data.extend_from_slice(&chunk);
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    if seen > limit {
        return Err(BodyError::TooLarge);
    }
    Ok((data.freeze(), trailers))
}

/// The error type (header) and a JSON error document: the runtime's own body when it is one,
/// else one made from the header and whatever text was sent.
async fn read_error(req: Request<Incoming>) -> (String, Bytes) {
    let header = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = Limited::new(req.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let body_type = parsed
        .as_ref()
        .and_then(|v| v.get("errorType"))
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    let error_type = header
        .or(body_type)
        .unwrap_or_else(|| "Runtime.UnknownReason".into());
    let body = if parsed.as_ref().is_some_and(serde_json::Value::is_object) {
        body
    } else {
        error_document(&error_type, &body)
    };
    (error_type, body)
}

/// `{"errorMessage", "errorType"}` for a runtime that sent no usable document.
pub(crate) fn error_document(error_type: &str, message: &[u8]) -> Bytes {
    let message = if message.is_empty() {
        error_type.to_owned()
    } else {
        String::from_utf8_lossy(message).into_owned()
    };
    Bytes::from(serde_json::json!({"errorMessage": message, "errorType": error_type}).to_string())
}
