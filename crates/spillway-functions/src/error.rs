//! The host's errors: setting a function up (`FunctionsError`) and refusing an invocation
//! (`InvokeError`, which the Invoke API maps to Lambda's error codes). A function's own failure
//! is not an error here: it is an [`crate::InvokeOutcome`] with a function error.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum FunctionsError {
    #[error("functions.{function}: {detail}")]
    Prepare { function: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl FunctionsError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            what: path.display().to_string(),
            source,
        }
    }
}

/// Why an invocation was not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    #[error("Function not found: {0}")]
    NotFound(String),
    /// Every instance the function may have is busy (or it reserves 0).
    #[error("Rate Exceeded.")]
    Throttled { reserved: bool },
    #[error("{0}")]
    TooLarge(String),
    /// The event is not JSON.
    #[error("Could not parse request body into json: {0}")]
    InvalidContent(String),
    #[error("the function host is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Internal(String),
}
