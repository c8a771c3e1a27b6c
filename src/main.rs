//! The `egresswatch` binary: parses the command line, runs a subcommand, and turns its outcome
//! into an exit code. Everything else lives in the library.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Logs go to standard error only, never into the JSON output.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let outcome = match &cli.command {
        Command::Replay(args) => cli::replay::run(args),
        Command::Live(args) => cli::live::run(args),
        Command::Interfaces(args) => cli::interfaces::run(args),
        Command::Lookup(args) => cli::lookup::run(args),
        Command::Policy(cmd) => cli::policy::run(cmd),
        Command::Geoip(cmd) => cli::geoip::run(cmd),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("egresswatch: error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
