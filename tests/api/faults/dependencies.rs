//! Each dependency stopped or stalled while profiteer serves, then brought
//! back: what goes on, what degrades, what fails fast, and that everything
//! recovers without a restart.

use std::time::{Duration, Instant};

use serde_json::json;

use super::private::{PrivateMongo, PrivatePg, PrivateRedis};
use super::*;

/// Times one call; the answer and how long it took.
fn timed(app: &TestApp, method: &str, params: serde_json::Value) -> (serde_json::Value, Duration) {
    let start = Instant::now();
    let r = app.rpc(method, params);
    (r, start.elapsed())
}

#[test]
fn with_redis_down_tokens_logins_and_reads_go_on_and_all_recovers() {
    let mut redis = PrivateRedis::start();
    let app = spawn_with(Options {
        redis_uri: Some(redis.uri()),
        ..Options::default()
    });
    let (id, t) = app.register_and_login("rd_alice");
    let token = t["access_token"].as_str().unwrap().to_string();
    redis.down();
    assert!(active(&app, &token));
    let r = app.ok(
        "auth.authorize",
        json!({"token": token, "permission": "x:y"}),
    );
    assert_eq!(r["allowed"], false, "{r}");
    let again = app.ok(
        "auth.login",
        json!({"username": "rd_alice", "password": PASSWORD}),
    );
    assert!(active(&app, again["access_token"].as_str().unwrap()));
    assert_eq!(
        app.ok("user.get", json!({"user_id": id}))["username"],
        "rd_alice"
    );
    let ready = app.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["redis"], "down");
    redis.up();
    let back = app.eventually(Duration::from_secs(10), || {
        app.get("/readyz").json()["redis"] == "up"
    });
    assert!(back, "redis not seen up again");
    app.ok(
        "auth.login",
        json!({"username": "rd_alice", "password": PASSWORD}),
    );
}

fn mongo_app(mongo: &PrivateMongo) -> TestApp {
    // A per-test database name on the private server.
    let name = format!("faults_{}", std::process::id());
    spawn_with(Options {
        mongo_uri: Some(mongo.uri(&name)),
        ini: "[SERVER]\nREQUEST_TIMEOUT_MS = 3000\n".into(),
        ..Options::default()
    })
}

/// With MongoDB stopped and then stalled: user reads answer from PostgreSQL
/// marked `profile_unavailable` within the deadline, logins go on, and the
/// login events made meanwhile are in MongoDB once it is back.
#[test]
fn with_mongo_down_or_stalled_reads_degrade_logins_go_on_and_events_arrive_later() {
    let mut mongo = PrivateMongo::start();
    let app = mongo_app(&mongo);
    let id = app.ok(
        "auth.register",
        json!({"username": "md_bob", "password": PASSWORD, "profile": {"nickname": "B"}}),
    )["user_id"]
        .as_i64()
        .unwrap();
    // One account per fault, never read before it: only PostgreSQL can
    // answer it then (a User cached earlier is answered whole, rightly).
    let carl = app.register("md_carl");
    let erin = app.register("md_erin");
    assert_eq!(
        app.ok("user.get", json!({"user_id": id}))["profile"],
        json!({"nickname": "B"})
    );

    for (fault, other, name) in [("down", carl, "md_carl"), ("stalled", erin, "md_erin")] {
        match fault {
            "down" => mongo.down(),
            _ => mongo.stall(),
        }
        // `other` is not cached anywhere: only PostgreSQL can answer it.
        let (r, took) = timed(&app, "user.get", json!({"user_id": other}));
        assert!(
            took < Duration::from_secs(4),
            "{fault}: user.get took {took:?}"
        );
        let user = &r["result"];
        assert_eq!(user["username"], name, "{fault}: {r}");
        assert_eq!(user["profile"], json!({}), "{fault}");
        assert_eq!(user["profile_unavailable"], true, "{fault}");
        let (r, took) = timed(&app, "user.gets", json!({"user_ids": [other]}));
        assert!(
            took < Duration::from_secs(4),
            "{fault}: user.gets took {took:?}"
        );
        assert_eq!(
            r["result"]["users"][0]["profile_unavailable"], true,
            "{fault}: {r}"
        );
        let r = app.ok("user.find", json!({"username": name}));
        assert_eq!(r["profile_unavailable"], true, "{fault}");
        let r = app.ok("user.search", json!({"query": "md_"}));
        assert_eq!(r["users"].as_array().unwrap().len(), 3, "{fault}");
        // logins go on (their events wait for MongoDB)
        for _ in 0..3 {
            app.ok(
                "auth.login",
                json!({"username": name, "password": PASSWORD}),
            );
        }
        let ready = app.get("/readyz");
        assert_eq!(ready.status, 200, "{fault}: {}", ready.text());
        assert_eq!(ready.json()["mongo"], "down", "{fault}");
        match fault {
            "down" => mongo.up(),
            _ => mongo.resume(),
        }
        // Once back: full Users again, and not marked.
        let whole = app.eventually(Duration::from_secs(30), || {
            let u = app.ok("user.get", json!({"user_id": other}));
            u.get("profile_unavailable").is_none()
        });
        assert!(whole, "{fault}: reads still degraded after recovery");
    }
    // The logins made while MongoDB could not be written are there, once.
    for (fault, id) in [("down", carl), ("stalled", erin)] {
        let count = || {
            let h = app.ok("user.login_history", json!({"user_id": id, "limit": 100}));
            h["events"].as_array().unwrap().len()
        };
        let arrived = app.eventually(Duration::from_secs(30), || count() >= 3);
        assert!(
            arrived,
            "{fault}: login events made meanwhile never arrived"
        );
        assert_eq!(count(), 3, "{fault}: login events written twice");
    }
}

/// PostgreSQL stopped: calls fail -32000 within the deadline (never a
/// hang), /readyz is 503; started again: the same instance serves within
/// seconds, with no restart.
#[test]
fn with_postgres_down_calls_fail_fast_readyz_is_503_and_it_recovers() {
    let pg = PrivatePg::start();
    let app = spawn_with(Options {
        pg_base: Some(pg.base()),
        ini: "[SERVER]\nREQUEST_TIMEOUT_MS = 3000\n[PG]\nPG_POOL_TIMEOUT = 1\n".into(),
        ..Options::default()
    });
    let (id, t) = app.register_and_login("pg_dora");
    let token = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/readyz").status, 200);
    pg.down();
    for (method, params) in [
        ("auth.introspect", json!({"token": token})),
        ("user.get", json!({"user_id": id + 1})),
        (
            "auth.login",
            json!({"username": "pg_dora", "password": PASSWORD}),
        ),
    ] {
        let (r, took) = timed(&app, method, params);
        assert!(took < Duration::from_secs(4), "{method} took {took:?}");
        assert_eq!(r["error"]["code"], -32000, "{method}: {r}");
        assert_eq!(
            r["error"]["data"]["dependency"], "postgres",
            "{method}: {r}"
        );
    }
    let ready = app.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["postgres"], "down");
    pg.up();
    let back = app.eventually(Duration::from_secs(10), || {
        app.rpc("auth.introspect", json!({"token": token}))["result"]["active"] == true
    });
    assert!(back, "not serving again within 10 s of PostgreSQL's return");
    assert_eq!(app.get("/readyz").status, 200);
    app.ok(
        "auth.login",
        json!({"username": "pg_dora", "password": PASSWORD}),
    );
}
