//! The outputs at the end of a run: Locust-format CSVs, one self-contained HTML file, JSON.

pub mod csv;
pub mod html;
pub mod svg;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) fn write(path: &std::path::Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|source| ReportError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// `--json`: the whole results document.
pub fn json(results: &crate::results::Results) -> Result<String, ReportError> {
    Ok(serde_json::to_string_pretty(results)?)
}
