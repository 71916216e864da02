//! `auth.introspect` and `auth.authorize`: what an access token stands for,
//! and whether its user's roles grant a permission, changes included at once.

use serde_json::json;

use super::*;

fn authorize(app: &TestApp, token: &str, permission: &str) -> serde_json::Value {
    app.ok(
        "auth.authorize",
        json!({"token": token, "permission": permission}),
    )
}

#[test]
fn introspect_describes_an_active_access_token() {
    let app = spawn_app();
    let (id, t) = app.register_and_login("alice");
    let now = chrono::Utc::now().timestamp();

    let info = app.ok("auth.introspect", json!({"token": access(&t)}));
    assert_eq!(info["active"], true);
    assert_eq!(info["user_id"], id);
    assert_eq!(info["username"], "alice");
    assert_eq!(info["session_id"], t["session_id"]);
    assert_eq!(info["roles"], json!([]));
    let (iat, exp) = (info["iat"].as_i64().unwrap(), info["exp"].as_i64().unwrap());
    assert!(
        (now - 60..=now + 60).contains(&iat),
        "iat = {iat}, now = {now}"
    );
    assert_eq!(exp - iat, 900, "exp is not ACCESS_TTL_S after iat");
    // Asked twice (now from a cache), the answer is the same.
    assert_eq!(
        app.ok("auth.introspect", json!({"token": access(&t)})),
        info
    );
}

#[test]
fn introspect_answers_inactive_for_garbage_a_refresh_token_and_after_logout() {
    let app = spawn_app();
    let (_, t) = app.register_and_login("alice");
    let reset = app.ok("auth.request_password_reset", json!({"username": "alice"}));
    let inactive = json!({"active": false});

    let unknown = format!("pat_{}", "A".repeat(43));
    for token in [
        "",
        "garbage",
        unknown.as_str(),
        refresh(&t),
        reset["reset_token"].as_str().unwrap(),
    ] {
        assert_eq!(
            app.ok("auth.introspect", json!({"token": token})),
            inactive,
            "{token:?}"
        );
    }
    assert!(is_active(&app, access(&t)));
    app.ok("auth.logout", json!({"token": access(&t)}));
    assert_eq!(
        app.ok("auth.introspect", json!({"token": access(&t)})),
        inactive
    );
}

#[test]
fn authorize_follows_granted_and_revoked_roles_at_once() {
    let app = spawn_app();
    let (id, t) = app.register_and_login("alice");
    let token = access(&t);

    let refused = authorize(&app, token, "post:edit");
    assert_eq!(
        refused,
        json!({"allowed": false, "user_id": id, "reason": "missing_permission"})
    );

    app.ok("user.grant_role", json!({"user_id": id, "role": "editor"}));
    assert_eq!(
        authorize(&app, token, "post:edit"),
        json!({"allowed": true, "user_id": id})
    );
    assert_eq!(authorize(&app, token, "user:read")["allowed"], true);
    assert_eq!(authorize(&app, token, "user:write")["allowed"], false);
    assert_eq!(
        app.ok("auth.introspect", json!({"token": token}))["roles"],
        json!(["editor"])
    );

    app.ok("user.revoke_role", json!({"user_id": id, "role": "editor"}));
    assert_eq!(authorize(&app, token, "post:edit"), refused);
    assert_eq!(
        app.ok("auth.introspect", json!({"token": token}))["roles"],
        json!([])
    );
}

#[test]
fn authorize_grants_any_permission_through_the_wildcard_admin_role() {
    let app = spawn_app();
    let (id, t) = app.register_and_login("root");
    let (_, viewer) = app.register_and_login("vera");
    app.ok("user.grant_role", json!({"user_id": id, "role": "admin"}));
    let vera = app.ok("user.find", json!({"username": "vera"}))["user_id"].clone();
    app.ok(
        "user.grant_role",
        json!({"user_id": vera, "role": "viewer"}),
    );

    for permission in ["post:edit", "user:delete", "billing:refund:all"] {
        assert_eq!(
            authorize(&app, access(&t), permission),
            json!({"allowed": true, "user_id": id})
        );
        assert_eq!(
            authorize(&app, access(&viewer), permission)["allowed"],
            false
        );
    }
    assert_eq!(
        authorize(&app, access(&viewer), "user:read")["allowed"],
        true
    );
}

#[test]
fn authorize_with_an_invalid_token_is_a_refusal_not_an_error() {
    let app = spawn_app();
    let (id, t) = app.register_and_login("alice");
    app.ok("user.grant_role", json!({"user_id": id, "role": "admin"}));

    assert_eq!(
        authorize(&app, "garbage", "post:edit"),
        json!({"allowed": false, "reason": "invalid_token"})
    );
    assert_eq!(
        authorize(&app, refresh(&t), "post:edit"),
        json!({"allowed": false, "reason": "invalid_token"})
    );
    app.ok("auth.logout", json!({"token": access(&t)}));
    assert_eq!(
        authorize(&app, access(&t), "post:edit"),
        json!({"allowed": false, "reason": "invalid_token"})
    );
    // A pattern is not a permission.
    let e = app.err(
        "auth.authorize",
        json!({"token": access(&t), "permission": "post:*"}),
        -32602,
    );
    assert_eq!(e["data"]["field"], "permission");
}
