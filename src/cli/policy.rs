//! `egresswatch policy`: check policy files.

use std::path::PathBuf;

use clap::Subcommand;

use egresswatch::policy::Policy;

use super::Failure;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file: prints a one-line description, or each error with
    /// file:line:column and how to fix it. Exit code 0 when valid, 2 when not.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the embedded default policy.
    Default,
}

pub fn run(cmd: &PolicyCommand) -> Result<u8, Failure> {
    match cmd {
        PolicyCommand::Check { file } => {
            let policy = Policy::from_file(file)?;
            println!(
                "{}: ok: policy {:?}, {} device(s), {} rule(s)",
                file.display(),
                policy.name().unwrap_or("(unnamed)"),
                policy.devices().len(),
                policy.rules().len()
            );
            Ok(0)
        }
        PolicyCommand::Default => {
            print!("{}", egresswatch::policy::DEFAULT_POLICY_TOML);
            Ok(0)
        }
    }
}
