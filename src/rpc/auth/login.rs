//! `auth.login` and `auth.refresh`: password checks on the hashing lane
//! behind the attempt limits (`model::limits`), session creation and
//! refresh rotation with reuse detection.

use chrono::Utc;
use serde_json::Value;

use crate::cache::{self, Change};
use crate::domain::limits::{IP_MAX_CHARS, USER_AGENT_MAX_CHARS};
use crate::domain::{Email, Password, Token, TokenHash, TokenKind, Username};
use crate::error::AppError;
use crate::model::limits::LoginLimits;
use crate::model::password::{self as pw, cost_of};
use crate::model::session::Minted;
use crate::rpc::Params;
use crate::services::Ctx;
use crate::store::mongo::LoginEvent;
use crate::store::{accounts, sessions};

/// A login string: usernames are lower-cased; an email is recognised by '@'.
fn login_name(raw: &str) -> Result<String, AppError> {
    if raw.contains('@') {
        Ok(Email::parse(raw)
            .map_err(|_| AppError::invalid("username", "invalid"))?
            .as_str()
            .to_string())
    } else {
        Ok(Username::parse(raw)?.as_str().to_string())
    }
}

fn bounded<'a>(p: &Params<'a>, key: &str, max: usize) -> Result<Option<&'a str>, AppError> {
    match p.opt_str(key)? {
        Some(s) if s.chars().count() > max => Err(AppError::invalid(key, "too_long")),
        other => Ok(other),
    }
}

pub fn login(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let login = login_name(p.str("username")?)?;
    let password = Password::for_login(p.str("password")?.to_string())?;
    let ip = bounded(p, "ip", IP_MAX_CHARS)?
        .map(|raw| crate::domain::parse_ip("ip", raw))
        .transpose()?;
    let ip = ip.as_deref();
    let user_agent = bounded(p, "user_agent", USER_AGENT_MAX_CHARS)?;
    let event = |user_id: Option<i64>, ok: bool, reason: Option<&'static str>| {
        ctx.svc.events.record(LoginEvent {
            user_id,
            username: login.clone(),
            at_ms: Utc::now().timestamp_millis(),
            ok,
            ip: ip.map(str::to_string),
            user_agent: user_agent.map(str::to_string),
            reason,
        });
    };

    // A place on the hashing lane first: a flood is refused before it costs
    // a database round trip.
    let ticket = ctx.svc.lane.reserve()?;
    let creds = {
        let mut conn = ctx.pg()?;
        accounts::credentials(&mut conn, &login)?
    };
    // Failures count against the account, whichever of its names (username
    // or email) was typed: switching between them must not buy more guesses.
    let counted = creds
        .as_ref()
        .map_or(login.as_str(), |c| c.username.as_str());
    // Counted before the check, atomically: parallel guesses cannot all
    // pass a limit that none of them has been counted against yet.
    let attempt = match LoginLimits::new(ctx, counted, ip).admit(ctx) {
        Ok(attempt) => attempt,
        Err(e) => {
            event(creds.as_ref().map(|c| c.id), false, Some("rate_limited"));
            return Err(e);
        }
    };
    // An unknown login still costs one verification: same time, same answer.
    let stored = creds
        .as_ref()
        .map_or(ctx.svc.dummy_hash.as_str(), |c| c.password_hash.as_str());
    let (matches, attempt) = attempt.check(ctx, || pw::verify(ctx, ticket, &password, stored))?;
    let creds = match creds {
        Some(c) if matches => c,
        other => {
            // The attempt stays counted.
            event(other.map(|c| c.id), false, Some("invalid_credentials"));
            return Err(AppError::InvalidCredentials);
        }
    };
    if creds.state != "active" {
        // A correct password is no failed guess, whatever the state.
        attempt.given_back(ctx);
        event(Some(creds.id), false, Some("account_inactive"));
        return Err(AppError::AccountInactive(creds.state));
    }
    upgrade_hash_later(ctx, creds.id, &creds.password_hash, &password);
    // Only now, after the password: an account with TOTP gets a challenge
    // instead of a session. The address becomes known, and its pair count
    // is cleared, only once auth.mfa.verify has the second factor.
    if let Some(answer) = super::mfa::challenge(ctx, &creds, ip, user_agent)? {
        attempt.given_back(ctx);
        event(Some(creds.id), false, Some("mfa_required"));
        return Ok(answer);
    }
    attempt.succeeded(ctx);

    let minted = Minted::new(ctx)?;
    let verified = sessions::Verified {
        user_id: creds.id,
        epoch: creds.epoch,
    };
    let created = {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        let created =
            sessions::create(&mut tx, verified, ip, user_agent, &["pwd"], &minted.pair())?;
        tx.commit()?;
        created
    };
    // The password was changed or reset, every session ended, or the
    // account disabled while this login was checking: it opens nothing.
    let session_id = match created {
        Ok(id) => id,
        Err(sessions::Stale::Inactive(state)) => {
            event(Some(creds.id), false, Some("account_inactive"));
            return Err(AppError::AccountInactive(state));
        }
        Err(sessions::Stale::Changed) => {
            event(Some(creds.id), false, Some("credentials_changed"));
            return Err(AppError::InvalidCredentials);
        }
    };
    event(Some(creds.id), true, None);
    Ok(minted.answer(creds.id, session_id))
}

