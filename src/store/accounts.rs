//! PostgreSQL queries on accounts and their roles (the `users` and
//! `user_roles` tables). Reads used on hot paths go through the connection's
//! prepared statements; writes take the caller's transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::{GenericClient, Row};

use super::pg::PgConn;

/// An account as the User view needs it (no password hash).
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub state: String,
    pub roles: Vec<String>,
    /// TOTP is enabled (confirmed, not merely pending).
    pub totp: bool,
    /// How many passkeys the account has.
    pub passkeys: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What login needs. `Debug` hides the hash.
pub struct Credentials {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub password_hash: String,
    pub state: String,
    /// `users.auth_epoch` when read: see `sessions::create`.
    pub epoch: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ id: {}, password_hash: *** }}", self.id)
    }
}

/// Why an insert did not happen.
#[derive(Debug)]
pub enum InsertError {
    /// A unique constraint: `user_id`, `username` or `email`.
    Conflict(&'static str),
    Db(postgres::Error),
}

impl From<postgres::Error> for InsertError {
    fn from(e: postgres::Error) -> InsertError {
        match conflict_field(&e) {
            Some(field) => InsertError::Conflict(field),
            None => InsertError::Db(e),
        }
    }
}

/// The field a unique violation is about, if it is one.
pub fn conflict_field(e: &postgres::Error) -> Option<&'static str> {
    let db = e.as_db_error()?;
    if db.code() != &SqlState::UNIQUE_VIOLATION {
        return None;
    }
    match db.constraint() {
        Some("users_pkey") => Some("user_id"),
        Some("users_username_key") => Some("username"),
        Some("users_email_key") => Some("email"),
        _ => None,
    }
}

/// The columns `account_from` reads, roles aggregated in the same query.
macro_rules! select_accounts {
    () => {
        "SELECT u.id, u.username, u.email, u.state, u.created_at, u.updated_at, \
         ARRAY(SELECT r.role FROM user_roles r WHERE r.user_id = u.id ORDER BY r.role), \
         EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = u.id AND m.enabled_at IS NOT NULL), \
         u.email_verified, \
         (SELECT count(*) FROM passkeys p WHERE p.user_id = u.id) \
         FROM users u"
    };
}

const BY_IDS: &str = concat!(select_accounts!(), " WHERE u.id = ANY($1)");

/// `user.search`'s filters, shared by its two orders below.
macro_rules! search_filters {
    () => {
        " WHERE u.id > $1 \
         AND ($2::text IS NULL OR u.username LIKE $2 OR u.email LIKE $2) \
         AND ($3::text IS NULL OR u.state = $3) \
         AND ($4::text IS NULL OR EXISTS \
              (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = $4)) \
         AND ($5::timestamptz IS NULL OR u.created_at > $5) \
         AND ($6::timestamptz IS NULL OR u.created_at < $6)"
    };
}

const SEARCH: &str = concat!(
    select_accounts!(),
    search_filters!(),
    " ORDER BY u.id LIMIT $7"
);

/// [`SEARCH`] for a prefix few accounts share. Sorting by an expression of
/// the id keeps PostgreSQL from walking the primary key in id order and
/// filtering, a plan it picks when it believes the matches are spread
/// evenly: on 1,000,000 seeded accounts `bench_999` matched near id 1,000,
/// 10,000 and 100,000 only, and that walk took 687 ms. With this order it
/// reads the few matches through the prefix indexes and sorts them.
const SEARCH_SPARSE: &str = concat!(
    select_accounts!(),
    search_filters!(),
    " ORDER BY u.id + 0 LIMIT $7"
);
/// At this many matches (usernames and emails counted apart) a prefix is
/// common: the walk in id order meets a page of them soon, and fetching and
/// sorting them all would cost more. Counted along each prefix index in its
/// own order (`USING ~<~`), so the count stops at the cap: a few ms on the
/// 1,000,000 accounts, where a plain count chose bitmaps or a sequential scan
/// and took up to 63 ms for `bench_5`. At 2,000 the three-digit prefixes
/// (1,111 accounts, 2,222 counted) still walked, up to 35 ms each.
const COMMON_PREFIX: i64 = 4000;
const COUNT_PREFIX: &str = "SELECT \
     (SELECT count(*) FROM (SELECT 1 FROM users WHERE username LIKE $1 \
         ORDER BY username USING ~<~ LIMIT $2) a) + \
     (SELECT count(*) FROM (SELECT 1 FROM users WHERE email LIKE $1 \
         ORDER BY email USING ~<~ LIMIT $2) b)";

