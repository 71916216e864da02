//! PostgreSQL queries on passkeys (`passkeys`: webauthn-rs's credential as
//! JSON, with its counter and backup flag beside it), the ceremonies begun
//! and not yet finished (`passkey_challenges`) and the `pre_` enrolment
//! tokens of accounts without a password (`passkey_enrolments`, SHA-256
//! only).

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use crate::domain::TokenHash;

/// A stored passkey, as a ceremony needs it.
pub struct Stored {
    pub id: i64,
    pub user_id: i64,
    /// webauthn-rs's `Passkey`, serialised.
    pub credential: String,
}

/// A passkey as its owner sees it listed.
pub struct Listed {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub backed_up: bool,
}

/// A new passkey.
pub struct NewPasskey<'a> {
    pub user_id: i64,
    pub credential_id: &'a [u8],
    pub name: &'a str,
    pub credential: &'a str,
    pub sign_count: i64,
    pub backed_up: bool,
}

/// The passkey's id, or `None` if its credential id is already registered
/// (to this account or another).
pub fn insert(
    client: &mut impl GenericClient,
    new: &NewPasskey,
) -> Result<Option<i64>, postgres::Error> {
    client
        .query_opt(
            "INSERT INTO passkeys (user_id, credential_id, name, credential, sign_count, backed_up) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING RETURNING id",
            &[
                &new.user_id,
                &new.credential_id,
                &new.name,
                &new.credential,
                &new.sign_count,
                &new.backed_up,
            ],
        )?
        .map(|r| r.try_get(0))
        .transpose()
}

fn stored(r: &postgres::Row) -> Result<Stored, postgres::Error> {
    Ok(Stored {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        credential: r.try_get(2)?,
    })
}

/// Every passkey of a user, oldest first.
pub fn of_user(
    client: &mut impl GenericClient,
    user_id: i64,
) -> Result<Vec<Stored>, postgres::Error> {
    client
        .query(
            "SELECT id, user_id, credential FROM passkeys WHERE user_id = $1 ORDER BY id",
            &[&user_id],
        )?
        .iter()
        .map(stored)
        .collect()
}

/// The passkey with this credential id, whoever owns it.
pub fn by_credential_id(
    client: &mut impl GenericClient,
    credential_id: &[u8],
) -> Result<Option<Stored>, postgres::Error> {
    client
        .query_opt(
            "SELECT id, user_id, credential FROM passkeys WHERE credential_id = $1",
            &[&credential_id],
        )?
        .as_ref()
        .map(stored)
        .transpose()
}

/// A user's passkeys as listed to them (`auth.passkey.list`, exports).
pub fn list(client: &mut impl GenericClient, user_id: i64) -> Result<Vec<Listed>, postgres::Error> {
    client
        .query(
            "SELECT id, name, created_at, last_used_at, backed_up FROM passkeys \
             WHERE user_id = $1 ORDER BY id",
            &[&user_id],
        )?
        .iter()
        .map(|r| {
            Ok(Listed {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                created_at: r.try_get(2)?,
                last_used_at: r.try_get(3)?,
                backed_up: r.try_get(4)?,
            })
        })
        .collect()
}

/// A login with passkey `id` moved its counter to `sign_count`: stored,
/// unless the stored counter is already there or past it (a cloned
/// authenticator, or a concurrent login with the same one). An
/// authenticator without a counter (0 both times) always passes. Whether
/// it was stored.
pub fn used(
    client: &mut impl GenericClient,
    id: i64,
    credential: &str,
    sign_count: i64,
    backed_up: bool,
) -> Result<bool, postgres::Error> {
    Ok(client.execute(
        "UPDATE passkeys SET credential = $2, sign_count = $3, backed_up = $4, \
         last_used_at = now() \
         WHERE id = $1 AND (sign_count < $3 OR ($3 = 0 AND sign_count = 0))",
        &[&id, &credential, &sign_count, &backed_up],
    )? == 1)
}

/// Locks the account's row (`FOR UPDATE`): its password hash, if it exists.
pub fn lock_owner(
    client: &mut impl GenericClient,
    user_id: i64,
) -> Result<Option<String>, postgres::Error> {
    client
        .query_opt(
            "SELECT password_hash FROM users WHERE id = $1 FOR UPDATE",
            &[&user_id],
        )?
        .map(|r| r.try_get(0))
        .transpose()
}

