//! The stack's state directory (`.spillway/` beside the stack file): the lock that keeps two
//! spillways off the same data, generated secrets, and remembered ports.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use rand::Rng;
use spillway_stack::model::GeneratePassword;

use crate::error::SupervisorError;

/// Holds the state directory's lock for as long as it lives. The kernel releases it when the
/// process dies, so a crashed spillway never leaves a stale lock behind.
pub struct StateLock {
    _lock: Flock<File>,
    pub dir: PathBuf,
}

impl StateLock {
    pub fn acquire(dir: &Path) -> Result<Self, SupervisorError> {
        std::fs::create_dir_all(dir).map_err(SupervisorError::io(dir))?;
        // Nobody else may list or read spillway's state (secrets, keys, logs). Under root the
        // managed databases' service accounts must still pass through to the directories they
        // own (`databases/NAME`), so others keep the right to traverse (0711), never to list;
        // everything inside is 0600/0700 or the service account's own.
        let mode = if nix::unistd::geteuid().is_root() {
            0o711
        } else {
            0o700
        };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(SupervisorError::io(dir))?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(SupervisorError::io(&path))?;
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, _)) => {
                let pid = holder.trim();
                let pid = if pid.is_empty() {
                    "unknown".to_owned()
                } else {
                    pid.to_owned()
                };
                return Err(SupervisorError::AlreadyRunning {
                    pid,
                    dir: dir.to_owned(),
                });
            }
        };
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = writeln!(lock, "{}", std::process::id());
        Ok(Self {
            _lock: lock,
            dir: dir.to_owned(),
        })
    }
}

/// Writes a file only its owner can read (passwords).
pub fn write_private(path: &Path, contents: &str) -> Result<(), SupervisorError> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(SupervisorError::io(&tmp))?;
    f.write_all(contents.as_bytes())
        .map_err(SupervisorError::io(&tmp))?;
    f.sync_all().map_err(SupervisorError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(SupervisorError::io(path))
}

/// A password with Secrets Manager's GetRandomPassword semantics (its generator): at least one
/// character of each included type (lowercase, uppercase, digits and, unless excluded,
/// punctuation) when the length allows; validation keeps the length within AWS's range.
pub fn random_password(spec: &GeneratePassword) -> String {
    use spillway_aws::secrets::password::{PasswordSpec, generate};
    let mut aws = PasswordSpec {
        length: spec.length.max(1) as usize,
        exclude_characters: spec.exclude_characters.clone(),
        exclude_punctuation: spec.exclude_punctuation,
        ..PasswordSpec::default()
    };
    generate(&aws)
        .or_else(|_| {
            // Shorter than the number of types: as many types as fit, as before.
            aws.require_each_included_type = false;
            generate(&aws)
        })
        .unwrap_or_default()
}

/// A password for spillway's own administrative logins: long, URL-safe.
pub fn admin_password() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Generated secret values, kept in `secrets.json` (mode 0600) so they survive restarts.
pub struct GeneratedSecrets {
    path: PathBuf,
    values: BTreeMap<String, String>,
    /// Opened by a client of a running stack (`spillway queue`): it may read what the running
    /// spillway saved but never write, or it would race that process's own saves.
    read_only: bool,
}

impl GeneratedSecrets {
    pub fn open(state_dir: &Path) -> Result<Self, SupervisorError> {
        let path = state_dir.join("secrets.json");
        let values = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| SupervisorError::Command {
                what: format!("reading {}", path.display()),
                detail: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(SupervisorError::io(&path)(e)),
        };
        Ok(Self {
            path,
            values,
            read_only: false,
        })
    }

