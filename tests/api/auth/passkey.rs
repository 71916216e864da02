//! Passkeys (`auth.passkey.*`) with a real software authenticator:
//! soft-webauthn's `SoftWebauthnDevice`, driven by
//! `tests/passkey/authenticator.py` as a browser drives a platform
//! authenticator (installed by `scripts/soft-webauthn.sh`). Registration,
//! login with and without a username, single-use challenges, foreign
//! origins and RP ids, a counter that goes backwards, and ceremonies begun
//! on one instance and finished on another.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::helpers::*;

/// The python of a virtualenv holding soft-webauthn (made on first use).
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let root = env!("CARGO_MANIFEST_DIR");
        let out = Command::new(format!("{root}/scripts/soft-webauthn.sh"))
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "scripts/soft-webauthn.sh failed");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// One call of the software authenticator: `(credential, device state)`.
pub fn authenticator(request: Value) -> (Value, Value) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/passkey/authenticator.py"
    );
    let out = run_with_stdin(
        Command::new(python()).arg(script),
        request.to_string().as_bytes(),
    );
    assert!(
        out.status.success(),
        "authenticator.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    (answer["credential"].clone(), answer["device"].clone())
}

/// A passkey made for an account: its id and the device that holds it.
pub struct Enrolled {
    pub passkey_id: i64,
    pub device: Value,
}

/// Registers a passkey with `token` (an access or enrolment token).
pub fn enrol(app: &TestApp, token: &str) -> Enrolled {
    let begun = app.ok("auth.passkey.register_begin", json!({"token": token}));
    let (credential, device) = authenticator(json!({
        "op": "create", "options": begun["options"], "origin": ORIGIN,
    }));
    let done = app.ok(
        "auth.passkey.register_finish",
        json!({"token": token, "challenge_id": begun["challenge_id"], "credential": credential, "name": "laptop"}),
    );
    Enrolled {
        passkey_id: done["passkey_id"].as_i64().unwrap(),
        device,
    }
}

/// A login with the device: `extra` goes to the authenticator (a foreign
/// origin, RP id, or counter). The whole JSON-RPC answer of login_finish.
pub fn sign_in(app: &TestApp, username: Option<&str>, device: &Value, extra: Value) -> Value {
    let params = match username {
        Some(u) => json!({"username": u}),
        None => json!({}),
    };
    let begun = app.ok("auth.passkey.login_begin", params);
    let mut request =
        json!({"op": "get", "options": begun["options"], "origin": ORIGIN, "device": device});
    if let (Some(r), Some(e)) = (request.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    let (credential, _) = authenticator(request);
    app.rpc(
        "auth.passkey.login_finish",
        json!({"challenge_id": begun["challenge_id"], "credential": credential, "ip": "198.51.100.9"}),
    )
}

fn access_token(app: &TestApp, username: &str) -> (i64, String) {
    let (id, tokens) = app.register_and_login(username);
    (id, tokens["access_token"].as_str().unwrap().to_string())
}

fn stored_count(app: &TestApp, passkey_id: i64) -> i64 {
    app.pg()
        .query_one(
            "SELECT sign_count FROM passkeys WHERE id = $1",
            &[&passkey_id],
        )
        .unwrap()
        .get(0)
}

pub fn events_of(app: &TestApp, kind: &str, user_id: i64) -> Vec<Value> {
    app.pg()
        .query(
            "SELECT data FROM account_events WHERE type = $1 AND user_id = $2 ORDER BY id",
            &[&kind, &user_id],
        )
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
        .collect()
}

#[test]
fn a_registered_passkey_signs_in_with_both_factors_and_its_counter_is_stored() {
    let app = spawn_app();
    let (user_id, token) = access_token(&app, "pia");
    let begun = app.ok("auth.passkey.register_begin", json!({"token": token}));
    let options = &begun["options"];
    assert_eq!(options["rp"]["id"], RP_ID);
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["attestation"], "none");
    let (credential, device) = authenticator(json!({
        "op": "create", "options": options, "origin": ORIGIN, "backup": true,
    }));
    let passkey_id = app.ok(
        "auth.passkey.register_finish",
        json!({"token": token, "challenge_id": begun["challenge_id"], "credential": credential, "name": "phone"}),
    )["passkey_id"]
        .as_i64()
        .unwrap();
    let row = app
        .pg()
        .query_one(
            "SELECT user_id, name, sign_count, backed_up FROM passkeys WHERE id = $1",
            &[&passkey_id],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), user_id);
    assert_eq!(row.get::<_, &str>(1), "phone");
    assert_eq!(row.get::<_, i64>(2), 0);
    assert!(row.get::<_, bool>(3));
    let added = events_of(&app, "passkey.added", user_id);
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["passkey_id"], passkey_id);
    let user = app.ok("user.get", json!({"user_id": user_id}));
    assert_eq!(user["mfa"]["passkeys"], 1);

    let begun = app.ok("auth.passkey.login_begin", json!({"username": "pia"}));
    let allowed = begun["options"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["id"], credential["id"]);
    assert_eq!(begun["options"]["userVerification"], "required");
    let (assertion, _) = authenticator(json!({
        "op": "get", "options": begun["options"], "origin": ORIGIN, "device": device, "backup": true,
    }));
    let tokens = app.ok(
        "auth.passkey.login_finish",
        json!({"challenge_id": begun["challenge_id"], "credential": assertion, "user_agent": "soft-webauthn"}),
    );
    assert_eq!(tokens["user_id"], user_id);
    assert_eq!(tokens["token_type"], "Bearer");
    let seen = app.ok("auth.introspect", json!({"token": tokens["access_token"]}));
    assert_eq!(seen["active"], true);
    assert_eq!(seen["amr"], json!(["hwk"]));
    assert_eq!(stored_count(&app, passkey_id), 1);
    let opened = events_of(&app, "session.created", user_id);
    assert_eq!(opened.last().unwrap()["amr"], json!(["hwk"]));
    assert_eq!(opened.last().unwrap()["session_id"], tokens["session_id"]);
    let listed = app.ok("auth.passkey.list", json!({"token": token}));
    let listed = &listed["passkeys"][0];
    assert_eq!(listed["passkey_id"], passkey_id);
    assert_eq!(listed["name"], "phone");
    assert_eq!(listed["backed_up"], true);
    assert!(listed["last_used_at"].is_string());
}

