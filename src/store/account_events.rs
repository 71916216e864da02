//! PostgreSQL queries on `account_events`: appended in the writer's
//! transaction, read in one total order that never changes once read (see
//! migration 6 and [`read`]).

use chrono::{DateTime, Utc};
use postgres::GenericClient;

/// Appends events in the writer's transaction: they exist exactly when the
/// change does.
pub fn append(
    client: &mut impl GenericClient,
    events: &[(&str, i64, String)],
) -> Result<(), postgres::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.0).collect();
    let users: Vec<i64> = events.iter().map(|e| e.1).collect();
    let data: Vec<&str> = events.iter().map(|e| e.2.as_str()).collect();
    client.execute(
        "INSERT INTO account_events (type, user_id, data) \
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])",
        &[&kinds, &users, &data],
    )?;
    Ok(())
}

/// A position in the log: the (xid, id) of the last event read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    pub xid: i64,
    pub id: i64,
}

#[derive(Debug)]
pub struct Stored {
    pub at: Cursor,
    pub kind: String,
    pub time: DateTime<Utc>,
    pub user_id: Option<i64>,
    pub data: String,
}

/// Up to `limit` events after `after`, of `kinds` if given, in (xid, id)
/// order. Only events of transactions below the snapshot's xmin are read:
/// every transaction that could still add an event before them has ended,
/// so what is read here is final and a reader that goes on from its last
/// cursor misses nothing and sees nothing twice.
pub fn read(
    client: &mut impl GenericClient,
    after: Cursor,
    kinds: Option<&[String]>,
    limit: i64,
) -> Result<Vec<Stored>, postgres::Error> {
    client
        .query(
            "SELECT e.xid, e.id, e.type, e.at, e.user_id, e.data \
             FROM account_events e, \
                  (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin) s \
             WHERE (e.xid, e.id) > ($1, $2) AND e.xid < s.xmin \
               AND ($3::text[] IS NULL OR e.type = ANY($3)) \
             ORDER BY e.xid, e.id LIMIT $4",
            &[&after.xid, &after.id, &kinds, &limit],
        )?
        .iter()
        .map(|r| {
            Ok(Stored {
                at: Cursor {
                    xid: r.try_get(0)?,
                    id: r.try_get(1)?,
                },
                kind: r.try_get(2)?,
                time: r.try_get(3)?,
                user_id: r.try_get(4)?,
                data: r.try_get(5)?,
            })
        })
        .collect()
}

/// The newest position retention has deleted, if any.
pub fn pruned(client: &mut impl GenericClient) -> Result<Option<Cursor>, postgres::Error> {
    client
        .query_opt("SELECT xid, id FROM account_events_pruned", &[])?
        .map(|r| {
            Ok(Cursor {
                xid: r.try_get(0)?,
                id: r.try_get(1)?,
            })
        })
        .transpose()
}

/// Deletes up to `batch` events older than `keep_s` seconds, oldest first,
/// remembering the newest deleted position; how many went.
pub fn prune(
    client: &mut postgres::Client,
    keep_s: f64,
    batch: i64,
) -> Result<u64, postgres::Error> {
    let mut tx = client.transaction()?;
    let rows = tx.query(
        "DELETE FROM account_events WHERE (xid, id) IN ( \
             SELECT xid, id FROM account_events WHERE at < now() - make_interval(secs => $1) \
             ORDER BY xid, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING xid, id",
        &[&keep_s, &batch],
    )?;
    let mut newest: Option<Cursor> = None;
    for r in &rows {
        let c = Cursor {
            xid: r.try_get(0)?,
            id: r.try_get(1)?,
        };
        newest = newest.max(Some(c));
    }
    if let Some(c) = newest {
        tx.execute(
            "INSERT INTO account_events_pruned (xid, id) VALUES ($1, $2) \
             ON CONFLICT (one) DO UPDATE SET xid = EXCLUDED.xid, id = EXCLUDED.id \
             WHERE (account_events_pruned.xid, account_events_pruned.id) < (EXCLUDED.xid, EXCLUDED.id)",
            &[&c.xid, &c.id],
        )?;
    }
    tx.commit()?;
    Ok(rows.len() as u64)
}

/// Where delivery to `endpoint` stands; a new endpoint starts at the end of
/// the log as it is now (it gets what happens from its configuration on).
pub fn position(client: &mut postgres::Client, endpoint: &str) -> Result<Cursor, postgres::Error> {
    client.execute(
        "INSERT INTO webhook_positions (endpoint, xid, id) \
         SELECT $1, COALESCE(MAX(xid), 0), COALESCE(MAX(id), 0) FROM ( \
             SELECT xid, id FROM account_events ORDER BY xid DESC, id DESC LIMIT 1) last \
         ON CONFLICT (endpoint) DO NOTHING",
        &[&endpoint],
    )?;
    let row = client.query_one(
        "SELECT xid, id FROM webhook_positions WHERE endpoint = $1",
        &[&endpoint],
    )?;
    Ok(Cursor {
        xid: row.try_get(0)?,
        id: row.try_get(1)?,
    })
}

/// Delivery to `endpoint` went up to `at`.
pub fn advance(
    client: &mut postgres::Client,
    endpoint: &str,
    at: Cursor,
) -> Result<(), postgres::Error> {
    client.execute(
        "UPDATE webhook_positions SET xid = $2, id = $3, updated_at = now() WHERE endpoint = $1",
        &[&endpoint, &at.xid, &at.id],
    )?;
    Ok(())
}