/// A stored hash with a lower cost than configured is re-hashed after a
/// successful login, in the background on the hashing lane (skipped if the
/// lane is busy: the next login tries again).
fn upgrade_hash_later(ctx: &Ctx, user_id: i64, old_hash: &str, password: &Password) {
    let cost = ctx.config().auth.bcrypt_cost;
    if cost_of(old_hash).is_some_and(|c| c >= cost) {
        return;
    }
    let pool = ctx.svc.pg.clone();
    let (old, plain) = (old_hash.to_string(), password.expose().to_string());
    let queued = ctx.svc.lane.spawn(move || {
        let Ok(new) = bcrypt::hash(plain, cost) else {
            return;
        };
        let done = pool.get().map_err(|e| e.to_string()).and_then(|mut c| {
            accounts::upgrade_password_hash(&mut c.client, user_id, &old, &new)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = done {
            log::warn!("password hash of user {user_id} not upgraded: {e}");
        }
    });
    if !queued {
        log::debug!("hash upgrade of user {user_id} deferred: hashing lane busy");
    }
}

pub fn refresh(ctx: &Ctx, p: &Params) -> Result<Value, AppError> {
    let presented = p.str("refresh_token")?;
    if Token::kind_of(presented) != Some(TokenKind::Refresh) {
        return Err(AppError::Unauthorized);
    }
    let hash = TokenHash::of(presented);
    let minted = Minted::new(ctx)?;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let max = ctx.config().auth.session_max_s;
    let Some(state) = sessions::lock_refresh(&mut tx, &hash, max)? else {
        return Err(AppError::Unauthorized);
    };
    if state.spent {
        // Reuse: someone holds a copy of a spent token. End the session.
        let revoked = sessions::revoke(&mut tx, state.session_id)?;
        let changes: &[Change] = if revoked {
            &[Change::Session(state.session_id)]
        } else {
            &[]
        };
        cache::commit(&ctx.svc.caches, tx, changes)?;
        if revoked {
            log::warn!(
                "rid={} refresh token reuse: session {} of user {} revoked",
                ctx.rid,
                state.session_id,
                state.user_id
            );
        }
        return Err(AppError::Unauthorized);
    }
    // Refreshing never carries a session past its longest life.
    let worn_out = state.session_left_s <= 0;
    if state.expired || worn_out || state.session_revoked || state.user_state != "active" {
        return Err(AppError::Unauthorized);
    }
    let minted = minted.capped(state.session_left_s);
    sessions::rotate(&mut tx, &hash, state.session_id, &minted.pair())?;
    tx.commit()?;
    Ok(minted.answer(state.user_id, state.session_id))
}
