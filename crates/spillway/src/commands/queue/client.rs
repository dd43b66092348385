//! A small AWS JSON 1.0 client for `spillway queue` and `spillway tables`: requests
//! (`X-Amz-Target: AmazonSQS.X`, `DynamoDB_20120810.X`) signed with SigV4 as one of the
//! stack's users, one connection per call. It goes through the endpoint's front door on
//! purpose: the user's policies apply exactly as to any SDK, and there is no second, less
//! guarded way into the queues or the tables.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::QueueCliError;

/// Which service a client calls: its signing name and its `X-Amz-Target` prefix.
#[derive(Clone, Copy)]
pub enum Service {
    Sqs,
    DynamoDb,
}

impl Service {
    fn signing_name(self) -> &'static str {
        match self {
            Service::Sqs => "sqs",
            Service::DynamoDb => "dynamodb",
        }
    }

    fn target_prefix(self) -> &'static str {
        match self {
            Service::Sqs => "AmazonSQS",
            Service::DynamoDb => "DynamoDB_20120810",
        }
    }
}

pub struct AwsJsonClient {
    service: Service,
    /// `http://HOST:PORT`, as the running stack remembered it.
    url: String,
    /// `HOST:PORT`: where to connect, and the signed Host header.
    authority: String,
    region: String,
    identity: Identity,
}

impl AwsJsonClient {
    pub fn new(
        service: Service,
        url: &str,
        region: &str,
        key_id: &str,
        secret: &str,
    ) -> Result<Self, QueueCliError> {
        let Some(authority) = url.strip_prefix("http://") else {
            // The self-signed certificate of `endpoint_tls` would need its own trust setup
            // here; until then, say so rather than fail in a TLS handshake.
            return Err(QueueCliError::Input(format!(
                "the endpoint is {url}: spillway's clients speak plain http only (not yet [stack] endpoint_tls)"
            )));
        };
        Ok(Self {
            service,
            url: url.to_owned(),
            authority: authority.trim_end_matches('/').to_owned(),
            region: region.to_owned(),
            identity: Credentials::new(key_id, secret, None, None, "spillway-stack").into(),
        })
    }

    /// Calls `action` with `input`; the answer's JSON, or AWS's error code and message.
    pub async fn call(&self, action: &str, input: &Value) -> Result<Value, QueueCliError> {
        let body = input.to_string();
        let target = format!("{}.{action}", self.service.target_prefix());
        let headers = [
            ("host", self.authority.as_str()),
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", target.as_str()),
        ];
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(self.service.signing_name())
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| QueueCliError::Transport(format!("signing: {e}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            format!("{}/", self.url),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| QueueCliError::Transport(format!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| QueueCliError::Transport(format!("signing: {e}")))?
            .into_parts();
        let mut builder = hyper::Request::builder().method("POST").uri("/");
        for (k, v) in headers {
            builder = builder.header(k, v);
        }
        let mut request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| QueueCliError::Transport(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut request);

        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    QueueCliError::NotRunning(format!("nothing answers on {}", self.url))
                }
                _ => QueueCliError::Transport(format!("{}: {e}", self.url)),
            })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| QueueCliError::Transport(format!("{}: {e}", self.url)))?;
        tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| QueueCliError::Transport(format!("{}: {e}", self.url)))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| QueueCliError::Transport(format!("{}: {e}", self.url)))?
            .to_bytes();
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        Err(aws_error(status.as_u16(), &json))
    }
}

/// AWS's error from a JSON-protocol answer: the code is the shape after `#` in `__type` (what
/// the aws CLI v2 prints), the message `message` (or `Message`).
fn aws_error(status: u16, json: &Value) -> QueueCliError {
    let code = json
        .get("__type")
        .and_then(Value::as_str)
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = json
        .get("message")
        .or_else(|| json.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    QueueCliError::Aws { code, message }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn an_error_is_named_by_its_shape() {
        let e = super::aws_error(
            400,
            &json!({"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "gone"}),
        );
        assert_eq!(e.to_string(), "QueueDoesNotExist: gone");
        let e = super::aws_error(500, &serde_json::Value::Null);
        assert_eq!(e.to_string(), "HTTP 500: ");
    }
}
