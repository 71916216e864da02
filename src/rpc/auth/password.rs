//! Accounts and passwords: `auth.register`, `auth.change_password`,
//! `auth.request_password_reset`, `auth.reset_password`.

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};

use crate::cache::{self, Change};
use crate::domain::{
    Email, Password, PasswordPolicy, ProfilePatch, Token, TokenHash, TokenKind, UserState, Username,
};
use crate::error::AppError;
use crate::model::limits::{self, LoginLimits};
use crate::model::password as pw;
use crate::model::{idempotency, session, user};
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
    let password = p.str("password")?.to_string();
    // A retry is recognised by its key only, never by its password: a
    // taken username is -32010 whatever password comes with it.
    let key = idempotency::Key::of("auth.register", p.all())?;
    if let Some(answer) = idempotency::recall(ctx, key.as_ref())? {
        return Ok(answer);
    }
    let new = Registration {
        username: &username,
        email: email.as_ref(),
        password,
        profile: profile.as_ref(),
    };
    match (create_account(ctx, new, key.as_ref()), &key) {
        (Ok(id), _) => Ok(json!({"user_id": id})),
        // The same key's first call committed while this one worked: its
        // answer, or -32010 `idempotency_key` if its params were others.
        (Err(AppError::Conflict(field)), Some(key)) => {
            idempotency::recall(ctx, Some(key))?.ok_or(AppError::Conflict(field))
        }
        (Err(e), _) => Err(e),
    }
}

struct Registration<'a> {
    username: &'a Username,
    email: Option<&'a Email>,
    password: String,
    profile: Option<&'a ProfilePatch>,
}

fn create_account(
    ctx: &Ctx,
    r: Registration,
    key: Option<&idempotency::Key>,
) -> Result<i64, AppError> {
    let email = r.email.map(Email::as_str);
    // The lane first: the strength check (zxcvbn) costs milliseconds of
    // CPU, which a flood of refused registrations must not get to spend.
    let ticket = ctx.svc.lane.reserve()?;
    let password = policy(ctx).check(r.password, "password", r.username.as_str(), email)?;
    // A cheap pre-check spares a bcrypt hash on an obvious conflict; the
    // unique constraints still decide a race.
    let taken = {
        let mut conn = ctx.pg()?;
        accounts::taken(&mut conn.client, r.username.as_str(), email)?
    };
    if let Some(field) = taken {
        return Err(AppError::Conflict(field));
    }
    let hash = pw::hash(ctx, ticket, &password)?;
    let new = NewAccount {
        username: r.username.as_str(),
        email,
        password_hash: &hash,
        state: UserState::Active.as_str(),
        roles: &[],
    };
    user::create(ctx, &new, Kept::default(), r.profile, key)
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
    let revoked = sessions::end_all(&mut tx, info.user_id, Some(info.session_id))?;
    accounts::set_password_hash(&mut tx, info.user_id, &hash)?;
    // A reset token asked for before the change would undo it.
    sessions::spend_resets(&mut tx, info.user_id)?;
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
    let revoked = sessions::end_all(&mut tx, creds.id, None)?;
    accounts::set_password_hash(&mut tx, creds.id, &new_hash)?;
    cache::commit(&ctx.svc.caches, tx, &Change::revoked(creds.id, &revoked))?;
    Ok(json!({"revoked": revoked.len()}))
}
