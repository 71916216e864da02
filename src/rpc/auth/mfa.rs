//! The second factor's enrolment and removal: `auth.mfa.setup_totp`,
//! `auth.mfa.confirm_totp`, `auth.mfa.disable` (`model::mfa`). The login's
//! second step, `auth.mfa.verify`, is with the login (`login.rs`).

use serde_json::{json, Value};

use crate::domain::Password;
use crate::error::AppError;
use crate::mfa::totp;
use crate::model::mfa::{self, Proof};
use crate::model::session;
use crate::rpc::Params;
use crate::services::Ctx;

pub fn setup_totp(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let (secret, uri) = mfa::setup_totp(ctx, &info)?;
    Ok(json!({"secret": secret, "otpauth_uri": uri}))
}

pub fn confirm_totp(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let code = p.str("code")?;
    if !totp::looks_like_code(code) {
        return Err(AppError::invalid("code", "invalid"));
    }
    let codes = mfa::confirm_totp(ctx, &info, code)?;
    Ok(json!({"recovery_codes": codes}))
}

pub fn disable(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let password = Password::for_login(p.str("password")?.to_string())
        .map_err(|_| AppError::InvalidCredentials)?;
    let proof = Proof::parse(Some(p.str("code")?), None, true)?;
    mfa::disable(ctx, &info, &password, &proof)?;
    Ok(json!({"disabled": true}))
}
