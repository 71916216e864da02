//! PostgreSQL queries on email addresses and their proofs: `pev_` tokens
//! (the `email_verified` flag and pending address changes). Tokens are only
//! ever handled here as SHA-256 hashes.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use crate::domain::TokenHash;

use super::accounts::InsertError;

/// A `pev_` token as issued: for the account's email as it is
/// (`change: false`), or a new address to move to (`change: true`).
#[derive(Debug)]
pub struct Proof {
    pub user_id: i64,
    pub email: String,
    pub change: bool,
}

pub fn create(
    client: &mut impl GenericClient,
    hash: &TokenHash,
    proof: &Proof,
    expires: DateTime<Utc>,
) -> Result<(), postgres::Error> {
    client.execute(
        "INSERT INTO email_verifications (token_hash, user_id, email, change, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &hash.0.as_slice(),
            &proof.user_id,
            &proof.email,
            &proof.change,
            &expires,
        ],
    )?;
    Ok(())
}

/// Spends every outstanding token of a user of one kind: one live token
/// per account and purpose.
pub fn spend(
    client: &mut impl GenericClient,
    user_id: i64,
    change: bool,
) -> Result<u64, postgres::Error> {
    client.execute(
        "UPDATE email_verifications SET used_at = now() \
         WHERE user_id = $1 AND change = $2 AND used_at IS NULL",
        &[&user_id, &change],
    )
}

/// Uses a token: what it proves, if it is known, unused and unexpired.
/// Locked until the caller's transaction ends, so it is used once.
pub fn take(
    client: &mut impl GenericClient,
    hash: &TokenHash,
) -> Result<Option<Proof>, postgres::Error> {
    let Some(row) = client.query_opt(
        "UPDATE email_verifications SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() \
         RETURNING user_id, email, change",
        &[&hash.0.as_slice()],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(Proof {
        user_id: row.try_get(0)?,
        email: row.try_get(1)?,
        change: row.try_get(2)?,
    }))
}

/// Whether an account has `email` now.
pub fn taken(client: &mut impl GenericClient, email: &str) -> Result<bool, postgres::Error> {
    Ok(client
        .query_opt("SELECT 1 FROM users WHERE email = $1", &[&email])?
        .is_some())
}

/// Marks `email` as proven, if it is still the account's email; `false`
/// otherwise (it changed since the token was issued).
pub fn mark_verified(
    client: &mut impl GenericClient,
    user_id: i64,
    email: &str,
) -> Result<bool, postgres::Error> {
    Ok(client.execute(
        "UPDATE users SET email_verified = true, updated_at = now() \
         WHERE id = $1 AND email = $2",
        &[&user_id, &email],
    )? == 1)
}

/// Sets the account's email (`None` removes it) and whether it is proven.
/// A taken address is `Conflict("email")`; `Ok(false)`: no such account.
pub fn set_email(
    client: &mut impl GenericClient,
    user_id: i64,
    email: Option<&str>,
    verified: bool,
) -> Result<bool, InsertError> {
    Ok(client.execute(
        "UPDATE users SET email = $2, email_verified = $3, updated_at = now() WHERE id = $1",
        &[&user_id, &email, &verified],
    )? == 1)
}
