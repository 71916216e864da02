//! The User cache (in-process and Redis `<prefix>user:<id>`): every kind of
//! write drops it, so a read right after a write sees the new value.

use serde_json::{json, Value};

use super::*;

/// Reads `id` so the cache holds it, and checks Redis does.
fn warm(app: &TestApp, id: i64) -> Value {
    let user = get(app, id);
    assert_eq!(
        cached(app, id).as_ref(),
        Some(&user),
        "user.get did not fill the cache"
    );
    user
}

/// After a write: the next read, and whatever the cache now holds, carry
/// the new value.
fn assert_fresh(app: &TestApp, id: i64, field: &str, value: &Value) {
    let user = get(app, id);
    assert_eq!(&user[field], value, "user.get answered a stale {field}");
    let gets = app.ok("user.gets", json!({ "user_ids": [id] }));
    assert_eq!(
        &gets["users"][0][field], value,
        "user.gets answered a stale {field}"
    );
    if let Some(c) = cached(app, id) {
        assert_eq!(&c[field], value, "redis holds a stale {field}");
    }
}

#[test]
fn a_profile_update_is_read_back_at_once_despite_the_cache() {
    let app = spawn_app();
    let id = app.register("kara");
    assert_eq!(warm(&app, id)["profile"], json!({}));
    let params = json!({"user_id": id, "profile": {"nickname": "K"}});
    app.ok("user.update_profile", params);
    assert_fresh(&app, id, "profile", &json!({"nickname": "K"}));
    app.ok(
        "user.update_profile",
        json!({"user_id": id, "profile": {"nickname": null}}),
    );
    assert_fresh(&app, id, "profile", &json!({}));
}

#[test]
fn a_state_change_is_read_back_at_once_despite_the_cache() {
    let app = spawn_app();
    let id = app.register("liam");
    assert_eq!(warm(&app, id)["state"], "active");
    app.ok("user.set_state", json!({"user_id": id, "state": "locked"}));
    assert_fresh(&app, id, "state", &json!("locked"));
    app.ok("user.set_state", json!({"user_id": id, "state": "active"}));
    assert_fresh(&app, id, "state", &json!("active"));
}

#[test]
fn a_role_change_is_read_back_at_once_despite_the_cache() {
    let app = spawn_app();
    let id = app.register("mona");
    assert_eq!(warm(&app, id)["roles"], json!([]));
    app.ok("user.grant_role", json!({"user_id": id, "role": "admin"}));
    assert_fresh(&app, id, "roles", &json!(["admin"]));
    // read again (this process caches it; Redis keeps the grant's tombstone)
    get(&app, id);
    app.ok("user.revoke_role", json!({"user_id": id, "role": "admin"}));
    assert_fresh(&app, id, "roles", &json!([]));
}

#[test]
fn a_password_change_is_read_back_at_once_despite_the_cache() {
    let app = spawn_app();
    let (id, login) = app.register_and_login("nora");
    let before = warm(&app, id);
    let params = json!({
        "token": login["access_token"],
        "old_password": PASSWORD,
        "new_password": "an entirely different passphrase",
    });
    app.ok("auth.change_password", params);
    let stored_at: chrono::DateTime<chrono::Utc> = app
        .pg()
        .query_one("SELECT updated_at FROM users WHERE id = $1", &[&id])
        .unwrap()
        .get(0);
    let stored_at = stored_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert!(stored_at.as_str() > before["updated_at"].as_str().unwrap());
    assert_fresh(&app, id, "updated_at", &json!(stored_at));
}

