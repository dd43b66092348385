//! The supervisor: starts a stack's resources in dependency order (managed PostgreSQL and
//! MariaDB servers, external databases, generated secrets, proxies, functions, APIs), keeps the state directory locked
//! while it runs, and stops everything in reverse order. Children never outlive spillway.

pub mod apis;
pub mod databases;
mod descriptors;
mod endpoint_tls;
pub mod error;
pub mod functions;
pub(crate) mod http;
pub mod identity;
mod observe_auth;
pub mod process;
mod proxies;
pub mod queues;
mod self_signed;
mod stack;
pub mod standalone;
pub mod state;
pub mod tables;

pub use error::SupervisorError;
pub use stack::{Row, Running, start, user_keys};
