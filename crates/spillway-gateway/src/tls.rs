//! Custom domains: one TLS listener per API serving every domain's certificate by SNI, with
//! ALPN offering HTTP/2 and HTTP/1.1.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::SetupError;

/// A domain's name and its PEM certificate chain and key.
pub struct DomainCert {
    pub name: String,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

#[derive(Debug)]
struct BySni {
    certs: Vec<(String, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            Some(sni) => self
                .certs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(sni))
                .map(|(_, c)| Arc::clone(c)),
            // Without SNI (an IP address), the first domain answers.
            None => self.certs.first().map(|(_, c)| Arc::clone(c)),
        }
    }
}

fn load(d: &DomainCert) -> Result<CertifiedKey, SetupError> {
    let bad = |what: &str, detail: String| {
        SetupError::Config(format!("domain {}: {what}: {detail}", d.name))
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut d.cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate", e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("certificate", "no PEM certificate found".into()));
    }
    let key = rustls_pemfile::private_key(&mut d.key_pem.as_slice())
        .map_err(|e| bad("key", e.to_string()))?
        .ok_or_else(|| bad("key", "no PEM private key found".into()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| bad("key", e.to_string()))?;
    Ok(CertifiedKey::new(certs, signing))
}

/// An acceptor for these domains.
pub fn acceptor(domains: &[DomainCert]) -> Result<tokio_rustls::TlsAcceptor, SetupError> {
    let mut certs = Vec::new();
    for d in domains {
        certs.push((d.name.clone(), Arc::new(load(d)?)));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { certs }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
