//! `user.import`: up to 1000 rows per call, each all-or-nothing, errors
//! reported by row index.

use serde_json::{json, Value};

use super::*;

fn can_log_in(app: &TestApp, username: &str) -> Value {
    app.ok(
        "auth.login",
        json!({"username": username, "password": PASSWORD}),
    )
}

use std::time::Duration;

fn count_users(app: &TestApp) -> i64 {
    app.pg()
        .query_one("SELECT count(*) FROM users", &[])
        .unwrap()
        .get(0)
}

#[test]
fn importing_a_thousand_rows_with_bcrypt_hashes_creates_accounts_that_log_in() {
    let app = spawn_app();
    let rows: Vec<Value> = (0..1000)
        .map(|i| {
            json!({
                "username": format!("imp{i:04}"),
                "email": format!("imp{i:04}@example.com"),
                "password_hash": password_hash(),
            })
        })
        .collect();
    let r = app.ok("user.import", json!({ "users": rows }));
    assert_eq!(r, json!({"imported": 1000, "errors": []}));

    assert_eq!(count_users(&app), 1000);
    let hashes: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM users WHERE password_hash = $1",
            &[&password_hash()],
        )
        .unwrap()
        .get(0);
    assert_eq!(hashes, 1000, "the hashes are stored as given");
    for name in ["imp0000", "imp0999"] {
        let login = can_log_in(&app, name);
        let user = get(&app, login["user_id"].as_i64().unwrap());
        assert_eq!(user["username"], name);
        assert_eq!(user["email"], format!("{name}@example.com"));
        assert_eq!(user["state"], "active");
    }
    // Login by email too.
    can_log_in(&app, "imp0500@example.com");
}

