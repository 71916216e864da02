//! `user.login_history`: login attempts, written to MongoDB off the request
//! path (hence `eventually`), newest first.

use std::time::Duration;

use mongodb::bson::doc;
use serde_json::{json, Value};

use super::*;

fn login(app: &TestApp, username: &str, password: &str, ip: &str, agent: &str) -> Value {
    app.rpc(
        "auth.login",
        json!({"username": username, "password": password, "ip": ip, "user_agent": agent}),
    )
}

/// The history once it holds `n` events (they are written asynchronously).
fn history_of(app: &TestApp, id: i64, n: usize, params: Value) -> Vec<Value> {
    let mut events = Vec::new();
    let mut p = params;
    p["user_id"] = json!(id);
    let complete = app.eventually(Duration::from_secs(10), || {
        let r = app.ok("user.login_history", p.clone());
        events = r["events"].as_array().unwrap().clone();
        events.len() >= n
    });
    assert!(complete, "expected {n} events, have {events:?}");
    events
}

#[test]
fn login_history_shows_successes_and_failures_newest_first_with_ip_and_user_agent() {
    let app = spawn_app();
    let id = app.register("rosa");
    let other = app.register("sven");
    let r = login(&app, "rosa", "wrong password!", "10.0.0.1", "curl/8.5");
    assert_eq!(r["error"]["code"], -32011);
    let r = login(&app, "ROSA", PASSWORD, "10.0.0.2", "Mozilla/5.0");
    assert!(r["result"]["access_token"].is_string(), "{r}");
    app.ok(
        "user.set_state",
        json!({"user_id": id, "state": "disabled"}),
    );
    let r = login(&app, "rosa", PASSWORD, "10.0.0.3", "agent/3");
    assert_eq!(r["error"]["code"], -32012);
    let r = login(&app, "sven", PASSWORD, "10.9.9.9", "other");
    assert!(r.get("result").is_some(), "{r}");

    let events = history_of(&app, id, 3, json!({}));
    let strip_at: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut().unwrap().remove("at");
            e
        })
        .collect();
    assert_eq!(
        strip_at,
        [
            json!({"ok": false, "ip": "10.0.0.3", "user_agent": "agent/3", "reason": "account_inactive"}),
            json!({"ok": true, "ip": "10.0.0.2", "user_agent": "Mozilla/5.0", "reason": null}),
            json!({"ok": false, "ip": "10.0.0.1", "user_agent": "curl/8.5", "reason": "invalid_credentials"}),
        ]
    );
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    for t in &times {
        assert!(t.ends_with('Z'), "{t}");
        chrono::DateTime::parse_from_rfc3339(t).unwrap();
    }
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );

    // limit keeps the newest.
    let newest = app.ok("user.login_history", json!({"user_id": id, "limit": 1}));
    assert_eq!(newest["events"], json!([events[0]]));

    // Stored in MongoDB, one document per attempt, under the user's id.
    let stored = app
        .mongo()
        .collection::<mongodb::bson::Document>("login_events")
        .count_documents(doc! {"user_id": id})
        .run()
        .unwrap();
    assert_eq!(stored, 3);
    let sven = history_of(&app, other, 1, json!({}));
    assert_eq!(sven.len(), 1);
    assert_eq!(sven[0]["ip"], "10.9.9.9");
}

#[test]
fn login_history_answers_twenty_events_by_default_and_at_most_the_limit() {
    let app = spawn_app();
    let id = app.register("tara");
    assert_eq!(
        app.ok("user.login_history", json!({"user_id": id})),
        json!({"events": []})
    );
    // One address per attempt keeps the per-(login, ip) limit out of the way.
    for i in 0..21 {
        let r = login(
            &app,
            "tara",
            "not the password",
            &format!("10.1.0.{i}"),
            "loop",
        );
        assert_eq!(r["error"]["code"], -32011, "{r}");
    }
    let all = history_of(&app, id, 21, json!({"limit": 100}));
    assert_eq!(all.len(), 21);
    assert_eq!(all[0]["ip"], "10.1.0.20");
    assert_eq!(all[20]["ip"], "10.1.0.0");
    let default = app.ok("user.login_history", json!({"user_id": id}));
    assert_eq!(default["events"], json!(all[..20]));
}

#[test]
fn login_history_of_an_unknown_user_is_not_found_and_the_limit_is_bounded() {
    let app = spawn_app();
    let id = app.register("uma");
    app.err("user.login_history", json!({"user_id": 424_242}), -32013);
    let history = |limit: Value| json!({"user_id": id, "limit": limit});
    assert_invalid(
        &app,
        "user.login_history",
        history(json!(0)),
        "limit",
        "out_of_range",
    );
    assert_invalid(
        &app,
        "user.login_history",
        history(json!(101)),
        "limit",
        "out_of_range",
    );
    assert_invalid(
        &app,
        "user.login_history",
        history(json!("5")),
        "limit",
        "not_an_integer",
    );
    assert_invalid(&app, "user.login_history", json!({}), "user_id", "missing");
}
