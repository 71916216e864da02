//! `components.schemas` of the OpenRPC document, built from the constants
//! the params parsers enforce (`domain::*`, `domain::limits`) and from the
//! running config (`[ROLES]`, the password policy), so what the document
//! states is what the server checks.

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::domain::limits::{
    GETS_MAX_IDS, IDEMPOTENCY_KEY_MAX_CHARS, IMPORT_MAX_ROWS, IP_MAX_CHARS, PAGE_DEFAULT, PAGE_MAX,
    PERMISSION_MAX_CHARS, SEARCH_QUERY_MAX_CHARS, USER_AGENT_MAX_CHARS,
};
use crate::domain::{email, password, profile, role, username, UserState};
use crate::model::password::MAX_COST_ABOVE_CONFIG;

/// Ids are i64 on the server and kept within 2^53 - 1, the largest
/// integer every JSON client (JavaScript first) reads exactly.
pub const MAX_SAFE_ID: i64 = crate::domain::limits::MAX_USER_ID;

/// `$ref` to a component schema.
pub fn component(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A regex character class for ASCII ranges plus `extra` characters.
fn class(ranges: &str, extra: &str) -> String {
    let escaped: String = extra
        .chars()
        .map(|c| match c {
            '-' | ']' | '\\' | '^' => format!("\\{c}"),
            c => c.to_string(),
        })
        .collect();
    format!("[{ranges}{escaped}]")
}

/// Email as `domain::Email` checks it: one `@`, a non-empty local part of at
/// most 64 characters, a domain with a dot neither first nor last, no
/// whitespace or control characters.
fn email_pattern() -> String {
    let any = r"[^@\s\x00-\x1f\x7f-\x9f]";
    let no_dot = r"[^@\s.\x00-\x1f\x7f-\x9f]";
    format!(
        "^{any}{{1,{local}}}@{no_dot}{any}*\\.{any}*{no_dot}$",
        local = email::LOCAL_MAX_LEN
    )
}

fn states() -> Vec<&'static str> {
    UserState::ALL.iter().map(|s| s.as_str()).collect()
}

fn profile_patch() -> Value {
    let mut props = Map::new();
    for (field, max) in profile::TEXT_FIELDS {
        props.insert(
            (*field).to_string(),
            json!({"type": ["string", "null"], "maxLength": max}),
        );
    }
    props.insert(
        "extra".into(),
        json!({
            "type": ["object", "null"],
            "description": format!(
                "Free-form; at most {} bytes as JSON, integers within i64.",
                profile::EXTRA_MAX_BYTES
            ),
        }),
    );
    json!({
        "type": "object",
        "description": "Profile fields to set; null removes a field.",
        "properties": props,
        "additionalProperties": false,
    })
}

fn stored_profile() -> Value {
    let mut props = Map::new();
    for (field, max) in profile::TEXT_FIELDS {
        props.insert(
            (*field).to_string(),
            json!({"type": "string", "maxLength": max}),
        );
    }
    props.insert("extra".into(), json!({"type": "object"}));
    json!({"type": "object", "properties": props, "additionalProperties": false})
}

fn configured_roles(config: &Config) -> Value {
    let roles: Vec<&String> = config.roles.keys().collect();
    if roles.is_empty() {
        json!({"description": "No role is configured in [ROLES]: none can be granted.", "not": {}})
    } else {
        json!({"type": "string", "enum": roles, "description": "A role listed in [ROLES]."})
    }
}

fn import_row() -> Value {
    let base = json!({
        "user_id": {
            "oneOf": [component("UserId"), {"type": "null"}],
            "description": "Kept as given (-32010 field user_id when taken); later ids are allocated above it.",
        },
        "username": component("Username"),
        "email": {"oneOf": [component("Email"), {"type": "null"}]},
        "email_verified": {"type": ["boolean", "null"], "description": "The email was proven where the account comes from (default false; ignored without an email)."},
        "state": {"oneOf": [component("UserState"), {"type": "null"}]},
        "roles": {"type": ["array", "null"], "items": component("ConfiguredRole")},
        "profile": {"oneOf": [component("ProfilePatch"), {"type": "null"}]},
    });
    let with = |key: &str, schema: Value| {
        let mut props = base.clone();
        if let Some(map) = props.as_object_mut() {
            map.insert(key.to_string(), schema);
        }
        json!({
            "type": "object",
            "properties": props,
            "required": ["username", key],
            "additionalProperties": false,
        })
    };
    json!({
        "description": "One account: exactly one of password (the policy applies) and password_hash.",
        "oneOf": [
            with("password", component("NewPassword")),
            with("password_hash", component("BcryptHash")),
        ],
    })
}

