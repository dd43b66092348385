//! The directories a managed server keeps its files and its socket in, closed to every other
//! OS user: mode 0700, owned by the account the server runs as (spillway's own user, or under
//! root the `postgres` / `mysql` service account, which must create its socket there).
//!
//! This is what stands in for a private subnet on one machine: with `tcp` off the socket is the
//! server's only door, and only that account and root (spillway itself, its proxies) can reach
//! it. Functions, which run under users of their own, have to go through a proxy.
//!
//! The socket directory may be a fixed name under /tmp (see [`super::socket_dir`]), where
//! anybody could have made it first, as a symbolic link to somewhere else or as a directory of
//! their own. So the directory is opened without following a link, checked, and changed through
//! that open descriptor: a name swapped in between cannot redirect the chmod or the chown.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::error::SupervisorError;
use crate::process::RunAs;

/// Creates `path` (and its parents) if needed and makes it 0700 and `run_as`'s. Refuses a
/// symbolic link, something that is not a directory, and a directory another user owns.
pub(crate) fn make_private(
    path: &Path,
    run_as: &RunAs,
    service: &'static str,
) -> Result<(), SupervisorError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(SupervisorError::io(parent))?;
    }
    // Created 0700 from the start: no moment where another user could enter and stay inside.
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(SupervisorError::io(path)(e)),
    }
    let dir = open_no_follow(path)?;
    let meta = dir.metadata().map_err(SupervisorError::io(path))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != run_as.uid && meta.uid() != me {
        return Err(SupervisorError::WrongOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            expected: run_as.uid,
            service,
        });
    }
    dir.set_permissions(std::fs::Permissions::from_mode(0o700))
        .map_err(SupervisorError::io(path))?;
    if run_as.switch && (meta.uid() != run_as.uid || meta.gid() != run_as.gid) {
        std::os::unix::fs::fchown(&dir, Some(run_as.uid), Some(run_as.gid))
            .map_err(SupervisorError::io(path))?;
    }
    Ok(())
}

fn open_no_follow(path: &Path) -> Result<File, SupervisorError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|e| {
            // With O_DIRECTORY, Linux answers ENOTDIR for a link too; the name says which.
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            let what = match e.raw_os_error().map(Errno::from_raw) {
                Some(Errno::ELOOP | Errno::ENOTDIR) if link => "a symbolic link",
                Some(Errno::ENOTDIR) => "not a directory",
                _ => return SupervisorError::io(path)(e),
            };
            SupervisorError::NotADirectory {
                path: path.to_owned(),
                what,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p)
            .map(|m| m.mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn a_new_or_an_open_directory_becomes_0700() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fresh = tmp.path().join("databases/main");
        make_private(&fresh, &RunAs::current(), "postgres").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&fresh), 0o700);
        // As spillway left it before (create_dir_all under a 022 umask).
        let old = tmp.path().join("old");
        std::fs::create_dir(&old).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        make_private(&old, &RunAs::current(), "postgres").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&old), 0o700);
    }

    #[test]
    fn a_link_or_a_file_in_its_place_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let target = tmp.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let link = tmp.path().join("spillway-sockets");
        std::os::unix::fs::symlink(&target, &link).unwrap_or_else(|e| panic!("{e}"));
        let e = make_private(&link, &RunAs::current(), "postgres").err();
        assert!(
            matches!(
                e,
                Some(SupervisorError::NotADirectory {
                    what: "a symbolic link",
                    ..
                })
            ),
            "{e:?}"
        );
        assert_eq!(mode(&target), 0o755, "the link's target must not change");
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap_or_else(|e| panic!("{e}"));
        let e = make_private(&file, &RunAs::current(), "postgres").err();
        assert!(
            matches!(
                e,
                Some(SupervisorError::NotADirectory {
                    what: "not a directory",
                    ..
                })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn another_users_directory_is_refused() {
        // Only root can make a directory belong to someone else; as another user the
        // directory below is our own and the case cannot be built.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to give a directory to another user");
            return;
        }
        let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
            eprintln!("skipped: no user nobody");
            return;
        };
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::chown(&theirs, Some(nobody.uid.as_raw()), None)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("{e}"));
        let e = make_private(&theirs, &RunAs::current(), "postgres").err();
        assert!(
            matches!(e, Some(SupervisorError::WrongOwner { owner, .. }) if owner == nobody.uid.as_raw()),
            "{e:?}"
        );
        assert_eq!(
            mode(&theirs),
            0o777,
            "another user's directory must not change"
        );
    }
}
