//! `auth.delete_account`: the user erases its own account, with its
//! password, and a second factor when TOTP is on.

use serde_json::json;

use super::mfa::{code, enrol, wrong_code};
use super::*;

fn exists(app: &TestApp, id: i64) -> bool {
    app.rpc("user.get", json!({ "user_id": id }))
        .get("error")
        .is_none()
}

#[test]
fn delete_account_needs_the_password_and_erases_the_account() {
    let app = spawn_app();
    let (id, t) = app.register_and_login("ann");
    app.err(
        "auth.delete_account",
        json!({"token": access(&t), "password": "not the right one"}),
        -32011,
    );
    app.err(
        "auth.delete_account",
        json!({"token": "pat_nope", "password": PASSWORD}),
        -32030,
    );
    assert!(exists(&app, id));
    assert_eq!(
        app.ok(
            "auth.delete_account",
            json!({"token": access(&t), "password": PASSWORD})
        ),
        json!({"deleted": true})
    );
    assert!(!exists(&app, id));
    assert!(!is_active(&app, access(&t)));
    app.err(
        "auth.login",
        json!({"username": "ann", "password": PASSWORD}),
        -32011,
    );
}

#[test]
fn with_totp_on_delete_account_needs_a_current_code_or_a_recovery_code() {
    let app = spawn_app();
    let ann = enrol(&app, "ann");
    let token = access(&ann.tokens).to_string();
    let missing = app.err(
        "auth.delete_account",
        json!({"token": token, "password": PASSWORD}),
        -32602,
    );
    assert_eq!(missing["data"]["field"], "code");
    app.err(
        "auth.delete_account",
        json!({"token": token, "password": PASSWORD, "code": wrong_code(&ann.secret, ann.s0 + 1)}),
        -32011,
    );
    assert!(exists(&app, ann.user_id));
    // A code of the step after enrolment's (inside the ±1 window).
    app.ok(
        "auth.delete_account",
        json!({"token": token, "password": PASSWORD, "code": code(&ann.secret, ann.s0 + 1)}),
    );
    assert!(!exists(&app, ann.user_id));

    let bob = enrol(&app, "bob");
    app.ok(
        "auth.delete_account",
        json!({"token": access(&bob.tokens), "password": PASSWORD,
               "code": bob.recovery_codes[0]}),
    );
    assert!(!exists(&app, bob.user_id));
}