fn account_from(row: &Row) -> Result<Account, postgres::Error> {
    Ok(Account {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        email: row.try_get(2)?,
        state: row.try_get(3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
        roles: row.try_get(6)?,
        totp: row.try_get(7)?,
        email_verified: row.try_get(8)?,
        passkeys: row.try_get(9)?,
    })
}

/// The accounts among `ids` that exist, in no particular order: one query.
pub fn accounts(conn: &mut PgConn, ids: &[i64]) -> Result<Vec<Account>, postgres::Error> {
    let st = conn.prepared(BY_IDS)?;
    conn.client
        .query(&st, &[&ids])?
        .iter()
        .map(account_from)
        .collect()
}

const CREDENTIALS: &str = "SELECT id, username, email, password_hash, state, auth_epoch, \
     email_verified FROM users WHERE username = $1 OR email = $1";

/// Looks a login up by username or email (both stored lower-cased).
pub fn credentials(conn: &mut PgConn, login: &str) -> Result<Option<Credentials>, postgres::Error> {
    let st = conn.prepared(CREDENTIALS)?;
    let rows = conn.client.query(&st, &[&login])?;
    // A username never contains '@' and an email always does, so at most
    // one row matches; prefer the username match regardless.
    let row = rows
        .iter()
        .find(|r| r.try_get::<_, &str>(1).is_ok_and(|name| name == login))
        .or_else(|| rows.first());
    row.map(credentials_from).transpose()
}

pub fn credentials_by_id(
    client: &mut impl GenericClient,
    id: i64,
) -> Result<Option<Credentials>, postgres::Error> {
    client
        .query_opt(
            "SELECT id, username, email, password_hash, state, auth_epoch, email_verified \
             FROM users WHERE id = $1",
            &[&id],
        )?
        .as_ref()
        .map(credentials_from)
        .transpose()
}

fn credentials_from(row: &Row) -> Result<Credentials, postgres::Error> {
    Ok(Credentials {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        email: row.try_get(2)?,
        password_hash: row.try_get(3)?,
        state: row.try_get(4)?,
        epoch: row.try_get(5)?,
        email_verified: row.try_get(6)?,
    })
}

pub fn id_by_login(
    client: &mut impl GenericClient,
    login: &str,
) -> Result<Option<i64>, postgres::Error> {
    client
        .query_opt(
            "SELECT id FROM users WHERE username = $1 OR email = $1",
            &[&login],
        )?
        .map(|r| r.try_get(0))
        .transpose()
}

pub fn exists(client: &mut impl GenericClient, id: i64) -> Result<bool, postgres::Error> {
    Ok(client
        .query_opt("SELECT 1 FROM users WHERE id = $1", &[&id])?
        .is_some())
}

/// Which of `username` / `email` is taken already (a cheap pre-check before
/// spending a bcrypt hash; the unique constraints still decide).
pub fn taken(
    client: &mut impl GenericClient,
    username: &str,
    email: Option<&str>,
) -> Result<Option<&'static str>, postgres::Error> {
    let row = client.query_one(
        "SELECT EXISTS (SELECT 1 FROM users WHERE username = $1), \
                EXISTS (SELECT 1 FROM users WHERE email = $2)",
        &[&username, &email],
    )?;
    Ok(if row.try_get(0)? {
        Some("username")
    } else if row.try_get(1)? {
        Some("email")
    } else {
        None
    })
}

pub struct NewAccount<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    /// The email is known to be proven already (`user.import`).
    pub email_verified: bool,
    pub password_hash: &'a str,
    pub state: &'a str,
    pub roles: &'a [String],
}

/// An id for an account to be inserted later with it (ids are never reused).
pub fn next_id(client: &mut impl GenericClient) -> Result<i64, postgres::Error> {
    client
        .query_one("SELECT nextval(pg_get_serial_sequence('users', 'id'))", &[])?
        .try_get(0)
}

pub fn insert(client: &mut impl GenericClient, new: &NewAccount) -> Result<i64, InsertError> {
    insert_kept(client, new, &Kept::default())
}

