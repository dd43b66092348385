//! `spillway logs FUNCTION`: the function's log file, filtered by age, optionally followed.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use super::{EXIT_INPUT, EXIT_RUNTIME, print_load_error};
use crate::cli::LogsArgs;

/// Unix seconds of a line's leading `2026-11-22T08:00:00.123Z`.
fn line_time(line: &str) -> Option<i64> {
    let stamp = line.split(' ').next()?;
    let whole = stamp.split('.').next()?;
    spillway_identity::time::parse_iso8601(&format!("{whole}Z"))
}

pub async fn run(args: &LogsArgs) -> u8 {
    let loaded = match spillway_stack::load(&args.stack) {
        Ok(l) => l,
        Err(e) => {
            print_load_error(&e);
            return EXIT_INPUT;
        }
    };
    if !loaded.stack.functions.contains_key(&args.function) {
        let names: Vec<&str> = loaded.stack.functions.keys().map(String::as_str).collect();
        eprintln!(
            "error: the stack has no function {:?} (its functions: {})",
            args.function,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
        return EXIT_INPUT;
    }
    let path = spillway_functions::logs::log_path(&loaded.state_dir(), &args.function);
    let cutoff = spillway_identity::time::now() - args.since.as_secs() as i64;
    let mut offset = 0u64;
    let mut partial = String::new();
    let mut stdout = std::io::stdout();
    loop {
        match std::fs::File::open(&path) {
            Ok(mut f) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                if len < offset {
                    // The file was replaced or truncated: start over.
                    offset = 0;
                    partial.clear();
                }
                let mut chunk = Vec::new();
                if f.seek(SeekFrom::Start(offset)).is_ok() && f.read_to_end(&mut chunk).is_ok() {
                    offset += chunk.len() as u64;
                    partial.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = partial.find('\n') {
                        let line: String = partial.drain(..=end).collect();
                        if line_time(&line).is_none_or(|t| t >= cutoff)
                            && stdout.write_all(line.as_bytes()).is_err()
                        {
                            // The reader went away (a closed pipe): nothing more to do.
                            return 0;
                        }
                    }
                    let _ = stdout.flush();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !args.follow {
                    eprintln!("{} has no log yet: the function has not run", args.function);
                    return 0;
                }
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return EXIT_RUNTIME;
            }
        }
        if !args.follow {
            return 0;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::signal::ctrl_c() => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_are_dated_by_their_leading_timestamp() {
        assert_eq!(
            super::line_time("2026-11-22T08:00:00.123Z 2026/11/22/[$LATEST]ab START"),
            spillway_identity::time::parse_iso8601("2026-11-22T08:00:00Z")
        );
        assert_eq!(super::line_time("not a time"), None);
    }
}