/// Removes one passkey of a user; whether there was one.
pub fn remove(
    client: &mut impl GenericClient,
    user_id: i64,
    id: i64,
) -> Result<bool, postgres::Error> {
    Ok(client.execute(
        "DELETE FROM passkeys WHERE id = $1 AND user_id = $2",
        &[&id, &user_id],
    )? == 1)
}

/// Removes every passkey of a user and every ceremony open for it; the
/// ids of the passkeys removed.
pub fn remove_all(
    client: &mut impl GenericClient,
    user_id: i64,
) -> Result<Vec<i64>, postgres::Error> {
    client.execute(
        "DELETE FROM passkey_challenges WHERE user_id = $1",
        &[&user_id],
    )?;
    client
        .query(
            "DELETE FROM passkeys WHERE user_id = $1 RETURNING id",
            &[&user_id],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect()
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Register,
    /// A login that named its account.
    Login,
    /// A login that did not (discoverable credentials).
    Discoverable,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::Login => "login",
            Kind::Discoverable => "discoverable",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Register, Kind::Login, Kind::Discoverable]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A ceremony taken back by its finish call.
pub struct Challenge {
    pub kind: Kind,
    pub user_id: Option<i64>,
    /// webauthn-rs's ceremony state, serialised.
    pub state: String,
}

pub fn create_challenge(
    client: &mut impl GenericClient,
    challenge_id: &str,
    kind: Kind,
    user_id: Option<i64>,
    state: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), postgres::Error> {
    client.execute(
        "INSERT INTO passkey_challenges (challenge_id, kind, user_id, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&challenge_id, &kind.as_str(), &user_id, &state, &expires_at],
    )?;
    Ok(())
}

/// Takes (deletes) a ceremony: a second finish with the same id finds
/// nothing. `None` also for an expired one.
pub fn take_challenge(
    client: &mut impl GenericClient,
    challenge_id: &str,
) -> Result<Option<Challenge>, postgres::Error> {
    let Some(row) = client.query_opt(
        "DELETE FROM passkey_challenges WHERE challenge_id = $1 \
         RETURNING kind, user_id, state, expires_at > now()",
        &[&challenge_id],
    )?
    else {
        return Ok(None);
    };
    let live: bool = row.try_get(3)?;
    let kind: &str = row.try_get(0)?;
    Ok(match Kind::parse(kind) {
        Some(kind) if live => Some(Challenge {
            kind,
            user_id: row.try_get(1)?,
            state: row.try_get(2)?,
        }),
        _ => None,
    })
}

pub fn create_enrolment(
    client: &mut impl GenericClient,
    hash: &TokenHash,
    user_id: i64,
    expires_at: DateTime<Utc>,
) -> Result<(), postgres::Error> {
    client.execute(
        "INSERT INTO passkey_enrolments (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        &[&hash.0.as_slice(), &user_id, &expires_at],
    )?;
    Ok(())
}

/// The account a live enrolment token is for.
pub fn enrolment_user(
    client: &mut impl GenericClient,
    hash: &TokenHash,
) -> Result<Option<i64>, postgres::Error> {
    client
        .query_opt(
            "SELECT user_id FROM passkey_enrolments WHERE token_hash = $1 AND expires_at > now()",
            &[&hash.0.as_slice()],
        )?
        .map(|r| r.try_get(0))
        .transpose()
}

/// Spends an enrolment token: the account it was for, if it was live.
pub fn spend_enrolment(
    client: &mut impl GenericClient,
    hash: &TokenHash,
) -> Result<Option<i64>, postgres::Error> {
    client
        .query_opt(
            "DELETE FROM passkey_enrolments WHERE token_hash = $1 RETURNING user_id, \
             expires_at > now()",
            &[&hash.0.as_slice()],
        )?
        .map(|r| Ok::<_, postgres::Error>((r.try_get::<_, i64>(0)?, r.try_get::<_, bool>(1)?)))
        .transpose()
        .map(|o| o.and_then(|(id, live)| live.then_some(id)))
}
