//! One keep-alive HTTP/1.1 connection per simulated user (as each Locust user has its own
//! session), opened on first use and again after a failure.
//!
//! Plain http only: the stack's gateway and metrics endpoint are http on loopback, and a TLS
//! handshake per connection would measure the generator rather than the stack.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0:?} is not an http:// URL (https is not supported)")]
    NotHttp(String),
    #[error("{0:?} has no host")]
    NoHost(String),
}

/// Where requests go: `host:port` and the URL prefix task paths are appended to.
#[derive(Clone, Debug)]
pub struct Target {
    pub authority: String,
    pub base_path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::NotHttp(url.into()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(ClientError::NoHost(url.into()));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            authority,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// A request ready to send.
pub struct Prepared {
    pub method: hyper::Method,
    pub path_and_query: String,
    pub body: Option<String>,
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
}

/// What came back.
pub struct Answer {
    pub status: u16,
    pub bytes: u64,
}

/// Why one attempt failed: `Stale` when a kept-alive connection turned out closed before the
/// request was handled, which is worth one retry on a fresh connection.
enum Failure {
    Stale(String),
    Other(String),
}

impl Failure {
    fn into_text(self) -> String {
        match self {
            Failure::Stale(s) | Failure::Other(s) => s,
        }
    }
}

/// A connection slot: empty until the first request, emptied when a request fails.
#[derive(Default)]
pub struct Connection {
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub async fn send(
        &mut self,
        target: &Target,
        req: &Prepared,
        timeout: Duration,
    ) -> Result<Answer, String> {
        match tokio::time::timeout(timeout, self.send_inner(target, req)).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!(
                    "timed out after {}",
                    humantime::format_duration(timeout)
                ))
            }
        }
    }

    async fn send_inner(&mut self, target: &Target, req: &Prepared) -> Result<Answer, String> {
        let reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        match self.attempt(target, req).await {
            Err(Failure::Stale(_)) if reused => {
                // The server closed a kept-alive connection between two requests (an idle
                // timeout, or HTTP/1.0): once more on a fresh one, as HTTP clients do.
                self.sender = None;
                self.attempt(target, req).await.map_err(Failure::into_text)
            }
            other => other.map_err(Failure::into_text),
        }
    }

    async fn attempt(&mut self, target: &Target, req: &Prepared) -> Result<Answer, Failure> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(connect(&target.authority).await.map_err(Failure::Other)?);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(Failure::Other("no connection".into()));
        };
        sender
            .ready()
            .await
            .map_err(|e| Failure::Stale(e.to_string()))?;
        let mut builder = hyper::Request::builder()
            .method(req.method.clone())
            .uri(format!("{}{}", target.base_path, req.path_and_query))
            .header(hyper::header::HOST, &target.authority);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let body = Full::new(Bytes::from(req.body.clone().unwrap_or_default()));
        let request = builder
            .body(body)
            .map_err(|e| Failure::Other(e.to_string()))?;
        let idempotent = matches!(
            req.method,
            hyper::Method::GET
                | hyper::Method::HEAD
                | hyper::Method::PUT
                | hyper::Method::DELETE
                | hyper::Method::OPTIONS
        );
        let response = sender.send_request(request).await.map_err(|e| {
            // Canceled: the request never left. Incomplete: it may have been handled, so
            // only an idempotent request is safe to send again.
            if e.is_canceled() || (idempotent && e.is_incomplete_message()) {
                Failure::Stale(e.to_string())
            } else {
                Failure::Other(e.to_string())
            }
        })?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        Ok(Answer {
            status,
            bytes: body.to_bytes().len() as u64,
        })
    }
}

async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    // Small requests on a kept-alive connection: Nagle would add delayed-ACK stalls.
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One GET, on a fresh connection (the sampler's once-a-second metrics read).
pub async fn get_text(url: &str, timeout: Duration) -> Result<String, String> {
    let target = Target::parse(url).map_err(|e| e.to_string())?;
    let fut = async {
        let mut sender = connect(&target.authority).await?;
        let request = hyper::Request::builder()
            .uri(if target.base_path.is_empty() {
                "/".to_owned()
            } else {
                target.base_path.clone()
            })
            .header(hyper::header::HOST, &target.authority)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}"));
        }
        String::from_utf8(body.to_bytes().to_vec()).map_err(|e| e.to_string())
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("{url}: timed out"))?
}
