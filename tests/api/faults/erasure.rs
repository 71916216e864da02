//! `user.delete` while MongoDB is down: the call succeeds, nothing of the
//! user is served meanwhile, and the profile and login events are erased
//! once MongoDB answers, from the record kept in PostgreSQL, even across a
//! restart of profiteer.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use serde_json::json;

use super::private::PrivateMongo;
use super::*;

fn documents(mongo: &PrivateMongo, name: &str, id: i64) -> (u64, u64) {
    let db = mongodb::sync::Client::with_uri_str(mongo.uri(name))
        .unwrap()
        .database(name);
    let profiles = db
        .collection::<Document>("profiles")
        .count_documents(doc! {"_id": id})
        .run()
        .unwrap();
    let events = db
        .collection::<Document>("login_events")
        .count_documents(doc! {"user_id": id})
        .run()
        .unwrap();
    (profiles, events)
}

#[test]
fn a_delete_while_mongo_is_down_succeeds_and_its_mongo_part_is_done_when_mongo_is_back() {
    let mut mongo = PrivateMongo::start();
    let name = format!("erasure_{}", std::process::id());
    let opts = || Options {
        mongo_uri: Some(mongo.uri(&name)),
        ..Options::default()
    };
    let mut app = spawn_with(opts());
    let id = app.ok(
        "auth.register",
        json!({"username": "er_ann", "password": PASSWORD, "profile": {"nickname": "A"}}),
    )["user_id"]
        .as_i64()
        .unwrap();
    app.ok(
        "auth.login",
        json!({"username": "er_ann", "password": PASSWORD}),
    );
    let stored = app.eventually(Duration::from_secs(10), || {
        documents(&mongo, &name, id) == (1, 1)
    });
    assert!(stored, "{:?}", documents(&mongo, &name, id));

    mongo.down();
    assert_eq!(
        app.ok("user.delete", json!({ "user_id": id })),
        json!({"deleted": true})
    );
    app.err("user.get", json!({ "user_id": id }), -32013);
    let pending: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM pending_erasures WHERE user_id = $1 AND first_done_at IS NULL",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(pending, 1, "the MongoDB part is recorded in PostgreSQL");

    // A restart of profiteer while MongoDB is down loses nothing.
    app.stop();
    mongo.up();
    let app = app.another();
    let erased = app.eventually(Duration::from_secs(20), || {
        documents(&mongo, &name, id) == (0, 0)
    });
    assert!(erased, "{:?}", documents(&mongo, &name, id));
    app.err("user.get", json!({ "user_id": id }), -32013);
}