#[test]
fn without_a_username_the_discoverable_passkey_names_its_account() {
    let app = spawn_app();
    let (user_id, token) = access_token(&app, "dora");
    let e = enrol(&app, &token);
    let begun = app.ok("auth.passkey.login_begin", json!({}));
    assert!(begun["options"]["allowCredentials"]
        .as_array()
        .is_none_or(|a| a.is_empty()));
    let answer = sign_in(&app, None, &e.device, json!({}));
    assert_eq!(answer["result"]["user_id"], user_id, "{answer}");
}

#[test]
fn a_challenge_is_finished_once() {
    let app = spawn_app();
    let (_, token) = access_token(&app, "olga");
    let begun = app.ok("auth.passkey.register_begin", json!({"token": token}));
    let (credential, device) = authenticator(json!({
        "op": "create", "options": begun["options"], "origin": ORIGIN,
    }));
    let finish =
        json!({"token": token, "challenge_id": begun["challenge_id"], "credential": credential});
    app.ok("auth.passkey.register_finish", finish.clone());
    app.err("auth.passkey.register_finish", finish, -32030);

    let begun = app.ok("auth.passkey.login_begin", json!({"username": "olga"}));
    let (assertion, _) = authenticator(json!({
        "op": "get", "options": begun["options"], "origin": ORIGIN, "device": device,
    }));
    let finish = json!({"challenge_id": begun["challenge_id"], "credential": assertion});
    app.ok("auth.passkey.login_finish", finish.clone());
    app.err("auth.passkey.login_finish", finish, -32030);
    let left: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM passkey_challenges", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0);

    // Past its 5 minutes, a challenge is dead even unused.
    let begun = app.ok("auth.passkey.login_begin", json!({"username": "olga"}));
    let (assertion, _) = authenticator(json!({
        "op": "get", "options": begun["options"], "origin": ORIGIN, "device": device, "sign_count": 7,
    }));
    let expires: bool = app
        .pg()
        .query_one(
            "SELECT expires_at BETWEEN now() + interval '200 seconds' AND now() + interval '301 seconds' \
             FROM passkey_challenges WHERE challenge_id = $1",
            &[&begun["challenge_id"].as_str().unwrap()],
        )
        .unwrap()
        .get(0);
    assert!(expires, "a challenge lives 5 minutes");
    app.pg()
        .execute(
            "UPDATE passkey_challenges SET expires_at = now() - interval '1 second'",
            &[],
        )
        .unwrap();
    app.err(
        "auth.passkey.login_finish",
        json!({"challenge_id": begun["challenge_id"], "credential": assertion}),
        -32030,
    );
}

