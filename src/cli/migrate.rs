//! `profiteer migrate`: applies pending schema migrations and exits, so an
//! upgrade can migrate as its own step before the new binary serves (start-up
//! would apply them too). Refuses a database newer than this build.

use super::Failure;
use crate::store::pg;
use crate::Config;

pub fn run(config: Config) -> Result<(), Failure> {
    let mut client = pg::connect_one(&config.pg).map_err(Failure::Failed)?;
    let version = pg::migrate(&mut client).map_err(Failure::Failed)?;
    println!("schema at version {version}");
    Ok(())
}
