//! No subcommand: start the service and stop it cleanly on SIGTERM or
//! SIGINT: `/readyz` turns 503, requests are still served for `[SERVER]
//! DRAIN_S`, then the listener closes and in-flight work finishes (exit 0).

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::Failure;
use crate::{App, Config};

pub fn run(config: Config) -> Result<(), Failure> {
    // Every start-up problem (a database down, a schema too new) exits 2,
    // as it did before the subcommands existed.
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| Failure::Refused(format!("cannot handle signals: {e}")))?;
    let app = App::build(config).map_err(Failure::Refused)?;
    log::info!("listening on {}", app.addr());
    if let Some(signal) = signals.forever().next() {
        log::info!("signal {signal}: draining, then stopping");
    }
    app.drain();
    app.shutdown();
    log::info!("stopped");
    Ok(())
}
