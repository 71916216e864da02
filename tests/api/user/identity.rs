//! `user.update_account`: an operator changes a username, an email or
//! whether it counts as verified; a username given up is held from other
//! accounts for `[AUTH] USERNAME_HOLD_DAYS`.

use serde_json::{json, Value};

use super::*;

fn rename(app: &TestApp, id: i64, to: &str) -> Value {
    app.ok(
        "user.update_account",
        json!({"user_id": id, "username": to}),
    )
}

fn register_named(app: &TestApp, name: &str) -> Value {
    app.rpc(
        "auth.register",
        json!({"username": name, "password": PASSWORD}),
    )
}

#[test]
fn a_released_username_is_held_from_others_but_its_account_may_take_it_back() {
    let app = spawn_app();
    let (id, t) = app.register_and_login("ann");
    assert_eq!(rename(&app, id, "Anna")["username"], "anna");
    // The session follows the account under its new name.
    let me = app.ok("auth.introspect", json!({"token": t["access_token"]}));
    assert_eq!(me["username"], "anna");
    app.ok(
        "auth.login",
        json!({"username": "anna", "password": PASSWORD}),
    );

    let taken = register_named(&app, "ann");
    assert_eq!(taken["error"]["code"], -32010, "{taken}");
    assert_eq!(taken["error"]["data"], json!({"field": "username"}));
    let imported = app.ok(
        "user.import",
        json!({"users": [{"username": "ann", "password_hash": password_hash()}]}),
    );
    assert_eq!(
        imported["errors"],
        json!([{"index": 0, "code": -32010, "field": "username"}])
    );
    let bob = app.register("bob");
    let e = app.err(
        "user.update_account",
        json!({"user_id": bob, "username": "ann"}),
        -32010,
    );
    assert_eq!(e["data"], json!({"field": "username"}));

    // The account itself may take its old name back.
    assert_eq!(rename(&app, id, "ann")["username"], "ann");
    // And once the account is erased, its names are free.
    app.ok("user.delete", json!({ "user_id": id }));
    assert!(register_named(&app, "anna").get("error").is_none());
    assert!(register_named(&app, "ann").get("error").is_none());
}

#[test]
fn with_no_hold_days_a_released_username_is_free_at_once() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nUSERNAME_HOLD_DAYS = 0\n".into(),
        ..Options::default()
    });
    let id = app.register("ann");
    rename(&app, id, "anna");
    assert!(register_named(&app, "ann").get("error").is_none());
}

#[test]
fn update_account_sets_email_and_verification_and_refuses_what_is_taken() {
    let app = spawn_app();
    let id = register_with_email(&app, "ann");
    register_with_email(&app, "bob");
    let user = app.ok(
        "user.update_account",
        json!({"user_id": id, "email_verified": true}),
    );
    assert_eq!(user["email_verified"], true);
    // A new email is unverified unless told otherwise.
    let user = app.ok(
        "user.update_account",
        json!({"user_id": id, "email": "Ann@New.Example"}),
    );
    assert_eq!(user["email"], "ann@new.example");
    assert_eq!(user["email_verified"], false);
    let user = app.ok(
        "user.update_account",
        json!({"user_id": id, "email": "ann@third.example", "email_verified": true}),
    );
    assert_eq!(user["email_verified"], true);
    assert_eq!(get(&app, id)["email"], "ann@third.example");

    let taken = app.err(
        "user.update_account",
        json!({"user_id": id, "email": "bob@example.com"}),
        -32010,
    );
    assert_eq!(taken["data"], json!({"field": "email"}));
    app.err(
        "user.update_account",
        json!({"user_id": id + 1000, "username": "zed"}),
        -32013,
    );
    assert_invalid(
        &app,
        "user.update_account",
        json!({ "user_id": id }),
        "username",
        "nothing_to_change",
    );
    let nomail = app.register("nomail");
    assert_invalid(
        &app,
        "user.update_account",
        json!({"user_id": nomail, "email_verified": true}),
        "email_verified",
        "no_email",
    );
}
