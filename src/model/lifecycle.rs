//! The end of an account's life, and what it holds meanwhile:
//! `user.export` / `auth.export_account` (everything stored about the
//! person, never a hash, token or secret) and `user.delete` /
//! `auth.delete_account` (erasure).
//!
//! Erasure is one PostgreSQL transaction: every session ends first (see
//! `sessions::end_all`), the account row goes and every row of the user with
//! it (`ON DELETE CASCADE`), and a `pending_erasures` row records that its
//! MongoDB documents (profile, login events) are to go too. The caches are
//! told (`Change::User`, `Change::Session` per session), so its tokens are
//! dead on every instance within the feed's second. The MongoDB part is then
//! tried at once; if MongoDB does not answer, the call still succeeds and
//! the erasure thread ([`run`]) finishes it when MongoDB answers, from the
//! durable record, across restarts; and once more a minute after the first
//! time, for a login event an instance had queued before the erasure
//! (`store::lifecycle::SECOND_PASS_S`). Nothing of the user is served
//! meanwhile: every read starts from the PostgreSQL account.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cache::{self, Change, TokenInfo};
use crate::domain::Password;
use crate::error::AppError;
use crate::model::account_events::{self, Event};
use crate::model::email::confirm_password;
use crate::model::mfa::{accept, Proof};
use crate::model::passkey;
use crate::model::user::rfc3339;
use crate::services::Ctx;
use crate::store::lifecycle::{self, Pending};
use crate::store::mongo::Mongo;
use crate::store::{accounts, mfa, pg, sessions};

/// Login events in an export at most, newest first (they are kept
/// `[RETENTION] LOGIN_EVENTS_DAYS`): bounds what one call may cost.
pub const EXPORT_EVENTS_MAX: i64 = 10_000;

/// `user.export`: everything stored about the person, or `NotFound`.
pub fn export(ctx: &Ctx, id: i64) -> Result<Value, AppError> {
    let mongo = ctx.start_mongo(move |m, max_time| {
        let profile = m.profiles(&[id], max_time)?.remove(&id);
        let events = m.recent_events(id, EXPORT_EVENTS_MAX, max_time)?;
        Ok((profile, events))
    });
    let (account, roles, sessions, mfa, pending_email, passkeys) = {
        let mut conn = ctx.pg()?;
        let account = accounts::accounts(&mut conn, &[id])?
            .pop()
            .ok_or(AppError::NotFound)?;
        let mut tx = conn.client.transaction()?;
        let roles = lifecycle::roles(&mut tx, id)?;
        let sessions = lifecycle::sessions(&mut tx, id)?;
        let mfa = lifecycle::mfa(&mut tx, id)?;
        let pending_email = lifecycle::pending_email(&mut tx, id)?;
        let passkeys = passkey::listed(&mut tx, id)?;
        tx.commit()?;
        (account, roles, sessions, mfa, pending_email, passkeys)
    };
    // Everything or an error: a partial export would read as "that is all".
    let (profile, events) = mongo.wait()?;
    let profile: Value = match profile {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| AppError::Internal(format!("a stored profile does not parse: {e}")))?,
        None => json!({}),
    };
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "at": chrono::DateTime::<chrono::Utc>::from_timestamp_millis(e.at_ms).map(rfc3339),
                "ok": e.ok,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "reason": e.reason,
            })
        })
        .collect();
    Ok(json!({
        "account": {
            "user_id": account.id,
            "username": account.username,
            "email": account.email,
            "email_verified": account.email_verified,
            "pending_email": pending_email,
            "state": account.state,
            "created_at": rfc3339(account.created_at),
            "updated_at": rfc3339(account.updated_at),
        },
        "roles": roles,
        "sessions": sessions,
        "mfa": mfa,
        "passkeys": passkeys,
        "profile": profile,
        "login_events": events,
    }))
}

/// `user.delete`: the account erased (see the module's opening).
pub fn delete(ctx: &Ctx, id: i64) -> Result<(), AppError> {
    let pending = {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        let revoked = sessions::end_all(&mut tx, id, None)?;
        let pending = lifecycle::erase(&mut tx, id)?.ok_or(AppError::NotFound)?;
        account_events::record(&mut tx, &deleted(id, &revoked, "operator"))?;
        cache::commit(&ctx.svc.model.caches, tx, &Change::revoked(id, &revoked))?;
        pending
    };
    finish_now(ctx, pending);
    Ok(())
}

