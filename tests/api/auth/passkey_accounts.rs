//! Passkeys and the account around them: an account registered without a
//! password (its `pre_` enrolment token, no password login or reset),
//! exports and `user.reset_mfa`, the login limits, `MFA_REQUIRED_ROLES`,
//! and a server without `[WEBAUTHN]`.

use serde_json::json;

use super::passkey::{enrol, events_of, sign_in};
use super::sha256;
use crate::helpers::*;

#[test]
fn an_account_without_a_password_enrols_once_and_signs_in_only_with_its_passkey() {
    let app = spawn_app();
    let created = app.ok("auth.register", json!({"username": "nopass"}));
    let user_id = created["user_id"].as_i64().unwrap();
    let enrolment = created["enrolment_token"].as_str().unwrap().to_string();
    assert!(enrolment.starts_with("pre_"), "{created}");
    let stored: Vec<u8> = app
        .pg()
        .query_one(
            "SELECT token_hash FROM passkey_enrolments WHERE user_id = $1",
            &[&user_id],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, sha256(&enrolment), "only the SHA-256 is stored");

    let e = enrol(&app, &enrolment);
    // Spent: one passkey per enrolment token.
    app.err(
        "auth.passkey.register_begin",
        json!({"token": enrolment}),
        -32030,
    );
    let answer = sign_in(&app, Some("nopass"), &e.device, json!({}));
    assert_eq!(answer["result"]["user_id"], user_id, "{answer}");
    // Its only way in stays.
    let token = answer["result"]["access_token"].as_str().unwrap();
    let kept = app.err(
        "auth.passkey.remove",
        json!({"token": token, "passkey_id": e.passkey_id}),
        -32602,
    );
    assert_eq!(kept["data"]["reason"], "last_passkey");
    assert_eq!(
        app.ok("auth.passkey.list", json!({"token": token}))["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // No password matches, whatever is typed, and none can be set by reset.
    app.err(
        "auth.login",
        json!({"username": "nopass", "password": PASSWORD}),
        -32011,
    );
    app.err(
        "auth.login",
        json!({"username": "nopass", "password": "!passkey"}),
        -32011,
    );
    let refused = app.err(
        "auth.request_password_reset",
        json!({"username": "nopass"}),
        -32602,
    );
    assert_eq!(refused["data"]["reason"], "passkey_only");
    let resets: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM password_resets WHERE user_id = $1",
            &[&user_id],
        )
        .unwrap()
        .get(0);
    assert_eq!(resets, 0);
}

#[test]
fn exports_list_passkeys_and_reset_mfa_removes_every_one() {
    let app = spawn_app();
    let (user_id, tokens) = app.register_and_login("erik");
    let token = tokens["access_token"].as_str().unwrap();
    let e = enrol(&app, token);
    let export = app.ok("user.export", json!({"user_id": user_id}));
    let listed = export["passkeys"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{export}");
    assert_eq!(listed[0]["passkey_id"], e.passkey_id);
    assert_eq!(listed[0]["name"], "laptop");
    assert!(
        !export.to_string().contains("public"),
        "no key material in exports"
    );
    let own = app.ok("auth.export_account", json!({"token": token}));
    assert_eq!(own["passkeys"], export["passkeys"]);

    app.ok("user.reset_mfa", json!({"user_id": user_id}));
    let left: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM passkeys WHERE user_id = $1",
            &[&user_id],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let removed = events_of(&app, "passkey.removed", user_id);
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["by"], "operator");
    let user = app.ok("user.get", json!({"user_id": user_id}));
    assert_eq!(user["mfa"]["passkeys"], 0);
    let answer = sign_in(&app, None, &e.device, json!({}));
    assert_eq!(answer["error"]["code"], -32011, "{answer}");
}

#[test]
fn failed_passkey_logins_count_toward_the_login_limit() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nLOGIN_MAX_FAILS = 2\nLOGIN_WINDOW_S = 600\n".into(),
        ..Options::default()
    });
    let (_, tokens) = app.register_and_login("fred");
    let e = enrol(&app, tokens["access_token"].as_str().unwrap());
    for _ in 0..2 {
        let answer = sign_in(
            &app,
            Some("fred"),
            &e.device,
            json!({"origin": "https://evil.test"}),
        );
        assert_eq!(answer["error"]["code"], -32011, "{answer}");
    }
    // Even the right passkey waits now, from that address.
    let answer = sign_in(&app, Some("fred"), &e.device, json!({}));
    assert_eq!(answer["error"]["code"], -32029, "{answer}");
    assert!(answer["error"]["data"]["retry_after"].as_u64().unwrap() > 0);
}

#[test]
fn a_passkey_session_satisfies_mfa_required_roles() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nMFA_REQUIRED_ROLES = admin\n".into(),
        ..Options::default()
    });
    let (user_id, tokens) = app.register_and_login("gwen");
    app.ok(
        "user.grant_role",
        json!({"user_id": user_id, "role": "admin"}),
    );
    let by_password = app.ok(
        "auth.authorize",
        json!({"token": tokens["access_token"], "permission": "anything"}),
    );
    assert_eq!(by_password["allowed"], false);
    let e = enrol(&app, tokens["access_token"].as_str().unwrap());
    let answer = sign_in(&app, Some("gwen"), &e.device, json!({}));
    let by_passkey = app.ok(
        "auth.authorize",
        json!({"token": answer["result"]["access_token"], "permission": "anything"}),
    );
    assert_eq!(by_passkey["allowed"], true, "{by_passkey}");
}

#[test]
fn without_webauthn_configured_passkey_methods_say_so() {
    let app = spawn_with(Options {
        ini: "[WEBAUTHN]\nRP_ID =\nRP_NAME =\nORIGINS =\n".into(),
        ..Options::default()
    });
    let e = app.err("auth.passkey.login_begin", json!({}), -32601);
    assert_eq!(e["data"]["section"], "WEBAUTHN");
    // And no account without a password can be made.
    let e = app.err("auth.register", json!({"username": "nokeys"}), -32602);
    assert_eq!(e["data"]["field"], "password");
}
