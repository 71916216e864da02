//! The second factor's rules around the login: disabling it (password and a
//! code, other sessions revoked), an operator's reset (every session
//! revoked), wrong codes counted by the login limits, and roles that need a
//! session with a second factor (`[AUTH] MFA_REQUIRED_ROLES`).

use std::time::Duration;

use serde_json::json;

use super::mfa::{challenge, code, enrol, history_reasons, wrong_code};
use super::*;

#[test]
fn disable_needs_the_password_and_a_code_and_revokes_every_other_session() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nLOGIN_MAX_FAILS = 100\n".into(),
        ..Options::default()
    });
    let e = enrol(&app, "alice");
    let current = app.ok(
        "auth.mfa.verify",
        json!({"mfa_token": challenge(&app, "alice"), "code": code(&e.secret, e.s0 + 1)}),
    );
    let other = app.ok(
        "auth.mfa.verify",
        json!({"mfa_token": challenge(&app, "alice"), "recovery_code": e.recovery_codes[0]}),
    );
    let t = access(&current);
    let disable =
        |password: &str, code: &str| json!({"token": t, "password": password, "code": code});
    app.err(
        "auth.mfa.disable",
        disable("wrong password 123", &e.recovery_codes[1]),
        -32011,
    );
    app.err(
        "auth.mfa.disable",
        disable(PASSWORD, &wrong_code(&e.secret, e.s0)),
        -32011,
    );
    // A spent recovery code or the already accepted step is no proof.
    app.err(
        "auth.mfa.disable",
        disable(PASSWORD, &e.recovery_codes[0]),
        -32011,
    );
    app.err(
        "auth.mfa.disable",
        disable(PASSWORD, &code(&e.secret, e.s0 + 1)),
        -32011,
    );
    app.err("auth.mfa.disable", disable(PASSWORD, "not a code"), -32602);
    assert!(
        is_active(&app, access(&other)),
        "a refused disable revoked a session"
    );

    let answer = app.ok("auth.mfa.disable", disable(PASSWORD, &e.recovery_codes[1]));
    assert_eq!(answer, json!({"disabled": true}));
    assert!(is_active(&app, t), "the calling session was revoked");
    assert!(!is_active(&app, access(&other)));
    assert!(!is_active(&app, access(&e.tokens)));
    assert_eq!(
        app.ok("user.get", json!({"user_id": e.user_id}))["mfa"]["totp"],
        false
    );
    let rows: i64 = app
        .pg()
        .query_one(
            "SELECT (SELECT count(*) FROM user_mfa) + (SELECT count(*) FROM mfa_recovery_codes)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "the secret or recovery codes outlived disable");
    // A password alone logs in again; nothing left to disable; set up anew.
    assert!(login(&app, "alice")["access_token"].is_string());
    app.err("auth.mfa.disable", disable(PASSWORD, "123456"), -32013);
    app.ok("auth.mfa.setup_totp", json!({"token": t}));
    let ok = app.eventually(Duration::from_secs(10), || {
        history_reasons(&app, e.user_id).contains(&json!("mfa_disabled"))
    });
    assert!(ok, "{:?}", history_reasons(&app, e.user_id));
}

#[test]
fn reset_mfa_removes_the_factor_and_revokes_every_session() {
    let app = spawn_app();
    let e = enrol(&app, "alice");
    let with_otp = app.ok(
        "auth.mfa.verify",
        json!({"mfa_token": challenge(&app, "alice"), "code": code(&e.secret, e.s0 + 1)}),
    );
    // Cached with mfa.totp = true before the reset.
    assert_eq!(
        app.ok("user.get", json!({"user_id": e.user_id}))["mfa"]["totp"],
        true
    );
    let user = app.ok("user.reset_mfa", json!({"user_id": e.user_id}));
    assert_eq!(user["user_id"], e.user_id);
    assert_eq!(user["mfa"], json!({"totp": false, "passkeys": 0}));
    assert_eq!(
        app.ok("user.get", json!({"user_id": e.user_id}))["mfa"]["totp"],
        false
    );
    assert!(!is_active(&app, access(&with_otp)));
    assert!(!is_active(&app, access(&e.tokens)));
    app.err(
        "auth.refresh",
        json!({"refresh_token": refresh(&with_otp)}),
        -32030,
    );
    assert!(login(&app, "alice")["access_token"].is_string());
    app.err("user.reset_mfa", json!({"user_id": 999_999}), -32013);
    let ok = app.eventually(Duration::from_secs(10), || {
        history_reasons(&app, e.user_id).contains(&json!("mfa_reset"))
    });
    assert!(ok, "{:?}", history_reasons(&app, e.user_id));
}

#[test]
fn wrong_codes_count_toward_the_login_limits() {
    // LOGIN_MAX_FAILS = 5 per (login, ip): five wrong codes from the
    // address the password came from, and the next login there is limited.
    let app = spawn_app();
    let e = enrol(&app, "alice");
    let params = json!({"username": "alice", "password": PASSWORD, "ip": "192.0.2.9"});
    let answer = app.ok("auth.login", params.clone());
    let token = answer["mfa_token"].as_str().unwrap();
    for _ in 0..5 {
        let wrong = wrong_code(&e.secret, e.s0 + 1);
        app.err(
            "auth.mfa.verify",
            json!({"mfa_token": token, "code": wrong}),
            -32011,
        );
    }
    let limited = app.err("auth.login", params, -32029);
    assert!(
        limited["data"]["retry_after"].as_u64().unwrap() >= 1,
        "{limited}"
    );
}

#[test]
fn a_role_in_mfa_required_roles_grants_only_to_a_session_with_a_second_factor() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nMFA_REQUIRED_ROLES = admin\n".into(),
        ..Options::default()
    });
    let e = enrol(&app, "alice");
    for role in ["admin", "editor"] {
        app.ok(
            "user.grant_role",
            json!({"user_id": e.user_id, "role": role}),
        );
    }
    let pwd_only = login_before_mfa(&app, &e);
    let authorize = |token: &str, permission: &str| {
        app.ok(
            "auth.authorize",
            json!({"token": token, "permission": permission}),
        )
    };
    assert_eq!(
        authorize(&pwd_only, "user:delete"),
        json!({"allowed": false, "user_id": e.user_id, "reason": "mfa_required"})
    );
    // A role outside the list still grants its own permissions.
    assert_eq!(authorize(&pwd_only, "post:edit")["allowed"], true);
    assert_eq!(
        authorize(&pwd_only, "user:delete")["reason"],
        "mfa_required",
        "allowed through admin"
    );
    let with_otp = app.ok(
        "auth.mfa.verify",
        json!({"mfa_token": challenge(&app, "alice"), "code": code(&e.secret, e.s0 + 1)}),
    );
    assert_eq!(
        authorize(access(&with_otp), "user:delete"),
        json!({"allowed": true, "user_id": e.user_id})
    );
    // Without the role at all: missing_permission, as before.
    let (_, bob) = app.register_and_login("bob");
    assert_eq!(
        authorize(access(&bob), "user:delete")["reason"],
        "missing_permission"
    );
}

/// The enrolment's own session: opened with a password alone, it carries
/// the roles granted since (they are read per token).
fn login_before_mfa(app: &TestApp, e: &super::mfa::Enrolled) -> String {
    let t = access(&e.tokens).to_string();
    assert_eq!(
        app.ok("auth.introspect", json!({"token": t}))["amr"],
        json!(["pwd"])
    );
    t
}
