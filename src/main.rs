//! `profiteer -H host -P port [-c config.ini]`: loads the config (the path
//! from `-c`, else `PROFITEER_CONFIG_PATH`), starts the service, and stops it
//! cleanly on SIGTERM or SIGINT (exit 0). Start-up problems exit 2 with a
//! message that says what to fix.

use std::path::PathBuf;
use std::process::ExitCode;

use profiteer::{App, Config};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str = "usage: profiteer [-H host] [-P port] [-c config.ini]
  -H host   address to listen on (default [SERVER] HOST, else 127.0.0.1)
  -P port   port to listen on; 0 picks a free one (default [SERVER] PORT, else 8080)
  -c path   config file (default: $PROFITEER_CONFIG_PATH)";

/// Command-line arguments, validated before anything starts.
struct Args {
    host: Option<String>,
    port: Option<u16>,
    config: Option<PathBuf>,
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        host: None,
        port: None,
        config: None,
    };
    while let Some(flag) = raw.next() {
        let mut value = |name: &str| raw.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "-H" | "--host" => args.host = Some(value("-H")?),
            "-P" | "--port" => {
                let v = value("-P")?;
                args.port = Some(
                    v.parse()
                        .map_err(|_| format!("-P {v}: expected a port number"))?,
                );
            }
            "-c" | "--config" => args.config = Some(PathBuf::from(value("-c")?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args(std::env::args().skip(1))?;
    let path = args
        .config
        .or_else(|| std::env::var_os("PROFITEER_CONFIG_PATH").map(PathBuf::from))
        .ok_or("no config file: pass -c path or set PROFITEER_CONFIG_PATH")?;
    let mut config = Config::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(host) = args.host {
        config.server.host = host;
    }
    if let Some(port) = args.port {
        config.server.port = port;
    }
    let mut signals =
        Signals::new([SIGTERM, SIGINT]).map_err(|e| format!("cannot handle signals: {e}"))?;
    let app = App::build(config)?;
    log::info!("listening on {}", app.addr());
    if let Some(signal) = signals.forever().next() {
        log::info!("signal {signal}: finishing in-flight requests, then stopping");
    }
    app.shutdown();
    log::info!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    profiteer::logging::init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            log::error!("{message}");
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
