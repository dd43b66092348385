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
/// Entries that are not reader numbers (a user's notes, say) are left alone.
pub fn remove_surplus(spec: &ManagedSpec) -> Result<(), SupervisorError> {
    let root = spec.dir.join("readers");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let Some(index) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if index == 0 || index > spec.readers {
            let path = e.path();
            tracing::info!(database = %spec.resource, path = %path.display(), "removing a reader the stack no longer has");
            std::fs::remove_dir_all(&path).map_err(SupervisorError::io(&path))?;
        }
    }
    Ok(())
}

/// Removes every reader: called when the primary is created anew, whose readers are copies of
/// a database that no longer exists.
pub fn remove_all(spec: &ManagedSpec) -> Result<(), SupervisorError> {
    let root = spec.dir.join("readers");
    match std::fs::remove_dir_all(&root) {
        Ok(()) => {
            tracing::info!(database = %spec.resource, "removed the readers of the previous primary");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SupervisorError::io(&root)(e)),
    }
}

/// Removes reader `index`'s data directory when it was copied from another primary than the
/// current one (`primary_id` differs from `reader_id`, or the reader's is unknown): a primary
/// created anew starts a new history its old replicas cannot follow. Returns whether it did.
pub fn drop_if_foreign(
    spec: &ManagedSpec,
    index: u32,
    primary_id: &[u8],
    reader_id: Option<&[u8]>,
) -> Result<bool, SupervisorError> {
    let data = dir(spec, index).join("data");
    if !data.exists() || reader_id == Some(primary_id) {
        return Ok(false);
    }
    tracing::warn!(database = %spec.resource, reader = index, "the reader was copied from an earlier primary; copying the current one");
    std::fs::remove_dir_all(&data).map_err(SupervisorError::io(&data))?;
    Ok(true)
}

/// A data directory closed to everyone but the server's account (a reader's holds its
/// `master.info` with the replication password).
pub fn close_data_dir(data: &Path) -> Result<(), SupervisorError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))
        .map_err(SupervisorError::io(data))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_surplus_reader_numbers_are_removed() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let spec = ManagedSpec {
            resource: "main".into(),
            dbname: "main".into(),
            dir: tmp.path().to_path_buf(),
            tcp: false,
            port: None,
            max_connections: 10,
            init: vec![],
            users: vec![],
            readers: 1,
        };
        for entry in ["0", "1", "2", "notes"] {
            let d = tmp.path().join("readers").join(entry);
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        }
        remove_surplus(&spec).unwrap_or_else(|e| panic!("{e}"));
        let left = |e: &str| tmp.path().join("readers").join(e).exists();
        assert!(left("1") && left("notes"));
        assert!(!left("0") && !left("2"));
    }
}
