//! The second factor: enrolment (`auth.mfa.setup_totp`, then
//! `auth.mfa.confirm_totp`), `auth.mfa.disable`, and the login's second step
//! (`auth.mfa.verify`, after [`challenge`] answered `mfa_required`).

use chrono::{Duration as ChronoDuration, Utc};
use serde_json::{json, Value};

use crate::cache::{self, Change};
use crate::domain::{Password, Token, TokenHash, TokenKind};
use crate::error::AppError;
use crate::mfa::{recovery, totp};
use crate::model::limits::LoginLimits;
use crate::model::mfa::{self as model, Proof};
use crate::model::password as pw;
use crate::model::session::{self, Minted};
use crate::rpc::Params;
use crate::services::Ctx;
use crate::store::accounts::{self, Credentials};
use crate::store::mongo::LoginEvent;
use crate::store::{mfa, sessions};

/// How long an `mfa_token` lives, and how many wrong codes kill it.
const CHALLENGE_TTL_S: i64 = 300;
const CHALLENGE_MAX_FAILURES: i32 = 5;

fn random(e: getrandom::Error) -> AppError {
    AppError::Internal(format!("OS random generator: {e}"))
}

fn record(ctx: &Ctx, user_id: i64, username: &str, ok: bool, reason: Option<&'static str>) {
    record_from(ctx, user_id, username, ok, reason, None, None);
}

fn record_from(
    ctx: &Ctx,
    user_id: i64,
    username: &str,
    ok: bool,
    reason: Option<&'static str>,
    ip: Option<String>,
    user_agent: Option<String>,
) {
    ctx.svc.events.record(LoginEvent {
        user_id: Some(user_id),
        username: username.to_string(),
        at_ms: Utc::now().timestamp_millis(),
        ok,
        ip,
        user_agent,
        reason,
    });
}

