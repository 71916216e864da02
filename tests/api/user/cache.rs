//! The User cache (in each process; nothing is cached in Redis): every kind
//! of write drops it, here at once and on other instances through the
//! change feed, so a read right after a write sees the new value.

use serde_json::{json, Value};

use super::*;

/// Reads `id` twice, so the cache holds it (the second read comes from it).
fn warm(app: &TestApp, id: i64) -> Value {
    let user = get(app, id);
    assert_eq!(get(app, id), user);
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
    // read again (this process caches it)
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

    // Any write drops the cached User: the next reads go to PostgreSQL.
    let user = app.ok(
        "user.update_profile",
        json!({"user_id": id, "profile": {"bio": "hi"}}),
    );
    assert_eq!(user["email"], "behind@example.com");
    assert_fresh(&app, id, "email", &json!("behind@example.com"));
}

/// Each instance caches Users in its own process: a write on one must reach
/// the other's cache through the change feed in PostgreSQL, with nothing
/// cached in Redis to go stale. (The feed's 1 s bound is a unit test of its
/// constants; here it is waited for with slack for a loaded machine.)
#[test]
fn a_write_on_one_instance_is_read_back_on_another_through_the_feed() {
    let app = spawn_app();
    let other = app.another();
    let id = app.register("tomb");
    warm(&app, id);
    warm(&other, id);
    app.ok("user.set_state", json!({"user_id": id, "state": "locked"}));
    assert_eq!(get(&app, id)["state"], "locked");
    let seen = other.eventually(std::time::Duration::from_secs(2), || {
        get(&other, id)["state"] == "locked"
    });
    assert!(seen, "the other instance still answers the old state");
    let mut r = app.redis();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}user:*", app.prefix))
        .query(&mut r)
        .unwrap();
    assert!(keys.is_empty(), "Users cached in Redis: {keys:?}");
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
