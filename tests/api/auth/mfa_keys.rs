//! `[AUTH] MFA_KEY` at start-up: refused when missing, malformed or not the
//! key stored secrets were sealed under; rotated with `MFA_KEY_PREVIOUS`.

use serde_json::json;

use super::mfa::{challenge, code, enrol};
use super::*;

const OTHER_KEY: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

/// The app's own config with `[AUTH]` keys replaced.
fn config_with(app: &TestApp, auth: &str, file: &str) -> std::path::PathBuf {
    let opts = Options {
        ini: format!("[AUTH]\n{auth}\n"),
        ..Options::default()
    };
    let path = std::env::temp_dir().join(&app.name).join(file);
    std::fs::write(&path, base_ini(&app.name, &opts)).unwrap();
    path
}

fn key_ids(app: &TestApp) -> Vec<Vec<u8>> {
    app.pg()
        .query("SELECT key_id FROM user_mfa ORDER BY user_id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn startup_refuses_a_missing_malformed_or_foreign_mfa_key_once_an_account_has_totp() {
    let app = spawn_app();
    // No account has TOTP yet: no key is needed.
    let no_key = config_with(&app, "MFA_KEY =", "no-key.ini");
    drop(start(&no_key, &[]));

    enrol(&app, "alice");
    let text = std::fs::read_to_string(&no_key).unwrap();
    let (status, stderr) = run_to_exit(&text);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("[AUTH] MFA_KEY is missing"), "{stderr}");

    let foreign = config_with(&app, &format!("MFA_KEY = {OTHER_KEY}"), "foreign.ini");
    let (status, stderr) = run_to_exit(&std::fs::read_to_string(foreign).unwrap());
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("[AUTH] MFA_KEY") && stderr.contains("neither"),
        "{stderr}"
    );

    let malformed = config_with(&app, "MFA_KEY = 0011zz", "malformed.ini");
    let (status, stderr) = run_to_exit(&std::fs::read_to_string(malformed).unwrap());
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("[AUTH] MFA_KEY is malformed"), "{stderr}");
    assert!(!stderr.contains(MFA_KEY), "the key reached the log");
}

#[test]
fn without_mfa_key_enrolment_is_refused_and_the_log_names_the_key() {
    let app = spawn_with(Options {
        ini: "[AUTH]\nMFA_KEY =\n".into(),
        ..Options::default()
    });
    let (_, tokens) = app.register_and_login("alice");
    app.err(
        "auth.mfa.setup_totp",
        json!({"token": access(&tokens)}),
        -32603,
    );
    assert!(
        app.logs().contains("[AUTH] MFA_KEY is not set"),
        "{}",
        app.logs()
    );
    let rows: i64 = app
        .pg()
        .query_one("SELECT count(*) FROM user_mfa", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

#[test]
fn rotation_reseals_every_secret_under_the_new_key_and_logins_go_on() {
    let mut app = spawn_app();
    let e = enrol(&app, "alice");
    let before = key_ids(&app);
    app.stop();

    let rotating = config_with(
        &app,
        &format!("MFA_KEY = {OTHER_KEY}\nMFA_KEY_PREVIOUS = {MFA_KEY}"),
        "rotating.ini",
    );
    let during = start(&rotating, &[]);
    let after = key_ids(&app);
    assert_eq!(after.len(), 1);
    assert_ne!(after, before, "the secret was not re-sealed");
    let t = during.ok(
        "auth.mfa.verify",
        json!({"mfa_token": challenge(&during, "alice"), "code": code(&e.secret, e.s0 + 1)}),
    );
    assert!(t["access_token"].is_string());
    drop(during);

    // The previous key can go now.
    let rotated = config_with(&app, &format!("MFA_KEY = {OTHER_KEY}"), "rotated.ini");
    let done = start(&rotated, &[]);
    done.ok(
        "auth.mfa.verify",
        json!({"mfa_token": challenge(&done, "alice"), "recovery_code": e.recovery_codes[0]}),
    );
}
