//! Managed read replicas (`readers = N`): where each lives and how it is named, the same for
//! both engines. The engines' own replication feeds them (`mysql_readers.rs`,
//! `postgres_readers.rs`); spillway starts them after their primary and stops them before it.
//!
//! ```text
//! .spillway/databases/NAME/readers/1/    data/, run/, tmp/, the server's log and pid file
//! ```

use std::path::{Path, PathBuf};

use super::{DatabaseEndpoint, ManagedSpec};
use crate::error::SupervisorError;

/// The state directory of reader `index` (counted from 1).
pub fn dir(spec: &ManagedSpec, index: u32) -> PathBuf {
    spec.dir.join("readers").join(index.to_string())
}

/// The name logs, metrics and `spillway up` give reader `index` of `resource`.
pub fn name(resource: &str, index: u32) -> String {
    format!("{resource}.readers.{index}")
}

/// Removes the directories of readers the stack no longer has (say, `readers` went from 2 to
/// 1). A replica holds nothing of its own, and one left behind would be stale if `readers`
/// grows again: the primary does not keep its changes for replicas that are not running.
pub fn remove_surplus(spec: &ManagedSpec) -> Result<(), SupervisorError> {
    let root = spec.dir.join("readers");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let surplus = e
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_none_or(|i| i == 0 || i > spec.readers);
        if surplus {
            let path = e.path();
            tracing::info!(database = %spec.resource, path = %path.display(), "removing a reader the stack no longer has");
            std::fs::remove_dir_all(&path).map_err(SupervisorError::io(&path))?;
        }
    }
    Ok(())
}

/// A reader's endpoint: the primary's database and administrative login, reached on the
/// reader's own Unix socket (readers listen on no port).
pub fn endpoint(
    primary: &DatabaseEndpoint,
    index: u32,
    host: String,
    port: u16,
    socket: &Path,
    log: PathBuf,
) -> DatabaseEndpoint {
    DatabaseEndpoint {
        resource: name(&primary.resource, index),
        engine: primary.engine,
        host,
        port,
        tcp: false,
        socket: Some(socket.to_path_buf()),
        dbname: primary.dbname.clone(),
        admin_user: primary.admin_user.clone(),
        admin_password_file: primary.admin_password_file.clone(),
        server_version: primary.server_version.clone(),
        log: Some(log),
        readers: Vec::new(),
    }
}
