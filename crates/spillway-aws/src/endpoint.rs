//! One request through the endpoint: read the body (bounded), recognise the operation,
//! authenticate, dispatch, and shape the answer or the error for the request's protocol.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};

use crate::auth::{Authenticator, RawRequest};
use crate::error::AwsError;
use crate::protocol::{self, Protocol};

/// The largest request body accepted (DynamoDB's BatchWriteItem, the largest of the APIs
/// spillway serves, allows 16 MB).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long a client may take to send a body once its headers are in (a trickling client is
/// cut off instead of holding a task).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct Endpoint {
    pub auth: Authenticator,
    pub sts: std::sync::Arc<crate::sts::Sts>,
    pub secrets: crate::secrets::SecretsManager,
    /// The Lambda API, when the stack has functions.
    pub lambda: Option<crate::lambda::Lambda>,
    /// Services of their own crates (SQS), answered asynchronously.
    pub services: Vec<std::sync::Arc<dyn crate::service::AsyncService>>,
}

/// A request id as AWS writes them (a random UUID).
pub fn request_id() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A request's headers: by name (repeated ones joined) and the names present.
struct Headers<'a, 'f> {
    get: &'a (dyn Fn(&str) -> Option<String> + Sync + 'f),
    names: &'a [String],
    /// Not a header: whether the connection is TLS, which travels with them.
    secure_transport: bool,
}

