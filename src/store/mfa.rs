//! PostgreSQL queries on the second factor: the sealed TOTP secret and its
//! last accepted step (`user_mfa`), recovery-code hashes
//! (`mfa_recovery_codes`) and login challenges (`mfa_challenges`, stored
//! only as SHA-256 of the `pmf_` token).

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use crate::domain::TokenHash;
use crate::mfa::sealed::{KeyId, Sealed};

/// A user's TOTP row.
#[derive(Debug)]
pub struct Factor {
    pub sealed: Sealed,
    pub enabled: bool,
    pub last_step: Option<i64>,
}

fn key_id(bytes: &[u8]) -> KeyId {
    let mut id = [0u8; 8];
    if bytes.len() == 8 {
        id.copy_from_slice(bytes);
    }
    id
}

/// `lock`: `FOR UPDATE`, so concurrent enrolments or code checks of one
/// account are serialised.
pub fn factor(
    client: &mut impl GenericClient,
    user_id: i64,
    lock: bool,
) -> Result<Option<Factor>, postgres::Error> {
    let sql = if lock {
        "SELECT totp_sealed, key_id, enabled_at IS NOT NULL, last_step FROM user_mfa \
         WHERE user_id = $1 FOR UPDATE"
    } else {
        "SELECT totp_sealed, key_id, enabled_at IS NOT NULL, last_step FROM user_mfa \
         WHERE user_id = $1"
    };
    client
        .query_opt(sql, &[&user_id])?
        .map(|r| {
            Ok(Factor {
                sealed: Sealed {
                    blob: r.try_get(0)?,
                    key_id: key_id(r.try_get(1)?),
                },
                enabled: r.try_get(2)?,
                last_step: r.try_get(3)?,
            })
        })
        .transpose()
}

/// Whether the account must give a second factor at login.
pub fn enabled(client: &mut impl GenericClient, user_id: i64) -> Result<bool, postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM user_mfa WHERE user_id = $1 AND enabled_at IS NOT NULL",
            &[&user_id],
        )?
        .is_some())
}

/// A new pending secret, replacing a pending one; `false` (nothing
/// written) if TOTP is enabled already.
pub fn set_pending(
    client: &mut impl GenericClient,
    user_id: i64,
    sealed: &Sealed,
) -> Result<bool, postgres::Error> {
    Ok(client.execute(
        "INSERT INTO user_mfa (user_id, totp_sealed, key_id) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE \
           SET totp_sealed = EXCLUDED.totp_sealed, key_id = EXCLUDED.key_id, \
               created_at = now(), last_step = NULL \
           WHERE user_mfa.enabled_at IS NULL",
        &[&user_id, &sealed.blob, &sealed.key_id.as_slice()],
    )? == 1)
}

/// Enables a pending factor with its first accepted step and replaces the
/// recovery codes; `false` if there was no pending factor.
pub fn enable(
    client: &mut impl GenericClient,
    user_id: i64,
    step: i64,
    code_hashes: &[[u8; 32]],
) -> Result<bool, postgres::Error> {
    if client.execute(
        "UPDATE user_mfa SET enabled_at = now(), last_step = $2 \
         WHERE user_id = $1 AND enabled_at IS NULL",
        &[&user_id, &step],
    )? != 1
    {
        return Ok(false);
    }
    client.execute(
        "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
        &[&user_id],
    )?;
    for hash in code_hashes {
        client.execute(
            "INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)",
            &[&user_id, &hash.as_slice()],
        )?;
    }
    Ok(true)
}

/// Accepts time step `step` for the account if it is later than the last
/// accepted one: `false` is a replay (or a code older than one accepted).
pub fn accept_step(
    client: &mut impl GenericClient,
    user_id: i64,
    step: i64,
) -> Result<bool, postgres::Error> {
    Ok(client.execute(
        "UPDATE user_mfa SET last_step = $2 \
         WHERE user_id = $1 AND (last_step IS NULL OR last_step < $2)",
        &[&user_id, &step],
    )? == 1)
}

/// Spends a recovery code: `false` if it is unknown or spent already.
pub fn spend_recovery_code(
    client: &mut impl GenericClient,
    user_id: i64,
    hash: &[u8; 32],
) -> Result<bool, postgres::Error> {
    Ok(client.execute(
        "UPDATE mfa_recovery_codes SET used_at = now() \
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        &[&user_id, &hash.as_slice()],
    )? == 1)
}

