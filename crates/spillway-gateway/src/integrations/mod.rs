//! The integrations a route can have. Mock answers are made in `gateway.rs`; queue
//! integrations wait for the queue service.

pub mod function;
pub mod http;
