//! `spillway`: the binary. Parses arguments, sets up logging and hands off to the libraries;
//! all behaviour lives in the crates it calls.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json_logs = matches!(cli.global.log_format, cli::LogFormat::Json);
    runtime.block_on(commands::run(cli.command, json_logs))
}
