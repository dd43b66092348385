//! https for the stack's endpoint (`[stack] endpoint_tls`): the configured certificate and key,
//! or a self-signed pair generated on first start and kept in the state directory (see
//! `self_signed`).

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
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
        names.push(addr.ip().to_string());
    }
    crate::self_signed::pair(&state_dir.join(GENERATED_DIR), names, "the AWS endpoint")
}
