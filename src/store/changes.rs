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
    pub changes: Vec<(String, i64)>,
}

/// The changes of every transaction with an id from `from` on that has
/// committed, read in one statement (one snapshot) with that snapshot's
/// xmin. `None` reads no rows: only where the next read may start.
pub fn since(client: &mut postgres::Client, from: Option<i64>) -> Result<Read, postgres::Error> {
    let rows = client.query(
        "SELECT s.xmin, c.kind, c.target \
         FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin) s \
         LEFT JOIN cache_changes c ON $1::bigint IS NOT NULL AND c.xid >= $1",
        &[&from],
    )?;
    let mut read = Read {
        done_below: 0,
        changes: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        read.done_below = row.try_get(0)?;
        let kind: Option<String> = row.try_get(1)?;
        let target: Option<i64> = row.try_get(2)?;
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
