//! PostgreSQL queries on an account's names as an operator changes them
//! (`user.update_account`), and the holds on released usernames
//! (`username_holds`): a name an account gave up is kept from every other
//! account for `[AUTH] USERNAME_HOLD_DAYS`.

use postgres::GenericClient;

use super::accounts::InsertError;

/// Whether `username` is held from account `for_id` (`None`: from any new
/// account) now.
pub fn held(
    client: &mut impl GenericClient,
    username: &str,
    for_id: Option<i64>,
) -> Result<bool, postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM username_holds WHERE username = $1 AND until > now() \
             AND ($2::bigint IS NULL OR user_id <> $2)",
            &[&username, &for_id],
        )?
        .is_some())
}

/// Which of `usernames` are held from new accounts now ([`held`] for a batch).
pub fn held_among(
    client: &mut impl GenericClient,
    usernames: &[&str],
) -> Result<std::collections::HashSet<String>, postgres::Error> {
    if usernames.is_empty() {
        return Ok(Default::default());
    }
    client
        .query(
            "SELECT username FROM username_holds WHERE username = ANY($1) AND until > now()",
            &[&usernames],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect()
}

/// The account's username now, locked until the transaction ends.
pub fn lock_username(
    client: &mut impl GenericClient,
    id: i64,
) -> Result<Option<String>, postgres::Error> {
    client
        .query_opt(
            "SELECT username FROM users WHERE id = $1 FOR UPDATE",
            &[&id],
        )?
        .map(|r| r.try_get(0))
        .transpose()
}

/// Renames the account: the old name is held for `days` from others (the
/// account itself may take it back), and a hold it had on the new name
/// ends. A name taken by another is `Conflict("username")`.
pub fn rename(
    client: &mut impl GenericClient,
    id: i64,
    old: &str,
    new: &str,
    days: i64,
) -> Result<(), InsertError> {
    client.execute(
        "UPDATE users SET username = $2, updated_at = now() WHERE id = $1",
        &[&id, &new],
    )?;
    client.execute(
        "DELETE FROM username_holds WHERE username = $1 AND user_id = $2",
        &[&new, &id],
    )?;
    if days > 0 {
        client.execute(
            "INSERT INTO username_holds (username, user_id, until) \
             VALUES ($1, $2, now() + make_interval(days => $3::int)) \
             ON CONFLICT (username) DO UPDATE SET user_id = EXCLUDED.user_id, until = EXCLUDED.until",
            &[&old, &id, &i32::try_from(days).unwrap_or(i32::MAX)],
        )?;
    }
    Ok(())
}

/// Holds that have ended, deleted (retention).
pub const SWEEP_HOLDS: &str = "DELETE FROM username_holds WHERE username IN \
     (SELECT username FROM username_holds WHERE until < now() - make_interval(secs => $1) \
      LIMIT $2 FOR UPDATE SKIP LOCKED)";
