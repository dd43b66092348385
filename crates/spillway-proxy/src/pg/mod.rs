//! The PostgreSQL proxy: client-facing (`handshake`, `session`) and server-facing (`backend`)
//! code apart, joined by the pool; wire format in `codec`, `startup`, `messages`.

pub mod backend;
pub mod codec;
pub mod deallocate;
pub mod handshake;
pub mod messages;
pub mod param_sets;
pub mod params;
pub mod pinning;
pub mod prepared;
pub mod proxy;
pub mod scram;
pub mod session;
mod spare;
pub mod startup;
pub mod topology;
