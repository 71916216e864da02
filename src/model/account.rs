//! Writes on accounts: registration, passwords (change, reset), state,
//! roles, the second factor's removal by an operator, and the profile.
//! Each function owns its transaction and decides, next to the write, what
//! it tells the caches (`cache::commit`). A write that ends a user's
//! sessions starts with `sessions::end_all` (see there why first).

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::json;

use crate::cache::{self, Change, TokenInfo};
use crate::domain::{
    Email, Password, PasswordPolicy, ProfilePatch, Role, Token, TokenHash, TokenKind, UserState,
    Username,
};
use crate::error::AppError;
use crate::model::account_events::{self, Event};
use crate::model::idempotency;
use crate::model::limits::{self, LoginLimits};
use crate::model::login::event;
use crate::model::passkey;
use crate::model::password as pw;
use crate::model::user;
use crate::services::Ctx;
use crate::store::accounts::{self, Credentials, Kept, NewAccount};
use crate::store::{mfa, sessions};

fn policy(ctx: &Ctx) -> PasswordPolicy {
    PasswordPolicy {
        min_score: ctx.config().auth.password_min_score,
    }
}

/// A new password for the account of `creds`, as the policy allows it.
fn new_password(ctx: &Ctx, raw: String, creds: &Credentials) -> Result<Password, AppError> {
    Ok(policy(ctx).check(raw, "new_password", &creds.username, creds.email.as_deref())?)
}

/// An account as `auth.register` asks for it; the password as typed (the
/// policy is checked here, after the hashing lane is reserved).
pub struct Registration<'a> {
    pub username: &'a Username,
    pub email: Option<&'a Email>,
    /// `None`: a passkey-only account (see `model::passkey`).
    pub password: Option<String>,
    pub profile: Option<&'a ProfilePatch>,
}

/// `auth.register`: its answer, `{user_id}`. With an idempotency key, a
/// repeat gets the first call's answer (see `model::idempotency`).
pub fn register(
    ctx: &Ctx,
    r: Registration,
    key: Option<&idempotency::Key>,
) -> Result<serde_json::Value, AppError> {
    if let Some(answer) = idempotency::recall(ctx, key)? {
        return Ok(answer);
    }
    let passwordless = r.password.is_none();
    match create(ctx, r, key) {
        // The enrolment token is shown once: a repeat with the same
        // idempotency key answers `{user_id}` alone.
        Ok(id) if passwordless => Ok(serde_json::json!({
            "user_id": id,
            "enrolment_token": passkey::enrolment_token(ctx, id)?,
        })),
        Ok(id) => Ok(serde_json::json!({ "user_id": id })),
        // The same key's first call committed while this one worked: its
        // answer, or -32010 `idempotency_key` if its params were others.
        Err(AppError::Conflict(field)) if key.is_some() => {
            idempotency::recall(ctx, key)?.ok_or(AppError::Conflict(field))
        }
        Err(e) => Err(e),
    }
}

fn create(ctx: &Ctx, r: Registration, key: Option<&idempotency::Key>) -> Result<i64, AppError> {
    let email = r.email.map(Email::as_str);
    let Some(raw) = r.password else {
        return create_passkey_only(ctx, r.username, email, r.profile, key);
    };
    // The lane first: a flood of registrations is refused for the price
    // of parsing it.
    let ticket = pw::reserve(ctx)?;
    // A cheap pre-check spares the policy and a bcrypt hash on an obvious
    // conflict; the unique constraints still decide a race. A taken name is
    // -32010 whatever the password: a retry is recognised by its key only.
    let taken = {
        let mut conn = ctx.pg()?;
        accounts::taken(&mut conn.client, r.username.as_str(), email)?
    };
    if let Some(field) = taken {
        return Err(AppError::Conflict(field));
    }
    let chosen = pw::Chosen {
        raw,
        field: "password",
        username: r.username.as_str(),
        email,
    };
    let hash = pw::check_and_hash(ctx, ticket, chosen)?;
    let new = NewAccount {
        username: r.username.as_str(),
        email,
        email_verified: false,
        password_hash: &hash,
        state: UserState::Active.as_str(),
        roles: &[],
    };
    user::create(ctx, &new, Kept::default(), r.profile, key)
}

