//! Secrets Manager (JSON 1.1, `X-Amz-Target: secretsmanager.*`): CreateSecret,
//! GetSecretValue, PutSecretValue, UpdateSecret, DescribeSecret, ListSecrets (`list.rs`),
//! DeleteSecret (recovery window or ForceDeleteWithoutRecovery), RestoreSecret,
//! GetRandomPassword (`password.rs`), with AWSCURRENT/AWSPREVIOUS staging. Every call is
//! authorized against the caller's policies as `secretsmanager:Operation` on the secret's ARN.
//! Values never appear in logs or error messages.

mod list;
pub mod password;
pub mod store;
mod update;

use std::sync::Mutex;

use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::AwsError;
use store::{Secret, Store, StoreError, Version};

/// The largest SecretString or SecretBinary AWS accepts.
const MAX_VALUE: usize = 65_536;

/// Told the secret's name and new current string value after every change of it.
pub type Watcher = Box<dyn Fn(&str, &str) + Send + Sync>;

pub struct SecretsManager {
    store: Mutex<Store>,
    watchers: Mutex<Vec<Watcher>>,
    region: String,
    account: String,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0)
}

fn uuid() -> String {
    let h = format!("{:032x}", rand::random::<u128>());
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn invalid_param(m: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", m)
}

fn not_found() -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

fn marked_for_deletion() -> AwsError {
    AwsError::new(
        400,
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

fn internal(e: StoreError) -> AwsError {
    tracing::error!("secrets store: {e}");
    AwsError::new(
        500,
        "InternalServiceError",
        "the secrets store could not be written",
    )
}

/// A secret name as AWS allows it: 1-512 of letters, digits and `/_+=.@-`.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 512
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

struct Input(Map<String, Value>);

impl Input {
    fn parse(body: &[u8]) -> Result<Self, AwsError> {
        let body = if body.is_empty() {
            b"{}".as_slice()
        } else {
            body
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Self(m)),
            _ => Err(AwsError::new(
                400,
                "SerializationException",
                "the request body is not a JSON object",
            )),
        }
    }

    fn str(&self, k: &str) -> Result<Option<&str>, AwsError> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(AwsError::new(
                400,
                "SerializationException",
                format!("{k} must be a string"),
            )),
        }
    }

    fn need(&self, k: &str) -> Result<&str, AwsError> {
        self.str(k)?
            .ok_or_else(|| AwsError::new(400, "ValidationException", format!("{k} is required")))
    }

    fn bool(&self, k: &str) -> Result<bool, AwsError> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(AwsError::new(
                400,
                "SerializationException",
                format!("{k} must be a boolean"),
            )),
        }
    }

    fn int(&self, k: &str) -> Result<Option<i64>, AwsError> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                AwsError::new(
                    400,
                    "SerializationException",
                    format!("{k} must be an integer"),
                )
            }),
        }
    }

    /// ClientRequestToken: 32-64 characters, as AWS requires.
    fn request_token(&self) -> Result<Option<&str>, AwsError> {
        let t = self.str("ClientRequestToken")?;
        if t.is_some_and(|t| !(32..=64).contains(&t.len())) {
            return Err(invalid_param(
                "ClientRequestToken must be 32 to 64 characters long.",
            ));
        }
        Ok(t)
    }

    /// SecretString or SecretBinary (exactly one), size-checked.
    fn value(&self) -> Result<(Option<String>, Option<String>), AwsError> {
        let (s, b) = (self.str("SecretString")?, self.str("SecretBinary")?);
        if s.is_some() && b.is_some() {
            return Err(invalid_param(
                "You can't specify both a binary secret value and a string secret value in the same secret.",
            ));
        }
        if s.map_or(0, str::len) > MAX_VALUE || b.map_or(0, |b| b.len() / 4 * 3) > MAX_VALUE {
            return Err(invalid_param("the secret value is larger than 65536 bytes"));
        }
        // SecretBinary travels base64-encoded; anything else would fail in the SDK on the way back.
        if let Some(b) = b {
            use base64::Engine as _;
            if base64::engine::general_purpose::STANDARD.decode(b).is_err() {
                return Err(AwsError::new(
                    400,
                    "SerializationException",
                    "SecretBinary must be base64-encoded",
                ));
            }
        }
        Ok((s.map(str::to_owned), b.map(str::to_owned)))
    }
}

