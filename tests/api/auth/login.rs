//! `auth.login`: sessions opened and stored as hashes, identical failures for
//! wrong passwords and unknown users, inactive accounts.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

use super::*;

fn session_count(app: &TestApp) -> i64 {
    app.pg()
        .query_one("SELECT count(*) FROM sessions", &[])
        .unwrap()
        .get(0)
}

/// The 32 random bytes behind a `prefix`ed token.
fn token_body(token: &str, prefix: &str) -> Vec<u8> {
    let body = token
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{token:?} does not start with {prefix}"));
    URL_SAFE_NO_PAD.decode(body).unwrap()
}

#[test]
fn login_by_username_opens_a_session_stored_only_as_token_hashes() {
    let app = spawn_app();
    let id = app.register("alice");
    let t = login_from(&app, "alice", PASSWORD, "192.0.2.7");

    assert_eq!(t["user_id"], id);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 900);
    assert_eq!(t["refresh_expires_in"], 2_592_000);
    assert_eq!(token_body(access(&t), "pat_").len(), 32);
    assert_eq!(token_body(refresh(&t), "prt_").len(), 32);
    assert_ne!(access(&t), refresh(&t));

    let mut pg = app.pg();
    let session = pg
        .query_one(
            "SELECT user_id, ip, user_agent, revoked_at IS NULL, expires_at > now() + interval '29 days' \
             FROM sessions WHERE id = $1",
            &[&session_id(&t)],
        )
        .unwrap();
    assert_eq!(session.get::<_, i64>(0), id);
    assert_eq!(session.get::<_, String>(1), "192.0.2.7");
    assert_eq!(session.get::<_, String>(2), "tests/1.0");
    assert!(session.get::<_, bool>(3), "a fresh session is revoked");
    assert!(
        session.get::<_, bool>(4),
        "the session does not last as long as its refresh token"
    );
    for (table, token) in [
        ("access_tokens", access(&t)),
        ("refresh_tokens", refresh(&t)),
    ] {
        let hashes: Vec<Vec<u8>> = pg
            .query(
                &format!("SELECT token_hash FROM {table} WHERE session_id = $1"),
                &[&session_id(&t)],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            hashes,
            vec![sha256(token)],
            "{table} holds something else than SHA-256 of the token"
        );
        assert_ne!(hashes[0], token.as_bytes());
    }
}

#[test]
fn login_by_email_or_a_differently_cased_username_reaches_the_same_account() {
    let app = spawn_app();
    let id = app.ok(
        "auth.register",
        json!({"username": "dora", "password": PASSWORD, "email": "dora@example.com"}),
    )["user_id"]
        .clone();

    let by_email = login_from(&app, "Dora@Example.COM", PASSWORD, "192.0.2.1");
    assert_eq!(by_email["user_id"], id);
    let by_name = login_from(&app, "DORA", PASSWORD, "192.0.2.1");
    assert_eq!(by_name["user_id"], id);
    assert_ne!(session_id(&by_email), session_id(&by_name));
    assert_eq!(session_count(&app), 2);

    let e = app.err(
        "auth.login",
        json!({"username": "dora", "password": PASSWORD, "ip": "1".repeat(65)}),
        -32602,
    );
    assert_eq!(e["data"], json!({"field": "ip", "reason": "too_long"}));
}

#[test]
fn login_with_a_wrong_password_and_an_unknown_user_answer_identically() {
    let app = spawn_app();
    app.register("alice");

    let wrong_password = app.err(
        "auth.login",
        json!({"username": "alice", "password": "not the right one"}),
        -32011,
    );
    let unknown_user = app.err(
        "auth.login",
        json!({"username": "nobody", "password": "not the right one"}),
        -32011,
    );
    let unknown_email = app.err(
        "auth.login",
        json!({"username": "nobody@example.com", "password": PASSWORD}),
        -32011,
    );
    assert_eq!(wrong_password, unknown_user);
    assert_eq!(wrong_password, unknown_email);
    assert!(wrong_password.get("data").is_none(), "{wrong_password}");
    assert_eq!(session_count(&app), 0);
}

#[test]
fn an_inactive_account_is_named_only_after_the_correct_password() {
    let app = spawn_app();
    let (id, before) = app.register_and_login("alice");
    let unknown = app.err(
        "auth.login",
        json!({"username": "nobody", "password": "not the right one"}),
        -32011,
    );

    for state in ["disabled", "locked"] {
        app.ok("user.set_state", json!({"user_id": id, "state": state}));
        let e = app.err(
            "auth.login",
            json!({"username": "alice", "password": PASSWORD}),
            -32012,
        );
        assert_eq!(e["data"], json!({"state": state}));
        // A wrong password tells nothing about the state.
        let wrong = app.err(
            "auth.login",
            json!({"username": "alice", "password": "not the right one"}),
            -32011,
        );
        assert_eq!(wrong, unknown);
    }
    assert!(
        !is_active(&app, access(&before)),
        "disabling left a session active"
    );
    assert!(session_revoked(&app, session_id(&before)));

    app.ok("user.set_state", json!({"user_id": id, "state": "active"}));
    let after = login(&app, "alice");
    assert!(is_active(&app, access(&after)));
}

/// The shortest of `n` timed logins that must fail with -32011.
fn fastest_failure(app: &TestApp, username: &str, n: usize) -> Duration {
    (0..n)
        .map(|_| {
            let started = Instant::now();
            app.err(
                "auth.login",
                json!({"username": username, "password": "not the right one"}),
                -32011,
            );
            started.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn an_unknown_user_costs_a_bcrypt_verification_like_a_wrong_password() {
    // A cost high enough that one verification dwarfs the rest of a call.
    let app = spawn_with(Options {
        ini: "[AUTH]\nBCRYPT_COST = 8\n".into(),
        ..Options::default()
    });
    app.register("alice");
    // The work itself, counted by the lane: each failed login, for an
    // account or for no one, runs exactly one verification. This holds
    // however loaded the machine is.
    let before = app.metric("profiteer_hash_jobs_total");
    let wrong_password = fastest_failure(&app, "alice", 3);
    let after_wrong = app.metric("profiteer_hash_jobs_total");
    let unknown_user = fastest_failure(&app, "nobody", 3);
    let after_unknown = app.metric("profiteer_hash_jobs_total");
    assert_eq!(
        after_wrong - before,
        3.0,
        "verifications for 3 wrong passwords"
    );
    assert_eq!(
        after_unknown - after_wrong,
        3.0,
        "verifications for 3 unknown users"
    );
    // And the time it shows: the fastest of each, loosely (on a loaded
    // machine a verification on the lane's lowered priority can take ten
    // times longer, which either side may draw).
    eprintln!("wrong password {wrong_password:?}, unknown user {unknown_user:?}");
    assert!(
        unknown_user * 4 >= wrong_password,
        "an unknown user answers in {unknown_user:?}, a wrong password in {wrong_password:?}"
    );
}