#[test]
fn an_import_is_read_back_at_once_by_reads_that_missed_before() {
    let app = spawn_app();
    let last = app.register("olga");
    // Identity ids on a fresh database: the next account gets last + 1.
    let next = last + 1;
    app.err("user.get", json!({"user_id": next}), -32013);
    app.err("user.find", json!({"username": "pete"}), -32013);
    let before = app.ok("user.gets", json!({"user_ids": [last, next]}));
    assert_eq!(before["missing"], json!([next]));
    assert_eq!(
        app.ok("user.search", json!({"query": "pete"}))["users"],
        json!([])
    );

    import_all(&app, vec![row("pete")]);
    let pete = app.ok("user.find", json!({"username": "pete"}));
    assert_eq!(pete["user_id"], next);
    assert_eq!(get(&app, next), pete);
    let after = app.ok("user.gets", json!({"user_ids": [last, next]}));
    assert_eq!(after["missing"], json!([]));
    assert_eq!(after["users"][1], pete);
    assert_eq!(
        usernames(&app.ok("user.search", json!({"query": "pete"}))["users"]),
        ["pete"]
    );
}

#[test]
fn reads_come_from_the_cache_until_a_write_invalidates_it() {
    let app = spawn_app();
    let id = register_with_email(&app, "quin");
    warm(&app, id);
    // Changed behind the service's back: the cache still answers.
    app.pg()
        .execute(
            "UPDATE users SET email = 'behind@example.com' WHERE id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(get(&app, id)["email"], "quin@example.com");
    let gets = app.ok("user.gets", json!({"user_ids": [id]}));
    assert_eq!(gets["users"][0]["email"], "quin@example.com");
    assert_eq!(cached(&app, id).unwrap()["email"], "quin@example.com");

    // Any write drops the cached User: the next reads go to PostgreSQL.
    let user = app.ok(
        "user.update_profile",
        json!({"user_id": id, "profile": {"bio": "hi"}}),
    );
    assert_eq!(user["email"], "behind@example.com");
    assert_fresh(&app, id, "email", &json!("behind@example.com"));
}

/// Regression test for a read that fetched before a write putting the old
/// User back into Redis after the write dropped it: a write leaves a
/// tombstone that cache fills (SET NX) cannot overwrite while such a read
/// may still be running.
#[test]
fn a_write_leaves_a_tombstone_that_a_late_cache_fill_cannot_replace() {
    let app = spawn_app();
    let id = app.register("tomb");
    warm(&app, id);
    app.ok("user.set_state", json!({"user_id": id, "state": "locked"}));
    assert_eq!(cached_raw(&app, id).as_deref(), Some("-"));
    // a read now is answered fresh, and does not replace the tombstone
    assert_eq!(get(&app, id)["state"], "locked");
    assert_eq!(cached_raw(&app, id).as_deref(), Some("-"));
    let mut r = app.redis();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}user:{id}", app.prefix))
        .query(&mut r)
        .unwrap();
    assert!((1..=12).contains(&ttl), "tombstone ttl {ttl}");
}

/// Concurrent misses share one query (`model::coalesce`): each caller must
/// still get its own answer, never a neighbour's, and an unknown id or token
/// in the same batch stays unknown.
#[test]
fn concurrent_cache_misses_each_get_their_own_user_and_session() {
    let app = spawn_app();
    let accounts: Vec<(i64, String)> = (0..12)
        .map(|i| {
            let (id, t) = app.register_and_login(&format!("share{i}"));
            (id, t["access_token"].as_str().unwrap().to_string())
        })
        .collect();
    let app = &app;
    std::thread::scope(|s| {
        for (id, token) in &accounts {
            s.spawn(move || {
                let user = get(app, *id);
                assert_eq!(id_of(&user), *id, "user.get({id}) answered {user}");
                let info = app.ok("auth.introspect", json!({ "token": token }));
                assert_eq!(info["active"], json!(true));
                assert_eq!(info["user_id"], json!(id), "introspect answered {info}");
            });
            s.spawn(move || {
                app.err("user.get", json!({ "user_id": id + 1_000_000 }), -32013);
                let last = if token.ends_with('x') { "y" } else { "x" };
                let fake = format!("{}{last}", &token[..token.len() - 1]);
                let info = app.ok("auth.introspect", json!({ "token": fake }));
                assert_eq!(info, json!({"active": false}));
            });
        }
    });
}
