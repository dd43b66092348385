//! Secrets Manager's data: secrets with versions and staging labels, kept in one file encrypted
//! with AES-256-GCM under a key kept in a separate file (both mode 0600). The whole state is
//! rewritten (to a temporary file, then renamed) on every change: secrets are few and small, and
//! an acknowledged change must survive a crash.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0} is damaged or was encrypted with another key")]
    Corrupt(PathBuf),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub id: String,
    pub string: Option<String>,
    /// Base64 as the API carries it.
    pub binary: Option<String>,
    pub stages: Vec<String>,
    pub created: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Secret {
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    pub created: f64,
    pub changed: f64,
    pub accessed: Option<f64>,
    /// When a scheduled deletion takes effect.
    pub deletion: Option<f64>,
    pub versions: Vec<Version>,
}

impl Secret {
    pub fn version_with_stage(&self, stage: &str) -> Option<&Version> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }

    /// Adds a version as AWSCURRENT; the old AWSCURRENT becomes AWSPREVIOUS (the label moves
    /// from whichever version had it), as PutSecretValue does.
    pub fn add_current(&mut self, mut v: Version) {
        for old in &mut self.versions {
            old.stages.retain(|s| s != "AWSPREVIOUS");
        }
        for old in &mut self.versions {
            if old.stages.iter().any(|s| s == "AWSCURRENT") {
                old.stages.retain(|s| s != "AWSCURRENT");
                old.stages.push("AWSPREVIOUS".into());
            }
        }
        if !v.stages.iter().any(|s| s == "AWSCURRENT") {
            v.stages.push("AWSCURRENT".into());
        }
        self.changed = v.created;
        self.versions.push(v);
        // Versions without labels are deprecated; AWS keeps about 100 of them.
        while self.versions.len() > 100 {
            match self.versions.iter().position(|v| v.stages.is_empty()) {
                Some(i) => {
                    self.versions.remove(i);
                }
                None => break,
            }
        }
    }
}

pub struct Store {
    path: PathBuf,
    cipher: Aes256Gcm,
    pub secrets: BTreeMap<String, Secret>,
}

fn private_write(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    // A temporary name of this file's own, made fresh: a leftover (from a crash) is removed
    // first and the new one created exclusively, so it can be neither a planted symlink nor a
    // file with looser permissions.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io = |e| StoreError::Io(path.to_path_buf(), e);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn version_json(v: &Version) -> Value {
    json!({"id": v.id, "string": v.string, "binary": v.binary, "stages": v.stages, "created": v.created})
}

fn secret_json(s: &Secret) -> Value {
    json!({
        "arn": s.arn, "name": s.name, "description": s.description, "created": s.created,
        "changed": s.changed, "accessed": s.accessed, "deletion": s.deletion,
        "versions": s.versions.iter().map(version_json).collect::<Vec<_>>(),
    })
}

fn parse_secret(v: &Value) -> Option<Secret> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    Some(Secret {
        arn: s("arn")?,
        name: s("name")?,
        description: s("description"),
        created: f("created")?,
        changed: f("changed")?,
        accessed: f("accessed"),
        deletion: f("deletion"),
        versions: v
            .get("versions")?
            .as_array()?
            .iter()
            .map(|v| {
                let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
                Some(Version {
                    id: s("id")?,
                    string: s("string"),
                    binary: s("binary"),
                    stages: v
                        .get("stages")?
                        .as_array()?
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
                    created: v.get("created")?.as_f64()?,
                })
            })
            .collect::<Option<Vec<_>>>()?,
    })
}

impl Store {
    /// Opens (or creates) the store in `dir`: `secretsmanager.json` (encrypted) and
    /// `secretsmanager.key`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let key_path = dir.join("secretsmanager.key");
        let path = dir.join("secretsmanager.json");
        let key: [u8; 32] = match std::fs::read(&key_path) {
            Ok(k) => k
                .try_into()
                .map_err(|_| StoreError::Corrupt(key_path.clone()))?,
            // A new key only for a new store: with the data there and its key gone, making a
            // key would only make the data unreadable for good.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && path.exists() => {
                return Err(StoreError::Corrupt(key_path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k: [u8; 32] = rand::random();
                private_write(&key_path, &k)?;
                k
            }
            Err(e) => return Err(StoreError::Io(key_path, e)),
        };
        let cipher = Aes256Gcm::new(&key.into());
        let secrets = match std::fs::read(&path) {
            Ok(data) => {
                let corrupt = || StoreError::Corrupt(path.clone());
                if data.len() < 12 {
                    return Err(corrupt());
                }
                let (nonce, ciphertext) = data.split_at(12);
                let plain = cipher
                    .decrypt(Nonce::from_slice(nonce), ciphertext)
                    .map_err(|_| corrupt())?;
                let v: Value = serde_json::from_slice(&plain).map_err(|_| corrupt())?;
                v.as_array()
                    .ok_or_else(corrupt)?
                    .iter()
                    .map(|s| parse_secret(s).map(|s| (s.name.clone(), s)))
                    .collect::<Option<BTreeMap<_, _>>>()
                    .ok_or_else(corrupt)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(StoreError::Io(path, e)),
        };
        Ok(Self {
            path,
            cipher,
            secrets,
        })
    }

    /// Writes the whole state, encrypted with a fresh nonce.
    pub fn save(&self) -> Result<(), StoreError> {
        let plain =
            Value::Array(self.secrets.values().map(secret_json).collect::<Vec<_>>()).to_string();
        let nonce: [u8; 12] = rand::random();
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| StoreError::Corrupt(self.path.clone()))?;
        let mut data = nonce.to_vec();
        data.extend_from_slice(&ciphertext);
        private_write(&self.path, &data)
    }

    /// Drops secrets whose scheduled deletion has come.
    pub fn purge(&mut self, now: f64) -> bool {
        let before = self.secrets.len();
        self.secrets
            .retain(|_, s| s.deletion.is_none_or(|d| d > now));
        before != self.secrets.len()
    }
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_reopening_and_is_not_plaintext() {
        let dir = std::env::temp_dir().join(format!("spillway-sm-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut store = Store::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut s = Secret {
            arn: "arn:x".into(),
            name: "db".into(),
            description: None,
            created: 1.0,
            changed: 1.0,
            accessed: None,
            deletion: None,
            versions: vec![],
        };
        for (i, value) in ["first-value", "second-value", "third-value"]
            .iter()
            .enumerate()
        {
            s.add_current(Version {
                id: format!("v{i}"),
                string: Some((*value).into()),
                binary: None,
                stages: vec![],
                created: i as f64,
            });
        }
        assert_eq!(
            s.version_with_stage("AWSCURRENT").map(|v| v.id.as_str()),
            Some("v2")
        );
        assert_eq!(
            s.version_with_stage("AWSPREVIOUS").map(|v| v.id.as_str()),
            Some("v1")
        );
        assert!(s.versions[0].stages.is_empty());
        store.secrets.insert("db".into(), s.clone());
        store.save().unwrap_or_else(|e| panic!("{e}"));
        let raw = std::fs::read(dir.join("secretsmanager.json")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&raw).contains("second-value"));
        let again = Store::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.secrets.get("db"), Some(&s));
        // Another key cannot read it.
        std::fs::write(dir.join("secretsmanager.key"), [7u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(Store::open(&dir), Err(StoreError::Corrupt(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
