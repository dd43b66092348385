//! spillway's RDS-Proxy-class connection pooler.
//!
//! Client-facing code (`pg::handshake`, `pg::session`) and server-facing code (`pg::backend`)
//! live apart and meet in the pool (`pool`), whose checkout is an RAII guard. `listener` accepts
//! clients; `metrics` names what it counts after RDS Proxy's CloudWatch metrics.

pub mod access;
pub mod cancel;
pub mod listener;
pub mod metrics;
pub mod mysql;
pub mod pg;
pub mod pool;
pub mod runtime;
pub mod server;
pub mod socket;
pub mod tls;