/// Removes the factor, its recovery codes and open challenges; `false` if
/// there was no factor (enabled or pending).
pub fn remove(client: &mut impl GenericClient, user_id: i64) -> Result<bool, postgres::Error> {
    client.execute(
        "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
        &[&user_id],
    )?;
    client.execute("DELETE FROM mfa_challenges WHERE user_id = $1", &[&user_id])?;
    Ok(client.execute("DELETE FROM user_mfa WHERE user_id = $1", &[&user_id])? == 1)
}

/// Re-seals a secret (key rotation).
pub fn reseal(
    client: &mut impl GenericClient,
    user_id: i64,
    sealed: &Sealed,
) -> Result<(), postgres::Error> {
    client.execute(
        "UPDATE user_mfa SET totp_sealed = $2, key_id = $3 WHERE user_id = $1",
        &[&user_id, &sealed.blob, &sealed.key_id.as_slice()],
    )?;
    Ok(())
}

/// Every sealed secret whose key is not `keep` (all of them for `None`):
/// what start-up must be able to open.
pub fn sealed_not_under(
    client: &mut impl GenericClient,
    keep: Option<KeyId>,
) -> Result<Vec<(i64, Sealed)>, postgres::Error> {
    let keep = keep.map(|k| k.to_vec());
    client
        .query(
            "SELECT user_id, totp_sealed, key_id FROM user_mfa \
             WHERE $1::bytea IS NULL OR key_id <> $1 ORDER BY user_id",
            &[&keep],
        )?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                Sealed {
                    blob: r.try_get(1)?,
                    key_id: key_id(r.try_get(2)?),
                },
            ))
        })
        .collect()
}

/// A login challenge; the user's expired or finished ones go with it (a
/// user's challenges never pile up). `epoch`: the account's `auth_epoch`
/// its password was verified at; `auth.mfa.verify` opens no session once
/// the account's has moved on.
pub fn create_challenge(
    client: &mut impl GenericClient,
    hash: &TokenHash,
    user_id: i64,
    epoch: i64,
    expires: DateTime<Utc>,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(), postgres::Error> {
    client.execute(
        "DELETE FROM mfa_challenges WHERE user_id = $1 \
         AND (expires_at <= now() OR used_at IS NOT NULL)",
        &[&user_id],
    )?;
    client.execute(
        "INSERT INTO mfa_challenges (token_hash, user_id, expires_at, ip, user_agent, auth_epoch) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &hash.0.as_slice(),
            &user_id,
            &expires,
            &ip,
            &user_agent,
            &epoch,
        ],
    )?;
    Ok(())
}

/// A challenge, locked for the rest of the transaction, if it is known,
/// unexpired, unused, and has fewer than `max_failures` wrong codes.
#[derive(Debug)]
pub struct Challenge {
    pub user_id: i64,
    /// The account's `auth_epoch` when its password was verified.
    pub epoch: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub fn lock_challenge(
    client: &mut impl GenericClient,
    hash: &TokenHash,
    max_failures: i32,
) -> Result<Option<Challenge>, postgres::Error> {
    client
        .query_opt(
            "SELECT user_id, ip, user_agent, auth_epoch FROM mfa_challenges \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() \
               AND failures < $2 FOR UPDATE",
            &[&hash.0.as_slice(), &max_failures],
        )?
        .map(|r| {
            Ok(Challenge {
                user_id: r.try_get(0)?,
                ip: r.try_get(1)?,
                user_agent: r.try_get(2)?,
                epoch: r.try_get(3)?,
            })
        })
        .transpose()
}

pub fn challenge_failed(
    client: &mut impl GenericClient,
    hash: &TokenHash,
) -> Result<(), postgres::Error> {
    client.execute(
        "UPDATE mfa_challenges SET failures = failures + 1 WHERE token_hash = $1",
        &[&hash.0.as_slice()],
    )?;
    Ok(())
}

pub fn challenge_used(
    client: &mut impl GenericClient,
    hash: &TokenHash,
) -> Result<(), postgres::Error> {
    client.execute(
        "UPDATE mfa_challenges SET used_at = now() WHERE token_hash = $1",
        &[&hash.0.as_slice()],
    )?;
    Ok(())
}
