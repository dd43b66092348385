//! Shared setup for the host's tests: real functions from `tests/functions/`, a host with a
//! private state directory.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spillway_functions::{
    CredentialSource, Credentials, FunctionHost, FunctionSpec, HostConfig, InvokeOutcome,
    InvokeRequest, Runtime,
};

pub fn functions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/functions")
}

pub fn spec(name: &str, runtime: Runtime, code: &str, handler: Option<&str>) -> FunctionSpec {
    FunctionSpec {
        name: name.into(),
        arn: format!("arn:aws:lambda:eu-west-1:123456789012:function:{name}"),
        runtime,
        code: functions_dir().join(code),
        handler: handler.map(str::to_owned),
        timeout: Duration::from_secs(5),
        memory_mb: 256,
        reserved_concurrency: None,
        environment: vec![("GREETING".into(), "hi from the stack".into())],
        keep_warm: Duration::from_secs(300),
        role: format!("spillway-fn-{name}"),
        maximum_retry_attempts: 2,
        on_failure: None,
    }
}

pub fn probe(name: &str) -> FunctionSpec {
    spec(name, Runtime::Provided, "rust-probe", None)
}

/// Hands out fixed credentials, so tests can see them arrive in the environment.
pub struct FixedCredentials;

impl CredentialSource for FixedCredentials {
    fn issue(&self, role: &str, function: &str) -> Option<Credentials> {
        Some(Credentials {
            access_key_id: format!("ASIATEST{}", function.len()),
            secret_access_key: format!("secret-for-{role}"),
            session_token: "token".into(),
            expires: spillway_identity::time::now() + 3600,
        })
    }
}

pub struct TestHost {
    pub host: Arc<FunctionHost>,
    pub dir: tempfile::TempDir,
}

pub async fn host(specs: Vec<FunctionSpec>) -> TestHost {
    host_with(specs, |_| {}).await
}

pub async fn host_with(specs: Vec<FunctionSpec>, tweak: impl FnOnce(&mut HostConfig)) -> TestHost {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut config = HostConfig::new("eu-west-1", dir.path().to_path_buf());
    config.release_builds = false;
    config.endpoint_url = Some("http://127.0.0.1:4566".into());
    config.credentials = Some(Arc::new(FixedCredentials));
    config.retry_delays = [Duration::from_millis(50), Duration::from_millis(50)];
    tweak(&mut config);
    let host = FunctionHost::start(config, specs)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    TestHost { host, dir }
}

impl TestHost {
    pub async fn invoke(&self, name: &str, event: serde_json::Value) -> InvokeOutcome {
        self.host
            .invoke(name, InvokeRequest::new(event.to_string()))
            .await
            .unwrap_or_else(|e| panic!("invoke {name}: {e}"))
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(spillway_functions::logs::log_path(self.dir.path(), name))
            .unwrap_or_default()
    }
}

pub fn json(o: &InvokeOutcome) -> serde_json::Value {
    serde_json::from_slice(&o.payload)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.payload)))
}

pub fn alive(pid: u64) -> bool {
    // A zombie is gone for our purposes: it runs nothing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// Waits (without blocking the runtime the host runs on) until `f` holds; fails the test
/// naming `what` if it does not within `timeout`.
pub async fn until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
