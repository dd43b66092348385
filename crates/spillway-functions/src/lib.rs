//! spillway's Lambda-compatible function host.
//!
//! Functions run as native processes (no containers): an executable `bootstrap` (a Cargo
//! package is built into one), or spillway's Node.js or Python bootstrap loading a handler.
//! Each instance talks to its own Runtime API listener (`runtime_api`), runs one invocation at a
//! time, is reused while warm and reaped when idle (`host`), has its output captured with
//! START/END/REPORT lines (`logs`) and its memory limited and measured by a cgroup where the
//! machine allows (`cgroup`). `FunctionHost::invoke` is the internal invoke path; the AWS
//! endpoint's Invoke API, the gateway and queue event sources all call it.

mod cgroup;
mod error;
mod events;
mod host;
mod instance;
pub mod invoke;
pub mod logs;
mod package;
mod peer;
mod runtime_api;
mod sandbox;
pub mod spec;
mod watch;

pub use error::{FunctionsError, InvokeError};
pub use host::{Function, FunctionHost, FunctionMetrics, new_request_id};
pub use invoke::{
    FunctionError, InvokeOutcome, InvokeRequest, MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD,
};
pub use package::is_cargo_package;
pub use spec::{
    CredentialSource, Credentials, FailureDestination, FunctionSpec, HostConfig, Runtime,
};
