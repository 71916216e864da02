//! The `cache_changes` table: what writes changed, for every instance's
//! cache feed. Rows are read by transaction id against the reader's
//! snapshot, so none is ever skipped however transactions interleave.

use postgres::GenericClient;

/// Appends changes; the row's `xid` is the writing transaction's id.
pub fn insert(
    client: &mut impl GenericClient,
    kinds: &[&str],
    ids: &[i64],
) -> Result<(), postgres::Error> {
    client.execute(
        "INSERT INTO cache_changes (kind, target) SELECT * FROM unnest($1::text[], $2::bigint[])",
        &[&kinds, &ids],
    )?;
    Ok(())
}

/// What a feed read found.
pub struct Read {
    /// Every transaction with a lower id had ended when the rows were read:
    /// the next read may start here and miss nothing.
    pub done_below: i64,
    /// The primary's WAL position once the rows were read (bytes from
    /// `0/0`): every change read had committed below it.
    pub lsn: i64,
    /// Whether the server takes writes. A read-only one (a standby, or a
    /// primary turned read-only) is not where changes are written.
    pub writable: bool,
    pub changes: Vec<(String, i64)>,
}

/// The changes of every transaction with an id from `from` on that has
/// committed, read in one statement (one snapshot) with that snapshot's
/// xmin and the WAL position after it (`pg_current_wal_lsn()` fails on a
/// standby, which is not where changes are written). `None` reads no rows:
/// only where the next read may start.
pub fn since(client: &mut postgres::Client, from: Option<i64>) -> Result<Read, postgres::Error> {
    let rows = client.query(
        "SELECT s.xmin, s.lsn, s.writable, c.kind, c.target \
         FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, \
                      pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS lsn, \
                      current_setting('transaction_read_only') = 'off' AS writable) s \
         LEFT JOIN cache_changes c ON $1::bigint IS NOT NULL AND c.xid >= $1",
        &[&from],
    )?;
    let mut read = Read {
        done_below: 0,
        lsn: 0,
        writable: false,
        changes: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        read.done_below = row.try_get(0)?;
        read.lsn = row.try_get(1)?;
        read.writable = row.try_get(2)?;
        let kind: Option<String> = row.try_get(3)?;
        let target: Option<i64> = row.try_get(4)?;
        if let (Some(kind), Some(target)) = (kind, target) {
            read.changes.push((kind, target));
        }
    }
    Ok(read)
}

/// Deletes rows older than any feed can still need (see `cache::feed`).
pub fn prune(client: &mut postgres::Client) -> Result<u64, postgres::Error> {
    client.execute(
        "DELETE FROM cache_changes WHERE at < now() - interval '1 hour'",
        &[],
    )
}