fn response(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in [
        ("content-type", content_type),
        ("x-amzn-requestid", request_id),
    ] {
        if let Ok(v) = hyper::header::HeaderValue::from_str(v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

impl Endpoint {
    /// One request; `secure_transport` says whether its connection is TLS.
    pub async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        secure_transport: bool,
    ) -> Response<Full<Bytes>> {
        let id = request_id();
        let guessed = guess_protocol_from(&|n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let (parts, body) = req.into_parts();
        let collected =
            tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await;
        let body = match collected {
            Ok(Ok(b)) => b.to_bytes(),
            Err(_) => {
                let err = AwsError::new(
                    408,
                    "RequestTimeout",
                    format!(
                        "the request body did not arrive within {}s",
                        BODY_TIMEOUT.as_secs()
                    ),
                );
                tracing::info!(request_id = %id, "refused a request: {}", err.message);
                let (ct, text) = err.render(guessed, &id);
                return response(err.status, ct, text, &id);
            }
            Ok(Err(e)) => {
                let too_big = e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                let err = if too_big {
                    AwsError::new(
                        413,
                        "RequestEntityTooLarge",
                        format!("request bodies are limited to {MAX_BODY} bytes"),
                    )
                } else {
                    AwsError::new(400, "IncompleteBody", "the request body could not be read")
                };
                tracing::info!(request_id = %id, "refused a request: {}", err.message);
                let (ct, text) = err.render(guessed, &id);
                return response(err.status, ct, text, &id);
            }
        };
        let header = |name: &str| {
            let values: Vec<&str> = parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        };
        let names: Vec<String> = parts
            .headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .collect();
        let headers = Headers {
            get: &header,
            names: &names,
            secure_transport,
        };
        if let Some(lambda) = &self.lambda
            && parts.uri.path().starts_with(crate::lambda::PREFIX)
        {
            return self.lambda(lambda, &parts, &headers, body, &id).await;
        }
        let recognised = self.recognise(&parts, &headers, &body);
        if let Ok((op, caller)) = &recognised
            && let Some(service) = self.services.iter().find(|s| s.service() == op.service)
        {
            let answer = service
                .handle(crate::service::ServiceRequest {
                    op,
                    caller,
                    body: &body,
                    path: parts.uri.path(),
                    host: header("host").as_deref(),
                    request_id: &id,
                })
                .await;
            let mut r = response(answer.status, answer.content_type, answer.body, &id);
            for (k, v) in answer.headers {
                if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
                    r.headers_mut().insert(k, v);
                }
            }
            return r;
        }
        let result = recognised.and_then(|(op, caller)| self.dispatch(&op, &caller, &body, &id));
        match result {
            Ok((ct, text)) => response(200, ct, text, &id),
            Err((err, protocol)) => {
                tracing::info!(request_id = %id, code = %err.code, "AWS request refused: {}", err.message);
                let (ct, text) = err.render(protocol, &id);
                response(err.status, ct, text, &id)
            }
        }
    }

    /// The Lambda API: authenticated like the rest, answered asynchronously (an Invoke waits
    /// for the function), errors with the code in `x-amzn-ErrorType`.
    async fn lambda(
        &self,
        lambda: &crate::lambda::Lambda,
        parts: &hyper::http::request::Parts,
        headers: &Headers<'_, '_>,
        body: Bytes,
        id: &str,
    ) -> Response<Full<Bytes>> {
        let query = parts.uri.query().unwrap_or("");
        let header = headers.get;
        let caller = self.auth.authenticate(
            &RawRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query,
                header,
                header_names: headers.names,
                body: &body,
                secure_transport: headers.secure_transport,
            },
            "lambda",
            Protocol::RestJson,
            spillway_identity::time::now(),
        );
        let result = match caller {
            Ok(caller) => {
                lambda
                    .handle(
                        parts.method.as_str(),
                        parts.uri.path(),
                        query,
                        header,
                        body,
                        &caller,
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(ok) => {
                let mut r = response(ok.status, "application/json", ok.body, id);
                for (k, v) in ok.headers {
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
                        r.headers_mut().insert(k, v);
                    }
                }
                r
            }
            Err(err) => {
                tracing::info!(request_id = %id, code = %err.code, "Lambda request refused: {}", err.message);
                let (ct, text) = err.render(Protocol::RestJson, id);
                let mut r = response(err.status, ct, text, id);
                if let Ok(v) = hyper::header::HeaderValue::from_str(&err.code) {
                    r.headers_mut().insert("x-amzn-errortype", v);
                }
                r
            }
        }
    }

    /// The operation a request asks for, and who asks (its signature checked).
    fn recognise(
        &self,
        parts: &hyper::http::request::Parts,
        headers: &Headers<'_, '_>,
        body: &[u8],
    ) -> Result<(protocol::Operation, crate::auth::Caller), (AwsError, Protocol)> {
        let query = parts.uri.query().unwrap_or("");
        let header = headers.get;
        let services = |action: &str| {
            self.services
                .iter()
                .find(|s| s.has_action(action))
                .map(|s| s.service())
        };
        let op = protocol::recognise(
            header("x-amz-target").as_deref(),
            header("content-type").as_deref(),
            query,
            body,
            &services,
        )
        .map_err(|e| (e, guess_protocol_from(header)))?;
        let caller = self
            .auth
            .authenticate(
                &RawRequest {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query,
                    header,
                    header_names: headers.names,
                    body,
                    secure_transport: headers.secure_transport,
                },
                op.service,
                op.protocol,
                spillway_identity::time::now(),
            )
            .map_err(|e| (e, op.protocol))?;
        Ok((op, caller))
    }

    fn dispatch(
        &self,
        op: &protocol::Operation,
        caller: &crate::auth::Caller,
        body: &[u8],
        id: &str,
    ) -> Result<(&'static str, String), (AwsError, Protocol)> {
        let text = match op.service {
            "sts" => self.sts.handle(op, caller, id),
            "secretsmanager" => self.secrets.handle(&op.name, body, caller),
            other => Err(AwsError::new(
                400,
                "UnknownOperationException",
                format!("{other} is not served by spillway yet"),
            )),
        }
        .map_err(|e| (e, op.protocol))?;
        let ct = match op.protocol {
            Protocol::Query => "text/xml",
            Protocol::Json {
                version: protocol::JsonVersion::V1_0,
            } => "application/x-amz-json-1.0",
            Protocol::Json { .. } | Protocol::RestJson => "application/x-amz-json-1.1",
        };
        Ok((ct, text))
    }
}

/// The protocol to shape an error in when the operation could not be recognised.
fn guess_protocol_from(header: &dyn Fn(&str) -> Option<String>) -> Protocol {
    if header("x-amz-target").is_some() {
        Protocol::Json {
            version: protocol::JsonVersion::V1_1,
        }
    } else {
        Protocol::Query
    }
}
