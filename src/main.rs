//! `profiteer`: the command line is in [`profiteer::cli`]; without a
//! subcommand it serves (`profiteer -H host -P port [-c config.ini]`).

use std::process::ExitCode;

/// See `tikv-jemallocator` in Cargo.toml for why not the system allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    profiteer::logging::init();
    let code = profiteer::cli::main();
    // Lines still queued for stderr are written before the process ends.
    log::logger().flush();
    code
}
