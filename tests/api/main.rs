//! profiteer's integration tests: one binary. Each test starts the real
//! server on a free port against throwaway databases (`profiteer_test_*`),
//! calls it over HTTP, and checks both the answer and what was stored.
// Tests read rows with `Row::get`: a panic is a failed test here, while
// `src/` must use `try_get` (clippy.toml).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod admission;
mod auth;
mod cli;
mod config;
mod docs;
mod edge;
mod events;
mod faults;
mod fuzz;
mod helpers;
mod import_seed;
mod jsonrpc;
mod openrpc;
mod thrift;
mod user;
mod webhooks;
