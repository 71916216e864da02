//! Opening sessions: `auth.login` (a password, checked on the hashing lane
//! behind the attempt limits), its second step for an account with TOTP
//! (`auth.mfa.verify` of the `pmf_` challenge the login answered), and
//! `auth.refresh` (rotation with reuse detection). Every way in ends in
//! `sessions::create`, which opens nothing once the account changed since
//! it was verified (see `sessions::end_all`).

use chrono::{Duration as ChronoDuration, Utc};

use crate::cache::{self, Change};
use crate::domain::{Password, Token, TokenHash, TokenKind, UserState};
use crate::error::AppError;
use crate::model::account_events::{self, Event};
use crate::model::limits::LoginLimits;
use crate::model::mfa::{self, Proof};
use crate::model::password::{self as pw, cost_of};
use crate::model::session::Minted;
use crate::services::Ctx;
use crate::store::accounts::{self, Credentials};
use crate::store::mfa as store_mfa;
use crate::store::mongo::LoginEvent;
use crate::store::sessions::{self, Stale, Verified};

/// How long an `mfa_token` lives, and how many wrong codes kill it.
pub const CHALLENGE_TTL_S: i64 = 300;
const CHALLENGE_MAX_FAILURES: i32 = 5;

/// A login as asked: the name typed (a username or an email, normalised),
/// the password, and where the end user is.
pub struct Attempted<'a> {
    pub login: String,
    pub password: Password,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// What a login or a second step opened.
pub struct Opened {
    pub user_id: i64,
    pub session_id: i64,
    pub tokens: Minted,
}

/// A right password: a session, or for an account with TOTP a challenge.
pub enum LoggedIn {
    Session(Opened),
    /// The `pmf_` token for `auth.mfa.verify`.
    MfaRequired {
        mfa_token: String,
    },
}

/// Records a login event (MongoDB, in the background).
pub fn event(
    ctx: &Ctx,
    user_id: Option<i64>,
    username: &str,
    ok: bool,
    reason: Option<&'static str>,
    ip: Option<&str>,
    user_agent: Option<&str>,
) {
    ctx.svc.model.events.record(LoginEvent {
        user_id,
        username: username.to_string(),
        at_ms: Utc::now().timestamp_millis(),
        ok,
        ip: ip.map(str::to_string),
        user_agent: user_agent.map(str::to_string),
        reason,
    });
}

