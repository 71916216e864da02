//! `profiteer`: the command line is in [`profiteer::cli`]; without a
//! subcommand it serves (`profiteer -H host -P port [-c config.ini]`).

use std::process::ExitCode;

fn main() -> ExitCode {
    profiteer::logging::init();
    let code = profiteer::cli::main();
    // Lines still queued for stderr are written before the process ends.
    log::logger().flush();
    code
}
