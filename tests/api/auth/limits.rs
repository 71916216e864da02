//! Failed-login limits (`[AUTH] LOGIN_MAX_FAILS` = 3 here): per account and
//! address, per address, per account, and never longer than the window.
//! Strangers, races and a dead Redis: `lockout.rs`.

use std::time::Duration;

use serde_json::json;

use super::*;

pub fn limited_app(window_s: u64) -> TestApp {
    spawn_with(Options {
        ini: format!("[AUTH]\nLOGIN_MAX_FAILS = 3\nLOGIN_WINDOW_S = {window_s}\n"),
        ..Options::default()
    })
}

pub fn fail_from(app: &TestApp, login: &str, ip: Option<&str>) {
    let mut params = json!({"username": login, "password": "not the right one"});
    if let Some(ip) = ip {
        params["ip"] = json!(ip);
    }
    app.err("auth.login", params, -32011);
}

/// The `retry_after` of a login that must be rate limited.
pub fn limited(app: &TestApp, login: &str, ip: Option<&str>) -> u64 {
    let mut params = json!({"username": login, "password": PASSWORD});
    if let Some(ip) = ip {
        params["ip"] = json!(ip);
    }
    let e = app.err("auth.login", params, -32029);
    e["data"]["retry_after"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retry_after in {e}"))
}

#[test]
fn login_failures_past_the_limit_are_rate_limited_for_that_user_and_ip() {
    let app = limited_app(900);
    app.register("alice");
    // However the name is cased, it is one account's count.
    for login in ["alice", "ALICE", "Alice"] {
        fail_from(&app, login, Some("198.51.100.1"));
    }

    // Even the right password waits once the pair is over its limit.
    let retry_after = limited(&app, "alice", Some("198.51.100.1"));
    assert!(
        (1..=900).contains(&retry_after),
        "retry_after = {retry_after}"
    );
    // The counter lives in Redis with a TTL: no permanent lockout.
    let key = format!("{}rl:pair:alice|198.51.100.1", app.prefix);
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut app.redis()).unwrap();
    assert!((1..=900).contains(&ttl), "TTL of {key} = {ttl}");

    // Another address is not kept out by this one's failures.
    login_from(&app, "alice", PASSWORD, "198.51.100.2");
}

#[test]
fn failures_by_username_and_by_email_count_against_one_account() {
    let app = limited_app(900);
    app.ok(
        "auth.register",
        json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}),
    );
    let ip = Some("198.51.100.1");
    fail_from(&app, "alice", ip);
    fail_from(&app, "alice@example.com", ip);
    fail_from(&app, "alice", ip);

    // Switching between the two names must not buy more guesses.
    limited(&app, "alice@example.com", ip);
    limited(&app, "alice", ip);
}

#[test]
fn failures_across_many_accounts_from_one_ip_hit_the_per_ip_ceiling() {
    let app = limited_app(900);
    app.register("bob");
    // Four times LOGIN_MAX_FAILS from one address, never three on one name.
    for i in 0..12 {
        fail_from(&app, &format!("user{}", i / 2), Some("203.0.113.5"));
    }
    limited(&app, "bob", Some("203.0.113.5"));
    login_from(&app, "bob", PASSWORD, "203.0.113.6");
}

#[test]
fn without_an_ip_param_the_tcp_peer_address_is_counted() {
    let app = limited_app(900);
    app.register("alice");
    for _ in 0..3 {
        fail_from(&app, "alice", None);
    }
    // The test client's address (127.0.0.1) stood for the missing `ip`:
    // its (login, ip) pair is at its limit.
    limited(&app, "alice", None);
    let key = format!("{}rl:pair:alice|127.0.0.1", app.prefix);
    let count: i64 = redis::cmd("GET").arg(&key).query(&mut app.redis()).unwrap();
    assert_eq!(count, 3, "{key}");
    // a caller naming another address is not kept out by this one
    login_from(&app, "alice", PASSWORD, "192.0.2.77");
}

#[test]
fn guesses_spread_over_accounts_without_an_ip_hit_the_per_address_ceiling() {
    let app = limited_app(900);
    app.register("eve");
    // 12 = 4 x LOGIN_MAX_FAILS guesses from one TCP address, 3 on each of
    // four accounts: the per-address ceiling stops a guess on a fifth.
    for i in 0..12 {
        fail_from(&app, ["amy", "ben", "cat", "dan"][i % 4], None);
    }
    limited(&app, "eve", None);
}

#[test]
fn a_rate_limit_ends_with_its_window() {
    let app = limited_app(2);
    app.register("alice");
    for _ in 0..3 {
        fail_from(&app, "alice", Some("198.51.100.1"));
    }
    assert!(limited(&app, "alice", Some("198.51.100.1")) <= 2);
    let params = json!({"username": "alice", "password": PASSWORD, "ip": "198.51.100.1"});
    let lifted = app.eventually(Duration::from_secs(6), || {
        app.rpc("auth.login", params.clone())["result"]["access_token"].is_string()
    });
    assert!(lifted, "the limit outlived its 2 s window");
}
