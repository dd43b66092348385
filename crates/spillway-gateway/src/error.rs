//! Errors setting an API up. Errors answering a request are [`crate::reply::GatewayError`]:
//! those are what a client sees.

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
