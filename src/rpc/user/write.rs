//! Writes: `user.update_profile`, `user.set_state`, `user.grant_role`,
//! `user.revoke_role`, `user.reset_mfa`. Each changes the source of truth
//! and records what changed for the caches in the same transaction
//! (`cache::commit`), then answers with the fresh User.

use crate::cache::{self, Change};
use crate::domain::{ProfilePatch, Role, UserState};
use crate::error::AppError;
use crate::model::user;
use crate::rpc::{Output, Params};
use crate::services::Ctx;
use crate::store::mongo::LoginEvent;
use crate::store::{accounts, mfa, sessions};

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
    {
        let mut conn = ctx.pg()?;
        if !accounts::exists(&mut conn.client, id)? {
            return Err(AppError::NotFound);
        }
    }
    ctx.mongo(move |m, _| m.update_profile(id, &patch.0))?;
    user::changed(ctx, id)?;
    fresh(ctx, id)
}

pub fn set_state(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let id = p.i64("user_id")?;
    let state =
        UserState::parse(p.str("state")?).ok_or_else(|| AppError::invalid("state", "invalid"))?;
    {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        // Sessions end first in the transaction (see `sessions::end_all`).
        let revoked = if state == UserState::Active {
            Vec::new()
        } else {
            sessions::end_all(&mut tx, id, None)?
        };
        if !accounts::set_state(&mut tx, id, state.as_str())? {
            return Err(AppError::NotFound);
        }
        cache::commit(&ctx.svc.caches, tx, &Change::revoked(id, &revoked))?;
    }
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

/// Grants or revokes a role, then drops every cached copy of the user and
/// its tokens (they carry its roles), and answers the fresh User.
fn change_role(ctx: &Ctx, id: i64, role: &Role, grant: bool) -> Result<Output, AppError> {
    {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        if !accounts::exists(&mut tx, id)? {
            return Err(AppError::NotFound);
        }
        if grant {
            accounts::grant_role(&mut tx, id, role.as_str())?;
        } else {
            accounts::revoke_role(&mut tx, id, role.as_str())?;
        }
        cache::commit(&ctx.svc.caches, tx, &[Change::User(id)])?;
    }
    fresh(ctx, id)
}

pub fn grant_role(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let (id, role) = role(ctx, p)?;
    change_role(ctx, id, &role, true)
}

/// A role missing from `[ROLES]` can still be revoked (config may have
/// dropped it since it was granted).
pub fn revoke_role(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let id = p.i64("user_id")?;
    let role = Role::parse(p.str("role")?)?;
    change_role(ctx, id, &role, false)
}

/// An operator removes a lost second factor: the factor, its recovery codes
/// and open login challenges go, and every session of the user is revoked
/// (whoever held them may hold the lost device). Recorded in login history.
pub fn reset_mfa(ctx: &Ctx, p: &Params) -> Result<Output, AppError> {
    let id = p.i64("user_id")?;
    let username = {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        let revoked = sessions::end_all(&mut tx, id, None)?;
        let creds = accounts::credentials_by_id(&mut tx, id)?.ok_or(AppError::NotFound)?;
        mfa::remove(&mut tx, id)?;
        accounts::touch(&mut tx, id)?;
        cache::commit(&ctx.svc.caches, tx, &Change::revoked(id, &revoked))?;
        creds.username
    };
    ctx.svc.events.record(LoginEvent {
        user_id: Some(id),
        username,
        at_ms: chrono::Utc::now().timestamp_millis(),
        ok: true,
        ip: None,
        user_agent: None,
        reason: Some("mfa_reset"),
    });
    fresh(ctx, id)
}
