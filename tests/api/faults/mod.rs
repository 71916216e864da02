//! Faults: private instances of Redis, MongoDB and PostgreSQL (see
//! [`private`]) stopped, stalled and restarted while profiteer serves, and
//! what the contract's "Guarantees under faults" promise holds throughout.

mod balancer;
mod crash;
mod dependencies;
mod drain;
mod erasure;
mod failover;
mod private;
mod redis_cluster;
mod replicas;
mod retention;
mod revocation;

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

/// Whether `token` introspects active on `app`.
pub fn active(app: &TestApp, token: &str) -> bool {
    let r = app.ok("auth.introspect", json!({"token": token}));
    r["active"] == true
}

/// Polls until `token` is inactive on `app`; how long that took, or `None`
/// if it was still active after `within`.
pub fn dead_within(app: &TestApp, token: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() <= within {
        if !active(app, token) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
