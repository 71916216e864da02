//! Revoked means dead: two instances on one PostgreSQL and a private Redis;
//! every revoking call made on A while Redis is down, stalled or restarted,
//! and the token read on B right after. Each call must succeed (or fail
//! -32000), and once it has succeeded B must answer the token inactive, and
//! again after Redis has recovered. Nothing of this goes through Redis (the
//! change feed is in PostgreSQL), so there are no pub/sub links to cut.
//! The 1 s bound itself is the feed's constants
//! (`cache::local::tests::the_revocation_bound_fits_in_the_contracts_second`);
//! here it is checked with slack, since a loaded machine delays the test's
//! own calls too.

use std::time::Duration;

use serde_json::{json, Value};

use super::private::PrivateRedis;
use super::*;

const NEW_PASSWORD: &str = "violet glacier mango lantern 42";
/// The contract's second, plus slack for a slow shared machine (the bound
/// itself is a unit test of the feed's constants).
const WITHIN: Duration = Duration::from_millis(2500);

fn login(app: &TestApp, username: &str, password: &str) -> Value {
    app.ok(
        "auth.login",
        json!({"username": username, "password": password}),
    )
}

fn token(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap().to_string()
}

/// One revoking call to make on A, and the access token it must kill.
struct Case {
    name: &'static str,
    revoke: Box<dyn Fn(&TestApp)>,
    victim: String,
}

/// Registers a user per revoking call, and prepares each call.
fn cases(a: &TestApp) -> Vec<Case> {
    let mut cases = Vec::new();

    let (_, t) = a.register_and_login("rv_logout");
    let victim = token(&t, "access_token");
    let v = victim.clone();
    cases.push(Case {
        name: "logout",
        revoke: Box::new(move |a| {
            assert_eq!(
                a.ok("auth.logout", json!({"token": v})),
                json!({"revoked": true})
            );
        }),
        victim,
    });

    let (_, t) = a.register_and_login("rv_all");
    let other = login(a, "rv_all", PASSWORD);
    let victim = token(&t, "access_token");
    let by = token(&other, "access_token");
    cases.push(Case {
        name: "logout_all",
        revoke: Box::new(move |a| {
            assert_eq!(a.ok("auth.logout_all", json!({"token": by}))["revoked"], 2);
        }),
        victim,
    });

    let (_, t) = a.register_and_login("rv_reuse");
    let spent = token(&t, "refresh_token");
    let rotated = a.ok("auth.refresh", json!({"refresh_token": spent}));
    let victim = token(&rotated, "access_token");
    cases.push(Case {
        name: "refresh reuse",
        revoke: Box::new(move |a| {
            a.err("auth.refresh", json!({"refresh_token": spent}), -32030);
        }),
        victim,
    });

    let (_, t) = a.register_and_login("rv_change");
    let victim = token(&login(a, "rv_change", PASSWORD), "access_token");
    let by = token(&t, "access_token");
    cases.push(Case {
        name: "change_password",
        revoke: Box::new(move |a| {
            let r = a.ok(
                "auth.change_password",
                json!({"token": by, "old_password": PASSWORD, "new_password": NEW_PASSWORD}),
            );
            assert_eq!(r["revoked"], 1);
        }),
        victim,
    });

    let (_, t) = a.register_and_login("rv_reset");
    let victim = token(&t, "access_token");
    let reset = a.ok(
        "auth.request_password_reset",
        json!({"username": "rv_reset"}),
    );
    let reset = token(&reset, "reset_token");
    cases.push(Case {
        name: "reset_password",
        revoke: Box::new(move |a| {
            let r = a.ok(
                "auth.reset_password",
                json!({"reset_token": reset, "new_password": NEW_PASSWORD}),
            );
            assert_eq!(r["revoked"], 1);
        }),
        victim,
    });

    let (id, t) = a.register_and_login("rv_state");
    let victim = token(&t, "access_token");
    cases.push(Case {
        name: "set_state",
        revoke: Box::new(move |a| {
            a.ok("user.set_state", json!({"user_id": id, "state": "locked"}));
        }),
        victim,
    });
    cases
}

/// Warms both instances' caches, runs `fault` before the revocations and
/// `between` after them (before B reads), checks B, heals, checks again.
fn revoked_means_dead(
    fault: impl Fn(&mut PrivateRedis),
    between: impl Fn(&mut PrivateRedis),
    heal: impl Fn(&mut PrivateRedis),
) {
    let mut redis = PrivateRedis::start();
    let a = spawn_with(Options {
        redis_uri: Some(redis.uri()),
        ..Options::default()
    });
    let b = a.another();
    let cases = cases(&a);
    for c in &cases {
        assert!(active(&a, &c.victim) && active(&b, &c.victim), "{}", c.name);
        // twice: the second answer comes from each instance's cache
        assert!(active(&a, &c.victim) && active(&b, &c.victim), "{}", c.name);
    }
    fault(&mut redis);
    for c in &cases {
        (c.revoke)(&a);
    }
    between(&mut redis);
    for c in &cases {
        let took = dead_within(&b, &c.victim, WITHIN);
        assert!(
            took.is_some(),
            "{}: still active on B after {WITHIN:?}\nB:\n{}\nA:\n{}",
            c.name,
            b.logs(),
            a.logs()
        );
        assert!(!active(&a, &c.victim), "{}: still active on A", c.name);
    }
    heal(&mut redis);
    std::thread::sleep(Duration::from_millis(1500));
    for c in &cases {
        assert!(
            !active(&b, &c.victim),
            "{}: alive again on B after recovery",
            c.name
        );
        assert!(
            !active(&a, &c.victim),
            "{}: alive again on A after recovery",
            c.name
        );
    }
    // and the service still works on both
    let fresh = token(&login(&b, "rv_logout", PASSWORD), "access_token");
    assert!(active(&a, &fresh) && active(&b, &fresh));
}

#[test]
fn a_revocation_made_while_redis_is_down_reaches_the_other_instance() {
    revoked_means_dead(|r| r.down(), |_| {}, |r| r.up());
}

#[test]
fn a_revocation_made_while_redis_is_paused_reaches_the_other_instance() {
    revoked_means_dead(
        |r| r.command(&["CLIENT", "PAUSE", "4000", "ALL"]),
        |_| {},
        |r| r.command(&["CLIENT", "UNPAUSE"]),
    );
}

#[test]
fn a_revocation_followed_by_a_redis_restart_reaches_the_other_instance() {
    revoked_means_dead(
        |_| {},
        |r| {
            r.down();
            r.up();
        },
        |_| {},
    );
}
