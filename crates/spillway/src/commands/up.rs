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
    println!("spillway is up. Ctrl-C stops it.");
    let _ = std::io::stdout().flush();

    let code = tokio::select! {
        _ = sigint.recv() => 0,
        _ = sigterm.recv() => 0,
        why = running.unexpected_exit() => {
            tracing::error!("{why}");
            EXIT_RUNTIME
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
    for r in rows {
        println!("{:w0$}  {:w1$}  {}", r.resource, r.endpoint, r.credentials);
    }
}
