//! Abuse of the account methods beyond password guessing: reset requests
//! piling up or outliving a password change, sessions refreshed forever,
//! NUL characters in params.

use serde_json::json;

use super::*;

fn unspent_resets(app: &TestApp) -> i64 {
    app.pg()
        .query_one(
            "SELECT count(*) FROM password_resets WHERE used_at IS NULL",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn password_reset_requests_are_limited_per_account_and_never_pile_up() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nLOGIN_MAX_FAILS = 3\n".into(),
        ..Options::default()
    });
    app.ok(
        "auth.register",
        json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}),
    );
    let first = app.ok("auth.request_password_reset", json!({"username": "alice"}));
    app.ok(
        "auth.request_password_reset",
        json!({"email": "alice@example.com"}),
    );
    let last = app.ok("auth.request_password_reset", json!({"username": "ALICE"}));
    // A new request spends the older ones: one live token per account.
    assert_eq!(unspent_resets(&app), 1);
    app.err(
        "auth.reset_password",
        json!({"reset_token": first["reset_token"], "new_password": NEW_PASSWORD}),
        -32030,
    );
    // The fourth in the window, by either name, is refused and adds no row.
    for params in [
        json!({"username": "alice"}),
        json!({"email": "alice@example.com"}),
    ] {
        let e = app.err("auth.request_password_reset", params, -32029);
        assert!(e["data"]["retry_after"].as_u64().unwrap() >= 1, "{e}");
    }
    let rows: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM password_resets", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 3);
    // The last token still works.
    app.ok(
        "auth.reset_password",
        json!({"reset_token": last["reset_token"], "new_password": NEW_PASSWORD}),
    );
}

#[test]
fn a_password_change_spends_every_outstanding_reset_token() {
    let app = spawn_app();
    let (_, t) = app.register_and_login("alice");
    let reset = app.ok("auth.request_password_reset", json!({"username": "alice"}));
    app.ok(
        "auth.change_password",
        json!({"token": access(&t), "old_password": PASSWORD, "new_password": NEW_PASSWORD}),
    );
    assert_eq!(unspent_resets(&app), 0);
    // Whoever asked for that token cannot undo the change with it.
    app.err(
        "auth.reset_password",
        json!({"reset_token": reset["reset_token"], "new_password": "another fine pass phrase 7"}),
        -32030,
    );
    app.ok(
        "auth.login",
        json!({"username": "alice", "password": NEW_PASSWORD}),
    );
}

#[test]
fn refresh_never_carries_a_session_past_session_max_s() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nSESSION_MAX_S = 86400\nREFRESH_TTL_S = 86400\n".into(),
        ..Options::default()
    });
    let (_, t) = app.register_and_login("alice");
    let sid = session_id(&t);
    let age = |app: &TestApp, seconds: i64| {
        app.pg()
            .execute(
                "UPDATE sessions SET created_at = now() - $2::bigint * interval '1 second' \
                 WHERE id = $1",
                &[&sid, &seconds],
            )
            .unwrap();
    };
    // 100 s of the session's longest life are left: the new pair gets no
    // more, though REFRESH_TTL_S and ACCESS_TTL_S are longer.
    age(&app, 86400 - 100);
    let next = app.ok("auth.refresh", json!({"refresh_token": refresh(&t)}));
    for field in ["expires_in", "refresh_expires_in"] {
        let left = next[field].as_i64().unwrap();
        assert!((1..=100).contains(&left), "{field} = {left}");
    }
    let capped: bool = app
        .pg()
        .query_one(
            "SELECT expires_at <= created_at + interval '86400 seconds' FROM sessions WHERE id = $1",
            &[&sid],
        )
        .unwrap()
        .get(0);
    assert!(
        capped,
        "the session's expiry was moved past its longest life"
    );
    // Past its longest life, the unexpired refresh token is refused.
    age(&app, 86400 + 1);
    app.err(
        "auth.refresh",
        json!({"refresh_token": refresh(&next)}),
        -32030,
    );
}

#[test]
fn a_nul_in_any_param_is_refused_before_any_work() {
    let app = spawn_app();
    app.register("alice");
    // The right password: a NUL in `ip` is refused before it is checked.
    for (field, params) in [
        (
            "ip",
            json!({"username": "alice", "password": PASSWORD, "ip": "1.2.3.4\u{0}"}),
        ),
        (
            "user_agent",
            json!({"username": "alice", "password": PASSWORD, "user_agent": "x\u{0}y"}),
        ),
        (
            "password",
            json!({"username": "alice", "password": "correct horse\u{0}battery"}),
        ),
    ] {
        let e = app.err("auth.login", params, -32602);
        assert_eq!(e["data"], json!({"field": field, "reason": "contains_nul"}));
    }
    let e = app.err(
        "auth.register",
        json!({"username": "bob", "password": PASSWORD, "profile": {"bio": "a\u{0}b"}}),
        -32602,
    );
    assert_eq!(e["data"]["field"], "profile");
    let e = app.err(
        "user.import",
        json!({"users": [{"username": "carol\u{0}", "password": PASSWORD}]}),
        -32602,
    );
    assert_eq!(e["data"]["field"], "users");
    // No login was attempted: nothing counted, no session made.
    let sessions: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM sessions", &[])
        .unwrap()
        .get(0);
    assert_eq!(sessions, 0);
    let counters: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}rl:*", app.prefix))
        .query(&mut app.redis())
        .unwrap();
    assert!(counters.is_empty(), "{counters:?}");
}
