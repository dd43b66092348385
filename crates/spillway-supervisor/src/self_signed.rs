//! Self-signed certificates generated on first start and kept in the state directory, so a
//! client told to trust one once (`AWS_CA_BUNDLE`, `curl --cacert`) keeps trusting it across
//! restarts. Used by the endpoint (`endpoint_tls`) and by APIs' custom domains.

use std::path::{Path, PathBuf};

use crate::error::SupervisorError;

/// `DIR/cert.pem` and `DIR/key.pem`: generated for `names` (DNS names or IP addresses) unless
/// both files are already there. `what` names the listener in errors and in the log line.
pub fn pair(
    dir: &Path,
    names: Vec<String>,
    what: &str,
) -> Result<(PathBuf, PathBuf), SupervisorError> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(dir).map_err(SupervisorError::io(dir))?;
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| SupervisorError::Command {
            what: format!("generating the self-signed certificate of {what}"),
            detail: e.to_string(),
        })?;
    // The key first: a crash between the two writes leaves no certificate without its key.
    crate::state::write_private(&key, &generated.key_pair.serialize_pem())?;
    crate::state::write_private(&cert, &generated.cert.pem())?;
    tracing::info!(
        "generated a self-signed certificate for {what}: {}",
        cert.display()
    );
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use spillway_proxy::tls::ServerTls;

    use super::*;

    #[test]
    fn a_generated_pair_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let names = || vec!["localhost".to_owned(), "127.0.0.1".into()];
        let (cert, key) = pair(dir.path(), names(), "a test").unwrap_or_else(|e| panic!("{e}"));
        for p in [&cert, &key] {
            let mode = std::fs::metadata(p)
                .map(|m| m.permissions().mode())
                .unwrap_or_default();
            assert_eq!(mode & 0o777, 0o600, "{}", p.display());
        }
        let first = std::fs::read(&cert).unwrap_or_default();
        assert!(ServerTls::load(&cert, &key).is_ok());
        let _ = pair(dir.path(), names(), "a test").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&cert).unwrap_or_default(), first);
    }
}
