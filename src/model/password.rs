//! bcrypt on the hashing lane: every hash and verification of the service
//! goes through here, so none of them can run on a request worker. Callers
//! reserve their place first (`ctx.svc.model.lane.reserve()?`), before any other
//! work, so a full lane refuses a call for the price of parsing it.

use std::time::{Duration, Instant};

use crate::domain::{Invalid, Password, PasswordPolicy};
use crate::error::AppError;
use crate::hashlane::Ticket;
use crate::services::Ctx;

/// The cost a bcrypt hash was made with (`$2b$12$...` -> 12).
pub fn cost_of(hash: &str) -> Option<u32> {
    hash.get(4..6)?.parse().ok()
}

/// Whether `hash` is a bcrypt hash we can verify against.
pub fn is_bcrypt(hash: &str) -> bool {
    let prefix_ok = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
    prefix_ok
        && hash.len() == 60
        && cost_of(hash).is_some_and(|c| (4..=31).contains(&c))
        && hash.get(6..7) == Some("$")
}

/// The stored "hash" of an account without a usable password (import-seed
/// rows whose password is NULL): no bcrypt hash, so no password matches it;
/// a password reset gives the account one.
pub const NO_PASSWORD: &str = "!";

/// The stored "hash" of an account registered without a password (it signs
/// in with passkeys only): no password matches it, and no password reset
/// gives it one.
pub const PASSKEY_ONLY: &str = "!passkey";

/// Whether a stored hash can match a password at all.
pub fn usable(hash: &str) -> bool {
    !hash.starts_with('!')
}

/// Two cost steps above our own is as far as a kept hash may go: each step
/// doubles what verifying it costs at every login (until it is re-hashed).
pub const MAX_COST_ABOVE_CONFIG: u32 = 2;

/// `hash` if it is a bcrypt hash we keep as given: `$2a`/`$2b`/`$2y`, of a
/// cost at most [`MAX_COST_ABOVE_CONFIG`] above `config_cost`.
pub fn acceptable_hash(hash: &str, config_cost: u32) -> Result<&str, Invalid> {
    if !is_bcrypt(hash) {
        return Err(Invalid::new("password_hash", "not_bcrypt"));
    }
    match cost_of(hash) {
        Some(c) if c <= config_cost + MAX_COST_ABOVE_CONFIG => Ok(hash),
        _ => Err(Invalid::new("password_hash", "cost_too_high")),
    }
}

/// A place on the hashing lane, or -32002 at once when it is full: take it
/// before any other work of a call that will hash.
pub fn reserve<'a>(ctx: &Ctx<'a>) -> Result<Ticket<'a>, AppError> {
    ctx.svc.model.lane.reserve()
}

pub fn hash(ctx: &Ctx, ticket: Ticket, password: &Password) -> Result<String, AppError> {
    let cost = ctx.config().auth.bcrypt_cost;
    let plain = password.expose().to_string();
    ticket
        .run(hash_deadline(ctx), move || bcrypt::hash(plain, cost))?
        .map_err(|e| AppError::Internal(format!("bcrypt hash failed: {e}")))
}

/// A password someone chose for an account, not yet checked by the policy.
pub struct Chosen<'a> {
    pub raw: String,
    /// Where it came from (`password`, `new_password`), for the error.
    pub field: &'static str,
    pub username: &'a str,
    pub email: Option<&'a str>,
}

/// Checks `chosen` against the password policy and hashes it, in one job on
/// the lane: zxcvbn costs milliseconds of CPU for a long password, which a
/// flood of account creations must spend at the lane's pace and priority,
/// not on the request workers the token checks need.
pub fn check_and_hash(ctx: &Ctx, ticket: Ticket, chosen: Chosen) -> Result<String, AppError> {
    let policy = PasswordPolicy {
        min_score: ctx.config().auth.password_min_score,
    };
    let cost = ctx.config().auth.bcrypt_cost;
    let Chosen {
        raw,
        field,
        username,
        email,
    } = chosen;
    let (username, email) = (username.to_string(), email.map(str::to_string));
    ticket.run(hash_deadline(ctx), move || {
        let password = policy.check(raw, field, &username, email.as_deref())?;
        bcrypt::hash(password.expose(), cost)
            .map_err(|e| AppError::Internal(format!("bcrypt hash failed: {e}")))
    })?
}

/// The most of a call's time the hash may take: what is left after it
/// stores the account (a hash finished too late to be stored is bcrypt
/// time thrown away in a flood).
pub fn hash_deadline(ctx: &Ctx) -> Instant {
    let reserve = (ctx.config().server.request_timeout / 10).min(Duration::from_millis(300));
    ctx.call
        .deadline
        .checked_sub(reserve)
        .unwrap_or(ctx.call.deadline)
}

/// `false` for a wrong password and for a stored hash bcrypt cannot read.
pub fn verify(
    ctx: &Ctx,
    ticket: Ticket,
    password: &Password,
    hash: &str,
) -> Result<bool, AppError> {
    let plain = password.expose().to_string();
    let hash = hash.to_string();
    ticket.run(hash_deadline(ctx), move || {
        bcrypt::verify(plain, &hash).unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hashes_are_recognised_with_their_cost() {
        let h = bcrypt::hash("correct horse", 4).unwrap();
        assert!(is_bcrypt(&h));
        assert_eq!(cost_of(&h), Some(4));
        assert!(is_bcrypt(&h.replacen("$2b$", "$2y$", 1)));
        assert!(!is_bcrypt("$1$abc"));
        assert!(!is_bcrypt(&h[..59]));
    }

    #[test]
    fn a_kept_hash_may_cost_at_most_two_steps_more_than_ours() {
        let h = bcrypt::hash("correct horse", 6).unwrap();
        assert!(acceptable_hash(&h, 4).is_ok());
        assert_eq!(
            acceptable_hash(&h, 3).unwrap_err(),
            Invalid::new("password_hash", "cost_too_high")
        );
        assert_eq!(
            acceptable_hash("plain text", 12).unwrap_err(),
            Invalid::new("password_hash", "not_bcrypt")
        );
    }
}
