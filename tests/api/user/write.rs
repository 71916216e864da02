//! `user.update_profile`, `user.set_state`, `user.grant_role`,
//! `user.revoke_role`.

use serde_json::{json, Value};

use super::*;

fn update(app: &TestApp, id: i64, profile: Value) -> Value {
    app.ok(
        "user.update_profile",
        json!({"user_id": id, "profile": profile}),
    )
}

#[test]
fn update_profile_sets_fields_in_mongo_and_null_removes_one() {
    let app = spawn_app();
    let id = app.register("dora");
    let before = get(&app, id);
    assert_eq!(before["profile"], json!({}));
    assert!(profile_doc(&app, id).is_none());

    let user = update(
        &app,
        id,
        json!({"nickname": "Dora", "bio": "explorer", "extra": {"langs": ["es", "en"]}}),
    );
    assert_eq!(
        user["profile"],
        json!({"nickname": "Dora", "bio": "explorer", "extra": {"langs": ["es", "en"]}})
    );
    assert!(user["updated_at"].as_str() >= before["updated_at"].as_str());
    let doc = profile_doc(&app, id).unwrap();
    assert_eq!(doc.get_str("bio").unwrap(), "explorer");

    let user = update(
        &app,
        id,
        json!({"bio": null, "avatar": "https://img.example.com/d.png"}),
    );
    let expected = json!({
        "nickname": "Dora",
        "avatar": "https://img.example.com/d.png",
        "extra": {"langs": ["es", "en"]},
    });
    assert_eq!(user["profile"], expected);
    assert_eq!(get(&app, id)["profile"], expected);
    let doc = profile_doc(&app, id).unwrap();
    assert!(!doc.contains_key("bio"), "{doc}");
    assert_eq!(
        doc.get_str("avatar").unwrap(),
        "https://img.example.com/d.png"
    );
    // Removing a field that is not there is not an error; {} changes nothing.
    assert_eq!(update(&app, id, json!({"bio": null}))["profile"], expected);
    assert_eq!(update(&app, id, json!({}))["profile"], expected);
    // The profile is not copied into PostgreSQL.
    assert_eq!(stored(&app, id).unwrap().username, "dora");
}

#[test]
fn update_profile_enforces_the_contract_limits_and_keeps_the_stored_profile() {
    let app = spawn_app();
    let id = app.register("limits");
    update(&app, id, json!({"nickname": "keep"}));
    let n = |c: &str, k: usize| c.repeat(k);
    // {"k":"…"} is 8 bytes of JSON around the text.
    let extra_of = |bytes: usize| json!({ "k": "x".repeat(bytes - 8) });
    let bad = [
        (
            json!({"nickname": n("n", 65)}),
            "profile.nickname",
            "too_long",
        ),
        (json!({"avatar": n("a", 513)}), "profile.avatar", "too_long"),
        (json!({"bio": n("b", 1025)}), "profile.bio", "too_long"),
        (
            json!({"extra": extra_of(4097)}),
            "profile.extra",
            "too_long",
        ),
        (json!({"extra": [1]}), "profile.extra", "not_an_object"),
        (json!({"nickname": 5}), "profile.nickname", "not_a_string"),
        (json!({"age": 30}), "profile.age", "unknown_field"),
        (json!({"age": null}), "profile.age", "unknown_field"),
        // One bad field refuses the whole patch.
        (
            json!({"bio": "fine", "nickname": n("n", 65)}),
            "profile.nickname",
            "too_long",
        ),
        (json!("nickname"), "profile", "not_an_object"),
    ];
    for (profile, field, reason) in bad {
        let params = json!({"user_id": id, "profile": profile});
        assert_invalid(&app, "user.update_profile", params, field, reason);
        let doc = profile_doc(&app, id).unwrap();
        assert_eq!(doc.keys().collect::<Vec<_>>(), ["_id", "nickname"], "{doc}");
        assert_eq!(doc.get_str("nickname").unwrap(), "keep");
    }
    assert_invalid(
        &app,
        "user.update_profile",
        json!({"user_id": id}),
        "profile",
        "missing",
    );
    assert_eq!(get(&app, id)["profile"], json!({"nickname": "keep"}));

    // Exactly at each limit is fine (characters, not bytes, for text).
    let max = json!({
        "nickname": n("é", 64), "avatar": n("a", 512), "bio": n("b", 1024), "extra": extra_of(4096),
    });
    assert_eq!(update(&app, id, max.clone())["profile"], max);
    let doc = profile_doc(&app, id).unwrap();
    assert_eq!(doc.get_str("nickname").unwrap(), n("é", 64));
    assert_eq!(doc.get_str("bio").unwrap().len(), 1024);
}

