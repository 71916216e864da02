//! `user.*`: reads (get, gets, find, search), writes (profile, state, roles),
//! login history and bulk import. Each test checks what came back and what
//! is stored: accounts and roles in PostgreSQL, profiles in MongoDB (the
//! `profiles` collection, `_id` = user id), and the assembled User cached in
//! Redis under `<prefix>user:<id>`.

mod answers;
mod cache;
mod history;
mod identity;
mod import;
mod import_profiles;
mod lifecycle;
mod read;
mod search;
mod write;

use std::sync::OnceLock;

use mongodb::bson::{doc, Document};
use serde_json::{json, Value};

use crate::helpers::*;

/// One bcrypt hash of [`PASSWORD`] at cost 4, made once and reused by every
/// import (hashing per row would make the tests measure bcrypt).
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash(PASSWORD, 4).unwrap())
}

/// An import row that logs in with [`PASSWORD`].
pub fn row(username: &str) -> Value {
    json!({"username": username, "password_hash": password_hash()})
}

/// Imports `rows`, which must all succeed.
pub fn import_all(app: &TestApp, rows: Vec<Value>) {
    let n = rows.len();
    let r = app.ok("user.import", json!({ "users": rows }));
    assert_eq!(r, json!({"imported": n, "errors": []}));
}

/// Registers `name` with the email `<name>@example.com`.
pub fn register_with_email(app: &TestApp, name: &str) -> i64 {
    let params =
        json!({"username": name, "password": PASSWORD, "email": format!("{name}@example.com")});
    app.ok("auth.register", params)["user_id"].as_i64().unwrap()
}

/// A call that must fail with -32602 naming `field` and `reason`.
pub fn assert_invalid(app: &TestApp, method: &str, params: Value, field: &str, reason: &str) {
    let e = app.err(method, params.clone(), -32602);
    assert_eq!(
        e["data"],
        json!({"field": field, "reason": reason}),
        "{method} {params}"
    );
}

pub fn get(app: &TestApp, id: i64) -> Value {
    app.ok("user.get", json!({ "user_id": id }))
}

pub fn id_of(user: &Value) -> i64 {
    user["user_id"].as_i64().unwrap()
}

pub fn usernames(users: &Value) -> Vec<String> {
    users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

pub fn profile_doc(app: &TestApp, id: i64) -> Option<Document> {
    app.mongo()
        .collection::<Document>("profiles")
        .find_one(doc! {"_id": id})
        .run()
        .unwrap()
}

/// A profile document's `extra`, stored as its JSON text (so that `$` keys
/// stay data).
pub fn stored_extra(doc: &Document) -> Value {
    serde_json::from_str(doc.get_str("extra").unwrap()).unwrap()
}

/// The account as PostgreSQL holds it.
#[derive(Debug, PartialEq)]
pub struct Stored {
    pub username: String,
    pub email: Option<String>,
    pub state: String,
    pub roles: Vec<String>,
}

pub fn stored(app: &TestApp, id: i64) -> Option<Stored> {
    app.pg()
        .query_opt(
            "SELECT username, email, state, \
             ARRAY(SELECT role FROM user_roles WHERE user_id = u.id ORDER BY role) \
             FROM users u WHERE id = $1",
            &[&id],
        )
        .unwrap()
        .map(|r| Stored {
            username: r.get(0),
            email: r.get(1),
            state: r.get(2),
            roles: r.get(3),
        })
}