pub fn login(ctx: &Ctx, a: &Attempted) -> Result<LoggedIn, AppError> {
    let note = |user_id: Option<i64>, ok: bool, reason: Option<&'static str>| {
        event(ctx, user_id, &a.login, ok, reason, a.ip, a.user_agent);
    };
    // A place on the hashing lane first: a flood is refused before it costs
    // a database round trip.
    let ticket = pw::reserve(ctx)?;
    let creds = {
        let mut conn = ctx.pg()?;
        accounts::credentials(&mut conn, &a.login)?
    };
    // Failures count against the account, whichever of its names (username
    // or email) was typed: switching between them must not buy more guesses.
    let counted = creds
        .as_ref()
        .map_or(a.login.as_str(), |c| c.username.as_str());
    // Counted before the check, atomically: parallel guesses cannot all
    // pass a limit that none of them has been counted against yet.
    let attempt = match LoginLimits::new(ctx, counted, a.ip).admit(ctx) {
        Ok(attempt) => attempt,
        Err(e) => {
            note(creds.as_ref().map(|c| c.id), false, Some("rate_limited"));
            return Err(e);
        }
    };
    // An unknown login, or an account without a usable password, still
    // costs one verification: same time, same answer.
    let usable = creds.as_ref().filter(|c| pw::usable(&c.password_hash));
    let stored = usable.map_or(ctx.svc.model.dummy_hash.as_str(), |c| {
        c.password_hash.as_str()
    });
    let (matches, attempt) = attempt.check(ctx, || pw::verify(ctx, ticket, &a.password, stored))?;
    let matches = matches && usable.is_some();
    let creds = match creds {
        Some(c) if matches => c,
        other => {
            // The attempt stays counted.
            note(other.map(|c| c.id), false, Some("invalid_credentials"));
            return Err(AppError::InvalidCredentials);
        }
    };
    if UserState::parse(&creds.state) != Some(UserState::Active) {
        // A correct password is no failed guess, whatever the state.
        attempt.given_back(ctx);
        note(Some(creds.id), false, Some("account_inactive"));
        return Err(AppError::AccountInactive(creds.state));
    }
    // Also only after the password: the answer tells nothing to a guesser.
    // An account without an email has nothing to prove and is let in.
    if ctx.config().auth.require_verified_email && creds.email.is_some() && !creds.email_verified {
        attempt.given_back(ctx);
        note(Some(creds.id), false, Some("email_unverified"));
        return Err(AppError::EmailUnverified);
    }
    upgrade_hash_later(ctx, creds.id, &creds.password_hash, &a.password);
    // Only now, after the password: an account with TOTP gets a challenge
    // instead of a session. The address becomes known, and its pair count
    // is cleared, only once auth.mfa.verify has the second factor.
    if let Some(mfa_token) = challenge(ctx, &creds, a.ip, a.user_agent)? {
        attempt.given_back(ctx);
        note(Some(creds.id), false, Some("mfa_required"));
        return Ok(LoggedIn::MfaRequired { mfa_token });
    }
    attempt.succeeded(ctx);

    let tokens = Minted::new(ctx)?;
    let verified = Verified {
        user_id: creds.id,
        epoch: creds.epoch,
    };
    let created = {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        let created = sessions::create(
            &mut tx,
            verified,
            a.ip,
            a.user_agent,
            &["pwd"],
            &tokens.pair(),
        )?;
        if let Ok(session_id) = created {
            account_events::record(&mut tx, &[opened(creds.id, session_id, &["pwd"])])?;
        }
        tx.commit()?;
        created
    };
    // The password was changed or reset, every session ended, or the
    // account disabled while this login was checking: it opens nothing.
    let session_id = match created {
        Ok(id) => id,
        Err(Stale::Inactive(state)) => {
            note(Some(creds.id), false, Some("account_inactive"));
            return Err(AppError::AccountInactive(state));
        }
        Err(Stale::Changed) => {
            note(Some(creds.id), false, Some("credentials_changed"));
            return Err(AppError::InvalidCredentials);
        }
    };
    note(Some(creds.id), true, None);
    Ok(LoggedIn::Session(Opened {
        user_id: creds.id,
        session_id,
        tokens,
    }))
}

/// The `session.created` event of a session just opened.
pub(crate) fn opened(user_id: i64, session_id: i64, amr: &[&str]) -> Event {
    Event::new(
        "session.created",
        user_id,
        serde_json::json!({"session_id": session_id, "amr": amr}),
    )
}

