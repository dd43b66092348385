//! TLS for clients. After a client's SSLRequest the proxy answers `S`, completes the TLS
//! handshake in a small task of its own and relays decrypted bytes over a socketpair to the
//! session, which then reads and writes plain bytes as for any client. The plaintext path stays
//! exactly as fast as it was, and rustls's buffering and flushing are handled in one place
//! (`copy_bidirectional`) instead of in the session's multiplexed loop.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: no certificate found (expected PEM)")]
    NoCertificate(String),
    #[error("{0}: no private key found (expected PEM, PKCS#8, PKCS#1 or SEC1)")]
    NoKey(String),
    #[error("the certificate and key do not form a usable TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A loaded certificate and key.
#[derive(Clone)]
pub struct ServerTls(pub TlsAcceptor);

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .filter_map(Result::ok)
            .collect();
        if certs.is_empty() {
            return Err(TlsError::NoCertificate(cert.display().to_string()));
        }
        let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .ok()
            .flatten()
            .ok_or_else(|| TlsError::NoKey(key.display().to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key_der)?;
        Ok(Self(TlsAcceptor::from(Arc::new(config))))
    }

    /// Runs the TLS handshake on `tcp` in its own task, then relays decrypted bytes to and from
    /// `relay` (one end of a socketpair whose other end the session uses). A failed handshake
    /// closes the relay, which the session sees as EOF.
    pub fn serve(&self, tcp: TcpStream, mut relay: UnixStream) {
        let acceptor = self.0.clone();
        tokio::spawn(async move {
            match acceptor.accept(tcp).await {
                Ok(mut tls) => {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut relay).await;
                }
                Err(e) => tracing::info!("TLS handshake with a client failed: {e}"),
            }
        });
    }
}
