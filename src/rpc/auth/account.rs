//! The token's own account as a whole: `auth.export_account`,
//! `auth.delete_account` (`model::lifecycle`).

use serde_json::{json, Value};

use crate::domain::Password;
use crate::error::AppError;
use crate::model::lifecycle;
use crate::model::mfa::Proof;
use crate::model::session;
use crate::rpc::Params;
use crate::services::Ctx;

pub fn export(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    lifecycle::export(ctx, info.user_id)
}

pub fn delete(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let password = Password::for_login(p.str("password")?.to_string())
        .map_err(|_| AppError::InvalidCredentials)?;
    let proof = p
        .opt_str("code")?
        .map(|c| Proof::parse(Some(c), None, true))
        .transpose()?;
    lifecycle::delete_own(ctx, &info, &password, proof.as_ref())?;
    Ok(json!({"deleted": true}))
}