impl SecretsManager {
    pub fn open(dir: &std::path::Path, region: &str, account: &str) -> Result<Self, StoreError> {
        Ok(Self {
            store: Mutex::new(Store::open(dir)?),
            watchers: Mutex::new(Vec::new()),
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }

    /// Calls `w` whenever a secret gets a new current value through the API.
    pub fn watch(&self, w: Watcher) {
        self.watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(w);
    }

    fn notify(&self, name: &str, value: &str) {
        for w in self
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            w(name, value);
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_arn(&self, name: &str) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let suffix: String = (0..6)
            .map(|_| CHARS[usize::from(rand::random::<u8>()) % CHARS.len()] as char)
            .collect();
        format!(
            "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
            self.region, self.account
        )
    }

    /// Makes a stack-declared secret exist with `value` as its current version (a new version
    /// when the stack's value changed). The ARN is the stack's (stable across restarts).
    pub fn ensure(
        &self,
        name: &str,
        arn: &str,
        description: Option<&str>,
        value: &str,
    ) -> Result<(), StoreError> {
        self.ensure_all([(name, arn, description, value)])
    }

    /// [`ensure`](Self::ensure) for many secrets, with one write of the store for all of them
    /// (a stack with a thousand tenants' secrets would otherwise re-encrypt and write the
    /// whole store a thousand times at start), and none when nothing changed.
    pub fn ensure_all<'a>(
        &self,
        secrets: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>, &'a str)>,
    ) -> Result<(), StoreError> {
        let mut store = self.store();
        let mut changed = false;
        for (name, arn, description, value) in secrets {
            changed |= Self::ensure_in(&mut store, name, arn, description, value);
        }
        if changed {
            store.save()?;
        }
        Ok(())
    }

    fn ensure_in(
        store: &mut Store,
        name: &str,
        arn: &str,
        description: Option<&str>,
        value: &str,
    ) -> bool {
        let t = now();
        let mut changed = !store.secrets.contains_key(name);
        let secret = store
            .secrets
            .entry(name.to_owned())
            .or_insert_with(|| Secret {
                arn: arn.to_owned(),
                name: name.to_owned(),
                description: description.map(str::to_owned),
                created: t,
                changed: t,
                accessed: None,
                deletion: None,
                versions: Vec::new(),
            });
        changed |= secret.deletion.take().is_some();
        let current = secret
            .version_with_stage("AWSCURRENT")
            .and_then(|v| v.string.as_deref());
        if current != Some(value) {
            secret.add_current(Version {
                id: uuid(),
                string: Some(value.to_owned()),
                binary: None,
                stages: vec![],
                created: t,
            });
            changed = true;
        }
        changed
    }

    /// The current string value of a secret (for the proxy's credentials).
    pub fn current_string(&self, name: &str) -> Option<String> {
        let store = self.store();
        store
            .secrets
            .get(name)
            .filter(|s| s.deletion.is_none())
            .and_then(|s| s.version_with_stage("AWSCURRENT"))
            .and_then(|v| v.string.clone())
    }

    fn authorize(&self, caller: &Caller, op: &str, arn: &str) -> Result<(), AwsError> {
        caller.authorize(&format!("secretsmanager:{op}"), arn, 400)
    }

    /// Finds a secret by name, full ARN, or partial ARN (the ARN without its `-XXXXXX` suffix).
    fn find<'a>(store: &'a mut Store, id: &str) -> Option<&'a mut Secret> {
        if store.secrets.contains_key(id) {
            return store.secrets.get_mut(id);
        }
        store.secrets.values_mut().find(|s| {
            s.arn == id
                || (id.starts_with("arn:")
                    && s.arn
                        .strip_prefix(id)
                        .is_some_and(|rest| rest.len() == 7 && rest.starts_with('-')))
        })
    }

    /// The ARN a missing secret's id stands for (for authorizing and for answers).
    fn arn_for(&self, id: &str) -> String {
        if id.starts_with("arn:") {
            id.to_owned()
        } else {
            format!(
                "arn:aws:secretsmanager:{}:{}:secret:{id}",
                self.region, self.account
            )
        }
    }

    /// A secret that does not exist: AccessDenied for a caller who could not read it anyway
    /// (as AWS authorizes before looking up, so existence does not leak), else not found.
    fn missing(&self, caller: &Caller, op: &str, id: &str) -> AwsError {
        match self.authorize(caller, op, &self.arn_for(id)) {
            Ok(()) => not_found(),
            Err(denied) => denied,
        }
    }

    pub fn handle(&self, op: &str, body: &[u8], caller: &Caller) -> Result<String, AwsError> {
        let input = Input::parse(body)?;
        let mut store = self.store();
        let t = now();
        if store.purge(t) {
            store.save().map_err(internal)?;
        }
        let out = match op {
            "CreateSecret" => {
                let name = input.need("Name")?;
                if !valid_name(name) {
                    return Err(invalid_param(
                        "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
                    ));
                }
                let arn = self.new_arn(name);
                self.authorize(caller, op, &arn)?;
                if let Some(existing) = store.secrets.get(name) {
                    return Err(if existing.deletion.is_some() {
                        AwsError::new(
                            400,
                            "InvalidRequestException",
                            "You can't create this secret because a secret with this name is already scheduled for deletion.",
                        )
                    } else {
                        AwsError::new(
                            400,
                            "ResourceExistsException",
                            format!(
                                "The operation failed because the secret {name} already exists."
                            ),
                        )
                    });
                }
                let (string, binary) = input.value()?;
                let mut secret = Secret {
                    arn: arn.clone(),
                    name: name.to_owned(),
                    description: input.str("Description")?.map(str::to_owned),
                    created: t,
                    changed: t,
                    accessed: None,
                    deletion: None,
                    versions: Vec::new(),
                };
                let mut out = json!({"ARN": arn, "Name": name});
                if string.is_some() || binary.is_some() {
                    let id = input.request_token()?.map_or_else(uuid, str::to_owned);
                    secret.add_current(Version {
                        id: id.clone(),
                        string,
                        binary,
                        stages: vec![],
                        created: t,
                    });
                    out["VersionId"] = json!(id);
                }
                store.secrets.insert(name.to_owned(), secret);
                store.save().map_err(internal)?;
                out
            }
            "GetSecretValue" => {
                let id = input.need("SecretId")?;
                let secret = match Self::find(&mut store, id) {
                    Some(s) => s,
                    None => return Err(self.missing(caller, op, id)),
                };
                self.authorize(caller, op, &secret.arn)?;
                if secret.deletion.is_some() {
                    return Err(marked_for_deletion());
                }
                let version = match (input.str("VersionId")?, input.str("VersionStage")?) {
                    (Some(v), stage) => secret.versions.iter().find(|x| x.id == v && stage.is_none_or(|s| x.stages.iter().any(|y| y == s))),
                    (None, stage) => secret.version_with_stage(stage.unwrap_or("AWSCURRENT")),
                }
                .cloned()
                .ok_or_else(|| AwsError::new(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId or VersionStage."))?;
                secret.accessed = Some((t / 86_400.0).floor() * 86_400.0);
                let mut out = json!({
                    "ARN": secret.arn, "Name": secret.name, "VersionId": version.id,
                    "VersionStages": version.stages, "CreatedDate": version.created,
                });
                if let Some(s) = version.string {
                    out["SecretString"] = json!(s);
                }
                if let Some(b) = version.binary {
                    out["SecretBinary"] = json!(b);
                }
                out
            }
            "PutSecretValue" => {
                let id = input.need("SecretId")?;
                let (string, binary) = input.value()?;
                if string.is_none() && binary.is_none() {
                    return Err(invalid_param(
                        "You must provide either SecretString or SecretBinary.",
                    ));
                }
                let secret = match Self::find(&mut store, id) {
                    Some(s) => s,
                    None => return Err(self.missing(caller, op, id)),
                };
                self.authorize(caller, op, &secret.arn)?;
                if secret.deletion.is_some() {
                    return Err(marked_for_deletion());
                }
                let version_id = input.request_token()?.map_or_else(uuid, str::to_owned);
                let mut added = false;
                if let Some(v) = secret.versions.iter().find(|v| v.id == version_id) {
                    // Idempotent retry of the same request; another value under the same token is an error.
                    if v.string != string || v.binary != binary {
                        return Err(AwsError::new(
                            400,
                            "ResourceExistsException",
                            "A version with this ClientRequestToken already exists with a different value.",
                        ));
                    }
                } else {
                    secret.add_current(Version {
                        id: version_id.clone(),
                        string,
                        binary,
                        stages: vec![],
                        created: t,
                    });
                    added = true;
                }
                let stages = secret
                    .versions
                    .iter()
                    .find(|v| v.id == version_id)
                    .map(|v| v.stages.clone())
                    .unwrap_or_default();
                let out = json!({"ARN": secret.arn, "Name": secret.name, "VersionId": version_id, "VersionStages": stages});
                // Only a new version is news (a retried request changes nothing).
                let changed = added
                    .then(|| secret.version_with_stage("AWSCURRENT"))
                    .flatten()
                    .and_then(|v| v.string.clone())
                    .map(|v| (secret.name.clone(), v));
                store.save().map_err(internal)?;
                drop(store);
                // Acknowledged on disk first; then whoever uses the secret (the proxies) learns.
                if let Some((name, value)) = changed {
                    self.notify(&name, &value);
                }
                return Ok(out.to_string());
            }
            "DescribeSecret" => {
                let id = input.need("SecretId")?;
                let secret = match Self::find(&mut store, id) {
                    Some(s) => s,
                    None => return Err(self.missing(caller, op, id)),
                };
                self.authorize(caller, op, &secret.arn)?;
                describe(secret)
            }
            "ListSecrets" => {
                self.authorize(caller, op, "*")?;
                list::list(&input.0, store.secrets.values(), list_entry)?
            }
            "GetRandomPassword" => {
                self.authorize(caller, op, "*")?;
                drop(store);
                return random_password(&input);
            }
            "UpdateSecret" => {
                drop(store);
                return self.update(&input, caller, t);
            }
            "DeleteSecret" => {
                let id = input.need("SecretId")?;
                let force = input.bool("ForceDeleteWithoutRecovery")?;
                let window = input.int("RecoveryWindowInDays")?;
                if force && window.is_some() {
                    return Err(invalid_param(
                        "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
                    ));
                }
                let days = window.unwrap_or(30);
                if !(7..=30).contains(&days) {
                    return Err(invalid_param(
                        "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
                    ));
                }
                let secret = match Self::find(&mut store, id) {
                    Some(s) => s,
                    // Documented: "If you forcibly delete an already deleted or nonexistent
                    // secret, the operation does not return ResourceNotFoundException."
                    None if force => {
                        let arn = self.arn_for(id);
                        self.authorize(caller, op, &arn)?;
                        let name = arn.rsplit_once(":secret:").map_or(id, |(_, n)| n);
                        return Ok(json!({"ARN": arn, "Name": name, "DeletionDate": t}).to_string());
                    }
                    None => return Err(self.missing(caller, op, id)),
                };
                self.authorize(caller, op, &secret.arn)?;
                let (arn, name) = (secret.arn.clone(), secret.name.clone());
                let when = if force {
                    t
                } else {
                    secret.deletion.unwrap_or(t + days as f64 * 86_400.0)
                };
                if force {
                    store.secrets.remove(&name);
                } else {
                    secret.deletion = Some(when);
                }
                store.save().map_err(internal)?;
                json!({"ARN": arn, "Name": name, "DeletionDate": when})
            }
            "RestoreSecret" => {
                let id = input.need("SecretId")?;
                let secret = match Self::find(&mut store, id) {
                    Some(s) => s,
                    None => return Err(self.missing(caller, op, id)),
                };
                self.authorize(caller, op, &secret.arn)?;
                secret.deletion = None;
                let out = json!({"ARN": secret.arn, "Name": secret.name});
                store.save().map_err(internal)?;
                out
            }
            other => {
                return Err(AwsError::new(
                    400,
                    "UnknownOperationException",
                    format!("secretsmanager.{other} is not supported by spillway yet"),
                ));
            }
        };
        Ok(out.to_string())
    }
}

/// GetRandomPassword's answer for `input`.
fn random_password(input: &Input) -> Result<String, AwsError> {
    let length = match input.int("PasswordLength")? {
        None => 32,
        Some(n) => usize::try_from(n).unwrap_or(0),
    };
    let spec = password::PasswordSpec {
        length,
        exclude_characters: input.str("ExcludeCharacters")?.unwrap_or("").to_owned(),
        exclude_numbers: input.bool("ExcludeNumbers")?,
        exclude_punctuation: input.bool("ExcludePunctuation")?,
        exclude_uppercase: input.bool("ExcludeUppercase")?,
        exclude_lowercase: input.bool("ExcludeLowercase")?,
        include_space: input.bool("IncludeSpace")?,
        // Absent means true: "If you don't include this switch, the password contains at
        // least one of every character type."
        require_each_included_type: match input.0.get("RequireEachIncludedType") {
            None | Some(Value::Null) => true,
            Some(_) => input.bool("RequireEachIncludedType")?,
        },
    };
    if spec.exclude_characters.len() > password::MAX_LENGTH {
        return Err(invalid_param(
            "ExcludeCharacters must be at most 4096 characters.",
        ));
    }
    let p = password::generate(&spec).map_err(|e| invalid_param(e.to_string()))?;
    Ok(json!({ "RandomPassword": p }).to_string())
}

fn describe(s: &Secret) -> Value {
    entry(s, "VersionIdsToStages")
}

/// ListSecrets' `SecretListEntry` names the stages map differently from DescribeSecret.
fn list_entry(s: &Secret) -> Value {
    entry(s, "SecretVersionsToStages")
}

fn entry(s: &Secret, stages_key: &str) -> Value {
    let stages: Map<String, Value> = s
        .versions
        .iter()
        .filter(|v| !v.stages.is_empty())
        .map(|v| (v.id.clone(), json!(v.stages)))
        .collect();
    let mut out = json!({
        "ARN": s.arn, "Name": s.name, "CreatedDate": s.created, "LastChangedDate": s.changed,
    });
    out[stages_key] = Value::Object(stages);
    if let Some(d) = &s.description {
        out["Description"] = json!(d);
    }
    if let Some(a) = s.accessed {
        out["LastAccessedDate"] = json!(a);
    }
    if let Some(d) = s.deletion {
        out["DeletedDate"] = json!(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> Input {
        Input::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn wrongly_typed_or_malformed_input_is_refused_not_ignored() {
        fn code<T>(r: Result<T, AwsError>) -> Option<String> {
            r.err().map(|e| e.code)
        }
        assert_eq!(
            code(
                input(r#"{"ForceDeleteWithoutRecovery":"true"}"#)
                    .bool("ForceDeleteWithoutRecovery")
            ),
            Some("SerializationException".into())
        );
        assert_eq!(
            code(input(r#"{"RecoveryWindowInDays":"7"}"#).int("RecoveryWindowInDays")),
            Some("SerializationException".into())
        );
        assert_eq!(
            input(r#"{"RecoveryWindowInDays":7}"#)
                .int("RecoveryWindowInDays")
                .ok(),
            Some(Some(7))
        );
        assert_eq!(
            code(input(r#"{"SecretBinary":"not base64 !!!"}"#).value()),
            Some("SerializationException".into())
        );
        assert!(input(r#"{"SecretBinary":"aGVsbG8="}"#).value().is_ok());
        assert_eq!(
            code(input(r#"{"ClientRequestToken":"short"}"#).request_token()),
            Some("InvalidParameterException".into())
        );
        assert_eq!(
            code(Input::parse(b"[1]").map(|_| ())),
            Some("SerializationException".into())
        );
    }
}
