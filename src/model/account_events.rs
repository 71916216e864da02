//! The account event log (the contract's "Events"): every account change
//! appends its event in the same transaction as the change ([`record`],
//! next to `cache::commit` in each write of the model), and `events.read`
//! pages through them in one total order ([`read`]).

use serde_json::{json, Value};

use crate::error::AppError;
use crate::services::Ctx;
use crate::store::account_events::{self as store, Cursor, Stored};

/// Every event type, as the contract lists them.
pub const KINDS: &[&str] = &[
    "user.created",
    "user.updated",
    "user.state_changed",
    "user.roles_changed",
    "user.deleted",
    "session.created",
    "session.revoked",
    "password.changed",
    "password.reset",
    "mfa.enabled",
    "mfa.disabled",
    "email.verified",
    "email.changed",
    "passkey.added",
    "passkey.removed",
];

/// One event to append: its type, its user, and data without a secret.
pub struct Event {
    kind: &'static str,
    user_id: i64,
    data: Value,
}

impl Event {
    pub fn new(kind: &'static str, user_id: i64, data: Value) -> Event {
        Event {
            kind,
            user_id,
            data,
        }
    }

    /// One `session.revoked` per session, with why.
    pub fn revoked(user_id: i64, sessions: &[i64], reason: &str) -> Vec<Event> {
        sessions
            .iter()
            .map(|s| {
                Event::new(
                    "session.revoked",
                    user_id,
                    json!({"session_id": s, "reason": reason}),
                )
            })
            .collect()
    }
}

/// Appends `events` in the writer's transaction (call it before commit).
pub fn record(tx: &mut impl postgres::GenericClient, events: &[Event]) -> Result<(), AppError> {
    let rows: Vec<(&str, i64, String)> = events
        .iter()
        .map(|e| (e.kind, e.user_id, e.data.to_string()))
        .collect();
    Ok(store::append(tx, &rows)?)
}

/// An event as `events.read` answers it and webhooks POST it.
pub fn event_json(e: &Stored) -> Value {
    json!({
        "id": cursor_text(e.at),
        "type": e.kind,
        "at": crate::model::user::rfc3339(e.time),
        "user_id": e.user_id,
        "data": serde_json::from_str::<Value>(&e.data).unwrap_or_else(|_| json!({})),
    })
}

/// A cursor as callers hold it: `"<xid>.<id>"`, opaque to them.
pub fn parse_cursor(raw: &str) -> Option<Cursor> {
    let (xid, id) = raw.split_once('.')?;
    Some(Cursor {
        xid: xid.parse().ok()?,
        id: id.parse().ok()?,
    })
}

pub fn cursor_text(c: Cursor) -> String {
    format!("{}.{}", c.xid, c.id)
}

/// A page of events after `after` (the start of the kept log without one),
/// and the cursor to read on from. A cursor that retention has passed is
/// -32013: the reader lost events and must know it.
pub fn read(
    ctx: &Ctx,
    after: Option<Cursor>,
    kinds: Option<&[String]>,
    limit: i64,
) -> Result<(Vec<Stored>, Cursor), AppError> {
    let mut conn = ctx.pg()?;
    let pruned = store::pruned(&mut conn.client)?;
    if let (Some(after), Some(pruned)) = (after, pruned) {
        if after < pruned {
            return Err(AppError::NotFound);
        }
    }
    let from = after.or(pruned).unwrap_or_default();
    let events = store::read(&mut conn.client, from, kinds, limit)?;
    let next = events.last().map_or(from, |e| e.at);
    Ok((events, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written_and_junk_is_no_cursor() {
        let c = Cursor { xid: 812, id: 5 };
        assert_eq!(parse_cursor(&cursor_text(c)), Some(c));
        for junk in ["", "5", "a.b", "1.", ".1", "1.2.3"] {
            assert_eq!(parse_cursor(junk), None, "{junk}");
        }
    }

    #[test]
    fn positions_order_by_transaction_first() {
        let a = Cursor { xid: 10, id: 99 };
        let b = Cursor { xid: 11, id: 1 };
        assert!(a < b);
    }
}
