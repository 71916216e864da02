//! Fuzzing the real binary over HTTP: random `/rpc` bodies (raw bytes,
//! mangled JSON, calls of every method `rpc.discover` lists, with plausible
//! and hostile params) against real PostgreSQL, MongoDB and Redis. No 500,
//! no internal error (-32603), no panic in the log, and the server answers
//! afterwards. Bounded in time: `PROFITEER_FUZZ_SECS` (default 30) of
//! requests, then the remaining cases are skipped. Any input it ever breaks
//! on is kept as a named test at the end of this file.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use crate::helpers::*;

#[path = "../fuzz/strategies.rs"]
mod strategies;

fn budget() -> Duration {
    let secs = std::env::var("PROFITEER_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// Every method `rpc.discover` lists, with its params' names.
fn method_table(app: &TestApp) -> Vec<strategies::MethodParams> {
    let doc = app.ok("rpc.discover", json!({}));
    doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let names = m["params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            (m["name"].as_str().unwrap().to_string(), names)
        })
        .collect()
}

fn post_raw(app: &TestApp, body: &[u8]) -> Http {
    let head = format!(
        "POST /rpc HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    http(app.addr, &head, body)
}

fn answer_is_sound(app: &TestApp, body: &[u8]) -> Result<(), TestCaseError> {
    let answer = post_raw(app, body);
    prop_assert!(
        [200, 204, 400, 413, 503].contains(&answer.status),
        "status {}: {}",
        answer.status,
        answer.text()
    );
    if answer.status != 200 {
        return Ok(());
    }
    let parsed: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {}", answer.text())))?;
    let responses = match parsed {
        Value::Array(items) => items,
        single => vec![single],
    };
    for r in responses {
        prop_assert_eq!(&r["jsonrpc"], "2.0", "{}", r);
        prop_assert_ne!(&r["error"]["code"], -32603, "{}", r);
    }
    Ok(())
}

#[test]
fn random_bodies_never_get_a_500_an_internal_error_or_a_panic() {
    let app = spawn_app();
    app.register("alice");
    let methods = method_table(&app);
    assert!(methods.len() >= 20, "{methods:?}");
    let until = Instant::now() + budget();
    let sent = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 20_000,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let result = runner.run(&strategies::body(methods), |body| {
        if Instant::now() >= until {
            return Ok(());
        }
        sent.set(sent.get() + 1);
        answer_is_sound(&app, &body)
    });
    if let Err(e) = result {
        panic!("{e}\nserver log:\n{}", app.logs());
    }
    let sent = sent.get();
    eprintln!("fuzz: {sent} bodies sent");
    assert!(sent >= 50, "only {sent} bodies in the time budget");
    let logs = app.logs();
    assert!(!logs.contains("panicked"), "a panic in the log:\n{logs}");
    assert!(
        !logs.contains("internal error"),
        "an internal error in the log:\n{logs}"
    );
    assert_eq!(app.ok("ping", json!({})), "pong");
}
