//! SQS semantics over durable storage, for spillway's AWS endpoint.
//!
//! [`QueueService`] owns queues and messages; the protocol layer (JSON 1.0 and query, in
//! [`api`], served on `spillway-aws`'s endpoint) maps requests to the typed structs of [`model`] and renders
//! [`QueueError`] with its code, query code, status and fault.
//!
//! Two engines hold the messages, chosen when the service opens: the embedded default
//! (`embedded`, over the storage trait below) and NATS JetStream ([`jetstream`], queues shared
//! by several spillway processes). [`QueueService`] dispatches each operation to the one it has.
//!
//! The embedded engine's storage is the [`store::Store`] trait; its store is redb
//! ([`store::redb::RedbStore`]), kept after a measured comparison with SQLite and fjall over
//! the same trait (`examples/store_bench`, `docs/BENCHMARKS.md`, "Queue storage"). A send is
//! answered only after the commit holding it was fsync'd;
//! concurrent calls share commits (group commit, `store::writer`).

pub mod api;
pub mod arn;
mod clock;
mod embedded;
pub mod error;
pub mod event_source;
pub mod fifo;
pub mod jetstream;
pub mod md5;
mod metrics;
pub mod model;
pub mod move_task;
mod outgoing;
pub mod queue_attributes;
pub mod receipt;
mod receive_filters;
pub mod redrive;
mod service;
pub mod store;
pub mod validate;

pub use error::{Fault, QueueError};
pub use model::*;
pub use service::QueueService;
