//! PostgreSQL queries on sessions, access and refresh tokens and password
//! resets. Tokens are only ever handled here as SHA-256 hashes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::pg::PgConn;
use crate::domain::TokenHash;

/// What an access token stands for, read in one query.
#[derive(Debug, Clone)]
pub struct TokenSession {
    pub session_id: i64,
    pub user_id: i64,
    pub username: String,
    pub state: String,
    pub roles: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
    /// How the session was authenticated: `pwd`, then `otp` with TOTP.
    pub amr: Vec<String>,
}

/// Looks up many tokens in one statement (concurrent misses share it, see
/// `model::coalesce`); the first column says which token a row is for.
const BY_ACCESS: &str = "SELECT t.token_hash, s.id, s.user_id, u.username, u.state, \
       ARRAY(SELECT r.role FROM user_roles r WHERE r.user_id = u.id ORDER BY r.role), \
       t.issued_at, t.expires_at, s.revoked_at IS NOT NULL, s.amr \
     FROM access_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id \
     WHERE t.token_hash = ANY($1)";

/// The sessions behind those of `hashes` that exist: one round trip.
pub fn by_access_tokens(
    conn: &mut PgConn,
    hashes: &[TokenHash],
) -> Result<HashMap<TokenHash, TokenSession>, postgres::Error> {
    let st = conn.prepared(BY_ACCESS)?;
    let raw: Vec<&[u8]> = hashes.iter().map(|h| h.0.as_slice()).collect();
    let mut out = HashMap::with_capacity(hashes.len());
    for row in conn.client.query(&st, &[&raw])? {
        let hash: &[u8] = row.try_get(0)?;
        let Ok(hash) = <[u8; 32]>::try_from(hash) else {
            continue; // not a SHA-256: no token we issued
        };
        let session = TokenSession {
            session_id: row.try_get(1)?,
            user_id: row.try_get(2)?,
            username: row.try_get(3)?,
            state: row.try_get(4)?,
            roles: row.try_get(5)?,
            issued_at: row.try_get(6)?,
            expires_at: row.try_get(7)?,
            revoked: row.try_get(8)?,
            amr: row.try_get(9)?,
        };
        out.insert(TokenHash(hash), session);
    }
    Ok(out)
}

/// One token's session, through the same statement.
pub fn by_access_token(
    conn: &mut PgConn,
    hash: &TokenHash,
) -> Result<Option<TokenSession>, postgres::Error> {
    Ok(by_access_tokens(conn, std::slice::from_ref(hash))?.remove(hash))
}

/// A new token pair for a session.
pub struct Pair<'a> {
    pub access: &'a TokenHash,
    pub access_expires: DateTime<Utc>,
    pub refresh: &'a TokenHash,
    pub refresh_expires: DateTime<Utc>,
}

fn insert_pair(
    client: &mut impl GenericClient,
    session_id: i64,
    pair: &Pair,
) -> Result<(), postgres::Error> {
    client.execute(
        "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        &[&pair.access.0.as_slice(), &session_id, &pair.access_expires],
    )?;
    client.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        &[
            &pair.refresh.0.as_slice(),
            &session_id,
            &pair.refresh_expires,
        ],
    )?;
    Ok(())
}

/// What a login verified about its account: the user, and the account's
/// `auth_epoch` as read before the password (or second factor) was checked.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    pub user_id: i64,
    pub epoch: i64,
}

/// Why [`create`] made no session: the account changed since it was
/// verified (a password change or reset, `logout_all`, MFA removed), or it
/// is no longer active, or it is gone.
#[derive(Debug)]
pub enum Stale {
    Changed,
    Inactive(String),
}

