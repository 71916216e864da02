//! The `Export` component: what `user.export` and `auth.export_account`
//! answer (`model::lifecycle::export`), never a hash, token or secret.

use serde_json::{json, Value};

use super::schemas::component;

/// `user.export` / `auth.export_account`: everything stored about the
/// person, never a hash, token or secret.
pub fn schema() -> Value {
    let time = component("DateTime");
    let opt_time = json!({"oneOf": [component("DateTime"), {"type": "null"}]});
    let object = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
    json!({
        "type": "object",
        "properties": {
            "account": object(json!({
                "user_id": component("UserId"),
                "username": {"type": "string"},
                "email": {"type": ["string", "null"]},
                "email_verified": {"type": "boolean"},
                "pending_email": {"oneOf": [{"type": "null"}, object(json!({
                    "email": {"type": "string"},
                    "requested_at": time,
                    "expires_at": time,
                }), &["email", "requested_at", "expires_at"])], "description": "A change of email asked for (auth.change_email) and not verified yet."},
                "state": component("UserState"),
                "created_at": time,
                "updated_at": time,
            }), &["user_id", "username", "email", "email_verified", "pending_email", "state", "created_at", "updated_at"]),
            "roles": {"type": "array", "items": object(json!({
                "role": {"type": "string"},
                "granted_at": time,
            }), &["role", "granted_at"])},
            "sessions": {"type": "array", "description": "Every session row still stored, live, expired or revoked (dead ones are deleted after [RETENTION] SESSIONS_DAYS), newest first.", "items": object(json!({
                "session_id": {"type": "integer", "minimum": 1},
                "created_at": time,
                "last_seen_at": time,
                "expires_at": time,
                "revoked_at": opt_time,
                "ip": {"type": ["string", "null"]},
                "user_agent": {"type": ["string", "null"]},
                "amr": {"type": "array", "items": {"type": "string"}},
            }), &["session_id", "created_at", "last_seen_at", "expires_at", "revoked_at", "ip", "user_agent", "amr"])},
            "mfa": object(json!({
                "totp": {"type": "boolean"},
                "totp_pending": {"type": "boolean"},
                "enabled_at": opt_time,
                "recovery_codes_left": {"type": "integer", "minimum": 0},
            }), &["totp", "totp_pending", "enabled_at", "recovery_codes_left"]),
            "passkeys": {"type": "array", "items": {"$ref": "#/components/schemas/Passkey"}, "description": "The account's passkeys (auth.passkey.*): never their keys."},
            "profile": component("Profile"),
            "login_events": {"type": "array", "items": component("LoginEvent"), "description": "Newest first, at most 10000 (kept [RETENTION] LOGIN_EVENTS_DAYS)."},
        },
        "required": ["account", "roles", "sessions", "mfa", "passkeys", "profile", "login_events"],
        "additionalProperties": false,
    })
}
