//! One HTTP/1.1 keep-alive connection to the endpoint, owned by one worker: a request at a time
//! (HTTP/1.1 without pipelining), reopened after a failure. Each worker owning its connection
//! keeps the generator free of a shared pool's locking.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::sign::{CONTENT_TYPE, Signer};

/// The longest a request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Conn {
    addr: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// What an answered request returned.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Conn {
    /// `addr` is `host:port` (what the Host header and the signature name).
    pub fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_owned(),
            sender: None,
        }
    }

    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, Error> {
        let stream = tokio::net::TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the peer closes or the sender is dropped; a failure shows on the
            // next request through this connection.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// POSTs a signed DynamoDB request; a transport failure drops the connection so the next
    /// request opens a fresh one.
    pub async fn call(
        &mut self,
        signer: &Signer,
        action: &str,
        body: Bytes,
    ) -> Result<Answer, Error> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.call_once(signer, action, body)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("no answer within {REQUEST_TIMEOUT:?}").into())
            }
        }
    }

    async fn call_once(
        &mut self,
        signer: &Signer,
        action: &str,
        body: Bytes,
    ) -> Result<Answer, Error> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.open().await?,
        };
        sender.ready().await?;
        let target = format!("DynamoDB_20120810.{action}");
        let signed = signer.sign(&self.addr, &target, &body);
        let request = hyper::Request::post("/")
            .header("host", &self.addr)
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-target", &target)
            .header("x-amz-date", &signed.amz_date)
            .header("authorization", &signed.authorization)
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        Ok(Answer { status, body })
    }
}
