//! Accounts and passwords: `auth.register`, `auth.change_password`,
//! `auth.request_password_reset`, `auth.reset_password`.

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};

use crate::domain::{
    Email, Password, PasswordPolicy, ProfilePatch, Token, TokenHash, TokenKind, Username,
};
use crate::error::AppError;
use crate::model::limits::{self, LoginLimits};
use crate::model::password as pw;
use crate::model::{session, user};
use crate::rpc::Params;
use crate::services::Ctx;
use crate::store::accounts::{self, InsertError, NewAccount};
use crate::store::sessions;

fn policy(ctx: &Ctx) -> PasswordPolicy {
    PasswordPolicy {
        min_score: ctx.config().auth.password_min_score,
    }
}

pub fn register(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let username = Username::parse(p.str("username")?)?;
    let email = p.opt_str("email")?.map(Email::parse).transpose()?;
    let profile = p
        .get("profile")
        .map(|v| ProfilePatch::parse(v, "profile"))
        .transpose()?;
    let email_str = email.as_ref().map(Email::as_str);
    let raw_password = p.str("password")?.to_string();
    // The lane first: the strength check (zxcvbn) costs milliseconds of CPU,
    // which a flood of refused registrations must not get to spend.
    let ticket = ctx.svc.lane.reserve()?;
    let password = policy(ctx).check(raw_password, "password", username.as_str(), email_str)?;
    // A cheap pre-check spares a bcrypt hash on an obvious conflict; the
    // unique constraints still decide a race.
    {
        let mut conn = ctx.pg()?;
        if let Some(field) = accounts::taken(&mut conn.client, username.as_str(), email_str)? {
            return Err(AppError::Conflict(field));
        }
    }
    let hash = pw::hash(ctx, ticket, &password)?;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let new = NewAccount {
        username: username.as_str(),
        email: email_str,
        password_hash: &hash,
        state: "active",
        roles: &[],
    };
    let user_id = match accounts::insert(&mut tx, &new) {
        Ok(id) => id,
        Err(InsertError::Conflict(field)) => return Err(AppError::Conflict(field)),
        Err(InsertError::Db(e)) => return Err(e.into()),
    };
    // The profile is written before the account commits: if MongoDB fails,
    // no account exists without the profile its caller asked for.
    if let Some(profile) = &profile {
        ctx.svc.mongo.update_profile(user_id, &profile.0)?;
    }
    tx.commit()?;
    Ok(json!({"user_id": user_id}))
}

pub fn change_password(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let old = Password::for_login(p.str("old_password")?.to_string())
        .map_err(|_| AppError::InvalidCredentials)?;
    let ticket = ctx.svc.lane.reserve()?;
    let creds = {
        let mut conn = ctx.pg()?;
        accounts::credentials_by_id(&mut conn.client, info.user_id)?
            .ok_or(AppError::Unauthorized)?
    };
    let new = policy(ctx).check(
        p.str("new_password")?.to_string(),
        "new_password",
        &creds.username,
        creds.email.as_deref(),
    )?;
    // A stolen access token must not buy unlimited password guesses: wrong
    // old passwords count as failed logins of the account.
    let attempt = LoginLimits::account_only(ctx, &creds.username).admit(ctx)?;
    if !pw::verify(ctx, ticket, &old, &creds.password_hash)? {
        return Err(AppError::InvalidCredentials);
    }
    attempt.succeeded(ctx);
    let hash = pw::hash(ctx, ctx.svc.lane.reserve()?, &new)?;
    let revoked = {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        accounts::set_password_hash(&mut tx, info.user_id, &hash)?;
        // A reset token asked for before the change would undo it.
        sessions::spend_resets(&mut tx, info.user_id)?;
        let revoked = sessions::revoke_all(&mut tx, info.user_id, Some(info.session_id))?;
        tx.commit()?;
        revoked
    };
    session::forget_sessions(ctx, &revoked)?;
    user::invalidate(ctx, info.user_id);
    Ok(json!({"revoked": revoked.len()}))
}

pub fn request_reset(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let login = p.username_or_email()?;
    let token = Token::generate(TokenKind::Reset)
        .map_err(|e| AppError::Internal(format!("OS random generator: {e}")))?;
    let ttl = ctx.config().auth.reset_ttl_s;
    let mut conn = ctx.pg()?;
    let user_id = accounts::id_by_login(&mut conn.client, &login)?.ok_or(AppError::NotFound)?;
    // Counted per account (whichever name was given), like logins.
    limits::admit_reset_request(ctx, &user_id.to_string())?;
    let mut tx = conn.client.transaction()?;
    // One live reset token per account: a new request spends the older.
    sessions::spend_resets(&mut tx, user_id)?;
    sessions::create_reset(
        &mut tx,
        user_id,
        &token.hash(),
        Utc::now() + ChronoDuration::seconds(ttl),
    )?;
    tx.commit()?;
    Ok(json!({"user_id": user_id, "reset_token": token.into_string(), "expires_in": ttl}))
}

pub fn reset_password(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let presented = p.str("reset_token")?;
    let raw_new = p.str("new_password")?.to_string();
    if Token::kind_of(presented) != Some(TokenKind::Reset) {
        return Err(AppError::Unauthorized);
    }
    let hash = TokenHash::of(presented);
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    // Taken inside the transaction: a refused new password rolls it back,
    // so the token stays usable for a second try.
    let user_id = sessions::take_reset(&mut tx, &hash)?.ok_or(AppError::Unauthorized)?;
    let creds = accounts::credentials_by_id(&mut tx, user_id)?.ok_or(AppError::Unauthorized)?;
    let new = policy(ctx).check(
        raw_new,
        "new_password",
        &creds.username,
        creds.email.as_deref(),
    )?;
    let new_hash = pw::hash(ctx, ctx.svc.lane.reserve()?, &new)?;
    accounts::set_password_hash(&mut tx, user_id, &new_hash)?;
    let revoked = sessions::revoke_all(&mut tx, user_id, None)?;
    tx.commit()?;
    drop(conn);
    session::forget_sessions(ctx, &revoked)?;
    user::invalidate(ctx, user_id);
    Ok(json!({"revoked": revoked.len()}))
}
