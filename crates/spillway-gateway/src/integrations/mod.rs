//! The integrations a route can have (mock answers are made in `gateway.rs`).

pub mod function;
pub mod http;
pub mod queue;
