//! Passkeys: `auth.passkey.register_begin` / `register_finish`,
//! `login_begin` / `login_finish`, `list`, `remove`. The params parsed
//! (the browser's credential JSON into webauthn-rs's types), `model::passkey`
//! does the ceremony, the answer shaped here.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{IP, USER_AGENT};
use crate::domain::limits::{IP_MAX_CHARS, USER_AGENT_MAX_CHARS};
use crate::domain::parse_ip;
use crate::error::AppError;
use crate::model::passkey::{self, Asserted, NAME_MAX_CHARS};
use crate::model::session;
use crate::rpc::{Method, Output, Param, Params};
use crate::services::Ctx;

use super::login::{bounded, tokens};

/// A ceremony's id as `*_begin` gave it.
fn challenge_id<'a>(p: &Params<'a>) -> Result<&'a str, AppError> {
    let id = p.str("challenge_id")?;
    if id.is_empty() || id.len() > 64 {
        return Err(AppError::invalid("challenge_id", "invalid"));
    }
    Ok(id)
}

/// The browser's `credential.toJSON()`, as webauthn-rs reads it.
fn credential<T: DeserializeOwned>(p: &Params) -> Result<T, AppError> {
    let raw = p
        .get("credential")
        .ok_or_else(|| AppError::invalid("credential", "missing"))?;
    if !raw.is_object() {
        return Err(AppError::invalid("credential", "not_an_object"));
    }
    serde_json::from_value(raw.clone()).map_err(|_| AppError::invalid("credential", "malformed"))
}

pub fn register_begin(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let who = passkey::enroller(ctx, p.str("token")?)?;
    let (challenge_id, options) = passkey::register_begin(ctx, &who)?;
    Ok(json!({"challenge_id": challenge_id, "options": options}))
}

pub fn register_finish(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let who = passkey::enroller(ctx, p.str("token")?)?;
    let id = challenge_id(p)?;
    let cred: RegisterPublicKeyCredential = credential(p)?;
    let name = match p.opt_str("name")? {
        Some(n) if n.trim().is_empty() => return Err(AppError::invalid("name", "empty")),
        Some(n) if n.chars().count() > NAME_MAX_CHARS => {
            return Err(AppError::invalid("name", "too_long"))
        }
        other => other,
    };
    let passkey_id = passkey::register_finish(ctx, &who, id, &cred, name)?;
    Ok(json!({ "passkey_id": passkey_id }))
}

pub fn login_begin(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let login = match p.get("username") {
        Some(_) => Some(p.login_name("username")?),
        None => None,
    };
    let (challenge_id, options) = passkey::login_begin(ctx, login.as_deref())?;
    Ok(json!({"challenge_id": challenge_id, "options": options}))
}

pub fn login_finish(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let id = challenge_id(p)?;
    let cred: PublicKeyCredential = credential(p)?;
    let ip = bounded(p, "ip", IP_MAX_CHARS)?
        .map(|raw| parse_ip("ip", raw))
        .transpose()?;
    let user_agent = bounded(p, "user_agent", USER_AGENT_MAX_CHARS)?;
    let asserted = Asserted {
        challenge_id: id,
        credential: &cred,
        ip: ip.as_deref(),
        user_agent,
    };
    passkey::login_finish(ctx, &asserted).map(tokens)
}

pub fn list(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    Ok(json!({ "passkeys": passkey::list(ctx, info.user_id)? }))
}

pub fn remove(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let id = p.i64("passkey_id")?;
    passkey::remove(ctx, info.user_id, id)?;
    Ok(json!({ "removed": true }))
}

const TOKEN_OR_ENROLMENT: Param = Param {
    name: "token",
    required: true,
    schema: r##"{"anyOf":[{"$ref":"#/components/schemas/Token"},{"$ref":"#/components/schemas/EnrolmentToken"}]}"##,
};
const OWN_TOKEN: Param = Param {
    name: "token",
    required: true,
    schema: component!("Token"),
};
const CHALLENGE_ID: Param = Param {
    name: "challenge_id",
    required: true,
    schema: component!("PasskeyChallengeId"),
};

pub const METHODS: &[Method] = &[
    Method {
        name: "auth.passkey.register_begin",
        summary: "Starts registering a passkey for the token's account (an access token, or the pre_ enrolment token of an account registered without a password): options for navigator.credentials.create.",
        params: &[TOKEN_OR_ENROLMENT],
        result: r##"{"type":"object","properties":{"challenge_id":{"$ref":"#/components/schemas/PasskeyChallengeId"},"options":{"$ref":"#/components/schemas/PasskeyCreationOptions"}},"required":["challenge_id","options"],"additionalProperties":false}"##,
        handler: |c, p| register_begin(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.passkey.register_finish",
        summary: "Stores the passkey the browser created for register_begin's challenge (single use, 5 minutes). With a pre_ enrolment token, spends it.",
        params: &[
            TOKEN_OR_ENROLMENT,
            CHALLENGE_ID,
            Param {
                name: "credential",
                required: true,
                schema: component!("RegistrationResponse"),
            },
            Param {
                name: "name",
                required: false,
                schema: r#"{"type":"string","minLength":1,"maxLength":64,"description":"What the owner calls it (default \"Passkey\")."}"#,
            },
        ],
        result: r##"{"type":"object","properties":{"passkey_id":{"$ref":"#/components/schemas/PasskeyId"}},"required":["passkey_id"],"additionalProperties":false}"##,
        handler: |c, p| register_finish(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.passkey.login_begin",
        summary: "Starts a passkey login: options for navigator.credentials.get. With a username (or email), that account's passkeys; without, any discoverable passkey names its account.",
        params: &[Param {
            name: "username",
            required: false,
            schema: component!("Login"),
        }],
        result: r##"{"type":"object","properties":{"challenge_id":{"$ref":"#/components/schemas/PasskeyChallengeId"},"options":{"$ref":"#/components/schemas/PasskeyRequestOptions"}},"required":["challenge_id","options"],"additionalProperties":false}"##,
        handler: |c, p| login_begin(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.passkey.login_finish",
        summary: "Checks the browser's assertion for login_begin's challenge (single use, 5 minutes) and opens a session as auth.login does (amr [\"hwk\"]: both factors). A failure counts against the login limits.",
        params: &[
            CHALLENGE_ID,
            Param {
                name: "credential",
                required: true,
                schema: component!("AuthenticationResponse"),
            },
            IP,
            USER_AGENT,
        ],
        result: component!("Tokens"),
        handler: |c, p| login_finish(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.passkey.list",
        summary: "The token's account's passkeys.",
        params: &[OWN_TOKEN],
        result: r##"{"type":"object","properties":{"passkeys":{"type":"array","items":{"$ref":"#/components/schemas/Passkey"}}},"required":["passkeys"],"additionalProperties":false}"##,
        handler: |c, p| list(c, p).map(Output::from),
        hashes_passwords: false,
    },
    Method {
        name: "auth.passkey.remove",
        summary: "Removes one of the token's account's passkeys.",
        params: &[
            OWN_TOKEN,
            Param {
                name: "passkey_id",
                required: true,
                schema: component!("PasskeyId"),
            },
        ],
        result: r#"{"type":"object","properties":{"removed":{"const":true}},"required":["removed"],"additionalProperties":false}"#,
        handler: |c, p| remove(c, p).map(Output::from),
        hashes_passwords: false,
    },
];
