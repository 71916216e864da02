//! `user.get`, `user.gets`, `user.find`.

use serde_json::json;

use super::*;

#[test]
fn get_assembles_the_user_from_the_postgres_account_and_the_mongo_profile() {
    let app = spawn_app();
    let params = json!({
        "username": "Ann", "password": PASSWORD, "email": "Ann@Example.com",
        "profile": {"nickname": "Annie", "extra": {"team": "core"}},
    });
    let id = app.ok("auth.register", params)["user_id"].as_i64().unwrap();

    let user = get(&app, id);
    let keys: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "email",
            "email_verified",
            "mfa",
            "profile",
            "roles",
            "state",
            "updated_at",
            "user_id",
            "username"
        ]
    );
    assert_eq!(user["user_id"], id);
    assert_eq!(user["username"], "ann");
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["state"], "active");
    assert_eq!(user["roles"], json!([]));
    assert_eq!(user["mfa"], json!({"totp": false, "passkeys": 0}));
    assert_eq!(
        user["profile"],
        json!({"nickname": "Annie", "extra": {"team": "core"}})
    );
    for field in ["created_at", "updated_at"] {
        let t = user[field].as_str().unwrap();
        assert!(t.ends_with('Z'), "{field} not UTC: {t}");
        chrono::DateTime::parse_from_rfc3339(t).unwrap();
    }

    // The account lives in PostgreSQL, the profile in MongoDB.
    let account = stored(&app, id).unwrap();
    assert_eq!(
        account,
        Stored {
            username: "ann".into(),
            email: Some("ann@example.com".into()),
            state: "active".into(),
            roles: vec![],
        }
    );
    let doc = profile_doc(&app, id).unwrap();
    assert_eq!(doc.get_str("nickname").unwrap(), "Annie");
    assert_eq!(stored_extra(&doc)["team"], "core");
}

#[test]
fn get_of_an_unknown_id_is_not_found_and_a_bad_id_is_invalid_params() {
    let app = spawn_app();
    let e = app.err("user.get", json!({"user_id": 424242}), -32013);
    assert!(e.get("data").is_none(), "{e}");
    assert_invalid(&app, "user.get", json!({}), "user_id", "missing");
    assert_invalid(
        &app,
        "user.get",
        json!({"user_id": "1"}),
        "user_id",
        "not_an_integer",
    );
    assert_invalid(
        &app,
        "user.get",
        json!({"user_id": 1.5}),
        "user_id",
        "not_an_integer",
    );
    assert_invalid(&app, "user.get", json!({"id": 1}), "id", "unknown_param");
}

#[test]
fn gets_answers_each_id_once_in_first_request_order_and_lists_missing_ids_once() {
    let app = spawn_app();
    let a = app.register("alpha");
    let b = app.register("bravo");
    let c = app.register("charlie");
    // b comes from the cache, a and c from the databases: same order anyway.
    let b_user = get(&app, b);

    let r = app.ok(
        "user.gets",
        json!({"user_ids": [c, 999_999, a, c, b, 888_888, 999_999, a]}),
    );
    let ids: Vec<i64> = r["users"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(ids, [c, a, b]);
    assert_eq!(r["missing"], json!([999_999, 888_888]));
    assert_eq!(r["users"][2], b_user);
    assert_eq!(r["users"][0], get(&app, c));
    assert_eq!(usernames(&r["users"]), ["charlie", "alpha", "bravo"]);

    let empty = app.ok("user.gets", json!({"user_ids": []}));
    assert_eq!(empty, json!({"users": [], "missing": []}));
    let none = app.ok("user.gets", json!({"user_ids": [-1, 0]}));
    assert_eq!(none, json!({"users": [], "missing": [-1, 0]}));
}

#[test]
fn gets_of_a_thousand_ids_answers_in_one_call_and_more_is_refused() {
    let app = spawn_app();
    let rows = app
        .pg()
        .query(
            "INSERT INTO users (username, password_hash) \
             SELECT 'bulk' || g, 'not-a-hash' FROM generate_series(1, 995) g RETURNING id",
            &[],
        )
        .unwrap();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.reverse();
    let unknown = [-5_i64, -4, -3, -2, -1];
    let mut requested = ids.clone();
    requested.splice(500..500, unknown);
    assert_eq!(requested.len(), 1000);

    let r = app.ok("user.gets", json!({ "user_ids": requested }));
    let got: Vec<i64> = r["users"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(got, ids);
    assert_eq!(r["missing"], json!(unknown));
    assert_eq!(r["users"][0]["username"], "bulk995");

    requested.push(ids[0]);
    assert_invalid(
        &app,
        "user.gets",
        json!({ "user_ids": requested }),
        "user_ids",
        "too_many",
    );
    assert_invalid(
        &app,
        "user.gets",
        json!({"user_ids": [1, "2"]}),
        "user_ids[1]",
        "not_an_integer",
    );
    assert_invalid(
        &app,
        "user.gets",
        json!({"user_ids": 1}),
        "user_ids",
        "not_an_array",
    );
    assert_invalid(&app, "user.gets", json!({}), "user_ids", "missing");
}

#[test]
fn find_looks_a_user_up_by_username_or_email_whatever_the_case() {
    let app = spawn_app();
    let id = register_with_email(&app, "carol");
    app.register("dave");
    let user = get(&app, id);
    assert_eq!(app.ok("user.find", json!({"username": "CAROL"})), user);
    assert_eq!(
        app.ok("user.find", json!({"email": "Carol@Example.COM"})),
        user
    );
    assert_eq!(
        app.ok("user.find", json!({"username": "dave"}))["username"],
        "dave"
    );
}

#[test]
fn find_of_an_unknown_login_is_not_found_and_unclear_params_are_refused() {
    let app = spawn_app();
    register_with_email(&app, "erin");
    app.err("user.find", json!({"username": "nobody"}), -32013);
    app.err("user.find", json!({"email": "nobody@example.com"}), -32013);
    // An email given as a username does not match the email column.
    app.err("user.find", json!({"username": "erin@example.com"}), -32602);
    assert_invalid(
        &app,
        "user.find",
        json!({"username": "erin", "email": "erin@example.com"}),
        "email",
        "give_username_or_email",
    );
    assert_invalid(&app, "user.find", json!({}), "username", "missing");
    assert_invalid(
        &app,
        "user.find",
        json!({"username": "ab"}),
        "username",
        "too_short",
    );
    assert_invalid(
        &app,
        "user.find",
        json!({"email": "not-an-email"}),
        "email",
        "invalid",
    );
}
