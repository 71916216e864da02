//! An account's email: `auth.request_email_verification`,
//! `auth.verify_email`, `auth.change_email`, and `[AUTH]
//! REQUIRE_VERIFIED_EMAIL` at login.

use serde_json::{json, Value};

use super::*;

fn register_with_email(app: &TestApp, username: &str, email: &str) -> (i64, Value) {
    let id = app.ok(
        "auth.register",
        json!({"username": username, "password": PASSWORD, "email": email}),
    )["user_id"]
        .as_i64()
        .unwrap();
    (id, login(app, username))
}

fn user(app: &TestApp, id: i64) -> Value {
    app.ok("user.get", json!({ "user_id": id }))
}

fn verification_rows(app: &TestApp, id: i64) -> Vec<(Vec<u8>, bool)> {
    app.pg()
        .query(
            "SELECT token_hash, used_at IS NOT NULL FROM email_verifications \
             WHERE user_id = $1 ORDER BY created_at",
            &[&id],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn a_verification_token_proves_the_email_once_and_the_user_shows_it_verified() {
    let app = spawn_app();
    let (id, t) = register_with_email(&app, "ann", "Ann@Example.com");
    // Read first, so a cached User must be dropped by the verification.
    assert_eq!(user(&app, id)["email_verified"], false);

    let issued = app.ok(
        "auth.request_email_verification",
        json!({"token": access(&t)}),
    );
    let token = issued["verify_token"].as_str().unwrap();
    assert!(token.starts_with("pev_"), "{token}");
    assert_eq!(issued["email"], "ann@example.com");
    assert_eq!(issued["expires_in"], 86400);
    // Stored only as its SHA-256.
    assert_eq!(verification_rows(&app, id), vec![(sha256(token), false)]);

    let verified = app.ok("auth.verify_email", json!({ "verify_token": token }));
    assert_eq!(verified, json!({"user_id": id, "email": "ann@example.com"}));
    assert_eq!(user(&app, id)["email_verified"], true);
    // Single use.
    app.err(
        "auth.verify_email",
        json!({ "verify_token": token }),
        -32030,
    );
}

#[test]
fn a_new_verification_request_spends_the_older_token() {
    let app = spawn_app();
    let (id, t) = register_with_email(&app, "ann", "ann@example.com");
    let first = app.ok(
        "auth.request_email_verification",
        json!({"token": access(&t)}),
    );
    let second = app.ok("auth.request_email_verification", json!({"user_id": id}));
    app.err(
        "auth.verify_email",
        json!({"verify_token": first["verify_token"]}),
        -32030,
    );
    app.ok(
        "auth.verify_email",
        json!({"verify_token": second["verify_token"]}),
    );
}

#[test]
fn an_account_without_an_email_is_not_found_and_every_bad_token_is_unauthorized_alike() {
    let app = spawn_app();
    let (id, t) = app.register_and_login("ann");
    app.err(
        "auth.request_email_verification",
        json!({"token": access(&t)}),
        -32013,
    );
    app.err(
        "auth.request_email_verification",
        json!({"user_id": id}),
        -32013,
    );
    app.err(
        "auth.request_email_verification",
        json!({"token": "pat_nope"}),
        -32030,
    );
    let unknown = format!("pev_{}", "A".repeat(43));
    let errors: Vec<Value> = ["garbage", unknown.as_str(), access(&t)]
        .iter()
        .map(|bad| app.err("auth.verify_email", json!({ "verify_token": bad }), -32030))
        .collect();
    // No oracle: the same answer whatever was wrong.
    assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
    assert!(errors[0].get("data").is_none(), "{}", errors[0]);
}

#[test]
fn a_verification_of_an_email_the_account_no_longer_has_proves_nothing() {
    let app = spawn_app();
    let (id, t) = register_with_email(&app, "ann", "ann@example.com");
    let old = app.ok(
        "auth.request_email_verification",
        json!({"token": access(&t)}),
    );
    let change = app.ok(
        "auth.change_email",
        json!({"token": access(&t), "password": PASSWORD, "new_email": "ann@new.example"}),
    );
    app.ok(
        "auth.verify_email",
        json!({"verify_token": change["verify_token"]}),
    );
    app.err(
        "auth.verify_email",
        json!({"verify_token": old["verify_token"]}),
        -32030,
    );
    assert_eq!(user(&app, id)["email"], "ann@new.example");
}

#[test]
fn with_require_verified_email_an_unverified_login_is_refused_only_after_the_password() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nREQUIRE_VERIFIED_EMAIL = true\n".into(),
        ..Options::default()
    });
    let id = app.ok(
        "auth.register",
        json!({"username": "ann", "password": PASSWORD, "email": "ann@example.com"}),
    )["user_id"]
        .as_i64()
        .unwrap();
    let wrong = json!({"username": "ann", "password": "not the right one"});
    app.err("auth.login", wrong, -32011);
    let refused = app.err(
        "auth.login",
        json!({"username": "ann", "password": PASSWORD}),
        -32014,
    );
    assert!(refused.get("data").is_none(), "{refused}");
    // No session was opened.
    let sessions: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM sessions WHERE user_id = $1", &[&id])
        .unwrap()
        .get(0);
    assert_eq!(sessions, 0);
    // An account without an email has nothing to prove.
    app.register_and_login("bob");

    // The back office asks for the token by id; once verified, ann logs in.
    let issued = app.ok("auth.request_email_verification", json!({"user_id": id}));
    app.ok(
        "auth.verify_email",
        json!({"verify_token": issued["verify_token"]}),
    );
    login(&app, "ann");
}

