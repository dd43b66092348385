//! One module per command. Each returns the process's exit code: 0 for success, 2 for a problem
//! with the input (stack file, arguments, environment), 1 for a failure while running.

mod iam;
mod init;
mod loadtest;
mod logs;
mod proxy;
mod queue;
mod schema;
mod tables;
mod up;
mod validate;

use std::process::ExitCode;

use crate::cli::Command;

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_INPUT: u8 = 2;

pub async fn run(command: Command, json_logs: bool) -> ExitCode {
    let code = match command {
        Command::Up(args) => up::run(args, json_logs).await,
        Command::Validate(args) => validate::run(&args.dir),
        Command::Schema => schema::run(),
        Command::Init(args) => init::run(&args.dir, args.force),
        Command::Proxy(args) => proxy::run(args, json_logs).await,
        Command::Iam(crate::cli::IamCommand::Simulate(args)) => iam::simulate(&args),
        Command::Logs(args) => logs::run(&args).await,
        Command::Queue(command) => queue::run(&command).await,
        Command::Tables(command) => tables::run(&command).await,
        Command::Loadtest(args) => loadtest::run(args).await,
    };
    ExitCode::from(code)
}

/// Prints a load error: each diagnostic on its own line.
pub fn print_load_error(e: &spillway_stack::LoadError) {
    eprintln!("{e}");
}
