//! The MySQL and MariaDB side of the proxy: a second protocol room over the same pool core
//! (`crate::pool`) as `pg`. Client-facing: `handshake` (login), `session` (commands),
//! `statements` (prepared statements across connections), `change_user`, `threads` (connection
//! ids and KILL). Server-facing: `backend`. Between them: `relay` (answers to clients),
//! `state` (a connection's session brought to its client's), `pinning` (what pins). Wire
//! format: `packet` (framing), `wire` (basic types), `messages`, `constants`, `scramble`.

pub mod backend;
mod change_user;
pub mod constants;
pub mod handshake;
pub mod messages;
pub mod packet;
pub mod pinning;
pub mod proxy;
pub mod relay;
pub mod scramble;
pub mod session;
mod state;
mod statements;
pub mod threads;
pub mod wire;
