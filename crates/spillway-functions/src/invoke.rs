//! What an invocation is given and what it gives back, for every caller: the Invoke API, the
//! gateway, queue event sources and tests.

use bytes::Bytes;

/// Lambda's limit on a synchronous event (6 MB).
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// The limit on an asynchronous (`Event`) invocation's event, 256 KB.
pub const MAX_ASYNC_PAYLOAD: usize = 256 * 1024;

#[derive(Clone, Debug, Default)]
pub struct InvokeRequest {
    /// The event (JSON).
    pub payload: Bytes,
    /// `Lambda-Runtime-Client-Context` (the base64 JSON of X-Amz-Client-Context, decoded).
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    /// Use this request id instead of a new one (retries of an asynchronous event keep theirs).
    pub request_id: Option<String>,
}

impl InvokeRequest {
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            payload: payload.into(),
            ..Self::default()
        }
    }
}

/// How a function failed, as `X-Amz-Function-Error` says it. Lambda's older documents also
/// name `Handled`, but today's runtimes report an exception, an error result, a timeout and a
/// crash all as `Unhandled` (the CLI examples of every `*-exceptions` guide), so that is the
/// only kind spillway reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionError {
    Unhandled,
}

impl FunctionError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unhandled => "Unhandled",
        }
    }
}

/// The result of a run: the function's payload, or its error document and classification.
#[derive(Clone, Debug)]
pub struct InvokeOutcome {
    pub request_id: String,
    pub payload: Bytes,
    pub error: Option<FunctionError>,
    /// The error's type (`Runtime.ExitError`, `Sandbox.Timedout`, the exception's class...).
    pub error_type: Option<String>,
    /// The last 4 KB of the invocation's log (START to REPORT).
    pub log_tail: String,
    /// Whether a new instance was started for it.
    pub cold: bool,
}

impl InvokeOutcome {
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }
}
