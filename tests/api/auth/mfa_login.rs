//! The login's second step: `mfa_required` only after the right password,
//! `auth.mfa.verify` with a code (accepted once) or a recovery code (single
//! use), and challenges that die after five wrong codes or five minutes.

use std::time::Duration;

use serde_json::json;

use super::mfa::{challenge, code, enrol, history_reasons, wrong_code};
use super::*;

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
    // A state change ends the account's open challenges (the contract's
    // security floor): the pending one is dead, not merely refused.
    let code = code(&e.secret, e.s0 + 1);
    app.err(
        "auth.mfa.verify",
        json!({"mfa_token": pending, "code": code}),
        -32030,
    );
}

#[test]
fn one_code_presented_to_several_challenges_at_once_opens_one_session() {
    let app = spawn_app();
    let e = enrol(&app, "alice");
    let next = code(&e.secret, e.s0 + 1);
    let tokens: Vec<String> = (0..4).map(|_| challenge(&app, "alice")).collect();
    let answers: Vec<serde_json::Value> = std::thread::scope(|s| {
        let calls: Vec<_> = tokens
            .iter()
            .map(|t| {
                let (app, next) = (&app, &next);
                s.spawn(move || app.rpc("auth.mfa.verify", json!({"mfa_token": t, "code": next})))
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let opened = answers.iter().filter(|a| a.get("result").is_some()).count();
    assert_eq!(opened, 1, "{answers:?}");
    for a in answers.iter().filter(|a| a.get("error").is_some()) {
        assert_eq!(a["error"]["code"], -32011, "{a}");
    }
}
