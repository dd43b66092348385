//! The JSON schema of `spillway.toml`, for editor completion (Taplo, Even Better TOML).

use crate::model::Stack;

/// The schema as pretty JSON with a trailing newline, exactly as checked in at
/// `schema/spillway.schema.json`.
pub fn json() -> String {
    let schema = schemars::schema_for!(Stack);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
