//! `spillway up`: load, start in order, print endpoints, wait for a signal, stop in reverse.

use std::io::{BufRead, IsTerminal, Write};

use spillway_stack::{LoadError, stack_file};
use tokio::signal::unix::{SignalKind, signal};

use super::{EXIT_INPUT, EXIT_RUNTIME, init, print_load_error};
use crate::cli::UpArgs;

pub async fn run(args: UpArgs, json_logs: bool) -> u8 {
    let file = stack_file(&args.dir);
    if !file.exists() && args.dir.is_dir() {
        if args.init || ask_to_init(&args.dir) {
            let code = init::write(&args.dir);
            if code != 0 {
                return code;
            }
        } else {
            eprintln!(
                "{}: no stack file here; `spillway init {}` writes the quickstart stack (or run `spillway up --init`)",
                file.display(),
                args.dir.display()
            );
            return EXIT_INPUT;
        }
    }
    let loaded = match spillway_stack::load(&args.dir) {
        Ok(l) => l,
        Err(e @ LoadError::Invalid(_)) | Err(e @ LoadError::Io { .. }) => {
            print_load_error(&e);
            return EXIT_INPUT;
        }
    };

    // Install handlers before starting anything, so a signal during start is ours to handle.
    let (mut sigint, mut sigterm) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        _ => {
            eprintln!("error: cannot install signal handlers");
            return EXIT_RUNTIME;
        }
    };
    let name = loaded.name();
    tracing::info!(stack = %name, file = %loaded.file.display(), "starting");
    // Progress is for a person; in JSON mode it is a log event like everything else.
    let progress = |line: &str| {
        if json_logs {
            tracing::info!(progress = true, "{line}");
        } else {
            eprintln!("  {line}");
        }
    };
    let started = tokio::select! {
        r = spillway_supervisor::start(&loaded, &progress) => r,
        _ = sigint.recv() => { eprintln!("interrupted during start"); return EXIT_RUNTIME; }
        _ = sigterm.recv() => { eprintln!("terminated during start"); return EXIT_RUNTIME; }
    };
    let mut running = match started {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INPUT;
        }
    };
    print_table(&name, running.rows());
    for r in &running.not_served {
        tracing::warn!(resource = %r, "declared in the stack but not served by this build yet");
    }
    if args.watch {
        match running.functions() {
            Some(f) => f.watch(),
            None => tracing::warn!("--watch: the stack has no functions to rebuild"),
        }
    }
    println!("spillway is up. Ctrl-C stops it.");
    let _ = std::io::stdout().flush();

    // SIGHUP, or a change to the stack file, applies the file again without a restart.
    let Ok(mut sighup) = signal(SignalKind::hangup()) else {
        eprintln!("error: cannot install signal handlers");
        running.shutdown().await;
        return EXIT_RUNTIME;
    };
    let mut last_change = modified(&loaded.file);
    let mut poll = tokio::time::interval(std::time::Duration::from_secs(2));
    let code = loop {
        tokio::select! {
            _ = sigint.recv() => break 0,
            _ = sigterm.recv() => break 0,
            why = running.unexpected_exit() => {
                tracing::error!("{why}");
                break EXIT_RUNTIME;
            }
            _ = sighup.recv() => reload(&args.dir, &mut running),
            _ = poll.tick() => {
                let now = modified(&loaded.file);
                if now != last_change {
                    last_change = now;
                    reload(&args.dir, &mut running);
                }
            }
        }
    };
    eprintln!("stopping...");
    running.shutdown().await;
    eprintln!("stopped.");
    code
}

fn ask_to_init(dir: &std::path::Path) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!(
        "{} has no spillway.toml. Write the quickstart stack there? [y/N] ",
        dir.display()
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

fn print_table(name: &str, rows: &[spillway_supervisor::Row]) {
    let w0 = rows
        .iter()
        .map(|r| r.resource.len())
        .max()
        .unwrap_or(0)
        .max("RESOURCE".len());
    let w1 = rows
        .iter()
        .map(|r| r.endpoint.len())
        .max()
        .unwrap_or(0)
        .max("ENDPOINT".len());
    println!("stack {name}");
    println!("{:w0$}  {:w1$}  CREDENTIALS", "RESOURCE", "ENDPOINT");
    for line in shown_rows(rows) {
        match line {
            Shown::Row(r) => println!("{:w0$}  {:w1$}  {}", r.resource, r.endpoint, r.credentials),
            Shown::More { kind, count } => {
                println!(
                    "{:w0$}  ({count} more {kind}: see the stack file)",
                    format!("{kind}.*")
                )
            }
        }
    }
}

/// Rows of one kind (`secrets`, `users`...) shown before the rest are summed up: a stack of 200
/// tenants has 200 secrets, and a start-up table of 400 lines hides the endpoints a user came
/// for. Every resource is still in the stack file and reachable through its API.
const ROWS_PER_KIND: usize = 10;

enum Shown<'a> {
    Row(&'a spillway_supervisor::Row),
    More { kind: &'a str, count: usize },
}

/// The table's lines: at most ROWS_PER_KIND rows of each kind, then a count of the rest (rows
/// of a kind are consecutive, as the stack lists them).
fn shown_rows(rows: &[spillway_supervisor::Row]) -> Vec<Shown<'_>> {
    let kind = |r: &spillway_supervisor::Row| -> usize {
        r.resource.find('.').unwrap_or(r.resource.len())
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let k = &rows[i].resource[..kind(&rows[i])];
        let run = rows[i..]
            .iter()
            .take_while(|r| &r.resource[..kind(r)] == k)
            .count();
        out.extend(rows[i..i + run.min(ROWS_PER_KIND)].iter().map(Shown::Row));
        if run > ROWS_PER_KIND {
            out.push(Shown::More {
                kind: k,
                count: run - ROWS_PER_KIND,
            });
        }
        i += run;
    }
    out
}

fn modified(file: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

/// Loads the stack file again and applies it; a file with errors is reported and ignored.
fn reload(dir: &std::path::Path, running: &mut spillway_supervisor::Running) {
    match spillway_stack::load(dir) {
        Ok(loaded) => match running.reload(&loaded) {
            Ok(notes) => {
                for n in notes {
                    tracing::warn!("{n}");
                }
                tracing::info!(file = %loaded.file.display(), "reloaded");
            }
            Err(e) => tracing::error!("reload failed, keeping the running settings: {e}"),
        },
        Err(e) => tracing::error!("the stack file has errors; keeping the running settings:\n{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(resource: &str) -> spillway_supervisor::Row {
        spillway_supervisor::Row {
            resource: resource.into(),
            endpoint: String::new(),
            credentials: String::new(),
        }
    }

    #[test]
    fn a_kind_with_many_rows_shows_ten_and_a_count() {
        let mut rows: Vec<_> = (0..25)
            .map(|i| row(&format!("secrets.tenant-{i}")))
            .collect();
        rows.push(row("proxies.main"));
        rows.push(row("proxies.main.endpoints.reader"));
        let shown = shown_rows(&rows);
        let names: Vec<String> = shown
            .iter()
            .map(|s| match s {
                Shown::Row(r) => r.resource.clone(),
                Shown::More { kind, count } => format!("{kind}+{count}"),
            })
            .collect();
        assert_eq!(names.len(), 13);
        assert_eq!(names[9], "secrets.tenant-9");
        assert_eq!(names[10], "secrets+15");
        assert_eq!(
            names[11..],
            ["proxies.main", "proxies.main.endpoints.reader"]
        );
    }
}