#[test]
fn change_email_keeps_the_old_address_until_the_new_one_is_verified() {
    let app = spawn_app();
    let (id, t) = register_with_email(&app, "ann", "ann@example.com");
    let issued = app.ok(
        "auth.request_email_verification",
        json!({"token": access(&t)}),
    );
    app.ok(
        "auth.verify_email",
        json!({"verify_token": issued["verify_token"]}),
    );
    assert_eq!(user(&app, id)["email_verified"], true);

    let change = app.ok(
        "auth.change_email",
        json!({"token": access(&t), "password": PASSWORD, "new_email": "Ann@New.Example"}),
    );
    let token = change["verify_token"].as_str().unwrap();
    assert!(token.starts_with("pev_"));
    assert_eq!(change["expires_in"], 86400);
    let before = user(&app, id);
    assert_eq!(before["email"], "ann@example.com");
    assert_eq!(before["email_verified"], true);
    // The old address still logs in; the new one not yet.
    app.ok(
        "auth.login",
        json!({"username": "ann@example.com", "password": PASSWORD}),
    );
    app.err(
        "auth.login",
        json!({"username": "ann@new.example", "password": PASSWORD}),
        -32011,
    );

    let verified = app.ok("auth.verify_email", json!({ "verify_token": token }));
    assert_eq!(verified, json!({"user_id": id, "email": "ann@new.example"}));
    let after = user(&app, id);
    assert_eq!(after["email"], "ann@new.example");
    assert_eq!(after["email_verified"], true);
    app.ok(
        "auth.login",
        json!({"username": "ann@new.example", "password": PASSWORD}),
    );
    // The old address is free again.
    app.ok(
        "auth.register",
        json!({"username": "other", "password": PASSWORD, "email": "ann@example.com"}),
    );
}

#[test]
fn change_email_needs_the_password_and_a_free_address() {
    let app = spawn_app();
    let (_, t) = register_with_email(&app, "ann", "ann@example.com");
    register_with_email(&app, "bob", "bob@example.com");
    app.err(
        "auth.change_email",
        json!({"token": access(&t), "password": "not the right one", "new_email": "x@example.com"}),
        -32011,
    );
    let taken = app.err(
        "auth.change_email",
        json!({"token": access(&t), "password": PASSWORD, "new_email": "bob@example.com"}),
        -32010,
    );
    assert_eq!(taken["data"], json!({"field": "email"}));
    let bad = app.err(
        "auth.change_email",
        json!({"token": access(&t), "password": PASSWORD, "new_email": "nope"}),
        -32602,
    );
    assert_eq!(bad["data"]["field"], "new_email");
    app.err(
        "auth.change_email",
        json!({"token": "pat_nope", "password": PASSWORD, "new_email": "x@example.com"}),
        -32030,
    );
}

