//! A socket of either family. Clients arrive over TCP, or (after TLS) through the session's end
//! of the TLS relay, a Unix socket pair; servers are reached over TCP or their Unix socket.
//! Both offer readiness-based `try_read`/`try_write` and borrowed read/write halves, which is
//! all the session loop uses.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream, tcp, unix};

/// TCP keepalive on every client and server connection, so a peer that vanished without a FIN
/// (a crashed host, a dropped NAT entry, a network partition) is noticed in about two minutes
/// instead of holding a client task or a server connection until a timeout, or forever in a
/// pinned session. PgBouncer turns keepalive on with the kernel's defaults (first probe after
/// two hours); a pooler in front of short-lived functions wants to know sooner. The probes are
/// empty segments once a minute on an idle connection: no cost to speak of.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
pub const KEEPALIVE_PROBES: u32 = 4;

/// Sets Nagle off (every message is latency-bound) and [`KEEPALIVE_IDLE`]'s keepalive on `s`.
pub fn tune_tcp(s: &TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket2::SockRef::from(s).set_tcp_keepalive(&keepalive)
}

pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

pub enum ReadHalf<'a> {
    Tcp(tcp::ReadHalf<'a>),
    Unix(unix::ReadHalf<'a>),
}

pub enum WriteHalf<'a> {
    Tcp(tcp::WriteHalf<'a>),
    Unix(unix::WriteHalf<'a>),
}

impl Socket {
    /// On the client side a Unix socket is the TLS relay's end: the listener accepts TCP only.
    pub fn is_tls(&self) -> bool {
        matches!(self, Socket::Unix(_))
    }

    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.readable().await,
            Socket::Unix(s) => s.readable().await,
        }
    }

    pub fn try_read_buf(&self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Unix(s) => s.try_read_buf(buf),
        }
    }

    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read(buf),
            Socket::Unix(s) => s.try_read(buf),
        }
    }

    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_write(buf),
            Socket::Unix(s) => s.try_write(buf),
        }
    }

    /// Registers the socket with the runtime of the calling thread, as when a server connection
    /// moves to a session on another proxy worker (`pool.rs`): a duplicate of the descriptor is
    /// registered here, and the old registration, on the other worker's reactor, is dropped
    /// with its descriptor. The connection itself is untouched (same open file, same kernel
    /// buffers, same TLS state above it). Without this the socket still works, but each of its
    /// readiness events would cross threads.
    pub fn rehome(&mut self) -> io::Result<()> {
        use std::os::fd::AsFd;
        match self {
            Socket::Tcp(s) => {
                let fd = s.as_fd().try_clone_to_owned()?;
                *s = TcpStream::from_std(std::net::TcpStream::from(fd))?;
            }
            Socket::Unix(s) => {
                let fd = s.as_fd().try_clone_to_owned()?;
                *s = UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))?;
            }
        }
        Ok(())
    }

    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        match self {
            Socket::Tcp(s) => {
                let (r, w) = s.split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            Socket::Unix(s) => {
                let (r, w) = s.split();
                (ReadHalf::Unix(r), WriteHalf::Unix(w))
            }
        }
    }
}

macro_rules! delegate_read {
    ($t:ty, $($v:ident),+) => {
        impl AsyncRead for $t {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($t:ty, $($v:ident),+) => {
        impl AsyncWrite for $t {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_flush(cx),)+
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $(Self::$v(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}

delegate_read!(Socket, Tcp, Unix);
delegate_write!(Socket, Tcp, Unix);
delegate_read!(ReadHalf<'_>, Tcp, Unix);
delegate_write!(WriteHalf<'_>, Tcp, Unix);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rehomed_socket_is_the_same_connection_on_this_runtime() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        // Opened and registered on one proxy worker, as a pooled server connection is.
        let opened = crate::runtime::spawn_on(1, async move { TcpStream::connect(addr).await })
            .unwrap_or_else(|e| panic!("{e}"));
        let stream = opened
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let (mut peer, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let mut socket = Socket::Tcp(stream);
        socket.rehome().unwrap_or_else(|e| panic!("{e}"));
        // Both ways still work, and the old descriptor is gone, not the connection.
        peer.write_all(b"ping")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut got = [0u8; 4];
        socket
            .read_exact(&mut got)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&got, b"ping");
        socket
            .write_all(b"pong")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        peer.read_exact(&mut got)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&got, b"pong");
        drop(socket);
        assert_eq!(
            peer.read(&mut got).await.ok(),
            Some(0),
            "the peer sees the close"
        );
    }

    #[tokio::test]
    async fn tcp_connections_get_nodelay_and_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tune_tcp(&s).unwrap_or_else(|e| panic!("{e}"));
        let r = socket2::SockRef::from(&s);
        assert!(s.nodelay().unwrap_or(false));
        assert!(r.keepalive().unwrap_or(false));
        assert_eq!(r.tcp_keepalive_time().ok(), Some(KEEPALIVE_IDLE));
        assert_eq!(r.tcp_keepalive_interval().ok(), Some(KEEPALIVE_INTERVAL));
        assert_eq!(r.tcp_keepalive_retries().ok(), Some(KEEPALIVE_PROBES));
    }
}
