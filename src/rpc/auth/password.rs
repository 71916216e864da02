//! Accounts and passwords: `auth.register`, `auth.change_password`,
//! `auth.request_password_reset`, `auth.reset_password`. The params
//! parsed, `model::account` does the write, the answer shaped here.

use serde_json::{json, Value};

use crate::domain::{Email, Password, ProfilePatch, Username};
use crate::error::AppError;
use crate::model::account::{self, Registration};
use crate::model::{idempotency, session};
use crate::rpc::Params;
use crate::services::Ctx;

pub fn register(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let username = Username::parse(p.str("username")?)?;
    let email = p.opt_str("email")?.map(Email::parse).transpose()?;
    let profile = p
        .get("profile")
        .map(|v| ProfilePatch::parse(v, "profile"))
        .transpose()?;
    let key = idempotency::Key::of("auth.register", p.all())?;
    let registration = Registration {
        username: &username,
        email: email.as_ref(),
        password: p.opt_str("password")?.map(str::to_string),
        profile: profile.as_ref(),
    };
    account::register(ctx, registration, key.as_ref())
}

pub fn change_password(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let old = Password::for_login(p.str("old_password")?.to_string())
        .map_err(|_| AppError::InvalidCredentials)?;
    let new = p.str("new_password")?.to_string();
    let revoked = account::change_password(ctx, &info, &old, new)?;
    Ok(json!({ "revoked": revoked }))
}

pub fn request_reset(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let reset = account::request_reset(ctx, &p.username_or_email()?)?;
    Ok(json!({
        "user_id": reset.user_id,
        "reset_token": reset.token,
        "expires_in": reset.expires_in,
    }))
}

pub fn reset_password(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let presented = p.str("reset_token")?;
    let new = p.str("new_password")?.to_string();
    let revoked = account::reset_password(ctx, presented, new)?;
    Ok(json!({ "revoked": revoked }))
}