/// `auth.delete_account`: the token's own account, with its password, and
/// a second factor when TOTP is on (`code`: a TOTP or a recovery code).
/// A wrong password or code is `InvalidCredentials` and counted like a
/// failed login of the account.
pub fn delete_own(
    ctx: &Ctx,
    info: &TokenInfo,
    password: &Password,
    proof: Option<&Proof>,
) -> Result<(), AppError> {
    confirm_password(ctx, info, password)?;
    let id = info.user_id;
    let pending = {
        let mut conn = ctx.pg()?;
        let mut tx = conn.client.transaction()?;
        let revoked = sessions::end_all(&mut tx, id, None)?;
        if mfa::enabled(&mut tx, id)? {
            let Some(proof) = proof else {
                return Err(AppError::invalid("code", "missing"));
            };
            if !accept(&ctx.config().auth, &mut tx, id, proof)? {
                return Err(AppError::InvalidCredentials);
            }
        }
        let pending = lifecycle::erase(&mut tx, id)?.ok_or(AppError::Unauthorized)?;
        account_events::record(&mut tx, &deleted(id, &revoked, "user"))?;
        cache::commit(&ctx.svc.model.caches, tx, &Change::revoked(id, &revoked))?;
        pending
    };
    finish_now(ctx, pending);
    Ok(())
}

/// The events of an erasure: each session revoked, then `user.deleted`
/// (the log keeps a user's events after the user, without personal data).
fn deleted(id: i64, revoked: &[i64], by: &str) -> Vec<Event> {
    let mut events = Event::revoked(id, revoked, "user_deleted");
    events.push(Event::new("user.deleted", id, json!({ "by": by })));
    events
}

/// Tries the MongoDB part within the call; on failure it stays recorded
/// for the erasure thread, and the call still succeeds.
fn finish_now(ctx: &Ctx, p: Pending) {
    let done = ctx
        .mongo(move |m, _| erase_documents(m, &p))
        .and_then(|()| {
            let mut conn = ctx.pg()?;
            Ok(lifecycle::erased(&mut conn.client, &p)?)
        });
    if let Err(e) = done {
        log::warn!(
            "rid={} erasure of user {}: the MongoDB part is left to the erasure thread",
            ctx.rid(),
            p.user_id
        );
        e.to_json(ctx.rid()); // logs the cause
    }
}

fn erase_documents(m: &Mongo, p: &Pending) -> crate::store::mongo::Result<()> {
    m.erase_user(p.user_id, p.requested_at.timestamp_millis(), !p.id_reused)
}

/// Pending erasures taken per round.
const ROUND: i64 = 100;

/// One round: the MongoDB part of every pending erasure it can do. How
/// many were done.
pub fn finish_pending(pool: &pg::Pool, mongo: &Mongo) -> Result<usize, String> {
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let pending = lifecycle::pending(&mut conn.client, ROUND).map_err(|e| e.to_string())?;
    let mut done = 0;
    for p in &pending {
        erase_documents(mongo, p).map_err(|e| format!("MongoDB: {e}"))?;
        lifecycle::erased(&mut conn.client, p).map_err(|e| e.to_string())?;
        done += 1;
    }
    Ok(done)
}

/// The erasure thread: every second, finishes what MongoDB could not do
/// when it was asked. Runs until `stop` is set.
pub fn run(pool: pg::Pool, mongo: Arc<Mongo>, stop: Arc<AtomicBool>) {
    let mut next = Instant::now();
    let mut failing = false;
    while !stop.load(Ordering::Acquire) {
        if Instant::now() >= next {
            match finish_pending(&pool, &mongo) {
                Ok(0) => failing = false,
                Ok(n) => {
                    failing = false;
                    log::info!("erasure: the MongoDB part of {n} deleted account(s) done");
                }
                Err(e) => {
                    if !failing {
                        log::warn!("erasure: pending MongoDB erasures wait: {e}");
                    }
                    failing = true;
                }
            }
            next = Instant::now() + Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
