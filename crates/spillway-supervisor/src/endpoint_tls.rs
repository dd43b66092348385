//! https for the stack's endpoint (`[stack] endpoint_tls`): the configured certificate and key,
//! or a self-signed pair generated on first start and kept in the state directory, so a client
//! told to trust it once (`AWS_CA_BUNDLE`) keeps trusting it across restarts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use spillway_proxy::tls::ServerTls;
use spillway_stack::LoadedStack;
use tokio_rustls::TlsAcceptor;

use crate::error::SupervisorError;

/// Where a generated pair lives, under the state directory.
pub const GENERATED_DIR: &str = "endpoint-tls";

/// The endpoint's TLS acceptor, or `None` when it speaks plain HTTP. Warns (once, here) when
/// plain HTTP is served off loopback: secrets and STS keys would cross the network in clear.
pub fn acceptor(
    loaded: &LoadedStack,
    addr: SocketAddr,
) -> Result<Option<TlsAcceptor>, SupervisorError> {
    let Some(tls) = &loaded.stack.stack.endpoint_tls else {
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "the AWS endpoint listens on {addr} without TLS: secret values and STS keys cross the network in clear text; set [stack] endpoint_tls"
            );
        }
        return Ok(None);
    };
    let (cert, key) = match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) if !tls.self_signed => (loaded.path(c), loaded.path(k)),
        _ => generated(&loaded.state_dir(), addr)?,
    };
    let loaded_tls = ServerTls::load(&cert, &key).map_err(|e| SupervisorError::Command {
        what: "stack.endpoint_tls".into(),
        detail: e.to_string(),
    })?;
    Ok(Some(loaded_tls.acceptor()))
}

/// The self-signed pair, generated for `localhost`, the loopback addresses and the endpoint's
/// own address when it has one, unless both files are already there.
fn generated(state_dir: &Path, addr: SocketAddr) -> Result<(PathBuf, PathBuf), SupervisorError> {
    let dir = state_dir.join(GENERATED_DIR);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir).map_err(SupervisorError::io(&dir))?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
        names.push(addr.ip().to_string());
    }
    let pair = rcgen::generate_simple_self_signed(names).map_err(|e| SupervisorError::Command {
        what: "generating the endpoint's self-signed certificate".into(),
        detail: e.to_string(),
    })?;
    // The key first: a crash between the two writes leaves no certificate without its key.
    crate::state::write_private(&key, &pair.key_pair.serialize_pem())?;
    crate::state::write_private(&cert, &pair.cert.pem())?;
    tracing::info!(
        "generated a self-signed certificate for the AWS endpoint: {}",
        cert.display()
    );
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_generated_pair_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], 4566));
        let (cert, key) = generated(dir.path(), addr).unwrap_or_else(|e| panic!("{e}"));
        for p in [&cert, &key] {
            let mode = std::fs::metadata(p)
                .map(|m| m.permissions().mode())
                .unwrap_or_default();
            assert_eq!(mode & 0o777, 0o600, "{}", p.display());
        }
        let first = std::fs::read(&cert).unwrap_or_default();
        assert!(ServerTls::load(&cert, &key).is_ok());
        let _ = generated(dir.path(), addr).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&cert).unwrap_or_default(), first);
    }
}