    /// Like [`GeneratedSecrets::open`], for a reader beside a running stack: values missing from
    /// the file are made up for this process only, never saved.
    pub fn open_read_only(state_dir: &Path) -> Result<Self, SupervisorError> {
        let mut s = Self::open(state_dir)?;
        s.read_only = true;
        Ok(s)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored value of `key`, made with `make` and saved on first use.
    pub fn get_or_make(
        &mut self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String, SupervisorError> {
        if let Some(v) = self.values.get(key) {
            return Ok(v.clone());
        }
        let v = make();
        self.values.insert(key.to_owned(), v.clone());
        if self.read_only {
            return Ok(v);
        }
        let text = serde_json::to_string_pretty(&self.values).unwrap_or_default();
        write_private(&self.path, &text)?;
        Ok(v)
    }

    /// The stored password of `key`, generating and saving it on first use.
    pub fn get_or_generate(
        &mut self,
        key: &str,
        spec: &GeneratePassword,
    ) -> Result<String, SupervisorError> {
        self.get_or_make(key, || random_password(spec))
    }
}

/// The file in the state directory naming the AWS endpoint's URL while the stack runs (the
/// bound port, which the stack file may leave to the system with port 0).
const ENDPOINT_FILE: &str = "endpoint";

/// Remembers the URL the AWS endpoint answers on, for `spillway queue` and other clients.
pub fn remember_endpoint(dir: &Path, url: &str) -> Result<(), SupervisorError> {
    let file = dir.join(ENDPOINT_FILE);
    std::fs::write(&file, format!("{url}\n")).map_err(SupervisorError::io(&file))
}

/// The URL the last `spillway up` of this state directory bound, if it wrote one. It may be
/// stale (a stopped or killed stack): callers find out by connecting.
pub fn remembered_endpoint(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(ENDPOINT_FILE)).ok()?;
    let url = text.trim();
    (!url.is_empty()).then(|| url.to_owned())
}

/// Forgets the endpoint's URL when the stack stops, so nobody is sent to a port that may be
/// someone else's by now.
pub fn forget_endpoint(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(ENDPOINT_FILE));
}

/// A free loopback port, found by binding port 0.
pub fn free_port() -> Result<u16, SupervisorError> {
    let l = TcpListener::bind(("127.0.0.1", 0)).map_err(SupervisorError::io("127.0.0.1:0"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(SupervisorError::io("127.0.0.1:0"))
}

/// Whether nothing listens on `addr` yet.
pub fn port_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// Chooses the port of a managed server: the configured one (which must be free), else the one
/// remembered from the last run if still free, else a new free one, remembered for next time.
pub fn managed_port(
    dir: &Path,
    configured: Option<u16>,
    field: &str,
) -> Result<u16, SupervisorError> {
    if let Some(p) = configured {
        let addr = SocketAddr::from(([127, 0, 0, 1], p));
        return if port_free(addr) {
            Ok(p)
        } else {
            Err(SupervisorError::PortInUse {
                addr,
                field: field.to_owned(),
            })
        };
    }
    let file = dir.join("port");
    if let Some(p) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        && port_free(SocketAddr::from(([127, 0, 0, 1], p)))
    {
        return Ok(p);
    }
    let p = free_port()?;
    std::fs::write(&file, format!("{p}\n")).map_err(SupervisorError::io(&file))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(length: u32, exclude_punctuation: bool, exclude: &str) -> GeneratePassword {
        GeneratePassword {
            generate: true,
            length,
            exclude_punctuation,
            exclude_characters: exclude.into(),
        }
    }

    #[test]
    fn generated_passwords_follow_the_rules() {
        for _ in 0..50 {
            let p = random_password(&spec(32, false, "\"'\\"));
            assert_eq!(p.chars().count(), 32);
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| c.is_ascii_punctuation()));
            assert!(!p.contains(['"', '\'', '\\']));
            let q = random_password(&spec(8, true, ""));
            assert!(q.chars().all(|c| c.is_ascii_alphanumeric()), "{q}");
        }
    }

    #[test]
    fn the_state_directory_is_closed_to_others() {
        let parent = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = parent.path().join(".spillway");
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        // As an earlier spillway left it.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let _lock = StateLock::acquire(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        let expected = if nix::unistd::geteuid().is_root() {
            0o711
        } else {
            0o700
        };
        assert_eq!(mode(&dir), expected);
        assert_eq!(mode(&dir.join("lock")), 0o600);
    }

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = StateLock::acquire(dir.path());
        assert!(first.is_ok());
        match StateLock::acquire(dir.path()) {
            Err(SupervisorError::AlreadyRunning { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected AlreadyRunning, got {:?}", other.err()),
        }
        drop(first);
        assert!(StateLock::acquire(dir.path()).is_ok());
    }

    #[test]
    fn generated_secrets_are_kept_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut s = GeneratedSecrets::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let a = s
            .get_or_generate("app", &spec(20, true, ""))
            .unwrap_or_default();
        let mut again = GeneratedSecrets::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            again
                .get_or_generate("app", &spec(20, true, ""))
                .unwrap_or_default(),
            a
        );
        let mode = std::fs::metadata(dir.path().join("secrets.json"))
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        assert_eq!(mode & 0o777, 0o600);
    }
}
