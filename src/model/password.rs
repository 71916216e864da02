//! bcrypt on the hashing lane: every hash and verification of the service
//! goes through here, so none of them can run on a request worker. Callers
//! reserve their place first (`ctx.svc.lane.reserve()?`), before any other
//! work, so a full lane refuses a call for the price of parsing it.

use crate::domain::Password;
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

pub fn hash(ctx: &Ctx, ticket: Ticket, password: &Password) -> Result<String, AppError> {
    let cost = ctx.config().auth.bcrypt_cost;
    let plain = password.expose().to_string();
    ticket
        .run(ctx.deadline, move || bcrypt::hash(plain, cost))?
        .map_err(|e| AppError::Internal(format!("bcrypt hash failed: {e}")))
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
    ticket.run(ctx.deadline, move || {
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
}