/// An account without a password: it signs in with the passkeys its
/// enrolment token registers. Passkeys must be configured.
fn create_passkey_only(
    ctx: &Ctx,
    username: &Username,
    email: Option<&str>,
    profile: Option<&ProfilePatch>,
    key: Option<&idempotency::Key>,
) -> Result<i64, AppError> {
    if !ctx.config().webauthn.enabled() {
        return Err(AppError::invalid("password", "missing"));
    }
    let new = NewAccount {
        username: username.as_str(),
        email,
        email_verified: false,
        password_hash: pw::PASSKEY_ONLY,
        state: UserState::Active.as_str(),
        roles: &[],
    };
    user::create(ctx, &new, Kept::default(), profile, key)
}

/// `auth.change_password`: the old password (counted like a login of the
/// account), then the new hash; every other session ends. How many did.
pub fn change_password(
    ctx: &Ctx,
    info: &TokenInfo,
    old: &Password,
    new_raw: String,
) -> Result<usize, AppError> {
    let ticket = pw::reserve(ctx)?;
    let creds = {
        let mut conn = ctx.pg()?;
        accounts::credentials_by_id(&mut conn.client, info.user_id)?
            .ok_or(AppError::Unauthorized)?
    };
    let new = new_password(ctx, new_raw, &creds)?;
    // A stolen access token must not buy unlimited password guesses: wrong
    // old passwords count as failed logins of the account.
    let attempt = LoginLimits::account_only(ctx, &creds.username).admit(ctx)?;
    let (matches, attempt) =
        attempt.check(ctx, || pw::verify(ctx, ticket, old, &creds.password_hash))?;
    if !matches {
        return Err(AppError::InvalidCredentials);
    }
    attempt.succeeded(ctx);
    let hash = pw::hash(ctx, pw::reserve(ctx)?, &new)?;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let revoked = sessions::end_all(&mut tx, info.user_id, Some(info.session_id))?;
    accounts::set_password_hash(&mut tx, info.user_id, &hash)?;
    // A reset token asked for before the change would undo it.
    sessions::spend_resets(&mut tx, info.user_id)?;
    let mut events = Event::revoked(info.user_id, &revoked, "password_changed");
    events.push(Event::new("password.changed", info.user_id, json!({})));
    account_events::record(&mut tx, &events)?;
    cache::commit(
        &ctx.svc.model.caches,
        tx,
        &Change::revoked(info.user_id, &revoked),
    )?;
    Ok(revoked.len())
}

/// A reset token as issued: the caller delivers it.
pub struct ResetToken {
    pub user_id: i64,
    pub token: String,
    pub expires_in: i64,
}

/// `auth.request_password_reset` for `login` (a username or an email).
pub fn request_reset(ctx: &Ctx, login: &str) -> Result<ResetToken, AppError> {
    let token = Token::generate(TokenKind::Reset)
        .map_err(|e| AppError::Internal(format!("OS random generator: {e}")))?;
    let ttl = ctx.config().auth.reset_ttl_s;
    let mut conn = ctx.pg()?;
    let creds = accounts::credentials(&mut conn, login)?.ok_or(AppError::NotFound)?;
    // A passkey-only account has no password to reset: a reset would add
    // one, a weaker way in than the passkey it chose.
    if creds.password_hash == pw::PASSKEY_ONLY {
        let field = if login.contains('@') {
            "email"
        } else {
            "username"
        };
        return Err(AppError::invalid(field, "passkey_only"));
    }
    let user_id = creds.id;
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
    Ok(ResetToken {
        user_id,
        token: token.into_string(),
        expires_in: ttl,
    })
}

/// `auth.reset_password`: checks the token and the new password, hashes
/// it, and only then takes the token for good, in a short transaction: no
/// connection or lock is held across zxcvbn or bcrypt. A refused password
/// leaves the token usable for a second try. Every session ends; how many.
pub fn reset_password(ctx: &Ctx, presented: &str, new_raw: String) -> Result<usize, AppError> {
    if Token::kind_of(presented) != Some(TokenKind::Reset) {
        return Err(AppError::Unauthorized);
    }
    let hash = TokenHash::of(presented);
    let ticket = pw::reserve(ctx)?;
    let creds = {
        let mut conn = ctx.pg()?;
        let user_id =
            sessions::peek_reset(&mut conn.client, &hash)?.ok_or(AppError::Unauthorized)?;
        accounts::credentials_by_id(&mut conn.client, user_id)?.ok_or(AppError::Unauthorized)?
    };
    if creds.password_hash == pw::PASSKEY_ONLY {
        return Err(AppError::invalid("reset_token", "passkey_only"));
    }
    let new = new_password(ctx, new_raw, &creds)?;
    let new_hash = pw::hash(ctx, ticket, &new)?;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    // Taken again under a lock: a reset used meanwhile is refused here.
    if sessions::take_reset(&mut tx, &hash)? != Some(creds.id) {
        return Err(AppError::Unauthorized);
    }
    let revoked = sessions::end_all(&mut tx, creds.id, None)?;
    accounts::set_password_hash(&mut tx, creds.id, &new_hash)?;
    let mut events = Event::revoked(creds.id, &revoked, "password_reset");
    events.push(Event::new("password.reset", creds.id, json!({})));
    account_events::record(&mut tx, &events)?;
    cache::commit(
        &ctx.svc.model.caches,
        tx,
        &Change::revoked(creds.id, &revoked),
    )?;
    Ok(revoked.len())
}

