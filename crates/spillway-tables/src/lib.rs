//! DynamoDB-compatible tables for spillway: the JSON 1.0 API (`X-Amz-Target:
//! DynamoDB_20120810.*`), its expression language, and an embedded durable ordered store.
//!
//! Rooms: [`value`] and [`number`] (the data types), [`expr`] (condition, projection, update
//! and key-condition expressions: parsed into a typed AST, then evaluated), [`key`] (key
//! schemas and the order-preserving key encoding), [`store`] (redb: items in key order, indexes
//! and TTL entries written in the same transaction), [`api`] (the actions).

pub mod expr;
pub mod number;
pub mod value;
