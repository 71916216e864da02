//! What the login limits hold against: strangers trying to lock an owner
//! out, parallel guesses racing the count, counters without a TTL, and a
//! dead Redis (the limits go on per instance, never off).

use std::sync::Barrier;

use serde_json::json;

use super::limits::{fail_from, limited, limited_app};
use super::*;

#[test]
fn strangers_cannot_lock_the_owner_out_at_an_address_it_logged_in_from() {
    let app = limited_app(900);
    app.register("alice");
    login_from(&app, "alice", PASSWORD, "192.0.2.10");
    // 30 = the per-account ceiling (10 x 3), from 15 other addresses.
    for i in 0..30 {
        fail_from(&app, "alice", Some(&format!("203.0.113.{}", i / 2)));
    }
    // A stranger's address is kept out now, even with the right password...
    limited(&app, "alice", Some("198.51.100.99"));
    // ...but the owner, at its known address, is not.
    login_from(&app, "alice", PASSWORD, "192.0.2.10");
    login_from(&app, "alice", PASSWORD, "192.0.2.10");
    // Its own (account, address) limit still holds there.
    for _ in 0..3 {
        fail_from(&app, "alice", Some("192.0.2.10"));
    }
    limited(&app, "alice", Some("192.0.2.10"));
}

#[test]
fn parallel_guesses_cannot_slip_past_the_limit_together() {
    let app = limited_app(900);
    app.register("alice");
    let barrier = Barrier::new(24);
    let codes: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|_| {
                let (app, barrier) = (&app, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let params = json!({"username": "alice", "password": "not the right one",
                                        "ip": "198.51.100.1"});
                    app.rpc("auth.login", params)["error"]["code"]
                        .as_i64()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Checked and counted in one step: exactly LOGIN_MAX_FAILS guesses were
    // tried, every other one was refused unchecked.
    let tried = codes.iter().filter(|c| **c == -32011).count();
    let refused = codes.iter().filter(|c| **c == -32029).count();
    assert_eq!((tried, refused), (3, 21), "{codes:?}");
}

#[test]
fn every_limit_counter_in_redis_has_a_ttl() {
    let app = limited_app(900);
    app.register("alice");
    login_from(&app, "alice", PASSWORD, "192.0.2.10");
    fail_from(&app, "alice", Some("198.51.100.1"));
    fail_from(&app, "nobody", None);
    app.ok("auth.request_password_reset", json!({"username": "alice"}));
    let mut r = app.redis();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}rl:*", app.prefix))
        .query(&mut r)
        .unwrap();
    // pair, ip, login for two failures (one address each), the known
    // address, the reset request; the success cleared its pair.
    assert!(keys.len() >= 7, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut r).unwrap();
        assert!(ttl > 0, "{key} has TTL {ttl}");
    }
}

#[test]
fn a_success_gives_its_attempt_back_and_clears_its_pair() {
    let app = limited_app(900);
    app.register("alice");
    fail_from(&app, "alice", Some("198.51.100.1"));
    fail_from(&app, "alice", Some("198.51.100.1"));
    login_from(&app, "alice", PASSWORD, "198.51.100.1");
    assert_eq!(limit_counter(&app, "pair", "alice|198.51.100.1"), None);
    assert_eq!(limit_counter(&app, "ip", "198.51.100.1"), Some(2));
    assert_eq!(limit_counter(&app, "login", "alice"), Some(2));
}

/// A login-limit counter's value in Redis (`rl:{kind}:{id}`), if it exists.
fn limit_counter(app: &TestApp, kind: &str, id: &str) -> Option<i64> {
    redis::cmd("GET")
        .arg(format!("{}rl:{kind}:{id}", app.prefix))
        .query(&mut app.redis())
        .unwrap()
}

fn limiter_backend(app: &TestApp) -> String {
    let text = app.get("/metrics").text();
    let on = |backend: &str| {
        text.contains(&format!(
            "profiteer_login_limiter{{backend=\"{backend}\"}} 1"
        ))
    };
    match (on("redis"), on("local")) {
        (true, false) => "redis".into(),
        (false, true) => "local".into(),
        _ => panic!("no single profiteer_login_limiter in force:\n{text}"),
    }
}

