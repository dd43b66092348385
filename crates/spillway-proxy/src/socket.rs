//! A client's socket: TCP for plaintext clients, the session's end of the TLS relay otherwise.
//! Both offer readiness-based `try_write` and borrowed read/write halves, which is all the
//! session loop uses.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream, tcp, unix};

pub enum ClientSocket {
    Tcp(TcpStream),
    Tls(UnixStream),
}

pub enum ReadHalf<'a> {
    Tcp(tcp::ReadHalf<'a>),
    Tls(unix::ReadHalf<'a>),
}

pub enum WriteHalf<'a> {
    Tcp(tcp::WriteHalf<'a>),
    Tls(unix::WriteHalf<'a>),
}

impl ClientSocket {
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientSocket::Tls(_))
    }

    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientSocket::Tcp(s) => s.try_write(buf),
            ClientSocket::Tls(s) => s.try_write(buf),
        }
    }

    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        match self {
            ClientSocket::Tcp(s) => {
                let (r, w) = s.split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            ClientSocket::Tls(s) => {
                let (r, w) = s.split();
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
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

delegate_read!(ClientSocket, Tcp, Tls);
delegate_write!(ClientSocket, Tcp, Tls);
delegate_read!(ReadHalf<'_>, Tcp, Tls);
delegate_write!(WriteHalf<'_>, Tcp, Tls);
