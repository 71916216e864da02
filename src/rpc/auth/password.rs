//! Accounts and passwords: `auth.register`, `auth.change_password`,
//! `auth.request_password_reset`, `auth.reset_password`.

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};

use crate::cache::{self, Change};
use crate::domain::{
    Email, Password, PasswordPolicy, ProfilePatch, Token, TokenHash, TokenKind, Username,
};
use crate::error::AppError;
use crate::model::limits::{self, LoginLimits};
use crate::model::password as pw;
use crate::model::{session, user};
use crate::rpc::Params;
use crate::services::Ctx;
use crate::store::accounts::{self, Kept, NewAccount};
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
    // A cheap pre-check spares a bcrypt hash on an obvious conflict (or
    // recognises a retry); the unique constraints still decide a race.
    let taken = {
        let mut conn = ctx.pg()?;
        accounts::taken(&mut conn.client, username.as_str(), email_str)?
    };
    if let Some(field) = taken {
        return retried(
            ctx, ticket, field, &username, email_str, &password, &profile,
        );
    }
    let hash = pw::hash(ctx, ticket, &password)?;
    let new = NewAccount {
        username: username.as_str(),
        email: email_str,
        password_hash: &hash,
        state: "active",
        roles: &[],
    };
    match user::create(ctx, &new, Kept::default(), profile.as_ref()) {
        Ok(id) => Ok(json!({"user_id": id})),
        Err(AppError::Conflict(field)) => {
            let ticket = ctx.svc.lane.reserve()?;
            retried(
                ctx, ticket, field, &username, email_str, &password, &profile,
            )
        }
        Err(e) => Err(e),
    }
}

/// A registration whose username (or email) is taken: if it is this very
/// registration, made before by a call whose answer was lost (same
/// username, email and password), it is answered again, its profile written
/// again; anything else is the conflict.
fn retried(
    ctx: &Ctx,
    ticket: crate::hashlane::Ticket,
    field: &'static str,
    username: &Username,
    email: Option<&str>,
    password: &crate::domain::Password,
    profile: &Option<ProfilePatch>,
) -> Result<Value, AppError> {
    let creds = {
        let mut conn = ctx.pg()?;
        accounts::credentials(&mut conn, username.as_str())?
    };
    let same = creds.filter(|c| c.username == username.as_str() && c.email.as_deref() == email);
    let Some(creds) = same else {
        return Err(AppError::Conflict(field));
    };
    // A password check like a login's, so counted like one: register must
    // not become a way around the login limits.
    let attempt = LoginLimits::account_only(ctx, &creds.username).admit(ctx)?;
    let (matches, attempt) = attempt.check(ctx, || {
        pw::verify(ctx, ticket, password, &creds.password_hash)
    })?;
    if !matches {
        return Err(AppError::Conflict(field));
    }
    attempt.succeeded(ctx);
    if let Some(profile) = profile.clone() {
        let id = creds.id;
        ctx.mongo(move |m, _| m.update_profile(id, &profile.0))?;
        user::changed(ctx, id)?;
    }
    Ok(json!({"user_id": creds.id}))
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
    let (matches, attempt) =
        attempt.check(ctx, || pw::verify(ctx, ticket, &old, &creds.password_hash))?;
    if !matches {
        return Err(AppError::InvalidCredentials);
    }
    attempt.succeeded(ctx);
    let hash = pw::hash(ctx, ctx.svc.lane.reserve()?, &new)?;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    accounts::set_password_hash(&mut tx, info.user_id, &hash)?;
    // A reset token asked for before the change would undo it.
    sessions::spend_resets(&mut tx, info.user_id)?;
    let revoked = sessions::revoke_all(&mut tx, info.user_id, Some(info.session_id))?;
    cache::commit(
        &ctx.svc.caches,
        tx,
        &Change::revoked(info.user_id, &revoked),
    )?;
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

/// Checks the token and the new password, hashes it, and only then takes
/// the token for good, in a short transaction: no connection or lock is
/// held across zxcvbn or bcrypt. A refused password leaves the token
/// usable for a second try.
pub fn reset_password(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let presented = p.str("reset_token")?;
    let raw_new = p.str("new_password")?.to_string();
    if Token::kind_of(presented) != Some(TokenKind::Reset) {
        return Err(AppError::Unauthorized);
    }
    let hash = TokenHash::of(presented);
    let ticket = ctx.svc.lane.reserve()?;
    let creds = {
        let mut conn = ctx.pg()?;
        let user_id =
            sessions::peek_reset(&mut conn.client, &hash)?.ok_or(AppError::Unauthorized)?;
        accounts::credentials_by_id(&mut conn.client, user_id)?.ok_or(AppError::Unauthorized)?
    };
    let new = policy(ctx).check(
        raw_new,
        "new_password",
        &creds.username,
        creds.email.as_deref(),
    )?;
    let new_hash = pw::hash(ctx, ticket, &new)?;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    // Taken again under a lock: a reset used meanwhile is refused here.
    if sessions::take_reset(&mut tx, &hash)? != Some(creds.id) {
        return Err(AppError::Unauthorized);
    }
    accounts::set_password_hash(&mut tx, creds.id, &new_hash)?;
    let revoked = sessions::revoke_all(&mut tx, creds.id, None)?;
    cache::commit(&ctx.svc.caches, tx, &Change::revoked(creds.id, &revoked))?;
    Ok(json!({"revoked": revoked.len()}))
}
