//! PostgreSQL queries on a person's data as a whole: what `user.export`
//! reads (never a hash, token or secret), and erasure: the account row
//! (every other row of the user goes with it, `ON DELETE CASCADE`) and the
//! durable record of the MongoDB part still to do (`pending_erasures`).

use chrono::{DateTime, Utc};
use postgres::GenericClient;
use serde::Serialize;

/// A role and when it was granted.
#[derive(Debug, Serialize)]
pub struct RoleRow {
    pub role: String,
    pub granted_at: String,
}

/// A session as exported: live, expired or revoked.
#[derive(Debug, Serialize)]
pub struct SessionRow {
    pub session_id: i64,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: Vec<String>,
}

/// The second factor as exported: whether and since when, never the
/// secret or the recovery codes.
#[derive(Debug, Serialize)]
pub struct MfaRow {
    pub totp: bool,
    pub totp_pending: bool,
    pub enabled_at: Option<String>,
    pub recovery_codes_left: i64,
}

/// A pending change of email (the address only, never the token).
#[derive(Debug, Serialize)]
pub struct PendingEmail {
    pub email: String,
    pub requested_at: String,
    pub expires_at: String,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn roles(
    client: &mut impl GenericClient,
    user_id: i64,
) -> Result<Vec<RoleRow>, postgres::Error> {
    client
        .query(
            "SELECT role, granted_at FROM user_roles WHERE user_id = $1 ORDER BY role",
            &[&user_id],
        )?
        .iter()
        .map(|r| {
            Ok(RoleRow {
                role: r.try_get(0)?,
                granted_at: time(r.try_get(1)?),
            })
        })
        .collect()
}

/// Every session row the user still has (retention deletes dead ones
/// after `[RETENTION] SESSIONS_DAYS`), newest first.
pub fn sessions(
    client: &mut impl GenericClient,
    user_id: i64,
) -> Result<Vec<SessionRow>, postgres::Error> {
    client
        .query(
            "SELECT id, created_at, last_seen_at, expires_at, revoked_at, ip, user_agent, amr \
             FROM sessions WHERE user_id = $1 ORDER BY id DESC",
            &[&user_id],
        )?
        .iter()
        .map(|r| {
            Ok(SessionRow {
                session_id: r.try_get(0)?,
                created_at: time(r.try_get(1)?),
                last_seen_at: time(r.try_get(2)?),
                expires_at: time(r.try_get(3)?),
                revoked_at: r.try_get::<_, Option<DateTime<Utc>>>(4)?.map(time),
                ip: r.try_get(5)?,
                user_agent: r.try_get(6)?,
                amr: r.try_get(7)?,
            })
        })
        .collect()
}

pub fn mfa(client: &mut impl GenericClient, user_id: i64) -> Result<MfaRow, postgres::Error> {
    let row = client.query_one(
        "SELECT \
           EXISTS (SELECT 1 FROM user_mfa WHERE user_id = $1 AND enabled_at IS NOT NULL), \
           EXISTS (SELECT 1 FROM user_mfa WHERE user_id = $1 AND enabled_at IS NULL), \
           (SELECT enabled_at FROM user_mfa WHERE user_id = $1), \
           (SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL)",
        &[&user_id],
    )?;
    Ok(MfaRow {
        totp: row.try_get(0)?,
        totp_pending: row.try_get(1)?,
        enabled_at: row.try_get::<_, Option<DateTime<Utc>>>(2)?.map(time),
        recovery_codes_left: row.try_get(3)?,
    })
}

/// The latest live change of email, if any.
pub fn pending_email(
    client: &mut impl GenericClient,
    user_id: i64,
) -> Result<Option<PendingEmail>, postgres::Error> {
    client
        .query_opt(
            "SELECT email, created_at, expires_at FROM email_verifications \
             WHERE user_id = $1 AND change AND used_at IS NULL AND expires_at > now() \
             ORDER BY created_at DESC LIMIT 1",
            &[&user_id],
        )?
        .map(|r| {
            Ok(PendingEmail {
                email: r.try_get(0)?,
                requested_at: time(r.try_get(1)?),
                expires_at: time(r.try_get(2)?),
            })
        })
        .transpose()
}

/// Deletes the account and, by cascade, every row of it; records that its
/// MongoDB documents are to be erased. `None`: no such account.
pub fn erase(
    client: &mut impl GenericClient,
    user_id: i64,
) -> Result<Option<Pending>, postgres::Error> {
    if client.execute("DELETE FROM users WHERE id = $1", &[&user_id])? == 0 {
        return Ok(None);
    }
    let requested_at = client
        .query_one(
            "INSERT INTO pending_erasures (user_id) VALUES ($1) \
             ON CONFLICT (user_id) DO UPDATE SET requested_at = now(), first_done_at = NULL \
             RETURNING requested_at",
            &[&user_id],
        )?
        .try_get(0)?;
    Ok(Some(Pending {
        user_id,
        requested_at,
        id_reused: false,
    }))
}

/// A MongoDB erasure still to do: the user, and when it was asked for
/// (login events up to then are the erased account's).
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub user_id: i64,
    pub requested_at: DateTime<Utc>,
    /// An account has the id again (`user.import` keeping it): its
    /// profile is its own, only the older events go.
    pub id_reused: bool,
}

/// What to do now: erasures never done, and those done once more than
/// [`SECOND_PASS_S`] ago.
pub fn pending(
    client: &mut impl GenericClient,
    limit: i64,
) -> Result<Vec<Pending>, postgres::Error> {
    client
        .query(
            "SELECT p.user_id, p.requested_at, EXISTS (SELECT 1 FROM users u WHERE u.id = p.user_id) \
             FROM pending_erasures p \
             WHERE p.first_done_at IS NULL \
                OR p.first_done_at < now() - make_interval(secs => $2) \
             ORDER BY p.requested_at LIMIT $1",
            &[&limit, &SECOND_PASS_S],
        )?
        .iter()
        .map(|r| {
            Ok(Pending {
                user_id: r.try_get(0)?,
                requested_at: r.try_get(1)?,
                id_reused: r.try_get(2)?,
            })
        })
        .collect()
}

/// Seconds between the two passes of an erasure's MongoDB part: a login
/// event of the account queued in some instance before the erasure (its
/// writer waits for MongoDB) may be written after the first pass.
pub const SECOND_PASS_S: f64 = 60.0;

/// The MongoDB part of `p` was just done: the first pass is noted, the
/// record removed after the second (unless it was asked for again since).
pub fn erased(client: &mut impl GenericClient, p: &Pending) -> Result<(), postgres::Error> {
    client.execute(
        "DELETE FROM pending_erasures WHERE user_id = $1 AND requested_at = $2 \
         AND first_done_at < now() - make_interval(secs => $3)",
        &[&p.user_id, &p.requested_at, &SECOND_PASS_S],
    )?;
    client.execute(
        "UPDATE pending_erasures SET first_done_at = now() \
         WHERE user_id = $1 AND requested_at = $2 AND first_done_at IS NULL",
        &[&p.user_id, &p.requested_at],
    )?;
    Ok(())
}