#[test]
fn a_credential_for_another_origin_or_rp_id_is_refused() {
    let app = spawn_app();
    let (user_id, token) = access_token(&app, "omar");
    for wrong in [
        json!({"origin": "https://evil.test"}),
        json!({"rp_id": "evil.test"}),
    ] {
        let begun = app.ok("auth.passkey.register_begin", json!({"token": token}));
        let mut request = json!({"op": "create", "options": begun["options"], "origin": ORIGIN});
        request
            .as_object_mut()
            .unwrap()
            .extend(wrong.as_object().unwrap().clone());
        let (credential, _) = authenticator(request);
        let e = app.err(
            "auth.passkey.register_finish",
            json!({"token": token, "challenge_id": begun["challenge_id"], "credential": credential}),
            -32602,
        );
        assert_eq!(e["data"]["field"], "credential", "{wrong}");
    }
    let none: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM passkeys", &[])
        .unwrap()
        .get(0);
    assert_eq!(none, 0);

    let e = enrol(&app, &token);
    for wrong in [
        json!({"origin": "https://evil.test"}),
        json!({"rp_id": "evil.test"}),
    ] {
        let answer = sign_in(&app, Some("omar"), &e.device, wrong.clone());
        assert_eq!(answer["error"]["code"], -32011, "{wrong}: {answer}");
    }
    assert_eq!(stored_count(&app, e.passkey_id), 0);
    assert!(events_of(&app, "session.created", user_id).len() == 1);
}

#[test]
fn a_counter_that_goes_backwards_is_refused_and_logged() {
    let app = spawn_app();
    let (_, token) = access_token(&app, "cleo");
    let e = enrol(&app, &token);
    let answer = sign_in(&app, Some("cleo"), &e.device, json!({"sign_count": 5}));
    assert!(answer.get("result").is_some(), "{answer}");
    assert_eq!(stored_count(&app, e.passkey_id), 5);
    // A clone of the authenticator, made before those logins.
    for count in [3, 5] {
        let answer = sign_in(&app, None, &e.device, json!({"sign_count": count}));
        assert_eq!(answer["error"]["code"], -32011, "{answer}");
    }
    assert_eq!(stored_count(&app, e.passkey_id), 5);
    let logs = app.logs();
    assert!(logs.contains("counter went backwards"), "{logs}");
    assert!(!logs.contains("pat_"), "a token reached the log");
    let answer = sign_in(&app, Some("cleo"), &e.device, json!({"sign_count": 6}));
    assert!(answer.get("result").is_some(), "{answer}");
}

#[test]
fn a_ceremony_begun_on_one_instance_is_finished_on_another() {
    let app = spawn_app();
    let other = app.another();
    let (user_id, token) = access_token(&app, "ines");
    let begun = app.ok("auth.passkey.register_begin", json!({"token": token}));
    let (credential, device) = authenticator(json!({
        "op": "create", "options": begun["options"], "origin": ORIGIN,
    }));
    other.ok(
        "auth.passkey.register_finish",
        json!({"token": token, "challenge_id": begun["challenge_id"], "credential": credential}),
    );
    let begun = other.ok("auth.passkey.login_begin", json!({}));
    let (assertion, _) = authenticator(json!({
        "op": "get", "options": begun["options"], "origin": ORIGIN, "device": device,
    }));
    let tokens = app.ok(
        "auth.passkey.login_finish",
        json!({"challenge_id": begun["challenge_id"], "credential": assertion}),
    );
    assert_eq!(tokens["user_id"], user_id);
    let seen = other.ok("auth.introspect", json!({"token": tokens["access_token"]}));
    assert_eq!(seen["amr"], json!(["hwk"]));
}

#[test]
fn a_passkey_is_listed_and_removed_by_its_owner_only() {
    let app = spawn_app();
    let (user_id, token) = access_token(&app, "lars");
    let (_, stranger) = access_token(&app, "sven");
    let e = enrol(&app, &token);
    app.err(
        "auth.passkey.remove",
        json!({"token": stranger, "passkey_id": e.passkey_id}),
        -32013,
    );
    app.ok(
        "auth.passkey.remove",
        json!({"token": token, "passkey_id": e.passkey_id}),
    );
    let listed = app.ok("auth.passkey.list", json!({"token": token}));
    assert_eq!(listed["passkeys"], json!([]));
    let removed = events_of(&app, "passkey.removed", user_id);
    assert_eq!(removed[0]["passkey_id"], e.passkey_id);
    app.err(
        "auth.passkey.remove",
        json!({"token": token, "passkey_id": e.passkey_id}),
        -32013,
    );
    // Its device no longer signs in.
    app.err(
        "auth.passkey.login_begin",
        json!({"username": "lars"}),
        -32011,
    );
    let answer = sign_in(&app, None, &e.device, json!({}));
    assert_eq!(answer["error"]["code"], -32011, "{answer}");
}
