//! The stack's functions: specs from `[functions.*]` (code paths, resolved environments, roles),
//! the function host that runs them, and the STS bridge that gives instances credentials.

use std::sync::Arc;

use spillway_functions::{CredentialSource, Credentials, FunctionHost, FunctionSpec, HostConfig};
use spillway_stack::{LoadedStack, attrs, model};

use crate::error::SupervisorError;
use crate::stack::{Values, lookup_value};

/// Issues each instance a session of its function's role, as Lambda does.
pub struct StsCredentials(pub Arc<spillway_aws::sts::Sts>);

impl CredentialSource for StsCredentials {
    fn issue(&self, role: &str, function: &str) -> Option<Credentials> {
        let c = self.0.credentials_for_function(role, function)?;
        Some(Credentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
            expires: c.expires,
        })
    }
}

/// The spec of every function, with `${...}` references in environments resolved.
pub fn specs(loaded: &LoadedStack, values: &Values) -> Result<Vec<FunctionSpec>, SupervisorError> {
    let stack = &loaded.stack;
    stack
        .functions
        .iter()
        .map(|(name, f)| {
            let mut environment = Vec::new();
            for (k, t) in &f.environment {
                let v = t
                    .resolve(&mut |r| lookup_value(values, stack, r))
                    .map_err(|e| SupervisorError::Command {
                        what: format!("functions.{name}.environment.{k}"),
                        detail: e.to_string(),
                    })?;
                environment.push((k.clone(), v));
            }
            Ok(FunctionSpec {
                name: name.clone(),
                arn: attrs::derived(stack, "functions", name, "arn").unwrap_or_default(),
                runtime: match f.runtime {
                    model::Runtime::Provided => spillway_functions::Runtime::Provided,
                    model::Runtime::Nodejs => spillway_functions::Runtime::Nodejs,
                    model::Runtime::Python => spillway_functions::Runtime::Python,
                },
                code: loaded.path(&f.code),
                handler: f.handler.clone(),
                timeout: f.timeout.get(),
                memory_mb: f.memory,
                reserved_concurrency: f.reserved_concurrency,
                environment,
                keep_warm: f.keep_warm.get(),
                role: attrs::function_role(stack, name),
                maximum_retry_attempts: f.maximum_retry_attempts,
                on_failure: f.on_failure.clone(),
            })
        })
        .collect()
}

/// Builds what must be built and starts the host (no instance runs until the first call).
pub async fn start(
    loaded: &LoadedStack,
    values: &Values,
    endpoint_url: Option<String>,
    sts: Arc<spillway_aws::sts::Sts>,
    failures: Arc<dyn spillway_functions::FailureDestination>,
) -> Result<Arc<FunctionHost>, SupervisorError> {
    let mut config = HostConfig::new(&loaded.stack.stack.region, loaded.state_dir());
    config.endpoint_url = endpoint_url;
    config.credentials = Some(Arc::new(StsCredentials(sts)));
    config.failure_destination = Some(failures);
    FunctionHost::start(config, specs(loaded, values)?)
        .await
        .map_err(|e| SupervisorError::Command {
            what: "functions".into(),
            detail: e.to_string(),
        })
}
