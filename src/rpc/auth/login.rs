//! `auth.login`, `auth.mfa.verify` and `auth.refresh`: the params parsed,
//! `model::login` opens the session, the answer shaped here.

use serde_json::{json, Value};

use crate::domain::limits::{IP_MAX_CHARS, USER_AGENT_MAX_CHARS};
use crate::domain::{parse_ip, Password};
use crate::error::AppError;
use crate::model::login::{self, Attempted, LoggedIn, Opened, CHALLENGE_TTL_S};
use crate::model::mfa::Proof;
use crate::rpc::Params;
use crate::services::Ctx;

pub(super) fn bounded<'a>(
    p: &Params<'a>,
    key: &str,
    max: usize,
) -> Result<Option<&'a str>, AppError> {
    match p.opt_str(key)? {
        Some(s) if s.chars().count() > max => Err(AppError::invalid(key, "too_long")),
        other => Ok(other),
    }
}

pub(super) fn tokens(opened: Opened) -> Value {
    opened.tokens.answer(opened.user_id, opened.session_id)
}

pub fn login(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let login = p.login_name("username")?;
    let password = Password::for_login(p.str("password")?.to_string())?;
    let ip = bounded(p, "ip", IP_MAX_CHARS)?
        .map(|raw| parse_ip("ip", raw))
        .transpose()?;
    let user_agent = bounded(p, "user_agent", USER_AGENT_MAX_CHARS)?;
    let attempted = Attempted {
        login,
        password,
        ip: ip.as_deref(),
        user_agent,
    };
    Ok(match login::login(ctx, &attempted)? {
        LoggedIn::Session(opened) => tokens(opened),
        LoggedIn::MfaRequired { mfa_token } => json!({
            "mfa_required": true,
            "mfa_token": mfa_token,
            "methods": ["totp", "recovery_code"],
            "expires_in": CHALLENGE_TTL_S,
        }),
    })
}

pub fn verify(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let presented = p.str("mfa_token")?;
    let proof = Proof::parse(p.opt_str("code")?, p.opt_str("recovery_code")?, false)?;
    login::verify(ctx, presented, &proof).map(tokens)
}

pub fn refresh(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    login::refresh(ctx, p.str("refresh_token")?).map(tokens)
}
