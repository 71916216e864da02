//! Token checks and session management: `auth.introspect`,
//! `auth.authorize`, `auth.logout`, `auth.logout_all`, `auth.sessions`.

use serde_json::{json, Value};

use crate::domain::pattern_matches;
use crate::error::AppError;
use crate::model::session;
use crate::model::user::rfc3339;
use crate::rpc::Params;
use crate::services::Ctx;

pub fn introspect(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    Ok(match session::introspect(ctx, p.str("token")?)? {
        Some(info) => json!({
            "active": true,
            "user_id": info.user_id,
            "username": info.username,
            "session_id": info.session_id,
            "roles": info.roles,
            "exp": info.exp,
            "iat": info.iat,
            "amr": if info.amr.is_empty() { vec!["pwd".to_string()] } else { info.amr.clone() },
        }),
        None => json!({"active": false}),
    })
}

pub fn authorize(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let token = p.str("token")?;
    let permission = p.str("permission")?;
    if !crate::domain::limits::valid_permission(permission) {
        return Err(AppError::invalid("permission", "invalid"));
    }
    let Some(info) = session::introspect(ctx, token)? else {
        return Ok(json!({"allowed": false, "reason": "invalid_token"}));
    };
    let roles = &ctx.config().roles;
    let grants = |role: &&String| {
        roles
            .get(*role)
            .is_some_and(|ps| ps.iter().any(|p| pattern_matches(p, permission)))
    };
    // A role in [AUTH] MFA_REQUIRED_ROLES counts only for a session opened
    // with a second factor.
    let needs_otp = |role: &&String| {
        !info.has_second_factor() && ctx.config().auth.mfa_required_roles.contains(*role)
    };
    let granting: Vec<&String> = info.roles.iter().filter(grants).collect();
    Ok(if granting.iter().any(|r| !needs_otp(r)) {
        json!({"allowed": true, "user_id": info.user_id})
    } else if !granting.is_empty() {
        json!({"allowed": false, "user_id": info.user_id, "reason": "mfa_required"})
    } else {
        json!({"allowed": false, "user_id": info.user_id, "reason": "missing_permission"})
    })
}

pub fn logout(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    Ok(json!({"revoked": session::logout(ctx, p.str("token")?)?}))
}

pub fn logout_all(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    Ok(json!({"revoked": session::logout_all(ctx, &info)?}))
}

pub fn sessions(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let list: Vec<Value> = session::live(ctx, &info)?
        .into_iter()
        .map(|s| {
            json!({
                "session_id": s.session_id,
                "created_at": rfc3339(s.created_at),
                "last_seen_at": rfc3339(s.last_seen_at),
                "ip": s.ip,
                "user_agent": s.user_agent,
                "current": s.session_id == info.session_id,
            })
        })
        .collect();
    Ok(json!({"sessions": list}))
}
