//! The account event log: every account change appends its event in the
//! same transaction as the change, and `events.read` pages through them in
//! one total order: reading on from each `next` never misses an event and
//! never sees one twice, whatever order concurrent writers committed in.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// Every event after `after`, in pages of `limit`; the last `next`.
fn read_all(app: &TestApp, after: Option<&str>, limit: i64) -> (Vec<Value>, String) {
    let mut cursor = after.map(str::to_string);
    let mut all = Vec::new();
    loop {
        let mut params = json!({ "limit": limit });
        if let Some(c) = &cursor {
            params["after"] = json!(c);
        }
        let page = app.ok("events.read", params);
        let events = page["events"].as_array().unwrap().clone();
        let next = page["next"].as_str().unwrap().to_string();
        if events.is_empty() {
            return (all, next);
        }
        all.extend(events);
        cursor = Some(next);
    }
}

/// Every event once `n` can be read: an event shows once every transaction
/// older than its own has ended (in the whole cluster, which other tests
/// share), so a reader may see it a moment after the call returned.
fn read_at_least(app: &TestApp, after: Option<&str>, n: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let complete = app.eventually(Duration::from_secs(20), || {
        events = read_all(app, after, 2).0;
        events.len() >= n
    });
    assert!(
        complete,
        "only {} of {n} events readable: {events:?}",
        events.len()
    );
    events
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[test]
fn every_account_change_appends_its_event_and_none_carries_a_secret() {
    let app = spawn_app();
    let (id, tokens) = app.register_and_login("evan");
    let token = tokens["access_token"].as_str().unwrap();
    app.ok("user.grant_role", json!({"user_id": id, "role": "editor"}));
    app.ok(
        "user.update_profile",
        json!({"user_id": id, "profile": {"nickname": "E", "bio": "b"}}),
    );
    let second = app.ok(
        "auth.login",
        json!({"username": "evan", "password": PASSWORD}),
    );
    app.ok(
        "auth.change_password",
        json!({"token": token, "old_password": PASSWORD,
               "new_password": "violet glacier mango lantern 42"}),
    );
    app.ok("auth.logout", json!({"token": token}));
    app.ok("user.set_state", json!({"user_id": id, "state": "locked"}));

    let events = read_at_least(&app, None, 9);
    let (events, rest) = events.split_at(8);
    assert_eq!(
        types(events),
        [
            "user.created",
            "session.created",
            "user.roles_changed",
            "user.updated",
            "session.created",
            "session.revoked",
            "password.changed",
            "session.revoked",
        ],
        "{events:?}"
    );
    assert!(events.iter().all(|e| e["user_id"] == id));
    assert_eq!(
        events[2]["data"],
        json!({"role": "editor", "granted": true})
    );
    assert_eq!(events[3]["data"]["fields"], json!(["nickname", "bio"]));
    let second_session = second["session_id"].clone();
    assert_eq!(events[5]["data"]["session_id"], second_session);
    assert_eq!(events[5]["data"]["reason"], "password_changed");
    assert_eq!(events[7]["data"]["reason"], "logout");
    // set_state: the state change is the last event (no session was left).
    assert_eq!(types(rest), ["user.state_changed"]);
    assert_eq!(rest[0]["data"], json!({"state": "locked"}));

    let text = serde_json::to_string(&events).unwrap();
    for secret in ["pat_", "prt_", "$2b$", PASSWORD] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let only = app.ok(
        "events.read",
        json!({"types": ["session.revoked"], "limit": 1000}),
    );
    assert_eq!(only["events"].as_array().unwrap().len(), 2);
    let e = app.err("events.read", json!({"types": ["user.exploded"]}), -32602);
    assert_eq!(e["data"]["field"], "types");
    app.err("events.read", json!({"after": "yesterday"}), -32602);
}

/// Sixteen threads register while a reader pages on with small pages: the
/// reader ends with each account's `user.created` exactly once, although
/// transactions commit out of id order.
#[test]
fn a_reader_paging_during_concurrent_writes_never_misses_or_repeats_an_event() {
    const WRITERS: usize = 16;
    const EACH: usize = 6;
    let app = spawn_app();
    let (seen, registered) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let app = &app;
                s.spawn(move || {
                    (0..EACH)
                        .map(|i| app.register(&format!("ev{t}_{i}")))
                        .collect::<Vec<i64>>()
                })
            })
            .collect();
        let reader = s.spawn(|| {
            let mut ids = Vec::new();
            let mut cursor: Option<String> = None;
            // Until every registration's event was read, or a minute.
            let until = std::time::Instant::now() + Duration::from_secs(60);
            while ids.len() < WRITERS * EACH && std::time::Instant::now() < until {
                let mut params = json!({"limit": 5});
                if let Some(c) = &cursor {
                    params["after"] = json!(c);
                }
                let page = app.ok("events.read", params);
                let events = page["events"].as_array().unwrap();
                ids.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
                cursor = Some(page["next"].as_str().unwrap().to_string());
            }
            ids
        });
        let registered: Vec<i64> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        (reader.join().unwrap(), registered)
    });
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an event was read twice");
    assert_eq!(registered.len(), WRITERS * EACH);
    assert_eq!(seen.len(), registered.len(), "the reader missed events");
    let all = read_at_least(&app, None, registered.len());
    let all: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(all, seen, "the reader's order is not the log's");
}