#[test]
fn an_address_registered_by_another_before_the_change_is_verified_is_a_conflict() {
    let app = spawn_app();
    let (id, t) = register_with_email(&app, "ann", "ann@example.com");
    let change = app.ok(
        "auth.change_email",
        json!({"token": access(&t), "password": PASSWORD, "new_email": "race@example.com"}),
    );
    // The pending address reserves nothing: another account takes it.
    app.ok(
        "auth.register",
        json!({"username": "bob", "password": PASSWORD, "email": "race@example.com"}),
    );
    let e = app.err(
        "auth.verify_email",
        json!({"verify_token": change["verify_token"]}),
        -32010,
    );
    assert_eq!(e["data"], json!({"field": "email"}));
    let ann = user(&app, id);
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["email_verified"], false);
}

#[test]
fn wrong_passwords_on_change_email_count_as_failed_logins() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nLOGIN_MAX_FAILS = 1\n".into(),
        ..Options::default()
    });
    let (_, t) = register_with_email(&app, "ann", "ann@example.com");
    let guess =
        json!({"token": access(&t), "password": "not the right one", "new_email": "x@example.com"});
    // The per-login ceiling is 10 x LOGIN_MAX_FAILS.
    for _ in 0..10 {
        app.err("auth.change_email", guess.clone(), -32011);
    }
    app.err("auth.change_email", guess, -32029);
}

#[test]
fn change_email_sent_again_with_its_idempotency_key_answers_the_same_token() {
    let app = spawn_app();
    let (id, t) = register_with_email(&app, "ann", "ann@example.com");
    let params = json!({"token": access(&t), "password": PASSWORD,
                        "new_email": "ann@new.example", "idempotency_key": "k1"});
    let first = app.ok("auth.change_email", params.clone());
    let again = app.ok("auth.change_email", params);
    assert_eq!(first, again);
    // Done once: one pending change.
    assert_eq!(verification_rows(&app, id).len(), 1);
    // The kept answer holds no usable token.
    let kept: String = app
        .pg()
        .query_one("SELECT answer FROM idempotency_keys WHERE key = 'k1'", &[])
        .unwrap()
        .get(0);
    assert!(
        !kept.contains(first["verify_token"].as_str().unwrap()),
        "{kept}"
    );
    let other = app.err(
        "auth.change_email",
        json!({"token": access(&t), "password": PASSWORD,
               "new_email": "ann@other.example", "idempotency_key": "k1"}),
        -32010,
    );
    assert_eq!(other["data"], json!({"field": "idempotency_key"}));
    app.ok(
        "auth.verify_email",
        json!({"verify_token": first["verify_token"]}),
    );
}

#[test]
fn a_verification_and_a_registration_racing_for_one_address_give_it_to_exactly_one() {
    let app = spawn_app();
    for round in 0..5 {
        let name = format!("racer{round}");
        let address = format!("race{round}@example.com");
        let (id, t) = register_with_email(&app, &name, &format!("{name}@example.com"));
        let change = app.ok(
            "auth.change_email",
            json!({"token": access(&t), "password": PASSWORD, "new_email": address}),
        );
        let (verified, registered) = std::thread::scope(|s| {
            let verify = s.spawn(|| {
                app.rpc(
                    "auth.verify_email",
                    json!({"verify_token": change["verify_token"]}),
                )
            });
            let register = s.spawn(|| {
                app.rpc(
                    "auth.register",
                    json!({"username": format!("other{round}"), "password": PASSWORD, "email": address}),
                )
            });
            (verify.join().unwrap(), register.join().unwrap())
        });
        let won = [&verified, &registered]
            .iter()
            .filter(|r| r.get("error").is_none())
            .count();
        assert_eq!(won, 1, "{verified} {registered}");
        let lost = if verified.get("error").is_some() {
            &verified
        } else {
            &registered
        };
        assert_eq!(lost["error"]["code"], -32010, "{lost}");
        assert_eq!(lost["error"]["data"], json!({"field": "email"}));
        let holders: i64 = app
            .pg()
            .query_one("SELECT count(*) FROM users WHERE email = $1", &[&address])
            .unwrap()
            .get(0);
        assert_eq!(holders, 1);
        let mine = user(&app, id)["email"] == address.as_str();
        assert_eq!(mine, verified.get("error").is_none());
    }
}