/// Creates a session with its first token pair; returns the session id.
/// `amr`: how the user authenticated (`["pwd"]`, `["pwd", "otp"]`).
///
/// Only while the account is as the login verified it: its row is read
/// under a share lock in this transaction, so a revoking write
/// ([`end_all`], which bumps `auth_epoch` under a row lock) either
/// committed before (the epoch differs: no session) or waits for this
/// transaction and then revokes the session it made.
pub fn create(
    client: &mut impl GenericClient,
    verified: Verified,
    ip: Option<&str>,
    user_agent: Option<&str>,
    amr: &[&str],
    pair: &Pair,
) -> Result<Result<i64, Stale>, postgres::Error> {
    let user_id = verified.user_id;
    let row = client.query_opt(
        "SELECT auth_epoch, state FROM users WHERE id = $1 FOR SHARE",
        &[&user_id],
    )?;
    let Some(row) = row else {
        return Ok(Err(Stale::Changed));
    };
    let (epoch, state): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
    if epoch != verified.epoch {
        return Ok(Err(Stale::Changed));
    }
    if state != crate::domain::UserState::Active.as_str() {
        return Ok(Err(Stale::Inactive(state)));
    }
    let session_id: i64 = client
        .query_one(
            "INSERT INTO sessions (user_id, expires_at, ip, user_agent, amr) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&user_id, &pair.refresh_expires, &ip, &user_agent, &amr],
        )?
        .try_get(0)?;
    insert_pair(client, session_id, pair)?;
    Ok(Ok(session_id))
}

/// A refresh token and its session, locked for the rest of the transaction
/// so two concurrent refreshes of one token are serialised.
#[derive(Debug)]
pub struct RefreshState {
    pub session_id: i64,
    pub user_id: i64,
    pub spent: bool,
    pub expired: bool,
    pub session_revoked: bool,
    pub user_state: String,
    /// Seconds until the session reaches its longest life (negative past it).
    pub session_left_s: i64,
}

/// `session_max_s`: the longest a session may live from its creation.
pub fn lock_refresh(
    client: &mut impl GenericClient,
    hash: &TokenHash,
    session_max_s: i64,
) -> Result<Option<RefreshState>, postgres::Error> {
    let row = client.query_opt(
        "SELECT t.session_id, s.user_id, t.spent_at IS NOT NULL, t.expires_at <= now(), \
                s.revoked_at IS NOT NULL, u.state, \
                FLOOR(EXTRACT(EPOCH FROM \
                    (s.created_at + $2::bigint * interval '1 second' - now())))::bigint \
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id \
         WHERE t.token_hash = $1 FOR UPDATE OF t, s",
        &[&hash.0.as_slice(), &session_max_s],
    )?;
    row.map(|r| {
        Ok(RefreshState {
            session_id: r.try_get(0)?,
            user_id: r.try_get(1)?,
            spent: r.try_get(2)?,
            expired: r.try_get(3)?,
            session_revoked: r.try_get(4)?,
            user_state: r.try_get(5)?,
            session_left_s: r.try_get(6)?,
        })
    })
    .transpose()
}

/// Spends `old` and issues `pair` on the same session.
pub fn rotate(
    client: &mut impl GenericClient,
    old: &TokenHash,
    session_id: i64,
    pair: &Pair,
) -> Result<(), postgres::Error> {
    client.execute(
        "UPDATE refresh_tokens SET spent_at = now() WHERE token_hash = $1",
        &[&old.0.as_slice()],
    )?;
    client.execute(
        "UPDATE sessions SET last_seen_at = now(), expires_at = $2 WHERE id = $1",
        &[&session_id, &pair.refresh_expires],
    )?;
    insert_pair(client, session_id, pair)
}

/// The session a token of either kind belongs to, if the token is known.
pub fn session_of(
    client: &mut impl GenericClient,
    hash: &TokenHash,
    refresh: bool,
) -> Result<Option<(i64, i64)>, postgres::Error> {
    let sql = if refresh {
        "SELECT s.id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
         WHERE t.token_hash = $1"
    } else {
        "SELECT s.id, s.user_id FROM access_tokens t JOIN sessions s ON s.id = t.session_id \
         WHERE t.token_hash = $1"
    };
    client
        .query_opt(sql, &[&hash.0.as_slice()])?
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .transpose()
}

