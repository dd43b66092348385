//! The AWS-compatible endpoint (`AWS_ENDPOINT_URL=http://127.0.0.1:4566`): one HTTP listener
//! shared by every service. A request is read whole (bounded), its protocol and operation are
//! recognised (`protocol`), its SigV4 signature checked and its caller found (`auth`), then the
//! service answers (`sts`, `secrets`, `lambda`, or a service of its own crate through `service`). Errors leave in the protocol's own shape (`error`): JSON
//! `__type`/`message` or the query protocol's XML `ErrorResponse`, always with a request id.

pub mod auth;
pub mod endpoint;
pub mod error;
pub mod lambda;
pub mod protocol;
pub mod secrets;
pub mod service;
pub mod sts;
mod xml;

pub use endpoint::{Endpoint, MAX_BODY};