/// The login's answer for an account with TOTP, after its password was
/// checked: a single-use `pmf_` token instead of a session. `None` for an
/// account without TOTP.
pub(super) fn challenge(
    ctx: &Ctx,
    creds: &Credentials,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<Option<Value>, AppError> {
    let mut conn = ctx.pg()?;
    if !mfa::enabled(&mut conn.client, creds.id)? {
        return Ok(None);
    }
    let token = Token::generate(TokenKind::Mfa).map_err(random)?;
    let expires = Utc::now() + ChronoDuration::seconds(CHALLENGE_TTL_S);
    mfa::create_challenge(
        &mut conn.client,
        &token.hash(),
        creds.id,
        creds.epoch,
        expires,
        ip,
        user_agent,
    )?;
    Ok(Some(json!({
        "mfa_required": true,
        "mfa_token": token.into_string(),
        "methods": ["totp", "recovery_code"],
        "expires_in": CHALLENGE_TTL_S,
    })))
}

pub fn setup_totp(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let auth = &ctx.config().auth;
    let secret = totp::TotpSecret::generate().map_err(random)?;
    let sealed = model::keys(auth)
        .seal(info.user_id, &secret)
        .map_err(|e| AppError::Internal(format!("TOTP enrolment refused: {e}")))?;
    let (base32, uri) = totp::provisioning(&secret, &auth.mfa_issuer, &info.username)
        .map_err(AppError::Internal)?;
    let mut conn = ctx.pg()?;
    if !mfa::set_pending(&mut conn.client, info.user_id, &sealed)? {
        return Err(AppError::Conflict("mfa"));
    }
    Ok(json!({"secret": base32, "otpauth_uri": uri}))
}

pub fn confirm_totp(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let code = p.str("code")?;
    if !totp::looks_like_code(code) {
        return Err(AppError::invalid("code", "invalid"));
    }
    let codes = recovery::generate().map_err(random)?;
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .filter_map(|c| recovery::normalise(c))
        .map(|c| recovery::hash(info.user_id, &c))
        .collect();
    {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        let factor = mfa::factor(&mut tx, info.user_id, true)?.ok_or(AppError::NotFound)?;
        if factor.enabled {
            return Err(AppError::Conflict("mfa"));
        }
        let secret = model::open(&ctx.config().auth, info.user_id, &factor.sealed)?;
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
        let step = totp::matched_step(&secret, code, now)
            .and_then(|s| i64::try_from(s).ok())
            .ok_or(AppError::InvalidCredentials)?;
        if !mfa::enable(&mut tx, info.user_id, step, &hashes)? {
            return Err(AppError::Conflict("mfa"));
        }
        cache::commit(&ctx.svc.caches, tx, &[Change::User(info.user_id)])?;
    }
    Ok(json!({"recovery_codes": codes}))
}

pub fn disable(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let info = session::require(ctx, p.str("token")?)?;
    let password = Password::for_login(p.str("password")?.to_string())
        .map_err(|_| AppError::InvalidCredentials)?;
    let proof = Proof::parse(Some(p.str("code")?), None, true)?;
    let ticket = ctx.svc.lane.reserve()?;
    let creds = {
        let mut conn = ctx.pg()?;
        accounts::credentials_by_id(&mut conn.client, info.user_id)?
            .ok_or(AppError::Unauthorized)?
    };
    // As for a password change: a stolen access token must not buy
    // unlimited guesses of the password or the code.
    // One attempt, counted before either is checked; it stays counted if
    // either is wrong.
    let attempt = LoginLimits::account_only(ctx, &creds.username).admit(ctx)?;
    let (matches, attempt) = attempt.check(ctx, || {
        pw::verify(ctx, ticket, &password, &creds.password_hash)
    })?;
    if !matches {
        return Err(AppError::InvalidCredentials);
    }
    {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        if !mfa::enabled(&mut tx, info.user_id)? {
            return Err(AppError::NotFound);
        }
        // First in the transaction (see `sessions::end_all`); undone with
        // it if the code is wrong.
        let revoked = sessions::end_all(&mut tx, info.user_id, Some(info.session_id))?;
        if !model::accept(&ctx.config().auth, &mut tx, info.user_id, &proof)? {
            drop(tx);
            record(
                ctx,
                info.user_id,
                &creds.username,
                false,
                Some("invalid_mfa_code"),
            );
            return Err(AppError::InvalidCredentials);
        }
        mfa::remove(&mut tx, info.user_id)?;
        accounts::touch(&mut tx, info.user_id)?;
        cache::commit(
            &ctx.svc.caches,
            tx,
            &Change::revoked(info.user_id, &revoked),
        )?;
    }
    attempt.succeeded(ctx);
    record(
        ctx,
        info.user_id,
        &creds.username,
        true,
        Some("mfa_disabled"),
    );
    Ok(json!({"disabled": true}))
}

pub fn verify(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let presented = p.str("mfa_token")?;
    let proof = Proof::parse(p.opt_str("code")?, p.opt_str("recovery_code")?, false)?;
    if Token::kind_of(presented) != Some(TokenKind::Mfa) {
        return Err(AppError::Unauthorized);
    }
    let hash = TokenHash::of(presented);
    let minted = Minted::new(ctx)?;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let challenge = mfa::lock_challenge(&mut tx, &hash, CHALLENGE_MAX_FAILURES)?
        .ok_or(AppError::Unauthorized)?;
    let user_id = challenge.user_id;
    let creds = accounts::credentials_by_id(&mut tx, user_id)?.ok_or(AppError::Unauthorized)?;
    let (ip, user_agent) = (challenge.ip.as_deref(), challenge.user_agent.as_deref());
    let event = |ok: bool, reason: Option<&'static str>| {
        let (ip, ua) = (challenge.ip.clone(), challenge.user_agent.clone());
        record_from(ctx, user_id, &creds.username, ok, reason, ip, ua);
    };
    // Wrong codes count as failed logins of the account, from the address
    // the password came from.
    let attempt = match LoginLimits::new(ctx, &creds.username, ip).admit(ctx) {
        Ok(attempt) => attempt,
        Err(e) => {
            event(false, Some("rate_limited"));
            return Err(e);
        }
    };
    if creds.state != "active" {
        attempt.given_back(ctx);
        event(false, Some("account_inactive"));
        return Err(AppError::AccountInactive(creds.state.clone()));
    }
    if !model::accept(&ctx.config().auth, &mut tx, user_id, &proof)? {
        // The failure must stick although the call fails: roll back what
        // the check did, then count it on the challenge.
        drop(tx);
        let mut tx = conn.client.transaction()?;
        mfa::challenge_failed(&mut tx, &hash)?;
        tx.commit()?;
        drop(conn);
        // The attempt stays counted.
        event(false, Some("invalid_mfa_code"));
        return Err(AppError::InvalidCredentials);
    }
    mfa::challenge_used(&mut tx, &hash)?;
    let verified = sessions::Verified {
        user_id,
        epoch: challenge.epoch,
    };
    let created = sessions::create(
        &mut tx,
        verified,
        ip,
        user_agent,
        &["pwd", "otp"],
        &minted.pair(),
    )?;
    let session_id = match created {
        Ok(id) => id,
        // Revocations delete open challenges, so this is only a challenge
        // made from a password checked before one: it opens nothing.
        Err(_) => {
            drop(tx);
            event(false, Some("credentials_changed"));
            return Err(AppError::Unauthorized);
        }
    };
    tx.commit()?;
    drop(conn);
    attempt.succeeded(ctx);
    event(true, None);
    Ok(minted.answer(user_id, session_id))
}
