//! Logins that overlap a revocation. The attacker's review found a login
//! with the old password, started just before `auth.reset_password`, still
//! got a live session after the reset had returned; and an open `pmf_`
//! challenge outlived a password change. A session is made only if the
//! account is still as the login verified it (`sessions::create`), and
//! every revocation ends open challenges (`sessions::end_all`).

use std::time::Duration;

use serde_json::json;

use super::mfa::{challenge, code, enrol};
use super::*;

/// Backends of the test's database waiting for a lock.
fn lock_waiters(app: &TestApp) -> i64 {
    app.pg()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .unwrap()
        .get(0)
}

/// Holds the login between its password check and its commit: a test
/// transaction locks `access_tokens` against inserts, so the login's
/// transaction waits on its token insert, its session row already made.
/// `revoke` runs (on another thread) while the login waits, then the lock
/// goes. Whatever the order the two then take, the login's tokens must be
/// dead once both have returned.
fn login_overlapping(app: &TestApp, username: &str, revoke: impl FnOnce() + Send) -> Value {
    let mut blocker = app.pg();
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE access_tokens IN SHARE ROW EXCLUSIVE MODE")
        .unwrap();
    std::thread::scope(|s| {
        let login = s.spawn(|| {
            app.rpc(
                "auth.login",
                json!({"username": username, "password": PASSWORD}),
            )
        });
        let waiting = app.eventually(Duration::from_secs(20), || lock_waiters(app) >= 1);
        assert!(waiting, "the login never reached its token insert");
        let revoking = s.spawn(revoke);
        // The revocation either returns (it waits on nothing of the
        // login's) or queues behind the login's share lock on the user.
        let settled = app.eventually(Duration::from_secs(20), || {
            revoking.is_finished() || lock_waiters(app) >= 2
        });
        assert!(settled, "the revocation neither returned nor waited");
        tx.commit().unwrap();
        revoking.join().unwrap();
        login.join().unwrap()
    })
}

fn assert_dead(app: &TestApp, answer: &Value) {
    let Some(tokens) = answer.get("result") else {
        // Refused: equally fine.
        assert!(answer.get("error").is_some(), "{answer}");
        return;
    };
    let info = app.ok("auth.introspect", json!({"token": access(tokens)}));
    assert_eq!(
        info,
        json!({"active": false}),
        "a login outlived the revocation"
    );
    app.err(
        "auth.refresh",
        json!({"refresh_token": refresh(tokens)}),
        -32030,
    );
}

#[test]
fn a_login_with_the_old_password_that_overlaps_a_reset_opens_no_live_session() {
    let app = spawn_app();
    app.register("rosa");
    let reset = app.ok("auth.request_password_reset", json!({"username": "rosa"}));
    let answer = login_overlapping(&app, "rosa", || {
        app.ok(
            "auth.reset_password",
            json!({"reset_token": reset["reset_token"], "new_password": NEW_PASSWORD}),
        );
    });
    assert_dead(&app, &answer);
    app.err(
        "auth.login",
        json!({"username": "rosa", "password": PASSWORD}),
        -32011,
    );
}

#[test]
fn a_login_that_overlaps_logout_all_or_a_disable_opens_no_live_session() {
    let app = spawn_app();
    let (_, tokens) = app.register_and_login("lena");
    let answer = login_overlapping(&app, "lena", || {
        app.ok("auth.logout_all", json!({"token": access(&tokens)}));
    });
    assert_dead(&app, &answer);

    let id = app.register("dora");
    let answer = login_overlapping(&app, "dora", || {
        app.ok(
            "user.set_state",
            json!({"user_id": id, "state": "disabled"}),
        );
    });
    assert_dead(&app, &answer);
}

#[test]
fn an_open_mfa_challenge_dies_with_a_password_change_or_reset() {
    let app = spawn_app();
    let e = enrol(&app, "mira");
    let open = challenge(&app, "mira");
    app.ok(
        "auth.change_password",
        json!({"token": access(&e.tokens), "old_password": PASSWORD,
               "new_password": NEW_PASSWORD}),
    );
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": open, "code": code(&e.secret, e.s0 + 1)}),
        -32030,
    );

    let e = enrol(&app, "nina");
    let open = challenge(&app, "nina");
    let reset = app.ok("auth.request_password_reset", json!({"username": "nina"}));
    app.ok(
        "auth.reset_password",
        json!({"reset_token": reset["reset_token"], "new_password": NEW_PASSWORD}),
    );
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": open, "code": code(&e.secret, e.s0 + 1)}),
        -32030,
    );
    let left: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM mfa_challenges WHERE user_id = $1",
            &[&e.user_id],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the reset left an open challenge behind");
}