#[test]
fn writes_to_an_unknown_user_are_not_found_and_store_nothing() {
    let app = spawn_app();
    let ghost = 424_242;
    let calls = [
        (
            "user.update_profile",
            json!({"user_id": ghost, "profile": {"nickname": "boo"}}),
        ),
        (
            "user.set_state",
            json!({"user_id": ghost, "state": "disabled"}),
        ),
        (
            "user.grant_role",
            json!({"user_id": ghost, "role": "editor"}),
        ),
        (
            "user.revoke_role",
            json!({"user_id": ghost, "role": "editor"}),
        ),
    ];
    for (method, params) in calls {
        app.err(method, params, -32013);
    }
    assert!(profile_doc(&app, ghost).is_none());
    let roles: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM user_roles", &[])
        .unwrap()
        .get(0);
    assert_eq!(roles, 0);
}

#[test]
fn set_state_stores_the_new_state_and_refuses_unknown_ones() {
    let app = spawn_app();
    let id = app.register("fred");
    for state in ["locked", "disabled", "active"] {
        let user = app.ok("user.set_state", json!({"user_id": id, "state": state}));
        assert_eq!(user["state"], state);
        assert_eq!(stored(&app, id).unwrap().state, state);
    }
    let params = json!({"user_id": id, "state": "banned"});
    assert_invalid(&app, "user.set_state", params, "state", "invalid");
    assert_invalid(
        &app,
        "user.set_state",
        json!({"user_id": id}),
        "state",
        "missing",
    );
    assert_eq!(stored(&app, id).unwrap().state, "active");
}

fn introspect(app: &TestApp, token: &Value) -> Value {
    app.ok("auth.introspect", json!({ "token": token }))
}

#[test]
fn disabling_an_account_revokes_every_session_at_once() {
    let app = spawn_app();
    let (id, first) = app.register_and_login("gina");
    let second = app.ok(
        "auth.login",
        json!({"username": "gina", "password": PASSWORD}),
    );
    for s in [&first, &second] {
        assert_eq!(introspect(&app, &s["access_token"])["active"], true);
    }

    let user = app.ok(
        "user.set_state",
        json!({"user_id": id, "state": "disabled"}),
    );
    assert_eq!(user["state"], "disabled");
    for s in [&first, &second] {
        assert_eq!(
            introspect(&app, &s["access_token"]),
            json!({"active": false})
        );
        app.err(
            "auth.refresh",
            json!({"refresh_token": s["refresh_token"]}),
            -32030,
        );
    }
    let live: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(live, 0);
    let e = app.err(
        "auth.login",
        json!({"username": "gina", "password": PASSWORD}),
        -32012,
    );
    assert_eq!(e["data"], json!({"state": "disabled"}));

    // Active again: new logins work, the old sessions stay revoked.
    app.ok("user.set_state", json!({"user_id": id, "state": "active"}));
    let third = app.ok(
        "auth.login",
        json!({"username": "gina", "password": PASSWORD}),
    );
    assert_eq!(introspect(&app, &third["access_token"])["active"], true);
    assert_eq!(introspect(&app, &first["access_token"])["active"], false);

    // Locked revokes too.
    app.ok("user.set_state", json!({"user_id": id, "state": "locked"}));
    assert_eq!(introspect(&app, &third["access_token"])["active"], false);
    let e = app.err(
        "auth.login",
        json!({"username": "gina", "password": PASSWORD}),
        -32012,
    );
    assert_eq!(e["data"], json!({"state": "locked"}));
}

fn role_call(app: &TestApp, method: &str, id: i64, role: &str) -> Value {
    app.ok(method, json!({"user_id": id, "role": role}))["roles"].clone()
}

