//! TLS for clients and towards servers. After a client's SSLRequest the proxy answers `S`, completes the TLS
//! handshake in a small task of its own and relays decrypted bytes over a socketpair to the
//! session, which then reads and writes plain bytes as for any client. The plaintext path stays
//! exactly as fast as it was, and rustls's buffering and flushing are handled in one place
//! (`copy_bidirectional`) instead of in the session's multiplexed loop. Server connections with
//! TLS (`ClientTls`) are relayed the same way.

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

/// A loaded certificate and key, and where its handshakes run.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    /// The multi-threaded runtime that loaded it (spillway's main one), if any: TLS work runs
    /// there, off the proxy's one thread. A TLS handshake costs a few hundred microseconds of
    /// CPU, a plaintext query tens; on the proxy's thread a storm of new TLS connections
    /// (report 004 opens one per request) saturated it at about 2,000 a second while the other
    /// core idled (bench/proxy-mysql.sh). The relay talks to its session over a socketpair, so
    /// it can run on any thread. Kept per certificate, not globally: a process (a test binary)
    /// may have several runtimes, each with its own stacks.
    runtime: Option<tokio::runtime::Handle>,
}

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
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .filter(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            runtime,
        })
    }

    /// The acceptor itself (the AWS endpoint serves its TLS with it).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Runs the TLS handshake on `tcp` in its own task, then relays decrypted bytes to and from
    /// `relay` (one end of a socketpair whose other end the session uses). A failed handshake
    /// closes the relay, which the session sees as EOF.
    pub fn serve(&self, tcp: TcpStream, relay: UnixStream) {
        self.serve_after(tcp, Vec::new(), relay);
    }

    /// [`serve`](Self::serve) for a client whose first TLS bytes were read already: a MySQL
    /// client does not wait for an answer to its SSLRequest, so its ClientHello may arrive in
    /// the same read.
    pub fn serve_after(&self, tcp: TcpStream, read: Vec<u8>, relay: UnixStream) {
        let acceptor = self.acceptor.clone();
        let Some(runtime) = &self.runtime else {
            tokio::spawn(relay_tls(acceptor, tcp, read, relay));
            return;
        };
        // Re-registered with the TLS runtime's own reactor, so that the readiness events of the
        // encrypted side are that runtime's work too, not the proxy thread's.
        match (tcp.into_std(), relay.into_std()) {
            (Ok(tcp), Ok(relay)) => {
                runtime.spawn(async move {
                    match (TcpStream::from_std(tcp), UnixStream::from_std(relay)) {
                        (Ok(tcp), Ok(relay)) => relay_tls(acceptor, tcp, read, relay).await,
                        _ => tracing::info!("cannot move a TLS client to the TLS runtime"),
                    }
                });
            }
            _ => tracing::info!("cannot move a TLS client to the TLS runtime"),
        }
    }
}

/// The TLS handshake with a client, then its decrypted bytes to and from `relay`.
async fn relay_tls(acceptor: TlsAcceptor, tcp: TcpStream, read: Vec<u8>, mut relay: UnixStream) {
    let stream = Prefixed {
        prefix: read,
        at: 0,
        inner: tcp,
    };
    match acceptor.accept(stream).await {
        Ok(mut tls) => {
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut relay).await;
        }
        Err(e) => tracing::info!("TLS handshake with a client failed: {e}"),
    }
}

/// A stream that yields bytes already read before its own.
struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl tokio::io::AsyncRead for Prefixed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = (self.prefix.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Prefixed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How the proxy uses TLS towards a database server, as libpq's `sslmode` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTlsMode {
    /// Encrypt; do not check the certificate (libpq's `require`).
    Require,
    /// Encrypt and check the certificate chain against a CA and the host name (`verify-full`).
    VerifyFull,
}

/// TLS settings for connections to a database server.
#[derive(Clone)]
pub struct ClientTls {
    pub mode: ServerTlsMode,
    connector: tokio_rustls::TlsConnector,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientTls({:?})", self.mode)
    }
}

/// Accepts any certificate: `sslmode=require` promises encryption against passive listeners,
/// not authentication of the server (libpq's own meaning of the word).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ClientTls {
    /// `ca` (PEM) is required for `VerifyFull`.
    pub fn new(mode: ServerTlsMode, ca: Option<&Path>) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let config = match mode {
            ServerTlsMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth(),
            ServerTlsMode::VerifyFull => {
                let path = ca.ok_or_else(|| TlsError::NoCertificate("sslrootcert".into()))?;
                let pem = std::fs::read(path).map_err(|source| TlsError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok) {
                    roots.add(cert)?;
                }
                if roots.is_empty() {
                    return Err(TlsError::NoCertificate(path.display().to_string()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        Ok(Self {
            mode,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// Completes the TLS handshake on `tcp` (after the server accepted an SSLRequest) and
    /// returns the plaintext end of a relay, which the rest of the proxy uses as the server's
    /// socket — the same shape as a TLS client's.
    pub async fn connect(&self, host: &str, tcp: TcpStream) -> std::io::Result<UnixStream> {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut tls = self.connector.connect(name, tcp).await?;
        let (ours, mut relay) = UnixStream::pair()?;
        tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut relay).await;
        });
        Ok(ours)
    }
}
