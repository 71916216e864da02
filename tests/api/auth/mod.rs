//! `auth.*`: every method's success and each of its error codes, checked
//! both in the answer and in what PostgreSQL and Redis hold afterwards.
//! One file per area; the helpers below read the stored side of a session.

mod abuse;
mod account;
mod email;
mod limits;
mod lockout;
mod login;
mod mfa;
mod mfa_keys;
mod mfa_login;
mod mfa_rules;
mod passkey;
mod passkey_accounts;
mod password;
mod races;
mod register;
mod security;
mod sessions;
mod tokens;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

/// A password the policy accepts, other than [`PASSWORD`].
pub const NEW_PASSWORD: &str = "violet glacier mango lantern 42";

pub fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

pub fn sha256_hex(text: &str) -> String {
    sha256(text).iter().map(|b| format!("{b:02x}")).collect()
}

/// Logs `username` in with `password` from `ip`; the whole login result.
pub fn login_from(app: &TestApp, username: &str, password: &str, ip: &str) -> Value {
    app.ok(
        "auth.login",
        json!({"username": username, "password": password, "ip": ip, "user_agent": "tests/1.0"}),
    )
}

/// Another session for an already registered `username`.
pub fn login(app: &TestApp, username: &str) -> Value {
    app.ok(
        "auth.login",
        json!({"username": username, "password": PASSWORD}),
    )
}

pub fn token_of<'a>(tokens: &'a Value, field: &str) -> &'a str {
    tokens[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {tokens}"))
}

pub fn access(tokens: &Value) -> &str {
    token_of(tokens, "access_token")
}

pub fn refresh(tokens: &Value) -> &str {
    token_of(tokens, "refresh_token")
}

pub fn is_active(app: &TestApp, access_token: &str) -> bool {
    let answer = app.ok("auth.introspect", json!({"token": access_token}));
    answer["active"]
        .as_bool()
        .unwrap_or_else(|| panic!("introspect without `active`: {answer}"))
}

/// Whether PostgreSQL marks the session revoked.
pub fn session_revoked(app: &TestApp, session_id: i64) -> bool {
    app.pg()
        .query_one(
            "SELECT revoked_at IS NOT NULL FROM sessions WHERE id = $1",
            &[&session_id],
        )
        .unwrap()
        .get(0)
}

pub fn session_id(tokens: &Value) -> i64 {
    tokens["session_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no session_id in {tokens}"))
}

pub fn stored_password_hash(app: &TestApp, user_id: i64) -> String {
    app.pg()
        .query_one("SELECT password_hash FROM users WHERE id = $1", &[&user_id])
        .unwrap()
        .get(0)
}
