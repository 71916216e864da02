//! profiteer: an account service for backend teams. Other services call it
//! over HTTP with JSON-RPC 2.0 to register accounts, log users in, check
//! tokens and permissions, and read user information.
//!
//! A request's path, top to bottom: `http` (poller threads, router,
//! bounded queue, workers) -> `rpc` (envelope, dispatch, one module per namespace) ->
//! `model` (caches, parallel fetch and assembly) -> `store` (PostgreSQL,
//! MongoDB, Redis) -> `error` (the one mapping to JSON-RPC codes).

pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod hashlane;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod mfa;
pub mod model;
pub mod retention;
pub mod rpc;
pub mod services;
pub mod store;
pub mod thrift;
pub mod webhooks;
pub mod window;

pub use app::App;
pub use config::Config;
