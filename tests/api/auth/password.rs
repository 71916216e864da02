//! `auth.change_password`, `auth.request_password_reset`,
//! `auth.reset_password`, and the re-hash of a weaker stored bcrypt hash.

use std::time::Duration;

use serde_json::json;

use super::*;

fn login_fails(app: &TestApp, username: &str, password: &str) {
    app.err(
        "auth.login",
        json!({"username": username, "password": password}),
        -32011,
    );
}

#[test]
fn change_password_refuses_a_wrong_old_password_and_a_weak_new_one() {
    let app = spawn_app();
    let (id, t) = app.register_and_login("alice");
    let before = stored_password_hash(&app, id);

    let wrong_old = app.err(
        "auth.change_password",
        json!({"token": access(&t), "old_password": "not the right one", "new_password": NEW_PASSWORD}),
        -32011,
    );
    assert!(wrong_old.get("data").is_none(), "{wrong_old}");
    for (new, reason) in [
        ("password123", "too_weak"),
        ("alice-violet-glacier-42", "contains_username"),
    ] {
        let e = app.err(
            "auth.change_password",
            json!({"token": access(&t), "old_password": PASSWORD, "new_password": new}),
            -32602,
        );
        assert_eq!(
            e["data"],
            json!({"field": "new_password", "reason": reason})
        );
    }
    app.err(
        "auth.change_password",
        json!({"token": "garbage", "old_password": PASSWORD, "new_password": NEW_PASSWORD}),
        -32030,
    );
    assert_eq!(stored_password_hash(&app, id), before);
    assert!(is_active(&app, access(&t)));
    login(&app, "alice");
}

#[test]
fn change_password_revokes_other_sessions_but_keeps_the_current_one() {
    let app = spawn_app();
    let (id, current) = app.register_and_login("alice");
    let other = login(&app, "alice");
    // Introspected first, so a cached answer must be dropped too.
    assert!(is_active(&app, access(&other)));

    let answer = app.ok(
        "auth.change_password",
        json!({"token": access(&current), "old_password": PASSWORD, "new_password": NEW_PASSWORD}),
    );
    assert_eq!(answer, json!({"revoked": 1}));
    assert!(is_active(&app, access(&current)));
    assert!(!session_revoked(&app, session_id(&current)));
    assert!(!is_active(&app, access(&other)));
    assert!(session_revoked(&app, session_id(&other)));

    let hash = stored_password_hash(&app, id);
    assert!(hash.starts_with("$2b$04$"), "{}", &hash[..7]);
    assert!(bcrypt::verify(NEW_PASSWORD, &hash).unwrap());
    login_fails(&app, "alice", PASSWORD);
    app.ok(
        "auth.login",
        json!({"username": "alice", "password": NEW_PASSWORD}),
    );
}

#[test]
fn request_password_reset_issues_a_stored_hashed_token_or_answers_not_found() {
    let app = spawn_app();
    let id = app.ok(
        "auth.register",
        json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}),
    )["user_id"]
        .as_i64()
        .unwrap();

    for params in [
        json!({"username": "Alice"}),
        json!({"email": "ALICE@example.com"}),
    ] {
        let r = app.ok("auth.request_password_reset", params);
        assert_eq!(r["user_id"], id);
        assert_eq!(r["expires_in"], 900);
        let token = r["reset_token"].as_str().unwrap();
        assert!(token.starts_with("prs_") && token.len() == 47, "{token:?}");
        let stored: i64 = app
            .pg()
            .query_one(
                "SELECT user_id FROM password_resets WHERE token_hash = $1 AND used_at IS NULL \
                 AND expires_at BETWEEN now() + interval '14 minutes' AND now() + interval '16 minutes'",
                &[&sha256(token)],
            )
            .unwrap()
            .get(0);
        assert_eq!(stored, id);
    }

    for params in [
        json!({"username": "nobody"}),
        json!({"email": "nobody@example.com"}),
    ] {
        let e = app.err("auth.request_password_reset", params, -32013);
        assert!(e.get("data").is_none(), "{e}");
    }
    app.err("auth.request_password_reset", json!({}), -32602);
}