/// A stored hash with a lower cost than configured is re-hashed after a
/// successful login, in the background on the hashing lane (skipped if the
/// lane is busy: the next login tries again).
fn upgrade_hash_later(ctx: &Ctx, user_id: i64, old_hash: &str, password: &Password) {
    let cost = ctx.config().auth.bcrypt_cost;
    if cost_of(old_hash).is_some_and(|c| c >= cost) {
        return;
    }
    let pool = ctx.svc.model.pg.clone();
    let (old, plain) = (old_hash.to_string(), password.expose().to_string());
    let queued = ctx.svc.model.lane.spawn(move || {
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

/// For an account with TOTP, after its password was checked: a single-use
/// `pmf_` token instead of a session, carrying the account's epoch. `None`
/// for an account without TOTP.
fn challenge(
    ctx: &Ctx,
    creds: &Credentials,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<Option<String>, AppError> {
    let mut conn = ctx.pg()?;
    if !store_mfa::enabled(&mut conn.client, creds.id)? {
        return Ok(None);
    }
    let token = Token::generate(TokenKind::Mfa).map_err(mfa::random)?;
    let expires = Utc::now() + ChronoDuration::seconds(CHALLENGE_TTL_S);
    store_mfa::create_challenge(
        &mut conn.client,
        &token.hash(),
        creds.id,
        creds.epoch,
        expires,
        ip,
        user_agent,
    )?;
    Ok(Some(token.into_string()))
}

/// `auth.mfa.verify`: the login's second step.
pub fn verify(ctx: &Ctx, presented: &str, proof: &Proof) -> Result<Opened, AppError> {
    if Token::kind_of(presented) != Some(TokenKind::Mfa) {
        return Err(AppError::Unauthorized);
    }
    let hash = TokenHash::of(presented);
    let tokens = Minted::new(ctx)?;
    let mut conn = ctx.pg()?;
    let mut tx = conn.client.transaction()?;
    let challenge = store_mfa::lock_challenge(&mut tx, &hash, CHALLENGE_MAX_FAILURES)?
        .ok_or(AppError::Unauthorized)?;
    let user_id = challenge.user_id;
    let creds = accounts::credentials_by_id(&mut tx, user_id)?.ok_or(AppError::Unauthorized)?;
    let (ip, user_agent) = (challenge.ip.as_deref(), challenge.user_agent.as_deref());
    let note = |ok: bool, reason: Option<&'static str>| {
        event(
            ctx,
            Some(user_id),
            &creds.username,
            ok,
            reason,
            ip,
            user_agent,
        );
    };
    // Wrong codes count as failed logins of the account, from the address
    // the password came from.
    let attempt = match LoginLimits::new(ctx, &creds.username, ip).admit(ctx) {
        Ok(attempt) => attempt,
        Err(e) => {
            note(false, Some("rate_limited"));
            return Err(e);
        }
    };
    if UserState::parse(&creds.state) != Some(UserState::Active) {
        attempt.given_back(ctx);
        note(false, Some("account_inactive"));
        return Err(AppError::AccountInactive(creds.state.clone()));
    }
    if !mfa::accept(&ctx.config().auth, &mut tx, user_id, proof)? {
        // The failure must stick although the call fails: roll back what
        // the check did, then count it on the challenge.
        drop(tx);
        let mut tx = conn.client.transaction()?;
        store_mfa::challenge_failed(&mut tx, &hash)?;
        tx.commit()?;
        drop(conn);
        // The attempt stays counted.
        note(false, Some("invalid_mfa_code"));
        return Err(AppError::InvalidCredentials);
    }
    store_mfa::challenge_used(&mut tx, &hash)?;
    let verified = Verified {
        user_id,
        epoch: challenge.epoch,
    };
    let created = sessions::create(
        &mut tx,
        verified,
        ip,
        user_agent,
        &["pwd", "otp"],
        &tokens.pair(),
    )?;
    let session_id = match created {
        Ok(id) => id,
        // Revocations delete open challenges, so this is only a challenge
        // made from a password checked before one: it opens nothing.
        Err(_) => {
            drop(tx);
            note(false, Some("credentials_changed"));
            return Err(AppError::Unauthorized);
        }
    };
    account_events::record(&mut tx, &[opened(user_id, session_id, &["pwd", "otp"])])?;
    tx.commit()?;
    drop(conn);
    attempt.succeeded(ctx);
    note(true, None);
    Ok(Opened {
        user_id,
        session_id,
        tokens,
    })
}

/// `auth.refresh`: the presented refresh token is spent and a new pair
/// issued on the same session; a spent one presented again revokes the
/// session (someone holds a copy).
pub fn refresh(ctx: &Ctx, presented: &str) -> Result<Opened, AppError> {
    if Token::kind_of(presented) != Some(TokenKind::Refresh) {
        return Err(AppError::Unauthorized);
    }
    let hash = TokenHash::of(presented);
    let tokens = Minted::new(ctx)?;
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
            let reuse = Event::revoked(state.user_id, &[state.session_id], "refresh_reuse");
            account_events::record(&mut tx, &reuse)?;
            &[Change::Session(state.session_id)]
        } else {
            &[]
        };
        cache::commit(&ctx.svc.model.caches, tx, changes)?;
        if revoked {
            log::warn!(
                "rid={} refresh token reuse: session {} of user {} revoked",
                ctx.rid(),
                state.session_id,
                state.user_id
            );
        }
        return Err(AppError::Unauthorized);
    }
    // Refreshing never carries a session past its longest life.
    let worn_out = state.session_left_s <= 0;
    let active = UserState::parse(&state.user_state) == Some(UserState::Active);
    if state.expired || worn_out || state.session_revoked || !active {
        return Err(AppError::Unauthorized);
    }
    let tokens = tokens.capped(state.session_left_s);
    sessions::rotate(&mut tx, &hash, state.session_id, &tokens.pair())?;
    tx.commit()?;
    Ok(Opened {
        user_id: state.user_id,
        session_id: state.session_id,
        tokens,
    })
}
