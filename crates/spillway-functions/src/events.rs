//! The journal of asynchronous (`Event`) invocations: an event is on disk (written, synced,
//! renamed into place) before the caller gets its 202, and removed once it succeeded or was
//! recorded as failed. A crash in between means the event runs again at the next start: at
//! least once, as Lambda's own asynchronous invocations are.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::FunctionsError;
use crate::invoke::InvokeOutcome;
use crate::spec::FunctionSpec;

pub(crate) struct EventJournal {
    dir: PathBuf,
    failures: PathBuf,
}

impl EventJournal {
    pub fn open(state_dir: &Path) -> Result<Self, FunctionsError> {
        let dir = state_dir.join("functions").join("events");
        let failures = state_dir.join("functions").join("failures");
        for d in [&dir, &failures] {
            std::fs::create_dir_all(d).map_err(FunctionsError::io(d))?;
        }
        Ok(Self { dir, failures })
    }

    fn path(&self, function: &str, id: &str) -> PathBuf {
        self.dir.join(function).join(format!("{id}.json"))
    }

    pub fn accept(&self, function: &str, id: &str, payload: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join(function);
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{id}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(payload)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.path(function, id))?;
        std::fs::File::open(&dir)?.sync_all()
    }

    pub fn done(&self, function: &str, id: &str) {
        let _ = std::fs::remove_file(self.path(function, id));
    }

    /// Events accepted and not finished: (function, request id, payload).
    pub fn pending(&self) -> Vec<(String, String, Bytes)> {
        let mut out = Vec::new();
        let Ok(functions) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for f in functions.flatten() {
            let function = f.file_name().to_string_lossy().into_owned();
            let Ok(events) = std::fs::read_dir(f.path()) else {
                continue;
            };
            for e in events.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_suffix(".json")
                    && let Ok(payload) = std::fs::read(e.path())
                {
                    out.push((function.clone(), id.to_owned(), Bytes::from(payload)));
                }
            }
        }
        out
    }

    /// Lambda's destination record for an event whose every attempt failed (the body an
    /// on-failure queue receives, and a line of `functions/failures/<name>.jsonl`).
    pub fn failure_record(
        spec: &FunctionSpec,
        id: &str,
        payload: &[u8],
        last: Option<&InvokeOutcome>,
        attempts: u32,
    ) -> serde_json::Value {
        let parse = |b: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(b)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b).into()))
        };
        serde_json::json!({
            "version": "1.0",
            "timestamp": crate::logs::timestamp(),
            "requestContext": {
                "requestId": id,
                "functionArn": format!("{}:$LATEST", spec.arn),
                "condition": if last.is_some() { "RetriesExhausted" } else { "EventAgeExceeded" },
                "approximateInvokeCount": attempts,
            },
            "requestPayload": parse(payload),
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": last.and_then(|o| o.error).map(|e| e.as_str()),
            },
            "responsePayload": last.map(|o| parse(&o.payload)),
        })
    }

    /// Appends a failure record to `functions/failures/<name>.jsonl` (synced). `why` says why
    /// it is here and not in an on-failure queue, when the function has one.
    pub fn record_failure(
        &self,
        spec: &FunctionSpec,
        id: &str,
        record: &serde_json::Value,
        why: &str,
    ) {
        let path = self.failures.join(format!("{}.jsonl", spec.name));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(format!("{record}\n").as_bytes())?;
                f.sync_all()
            });
        tracing::warn!(
            function = %spec.name,
            request_id = id,
            "an asynchronous invocation failed every attempt; recorded in {}{why}{}",
            path.display(),
            written.err().map(|e| format!(" (not written: {e})")).unwrap_or_default()
        );
    }
}