/// Revokes one session; `false` if it was revoked already.
pub fn revoke(client: &mut impl GenericClient, session_id: i64) -> Result<bool, postgres::Error> {
    Ok(client.execute(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        &[&session_id],
    )? == 1)
}

/// Ends every way into a user's account but the session `keep`: open
/// `pmf_` login challenges are deleted, `auth_epoch` is bumped (so a login
/// verified before this commits creates no session, see [`create`]), and
/// every live session is revoked; returns their ids. Call it first in its
/// transaction, before other writes to the user's row: challenges, then
/// the user row, then sessions is the order `auth.mfa.verify` locks them
/// in too, so the two never deadlock.
pub fn end_all(
    client: &mut impl GenericClient,
    user_id: i64,
    keep: Option<i64>,
) -> Result<Vec<i64>, postgres::Error> {
    client.execute("DELETE FROM mfa_challenges WHERE user_id = $1", &[&user_id])?;
    client.execute(
        "UPDATE users SET auth_epoch = auth_epoch + 1 WHERE id = $1",
        &[&user_id],
    )?;
    client
        .query(
            "UPDATE sessions SET revoked_at = now() \
             WHERE user_id = $1 AND revoked_at IS NULL AND ($2::bigint IS NULL OR id <> $2) \
             RETURNING id",
            &[&user_id, &keep],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect()
}

#[derive(Debug)]
pub struct SessionRow {
    pub session_id: i64,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Live (not revoked, not expired) sessions of a user, newest first.
pub fn live(
    client: &mut impl GenericClient,
    user_id: i64,
) -> Result<Vec<SessionRow>, postgres::Error> {
    client
        .query(
            "SELECT id, created_at, last_seen_at, ip, user_agent FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() ORDER BY id DESC",
            &[&user_id],
        )?
        .iter()
        .map(|r| {
            Ok(SessionRow {
                session_id: r.try_get(0)?,
                created_at: r.try_get(1)?,
                last_seen_at: r.try_get(2)?,
                ip: r.try_get(3)?,
                user_agent: r.try_get(4)?,
            })
        })
        .collect()
}

pub fn create_reset(
    client: &mut impl GenericClient,
    user_id: i64,
    hash: &TokenHash,
    expires: DateTime<Utc>,
) -> Result<(), postgres::Error> {
    client.execute(
        "INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        &[&hash.0.as_slice(), &user_id, &expires],
    )?;
    Ok(())
}

/// Spends every outstanding reset token of a user.
pub fn spend_resets(client: &mut impl GenericClient, user_id: i64) -> Result<u64, postgres::Error> {
    client.execute(
        "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
        &[&user_id],
    )
}

/// The user a reset token is for, if it is known, unused and unexpired
/// (without taking it).
pub fn peek_reset(
    client: &mut impl GenericClient,
    hash: &TokenHash,
) -> Result<Option<i64>, postgres::Error> {
    client
        .query_opt(
            "SELECT user_id FROM password_resets \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()",
            &[&hash.0.as_slice()],
        )?
        .map(|row| row.try_get(0))
        .transpose()
}

/// Uses a reset token: the user it was for, if it is known, unused and
/// unexpired. Every outstanding reset of that user is spent with it.
pub fn take_reset(
    client: &mut impl GenericClient,
    hash: &TokenHash,
) -> Result<Option<i64>, postgres::Error> {
    let Some(row) = client.query_opt(
        "SELECT user_id FROM password_resets \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() FOR UPDATE",
        &[&hash.0.as_slice()],
    )?
    else {
        return Ok(None);
    };
    let user_id: i64 = row.try_get(0)?;
    spend_resets(client, user_id)?;
    Ok(Some(user_id))
}
