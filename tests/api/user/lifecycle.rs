//! `user.export` and `user.delete`: everything stored about a person, and
//! its erasure from both stores and every instance.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;

fn count(app: &TestApp, sql: &str, id: i64) -> i64 {
    app.pg().query_one(sql, &[&id]).unwrap().get(0)
}

fn events_in_mongo(app: &TestApp, id: i64) -> u64 {
    app.mongo()
        .collection::<Document>("login_events")
        .count_documents(doc! {"user_id": id})
        .run()
        .unwrap()
}

/// The account's rows in every PostgreSQL table that holds any.
const USER_TABLES: &[&str] = &[
    "SELECT count(*) FROM users WHERE id = $1",
    "SELECT count(*) FROM user_roles WHERE user_id = $1",
    "SELECT count(*) FROM sessions WHERE user_id = $1",
    "SELECT count(*) FROM access_tokens t JOIN sessions s ON s.id = t.session_id WHERE s.user_id = $1",
    "SELECT count(*) FROM user_mfa WHERE user_id = $1",
    "SELECT count(*) FROM email_verifications WHERE user_id = $1",
    "SELECT count(*) FROM password_resets WHERE user_id = $1",
];

/// An account with one thing of each kind stored: email, a role, two
/// sessions (one revoked), a login event, a pending TOTP setup, a pending
/// change of email, a reset token and a profile. Its id and a live login.
fn full_account(app: &TestApp, name: &str) -> (i64, Value) {
    let id = app.ok(
        "auth.register",
        json!({"username": name, "password": PASSWORD, "email": format!("{name}@example.com"),
               "profile": {"nickname": "Ann", "bio": "hello"}}),
    )["user_id"]
        .as_i64()
        .unwrap();
    app.ok("user.grant_role", json!({"user_id": id, "role": "editor"}));
    let old = app.ok(
        "auth.login",
        json!({"username": name, "password": PASSWORD, "ip": "192.0.2.9", "user_agent": "old/1"}),
    );
    app.ok("auth.logout", json!({"token": old["access_token"]}));
    let live = app.ok(
        "auth.login",
        json!({"username": name, "password": PASSWORD, "ip": "192.0.2.7", "user_agent": "tests/1.0"}),
    );
    let token = live["access_token"].clone();
    app.ok("auth.mfa.setup_totp", json!({ "token": token }));
    app.ok(
        "auth.change_email",
        json!({"token": token, "password": PASSWORD, "new_email": format!("{name}@new.example")}),
    );
    app.ok("auth.request_password_reset", json!({ "username": name }));
    let written = app.eventually(Duration::from_secs(10), || events_in_mongo(app, id) >= 2);
    assert!(written, "the login events never reached MongoDB");
    (id, live)
}

#[test]
fn an_export_holds_one_of_each_kind_of_thing_stored_and_never_a_secret() {
    let app = spawn_app();
    let (id, live) = full_account(&app, "ann");
    let export = app.ok("user.export", json!({ "user_id": id }));

    let account = &export["account"];
    assert_eq!(account["user_id"], id);
    assert_eq!(account["username"], "ann");
    assert_eq!(account["email"], "ann@example.com");
    assert_eq!(account["email_verified"], false);
    assert_eq!(account["state"], "active");
    assert_eq!(account["pending_email"]["email"], "ann@new.example");
    assert_eq!(export["roles"][0]["role"], "editor");
    let sessions = export["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(sessions[0]["ip"], "192.0.2.7");
    assert_eq!(sessions[0]["revoked_at"], Value::Null);
    assert_eq!(sessions[1]["user_agent"], "old/1");
    assert!(sessions[1]["revoked_at"].is_string());
    assert_eq!(export["mfa"]["totp"], false);
    assert_eq!(export["mfa"]["totp_pending"], true);
    assert_eq!(export["passkeys"], json!([]));
    assert_eq!(
        export["profile"],
        json!({"nickname": "Ann", "bio": "hello"})
    );
    let events = export["login_events"].as_array().unwrap();
    assert!(events.len() >= 2, "{events:?}");
    assert!(events.iter().any(|e| e["ip"] == "192.0.2.7"));

    // Never a hash, a token or a secret.
    let text = export.to_string();
    let hash: String = app
        .pg()
        .query_one("SELECT password_hash FROM users WHERE id = $1", &[&id])
        .unwrap()
        .get(0);
    for secret in [
        hash.as_str(),
        live["access_token"].as_str().unwrap(),
        live["refresh_token"].as_str().unwrap(),
        "pev_",
        "prs_",
        "$2b$",
        PASSWORD,
    ] {
        assert!(!text.contains(secret), "the export holds {secret}");
    }

    // auth.export_account: the same for the token's own account.
    let own = app.ok(
        "auth.export_account",
        json!({"token": live["access_token"]}),
    );
    assert_eq!(own["account"], export["account"]);
    assert_eq!(own["sessions"], export["sessions"]);
    app.err("user.export", json!({"user_id": id + 1000}), -32013);
    app.err("auth.export_account", json!({"token": "pat_nope"}), -32030);
}

#[test]
fn delete_erases_every_row_and_document_and_frees_the_username_and_email() {
    let app = spawn_app();
    let (id, _) = full_account(&app, "ann");
    assert!(profile_doc(&app, id).is_some());

    assert_eq!(
        app.ok("user.delete", json!({ "user_id": id })),
        json!({"deleted": true})
    );
    app.err("user.get", json!({ "user_id": id }), -32013);
    app.err("user.login_history", json!({ "user_id": id }), -32013);
    app.err("user.export", json!({ "user_id": id }), -32013);
    for sql in USER_TABLES {
        assert_eq!(count(&app, sql, id), 0, "{sql}");
    }
    assert!(profile_doc(&app, id).is_none());
    assert_eq!(events_in_mongo(&app, id), 0);
    app.err("user.delete", json!({ "user_id": id }), -32013);

    // The name and the address are free again.
    app.ok(
        "auth.register",
        json!({"username": "ann", "password": PASSWORD, "email": "ann@example.com"}),
    );
}

#[test]
fn a_deleted_users_tokens_are_dead_on_every_instance() {
    let app = spawn_app();
    let other = app.another();
    let (id, tokens) = app.register_and_login("ann");
    let token = tokens["access_token"].as_str().unwrap();
    // Cached as active on the other instance first.
    let active = |a: &TestApp| a.ok("auth.introspect", json!({ "token": token }))["active"] == true;
    assert!(active(&other));
    assert!(get(&other, id)["username"] == "ann");

    app.ok("user.delete", json!({ "user_id": id }));
    assert!(!active(&app));
    let dead = other.eventually(Duration::from_secs(5), || !active(&other));
    assert!(dead, "the token is still active on the other instance");
    let gone = other.eventually(Duration::from_secs(5), || {
        other.rpc("user.get", json!({ "user_id": id }))["error"]["code"] == -32013
    });
    assert!(gone, "the other instance still serves the deleted user");
    app.err(
        "auth.refresh",
        json!({"refresh_token": tokens["refresh_token"]}),
        -32030,
    );
}
