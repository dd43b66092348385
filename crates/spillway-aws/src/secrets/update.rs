//! UpdateSecret: a secret's description (and KMS key, which spillway accepts and keeps one of)
//! and, with `SecretString` or `SecretBinary`, a new version that becomes AWSCURRENT as with
//! PutSecretValue. Unlike PutSecretValue, a `ClientRequestToken` that names an existing version
//! is an error, as AWS documents ("You can't modify an existing version").

use serde_json::json;

use super::store::Version;
use super::{Input, SecretsManager, internal, invalid_param, marked_for_deletion, uuid};
use crate::auth::Caller;
use crate::error::AwsError;

/// `DescriptionType`'s limit.
const MAX_DESCRIPTION: usize = 2048;

impl SecretsManager {
    pub(super) fn update(
        &self,
        input: &Input,
        caller: &Caller,
        t: f64,
    ) -> Result<String, AwsError> {
        const OP: &str = "UpdateSecret";
        let id = input.need("SecretId")?;
        let description = input.str("Description")?;
        if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
            return Err(invalid_param(
                "Description must be at most 2048 characters.",
            ));
        }
        // Read (and type-checked) so a wrong type is refused, then ignored: one local key.
        let _kms_key = input.str("KmsKeyId")?;
        let (string, binary) = input.value()?;
        let token = input.request_token()?;
        let mut store = self.store();
        let secret = match Self::find(&mut store, id) {
            Some(s) => s,
            None => return Err(self.missing(caller, OP, id)),
        };
        self.authorize(caller, OP, &secret.arn)?;
        if secret.deletion.is_some() {
            return Err(marked_for_deletion());
        }
        if let Some(d) = description {
            secret.description = Some(d.to_owned());
            secret.changed = t;
        }
        let mut out = json!({"ARN": secret.arn, "Name": secret.name});
        let mut changed = None;
        if string.is_some() || binary.is_some() {
            let version_id = token.map_or_else(uuid, str::to_owned);
            if secret.versions.iter().any(|v| v.id == version_id) {
                return Err(AwsError::new(
                    400,
                    "ResourceExistsException",
                    "A version with this ClientRequestToken already exists; UpdateSecret cannot modify an existing version.",
                ));
            }
            changed = string.clone().map(|v| (secret.name.clone(), v));
            secret.add_current(Version {
                id: version_id.clone(),
                string,
                binary,
                stages: vec![],
                created: t,
            });
            out["VersionId"] = json!(version_id);
        }
        store.save().map_err(internal)?;
        drop(store);
        // As with PutSecretValue: on disk first, then the proxies learn the new value.
        if let Some((name, value)) = changed {
            self.notify(&name, &value);
        }
        Ok(out.to_string())
    }
}
