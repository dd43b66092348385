//! Services that live in their own crates (SQS in `spillway-queue`) and answer asynchronously
//! (long polls, durable writes): the endpoint recognises and authenticates the request, then
//! hands it over whole. Such a service shapes its own answers and errors, since their details
//! differ per service (SQS's `x-amzn-query-error`, its XML namespace).

use std::future::Future;
use std::pin::Pin;

use crate::auth::Caller;
use crate::protocol::Operation;

/// An authenticated request for a service.
pub struct ServiceRequest<'a> {
    pub op: &'a Operation,
    pub caller: &'a Caller,
    /// The request body (JSON protocols; the query protocol's parameters are in `op`).
    pub body: &'a [u8],
    /// The URL path (SQS's query protocol may address a queue by it).
    pub path: &'a str,
    /// The `Host` the client addressed (for URLs the service hands out, such as queue URLs).
    pub host: Option<&'a str>,
    pub request_id: &'a str,
}

/// A whole answer: status, content type, body and extra headers.
pub struct ServiceResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

pub type ServiceFuture<'a> = Pin<Box<dyn Future<Output = ServiceResponse> + Send + 'a>>;

pub trait AsyncService: Send + Sync {
    /// The signing name whose requests this service answers (`sqs`).
    fn service(&self) -> &'static str;
    /// Whether a query-protocol `Action` is one of this service's.
    fn has_action(&self, action: &str) -> bool;
    fn handle<'a>(&'a self, req: ServiceRequest<'a>) -> ServiceFuture<'a>;
}
