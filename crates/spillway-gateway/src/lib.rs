//! spillway's API gateway: HTTP APIs (API Gateway v2) and REST APIs (v1) with API Gateway's
//! route matching, stages, Lambda proxy events (payload 2.0 and 1.0) and response mapping,
//! mock and HTTP integrations, IAM/JWT/function authorizers, CORS, throttling, access logs,
//! and custom domains over TLS.
//!
//! The supervisor turns the stack file into [`spec::ApiSpec`]s, builds a [`Gateway`] per API
//! and runs [`server::serve`] on a bound listener.

#![forbid(unsafe_code)]

pub mod access_log;
mod api_keys;
pub mod authorized;
mod authorizers;
pub mod cors;
pub mod error;
pub mod event;
pub mod gateway;
pub mod iam;
pub mod integrations;
pub mod limits;
pub mod metrics;
pub mod reply;
pub mod request;
pub mod response;
pub mod routes;
pub mod server;
pub mod spec;
pub mod throttle;
pub mod tls;

pub use error::SetupError;
pub use gateway::{Gateway, Services};
