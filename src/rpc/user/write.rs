//! Writes: `user.update_profile`, `user.set_state`, `user.grant_role`,
//! `user.revoke_role`, `user.reset_mfa`. The params parsed,
//! `model::account` does the write (and tells the caches), then the answer
//! is the fresh User.

use crate::domain::{ProfilePatch, Role, UserState};
use crate::error::AppError;
use crate::model::{account, user};
use crate::rpc::{Output, Params};
use crate::services::Ctx;

fn fresh(ctx: &Ctx, id: i64) -> Result<Output, AppError> {
    let user = user::get(ctx, id)?.ok_or(AppError::NotFound)?;
    Ok(Output::User(user))
}

pub fn update_profile(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let id = p.i64("user_id")?;
    let raw = p
        .get("profile")
        .ok_or_else(|| AppError::invalid("profile", "missing"))?;
    let patch = ProfilePatch::parse(raw, "profile")?;
    account::update_profile(ctx, id, patch)?;
    fresh(ctx, id)
}

pub fn set_state(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let id = p.i64("user_id")?;
    let state =
        UserState::parse(p.str("state")?).ok_or_else(|| AppError::invalid("state", "invalid"))?;
    account::set_state(ctx, id, state)?;
    fresh(ctx, id)
}

fn role(ctx: &Ctx, p: &Params) -> Result<(i64, Role), AppError> {
    let id = p.i64("user_id")?;
    let role = Role::parse(p.str("role")?)?;
    if !ctx.config().roles.contains_key(role.as_str()) {
        return Err(AppError::invalid("role", "unknown_role"));
    }
    Ok((id, role))
}

pub fn grant_role(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let (id, role) = role(ctx, p)?;
    account::change_role(ctx, id, &role, true)?;
    fresh(ctx, id)
}

/// A role missing from `[ROLES]` can still be revoked (config may have
/// dropped it since it was granted).
pub fn revoke_role(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let id = p.i64("user_id")?;
    let role = Role::parse(p.str("role")?)?;
    account::change_role(ctx, id, &role, false)?;
    fresh(ctx, id)
}

pub fn reset_mfa(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let id = p.i64("user_id")?;
    account::reset_mfa(ctx, id)?;
    fresh(ctx, id)
}
