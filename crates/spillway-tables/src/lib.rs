//! DynamoDB-compatible tables for spillway: the JSON 1.0 API (`X-Amz-Target:
//! DynamoDB_20120810.*`), its expression language, and an embedded durable ordered store.
//!
//! Rooms: [`value`] and [`number`] (the data types), [`expr`] (condition, projection, update
//! and key-condition expressions: parsed into a typed AST, then evaluated), [`key`] (key
//! schemas and the order-preserving key encoding), [`schema`] (what a table is), [`store`]
//! (redb: items in key order, indexes and TTL entries written in the same transaction by one
//! writer thread), [`api`] (the actions).

pub mod api;
pub mod clock;
pub mod error;
pub mod expr;
pub mod key;
mod metrics;
pub mod number;
pub mod schema;
pub mod service;
pub mod store;
pub mod value;

pub use error::TablesError;
pub use service::Tables;