/// What an account moved from elsewhere keeps: its id and its times.
#[derive(Debug, Default, Clone, Copy)]
pub struct Kept {
    pub id: Option<i64>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Inserts an account keeping `kept`'s id and times where given. Before
/// inserting a kept id, call [`allocate_above`] so that ids handed out later
/// never collide with it.
pub fn insert_kept(
    client: &mut impl GenericClient,
    new: &NewAccount,
    kept: &Kept,
) -> Result<i64, InsertError> {
    // A name another account released lately is held from new accounts.
    if super::identity::held(client, new.username, None)? {
        return Err(InsertError::Conflict("username"));
    }
    let columns = "username, email, password_hash, state, created_at, updated_at, email_verified";
    let values = "$1, $2, $3, $4, COALESCE($5, now()), COALESCE($6, $5, now()), $7";
    let verified = new.email_verified && new.email.is_some();
    let fields: [&(dyn postgres::types::ToSql + Sync); 7] = [
        &new.username,
        &new.email,
        &new.password_hash,
        &new.state,
        &kept.created_at,
        &kept.updated_at,
        &verified,
    ];
    let row = match &kept.id {
        None => client.query_one(
            &format!("INSERT INTO users ({columns}) VALUES ({values}) RETURNING id"),
            &fields,
        )?,
        Some(id) => {
            let mut with_id = fields.to_vec();
            with_id.push(id);
            client.query_one(
                &format!("INSERT INTO users ({columns}, id) VALUES ({values}, $8) RETURNING id"),
                &with_id,
            )?
        }
    };
    let id: i64 = row.try_get(0)?;
    // Again: a rename that released this name may have committed while
    // the insert waited for it (its hold is visible to this statement).
    if super::identity::held(client, new.username, None)? {
        return Err(InsertError::Conflict("username"));
    }
    for role in new.roles {
        client.execute(
            "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, role],
        )?;
    }
    Ok(id)
}

/// What a batch of new accounts would collide with: ids, usernames and
/// emails taken, and usernames held (see `identity::held`).
#[derive(Debug, Default)]
pub struct Taken {
    pub ids: HashSet<i64>,
    pub usernames: HashSet<String>,
    pub emails: HashSet<String>,
    pub held: HashSet<String>,
}

/// [`Taken`] for a whole batch, in one round trip.
pub fn taken_many(
    client: &mut impl GenericClient,
    ids: &[i64],
    usernames: &[&str],
    emails: &[&str],
) -> Result<Taken, postgres::Error> {
    let rows = client.query(
        "SELECT 'user_id', id::text FROM users WHERE id = ANY($1) \
         UNION ALL SELECT 'username', username FROM users WHERE username = ANY($2) \
         UNION ALL SELECT 'email', email FROM users WHERE email = ANY($3) \
         UNION ALL SELECT 'held', username FROM username_holds \
                   WHERE username = ANY($2) AND until > now()",
        &[&ids, &usernames, &emails],
    )?;
    let mut taken = Taken::default();
    for row in rows {
        let (kind, value): (&str, String) = (row.try_get(0)?, row.try_get(1)?);
        match kind {
            "user_id" => {
                taken.ids.extend(value.parse::<i64>().ok());
            }
            "username" => {
                taken.usernames.insert(value);
            }
            "email" => {
                taken.emails.insert(value);
            }
            _ => {
                taken.held.insert(value);
            }
        }
    }
    Ok(taken)
}

/// `n` ids for accounts to be inserted with them.
pub fn next_ids(client: &mut impl GenericClient, n: usize) -> Result<Vec<i64>, postgres::Error> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    client
        .query(
            "SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, $1::bigint)",
            &[&n],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect()
}

/// Inserts the accounts of a batch (each with its id chosen already, see
/// [`next_ids`] and [`allocate_above`]) and their roles, in two statements
/// whatever their number. A row that would break a unique constraint is
/// left out, not an error: the ids inserted are returned, and the caller
/// tells each row left out why ([`taken_many`]).
pub fn insert_many(
    client: &mut impl GenericClient,
    rows: &[(i64, NewAccount)],
) -> Result<HashSet<i64>, postgres::Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let usernames: Vec<&str> = rows.iter().map(|r| r.1.username).collect();
    let emails: Vec<Option<&str>> = rows.iter().map(|r| r.1.email).collect();
    let hashes: Vec<&str> = rows.iter().map(|r| r.1.password_hash).collect();
    let states: Vec<&str> = rows.iter().map(|r| r.1.state).collect();
    let verified: Vec<bool> = rows
        .iter()
        .map(|r| r.1.email_verified && r.1.email.is_some())
        .collect();
    let inserted: HashSet<i64> = client
        .query(
            "INSERT INTO users (id, username, email, password_hash, state, email_verified) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], \
                                  $5::text[], $6::bool[]) \
             ON CONFLICT DO NOTHING RETURNING id",
            &[&ids, &usernames, &emails, &hashes, &states, &verified],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let (mut role_ids, mut roles) = (Vec::new(), Vec::new());
    for (id, new) in rows.iter().filter(|r| inserted.contains(&r.0)) {
        for role in new.roles {
            role_ids.push(*id);
            roles.push(role.as_str());
        }
    }
    if !roles.is_empty() {
        client.execute(
            "INSERT INTO user_roles (user_id, role) \
             SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&role_ids, &roles],
        )?;
    }
    Ok(inserted)
}

/// Deletes accounts inserted in the caller's transaction that must not
/// stay (their rows in other tables go with them).
pub fn delete_many(client: &mut impl GenericClient, ids: &[i64]) -> Result<(), postgres::Error> {
    client.execute("DELETE FROM users WHERE id = ANY($1)", &[&ids])?;
    Ok(())
}

/// Arbitrary, fixed: the advisory lock that serialises moving the id sequence.
const ID_LOCK_KEY: i64 = 0x7072_6f66_6964;

/// Moves the id sequence so the next id handed out is above `id` (it never
/// moves back). `setval` takes effect at once, whatever becomes of the
/// caller's transaction, so it runs in a short transaction of its own, under
/// a lock: two importers reading the sequence together cannot lower it.
/// Call it before inserting the kept id: a registration starting after this
/// returns can no longer be handed that id.
pub fn allocate_above(client: &mut postgres::Client, id: i64) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ID_LOCK_KEY])?;
    tx.execute(
        "SELECT setval(s, GREATEST($1, COALESCE(pg_sequence_last_value(s), 0))) \
         FROM (SELECT pg_get_serial_sequence('users', 'id')::regclass AS s) q",
        &[&id],
    )?;
    tx.commit()
}