/// `user.set_state`: any state but active ends every session at once.
pub fn set_state(ctx: &Ctx, id: i64, state: UserState) -> Result<(), AppError> {
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let revoked = if state == UserState::Active {
        Vec::new()
    } else {
        sessions::end_all(&mut tx, id, None)?
    };
    if !accounts::set_state(&mut tx, id, state.as_str())? {
        return Err(AppError::NotFound);
    }
    let mut events = Event::revoked(id, &revoked, "state_changed");
    events.push(Event::new(
        "user.state_changed",
        id,
        json!({"state": state.as_str()}),
    ));
    account_events::record(&mut tx, &events)?;
    cache::commit(&ctx.svc.model.caches, tx, &Change::revoked(id, &revoked))?;
    Ok(())
}

/// `user.grant_role` / `user.revoke_role`: every cached copy of the user
/// and its tokens (they carry its roles) is dropped.
pub fn change_role(ctx: &Ctx, id: i64, role: &Role, grant: bool) -> Result<(), AppError> {
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    if !accounts::exists(&mut tx, id)? {
        return Err(AppError::NotFound);
    }
    let changed = if grant {
        accounts::grant_role(&mut tx, id, role.as_str())?
    } else {
        accounts::revoke_role(&mut tx, id, role.as_str())?
    };
    if changed {
        let data = json!({"role": role.as_str(), "granted": grant});
        account_events::record(&mut tx, &[Event::new("user.roles_changed", id, data)])?;
    }
    cache::commit(&ctx.svc.model.caches, tx, &[Change::User(id)])?;
    Ok(())
}

/// `user.reset_mfa`: an operator removes a lost second factor: the factor,
/// its recovery codes and open login challenges go, and every session of
/// the user ends (whoever held them may hold the lost device). Recorded in
/// login history.
pub fn reset_mfa(ctx: &Ctx, id: i64) -> Result<(), AppError> {
    let username = {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        let revoked = sessions::end_all(&mut tx, id, None)?;
        let creds = accounts::credentials_by_id(&mut tx, id)?.ok_or(AppError::NotFound)?;
        let removed = mfa::remove(&mut tx, id)?;
        let passkeys_removed = passkey::remove_all(&mut tx, id)?;
        accounts::touch(&mut tx, id)?;
        let mut events = Event::revoked(id, &revoked, "mfa_reset");
        if removed {
            events.push(Event::new("mfa.disabled", id, json!({"by": "operator"})));
        }
        events.extend(passkeys_removed);
        account_events::record(&mut tx, &events)?;
        cache::commit(&ctx.svc.model.caches, tx, &Change::revoked(id, &revoked))?;
        creds.username
    };
    event(
        ctx,
        Some(id),
        &username,
        true,
        Some("mfa_reset"),
        None,
        None,
    );
    Ok(())
}

/// `user.update_profile`: MongoDB first, then `updated_at` and the cache
/// change in one short transaction.
pub fn update_profile(ctx: &Ctx, id: i64, patch: ProfilePatch) -> Result<(), AppError> {
    {
        let mut conn = ctx.pg()?;
        if !accounts::exists(&mut conn.client, id)? {
            return Err(AppError::NotFound);
        }
    }
    let fields: Vec<String> = patch.0.iter().map(|(k, _)| k.clone()).collect();
    ctx.mongo(move |m, _| m.update_profile(id, &patch.0))?;
    let updated = Event::new("user.updated", id, json!({ "fields": fields }));
    user::changed(ctx, id, updated)
}
