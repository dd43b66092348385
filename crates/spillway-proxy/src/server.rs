//! Where a database server is and how the proxy logs in there: the same for every engine, so
//! the pool (`pool.rs`) and the topology monitor know servers without knowing their protocol.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};

use crate::socket::Socket;

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServerAddr {
    Tcp {
        host: String,
        port: u16,
    },
    /// A socket file (PostgreSQL's `DIR/.s.PGSQL.PORT`), for servers that listen on no port.
    Unix(PathBuf),
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            ServerAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            ServerAddr::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

impl ServerAddr {
    pub fn tcp(host: &str, port: u16) -> Self {
        ServerAddr::Tcp {
            host: host.to_owned(),
            port,
        }
    }

    /// Opens a stream to the server (for TCP: Nagle off, keepalive on; see `socket.rs`).
    pub async fn connect(&self) -> std::io::Result<Socket> {
        match self {
            ServerAddr::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                crate::socket::tune_tcp(&s)?;
                Ok(Socket::Tcp(s))
            }
            ServerAddr::Unix(path) => Ok(Socket::Unix(UnixStream::connect(path).await?)),
        }
    }
}

/// Where a server is and how to log in.
#[derive(Clone, Debug)]
pub struct ServerTarget {
    pub addr: ServerAddr,
    /// TLS towards the server (TCP servers only).
    pub tls: Option<std::sync::Arc<crate::tls::ClientTls>>,
    pub database: String,
    pub user: String,
    pub password: String,
    pub init_query: Option<String>,
    pub connect_timeout: Duration,
    /// The pool key's protocol options (see `PoolKey::options`); 0 for PostgreSQL.
    pub options: u32,
}
