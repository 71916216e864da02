//! Failed-login limits (`[AUTH] LOGIN_MAX_FAILS` = 3 here): per account and
//! address, per address, per account, and never longer than the window.

use std::time::Duration;

use serde_json::json;

use super::*;

fn limited_app(window_s: u64) -> TestApp {
    spawn_with(Options {
        ini: format!("[AUTH]\nLOGIN_MAX_FAILS = 3\nLOGIN_WINDOW_S = {window_s}\n"),
        ..Options::default()
    })
}

fn fail_from(app: &TestApp, login: &str, ip: Option<&str>) {
    let mut params = json!({"username": login, "password": "not the right one"});
    if let Some(ip) = ip {
        params["ip"] = json!(ip);
    }
    app.err("auth.login", params, -32011);
}

/// The `retry_after` of a login that must be rate limited.
fn limited(app: &TestApp, login: &str, ip: Option<&str>) -> u64 {
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
fn without_an_ip_only_the_higher_per_user_ceiling_applies() {
    let app = limited_app(900);
    app.register("alice");
    // The per-account ceiling is ten times LOGIN_MAX_FAILS.
    for _ in 0..29 {
        fail_from(&app, "alice", None);
    }
    login(&app, "alice");
    fail_from(&app, "alice", None);
    assert!(limited(&app, "alice", None) >= 1);
    // From an address of its own, the owner is still kept out (the
    // per-account ceiling holds whatever the address), but only for the window.
    limited(&app, "alice", Some("192.0.2.77"));
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
