//! Access logs with API Gateway's `$context` variables. A format is text with `$context.name`
//! placeholders; a format that is a JSON object gets its values JSON-escaped, so a user agent
//! with a quote in it cannot break the line (API Gateway leaves that to the user).

use std::io::Write as _;
use std::sync::Mutex;

use crate::spec::{AccessLogSpec, LogDestination};

/// What one request did, for `$context` variables.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub values: Vec<(&'static str, String)>,
    /// Without an access log only what metrics need is kept: building the rest cost about a
    /// tenth of a mock route's CPU.
    pub metrics_only: bool,
}

/// The values metrics read even when nothing is logged.
const FOR_METRICS: &[&str] = &["stage", "integrationLatency"];

impl Record {
    /// A record that keeps only what metrics need.
    pub fn for_metrics() -> Self {
        Self {
            values: Vec::new(),
            metrics_only: true,
        }
    }

    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        if self.metrics_only && !FOR_METRICS.contains(&name) {
            return;
        }
        let value = value.into();
        match self.values.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Replaces each `$context.x.y` with its value, `-` when it has none (as API Gateway does).
pub fn render(format: &str, record: &Record) -> String {
    let json = format.trim_start().starts_with('{');
    let mut out = String::with_capacity(format.len() + 64);
    let mut rest = format;
    while let Some(at) = rest.find("$context.") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "$context.".len()..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
            .unwrap_or(after.len());
        // A sentence's full stop is not part of the name.
        let name = after[..len].trim_end_matches('.');
        let value = record.get(name).unwrap_or("-");
        if json {
            let quoted = serde_json::Value::String(value.to_owned()).to_string();
            out.push_str(&quoted[1..quoted.len() - 1]);
        } else {
            out.push_str(value);
        }
        rest = &after[name.len()..];
    }
    out.push_str(rest);
    out
}

pub struct AccessLog {
    format: String,
    sink: Sink,
}

enum Sink {
    Stdout,
    File(Mutex<std::fs::File>),
}

impl AccessLog {
    pub fn open(spec: &AccessLogSpec) -> std::io::Result<Self> {
        let sink = match &spec.destination {
            LogDestination::Stdout => Sink::Stdout,
            LogDestination::File(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Sink::File(Mutex::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?,
                ))
            }
        };
        Ok(Self {
            format: spec.format.clone(),
            sink,
        })
    }

    /// Writes one line. Lines are small and appended with one write, so a short blocking
    /// write on the request's task is cheaper than a channel to a writer task.
    pub fn write(&self, record: &Record) {
        let mut line = render(&self.format, record);
        line.push('\n');
        let result = match &self.sink {
            Sink::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            Sink::File(f) => match f.lock() {
                Ok(mut f) => f.write_all(line.as_bytes()),
                Err(_) => Ok(()),
            },
        };
        if let Err(e) = result {
            tracing::warn!("could not write an access log line: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_and_json_formats() {
        let mut r = Record::default();
        r.set("requestId", "abc");
        r.set("identity.sourceIp", "127.0.0.1");
        r.set("status", "200");
        r.set("identity.userAgent", "evil\"agent");
        assert_eq!(
            render(
                "$context.identity.sourceIp - [$context.requestTime] $context.status $context.requestId.",
                &r
            ),
            "127.0.0.1 - [-] 200 abc."
        );
        assert_eq!(
            render(
                r#"{"id":"$context.requestId","ua":"$context.identity.userAgent","e":"$context.error.message"}"#,
                &r
            ),
            r#"{"id":"abc","ua":"evil\"agent","e":"-"}"#
        );
    }
}
