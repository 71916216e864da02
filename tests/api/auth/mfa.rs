//! The second factor: two-step TOTP enrolment, the login's `mfa_required`
//! answer and `auth.mfa.verify` with codes computed here from the secret,
//! replay refusal, single-use recovery codes and dying challenges.
//! Disabling, resets, limits and roles: `mfa_rules.rs`; keys: `mfa_keys.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        json!({"totp": false})
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
        json!({"totp": true})
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

#[test]
fn verify_with_a_code_completes_the_login_and_that_code_is_never_accepted_again() {
    let app = spawn_app();
    let (_, plain) = app.register_and_login("bob");
    let introspected = app.ok("auth.introspect", json!({"token": access(&plain)}));
    assert_eq!(introspected["amr"], json!(["pwd"]));
    let e = enrol(&app, "alice");

    let mfa_token = challenge(&app, "alice");
    let next = code(&e.secret, e.s0 + 1);
    let t = app.ok(
        "auth.mfa.verify",
        json!({"mfa_token": mfa_token, "code": next}),
    );
    // The same answer as auth.login.
    assert_eq!(t["user_id"], e.user_id);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 900);
    assert_eq!(t["refresh_expires_in"], 2_592_000);
    assert!(refresh(&t).starts_with("prt_"));
    let introspected = app.ok("auth.introspect", json!({"token": access(&t)}));
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["amr"], json!(["pwd", "otp"]));
    // ... and after a refresh the session still has its second factor.
    let refreshed = app.ok("auth.refresh", json!({"refresh_token": refresh(&t)}));
    let introspected = app.ok("auth.introspect", json!({"token": access(&refreshed)}));
    assert_eq!(introspected["amr"], json!(["pwd", "otp"]));
    // The password-only session of the enrolment stays password-only.
    let introspected = app.ok("auth.introspect", json!({"token": access(&e.tokens)}));
    assert_eq!(introspected["amr"], json!(["pwd"]));

    // The mfa_token is single use.
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": mfa_token, "code": next}),
        -32030,
    );
    // The code is accepted once: a new challenge with the same code (still
    // inside its window) fails, and so does the older step's code.
    let again = challenge(&app, "alice");
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": again, "code": next}),
        -32011,
    );
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": again, "code": code(&e.secret, e.s0)}),
        -32011,
    );
    let ok = app.eventually(Duration::from_secs(10), || {
        let reasons = history_reasons(&app, e.user_id);
        reasons.contains(&json!("mfa_required")) && reasons.contains(&json!("invalid_mfa_code"))
    });
    assert!(ok, "{:?}", history_reasons(&app, e.user_id));
    assert!(
        !app.logs().contains(&mfa_token),
        "an mfa token reached the log"
    );
}

#[test]
fn recovery_codes_complete_a_login_once_each_however_they_are_typed() {
    let app = spawn_app();
    let e = enrol(&app, "alice");
    let first = &e.recovery_codes[0];
    let typed = first.to_uppercase().replace('-', " ");
    let t = app.ok(
        "auth.mfa.verify",
        json!({"mfa_token": challenge(&app, "alice"), "recovery_code": typed}),
    );
    assert_eq!(
        app.ok("auth.introspect", json!({"token": access(&t)}))["amr"],
        json!(["pwd", "otp"])
    );
    let spent: i64 = app
        .pg()
        .query_one(
            "SELECT count(*) FROM mfa_recovery_codes WHERE used_at IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(spent, 1);
    let token = challenge(&app, "alice");
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": token, "recovery_code": first}),
        -32011,
    );
    app.ok(
        "auth.mfa.verify",
        json!({"mfa_token": token, "recovery_code": e.recovery_codes[1]}),
    );
    // Exactly one of code and recovery_code.
    let token = challenge(&app, "alice");
    let both = json!({"mfa_token": token, "code": "123456", "recovery_code": e.recovery_codes[2]});
    app.err("auth.mfa.verify", both, -32602);
    app.err("auth.mfa.verify", json!({"mfa_token": token}), -32602);
}

#[test]
fn an_mfa_token_dies_after_five_wrong_codes_and_after_five_minutes() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nLOGIN_MAX_FAILS = 100\n".into(),
        ..Options::default()
    });
    let e = enrol(&app, "alice");
    let right = code(&e.secret, e.s0 + 1);
    let token = challenge(&app, "alice");
    for _ in 0..5 {
        let wrong = wrong_code(&e.secret, e.s0 + 1);
        app.err(
            "auth.mfa.verify",
            json!({"mfa_token": token, "code": wrong}),
            -32011,
        );
    }
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": token, "code": right}),
        -32030,
    );

    let token = challenge(&app, "alice");
    app.pg()
        .execute(
            "UPDATE mfa_challenges SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
            &[&sha256(&token)],
        )
        .unwrap();
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": token, "code": right}),
        -32030,
    );
    // Tokens of another kind or malformed ones are refused the same way.
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": access(&e.tokens), "code": right}),
        -32030,
    );
    // The right code still works on a live challenge: nothing above spent it.
    let token = challenge(&app, "alice");
    app.ok(
        "auth.mfa.verify",
        json!({"mfa_token": token, "code": right}),
    );
}

#[test]
fn the_password_is_checked_before_any_mfa_answer() {
    let app = spawn_app();
    enrol(&app, "alice");
    let wrong = app.err(
        "auth.login",
        json!({"username": "alice", "password": "wrong password 123"}),
        -32011,
    );
    let unknown = app.err(
        "auth.login",
        json!({"username": "nobody", "password": "wrong password 123"}),
        -32011,
    );
    assert_eq!(wrong, unknown);
    let challenges: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM mfa_challenges", &[])
        .unwrap()
        .get(0);
    assert_eq!(challenges, 0, "a wrong password opened a challenge");
}

#[test]
fn an_inactive_account_gets_no_challenge_and_cannot_finish_one_it_had() {
    let app = spawn_app();
    let e = enrol(&app, "alice");
    let pending = challenge(&app, "alice");
    app.ok(
        "user.set_state",
        json!({"user_id": e.user_id, "state": "locked"}),
    );
    let refused = app.err(
        "auth.login",
        json!({"username": "alice", "password": PASSWORD}),
        -32012,
    );
    assert_eq!(refused["data"]["state"], "locked");
    let code = code(&e.secret, e.s0 + 1);
    let refused = app.err(
        "auth.mfa.verify",
        json!({"mfa_token": pending, "code": code}),
        -32012,
    );
    assert_eq!(refused["data"]["state"], "locked");
}