#[test]
fn a_cursor_older_than_retention_is_not_found_so_the_reader_knows_it_lost_events() {
    let app = spawn_with(Options {
        // 0.00002 days is 1.7 s; sweeps run every second.
        ini: "[RETENTION]\nSESSIONS_DAYS = 0.00001\nEVENTS_DAYS = 0.00002\n".into(),
        ..Options::default()
    });
    app.register("old1");
    app.register("old2");
    let events = read_at_least(&app, None, 2);
    let first = events[0]["id"].as_str().unwrap().to_string();
    let pruned = app.eventually(Duration::from_secs(30), || {
        app.rpc("events.read", json!({"after": first}))["error"]["code"] == -32013
    });
    assert!(
        pruned,
        "a cursor behind deleted events still read as if nothing was lost"
    );
    // Reading from the start of what is kept works, and is empty now.
    let (kept, _) = read_all(&app, None, 10);
    assert!(kept.is_empty(), "{kept:?}");
}

/// A transaction that wrote an event and stays open holds back the events
/// of every transaction after it: a reader sees nothing past it, then, once
/// it commits, its event and the later ones, in (xid, id) order. Reading by
/// id alone would have handed out the later events first and skipped it.
#[test]
fn an_event_of_a_transaction_still_open_is_never_skipped_by_later_ones() {
    let app = spawn_app();
    app.register("before");
    let start = read_at_least(&app, None, 1);
    let cursor = start.last().unwrap()["id"].as_str().unwrap().to_string();
    let mut pg = app.pg();
    let mut open = pg.transaction().unwrap();
    open.execute(
        "INSERT INTO account_events (type, user_id, data) VALUES ('user.updated', 1, '{}')",
        &[],
    )
    .unwrap();
    app.register("after1");
    app.register("after2");
    let held = app.ok("events.read", json!({"after": cursor}));
    assert_eq!(
        held["events"],
        json!([]),
        "read past a transaction still open"
    );
    assert_eq!(held["next"], cursor);
    open.commit().unwrap();
    let events = read_at_least(&app, Some(&cursor), 3);
    assert_eq!(
        types(&events),
        ["user.updated", "user.created", "user.created"]
    );
}

#[test]
fn email_proofs_renames_and_erasures_append_their_events_without_the_address() {
    let app = spawn_app();
    let id = app.ok(
        "auth.register",
        json!({"username": "ella", "password": PASSWORD, "email": "ella@example.com"}),
    )["user_id"]
        .as_i64()
        .unwrap();
    let tokens = app.ok(
        "auth.login",
        json!({"username": "ella", "password": PASSWORD}),
    );
    let token = tokens["access_token"].as_str().unwrap();
    let proof = app.ok("auth.request_email_verification", json!({ "token": token }));
    app.ok(
        "auth.verify_email",
        json!({"verify_token": proof["verify_token"]}),
    );
    let change = app.ok(
        "auth.change_email",
        json!({"token": token, "password": PASSWORD, "new_email": "ella@new.example"}),
    );
    app.ok(
        "auth.verify_email",
        json!({"verify_token": change["verify_token"]}),
    );
    app.ok(
        "user.update_account",
        json!({"user_id": id, "username": "elle"}),
    );
    app.ok("user.delete", json!({ "user_id": id }));

    let events = read_at_least(&app, None, 8);
    assert_eq!(
        types(&events),
        [
            "user.created",
            "session.created",
            "email.verified",
            "email.changed",
            "email.verified",
            "user.updated",
            "session.revoked",
            "user.deleted",
        ],
        "{events:?}"
    );
    assert!(events.iter().all(|e| e["user_id"] == id));
    assert_eq!(events[5]["data"]["fields"], json!(["username"]));
    assert_eq!(events[6]["data"]["reason"], "user_deleted");
    assert_eq!(events[7]["data"], json!({"by": "operator"}));
    let text = serde_json::to_string(&events).unwrap();
    for secret in ["pev_", "pat_", "ella@", PASSWORD] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}
