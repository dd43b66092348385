//! Function logs: every line an instance prints, plus Lambda's START/END/REPORT lines, go to
//! `<state>/logs/functions/<name>.log` as `<RFC 3339 time> <log stream> <message>` (the shape
//! `aws logs tail` prints), to spillway's own log, and to the running invocation's buffer, whose
//! last 4 KB `LogType=Tail` returns.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What `LogType=Tail` returns: the last 4 KB of the invocation's log.
pub const TAIL_BYTES: usize = 4096;
/// An invocation's buffer keeps at most this much (more than the tail needs, bounded).
const BUFFER_BYTES: usize = 64 * 1024;
/// Longer lines are cut into pieces of this size (CloudWatch's event limit is 256 KB).
pub(crate) const MAX_LINE: usize = 256 * 1024;

/// One function's log file.
pub(crate) struct LogSink {
    function: String,
    path: PathBuf,
    file: Mutex<Option<File>>,
}

/// The log file of `function` under `state_dir`.
pub fn log_path(state_dir: &Path, function: &str) -> PathBuf {
    state_dir
        .join("logs")
        .join("functions")
        .join(format!("{function}.log"))
}

/// `2026-11-22T08:00:00.123Z` of now.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = spillway_identity::time::format_iso8601(now.as_secs() as i64);
    // `...:SSZ` → `...:SS.mmmZ`
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), now.subsec_millis())
}

impl LogSink {
    pub fn open(state_dir: &Path, function: &str) -> Arc<Self> {
        let path = log_path(state_dir, function);
        // A function's output may hold anything it printed (tokens, personal data): only
        // spillway's user may read it (directories 0700, files 0600, also when they existed).
        let file = path
            .parent()
            .map(private_dirs)
            .transpose()
            .and_then(|_| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&path)
            })
            .and_then(|f| {
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                Ok(f)
            });
        let file = match file {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(function, "cannot write {}: {e}", path.display());
                None
            }
        };
        Arc::new(Self {
            function: function.to_owned(),
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One line of output (`platform` lines are spillway's START/END/REPORT).
    pub fn write(&self, stream: &str, message: &str, platform: bool) {
        if platform {
            tracing::debug!(target: "spillway::function", function = %self.function, "{message}");
        } else {
            tracing::info!(target: "spillway::function", function = %self.function, "{message}");
        }
        let line = format!("{} {stream} {message}\n", timestamp());
        if let Ok(mut f) = self.file.lock()
            && let Some(f) = f.as_mut()
        {
            // One write per line, so lines from concurrent instances never interleave.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// `logs/functions` and `logs`, made if missing, 0700.
fn private_dirs(functions: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(functions)?;
    for d in [Some(functions), functions.parent()].into_iter().flatten() {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The log of one instance: its stream name and the invocation it is running.
pub(crate) struct InstanceLog {
    pub sink: Arc<LogSink>,
    pub stream: String,
    current: Mutex<Option<String>>,
}

impl InstanceLog {
    pub fn new(sink: Arc<LogSink>, stream: String) -> Arc<Self> {
        Arc::new(Self {
            sink,
            stream,
            current: Mutex::new(None),
        })
    }

    pub fn line(&self, message: &str) {
        self.write(message, false);
    }

    pub fn platform(&self, message: &str) {
        self.write(message, true);
    }

    fn write(&self, message: &str, platform: bool) {
        self.sink.write(&self.stream, message, platform);
        if let Ok(mut c) = self.current.lock()
            && let Some(buf) = c.as_mut()
        {
            buf.push_str(message);
            buf.push('\n');
            if buf.len() > BUFFER_BYTES {
                let cut = floor_char_boundary(buf, buf.len() - BUFFER_BYTES / 2);
                buf.drain(..cut);
            }
        }
    }

    /// Starts collecting lines for an invocation.
    pub fn begin(&self) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some(String::new());
        }
    }

    /// Stops collecting; returns the last [`TAIL_BYTES`] of what was collected.
    pub fn end(&self) -> String {
        let buf = self
            .current
            .lock()
            .ok()
            .and_then(|mut c| c.take())
            .unwrap_or_default();
        let start = floor_char_boundary(&buf, buf.len().saturating_sub(TAIL_BYTES));
        // Cutting at a char boundary at or below the mark may keep a few bytes too many.
        let mut tail = &buf[start..];
        while tail.len() > TAIL_BYTES {
            let mut chars = tail.chars();
            chars.next();
            tail = chars.as_str();
        }
        tail.to_owned()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    #[test]
    fn function_logs_are_readable_by_spillway_s_user_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sink = LogSink::open(dir.path(), "f");
        sink.write("stream", "a secret it printed", false);
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        assert_eq!(mode(sink.path()), 0o600);
        assert_eq!(mode(&dir.path().join("logs")), 0o700);
        assert_eq!(mode(&dir.path().join("logs/functions")), 0o700);
    }

    use super::*;

    #[test]
    fn the_tail_is_at_most_four_kilobytes_of_whole_characters() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = InstanceLog::new(LogSink::open(dir.path(), "f"), "s".into());
        log.begin();
        for _ in 0..2000 {
            log.line("héllo wörld");
        }
        let tail = log.end();
        assert!(tail.len() <= TAIL_BYTES && tail.len() > TAIL_BYTES - 16);
        assert!(tail.ends_with("héllo wörld\n"));
        let file =
            std::fs::read_to_string(log_path(dir.path(), "f")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.lines().count(), 2000);
        assert!(file.lines().all(|l| l.ends_with(" s héllo wörld")));
    }
}
