//! `auth.register`: accounts, conflicts and the password policy.

use serde_json::json;

use super::*;

fn user_count(app: &TestApp) -> i64 {
    app.pg()
        .query_one("SELECT count(*) FROM users", &[])
        .unwrap()
        .get(0)
}

/// A strong ASCII password of exactly `len` bytes.
fn strong_ascii(len: usize) -> String {
    "q8Zr-violet-glacier-mango-orbit-lantern-7Kx!"
        .chars()
        .cycle()
        .take(len)
        .collect()
}

#[test]
fn register_stores_a_lower_cased_account_with_a_bcrypt_hash() {
    let app = spawn_app();
    let id = app.ok(
        "auth.register",
        json!({"username": "Alice_1", "password": PASSWORD, "email": "Alice@Example.COM"}),
    )["user_id"]
        .as_i64()
        .unwrap();

    let row = app
        .pg()
        .query_one(
            "SELECT username, email, password_hash, state FROM users WHERE id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "alice_1");
    assert_eq!(row.get::<_, String>(1), "alice@example.com");
    let hash: String = row.get(2);
    assert!(
        hash.starts_with("$2b$04$"),
        "BCRYPT_COST = 4 gives $2b$04$, got a hash of another kind"
    );
    assert_eq!(hash.len(), 60);
    assert!(bcrypt::verify(PASSWORD, &hash).unwrap());
    assert_eq!(row.get::<_, String>(3), "active");
}

#[test]
fn register_answers_a_conflict_naming_the_username_or_the_email() {
    let app = spawn_app();
    app.ok(
        "auth.register",
        json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}),
    );

    let same_name = app.err(
        "auth.register",
        json!({"username": "ALICE", "password": PASSWORD, "email": "other@example.com"}),
        -32010,
    );
    assert_eq!(same_name["data"], json!({"field": "username"}));
    let same_email = app.err(
        "auth.register",
        json!({"username": "bob", "password": PASSWORD, "email": "Alice@EXAMPLE.com"}),
        -32010,
    );
    assert_eq!(same_email["data"], json!({"field": "email"}));
    assert_eq!(user_count(&app), 1);
}

/// A caller whose answer was lost (a timeout, a crash after the commit)
/// sends the same registration again with the same `idempotency_key`: it
/// gets the first answer, and nothing is done twice.
#[test]
fn a_registration_sent_again_with_its_idempotency_key_is_answered_again() {
    let app = spawn_app();
    let params = json!({
        "username": "rita", "password": PASSWORD, "email": "rita@example.com",
        "profile": {"nickname": "R"}, "idempotency_key": "signup-7f3a",
    });
    let first = app.ok("auth.register", params.clone());
    let again = app.ok("auth.register", params.clone());
    assert_eq!(again, first);
    let id = first["user_id"].as_i64().unwrap();
    let user = app.ok("user.get", json!({"user_id": id}));
    assert_eq!(user["profile"], json!({"nickname": "R"}));
    assert_eq!(user_count(&app), 1);
    // The same key with other params is a conflict naming the key.
    let mut other = params.clone();
    other["username"] = json!("rita2");
    let e = app.err("auth.register", other, -32010);
    assert_eq!(e["data"], json!({"field": "idempotency_key"}));
    // Without the key, the same registration is a taken username.
    let mut keyless = params;
    keyless.as_object_mut().unwrap().remove("idempotency_key");
    let e = app.err("auth.register", keyless, -32010);
    assert_eq!(e["data"], json!({"field": "username"}));
    assert_eq!(user_count(&app), 1);
    let kept: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM idempotency_keys WHERE answer IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(kept, 1);
}

/// The attacker's review: registering a taken name with its owner's
/// password answered the owner's user_id (a "retry"), any other password
/// -32010, and guesses were never limited: a password oracle. Now a taken
/// name is -32010 whatever the password.
#[test]
fn register_is_no_password_oracle_a_taken_name_is_a_conflict_whatever_the_password() {
    let app = spawn_app();
    app.ok(
        "auth.register",
        json!({"username": "owner", "password": PASSWORD, "email": "o@example.com"}),
    );
    for password in [PASSWORD, "another fine passphrase 7"] {
        let e = app.err(
            "auth.register",
            json!({"username": "owner", "password": password, "email": "o@example.com"}),
            -32010,
        );
        assert_eq!(e["data"], json!({"field": "username"}));
    }
}

#[test]
fn register_refuses_passwords_outside_the_policy_naming_field_and_reason() {
    let app = spawn_app();
    let refused = [
        ("short1!", "too_short"),
        (&strong_ascii(73) as &str, "too_long"),
        ("password123", "too_weak"),
        ("my-CAROL-secret-is-long", "contains_username"),
    ];
    for (password, reason) in refused {
        let e = app.err(
            "auth.register",
            json!({"username": "carol", "password": password}),
            -32602,
        );
        assert_eq!(
            e["data"],
            json!({"field": "password", "reason": reason}),
            "{password:?}"
        );
    }
    assert_eq!(user_count(&app), 0, "a refused password created an account");

    // 72 bytes is the limit itself, and is accepted.
    app.ok(
        "auth.register",
        json!({"username": "carol", "password": strong_ascii(72)}),
    );
    assert_eq!(user_count(&app), 1);
}

#[test]
fn the_password_length_limit_counts_bytes_not_characters() {
    let app = spawn_app();
    // 36 two-byte characters: 72 bytes.
    let at_limit = "жёлтыйслонпрыгаетчерезсинийзаборзима";
    assert_eq!((at_limit.chars().count(), at_limit.len()), (36, 72));
    let over = format!("{at_limit}x");
    assert_eq!((over.chars().count(), over.len()), (37, 73));

    let e = app.err(
        "auth.register",
        json!({"username": "dmitri", "password": over}),
        -32602,
    );
    assert_eq!(
        e["data"],
        json!({"field": "password", "reason": "too_long"})
    );
    app.ok(
        "auth.register",
        json!({"username": "dmitri", "password": at_limit}),
    );
    app.ok(
        "auth.login",
        json!({"username": "dmitri", "password": at_limit}),
    );
    // bcrypt would read only the first 72 bytes: the longer one must not
    // log in as if it were cut.
    let e = app.err(
        "auth.login",
        json!({"username": "dmitri", "password": over}),
        -32602,
    );
    assert_eq!(
        e["data"],
        json!({"field": "password", "reason": "too_long"})
    );
}

#[test]
fn register_refuses_invalid_usernames_emails_and_missing_fields() {
    let app = spawn_app();
    let cases = [
        (
            json!({"username": "ab", "password": PASSWORD}),
            "username",
            "too_short",
        ),
        (
            json!({"username": "a".repeat(33), "password": PASSWORD}),
            "username",
            "too_long",
        ),
        (
            json!({"username": "al ice", "password": PASSWORD}),
            "username",
            "invalid_characters",
        ),
        (
            json!({"username": "a@b.example", "password": PASSWORD}),
            "username",
            "invalid_characters",
        ),
        (
            json!({"username": "erin", "password": PASSWORD, "email": "not-an-email"}),
            "email",
            "invalid",
        ),
        // Without a password: a passkey-only account (auth/passkey_accounts.rs).
        (json!({"password": PASSWORD}), "username", "missing"),
    ];
    for (params, field, reason) in cases {
        let e = app.err("auth.register", params.clone(), -32602);
        assert_eq!(
            e["data"],
            json!({"field": field, "reason": reason}),
            "{params}"
        );
    }
    assert_eq!(user_count(&app), 0);
}
