//! `spillway proxy`: a standalone pooler.

use std::io::Write;

use spillway_stack::model::PoolMode;
use spillway_supervisor::standalone::{self, Options};
use tokio::signal::unix::{SignalKind, signal};

use super::{EXIT_INPUT, EXIT_RUNTIME, up};
use crate::cli::{Mode, ProxyArgs, UpArgs};

pub async fn run(args: ProxyArgs, json_logs: bool) -> u8 {
    if let Some(config) = args.config {
        return up::run(
            UpArgs {
                dir: config,
                init: false,
                watch: false,
            },
            json_logs,
        )
        .await;
    }
    let Some(target) = args.target else {
        return EXIT_INPUT;
    };
    let (Ok(mut sigint), Ok(mut sigterm), Ok(mut sighup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("error: cannot install signal handlers");
        return EXIT_RUNTIME;
    };
    let options = Options {
        target,
        listen: args.listen,
        pool_size: args.pool_size,
        mode: match args.mode {
            Mode::Transaction => PoolMode::Transaction,
            Mode::Session => PoolMode::Session,
        },
        users_file: args.users,
        metrics: args.metrics,
        borrow_timeout: args.borrow_timeout,
        idle_client_timeout: args.idle_client_timeout,
        md5: args.md5,
        workers: usize::from(args.workers),
    };
    let proxy = match standalone::start(options).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INPUT;
        }
    };
    println!("proxy listening on {}", proxy.addr);
    if let Some(m) = proxy.metrics_addr {
        println!("metrics on http://{m}/_spillway/metrics");
    }
    let _ = std::io::stdout().flush();
    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = sighup.recv() => match proxy.reload() {
                Ok(n) => tracing::info!(users = n, "reloaded"),
                Err(e) => tracing::error!("reload failed, keeping the old settings: {e}"),
            },
        }
    }
    eprintln!("stopping...");
    proxy.shutdown().await;
    eprintln!("stopped.");
    0
}