pub fn set_password_hash(
    client: &mut impl GenericClient,
    id: i64,
    hash: &str,
) -> Result<(), postgres::Error> {
    client.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
        &[&id, &hash],
    )?;
    Ok(())
}

/// Replaces a hash only if it is still the one we verified (a re-hash after
/// login must not undo a concurrent password change).
pub fn upgrade_password_hash(
    client: &mut impl GenericClient,
    id: i64,
    old: &str,
    new: &str,
) -> Result<(), postgres::Error> {
    client.execute(
        "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
        &[&id, &old, &new],
    )?;
    Ok(())
}

/// `false` if there is no such user.
pub fn set_state(
    client: &mut impl GenericClient,
    id: i64,
    state: &str,
) -> Result<bool, postgres::Error> {
    Ok(client.execute(
        "UPDATE users SET state = $2, updated_at = now() WHERE id = $1",
        &[&id, &state],
    )? == 1)
}

pub fn touch(client: &mut impl GenericClient, id: i64) -> Result<bool, postgres::Error> {
    Ok(client.execute("UPDATE users SET updated_at = now() WHERE id = $1", &[&id])? == 1)
}

/// `false` if the user held the role already.
pub fn grant_role(
    client: &mut impl GenericClient,
    id: i64,
    role: &str,
) -> Result<bool, postgres::Error> {
    let granted = client.execute(
        "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&id, &role],
    )? == 1;
    if granted {
        touch(client, id)?;
    }
    Ok(granted)
}

/// `false` if the user did not hold the role.
pub fn revoke_role(
    client: &mut impl GenericClient,
    id: i64,
    role: &str,
) -> Result<bool, postgres::Error> {
    let revoked = client.execute(
        "DELETE FROM user_roles WHERE user_id = $1 AND role = $2",
        &[&id, &role],
    )? == 1;
    if revoked {
        touch(client, id)?;
    }
    Ok(revoked)
}

/// Filters of `user.search`; every one optional.
#[derive(Debug, Default, Clone)]
pub struct Search {
    pub prefix: Option<String>,
    pub state: Option<String>,
    pub role: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub after_id: i64,
    pub limit: i64,
}

/// Keyset pagination by id: `id > after_id ORDER BY id LIMIT n`, so pages
/// never skip or repeat a row, whatever is inserted meanwhile.
pub fn search(
    client: &mut impl GenericClient,
    s: &Search,
) -> Result<Vec<Account>, postgres::Error> {
    let pattern = s.prefix.as_deref().map(|p| format!("{}%", escape_like(p)));
    let sql = match &pattern {
        Some(p) => {
            let matches: i64 = client
                .query_one(COUNT_PREFIX, &[p, &COMMON_PREFIX])?
                .try_get(0)?;
            if matches < COMMON_PREFIX {
                SEARCH_SPARSE
            } else {
                SEARCH
            }
        }
        None => SEARCH,
    };
    client
        .query(
            sql,
            &[
                &s.after_id,
                &pattern,
                &s.state,
                &s.role,
                &s.created_after,
                &s.created_before,
                &s.limit,
            ],
        )?
        .iter()
        .map(account_from)
        .collect()
}

fn escape_like(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_a_search_prefix_are_literal() {
        assert_eq!(escape_like("a_b%c\\"), "a\\_b\\%c\\\\");
    }
}
