//! `auth.refresh`, `auth.logout`, `auth.logout_all`, `auth.sessions`:
//! rotation with reuse detection, and revocation of one or every session.

use std::time::Duration;

use serde_json::json;

use super::*;

fn spent(app: &TestApp, refresh_token: &str) -> bool {
    app.pg()
        .query_one(
            "SELECT spent_at IS NOT NULL FROM refresh_tokens WHERE token_hash = $1",
            &[&sha256(refresh_token)],
        )
        .unwrap()
        .get(0)
}

#[test]
fn refresh_rotates_the_pair_and_spends_the_old_refresh_token() {
    let app = spawn_app();
    let (id, first) = app.register_and_login("alice");

    let second = app.ok("auth.refresh", json!({"refresh_token": refresh(&first)}));
    assert_eq!(second["user_id"], id);
    assert_eq!(second["session_id"], first["session_id"]);
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["expires_in"], 900);
    assert_ne!(access(&second), access(&first));
    assert_ne!(refresh(&second), refresh(&first));
    assert!(is_active(&app, access(&second)));
    assert!(spent(&app, refresh(&first)));
    assert!(
        !spent(&app, refresh(&second)),
        "the new refresh token is stored spent"
    );

    // The new refresh token rotates in turn.
    let third = app.ok("auth.refresh", json!({"refresh_token": refresh(&second)}));
    assert!(is_active(&app, access(&third)));
    assert!(spent(&app, refresh(&second)));
    let stored: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM refresh_tokens WHERE session_id = $1",
            &[&session_id(&first)],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, 3);
}

#[test]
fn reusing_a_spent_refresh_token_revokes_the_whole_session() {
    let app = spawn_app();
    let (_, stolen) = app.register_and_login("alice");
    let other = login(&app, "alice");
    let rotated = app.ok("auth.refresh", json!({"refresh_token": refresh(&stolen)}));
    assert!(is_active(&app, access(&rotated)));

    let e = app.err(
        "auth.refresh",
        json!({"refresh_token": refresh(&stolen)}),
        -32030,
    );
    assert!(e.get("data").is_none(), "{e}");
    assert!(
        !is_active(&app, access(&rotated)),
        "the access token of the rotation outlived the reuse"
    );
    assert!(session_revoked(&app, session_id(&stolen)));
    app.err(
        "auth.refresh",
        json!({"refresh_token": refresh(&rotated)}),
        -32030,
    );
    // Only that session: the user's other one goes on.
    assert!(is_active(&app, access(&other)));
    assert!(!session_revoked(&app, session_id(&other)));
}

#[test]
fn refresh_refuses_access_tokens_unknown_tokens_and_revoked_sessions() {
    let app = spawn_app();
    let (_, t) = app.register_and_login("alice");
    let unknown = format!("prt_{}", "A".repeat(43));
    for token in [access(&t), "garbage", "", unknown.as_str()] {
        app.err("auth.refresh", json!({"refresh_token": token}), -32030);
    }
    assert!(!spent(&app, refresh(&t)));

    app.ok("auth.logout", json!({"token": access(&t)}));
    app.err(
        "auth.refresh",
        json!({"refresh_token": refresh(&t)}),
        -32030,
    );
}

#[test]
fn logout_revokes_the_session_once() {
    let app = spawn_app();
    let (_, t) = app.register_and_login("alice");
    let other = login(&app, "alice");

    assert_eq!(
        app.ok("auth.logout", json!({"token": access(&t)})),
        json!({"revoked": true})
    );
    assert!(session_revoked(&app, session_id(&t)));
    assert!(!is_active(&app, access(&t)));
    app.err(
        "auth.refresh",
        json!({"refresh_token": refresh(&t)}),
        -32030,
    );
    assert_eq!(
        app.ok("auth.logout", json!({"token": access(&t)})),
        json!({"revoked": false})
    );
    assert_eq!(
        app.ok("auth.logout", json!({"token": "garbage"})),
        json!({"revoked": false})
    );

    // A refresh token logs its own session out too.
    assert!(is_active(&app, access(&other)));
    assert_eq!(
        app.ok("auth.logout", json!({"token": refresh(&other)})),
        json!({"revoked": true})
    );
    assert!(!is_active(&app, access(&other)));
    assert!(session_revoked(&app, session_id(&other)));
}

