//! Per method: an example pairing (params and result, as JSON text) and the
//! error codes it can answer beyond those every call can. A method missing
//! here fails `every_method_has_an_example_and_its_errors` (mod.rs), and the
//! OpenRPC test (tests/api/openrpc.rs) validates each example against the
//! method's own schemas, so an example cannot drift from its method either.

/// `(method, params, result, specific error codes)`.
pub type Example = (&'static str, &'static str, &'static str, &'static [i64]);

/// -32000 unavailable, -32010 conflict, -32011 invalid credentials,
/// -32012 account inactive, -32013 not found, -32014 email unverified,
/// -32029 rate limited,
/// -32030 unauthorized (a token where one is required).
pub const EXAMPLES: &[Example] = &[
    ("ping", "{}", r#""pong""#, &[]),
    (
        "rpc.discover",
        "{}",
        r#"{"openrpc":"1.3.2","info":{"title":"profiteer","version":"0.1.0"},"methods":[]}"#,
        &[],
    ),
    (
        "auth.register",
        r#"{"username":"alice","password":"correct horse battery staple","email":"alice@example.com","profile":{"nickname":"Alice"}}"#,
        r#"{"user_id":42}"#,
        &[-32000, -32010],
    ),
    (
        "auth.login",
        r#"{"username":"alice","password":"correct horse battery staple","ip":"203.0.113.7","user_agent":"curl/8.5"}"#,
        r#"{"user_id":42,"session_id":7,"access_token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw","refresh_token":"prt_Yq3vM8sXcN1bRf6TzLw0JpHk2DgUa5EiO7nQeVtKm4s","token_type":"Bearer","expires_in":900,"refresh_expires_in":2592000}"#,
        &[-32000, -32011, -32012, -32014, -32029],
    ),
    (
        "auth.introspect",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw"}"#,
        r#"{"active":true,"user_id":42,"username":"alice","session_id":7,"roles":["editor"],"exp":1764300900,"iat":1764300000,"amr":["pwd"]}"#,
        &[-32000],
    ),
    (
        "auth.authorize",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw","permission":"post:edit"}"#,
        r#"{"allowed":true,"user_id":42}"#,
        &[-32000],
    ),
    (
        "auth.refresh",
        r#"{"refresh_token":"prt_Yq3vM8sXcN1bRf6TzLw0JpHk2DgUa5EiO7nQeVtKm4s"}"#,
        r#"{"user_id":42,"session_id":7,"access_token":"pat_Hn3PaeUd8GiRzBqVsNw0X9mYbS5oQ4cT1x2Jr7vLkWf","refresh_token":"prt_Jp2DgUa5EiO7nQeVtKm4sYq3vM8sXcN1bRf6TzLw0ab","token_type":"Bearer","expires_in":900,"refresh_expires_in":2592000}"#,
        &[-32000, -32012, -32030],
    ),
    (
        "auth.logout",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw"}"#,
        r#"{"revoked":true}"#,
        &[-32000],
    ),
    (
        "auth.logout_all",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw"}"#,
        r#"{"revoked":3}"#,
        &[-32000, -32030],
    ),
    (
        "auth.change_password",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw","old_password":"correct horse battery staple","new_password":"plain tuba cradle orbit"}"#,
        r#"{"revoked":2}"#,
        &[-32000, -32011, -32029, -32030],
    ),
    (
        "auth.sessions",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw"}"#,
        r#"{"sessions":[{"session_id":7,"created_at":"2026-11-28T03:00:00.000Z","last_seen_at":"2026-11-28T03:05:00.000Z","ip":"203.0.113.7","user_agent":"curl/8.5","current":true}]}"#,
        &[-32000, -32030],
    ),
    (
        "auth.request_password_reset",
        r#"{"email":"alice@example.com"}"#,
        r#"{"user_id":42,"reset_token":"prs_Kd9sT3nWq0PzLr5YbMx2cVf7HgJa1Ue8Ro4Ei6Nt0Aw","expires_in":900}"#,
        &[-32000, -32013, -32029],
    ),
    (
        "auth.reset_password",
        r#"{"reset_token":"prs_Kd9sT3nWq0PzLr5YbMx2cVf7HgJa1Ue8Ro4Ei6Nt0Aw","new_password":"plain tuba cradle orbit"}"#,
        r#"{"revoked":1}"#,
        &[-32000, -32030],
    ),
    (
        "auth.request_email_verification",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw"}"#,
        r#"{"verify_token":"pev_Wq0PzLr5YbMx2cVf7HgJa1Ue8Ro4Ei6Nt0AwKd9sT3n","email":"alice@example.com","expires_in":86400}"#,
        &[-32000, -32013, -32029, -32030],
    ),
    (
        "auth.verify_email",
        r#"{"verify_token":"pev_Wq0PzLr5YbMx2cVf7HgJa1Ue8Ro4Ei6Nt0AwKd9sT3n"}"#,
        r#"{"user_id":42,"email":"alice@example.com"}"#,
        &[-32000, -32010, -32030],
    ),
    (
        "auth.change_email",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw","password":"correct horse battery staple","new_email":"alice@example.org","idempotency_key":"change-42-1"}"#,
        r#"{"verify_token":"pev_Mx2cVf7HgJa1Ue8Ro4Ei6Nt0AwKd9sT3nWq0PzLr5Yb","expires_in":86400}"#,
        &[-32000, -32010, -32011, -32029, -32030],
    ),
    (
        "auth.export_account",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw"}"#,
        EXPORT,
        &[-32000, -32030],
    ),
    (
        "auth.delete_account",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw","password":"correct horse battery staple","code":"492039"}"#,
        r#"{"deleted":true}"#,
        &[-32000, -32011, -32029, -32030],
    ),
    (
        "auth.mfa.setup_totp",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw"}"#,
        r#"{"secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP","otpauth_uri":"otpauth://totp/profiteer:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=profiteer"}"#,
        &[-32000, -32010],
    ),
    (
        "auth.mfa.confirm_totp",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw","code":"492039"}"#,
        r#"{"recovery_codes":["3f9a1-0c6d2-b7e48-5a1f3","8e2b0-41c9d-07fa6-c3d58","d14c7-9b2e0-6a83f-f05b1","0a7e3-c56d1-82b4f-9e01c","5c3f8-e0a9b-1d72c-46b0e","b96d2-7f1a4-e3c05-28d7a","71e0c-3b8f5-a4d96-0c2e7","e4b57-06d3a-9f1c8-b2a60","2d8a9-f4c17-5e0b3-7a9d1","9f06b-d2e83-c7a14-e58f0"]}"#,
        &[-32000, -32010, -32011, -32013],
    ),
    (
        "auth.mfa.disable",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw","password":"correct horse battery staple","code":"3f9a1-0c6d2-b7e48-5a1f3"}"#,
        r#"{"disabled":true}"#,
        &[-32000, -32011, -32013, -32029],
    ),
    (
        "auth.mfa.verify",
        r#"{"mfa_token":"pmf_Tz4Qm8VbN2xRk6Ya0Lc3Wf9Hd1Jp5Ge7Us2Io4Ea8Ks","code":"492039"}"#,
        r#"{"user_id":42,"session_id":8,"access_token":"pat_Lw0JpHk2DgUa5EiO7nQeVtKm4sYq3vM8sXcN1bRf6Tz","refresh_token":"prt_Bs5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw0X9mY","token_type":"Bearer","expires_in":900,"refresh_expires_in":2592000}"#,
        &[-32000, -32011, -32012, -32029, -32030],
    ),
    (
        "auth.passkey.register_begin",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw"}"#,
        r#"{"challenge_id":"q3Zr8TnV0bWc1XyLk5sJ2g","options":{"rp":{"id":"example.com","name":"Example"},"user":{"id":"cHJvZml0ZWUAAAAAAAAAKg","name":"alice","displayName":"alice"},"challenge":"Y2hhbGxlbmdlLWJ5dGVzLWZyb20tdGhlLXNlcnZlcg","pubKeyCredParams":[{"type":"public-key","alg":-7},{"type":"public-key","alg":-257}],"timeout":300000,"authenticatorSelection":{"residentKey":"required","requireResidentKey":true,"userVerification":"required"},"attestation":"none","excludeCredentials":[]}}"#,
        &[-32000, -32030, -32601],
    ),
    (
        "auth.passkey.register_finish",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw","challenge_id":"q3Zr8TnV0bWc1XyLk5sJ2g","credential":{"id":"Y3JlZC1pZA","rawId":"Y3JlZC1pZA","type":"public-key","response":{"clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0","attestationObject":"o2NmbXRkbm9uZQ"},"clientExtensionResults":{}},"name":"MacBook"}"#,
        r#"{"passkey_id":3}"#,
        &[-32000, -32010, -32030, -32601],
    ),
    (
        "auth.passkey.login_begin",
        r#"{"username":"alice"}"#,
        r#"{"challenge_id":"Hn3PaeUd8GiRzBqVsNw0Xg","options":{"challenge":"c2lnbi1pbi1jaGFsbGVuZ2UtZnJvbS10aGUtc2VydmVy","timeout":300000,"rpId":"example.com","allowCredentials":[{"type":"public-key","id":"Y3JlZC1pZA"}],"userVerification":"required"}}"#,
        &[-32000, -32011, -32601],
    ),
    (
        "auth.passkey.login_finish",
        r#"{"challenge_id":"Hn3PaeUd8GiRzBqVsNw0Xg","credential":{"id":"Y3JlZC1pZA","rawId":"Y3JlZC1pZA","type":"public-key","response":{"clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0","authenticatorData":"YXV0aGVudGljYXRvci1kYXRh","signature":"c2lnbmF0dXJl","userHandle":"cHJvZml0ZWUAAAAAAAAAKg"},"clientExtensionResults":{}},"ip":"203.0.113.7","user_agent":"Mozilla/5.0"}"#,
        r#"{"user_id":42,"session_id":9,"access_token":"pat_Ua5EiO7nQeVtKm4sYq3vM8sXcN1bRf6TzLw0JpHk2Dg","refresh_token":"prt_GiRzBqVsNw0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8","token_type":"Bearer","expires_in":900,"refresh_expires_in":2592000}"#,
        &[-32000, -32011, -32012, -32014, -32029, -32030, -32601],
    ),
    (
        "auth.passkey.list",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw"}"#,
        r#"{"passkeys":[{"passkey_id":3,"name":"MacBook","created_at":"2026-11-28T03:00:00.000Z","last_used_at":"2026-11-29T08:15:00.000Z","backed_up":true}]}"#,
        &[-32000, -32030],
    ),
    (
        "auth.passkey.remove",
        r#"{"token":"pat_0X9mYbS5oQ4cT1x2Jr7vLkWfHn3PaeUd8GiRzBqVsNw","passkey_id":3}"#,
        r#"{"removed":true}"#,
        &[-32000, -32013, -32030],
    ),
    ("user.get", r#"{"user_id":42}"#, USER, &[-32000, -32013]),
    (
        "user.gets",
        r#"{"user_ids":[42,404]}"#,
        r#"{"users":[{"user_id":42,"username":"alice","email":"alice@example.com","email_verified":true,"state":"active","roles":["editor"],"profile":{"nickname":"Alice"},"mfa":{"totp":false,"passkeys":0},"created_at":"2026-11-28T03:00:00.000Z","updated_at":"2026-11-28T03:00:00.000Z"}],"missing":[404]}"#,
        &[-32000],
    ),
    (
        "user.find",
        r#"{"username":"alice"}"#,
        USER,
        &[-32000, -32013],
    ),
    (
        "user.search",
        r#"{"query":"ali","state":"active","role":"editor","created_after":"2026-01-01T00:00:00Z","limit":1}"#,
        r#"{"users":[{"user_id":42,"username":"alice","email":"alice@example.com","email_verified":true,"state":"active","roles":["editor"],"profile":{"nickname":"Alice"},"mfa":{"totp":false,"passkeys":0},"created_at":"2026-11-28T03:00:00.000Z","updated_at":"2026-11-28T03:00:00.000Z"}],"next_cursor":"42"}"#,
        &[-32000],
    ),
    (
        "user.update_profile",
        r#"{"user_id":42,"profile":{"nickname":"Alice","bio":null}}"#,
        USER,
        &[-32000, -32013],
    ),
    (
        "user.set_state",
        r#"{"user_id":42,"state":"active"}"#,
        USER,
        &[-32000, -32013],
    ),
    (
        "user.grant_role",
        r#"{"user_id":42,"role":"editor"}"#,
        USER,
        &[-32000, -32013],
    ),
    (
        "user.revoke_role",
        r#"{"user_id":42,"role":"viewer"}"#,
        USER,
        &[-32000, -32013],
    ),
    (
        "user.reset_mfa",
        r#"{"user_id":42}"#,
        USER,
        &[-32000, -32013],
    ),
    (
        "user.login_history",
        r#"{"user_id":42,"limit":1}"#,
        r#"{"events":[{"at":"2026-11-28T03:00:00.000Z","ok":true,"ip":"203.0.113.7","user_agent":"curl/8.5","reason":null}]}"#,
        &[-32000, -32013],
    ),
    (
        "user.update_account",
        r#"{"user_id":42,"username":"alice","email":"alice@example.com","email_verified":true}"#,
        USER,
        &[-32000, -32010, -32013],
    ),
    (
        "user.export",
        r#"{"user_id":42}"#,
        EXPORT,
        &[-32000, -32013],
    ),
    (
        "user.delete",
        r#"{"user_id":42}"#,
        r#"{"deleted":true}"#,
        &[-32000, -32013],
    ),
    (
        "events.read",
        r#"{"after":"812.40","limit":2,"types":["user.created","session.revoked"]}"#,
        r#"{"events":[{"id":"815.41","type":"user.created","at":"2026-11-28T03:00:00.000Z","user_id":42,"data":{"username":"alice","state":"active","roles":[]}},{"id":"820.44","type":"session.revoked","at":"2026-11-28T03:05:00.000Z","user_id":42,"data":{"session_id":7,"reason":"logout"}}],"next":"820.44"}"#,
        &[-32000, -32013],
    ),
    (
        "user.import",
        r#"{"users":[{"username":"bob","password":"plain tuba cradle orbit","roles":["viewer"]},{"username":"carol","password_hash":"$2b$04$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"}]}"#,
        r#"{"imported":1,"errors":[{"index":1,"code":-32010,"field":"username"}]}"#,
        &[-32000],
    ),
];

const USER: &str = r#"{"user_id":42,"username":"alice","email":"alice@example.com","email_verified":true,"state":"active","roles":["editor"],"profile":{"nickname":"Alice"},"mfa":{"totp":false,"passkeys":0},"created_at":"2026-11-28T03:00:00.000Z","updated_at":"2026-11-28T03:05:00.000Z"}"#;

const EXPORT: &str = r#"{"account":{"user_id":42,"username":"alice","email":"alice@example.com","email_verified":true,"pending_email":null,"state":"active","created_at":"2026-11-28T03:00:00.000Z","updated_at":"2026-11-28T03:05:00.000Z"},"roles":[{"role":"editor","granted_at":"2026-11-28T03:01:00.000Z"}],"sessions":[{"session_id":7,"created_at":"2026-11-28T03:00:00.000Z","last_seen_at":"2026-11-28T03:05:00.000Z","expires_at":"2026-12-28T03:00:00.000Z","revoked_at":null,"ip":"203.0.113.7","user_agent":"curl/8.5","amr":["pwd"]}],"mfa":{"totp":false,"totp_pending":false,"enabled_at":null,"recovery_codes_left":0},"passkeys":[],"profile":{"nickname":"Alice"},"login_events":[{"at":"2026-11-28T03:00:00.000Z","ok":true,"ip":"203.0.113.7","user_agent":"curl/8.5","reason":null}]}"#;