/// A bcrypt hash `user.import` keeps: `$2a$`, `$2b$` or `$2y$`, cost 4 to
/// `max_cost` (`model::password::acceptable_hash`).
fn bcrypt_hash(max_cost: u32) -> Value {
    let costs: Vec<String> = (4..=max_cost.min(31)).map(|c| format!("{c:02}")).collect();
    json!({
        "type": "string",
        "pattern": format!(r"^\$2[aby]\$({})\$[./A-Za-z0-9]{{53}}$", costs.join("|")),
        "description": format!(
            "A bcrypt hash, kept as is; its cost at most [AUTH] BCRYPT_COST + {MAX_COST_ABOVE_CONFIG} ({max_cost} here)."
        ),
    })
}

fn token(prefix: &str, what: &str) -> Value {
    json!({
        "type": "string",
        "pattern": format!("^{prefix}[A-Za-z0-9_-]{{43}}$"),
        "description": format!("{what}: 256 random bits, base64url, prefixed {prefix}."),
    })
}

/// Every schema the methods refer to.
pub fn schemas(config: &Config) -> Value {
    let min_score = config.auth.password_min_score;
    let user_props = json!({
        "user_id": component("UserId"),
        "username": {"type": "string", "pattern": format!("^{}{{{},{}}}$", class("a-z0-9", username::EXTRA_CHARS), username::MIN_LEN, username::MAX_LEN)},
        "email": {"type": ["string", "null"]},
        "email_verified": {"type": "boolean", "description": "The email was proven with a pev_ token (auth.verify_email), or set so by an operator."},
        "state": component("UserState"),
        "roles": {"type": "array", "items": component("Role")},
        "profile": component("Profile"),
        "mfa": component("Mfa"),
        "profile_unavailable": {"const": true, "description": "Present while MongoDB cannot be read: profile is then {}."},
        "created_at": component("DateTime"),
        "updated_at": component("DateTime"),
    });
    let mut all = json!({
        "UserId": {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_ID},
        "Username": {
            "type": "string",
            "pattern": format!("^{}{{{},{}}}$", class("A-Za-z0-9", username::EXTRA_CHARS), username::MIN_LEN, username::MAX_LEN),
            "description": "Compared and stored lower-cased.",
        },
        "Email": {
            "type": "string",
            "maxLength": email::MAX_LEN,
            "pattern": email_pattern(),
            "description": "Compared and stored lower-cased.",
        },
        "Login": {
            "oneOf": [component("Username"), component("Email")],
            "description": "A username, or an email (told apart by the @).",
        },
        "Password": {
            "type": "string",
            "maxLength": password::MAX_BYTES,
            "description": format!("At most {} bytes of UTF-8 (bcrypt reads {} bytes: longer is refused, never cut); maxLength counts characters, equal to bytes for ASCII.", password::MAX_BYTES, password::MAX_BYTES),
        },
        "NewPassword": {
            "type": "string",
            "format": "password",
            "minLength": password::MIN_BYTES,
            "maxLength": password::MAX_BYTES,
            "description": format!(
                "{}-{} bytes of UTF-8 (minLength/maxLength count characters, equal to bytes for ASCII), \
                 not containing the username, with a zxcvbn score of at least {min_score} \
                 ([AUTH] PASSWORD_MIN_SCORE). Refused as -32602 with data.reason too_short, too_long, \
                 contains_username or too_weak.",
                password::MIN_BYTES, password::MAX_BYTES
            ),
        },
        "Token": {"type": "string", "description": "A token as issued (pat_, prt_, prs_, pmf_, pev_ or pre_ ...); any other string is simply not active."},
        "AccessToken": token("pat_", "Access token"),
        "RefreshToken": token("prt_", "Refresh token"),
        "ResetToken": token("prs_", "Password reset token"),
        "Role": {
            "type": "string",
            "pattern": format!("^{}{{1,{}}}$", class("a-z0-9", role::ROLE_EXTRA_CHARS), role::ROLE_MAX_LEN),
        },
        "ConfiguredRole": configured_roles(config),
        "Permission": {
            "type": "string",
            "minLength": 1,
            "maxLength": PERMISSION_MAX_CHARS,
            "pattern": r"^[^*\s]+$",
            "description": "A permission such as post:edit; no wildcard, no whitespace.",
        },
        "UserState": {"type": "string", "enum": states()},
        "DateTime": {"type": "string", "format": "date-time", "description": "RFC 3339."},
        "Ip": {"type": "string", "maxLength": IP_MAX_CHARS, "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}], "description": "An IPv4 or IPv6 address. Only a client whose [CLIENTS] patterns include @ip may state it (-32031 otherwise)."},
        "UserAgent": {"type": "string", "maxLength": USER_AGENT_MAX_CHARS},
        "SearchQuery": {"type": "string", "maxLength": SEARCH_QUERY_MAX_CHARS, "description": "A username or email prefix, case-insensitive."},
        "Cursor": {"type": "string", "pattern": "^[0-9]{1,18}$", "description": "next_cursor of the previous page."},
        "Limit": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": PAGE_DEFAULT},
        "UserIds": {"type": "array", "maxItems": GETS_MAX_IDS, "items": component("UserId")},
        "BcryptHash": bcrypt_hash(config.auth.bcrypt_cost + MAX_COST_ABOVE_CONFIG),
        "ProfilePatch": profile_patch(),
        "Profile": stored_profile(),
        "ImportRow": import_row(),
        "ImportRows": {"type": "array", "maxItems": IMPORT_MAX_ROWS, "items": component("ImportRow")},
        "User": {
            "type": "object",
            "properties": user_props,
            "required": ["user_id", "username", "email", "email_verified", "state", "roles", "profile", "mfa", "created_at", "updated_at"],
            "additionalProperties": false,
        },
        "Tokens": {
            "type": "object",
            "properties": {
                "user_id": component("UserId"),
                "session_id": {"type": "integer", "minimum": 1},
                "access_token": component("AccessToken"),
                "refresh_token": component("RefreshToken"),
                "token_type": {"const": "Bearer"},
                "expires_in": {"type": "integer", "minimum": 1, "description": "Seconds the access token lives."},
                "refresh_expires_in": {"type": "integer", "minimum": 1, "description": "Seconds the refresh token lives."},
            },
            "required": ["user_id", "session_id", "access_token", "refresh_token", "token_type", "expires_in", "refresh_expires_in"],
            "additionalProperties": false,
        },
        "Session": {
            "type": "object",
            "properties": {
                "session_id": {"type": "integer", "minimum": 1},
                "created_at": component("DateTime"),
                "last_seen_at": component("DateTime"),
                "ip": {"type": ["string", "null"]},
                "user_agent": {"type": ["string", "null"]},
                "current": {"type": "boolean"},
            },
            "required": ["session_id", "created_at", "last_seen_at", "ip", "user_agent", "current"],
            "additionalProperties": false,
        },
        "LoginEvent": {
            "type": "object",
            "properties": {
                "at": {"oneOf": [component("DateTime"), {"type": "null"}]},
                "ok": {"type": "boolean"},
                "ip": {"type": ["string", "null"]},
                "user_agent": {"type": ["string", "null"]},
                "reason": {"type": ["string", "null"]},
            },
            "required": ["at", "ok", "ip", "user_agent", "reason"],
            "additionalProperties": false,
        },
    });
    all["Export"] = super::export::schema();
    all["VerifyToken"] = token(
        "pev_",
        "Email verification token: single use, [AUTH] VERIFY_TTL_S",
    );
    all["EventType"] = json!({"type": "string", "enum": crate::model::account_events::KINDS});
    all["EventTypes"] = json!({
        "type": "array", "maxItems": crate::model::account_events::KINDS.len(),
        "items": component("EventType"),
    });
    all["IdempotencyKey"] = json!({
        "type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_CHARS,
        "description": "The caller's key for this write: a repeat with the same key and params \
            (passwords aside) within 24 h answers the first answer and does nothing; other \
            params: -32010 field idempotency_key.",
    });
    if let (Some(map), Value::Object(mfa)) = (all.as_object_mut(), mfa_schemas()) {
        map.extend(mfa);
    }
    if let (Some(map), Value::Object(passkeys)) = (all.as_object_mut(), passkey_schemas()) {
        map.extend(passkeys);
    }
    all
}

/// The second factor's schemas (`auth.mfa.*`, `User.mfa`, `amr`).
fn mfa_schemas() -> Value {
    json!({
        "MfaToken": token("pmf_", "Second-factor challenge of auth.login: single use, 5 minutes, dead after 5 wrong codes"),
        "TotpCode": {"type": "string", "pattern": "^[0-9]{6}$", "description": "The 6-digit code an authenticator app shows (RFC 6238: SHA-1, 30 s, one step of drift either way); each time step is accepted once per account."},
        "RecoveryCode": {
            "type": "string",
            "pattern": "^[ -]*([0-9A-Fa-f][ -]*){20}$",
            "description": "A recovery code as auth.mfa.confirm_totp gave it (xxxxx-xxxxx-xxxxx-xxxxx); dashes, spaces and case do not matter. Single use.",
        },
        "Mfa": {
            "type": "object",
            "properties": {
                "totp": {"type": "boolean", "description": "TOTP is enabled (confirmed); a pending setup is false."},
                "passkeys": {"type": "integer", "minimum": 0, "description": "How many passkeys the account has."},
            },
            "required": ["totp", "passkeys"],
            "additionalProperties": false,
        },
        "Amr": {
            "type": "array",
            "items": {"enum": ["pwd", "otp", "hwk"]},
            "description": "How the session was authenticated: [\"pwd\"], [\"pwd\", \"otp\"], or [\"hwk\"] (a passkey: both factors).",
        },
        "MfaChallenge": {
            "type": "object",
            "description": "auth.login for an account with TOTP, after the right password: finish with auth.mfa.verify.",
            "properties": {
                "mfa_required": {"const": true},
                "mfa_token": component("MfaToken"),
                "methods": {"type": "array", "items": {"enum": ["totp", "recovery_code"]}},
                "expires_in": {"type": "integer", "minimum": 1, "description": "Seconds the mfa_token lives (300)."},
            },
            "required": ["mfa_required", "mfa_token", "methods", "expires_in"],
            "additionalProperties": false,
        },
    })
}

/// Passkeys' schemas (`auth.passkey.*`): the WebAuthn Level 3 JSON forms
/// a browser's `PublicKeyCredential` helpers read and write.
fn passkey_schemas() -> Value {
    // Exactly what a base64url decoder without padding accepts: whole
    // quads, then 2 or 3 characters whose unused low bits are zero.
    let b64 = json!({
        "type": "string",
        "pattern": "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$",
        "description": "base64url, unpadded (as credential.toJSON() gives it)",
    });
    json!({
        "EnrolmentToken": token("pre_", "Enrolment token of an account registered without a password: stands for an access token in auth.passkey.register_begin/register_finish; one passkey, 24 hours"),
        "PasskeyChallengeId": {"type": "string", "minLength": 1, "maxLength": 64, "description": "A ceremony begun by *_begin: finished once, within 5 minutes, on any instance."},
        "PasskeyId": {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_ID},
        "PasskeyCreationOptions": {"type": "object", "required": ["rp", "user", "challenge", "pubKeyCredParams"], "description": "PublicKeyCredentialCreationOptionsJSON: pass to PublicKeyCredential.parseCreationOptionsFromJSON, then navigator.credentials.create({publicKey}). residentKey and userVerification required, attestation none."},
        "PasskeyRequestOptions": {"type": "object", "required": ["challenge"], "description": "PublicKeyCredentialRequestOptionsJSON: pass to PublicKeyCredential.parseRequestOptionsFromJSON, then navigator.credentials.get({publicKey}). userVerification required."},
        "RegistrationResponse": {
            "type": "object",
            "description": "RegistrationResponseJSON: what credential.toJSON() gives after navigator.credentials.create.",
            "properties": {
                "id": b64, "rawId": b64, "type": {"const": "public-key"},
                "response": {"type": "object", "properties": {"clientDataJSON": b64, "attestationObject": b64}, "required": ["clientDataJSON", "attestationObject"]},
            },
            "required": ["id", "rawId", "response", "type"],
        },
        "AuthenticationResponse": {
            "type": "object",
            "description": "AuthenticationResponseJSON: what credential.toJSON() gives after navigator.credentials.get.",
            "properties": {
                "id": b64, "rawId": b64, "type": {"const": "public-key"},
                "response": {"type": "object", "properties": {"clientDataJSON": b64, "authenticatorData": b64, "signature": b64, "userHandle": {"oneOf": [b64, {"type": "null"}]}}, "required": ["clientDataJSON", "authenticatorData", "signature"]},
            },
            "required": ["id", "rawId", "response", "type"],
        },
        "Passkey": {
            "type": "object",
            "properties": {
                "passkey_id": component("PasskeyId"),
                "name": {"type": "string"},
                "created_at": component("DateTime"),
                "last_used_at": {"oneOf": [component("DateTime"), {"type": "null"}]},
                "backed_up": {"type": "boolean", "description": "The authenticator says the key is backed up (synced), per its backup-state flag at the last ceremony."},
            },
            "required": ["passkey_id", "name", "created_at", "last_used_at", "backed_up"],
            "additionalProperties": false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_escape_what_a_class_treats_specially() {
        assert_eq!(class("a-z", "_.-"), r"[a-z_.\-]");
    }

    #[test]
    fn kept_hashes_are_bounded_by_the_configured_cost() {
        let schema = bcrypt_hash(6);
        assert_eq!(
            schema["pattern"],
            r"^\$2[aby]\$(04|05|06)\$[./A-Za-z0-9]{53}$"
        );
    }

    #[test]
    fn the_email_pattern_states_the_local_part_bound() {
        assert!(email_pattern().contains("{1,64}@"));
    }
}
