//! The second factor: two-step TOTP enrolment and the helpers the other
//! MFA tests share (codes computed here from the secret with totp-rs).
//! The login's second step: `mfa_login.rs`; disabling, resets, limits and
//! roles: `mfa_rules.rs`; keys: `mfa_keys.rs`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use totp_rs::{Builder, Secret, Totp};

use super::*;

/// The current 30-second step, as the server counts it.
pub fn step_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// The 6-digit code of a base32 secret for a time step, computed here with
/// the RFC's parameters (SHA-1, 6 digits, 30 s).
pub fn code(secret: &str, step: u64) -> String {
    Builder::new()
        .with_secret(Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
        .generate(step * 30)
        .to_string()
}

/// A code that is certainly wrong for `step` (and its neighbours).
pub fn wrong_code(secret: &str, step: u64) -> String {
    let near: Vec<String> = (step - 2..=step + 2).map(|s| code(secret, s)).collect();
    (0..1000)
        .map(|i| format!("{:06}", (i * 7919) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// An account with TOTP enabled: registered, enrolled and confirmed with
/// the code of step `s0`. So that no test waits for the clock, a later
/// acceptance uses step `s0 + 1` (inside the server's ±1 window).
pub struct Enrolled {
    pub user_id: i64,
    pub secret: String,
    pub s0: u64,
    pub recovery_codes: Vec<String>,
    /// The password-only session enrolment was done with.
    pub tokens: Value,
}

pub fn enrol(app: &TestApp, username: &str) -> Enrolled {
    let (user_id, tokens) = app.register_and_login(username);
    let setup = app.ok("auth.mfa.setup_totp", json!({"token": access(&tokens)}));
    let secret = setup["secret"].as_str().unwrap().to_string();
    let s0 = step_now();
    let confirmed = app.ok(
        "auth.mfa.confirm_totp",
        json!({"token": access(&tokens), "code": code(&secret, s0)}),
    );
    let recovery_codes = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    Enrolled {
        user_id,
        secret,
        s0,
        recovery_codes,
        tokens,
    }
}

/// Logs in with the right password: the `mfa_token` of the challenge.
pub fn challenge(app: &TestApp, username: &str) -> String {
    let answer = login(app, username);
    assert_eq!(answer["mfa_required"], true, "{answer}");
    answer["mfa_token"].as_str().unwrap().to_string()
}

pub fn history_reasons(app: &TestApp, user_id: i64) -> Vec<Value> {
    app.ok(
        "user.login_history",
        json!({"user_id": user_id, "limit": 100}),
    )["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].clone())
        .collect()
}

#[test]
fn setup_returns_a_secret_and_an_otpauth_uri_an_authenticator_app_reads() {
    let app = spawn_app();
    let (_, tokens) = app.register_and_login("alice");
    let setup = app.ok("auth.mfa.setup_totp", json!({"token": access(&tokens)}));
    let secret = setup["secret"].as_str().unwrap();
    assert_eq!(
        Secret::try_from_base32(secret)
            .unwrap()
            .as_ref()
            .to_vec()
            .len(),
        20
    );
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("otpauth://totp/profiteer:alice?secret={secret}&issuer=profiteer")
    );
    // What an app does with the URI: the same codes as the secret gives.
    let app_side = Totp::from_url(uri).unwrap();
    assert_eq!(app_side.issuer(), Some("profiteer"));
    assert_eq!(
        app_side.generate(step_now() * 30).to_string(),
        code(secret, step_now())
    );

    // Stored sealed: neither the raw secret nor its base32 text is in the row.
    let raw = Secret::try_from_base32(secret).unwrap().as_ref().to_vec();
    let sealed: Vec<u8> = app
        .pg()
        .query_one("SELECT totp_sealed FROM user_mfa", &[])
        .unwrap()
        .get(0);
    assert!(sealed.len() >= 20 + 12 + 16, "{} bytes", sealed.len());
    assert!(!sealed.windows(raw.len()).any(|w| w == raw.as_slice()));
    assert!(!sealed.windows(8).any(|w| w == &secret.as_bytes()[..8]));
    assert!(!app.logs().contains(secret), "the secret reached the log");

    let issuer = spawn_with(Options {
        ini: "[AUTH]\nMFA_ISSUER = Acme Corp\n".into(),
        ..Options::default()
    });
    let (_, tokens) = issuer.register_and_login("bob");
    let uri =
        issuer.ok("auth.mfa.setup_totp", json!({"token": access(&tokens)}))["otpauth_uri"].clone();
    assert!(
        uri.as_str()
            .unwrap()
            .starts_with("otpauth://totp/Acme%20Corp:bob?"),
        "{uri}"
    );
}

#[test]
fn totp_is_required_at_login_only_once_a_code_confirms_the_setup() {
    let app = spawn_app();
    let (id, tokens) = app.register_and_login("alice");
    let t = access(&tokens);
    assert_eq!(
        app.ok("user.get", json!({"user_id": id}))["mfa"],
        json!({"totp": false, "passkeys": 0})
    );
    app.err(
        "auth.mfa.confirm_totp",
        json!({"token": t, "code": "123456"}),
        -32013,
    );
    let secret = app.ok("auth.mfa.setup_totp", json!({"token": t}))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    // Pending: logins go on with a password alone, and the User says false.
    assert!(login(&app, "alice")["access_token"].is_string());
    assert_eq!(
        app.ok("user.get", json!({"user_id": id}))["mfa"]["totp"],
        false
    );
    let s0 = step_now();
    let e = app.err(
        "auth.mfa.confirm_totp",
        json!({"token": t, "code": wrong_code(&secret, s0)}),
        -32011,
    );
    assert!(e.get("data").is_none(), "{e}");
    app.err(
        "auth.mfa.confirm_totp",
        json!({"token": t, "code": "12345"}),
        -32602,
    );

    let confirmed = app.ok(
        "auth.mfa.confirm_totp",
        json!({"token": t, "code": code(&secret, s0)}),
    );
    let codes: Vec<&str> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 10);
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    // Stored only as hashes.
    let stored: Vec<Vec<u8>> = app
        .pg()
        .query(
            "SELECT code_hash FROM mfa_recovery_codes WHERE user_id = $1",
            &[&id],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 10);
    for c in &codes {
        let plain = c.replace('-', "");
        assert!(stored
            .iter()
            .all(|h| h.len() == 32 && !h.windows(plain.len()).any(|w| w == plain.as_bytes())));
    }

    // Enabled: every read of the User says so (the cached one too).
    assert_eq!(
        app.ok("user.get", json!({"user_id": id}))["mfa"],
        json!({"totp": true, "passkeys": 0})
    );
    let found = app.ok("user.find", json!({"username": "alice"}));
    assert_eq!(found["mfa"]["totp"], true);
    assert_eq!(
        app.ok("user.gets", json!({"user_ids": [id]}))["users"][0]["mfa"]["totp"],
        true
    );

    // And the login asks for the second factor instead of opening a session.
    let answer = login(&app, "alice");
    assert_eq!(answer["mfa_required"], true);
    assert_eq!(answer["methods"], json!(["totp", "recovery_code"]));
    assert_eq!(answer["expires_in"], 300);
    assert!(answer.get("access_token").is_none(), "{answer}");
    let mfa_token = answer["mfa_token"].as_str().unwrap();
    assert!(
        mfa_token.starts_with("pmf_") && mfa_token.len() == 47,
        "{mfa_token}"
    );
    let stored: Vec<u8> = app
        .pg()
        .query_one(
            "SELECT token_hash FROM mfa_challenges WHERE user_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, sha256(mfa_token));

    // Set up again while enabled: disable first.
    let e = app.err("auth.mfa.setup_totp", json!({"token": t}), -32010);
    assert_eq!(e["data"]["field"], "mfa");
    let e = app.err(
        "auth.mfa.confirm_totp",
        json!({"token": t, "code": code(&secret, s0)}),
        -32010,
    );
    assert_eq!(e["data"]["field"], "mfa");
}
