//! An account's email: `auth.request_email_verification`,
//! `auth.verify_email`, `auth.change_email`. The params parsed,
//! `model::email` does the work, the answer shaped here.

use serde_json::{json, Value};

use crate::domain::{Email, Password};
use crate::error::AppError;
use crate::model::{email, idempotency, session};
use crate::rpc::Params;
use crate::services::Ctx;

/// Exactly one of `token` (the user asks) and `user_id` (a back-office
/// service asks, e.g. for an account that may not log in before it is
/// verified, with `[AUTH] REQUIRE_VERIFIED_EMAIL`).
pub fn request_verification(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let issued = match (p.opt_str("token")?, p.opt_i64("user_id")?) {
        (Some(token), None) => {
            let info = session::require(ctx, token)?;
            email::request_verification(ctx, info.user_id, true)?
        }
        (None, Some(id)) => email::request_verification(ctx, id, false)?,
        (Some(_), Some(_)) => return Err(AppError::invalid("user_id", "give_token_or_user_id")),
        (None, None) => return Err(AppError::invalid("token", "missing")),
    };
    Ok(json!({
        "verify_token": issued.token,
        "email": issued.email,
        "expires_in": issued.expires_in,
    }))
}

pub fn verify(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let (user_id, address) = email::verify(ctx, p.str("verify_token")?)?;
    Ok(json!({"user_id": user_id, "email": address}))
}

pub fn change(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let access = p.str("token")?;
    let info = session::require(ctx, access)?;
    let password = Password::for_login(p.str("password")?.to_string())
        .map_err(|_| AppError::InvalidCredentials)?;
    let new =
        Email::parse(p.str("new_email")?).map_err(|i| AppError::invalid("new_email", i.reason))?;
    let key = idempotency::Key::of("auth.change_email", p.all())?;
    email::change(ctx, &info, access, &password, &new, key.as_ref())
}