#[test]
fn logout_all_revokes_every_session_of_that_user_only() {
    let app = spawn_app();
    let (alice, first) = app.register_and_login("alice");
    let mine = [first, login(&app, "alice"), login(&app, "alice")];
    let (_, bobs) = app.register_and_login("bob");
    for t in &mine {
        assert!(is_active(&app, access(t)));
    }

    assert_eq!(
        app.ok("auth.logout_all", json!({"token": access(&mine[1])})),
        json!({"revoked": 3})
    );
    for t in &mine {
        assert!(!is_active(&app, access(t)));
        assert!(session_revoked(&app, session_id(t)));
    }
    let live: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
            &[&alice],
        )
        .unwrap()
        .get(0);
    assert_eq!(live, 0);
    assert!(is_active(&app, access(&bobs)));
    app.err(
        "auth.logout_all",
        json!({"token": access(&mine[0])}),
        -32030,
    );
}

#[test]
fn sessions_lists_live_sessions_newest_first_marking_the_current_one() {
    let app = spawn_app();
    app.register("alice");
    app.register("bob");
    let older = login_from(&app, "alice", PASSWORD, "192.0.2.1");
    let newer = app.ok(
        "auth.login",
        json!({"username": "alice", "password": PASSWORD, "ip": "192.0.2.2", "user_agent": "phone"}),
    );
    login(&app, "bob");

    let list = app.ok("auth.sessions", json!({"token": access(&older)}))["sessions"].clone();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["session_id"], newer["session_id"]);
    assert_eq!(list[0]["current"], false);
    assert_eq!(list[0]["ip"], "192.0.2.2");
    assert_eq!(list[0]["user_agent"], "phone");
    assert_eq!(list[1]["session_id"], older["session_id"]);
    assert_eq!(list[1]["current"], true);
    assert_eq!(list[1]["ip"], "192.0.2.1");
    assert_eq!(list[1]["user_agent"], "tests/1.0");
    for s in list {
        for field in ["created_at", "last_seen_at"] {
            let text = s[field].as_str().unwrap();
            chrono::DateTime::parse_from_rfc3339(text)
                .unwrap_or_else(|e| panic!("{field} = {text:?}: {e}"));
        }
    }

    app.ok("auth.logout", json!({"token": access(&newer)}));
    let list = app.ok("auth.sessions", json!({"token": access(&older)}))["sessions"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["session_id"], older["session_id"]);
    app.err("auth.sessions", json!({"token": access(&newer)}), -32030);
    app.err("auth.sessions", json!({"token": "garbage"}), -32030);
}

#[test]
fn expired_tokens_are_inactive_and_an_expired_refresh_token_is_refused() {
    // Seconds, not one: expiry is compared in whole seconds, so a token
    // lives at least ACCESS_TTL_S - 1 s, and a busy machine must have time
    // to check it once while it is surely alive.
    let app = spawn_with(Options {
        ini: "[AUTH]\nACCESS_TTL_S = 4\nREFRESH_TTL_S = 5\n".into(),
        ..Options::default()
    });
    app.register("alice");
    // A check answered within SURELY_ALIVE of asking for the login was
    // made while the token had a second or more to live, so it must say
    // active; a slower answer proves nothing either way, and the test
    // takes a fresh login instead of skipping the check.
    const SURELY_ALIVE: Duration = Duration::from_secs(3);
    let t = (0..5)
        .find_map(|_| {
            let asked = std::time::Instant::now();
            let t = login(&app, "alice");
            let active = is_active(&app, access(&t));
            (asked.elapsed() < SURELY_ALIVE).then(|| {
                assert!(active, "an access token was inactive before ACCESS_TTL_S");
                t
            })
        })
        .expect("five login + introspect round trips each took over 3 s");
    assert_eq!(t["expires_in"], 4);
    assert_eq!(t["refresh_expires_in"], 5);

    let expired = app.eventually(Duration::from_secs(10), || !is_active(&app, access(&t)));
    assert!(expired, "an access token outlived ACCESS_TTL_S");
    app.err("auth.sessions", json!({"token": access(&t)}), -32030);

    // Polled in PostgreSQL, not by refreshing (which would spend it).
    let lapsed = app.eventually(Duration::from_secs(10), || {
        app.pg()
            .query_one(
                "SELECT expires_at <= now() FROM refresh_tokens WHERE token_hash = $1",
                &[&sha256(refresh(&t))],
            )
            .unwrap()
            .get(0)
    });
    assert!(lapsed);
    app.err(
        "auth.refresh",
        json!({"refresh_token": refresh(&t)}),
        -32030,
    );
}
