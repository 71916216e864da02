//! `profiteer check-config`: validates the config exactly as start-up does
//! and prints the values in effect (file, environment, defaults) with every
//! secret masked. Connects to nothing, so it can run as `ExecStartPre`.

use super::{Cli, Failure};

pub fn run(cli: &Cli) -> Result<(), Failure> {
    let config = cli.config()?;
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    print!("{}", config.render_masked());
    let path = cli
        .config
        .as_ref()
        .map_or(String::new(), |p| p.display().to_string());
    log::info!("{path}: the configuration is valid");
    Ok(())
}