#[test]
fn with_redis_unreachable_logins_go_on_with_the_same_limits_per_instance() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nLOGIN_MAX_FAILS = 3\n".into(),
        redis_uri: Some("redis://127.0.0.1:1/0".into()),
        ..Options::default()
    });
    app.register("alice");
    login_from(&app, "alice", PASSWORD, "192.0.2.10");
    assert_eq!(limiter_backend(&app), "local");
    for _ in 0..3 {
        fail_from(&app, "alice", Some("198.51.100.1"));
    }
    let retry_after = limited(&app, "alice", Some("198.51.100.1"));
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    // the per-address ceiling, without the `ip` param too
    for i in 0..12 {
        fail_from(&app, &format!("user{}", i / 3), None);
    }
    limited(&app, "alice", None);
    // the per-account ceiling (30; 3 counted above), and the known address
    // exempt from it
    for i in 0..27 {
        fail_from(&app, "alice", Some(&format!("203.0.113.{}", i / 2)));
    }
    limited(&app, "alice", Some("198.51.100.99"));
    login_from(&app, "alice", PASSWORD, "192.0.2.10");
}

#[test]
fn metrics_show_the_shared_limiter_while_redis_answers() {
    let app = limited_app(900);
    app.register("alice");
    login_from(&app, "alice", PASSWORD, "192.0.2.10");
    assert_eq!(limiter_backend(&app), "redis");
}

/// A login whose password check never answered (its deadline passed while
/// bcrypt ran, or while it waited on the hashing lane) told the caller
/// nothing, so it is not counted: an overloaded lane must not lock out
/// everyone behind one address. Here every check outlasts the deadline.
#[test]
fn logins_that_time_out_on_the_hashing_lane_are_not_counted_as_failures() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nREQUEST_TIMEOUT_MS = 300\n\
              [AUTH]\nBCRYPT_COST = 13\nHASH_WORKERS = 1\nHASH_QUEUE_DEPTH = 8\n\
              LOGIN_MAX_FAILS = 2\n"
            .into(),
        ..Options::default()
    });
    // A well-formed hash of cost 15 (a second or more on any machine),
    // made from a cheap one: no check can answer within the deadline.
    let hash = bcrypt::hash(PASSWORD, 4)
        .unwrap()
        .replacen("$04$", "$15$", 1);
    let imported = app.ok(
        "user.import",
        json!({"users": [{"username": "slow", "password_hash": hash}]}),
    );
    assert_eq!(imported["imported"], 1, "{imported}");
    // Twice the pair's ceiling: each answers -32001, none -32029.
    for _ in 0..4 {
        let r = app.rpc(
            "auth.login",
            json!({"username": "slow", "password": PASSWORD, "ip": "198.51.100.7"}),
        );
        assert_eq!(r["error"]["code"], -32001, "{r}");
    }
    for (kind, id) in [
        ("pair", "slow|198.51.100.7"),
        ("ip", "198.51.100.7"),
        ("login", "slow"),
    ] {
        let n = limit_counter(&app, kind, id);
        assert!(n.unwrap_or(0) == 0, "rl:{kind}:{id} counts {n:?}");
    }
}

/// Issue 28: with Redis unreachable, 34,000-50,000 failed logins of
/// strangers (distinct names and addresses) filled the in-process table,
/// and from then on every login was refused: the owner's at an address it
/// had logged in from, and every fresh address's.
#[test]
fn with_redis_unreachable_a_full_local_table_locks_out_neither_the_owner_nor_fresh_addresses() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nLOGIN_MAX_FAILS = 3\nLOCAL_LIMITER_ENTRIES = 60\n".into(),
        redis_uri: Some("redis://127.0.0.1:1/0".into()),
        ..Options::default()
    });
    app.register("alice");
    login_from(&app, "alice", PASSWORD, "192.0.2.10");
    assert_eq!(limiter_backend(&app), "local");
    // Three counters each (pair, address, name): the table fills five times.
    for i in 0..100 {
        fail_from(
            &app,
            &format!("stranger{i}"),
            Some(&format!("203.0.113.{i}")),
        );
    }
    login_from(&app, "alice", PASSWORD, "192.0.2.10");
    login_from(&app, "alice", PASSWORD, "198.51.100.20");
    // The limits still hold for whoever comes after.
    for _ in 0..3 {
        fail_from(&app, "bob", Some("198.51.100.30"));
    }
    limited(&app, "bob", Some("198.51.100.30"));
}
