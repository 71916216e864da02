//! The command line. Without a subcommand `profiteer [-H host] [-P port]
//! [-c path]` serves, exactly as before subcommands existed; the operator
//! commands (`check-config`, `migrate`, `create-admin`, `import-seed`)
//! share `-c`. Each
//! command lives in its own module and returns a [`Failure`] that says which
//! exit code it deserves.

mod check_config;
mod create_admin;
mod import_seed;
mod migrate;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "profiteer",
    version,
    about = "An account service: JSON-RPC 2.0 over HTTP on PostgreSQL, MongoDB and Redis.",
    after_help = "Without a command, profiteer serves until SIGTERM or SIGINT (exit 0).\n\
                  Exit codes: 0 done; 1 the command failed (e.g. a database is down); \
                  2 bad arguments or a bad config."
)]
pub struct Cli {
    /// Address to listen on [default: [SERVER] HOST, else 127.0.0.1]
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Option<String>,

    /// Port to listen on; 0 picks a free one [default: [SERVER] PORT, else 8080]
    #[arg(short = 'P', long = "port", value_name = "PORT")]
    pub port: Option<u16>,

    /// Config file (ini); every key can be overridden as PROFITEER_<SECTION>__<KEY>
    #[arg(
        short = 'c',
        long = "config",
        value_name = "PATH",
        global = true,
        env = "PROFITEER_CONFIG_PATH"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config and print the effective values, secrets masked
    /// (exit 0 if valid, 2 if not); connects to nothing
    CheckConfig,
    /// Apply pending schema migrations to PostgreSQL, then exit
    Migrate,
    /// Create an account with the admin role, or grant the role to an
    /// existing account (its password is then left unchanged). A new
    /// account's password is read from the first line of stdin.
    CreateAdmin(create_admin::Args),
    /// Copy the Python service's users (tables user_00 … user_99) into
    /// profiteer, keeping ids, states and creation times; resumable. Prints
    /// progress to stderr and a report of refused rows to stdout
    ImportSeed(import_seed::Args),
}

/// Why a command stopped, and the exit code that says so.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments, a bad config, or the service refusing to start: exit 2.
    Refused(String),
    /// The command could not do its work (a database down, a refused
    /// password): exit 1.
    Failed(String),
}

impl Failure {
    fn exit(self) -> ExitCode {
        match self {
            Failure::Refused(message) => {
                log::error!("{message}");
                ExitCode::from(2)
            }
            Failure::Failed(message) => {
                log::error!("{message}");
                ExitCode::from(1)
            }
        }
    }
}

impl Cli {
    /// Loads the config named by `-c` (or `PROFITEER_CONFIG_PATH`) and
    /// applies `-H`/`-P`.
    fn config(&self) -> Result<Config, Failure> {
        let path = self.config.as_ref().ok_or_else(|| {
            Failure::Refused("no config file: pass -c path or set PROFITEER_CONFIG_PATH".into())
        })?;
        let mut config =
            Config::load(path).map_err(|e| Failure::Refused(format!("{}: {e}", path.display())))?;
        config.override_listen(self.host.clone(), self.port);
        Ok(config)
    }
}

/// Parses the arguments (clap prints help, version and usage errors and
/// exits 0 or 2 itself), then runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => cli.config().and_then(serve::run),
        Some(Command::CheckConfig) => check_config::run(&cli),
        Some(Command::Migrate) => cli.config().and_then(migrate::run),
        Some(Command::CreateAdmin(args)) => cli.config().and_then(|c| create_admin::run(c, args)),
        Some(Command::ImportSeed(args)) => cli.config().and_then(|c| import_seed::run(c, args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_old_form_still_parses_and_c_is_shared() {
        let cli =
            Cli::try_parse_from(["profiteer", "-H", "0.0.0.0", "-P", "9", "-c", "x.ini"]).unwrap();
        assert_eq!(cli.host.as_deref(), Some("0.0.0.0"));
        assert_eq!(cli.port, Some(9));
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["profiteer", "migrate", "-c", "y.ini"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Migrate)));
        assert_eq!(cli.config, Some(PathBuf::from("y.ini")));
        let cli = Cli::try_parse_from([
            "profiteer",
            "-c",
            "z.ini",
            "create-admin",
            "--username",
            "root",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::CreateAdmin(_))));
    }
}
