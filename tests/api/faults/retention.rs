//! Nothing grows without bound: with `[RETENTION] SESSIONS_DAYS` of a few
//! seconds, revoked and expired sessions, expired tokens and spent reset
//! tokens, spent email verification tokens and ended username holds are
//! deleted, and a live session is untouched (it still refreshes).

use std::time::Duration;

use serde_json::json;

use super::*;

fn count(app: &TestApp, sql: &str, id: i64) -> i64 {
    app.pg().query_one(sql, &[&id]).unwrap().get(0)
}

#[test]
fn dead_sessions_tokens_and_resets_are_deleted_and_live_sessions_kept() {
    // 0.00003 days is 2.6 s; access tokens live 1 s.
    let app = spawn_with(Options {
        ini: "[RETENTION]\nSESSIONS_DAYS = 0.00003\nLOGIN_EVENTS_DAYS = 0.5\n\
              [AUTH]\nACCESS_TTL_S = 1\n"
            .into(),
        ..Options::default()
    });
    let (id, live) = app.register_and_login("rt_ann");
    let dead = app.ok(
        "auth.login",
        json!({"username": "rt_ann", "password": PASSWORD}),
    );
    app.ok("auth.logout", json!({"token": dead["access_token"]}));
    let reset = app.ok("auth.request_password_reset", json!({"username": "rt_ann"}));
    app.ok(
        "auth.reset_password",
        json!({"reset_token": reset["reset_token"], "new_password": "violet glacier mango lantern 42"}),
    );
    // the reset revoked the "live" one too: log in again for a live session
    let live2 = app.ok(
        "auth.login",
        json!({"username": "rt_ann", "password": "violet glacier mango lantern 42"}),
    );
    let _ = live;
    let sessions = "SELECT count(*) FROM sessions WHERE user_id = $1";
    let resets = "SELECT count(*) FROM password_resets WHERE user_id = $1";
    let access = "SELECT count(*) FROM access_tokens t JOIN sessions s ON s.id = t.session_id \
                  WHERE s.user_id = $1";
    assert_eq!(count(&app, sessions, id), 3);
    assert_eq!(count(&app, resets, id), 1);

    let swept = app.eventually(Duration::from_secs(20), || {
        count(&app, sessions, id) == 1
            && count(&app, resets, id) == 0
            && count(&app, access, id) == 0
    });
    assert!(
        swept,
        "sessions {}, resets {}, access tokens {}",
        count(&app, sessions, id),
        count(&app, resets, id),
        count(&app, access, id)
    );
    // The live session is untouched: its refresh token still works.
    let rotated = app.ok(
        "auth.refresh",
        json!({"refresh_token": live2["refresh_token"]}),
    );
    assert!(active(&app, rotated["access_token"].as_str().unwrap()));
    assert_eq!(count(&app, sessions, id), 1);

    // Login events expire in MongoDB through a TTL index of LOGIN_EVENTS_DAYS.
    let ttl = app.eventually(Duration::from_secs(10), || {
        app.mongo()
            .collection::<mongodb::bson::Document>("login_events")
            .list_indexes()
            .run()
            .map(|c| {
                c.filter_map(Result::ok).any(|i| {
                    i.options
                        .and_then(|o| o.expire_after)
                        .is_some_and(|d| d == Duration::from_secs(43_200))
                })
            })
            .unwrap_or(false)
    });
    assert!(ttl, "no TTL index of half a day on login_events");
}

#[test]
fn spent_email_verification_tokens_and_ended_username_holds_are_deleted() {
    // 0.00003 days is 2.6 s.
    let app = spawn_with(Options {
        ini: "[RETENTION]\nSESSIONS_DAYS = 0.00003\n".into(),
        ..Options::default()
    });
    let id = app.ok(
        "auth.register",
        json!({"username": "rt_eve", "password": PASSWORD, "email": "eve@example.com"}),
    )["user_id"]
        .as_i64()
        .unwrap();
    let issued = app.ok("auth.request_email_verification", json!({"user_id": id}));
    app.ok(
        "auth.verify_email",
        json!({"verify_token": issued["verify_token"]}),
    );
    app.ok(
        "user.update_account",
        json!({"user_id": id, "username": "rt_eva"}),
    );
    // The hold on rt_eve ends now (USERNAME_HOLD_DAYS is at least a day).
    app.pg()
        .execute(
            "UPDATE username_holds SET until = now() WHERE user_id = $1",
            &[&id],
        )
        .unwrap();
    let tokens = "SELECT count(*) FROM email_verifications WHERE user_id = $1";
    let holds = "SELECT count(*) FROM username_holds WHERE user_id = $1";
    assert_eq!(count(&app, tokens, id), 1);
    assert_eq!(count(&app, holds, id), 1);
    let swept = app.eventually(Duration::from_secs(20), || {
        count(&app, tokens, id) == 0 && count(&app, holds, id) == 0
    });
    assert!(
        swept,
        "verification tokens {}, holds {}",
        count(&app, tokens, id),
        count(&app, holds, id)
    );
    // An ended hold keeps nobody out.
    app.ok(
        "auth.register",
        json!({"username": "rt_eve", "password": PASSWORD}),
    );
}
