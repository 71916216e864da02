//! Caches, and the one place that decides what a write must tell them.
//!
//! Only this process caches (tokens and Users, [`local`]); nothing is cached
//! in Redis, whose faults therefore cannot keep a revoked token alive. Every
//! write that changes what a cache may hold records a [`Change`] in its own
//! PostgreSQL transaction ([`record`]): the change commits if and only if
//! the write does. Every instance reads those changes from PostgreSQL a few
//! times a second ([`feed`]) and drops what they name; an instance that has
//! not read the feed for a lease stops answering from its caches. So once a
//! revoking call has returned, every instance answers from PostgreSQL or from
//! a cache that has dropped the token, within [`local::LEASE`] plus one feed
//! interval, whatever Redis does.

pub mod feed;
pub mod local;

use postgres::{GenericClient, Transaction};

pub use local::{LocalCaches, TokenInfo, UserJson};

/// Something a write changed that caches may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A session was revoked: its access tokens are dead.
    Session(i64),
    /// A user's account, roles, state or profile changed: its cached User
    /// and every cached token carrying its roles are stale.
    User(i64),
}

impl Change {
    /// What a write that revoked `sessions` of `user_id` and changed the
    /// user (password, state, second factor) tells the caches.
    pub fn revoked(user_id: i64, sessions: &[i64]) -> Vec<Change> {
        sessions
            .iter()
            .map(|s| Change::Session(*s))
            .chain([Change::User(user_id)])
            .collect()
    }

    fn kind(self) -> (&'static str, i64) {
        match self {
            Change::Session(id) => ("s", id),
            Change::User(id) => ("u", id),
        }
    }

    fn from_kind(kind: &str, id: i64) -> Option<Change> {
        match kind {
            "s" => Some(Change::Session(id)),
            "u" => Some(Change::User(id)),
            _ => None,
        }
    }
}

/// Records `changes` in the writer's transaction (call it before commit):
/// they become visible to every instance's feed exactly when the write does.
pub fn record(tx: &mut impl GenericClient, changes: &[Change]) -> Result<(), postgres::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let (kinds, ids): (Vec<&str>, Vec<i64>) = changes.iter().map(|c| c.kind()).unzip();
    crate::store::changes::insert(tx, &kinds, &ids)
}

/// Ends a write: records `changes` in its transaction, commits, and drops
/// them from this process's caches at once (other instances' feeds follow).
/// Every write that changes what a cache may hold ends here.
pub fn commit(
    caches: &LocalCaches,
    mut tx: Transaction<'_>,
    changes: &[Change],
) -> Result<(), postgres::Error> {
    record(&mut tx, changes)?;
    tx.commit()?;
    caches.apply(changes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_their_stored_kind() {
        for c in [Change::Session(7), Change::User(-1)] {
            let (kind, id) = c.kind();
            assert_eq!(Change::from_kind(kind, id), Some(c));
        }
        assert_eq!(Change::from_kind("x", 1), None);
    }
}
