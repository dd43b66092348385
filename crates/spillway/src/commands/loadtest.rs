//! `spillway loadtest`: turns the arguments into a spillway_loadtest::Config (finding the
//! stack's database servers and metrics endpoint for --stack) and runs it.

use std::io::IsTerminal;
use std::time::Duration;

use spillway_loadtest::{Config, Model, Plan, TaskSet, Wait};

use super::{EXIT_INPUT, EXIT_RUNTIME};
use crate::cli::LoadtestArgs;

pub async fn run(args: LoadtestArgs) -> u8 {
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INPUT;
        }
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let config = Config {
        stop: Some(rx),
        ..config
    };
    // Ctrl-C ends the run early; the reports are still written, as Locust does.
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(true);
        }
    });
    let results = match spillway_loadtest::run(config).await {
        Ok(r) => r,
        Err(spillway_loadtest::LoadtestError::Report(e)) => {
            eprintln!("error: {e}");
            return EXIT_RUNTIME;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INPUT;
        }
    };
    eprint!("{}", spillway_loadtest::summary_table(&results));
    if args.json {
        match spillway_loadtest::report::json(&results) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_RUNTIME;
            }
        }
    }
    // Locust's exit code: 1 when any request failed.
    if results.aggregated.failures > 0 {
        EXIT_RUNTIME
    } else {
        0
    }
}

fn config(args: &LoadtestArgs) -> Result<Config, String> {
    let tasks = match &args.tasks {
        Some(path) => TaskSet::load(path).map_err(|e| e.to_string())?,
        None => TaskSet::default_root(),
    };
    let model = match args.arrival_rate {
        Some(rate) if rate > 0.0 && rate.is_finite() => Model::Open {
            rate,
            max_in_flight: args.max_in_flight.max(1),
        },
        Some(rate) => return Err(format!("--arrival-rate {rate}: must be above 0")),
        None => {
            if !(args.spawn_rate > 0.0 && args.spawn_rate.is_finite()) {
                return Err(format!("--spawn-rate {}: must be above 0", args.spawn_rate));
            }
            Model::Closed {
                users: args.users,
                spawn_rate: args.spawn_rate,
                wait: Wait::parse(&args.wait).map_err(|e| format!("--wait {e}"))?,
            }
        }
    };
    let mut servers: Vec<spillway_loadtest::procfs::FoundServer> = args
        .db_pid
        .iter()
        .map(|pid| spillway_loadtest::procfs::FoundServer {
            name: format!("pid {pid}"),
            pid: *pid,
        })
        .collect();
    let mut metrics_url = args.metrics.clone();
    if let Some(dir) = &args.stack {
        let loaded = spillway_stack::load(dir).map_err(|e| e.to_string())?;
        let state = loaded.state_dir();
        let found = spillway_loadtest::procfs::find_servers(&state);
        if found.is_empty() {
            eprintln!(
                "note: no running managed database under {} (is `spillway up` running?)",
                state.display()
            );
        }
        servers.extend(found);
        if metrics_url.is_none() {
            metrics_url = spillway_supervisor::state::remembered_endpoint(&state)
                .map(|url| format!("{}/_spillway/metrics", url.trim_end_matches('/')));
        }
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let stderr_tty = std::io::stderr().is_terminal();
    Ok(Config {
        host: args.host.clone(),
        tasks,
        plan: Plan {
            model,
            // Without --run-time, until Ctrl-C: ten years stands in for "forever".
            run_time: args
                .run_time
                .unwrap_or(Duration::from_secs(10 * 365 * 24 * 3600)),
            stop_timeout: args.stop_timeout,
            request_timeout: args.timeout,
            seed,
        },
        metrics_url,
        servers,
        compare: args.compare.clone(),
        csv_prefix: args.csv.clone(),
        csv_full_history: args.csv_full_history,
        html: args.html.clone(),
        live: !args.only_summary,
        tty: stderr_tty,
        stop: None,
    })
}