#[test]
fn granted_and_revoked_roles_are_stored_and_reach_live_tokens() {
    let app = spawn_app();
    let (id, login) = app.register_and_login("hank");
    let token = &login["access_token"];
    let may_read = || {
        app.ok(
            "auth.authorize",
            json!({"token": token, "permission": "user:read"}),
        )["allowed"]
            .clone()
    };
    assert_eq!(introspect(&app, token)["roles"], json!([]));
    assert_eq!(may_read(), false);

    assert_eq!(
        role_call(&app, "user.grant_role", id, "editor"),
        json!(["editor"])
    );
    assert_eq!(
        role_call(&app, "user.grant_role", id, "editor"),
        json!(["editor"])
    );
    assert_eq!(
        role_call(&app, "user.grant_role", id, "viewer"),
        json!(["editor", "viewer"])
    );
    assert_eq!(stored(&app, id).unwrap().roles, ["editor", "viewer"]);
    assert_eq!(get(&app, id)["roles"], json!(["editor", "viewer"]));
    // The token checked above was cached with no roles; it now has both.
    assert_eq!(
        introspect(&app, token)["roles"],
        json!(["editor", "viewer"])
    );
    assert_eq!(may_read(), true);

    assert_eq!(
        role_call(&app, "user.revoke_role", id, "editor"),
        json!(["viewer"])
    );
    assert_eq!(
        role_call(&app, "user.revoke_role", id, "editor"),
        json!(["viewer"])
    );
    assert_eq!(role_call(&app, "user.revoke_role", id, "viewer"), json!([]));
    assert_eq!(stored(&app, id).unwrap().roles, Vec::<String>::new());
    assert_eq!(introspect(&app, token)["roles"], json!([]));
    assert_eq!(may_read(), false);
}

#[test]
fn grant_role_refuses_a_role_not_in_the_config() {
    let app = spawn_app();
    let id = app.register("ivan");
    let grant = |role: Value| json!({"user_id": id, "role": role});
    assert_invalid(
        &app,
        "user.grant_role",
        grant(json!("superuser")),
        "role",
        "unknown_role",
    );
    assert_invalid(
        &app,
        "user.grant_role",
        grant(json!("Bad Role")),
        "role",
        "invalid",
    );
    assert_invalid(
        &app,
        "user.grant_role",
        grant(json!(7)),
        "role",
        "not_a_string",
    );
    assert_invalid(
        &app,
        "user.grant_role",
        json!({"user_id": id}),
        "role",
        "missing",
    );
    assert_invalid(
        &app,
        "user.revoke_role",
        grant(json!("Bad Role")),
        "role",
        "invalid",
    );
    assert_eq!(stored(&app, id).unwrap().roles, Vec::<String>::new());
    assert_eq!(get(&app, id)["roles"], json!([]));
}

/// Regression: BSON has no unsigned 64-bit integer, and such a number in
/// `extra` used to be answered with success while `extra` was stored as null.
#[test]
fn an_integer_beyond_i64_in_extra_is_refused_not_stored_as_null() {
    let app = spawn_app();
    let id = app.register("bigint");
    update(&app, id, json!({"extra": {"kept": true}}));
    let params = json!({"user_id": id, "profile": {"extra": {"n": [u64::MAX]}}});
    assert_invalid(
        &app,
        "user.update_profile",
        params,
        "profile.extra",
        "number_out_of_range",
    );
    let row = json!({"username": "bigrow", "password_hash": password_hash(), "profile": {"extra": {"n": u64::MAX}}});
    let r = app.ok("user.import", json!({"users": [row]}));
    assert_eq!(r["errors"][0]["field"], "profile.extra");
    assert_eq!(r["errors"][0]["reason"], "number_out_of_range");
    // i64 bounds and floats are fine.
    let fine = json!({"min": i64::MIN, "max": i64::MAX, "f": 1.5});
    assert_eq!(
        update(&app, id, json!({ "extra": fine }))["profile"]["extra"],
        fine
    );
    let doc = profile_doc(&app, id).unwrap();
    assert_eq!(stored_extra(&doc)["max"], i64::MAX);
}

/// The attacker's review: MongoDB Extended JSON in `extra` was interpreted
/// (`{"$numberLong":"5"}` read back as `5`, `{"$date":…}` became a date).
/// `extra` comes back exactly as stored, `$` keys included.
#[test]
fn extra_comes_back_exactly_as_stored_with_its_dollar_keys() {
    let app = spawn_app();
    let id = app.register("ext");
    for extra in [
        json!({"$numberLong": "5"}),
        json!({"when": {"$date": {"$numberLong": "1577836800000"}}}),
        json!({"n": [1, {"$numberDouble": "1.5"}], "$oid": "65a1b2c3d4e5f60718293a4b"}),
    ] {
        let user = app.ok(
            "user.update_profile",
            json!({"user_id": id, "profile": {"extra": extra}}),
        );
        assert_eq!(user["profile"]["extra"], extra);
        assert_eq!(
            app.ok("user.get", json!({"user_id": id}))["profile"]["extra"],
            extra
        );
        let users = app.ok("user.gets", json!({"user_ids": [id]}));
        assert_eq!(users["users"][0]["profile"]["extra"], extra);
    }
}