#[test]
fn a_reset_token_works_once_and_revokes_every_session() {
    let app = spawn_app();
    let (id, first) = app.register_and_login("alice");
    let second = login(&app, "alice");
    assert!(is_active(&app, access(&first)) && is_active(&app, access(&second)));
    let older = app.ok("auth.request_password_reset", json!({"username": "alice"}));
    let reset = app.ok("auth.request_password_reset", json!({"username": "alice"}));
    let token = reset["reset_token"].as_str().unwrap();

    let answer = app.ok(
        "auth.reset_password",
        json!({"reset_token": token, "new_password": NEW_PASSWORD}),
    );
    assert_eq!(answer, json!({"revoked": 2}));
    for t in [&first, &second] {
        assert!(!is_active(&app, access(t)));
        assert!(session_revoked(&app, session_id(t)));
    }
    assert!(bcrypt::verify(NEW_PASSWORD, &stored_password_hash(&app, id)).unwrap());
    login_fails(&app, "alice", PASSWORD);
    app.ok(
        "auth.login",
        json!({"username": "alice", "password": NEW_PASSWORD}),
    );

    // Spent: neither it nor an older outstanding token works again.
    for spent in [token, older["reset_token"].as_str().unwrap()] {
        app.err(
            "auth.reset_password",
            json!({"reset_token": spent, "new_password": "another fine pass phrase 7"}),
            -32030,
        );
    }
    let unused: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM password_resets WHERE used_at IS NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unused, 0);
    assert!(bcrypt::verify(NEW_PASSWORD, &stored_password_hash(&app, id)).unwrap());
}

#[test]
fn a_reset_refused_for_its_new_password_leaves_the_token_usable() {
    let app = spawn_app();
    let (_, t) = app.register_and_login("alice");
    let reset = app.ok("auth.request_password_reset", json!({"username": "alice"}));
    let token = reset["reset_token"].as_str().unwrap();

    let e = app.err(
        "auth.reset_password",
        json!({"reset_token": token, "new_password": "password123"}),
        -32602,
    );
    assert_eq!(
        e["data"],
        json!({"field": "new_password", "reason": "too_weak"})
    );
    assert!(
        is_active(&app, access(&t)),
        "a refused reset revoked sessions"
    );
    for bad in ["garbage", access(&t), refresh(&t)] {
        app.err(
            "auth.reset_password",
            json!({"reset_token": bad, "new_password": NEW_PASSWORD}),
            -32030,
        );
    }
    app.ok(
        "auth.reset_password",
        json!({"reset_token": token, "new_password": NEW_PASSWORD}),
    );
}

#[test]
fn login_re_hashes_a_password_stored_with_a_lower_bcrypt_cost() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nBCRYPT_COST = 5\n".into(),
        ..Options::default()
    });
    let id = app.register("alice");
    assert!(stored_password_hash(&app, id).starts_with("$2b$05$"));
    let weak = bcrypt::hash(PASSWORD, 4).unwrap();
    app.pg()
        .execute(
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            &[&weak, &id],
        )
        .unwrap();

    login(&app, "alice");
    let upgraded = app.eventually(Duration::from_secs(5), || {
        stored_password_hash(&app, id).starts_with("$2b$05$")
    });
    let hash = stored_password_hash(&app, id);
    assert!(upgraded, "still {}", &hash[..7]);
    assert!(bcrypt::verify(PASSWORD, &hash).unwrap());
    login(&app, "alice");
}

/// A stolen access token must not buy unlimited guesses of the password.
#[test]
fn wrong_old_passwords_count_as_failed_logins_and_are_rate_limited() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nLOGIN_MAX_FAILS = 1\n".into(), // per-account ceiling: 10
        ..Default::default()
    });
    let (_, t) = app.register_and_login("alice");
    let guess = json!({"token": access(&t), "old_password": "not the right one", "new_password": NEW_PASSWORD});
    for _ in 0..10 {
        app.err("auth.change_password", guess.clone(), -32011);
    }
    let limited = app.err("auth.change_password", guess, -32029);
    assert!(
        limited["data"]["retry_after"].as_u64().unwrap() >= 1,
        "{limited}"
    );
    // the right old password is refused too while the limit holds
    app.err(
        "auth.change_password",
        json!({"token": access(&t), "old_password": PASSWORD, "new_password": NEW_PASSWORD}),
        -32029,
    );
}