#[test]
fn import_reports_bad_rows_by_index_and_stores_the_good_ones() {
    let app = spawn_app();
    register_with_email(&app, "taken");
    let h = password_hash();
    let rows = json!([
        /* 0 */ {"username": "good", "password_hash": h},
        /* 1 */ {"username": "dup", "password_hash": h},
        /* 2 */ {"username": "DUP", "password_hash": h},
        /* 3 */ {"username": "bademail", "email": "nope", "password_hash": h},
        /* 4 */ {"username": "weakling", "password": "password"},
        /* 5 */ {"username": "shorty", "password": "short"},
        /* 6 */ {"username": "horse", "password": PASSWORD},
        /* 7 */ {"username": "taken", "password_hash": h},
        /* 8 */ {"username": "stolen", "email": "Taken@Example.com", "password_hash": h},
        /* 9 */ {"username": "nohash"},
        /* 10 */ {"username": "both", "password": PASSWORD, "password_hash": h},
        /* 11 */ {"username": "md5", "password_hash": "$1$abc$0123456789"},
        /* 12 */ {"username": "boss", "password_hash": h, "roles": ["superuser"]},
        /* 13 */ {"username": "odd", "password_hash": h, "state": "banned"},
        /* 14 */ {"username": "wordy", "password_hash": h, "profile": {"nickname": "n".repeat(65)}},
        /* 15 */ {"username": "x", "password_hash": h},
        /* 16 */ {"username": "extra", "password_hash": h, "admin": true},
        /* 17 */ "not a row",
        /* 18 */ {"username": "plain", "password": PASSWORD},
        /* 19 */ {"username": "legacy", "password_hash": h.replacen("$2b$", "$2y$", 1)},
        /* 20 */ {"username": "older", "password_hash": h.replacen("$2b$", "$2a$", 1)},
        /* 21 */ {"username": "mail2", "email": "same@example.com", "password_hash": h},
        /* 22 */ {"username": "mail3", "email": "SAME@example.com", "password_hash": h},
        /* 23 */ {"username": "badrole", "password_hash": h, "roles": ["Bad Role"]},
        /* 24 */ {"username": "numrole", "password_hash": h, "roles": [5]},
        /* 25 */ {"username": "strrole", "password_hash": h, "roles": "editor"},
        /* 26 */ {"username": "costly", "password_hash": bcrypt::hash(PASSWORD, 7).unwrap()},
    ]);
    let invalid = |index: usize, field: &str, reason: &str| json!({"index": index, "code": -32602, "field": field, "reason": reason});
    let conflict =
        |index: usize, field: &str| json!({"index": index, "code": -32010, "field": field});
    let r = app.ok("user.import", json!({ "users": rows }));
    assert_eq!(
        r["errors"],
        json!([
            conflict(2, "username"),
            invalid(3, "email", "invalid"),
            invalid(4, "password", "too_weak"),
            invalid(5, "password", "too_short"),
            invalid(6, "password", "contains_username"),
            conflict(7, "username"),
            conflict(8, "email"),
            invalid(9, "password", "missing"),
            invalid(10, "password_hash", "give_password_or_hash"),
            invalid(11, "password_hash", "not_bcrypt"),
            invalid(12, "roles", "unknown_role"),
            invalid(13, "state", "invalid"),
            invalid(14, "profile.nickname", "too_long"),
            invalid(15, "username", "too_short"),
            invalid(16, "admin", "unknown_field"),
            invalid(17, "row", "not_an_object"),
            conflict(22, "email"),
            invalid(23, "roles", "invalid"),
            invalid(24, "roles", "invalid"),
            invalid(25, "roles", "not_an_array"),
            // BCRYPT_COST is 4 in tests: 6 is the most a kept hash may cost.
            invalid(26, "password_hash", "cost_too_high"),
        ])
    );
    assert_eq!(r["imported"], 6);

    let mut names: Vec<String> = app
        .pg()
        .query("SELECT username FROM users ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["dup", "good", "legacy", "mail2", "older", "plain", "taken"]
    );
    // A refused row leaves no profile behind.
    let profiles = app
        .mongo()
        .collection::<mongodb::bson::Document>("profiles")
        .count_documents(mongodb::bson::doc! {})
        .run()
        .unwrap();
    assert_eq!(profiles, 0);
    // Plain passwords are hashed; $2a/$2b/$2y hashes are kept and verify.
    for name in ["good", "dup", "plain", "legacy", "older"] {
        can_log_in(&app, name);
    }
    let plain_hash: String = app
        .pg()
        .query_one(
            "SELECT password_hash FROM users WHERE username = 'plain'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(plain_hash.starts_with("$2") && !plain_hash.contains(PASSWORD));
}

#[test]
fn imported_rows_keep_their_state_roles_and_profile() {
    let app = spawn_app();
    let h = password_hash();
    import_all(
        &app,
        vec![
            json!({
                "username": "Ivy", "email": "ivy@example.com", "password_hash": h,
                "state": "locked", "roles": ["viewer", "editor"],
                "profile": {"nickname": "Ivy", "extra": {"dept": "ops"}},
            }),
            json!({"username": "jay", "password_hash": h, "state": "active", "roles": ["admin"]}),
            json!({"username": "kim", "password_hash": h}),
        ],
    );
    let ivy = app.ok("user.find", json!({"email": "ivy@example.com"}));
    let id = id_of(&ivy);
    assert_eq!(ivy["username"], "ivy");
    assert_eq!(ivy["state"], "locked");
    assert_eq!(ivy["roles"], json!(["editor", "viewer"]));
    assert_eq!(
        ivy["profile"],
        json!({"nickname": "Ivy", "extra": {"dept": "ops"}})
    );
    assert_eq!(
        stored(&app, id).unwrap(),
        Stored {
            username: "ivy".into(),
            email: Some("ivy@example.com".into()),
            state: "locked".into(),
            roles: vec!["editor".into(), "viewer".into()],
        }
    );
    let doc = profile_doc(&app, id).unwrap();
    assert_eq!(doc.get_str("nickname").unwrap(), "Ivy");
    assert_eq!(stored_extra(&doc)["dept"], "ops");
    let e = app.err(
        "auth.login",
        json!({"username": "ivy", "password": PASSWORD}),
        -32012,
    );
    assert_eq!(e["data"], json!({"state": "locked"}));

    let jay = can_log_in(&app, "jay");
    let token = &jay["access_token"];
    assert_eq!(
        app.ok("auth.introspect", json!({"token": token}))["roles"],
        json!(["admin"])
    );
    let may = app.ok(
        "auth.authorize",
        json!({"token": token, "permission": "billing:refund"}),
    );
    assert_eq!(may["allowed"], true);

    let kim = app.ok("user.find", json!({"username": "kim"}));
    assert_eq!(kim["state"], "active");
    assert_eq!(kim["roles"], json!([]));
    assert_eq!(kim["profile"], json!({}));
    assert_eq!(kim["email"], Value::Null);
    assert!(profile_doc(&app, id_of(&kim)).is_none());
}

#[test]
fn import_refuses_more_than_a_thousand_rows_or_a_non_array() {
    let app = spawn_app();
    let rows: Vec<Value> = (0..1001).map(|i| row(&format!("over{i:04}"))).collect();
    assert_invalid(
        &app,
        "user.import",
        json!({ "users": rows }),
        "users",
        "too_many",
    );
    assert_eq!(count_users(&app), 0);
    assert_invalid(
        &app,
        "user.import",
        json!({"users": {"username": "x"}}),
        "users",
        "not_an_array",
    );
    assert_invalid(&app, "user.import", json!({}), "users", "missing");
    let empty = app.ok("user.import", json!({"users": []}));
    assert_eq!(empty, json!({"imported": 0, "errors": []}));
}

#[test]
fn an_import_row_whose_profile_cannot_be_stored_leaves_no_account() {
    let app = spawn_with(Options {
        mongo_uri: Some("mongodb://127.0.0.1:1/profiteer_dead".into()),
        ..Options::default()
    });
    let with_profile = json!({
        "username": "withprofile", "password_hash": password_hash(), "profile": {"nickname": "W"},
    });
    let r = app.ok(
        "user.import",
        json!({"users": [with_profile, row("without")]}),
    );
    assert_eq!(
        r,
        json!({"imported": 1, "errors": [{"index": 0, "code": -32000}]})
    );
    let names: Vec<String> = app
        .pg()
        .query("SELECT username FROM users", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(names, ["without"]);
}

#[test]
fn imported_rows_keep_their_user_ids_and_later_ids_are_allocated_above_them() {
    let app = spawn_app();
    let before = app.register("early");
    let mut five = row("five");
    five["user_id"] = json!(5);
    let mut big = row("big");
    big["user_id"] = json!(1701);
    let mut middle = row("middle");
    middle["user_id"] = json!(300);
    import_all(&app, vec![five, big, middle, row("numbered")]);

    for (id, name) in [(5, "five"), (1701, "big"), (300, "middle")] {
        assert_eq!(get(&app, id)["username"], name);
        can_log_in(&app, name);
    }
    let numbered = id_of(&app.ok("user.find", json!({"username": "numbered"})));
    assert!(numbered > 1701, "a row without user_id got {numbered}");
    let after = app.register("later");
    assert!(
        after > numbered && before < 5,
        "{before} {numbered} {after}"
    );
}

#[test]
fn a_user_id_already_taken_is_a_conflict_on_user_id_and_stores_nothing() {
    let app = spawn_app();
    let taken = app.register("first");
    let h = password_hash();
    let rows = json!([
        /* 0 */ {"user_id": taken, "username": "second", "password_hash": h},
        /* 1 */ {"user_id": 77, "username": "third", "password_hash": h},
        /* 2 */ {"user_id": 77, "username": "fourth", "password_hash": h},
        /* 3 */ {"user_id": 0, "username": "zero", "password_hash": h},
        /* 4 */ {"user_id": -3, "username": "negative", "password_hash": h},
        /* 5 */ {"user_id": "78", "username": "text", "password_hash": h},
        /* 6 */ {"user_id": 7.5, "username": "fraction", "password_hash": h},
        /* 7 */ {"user_id": 79, "username": "first", "password_hash": h},
    ]);
    let r = app.ok("user.import", json!({ "users": rows }));
    let invalid = |index: usize, reason: &str| json!({"index": index, "code": -32602, "field": "user_id", "reason": reason});
    assert_eq!(
        r,
        json!({"imported": 1, "errors": [
            {"index": 0, "code": -32010, "field": "user_id"},
            {"index": 2, "code": -32010, "field": "user_id"},
            invalid(3, "out_of_range"),
            invalid(4, "out_of_range"),
            invalid(5, "not_an_integer"),
            invalid(6, "not_an_integer"),
            {"index": 7, "code": -32010, "field": "username"},
        ]})
    );
    assert_eq!(get(&app, taken)["username"], "first");
    assert_eq!(get(&app, 77)["username"], "third");
    assert_eq!(count_users(&app), 2);
}

/// The id sequence only ever moves up: importers that read it together and
/// set it one after the other must not leave it below the largest id.
#[test]
fn concurrent_imports_with_ids_leave_the_next_id_above_all_of_them() {
    let app = std::sync::Arc::new(spawn_app());
    let importers: Vec<_> = (0..3i64)
        .map(|t| {
            let app = app.clone();
            std::thread::spawn(move || {
                // Each thread alternates high and low ids: 1000+, 3000+, 1001+, ...
                for i in 0..16i64 {
                    let id = if i % 2 == 0 { 3000 } else { 1000 } + 10 * i + t;
                    let mut r = row(&format!("imp{id}"));
                    r["user_id"] = json!(id);
                    import_all(&app, vec![r]);
                }
            })
        })
        .collect();
    for t in importers {
        t.join().unwrap();
    }
    assert_eq!(count_users(&app), 48);
    let next = app.register("afterwards");
    assert!(next > 3142, "{next}");
}

#[test]
fn imported_hashes_costlier_than_bcrypt_cost_plus_two_are_refused() {
    // BCRYPT_COST is 4 in tests: cost 6 is the most an import may bring.
    let app = spawn_app();
    let h = password_hash();
    let rows = json!([
        {"username": "six", "password_hash": h.replacen("$04$", "$06$", 1)},
        {"username": "seven", "password_hash": h.replacen("$04$", "$07$", 1)},
        {"username": "slow", "password_hash": h.replacen("$04$", "$31$", 1)},
    ]);
    let r = app.ok("user.import", json!({ "users": rows }));
    let refused = |index: usize| json!({"index": index, "code": -32602, "field": "password_hash", "reason": "cost_too_high"});
    assert_eq!(r["errors"], json!([refused(1), refused(2)]), "{r}");
    assert_eq!(r["imported"], 1);
    assert_eq!(count_users(&app), 1);
}

#[test]
fn an_imported_row_may_bring_a_verified_email_and_rows_without_it_are_unverified() {
    let app = spawn_app();
    let h = password_hash();
    let rows = json!([
        {"username": "proven", "email": "proven@example.com", "email_verified": true, "password_hash": h},
        {"username": "unproven", "email": "unproven@example.com", "password_hash": h},
        {"username": "nomail", "email_verified": true, "password_hash": h},
        {"username": "oddflag", "email": "odd@example.com", "email_verified": "yes", "password_hash": h},
    ]);
    let r = app.ok("user.import", json!({ "users": rows }));
    assert_eq!(r["imported"], 3);
    assert_eq!(
        r["errors"],
        json!([{"index": 3, "code": -32602, "field": "email_verified", "reason": "not_a_boolean"}])
    );
    for (name, verified) in [("proven", true), ("unproven", false), ("nomail", false)] {
        let user = app.ok("user.find", json!({ "username": name }));
        assert_eq!(user["email_verified"], verified, "{name}");
    }
}

/// A batch is stored in a few statements (issue 27: 5,000 rows a second is
/// the migration's pace), and each row still is all-or-nothing: every
/// account stored has its roles and its one `user.created` event, and the
/// rows refused have neither.
#[test]
fn a_batch_stores_each_account_with_its_roles_and_one_event_and_nothing_for_refused_rows() {
    let app = spawn_app();
    register_with_email(&app, "taken");
    let h = password_hash();
    let mut rows: Vec<Value> = (0..300)
        .map(|i| json!({"username": format!("b{i:03}"), "password_hash": h, "roles": ["editor"]}))
        .collect();
    rows.push(json!({"username": "taken", "password_hash": h, "roles": ["editor"]}));
    rows.push(json!({"username": "b000", "password_hash": h, "roles": ["editor"]}));
    rows.push(json!({"user_id": 900_000, "username": "kept", "password_hash": h}));
    let r = app.ok("user.import", json!({ "users": rows }));
    assert_eq!(
        r,
        json!({"imported": 301, "errors": [
            {"index": 300, "code": -32010, "field": "username"},
            {"index": 301, "code": -32010, "field": "username"},
        ]})
    );
    let count = |sql: &str| -> i64 { app.pg().query_one(sql, &[]).unwrap().get(0) };
    assert_eq!(count("SELECT count(*) FROM users"), 302);
    assert_eq!(
        count("SELECT count(*) FROM user_roles WHERE role = 'editor'"),
        300
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM account_events e JOIN users u ON u.id = e.user_id \
             WHERE e.type = 'user.created' AND u.username <> 'taken'"
        ),
        301,
        "one user.created per stored row"
    );
    assert_eq!(
        count("SELECT count(DISTINCT user_id) FROM account_events WHERE type = 'user.created'"),
        302
    );
    assert_eq!(get(&app, 900_000)["username"], "kept");
    // Ids drawn for the batch are new ones, above the kept id.
    let next = app.register("after");
    assert!(next > 900_000, "{next}");
    assert_eq!(get(&app, 900_000)["roles"], json!([]));
}

/// Issue 27: one-row imports with a password in a tight loop (the old
/// service's load test) found the lane full and each answer said so inside
/// a successful result, at once, so the loop never slowed down and its
/// refusals took the CPU the lane needed. A call none of whose rows could
/// be hashed is now refused as a whole with -32002 (paced like a refused
/// login in a storm); nothing is stored.
#[test]
fn an_import_whose_passwords_find_the_lane_full_is_refused_as_a_whole() {
    let app = spawn_with(Options {
        ini: "[SERVER]\nREQUEST_TIMEOUT_MS = 20000\n\
              [AUTH]\nBCRYPT_COST = 10\nHASH_WORKERS = 1\nHASH_QUEUE_DEPTH = 0\n"
            .into(),
        ..Options::default()
    });
    // A hash of cost 12 made from a cheap one: its check holds the only
    // place on the lane for a while (seconds in a debug build).
    let slow = bcrypt::hash(PASSWORD, 4)
        .unwrap()
        .replacen("$04$", "$12$", 1);
    let imported = app.ok(
        "user.import",
        json!({"users": [{"username": "slow", "password_hash": slow}]}),
    );
    assert_eq!(imported["imported"], 1, "{imported}");
    std::thread::scope(|s| {
        let holder = s.spawn(|| {
            app.rpc(
                "auth.login",
                json!({"username": "slow", "password": "wrong-password-123"}),
            )
        });
        let mut refused = None;
        // Until the login holds the lane's place, an import may get it.
        app.eventually(Duration::from_secs(15), || {
            if app.metric("profiteer_hash_queue_depth") < 1.0 {
                return false;
            }
            let r = app.rpc(
                "user.import",
                json!({"users": [{"user_id": 4242, "username": "flood", "password": PASSWORD}]}),
            );
            let full = r["error"]["code"] == -32002;
            refused = Some(r);
            full
        });
        let r = refused.expect("the login never held the lane");
        assert_eq!(r["error"]["code"], -32002, "{r}");
        assert!(r.get("result").is_none(), "{r}");
        holder.join().unwrap();
    });
    let stored: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM users WHERE username = 'flood'", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
}
